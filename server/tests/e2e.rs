#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The real `tandem` binary over a real socket: start it on a temporary database, use it with
//! an HTTP client, stop it with SIGTERM, start it again and find everything still there.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const ADMIN: &str = "tdm_end_to_end_admin_token";

struct Server {
    child: Child,
    base: String,
    stdout: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tandem() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    for var in [
        "TANDEM_DB",
        "TANDEM_LISTEN",
        "TANDEM_ADMIN_TOKEN",
        "TANDEM_LOG_FORMAT",
        "TANDEM_MAX_ATTACHMENT_BYTES",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn").kill_on_drop(true);
    cmd
}

/// Starts `tandem serve` and returns once `/health` answers.
async fn start(db: &Path, admin_token: Option<&str>, extra: &[&str], stdout: PathBuf) -> Server {
    let port = free_port();
    let mut cmd = tandem();
    cmd.arg("serve").arg("--db").arg(db).args(["--listen", &format!("127.0.0.1:{port}")]).args(extra);
    if let Some(token) = admin_token {
        cmd.env("TANDEM_ADMIN_TOKEN", token);
    }
    cmd.stdout(std::fs::File::create(&stdout).unwrap()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tandem exited before it was ready: {status}");
        }
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status() == StatusCode::OK
        {
            break;
        }
        assert!(Instant::now() < deadline, "tandem did not become ready");
        // Polling interval while the process starts, not a synchronisation point.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server { child, base, stdout }
}

impl Server {
    /// SIGTERM, then the exit status once the server has drained and closed its database.
    async fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("tandem did not stop")
            .unwrap()
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }
}

struct Http {
    client: Client,
    base: String,
    token: String,
}

impl Http {
    fn new(server: &Server, token: &str) -> Self {
        let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: server.base.clone(), token: token.to_string() }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>, expected: StatusCode) -> Value {
        let mut req = self.request(method.clone(), path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path}: {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, None, StatusCode::OK).await
    }

    async fn post(&self, path: &str, body: Value, expected: StatusCode) -> Value {
        self.call(Method::POST, path, Some(body), expected).await
    }
}

fn type_id(types: &Value, kind: &str) -> String {
    types.as_array().unwrap().iter().find(|t| t["kind"] == kind).unwrap()["id"].as_str().unwrap().to_string()
}

fn event_types(history: &Value) -> Vec<String> {
    history.as_array().unwrap().iter().map(|e| e["data"]["type"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_ticket_lives_through_restarts_and_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db");
    let server = start(&db, Some(ADMIN), &[], dir.path().join("out1.txt")).await;
    assert!(!server.printed().contains("tdm_"), "a configured token is not printed");
    let http = Http::new(&server, ADMIN);

    http.post("/workspaces", json!({"name": "Federation"}), StatusCode::CREATED).await;
    let types = http.get("/item-types").await;
    let (ticket_type, task_type) = (type_id(&types, "ticket"), type_id(&types, "task"));

    let item = http
        .post("/items", json!({"item_type": ticket_type, "title": "Club export fails"}), StatusCode::CREATED)
        .await;
    let n = item["number"].as_i64().unwrap();
    let messages = format!("/items/{n}/messages");
    let text = |visibility: &str, content: &str| json!({"visibility": visibility, "body": {"format": "text", "content": content}});
    http.post(&messages, text("public", "We are looking into it."), StatusCode::CREATED).await;
    http.post(&messages, text("internal", "The export job times out after 30 s."), StatusCode::CREATED).await;

    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let part = reqwest::multipart::Part::bytes(bytes.clone())
        .file_name("export log.bin")
        .mime_str("application/octet-stream")
        .unwrap();
    let upload = http
        .request(Method::POST, &format!("/items/{n}/attachments"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::CREATED);
    let attachment: Value = upload.json().await.unwrap();
    let download_path = format!("/attachments/{}", attachment["id"].as_str().unwrap());
    let download = http.request(Method::GET, &download_path).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-type"], "application/octet-stream");
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''export%20log.bin")
    );
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());

    let moved =
        http.post(&format!("/items/{n}/transition"), json!({"status": "execution"}), StatusCode::OK).await;
    assert_eq!(moved["category"], "in_progress");
    let converted = http
        .post(
            &format!("/items/{n}/convert"),
            json!({"item_type": task_type, "version": moved["version"]}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(converted["kind"], "task");

    let by_number = http.get(&format!("/items/{n}")).await;
    assert_eq!((&by_number["id"], &by_number["kind"]), (&item["id"], &json!("task")));
    let old_url = http.request(Method::GET, &format!("/tickets/{n}")).send().await.unwrap();
    assert_eq!(old_url.status(), StatusCode::PERMANENT_REDIRECT);
    let location = old_url.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("/api/v1/tasks/{n}"));
    let followed = http.get(location.trim_start_matches("/api/v1")).await;
    assert_eq!(followed["id"], item["id"]);

    let history = http.get(&format!("/items/{n}/history")).await;
    assert_eq!(
        event_types(&history),
        [
            "item_created",
            "message_posted",
            "message_posted",
            "attachment_added",
            "status_changed",
            "item_converted"
        ]
    );
    let conversation = http.get(&messages).await;

    assert!(server.stop().await.success(), "a SIGTERM is a clean shutdown");

    // Started again without the variable: the stored hash still accepts the token, nothing is
    // printed, and everything is there.
    let server = start(&db, None, &[], dir.path().join("out2.txt")).await;
    assert_eq!(server.printed(), "");
    let http = Http::new(&server, ADMIN);
    assert_eq!(http.get(&format!("/items/{n}")).await, by_number);
    assert_eq!(http.get(&messages).await, conversation);
    assert_eq!(http.get(&format!("/items/{n}/history")).await, history);
    let again = http.request(Method::GET, &download_path).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let old_url = http.request(Method::GET, &format!("/tickets/{n}")).send().await.unwrap();
    assert_eq!(old_url.status(), StatusCode::PERMANENT_REDIRECT);
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn acknowledged_writes_survive_a_shutdown_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db");
    let server = start(&db, Some(ADMIN), &[], dir.path().join("out1.txt")).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Load"}), StatusCode::CREATED).await;
    let ticket_type = type_id(&http.get("/item-types").await, "ticket");

    // Writers keep creating items until the server stops answering; SIGTERM arrives while
    // requests are in flight.
    let progress = std::sync::Arc::new((std::sync::atomic::AtomicUsize::new(0), tokio::sync::Notify::new()));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (client, base, ticket_type, progress) =
            (http.client.clone(), http.base.clone(), ticket_type.clone(), progress.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let sent = client
                    .post(format!("{base}/items"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"item_type": ticket_type, "title": format!("writer {w} item {i}")}))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(item) = response.json::<Value>().await else { break };
                acknowledged.push(item["number"].as_i64().unwrap());
                if progress.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 200 {
                    progress.1.notify_one();
                }
            }
            acknowledged
        }));
    }
    progress.1.notified().await;
    let status = server.stop().await;
    assert!(status.success(), "{status}");
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(acknowledged.len() >= 200, "{} acknowledged", acknowledged.len());

    let server = start(&db, Some(ADMIN), &[], dir.path().join("out2.txt")).await;
    let http = Http::new(&server, ADMIN);
    let mut stored = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = http.get(&format!("/items?limit=500{cursor}")).await;
        stored.extend(page["items"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let missing: Vec<_> = acknowledged.iter().filter(|n| !stored.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // Item numbers are gap-free: nothing half-written took a number.
    assert_eq!(stored, (1..=stored.len() as i64).collect::<Vec<_>>());
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn a_generated_admin_token_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db");
    let server = start(&db, None, &[], dir.path().join("out1.txt")).await;
    let printed = server.printed();
    let token =
        printed.split_whitespace().find(|w| w.starts_with("tdm_")).expect("the token is printed").to_string();
    let http = Http::new(&server, &token);
    http.post("/workspaces", json!({"name": "First"}), StatusCode::CREATED).await;
    let wrong = Http::new(&server, "tdm_guessing_is_not_enough");
    wrong.call(Method::GET, "/workspaces", None, StatusCode::UNAUTHORIZED).await;
    assert!(server.stop().await.success());

    let server = start(&db, None, &[], dir.path().join("out2.txt")).await;
    assert!(!server.printed().contains("tdm_"), "shown only on first start: {}", server.printed());
    let http = Http::new(&server, &token);
    assert_eq!(http.get("/workspaces").await.as_array().unwrap().len(), 1);
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn demo_seeding_is_idempotent_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db");
    let server = start(&db, Some(ADMIN), &["--demo"], dir.path().join("out1.txt")).await;
    let printed = server.printed();
    assert!(printed.contains("Seeded the demo workspace"), "{printed}");
    let http = Http::new(&server, ADMIN);
    let workspaces = http.get("/workspaces").await;
    assert_eq!(workspaces.as_array().unwrap().len(), 1);
    assert_eq!(workspaces[0]["name"], "Tandem demo");
    let items = http.get("/items?limit=500").await["items"].as_array().unwrap().clone();
    assert!(items.len() >= 10, "{} items", items.len());
    let tasks = items.iter().filter(|i| i["kind"] == "task").count();
    assert!(tasks >= 3);
    let names: Vec<String> = http
        .get("/item-types")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for wanted in ["IT support", "Marketing request", "Project task"] {
        assert!(names.iter().any(|n| n == wanted), "{names:?}");
    }
    assert_eq!(http.get("/teams").await.as_array().unwrap().len(), 2);
    assert_eq!(http.get("/projects").await.as_array().unwrap().len(), 2);
    // The converted ticket's old URL redirects.
    let converted = items.iter().find(|i| i["title"] == "New laptop for the Toronto store manager").unwrap();
    let old = http.request(Method::GET, &format!("/tickets/{}", converted["number"])).send().await.unwrap();
    assert_eq!(old.status(), StatusCode::PERMANENT_REDIRECT);

    // A printed demo login works, and a customer sees only their own requests.
    let tom = printed
        .lines()
        .find(|l| l.contains("Tom Becker"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("tdm_")))
        .expect("Tom's token is printed")
        .to_string();
    let as_tom = Http::new(&server, &tom);
    let visible = as_tom.get("/items").await["items"].as_array().unwrap().len();
    assert!(visible > 0 && visible < items.len(), "tom sees {visible} of {}", items.len());
    assert!(server.stop().await.success());

    let server = start(&db, Some(ADMIN), &["--demo"], dir.path().join("out2.txt")).await;
    assert!(!server.printed().contains("Seeded"), "{}", server.printed());
    let http = Http::new(&server, ADMIN);
    assert_eq!(http.get("/workspaces").await.as_array().unwrap().len(), 1);
    assert_eq!(http.get("/items?limit=500").await["items"].as_array().unwrap().len(), items.len());
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn migrate_reports_the_schema_and_unknown_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let out =
        tandem().arg("migrate").arg("--db").arg(format!("sqlite://{}", db.display())).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.contains(&format!("schema version {}", tandem_storage_sqlite::SCHEMA_VERSION)),
        "{printed}"
    );
    assert!(db.exists());

    let out = tandem().args(["serve", "--db", "postgres://tandem@localhost/tandem"]).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sqlite://"), "{stderr}");

    let out = tandem().args(["migrate"]).env("TANDEM_DB", "redis://cache").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'redis://'"));
}
