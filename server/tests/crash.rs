#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Crash safety, on both backends: under continuous creation load, with webhook deliveries in
//! flight, the server is killed with SIGKILL and started again on the same database. Every item
//! whose creation was acknowledged (201) exists, numbers stay gap-free, and no job is lost:
//! the relay resumes from its cursor, the killed process's leased deliveries are reclaimed once
//! their lease expires, and every item's `item.created` reaches the receiver.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ADMIN, Backend, Db, Http, Receiver, eventually, start, type_id};
use reqwest::StatusCode;
use serde_json::json;

/// A short lease, so the killed process's jobs come back quickly.
const FLAGS: &[&str] = &[
    "--workers",
    "4",
    "--job-lease-secs",
    "3",
    "--job-timeout-secs",
    "2",
    "--job-poll-ms",
    "100",
    "--allow-private-webhooks",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_sqlite_server_loses_nothing_acknowledged() {
    killed_server_loses_nothing_acknowledged(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_postgres_server_loses_nothing_acknowledged() {
    killed_server_loses_nothing_acknowledged(Backend::Postgres).await;
}

async fn killed_server_loses_nothing_acknowledged(backend: Backend) {
    let Some(db) = Db::new(backend).await else { return };
    let server = start(&db.arg, Some(ADMIN), FLAGS).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Crash"}), StatusCode::CREATED).await;
    let ticket_type = type_id(&http.get("/item-types").await, "ticket");
    let receiver = Receiver::start().await;
    let hook = http
        .post("/webhooks", json!({"url": receiver.url, "events": ["item.created"]}), StatusCode::CREATED)
        .await;
    receiver.set_secret(hook["secret"].as_str().unwrap());
    // A slow receiver: deliveries hang until released, so some are in flight — claimed, leased,
    // unrecorded — when the server dies.
    receiver.hold();

    let acknowledged_so_far = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (http, ticket_type, count) = (http.clone(), ticket_type.clone(), acknowledged_so_far.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                match http.try_create(&ticket_type, &format!("writer {w} item {i}")).await {
                    Some(made) => {
                        acknowledged.push(made);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    None => return acknowledged,
                }
            }
            acknowledged
        }));
    }
    eventually("load and deliveries in flight", Duration::from_secs(60), || {
        let ready = acknowledged_so_far.load(Ordering::SeqCst) >= 150 && receiver.held() > 0;
        async move { ready.then_some(()) }
    })
    .await;
    server.kill().await;
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    receiver.release();

    let server = start(&db.arg, Some(ADMIN), FLAGS).await;
    let http = Http::new(&server, ADMIN);
    let stored = http.items().await;
    let stored_numbers: Vec<i64> = stored.iter().map(|i| i["number"].as_i64().unwrap()).collect();
    let stored_ids: HashSet<String> = stored.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    let lost: Vec<_> = acknowledged.iter().filter(|(_, id)| !stored_ids.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert_eq!(stored_numbers, (1..=stored.len() as i64).collect::<Vec<_>>(), "numbers stay gap-free");

    // Every stored item's creation is delivered: nothing relayed or leased by the dead process
    // was lost.
    let stored_ids = &stored_ids;
    eventually("a delivery for every stored item", Duration::from_secs(180), || {
        let delivered = receiver.created_items();
        async move { stored_ids.is_subset(&delivered).then_some(()) }
    })
    .await;
    let jobs = eventually("every delivery job to be done", Duration::from_secs(60), || {
        let http = http.clone();
        async move {
            let jobs = http.jobs("webhook.deliver").await;
            jobs.iter().all(|j| j["state"] == "done").then_some(jobs)
        }
    })
    .await;
    assert_eq!(jobs.len(), stored.len(), "one delivery job per stored item");
    let reclaimed = jobs.iter().filter(|j| j["attempts"].as_u64() > Some(1)).count();
    eprintln!(
        "{backend:?}: {} acknowledged, {} stored, {} deliveries ({} repeats), {reclaimed} jobs ran more than once",
        acknowledged.len(),
        stored.len(),
        receiver.deliveries().len(),
        receiver.repeats()
    );
    assert!(reclaimed > 0, "the deliveries in flight at the crash were run again");
    assert!(receiver.deliveries().iter().all(|d| d.signed));
    assert!(server.stop().await.success());
}
