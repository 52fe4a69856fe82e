//! Items created per second over HTTP: the router on a real TCP listener, a durable SQLite
//! database (default settings: WAL, `synchronous=FULL`, group commit), and many keep-alive
//! clients creating tickets as an agent for a few seconds.
//!
//! `cargo bench -p tandem-server --bench http_create`; tune with `TANDEM_BENCH_CLIENTS`
//! (default 48) and `TANDEM_BENCH_SECS` (default 5).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // A benchmark reports on stdout and may fail loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

const ADMIN: &str = "tdm_benchmark_admin_token";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Value {
    let response = client.post(url).bearer_auth(token).json(body).send().await.unwrap();
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::main]
async fn main() {
    let clients = env_or("TANDEM_BENCH_CLIENTS", 48) as usize;
    let seconds = env_or("TANDEM_BENCH_SECS", 5);

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"), SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    post(&client, &format!("{base}/workspaces"), ADMIN, &json!({"name": "Bench"})).await;
    let agent = post(
        &client,
        &format!("{base}/users"),
        ADMIN,
        &json!({"name": "Bench Agent", "email": "agent@bench.example", "role": "agent"}),
    )
    .await;
    let token = post(
        &client,
        &format!("{base}/users/{}/tokens", agent["id"].as_str().unwrap()),
        ADMIN,
        &json!({"name": "bench", "scope": "write"}),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let types = client.get(format!("{base}/item-types")).bearer_auth(&token).send().await.unwrap();
    let types: Value = types.json().await.unwrap();
    let ticket = types.as_array().unwrap().iter().find(|t| t["kind"] == "ticket").unwrap()["id"].clone();

    // Warm up connections and caches, then measure.
    let run = |duration: Duration| {
        let (client, base, token, ticket) = (client.clone(), base.clone(), token.clone(), ticket.clone());
        async move {
            let deadline = Instant::now() + duration;
            let mut tasks = Vec::new();
            for c in 0..clients {
                let (client, url, token, ticket) =
                    (client.clone(), format!("{base}/items"), token.clone(), ticket.clone());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let body = json!({
                            "item_type": ticket,
                            "title": format!("Client {c} request {i}"),
                            "description": "The receipt printer at till 2 prints blank pages since this morning.",
                            "priority": "high",
                        });
                        let started = Instant::now();
                        let response = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
                        response.bytes().await.unwrap();
                        latencies.push(started.elapsed());
                        i += 1;
                    }
                    latencies
                }));
            }
            let started = Instant::now();
            let mut latencies = Vec::new();
            for t in tasks {
                latencies.extend(t.await.unwrap());
            }
            (latencies, started.elapsed())
        }
    };
    run(Duration::from_secs(1)).await;
    let (mut latencies, elapsed) = run(Duration::from_secs(seconds)).await;
    latencies.sort();
    let n = latencies.len();
    let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "http_create: {n} items in {:.2} s = {:.0} items/s over HTTP ({clients} keep-alive clients, durable SQLite); \
         latency p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}
