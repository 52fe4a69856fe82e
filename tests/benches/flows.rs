//! Flow runs per second end to end on SQLite: items are created (their `item.created` events
//! are the triggers), then the flow scheduler turns the events into runs and the engine runs
//! each run's built-in steps (add a message, update a field), every step recorded in the run
//! history — all committed. Prints the figures; checks only that every event became a run.
//!
//! `cargo bench -p tandem-tests --bench flows`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_core::commands::{CreateFlow, CreateItem, CreateItemType, CreateWorkspace};
use tandem_core::flows::{FLOW_RUN_JOB, FlowSpec};
use tandem_core::ids::FixedClock;
use tandem_core::*;
use tandem_integrations::{Egress, FlowEngine};

const RUNS: usize = 400;
const WORKERS: usize = 4;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(
            tandem_storage_sqlite::SqliteStore::open(dir.path().join("bench.db"), Default::default()).expect("store"),
        );
        let desk = Desk::new(store, Arc::new(FixedClock(chrono::Utc::now())), Arc::new(SequentialIds::default()), Limits::default());
        let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
        let ws = desk.execute(&boot, &CreateWorkspace { name: "Bench".into() }).await.expect("workspace");
        let admin = Actor::server_admin(ws.id);
        let t: CreateItemType = serde_json::from_value(json!({"name": "Support", "kind": "ticket"})).expect("type");
        let t = desk.execute(&admin, &t).await.expect("item type");
        let spec = FlowSpec::from_json(&json!({
            "name": "Acknowledge",
            "trigger": {"type": "event", "on": {"type": "item_created"}},
            "filters": {"field": "trigger.item.title", "op": "starts_with", "value": "Bench"},
            "steps": [
                {"type": "add_message", "item": "{{trigger.item.number}}", "body": "Thanks, we have {{trigger.item.title}}"},
                {"type": "update_field", "item": "{{trigger.item.id}}", "field": "priority", "value": "high"}
            ]
        }))
        .expect("flow");
        desk.execute(&admin, &CreateFlow { spec, enabled: true }).await.expect("create flow");
        for i in 0..RUNS {
            desk.execute(&admin, &CreateItem::new(t.id, format!("Bench item {i}"))).await.expect("item");
        }
        let engine =
            Arc::new(FlowEngine::new(desk.clone(), None, Egress::default(), Duration::from_secs(5)).expect("engine"));

        let started = Instant::now();
        let scheduled = tandem_integrations::flows::schedule(&desk, 200).await.expect("schedule");
        let relayed = started.elapsed();
        assert_eq!(scheduled, RUNS, "every event became a run");
        let now = chrono::Utc::now();
        let jobs = desk
            .store()
            .claim_jobs(&[FLOW_RUN_JOB.to_string()], RUNS, now, now + chrono::Duration::minutes(10))
            .await
            .expect("claim");
        let jobs = Arc::new(std::sync::Mutex::new(jobs));
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let (engine, jobs) = (engine.clone(), jobs.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let next = jobs.lock().expect("jobs").pop();
                    let Some(job) = next else { break };
                    engine.run(&job).await.expect("run");
                }
            }));
        }
        for w in workers {
            w.await.expect("worker");
        }
        let total = started.elapsed();
        println!("flows: {RUNS} events → runs (relay, one commit per 200 events): {:>8.1} ms", relayed.as_secs_f64() * 1e3);
        println!(
            "flows: {RUNS} runs × 2 built-in steps, {WORKERS} workers, end to end: {:>8.1} ms = {:>7.1} runs/s ({:.2} ms/run)",
            total.as_secs_f64() * 1e3,
            RUNS as f64 / total.as_secs_f64(),
            total.as_secs_f64() * 1e3 / RUNS as f64
        );
    });
}
