#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The real `tandem` binary over a real socket: start it on a temporary database — a SQLite file
//! or a PostgreSQL database — use it with an HTTP client, stop it with SIGTERM, start it again and
//! find everything still there.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{ADMIN, Backend, Db, Http, free_port, start, tandem, type_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn event_types(history: &Value) -> Vec<String> {
    history.as_array().unwrap().iter().map(|e| e["data"]["type"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_ticket_lives_through_restarts_and_conversion_on_sqlite() {
    a_ticket_lives_through_restarts_and_conversion(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_ticket_lives_through_restarts_and_conversion_on_postgres() {
    a_ticket_lives_through_restarts_and_conversion(Backend::Postgres).await;
}

async fn a_ticket_lives_through_restarts_and_conversion(backend: Backend) {
    let Some(db) = Db::new(backend).await else { return };
    let server = start(&db.arg, Some(ADMIN), &[]).await;
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
    let server = start(&db.arg, None, &[]).await;
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
async fn acknowledged_writes_survive_a_shutdown_under_load_on_sqlite() {
    acknowledged_writes_survive_a_shutdown_under_load(Backend::Sqlite).await;
}

#[tokio::test]
async fn acknowledged_writes_survive_a_shutdown_under_load_on_postgres() {
    acknowledged_writes_survive_a_shutdown_under_load(Backend::Postgres).await;
}

async fn acknowledged_writes_survive_a_shutdown_under_load(backend: Backend) {
    let Some(db) = Db::new(backend).await else { return };
    let server = start(&db.arg, Some(ADMIN), &[]).await;
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

    let server = start(&db.arg, Some(ADMIN), &[]).await;
    let http = Http::new(&server, ADMIN);
    let stored = http.item_numbers().await;
    let missing: Vec<_> = acknowledged.iter().filter(|n| !stored.contains(n)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // Item numbers are gap-free: nothing half-written took a number.
    assert_eq!(stored, (1..=stored.len() as i64).collect::<Vec<_>>());
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn a_generated_admin_token_is_printed_once() {
    let db = Db::new(Backend::Sqlite).await.unwrap();
    let server = start(&db.arg, None, &[]).await;
    let printed = server.printed();
    let token =
        printed.split_whitespace().find(|w| w.starts_with("tdm_")).expect("the token is printed").to_string();
    let http = Http::new(&server, &token);
    http.post("/workspaces", json!({"name": "First"}), StatusCode::CREATED).await;
    let wrong = Http::new(&server, "tdm_guessing_is_not_enough");
    wrong.call(Method::GET, "/workspaces", None, StatusCode::UNAUTHORIZED).await;
    assert!(server.stop().await.success());

    let server = start(&db.arg, None, &[]).await;
    assert!(!server.printed().contains("tdm_"), "shown only on first start: {}", server.printed());
    let http = Http::new(&server, &token);
    assert_eq!(http.get("/workspaces").await.as_array().unwrap().len(), 1);
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn demo_seeding_is_idempotent_across_restarts() {
    let db = Db::new(Backend::Sqlite).await.unwrap();
    let server = start(&db.arg, Some(ADMIN), &["--demo"]).await;
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

    let server = start(&db.arg, Some(ADMIN), &["--demo"]).await;
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

    let out = tandem().args(["migrate"]).env("TANDEM_DB", "redis://cache").output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'redis://'") && stderr.contains("postgres://"), "{stderr}");

    let out = tandem()
        .args(["serve", "--db", "postgres://tandem:hunter2@localhost:notaport/t"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PostgreSQL URL") && !stderr.contains("hunter2"), "{stderr}");
}

/// `tandem migrate` on PostgreSQL, and a server that cannot reach its database fails to start
/// with a message that names the database but not its password.
#[tokio::test]
async fn migrate_on_postgres_and_unreachable_databases() {
    let Some(db) = Db::new(Backend::Postgres).await else { return };
    let out = tandem().args(["migrate", "--db", &db.arg]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        printed.contains(&format!("schema version {}", tandem_storage_postgres::SCHEMA_VERSION)),
        "{printed}"
    );

    let port = common::free_port();
    let nowhere = format!("postgres://tandem:hunter2@127.0.0.1:{port}/tandem");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tandem().args(["serve", "--db", &nowhere, "--pool-size", "1"]).output(),
    )
    .await
    .expect("an unreachable database fails the start promptly")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the PostgreSQL database"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")) && !stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn a_bad_smtp_relay_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db");
    for (args, says) in [
        (vec!["--smtp-relay", "http://mail.example", "--mail-domain", "desk.example"], "unknown scheme"),
        (vec!["--smtp-relay", "smtp://user:pw@mail.example", "--mail-domain", "desk.example"], "credentials"),
        (vec!["--smtp-relay", "smtp://mail.example", "--mail-domain", "not a domain"], "--mail-domain"),
        (vec!["--smtp-relay", "smtp://mail.example"], "--mail-domain"),
        (
            vec![
                "--smtp-relay",
                "smtp://mail.example",
                "--mail-domain",
                "desk.example",
                "--smtp-ca",
                "/nonexistent.pem",
            ],
            "--smtp-ca",
        ),
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["serve", "--db", db.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(&args)
            .env_remove("TANDEM_SMTP_PASSWORD")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Runs `tandem mail-ingest` with `input` on stdin; returns the exit code and stderr.
async fn mail_ingest(db: &Path, args: &[&str], input: &[u8]) -> (i32, String) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tandem();
    cmd.arg("mail-ingest").arg("--db").arg(db).args(args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// One SMTP conversation; returns the server's last reply.
async fn smtp_send(port: u16, rcpt: &str, message: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    for command in ["EHLO mx.example", "MAIL FROM:<maria@club.example>", &format!("RCPT TO:<{rcpt}>"), "DATA"]
    {
        write.write_all(format!("{command}\r\n").as_bytes()).await.unwrap();
        loop {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        if !line.starts_with('2') && !line.starts_with('3') {
            return line;
        }
    }
    write.write_all(format!("{message}\r\n.\r\nQUIT\r\n").as_bytes()).await.unwrap();
    line.clear();
    read.read_line(&mut line).await.unwrap();
    line
}

#[tokio::test]
async fn mail_arrives_over_smtp_and_through_the_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db");
    let smtp_port = free_port();
    let listen = format!("127.0.0.1:{smtp_port}");
    let server = start(db.to_str().unwrap(), Some(ADMIN), &["--smtp-listen", &listen]).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Desk"}), StatusCode::CREATED).await;
    let ticket = type_id(&http.get("/item-types").await, "ticket");
    let settings = http
        .call(
            Method::PATCH,
            "/mail/settings",
            Some(json!({"addresses": [{"address": "IT@desk.example", "item_type": ticket}]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(settings["addresses"][0]["address"], "it@desk.example");
    let bad = json!({"addresses": [{"address": "it+x@desk.example", "item_type": ticket}]});
    http.call(Method::PATCH, "/mail/settings", Some(bad), StatusCode::UNPROCESSABLE_ENTITY).await;
    // Templates may use known placeholders only.
    let typo = json!({"templates": {"message_posted": {"subject": "{{title}}", "text": "Hi {{titel}}", "html": ""}}});
    let refused =
        http.call(Method::PATCH, "/mail/settings", Some(typo), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(refused.to_string().contains("templates.message_posted.text"), "{refused}");
    assert!(refused.to_string().contains("titel"), "{refused}");
    let open = json!({"templates": {"assigned": {"subject": "{{title", "text": "", "html": ""}}});
    let refused =
        http.call(Method::PATCH, "/mail/settings", Some(open), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(refused.to_string().contains("templates.assigned.subject"), "{refused}");
    let good = json!({"templates": {"assigned": {"subject": "{{ title }} → {{assignee}}", "text": "{{body}}", "html": "<p>{{body}}</p>"}}});
    http.call(Method::PATCH, "/mail/settings", Some(good), StatusCode::OK).await;

    let reply = smtp_send(smtp_port, "it@desk.example", "From: Maria <maria@club.example>\r\nSubject: Printer jams\r\nMessage-ID: <e2e-1@club.example>\r\n\r\nThe printer jams.").await;
    assert!(reply.starts_with("250 "), "{reply}");
    let refused = smtp_send(smtp_port, "nobody@desk.example", "Subject: x\r\n\r\nx").await;
    assert!(refused.starts_with("550 "), "{refused}");

    // The pipe, from another process while the server runs.
    let piped = b"From: Otto <otto@club.example>\r\nTo: it@desk.example\r\nSubject: Scanner offline\r\nMessage-ID: <e2e-2@club.example>\r\n\r\nThe scanner is offline.\r\n";
    let (code, said) = mail_ingest(&db, &[], piped).await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("accepted as #2"), "{said}");
    let (code, said) = mail_ingest(&db, &["--recipient", "it@desk.example"], piped).await;
    assert_eq!(code, 0, "a duplicate is stored already: {said}");
    assert!(said.contains("duplicate"), "{said}");
    let (code, said) = mail_ingest(&db, &["--recipient", "nobody@desk.example"], piped).await;
    assert_eq!(code, 67, "{said}");
    let (code, _) = mail_ingest(&db, &[], b"").await;
    assert_eq!(code, 65);
    let (code, said) =
        mail_ingest(&db, &["--recipient", "it@desk.example", "--max-message-bytes", "50"], piped).await;
    assert_eq!(code, 69, "{said}");
    let (code, said) = mail_ingest(&dir.path().join("missing").join("t.db"), &[], piped).await;
    assert_eq!(code, 75, "an unreachable database makes the MTA retry: {said}");

    let items = http.get("/items").await;
    let titles: Vec<&str> =
        items["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, vec!["Printer jams", "Scanner offline"]);
    let inbound = http.get("/mail/inbound").await;
    let statuses: Vec<&str> =
        inbound.as_array().unwrap().iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["accepted", "accepted", "rejected"]);
    assert!(server.stop().await.success());
}
