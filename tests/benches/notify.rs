//! Mail notifications enqueued per second: `NotifyFollowers` reading a backlog of public
//! messages on items with a requester, two followers and an assignee (three mails per event, the
//! author excluded), writing the `mail.send` jobs and the cursor in one commit per batch of 200.
//! SQLite with durable commits. Prints figures; asserts nothing.
//!
//! `cargo bench -p tandem-tests --bench notify`; `TANDEM_BENCH_EVENTS` (default 5000).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // A benchmark reports on stdout and may fail loudly.

use std::sync::Arc;
use std::time::Instant;

use tandem_core::commands::NotifyFollowers;
use tandem_core::*;
use tandem_tests::fixture::{desk, insert, workspace};

#[tokio::main]
async fn main() {
    let events: usize =
        std::env::var("TANDEM_BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        tandem_storage_sqlite::SqliteStore::open(dir.path().join("bench.db"), Default::default()).unwrap(),
    );
    let ws = workspace(store.as_ref(), "bench").await;
    insert(store.as_ref(), &ws, ws.mail_settings(&["it@desk.example"])).await;
    let customer = insert(store.as_ref(), &ws, ws.user("Maria", Role::Customer)).await;
    let partner = insert(store.as_ref(), &ws, ws.user("Chris", Role::Customer)).await;
    let manager = insert(store.as_ref(), &ws, ws.user("Max", Role::Manager)).await;
    let agent = insert(store.as_ref(), &ws, ws.user("Ana", Role::Agent)).await;
    let mut items = Vec::new();
    for n in 0..50 {
        let mut item = ws.item(&format!("Printer {n} jams"));
        item.requester = Some(customer.id);
        item.followers = vec![customer.id, partner.id, manager.id];
        item.assignees = vec![Assignee::User(agent.id)];
        items.push(insert(store.as_ref(), &ws, item).await);
    }
    // The backlog: public messages by the agent, 100 per commit.
    for chunk in 0..events.div_ceil(100) {
        let mut changes = ws.changes();
        changes.actor = ActorRef::User(agent.id);
        for n in 0..100.min(events - chunk * 100) {
            let item = &items[(chunk * 100 + n) % items.len()];
            let mut m = ws.message(item, "We replaced the roller; please try again.", Visibility::Public);
            m.author = ActorRef::User(agent.id);
            changes.event(
                Some(item.id),
                EventData::MessagePosted {
                    message: m.id,
                    visibility: m.visibility,
                    channel: m.channel,
                    mentions: vec![],
                },
            );
            changes.insert(Record::Message(m));
        }
        store.commit(changes).await.unwrap();
    }
    let (desk, _) = desk(store.clone());
    let system = Actor::system(ws.id);
    let notify = NotifyFollowers { batch: 200, max_attempts: 8 };
    let start = Instant::now();
    let (mut seen, mut mails) = (0, 0);
    loop {
        let done = desk.execute(&system, &notify).await.unwrap();
        seen += done.events;
        mails += done.mails;
        if !done.more {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "notifications (SQLite): {seen} events → {mails} mail jobs in {secs:.2} s: {:.0} events/s, {:.0} mails enqueued/s",
        seen as f64 / secs,
        mails as f64 / secs
    );
}
