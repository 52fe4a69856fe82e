//! Storage throughput, SQLite and PostgreSQL side by side: commits per second (an item-create
//! change set — item, event — through `Store::commit`) at 1 and 32 concurrent committers (on one
//! workspace, and spread over eight), and
//! job claims per second (claim + complete) with 8 concurrent workers claiming 1 or 16 at a time.
//! Durable settings on both (SQLite `synchronous=FULL`; PostgreSQL as configured). Prints figures;
//! asserts nothing.
//!
//! `cargo bench -p tandem-tests --bench storage`; `TANDEM_BENCH_SECS` (default 3) per figure.
//! PostgreSQL is the server named by `TANDEM_TEST_DATABASE_URL` (a fresh database per run).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // A benchmark reports on stdout and may fail loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tandem_core::{EventData, Record, Store};
use tandem_tests::fixture::{Ws, workspace};

fn seconds() -> Duration {
    Duration::from_secs(std::env::var("TANDEM_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3))
}

/// Item-create commits per second with `committers` concurrent committers, spread over the
/// workspaces given (commits to one workspace take its numbers in turn; different ones need not
/// wait for each other).
async fn commits(store: Arc<dyn Store>, workspaces: &[Ws], committers: usize) -> f64 {
    let run_for = seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..committers {
        let (store, ws) = (store.clone(), workspaces[c % workspaces.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < run_for {
                let mut changes = ws.changes();
                let item = ws.item(&format!("Printer on floor {c} is jammed again ({n})"));
                changes.event(Some(item.id), EventData::ItemUpdated { changes: vec![] });
                changes.insert(Record::Item(item));
                store.commit(changes).await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// Jobs claimed and completed per second by `workers` concurrent workers taking `per_claim` at a
/// time from a queue that never runs dry during the measurement.
async fn claims(store: Arc<dyn Store>, ws: &Ws, workers: usize, per_claim: usize) -> f64 {
    let kind = format!("bench.{workers}x{per_claim}");
    // Enough queued work for the run: enqueue in big commits, before the clock starts.
    let backlog = 60_000;
    for batch in 0..backlog / 1000 {
        let mut changes = ws.changes();
        for i in 0..1000 {
            let mut job = ws.job(&kind, &format!("{kind}:{batch}:{i}"));
            job.run_at = Utc::now() - chrono::Duration::seconds(1);
            changes.job(job);
        }
        store.commit(changes).await.unwrap();
    }
    let run_for = seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (store, kind) = (store.clone(), kind.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while start.elapsed() < run_for {
                let now = Utc::now();
                let jobs = store
                    .claim_jobs(
                        std::slice::from_ref(&kind),
                        per_claim,
                        now,
                        now + chrono::Duration::seconds(60),
                    )
                    .await
                    .unwrap();
                assert!(!jobs.is_empty(), "the backlog ran dry; raise it");
                for job in jobs {
                    assert!(store.complete_job(job.id, job.attempts, Utc::now()).await.unwrap());
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

const FIGURES: [&str; 5] = [
    "commits/s, 1 committer",
    "commits/s, 32 committers, 1 workspace",
    "commits/s, 32 committers, 8 workspaces",
    "job claims/s, 8 workers x 1 per claim",
    "job claims/s, 8 workers x 16 per claim",
];

async fn measure(store: Arc<dyn Store>) -> [f64; 5] {
    let ws = workspace(store.as_ref(), "Bench").await;
    let mut tenants = Vec::new();
    for i in 0..8 {
        tenants.push(workspace(store.as_ref(), &format!("Tenant {i}")).await);
    }
    [
        commits(store.clone(), std::slice::from_ref(&ws), 1).await,
        commits(store.clone(), std::slice::from_ref(&ws), 32).await,
        commits(store.clone(), &tenants, 32).await,
        claims(store.clone(), &ws, 8, 1).await,
        claims(store.clone(), &ws, 8, 16).await,
    ]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let sqlite = {
            let dir = tempfile::tempdir().unwrap();
            let store =
                tandem_storage_sqlite::SqliteStore::open(dir.path().join("bench.db"), Default::default())
                    .unwrap();
            let figures = measure(Arc::new(store)).await;
            drop(dir);
            figures
        };
        let postgres = match tandem_tests::backends::postgres_database().await {
            Some(database) => {
                let options =
                    tandem_storage_postgres::PostgresOptions { max_connections: 40, ..Default::default() };
                let store =
                    tandem_storage_postgres::PostgresStore::connect_with(database.connect_options(), options)
                        .await
                        .unwrap();
                let store = Arc::new(store);
                let figures = measure(store.clone()).await;
                store.close().await;
                Some(figures)
            }
            None => None,
        };
        println!("storage throughput, {} s per figure", seconds().as_secs());
        println!("{:<40} {:>10} {:>10} {:>16}", "", "sqlite", "postgres", "postgres/sqlite");
        for (i, name) in FIGURES.iter().enumerate() {
            match &postgres {
                Some(pg) => {
                    println!("{name:<40} {:>10.0} {:>10.0} {:>15.2}x", sqlite[i], pg[i], pg[i] / sqlite[i])
                }
                None => println!("{name:<40} {:>10.0} {:>10} {:>16}", sqlite[i], "-", "-"),
            }
        }
    });
}
