//! What the end-to-end tests share: starting and stopping the real `tandem` binary on either
//! backend, an HTTP client for its API, and a webhook receiver on loopback that counts what it
//! is sent.

#![allow(dead_code)] // Each test binary uses part of this.

pub mod router;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const ADMIN: &str = "tdm_end_to_end_admin_token";

/// A database for one test, as `--db` names it, and whatever keeps it alive.
pub struct Db {
    pub arg: String,
    _keep: Box<dyn std::any::Any + Send>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Db {
    /// A fresh database; `None` when PostgreSQL is unreachable outside CI (the harness says why).
    pub async fn new(backend: Backend) -> Option<Db> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let arg = dir.path().join("tandem.db").display().to_string();
                Some(Db { arg, _keep: Box::new(dir) })
            }
            Backend::Postgres => {
                let database = tandem_tests::backends::postgres_database().await?;
                Some(Db { arg: database.url().to_string(), _keep: Box::new(database) })
            }
        }
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
    stdout: PathBuf,
    _out: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn tandem() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    for var in [
        "TANDEM_DB",
        "TANDEM_DB_POOL_SIZE",
        "TANDEM_LISTEN",
        "TANDEM_ADMIN_TOKEN",
        "TANDEM_LOG_FORMAT",
        "TANDEM_MAX_ATTACHMENT_BYTES",
        "TANDEM_WORKERS",
        "TANDEM_JOB_LEASE_SECS",
        "TANDEM_JOB_TIMEOUT_SECS",
        "TANDEM_JOB_POLL_MS",
        "TANDEM_WEBHOOK_ATTEMPTS",
        "TANDEM_ALLOW_PRIVATE_WEBHOOKS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn").kill_on_drop(true);
    cmd
}

/// Starts `tandem serve --db <db>` and returns once `/health` answers.
pub async fn start(db: &str, admin_token: Option<&str>, extra: &[&str]) -> Server {
    let port = free_port();
    let out = tempfile::tempdir().unwrap();
    let stdout = out.path().join("stdout.txt");
    let mut cmd = tandem();
    cmd.args(["serve", "--db", db, "--listen", &format!("127.0.0.1:{port}")]).args(extra);
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
    Server { child, base, stdout, _out: out }
}

impl Server {
    /// SIGTERM, then the exit status once the server has drained and closed its database.
    pub async fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("tandem did not stop")
            .unwrap()
    }

    /// SIGKILL: the process dies on the spot, as in a crash or an OOM kill.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }
}

#[derive(Clone)]
pub struct Http {
    pub client: Client,
    pub base: String,
    pub token: String,
}

impl Http {
    pub fn new(server: &Server, token: &str) -> Self {
        let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: server.base.clone(), token: token.to_string() }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>, expected: StatusCode) -> Value {
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

    pub async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, None, StatusCode::OK).await
    }

    pub async fn post(&self, path: &str, body: Value, expected: StatusCode) -> Value {
        self.call(Method::POST, path, Some(body), expected).await
    }

    /// Every item's number, in number order, through keyset pages.
    pub async fn item_numbers(&self) -> Vec<i64> {
        self.items().await.iter().map(|i| i["number"].as_i64().unwrap()).collect()
    }

    pub async fn items(&self) -> Vec<Value> {
        let mut stored = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self.get(&format!("/items?limit=500{cursor}")).await;
            stored.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return stored,
            }
        }
    }

    /// Every job of a kind (newest first).
    pub async fn jobs(&self, kind: &str) -> Vec<Value> {
        self.get(&format!("/jobs?kind={kind}&limit=1000")).await.as_array().unwrap().clone()
    }

    /// Creates one ticket; the number it got, or `None` when the server did not acknowledge it.
    pub async fn try_create(&self, ticket_type: &str, title: &str) -> Option<(i64, String)> {
        let sent = self
            .request(Method::POST, "/items")
            .json(&json!({"item_type": ticket_type, "title": title}))
            .send()
            .await
            .ok()?;
        if sent.status() != StatusCode::CREATED {
            return None;
        }
        let item = sent.json::<Value>().await.ok()?;
        Some((item["number"].as_i64()?, item["id"].as_str()?.to_string()))
    }
}

pub fn type_id(types: &Value, kind: &str) -> String {
    types.as_array().unwrap().iter().find(|t| t["kind"] == kind).unwrap()["id"].as_str().unwrap().to_string()
}

/// Polls `check` until it returns `Some`, failing with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} in vain for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One delivery the receiver accepted.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub key: String,
    pub event: String,
    pub body: Value,
    pub signed: bool,
}

#[derive(Default)]
struct Inbox {
    /// Every request, duplicates included, in arrival order.
    deliveries: Vec<Delivery>,
    /// Requests per delivery key.
    per_key: HashMap<String, usize>,
    secret: Option<String>,
    /// While set, requests are held open (the receiver is slow) until released.
    holding: bool,
    held: usize,
}

/// A webhook receiver on loopback that counts deliveries per `Tandem-Delivery` key and checks
/// every signature against the secret it is given.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inbox: Arc<Mutex<Inbox>>,
    release: Arc<tokio::sync::Notify>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let release = Arc::new(tokio::sync::Notify::new());
        let (state, wake) = (inbox.clone(), release.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (inbox, release) = (state.clone(), wake.clone());
                async move { receive(&inbox, &release, &headers, &body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, inbox, release }
    }

    pub fn set_secret(&self, secret: &str) {
        self.inbox.lock().unwrap().secret = Some(secret.to_string());
    }

    /// Holds every request open until [`Receiver::release`]: a slow receiver.
    pub fn hold(&self) {
        self.inbox.lock().unwrap().holding = true;
    }

    pub fn release(&self) {
        self.inbox.lock().unwrap().holding = false;
        self.release.notify_waiters();
    }

    /// Requests being held open right now.
    pub fn held(&self) -> usize {
        self.inbox.lock().unwrap().held
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inbox.lock().unwrap().deliveries.clone()
    }

    /// Keys delivered more than once (the at-least-once repeats that the key makes harmless).
    pub fn repeats(&self) -> usize {
        self.inbox.lock().unwrap().per_key.values().map(|n| n - 1).sum()
    }

    /// The distinct item ids of `item.created` deliveries.
    pub fn created_items(&self) -> std::collections::HashSet<String> {
        self.deliveries()
            .iter()
            .filter(|d| d.event == "item.created")
            .filter_map(|d| d.body["item"].as_str().map(str::to_string))
            .collect()
    }
}

async fn receive(
    inbox: &Mutex<Inbox>,
    release: &tokio::sync::Notify,
    headers: &HeaderMap,
    body: &Bytes,
) -> AxumStatus {
    // Registered before the flag is read, so a release in between is not missed.
    let released = release.notified();
    tokio::pin!(released);
    released.as_mut().enable();
    let holding = {
        let mut inbox = inbox.lock().unwrap();
        if inbox.holding {
            inbox.held += 1;
        }
        inbox.holding
    };
    if holding {
        // Held until released (or long past any sender's patience).
        let _ = tokio::time::timeout(Duration::from_secs(30), released).await;
        inbox.lock().unwrap().held -= 1;
        return AxumStatus::SERVICE_UNAVAILABLE;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let key = header("tandem-delivery");
    let mut inbox = inbox.lock().unwrap();
    let signed = inbox.secret.as_deref().is_some_and(|secret| {
        tandem_integrations::webhooks::verify(
            secret,
            &header("tandem-signature"),
            body,
            chrono::Utc::now(),
            Duration::from_secs(300),
        )
        .is_ok()
    });
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    *inbox.per_key.entry(key.clone()).or_default() += 1;
    inbox.deliveries.push(Delivery { key, event: header("tandem-event"), body, signed });
    AxumStatus::OK
}
