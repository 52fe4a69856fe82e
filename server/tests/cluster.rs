#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Two real `tandem serve` processes on one PostgreSQL database, both relaying events and
//! running jobs. Items created through both at once are numbered 1..N without gaps or repeats,
//! and every item's `item.created` webhook is delivered, exactly once in effect: one job per
//! delivery key, each done once, and the receiver sees every key.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use common::{ADMIN, Backend, Db, Http, Receiver, eventually, start, type_id};
use reqwest::StatusCode;
use serde_json::json;

const ITEMS: usize = 120;

const FLAGS: &[&str] =
    &["--workers", "4", "--job-poll-ms", "100", "--allow-private-webhooks", "--pool-size", "8"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_deliver_every_webhook_once_in_effect() {
    let Some(db) = Db::new(Backend::Postgres).await else { return };
    let (a, b) = tokio::join!(start(&db.arg, Some(ADMIN), FLAGS), start(&db.arg, Some(ADMIN), FLAGS));
    let (via_a, via_b) = (Http::new(&a, ADMIN), Http::new(&b, ADMIN));
    via_a.post("/workspaces", json!({"name": "Cluster"}), StatusCode::CREATED).await;
    let ticket_type = type_id(&via_b.get("/item-types").await, "ticket");

    let receiver = Receiver::start().await;
    let hook = via_b
        .post("/webhooks", json!({"url": receiver.url, "events": ["item.created"]}), StatusCode::CREATED)
        .await;
    receiver.set_secret(hook["secret"].as_str().unwrap());

    // Eight clients, alternating servers, create the items concurrently.
    let mut clients = Vec::new();
    for c in 0..8 {
        let http = if c % 2 == 0 { via_a.clone() } else { via_b.clone() };
        let ticket_type = ticket_type.clone();
        clients.push(tokio::spawn(async move {
            let mut made = Vec::new();
            for i in (c..ITEMS).step_by(8) {
                let created = http.try_create(&ticket_type, &format!("request {i}")).await;
                made.push(created.unwrap_or_else(|| panic!("item {i} was not acknowledged")));
            }
            made
        }));
    }
    let mut created: HashMap<String, i64> = HashMap::new();
    for client in clients {
        created.extend(client.await.unwrap().into_iter().map(|(n, id)| (id, n)));
    }
    let numbers: BTreeSet<i64> = created.values().copied().collect();
    assert_eq!(numbers, (1..=ITEMS as i64).collect(), "numbers are 1..N, each once");
    assert_eq!(
        via_b.item_numbers().await,
        (1..=ITEMS as i64).collect::<Vec<_>>(),
        "and that is what is stored"
    );

    // Every item's creation reaches the receiver.
    let wanted: HashSet<String> = created.keys().cloned().collect();
    let wanted = &wanted;
    eventually("every item.created delivery", Duration::from_secs(120), || {
        let delivered = receiver.created_items();
        async move { wanted.is_subset(&delivered).then_some(()) }
    })
    .await;
    // And every delivery job is recorded done.
    let jobs = eventually("every delivery job to be done", Duration::from_secs(60), || {
        let via_a = via_a.clone();
        async move {
            let jobs = via_a.jobs("webhook.deliver").await;
            jobs.iter().all(|j| j["state"] == "done").then_some(jobs)
        }
    })
    .await;

    let deliveries = receiver.deliveries();
    let keys: HashSet<&str> = deliveries.iter().map(|d| d.key.as_str()).collect();
    let job_keys: HashSet<&str> = jobs.iter().map(|j| j["idempotency_key"].as_str().unwrap()).collect();
    eprintln!(
        "{} deliveries for {} keys ({} repeats the key made harmless); {} jobs, attempts per job: {:?}",
        deliveries.len(),
        keys.len(),
        receiver.repeats(),
        jobs.len(),
        jobs.iter().map(|j| j["attempts"].as_u64().unwrap()).collect::<BTreeSet<_>>()
    );
    assert_eq!(keys.len(), ITEMS, "one distinct delivery key per item");
    assert_eq!(jobs.len(), ITEMS, "one job per delivery: no relay enqueued one twice");
    assert_eq!(job_keys, keys, "the receiver saw exactly the jobs' keys");
    let hook_id = hook["id"].as_str().unwrap();
    for d in &deliveries {
        assert_eq!(d.event, "item.created");
        assert!(d.signed, "a delivery's signature does not verify: {d:?}");
        assert_eq!(d.body["id"].as_str(), Some(d.key.as_str()));
        let seq = d.body["seq"].as_i64().unwrap();
        assert_eq!(d.key, format!("webhook:{hook_id}:{seq}"));
    }
    let delivered_items: HashSet<String> = receiver.created_items();
    assert_eq!(delivered_items, created.keys().cloned().collect::<HashSet<_>>());

    let (stopped_a, stopped_b) = tokio::join!(a.stop(), b.stop());
    assert!(stopped_a.success() && stopped_b.success(), "{stopped_a} {stopped_b}");
}
