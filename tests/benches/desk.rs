//! Throughput of item creation through `Desk` (load → check → decide → commit) on each backend,
//! with durable commits. Prints figures; asserts nothing.
//!
//! `cargo bench -p tandem-tests --bench desk`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::commands::{CreateItem, CreateWorkspace};
use tandem_core::ids::FixedClock;
use tandem_core::*;

async fn create_items(
    desk: Arc<Desk>,
    actor: Actor,
    item_type: ItemTypeId,
    clients: usize,
    run_for: Duration,
) -> (u64, f64) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (desk, actor) = (desk.clone(), actor.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < run_for {
                let mut cmd =
                    CreateItem::new(item_type, format!("Printer on floor {c} is jammed again ({n})"));
                cmd.description = "Paper tray makes a grinding noise; tried reseating the tray.".into();
                desk.execute(&actor, &cmd).await.expect("create item");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client task");
    }
    (total, total as f64 / start.elapsed().as_secs_f64())
}

async fn bench(name: &str, store: Arc<dyn Store>) {
    let desk = Arc::new(Desk::new(
        store,
        Arc::new(FixedClock(chrono::Utc::now())),
        Arc::new(SequentialIds::default()),
        Limits::default(),
    ));
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Bench".into() }).await.expect("workspace");
    let actor = Actor::server_admin(ws.id);
    let types: Vec<ItemType> = desk.directory(&actor, &store::RecordQuery::all()).await.expect("types");
    let ticket = types.iter().find(|t| t.kind == ItemKind::Ticket).expect("ticket type").id;
    for clients in [1, 8, 64] {
        let (n, rate) =
            create_items(desk.clone(), actor.clone(), ticket, clients, Duration::from_secs(4)).await;
        println!(
            "{name:<8} Desk create item, {clients:>2} concurrent clients: {rate:>8.0} items/s ({n} items)"
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tandem_storage_sqlite::SqliteStore::open(dir.path().join("bench.db"), Default::default())
            .expect("sqlite");
        bench("sqlite", Arc::new(store)).await;
    });
}
