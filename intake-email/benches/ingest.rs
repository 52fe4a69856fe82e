//! Messages ingested per second end to end — parse, classify, thread, store (raw message, record,
//! item or message, events) — through `Intake` and `Desk` on SQLite with durable commits.
//! Prints figures; asserts nothing.
//!
//! `cargo bench -p tandem-intake-email --bench ingest`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tandem_core::commands::{ConfigureMail, CreateWorkspace};
use tandem_core::ids::FixedClock;
use tandem_core::mail::{InboundAddress, MailTransport};
use tandem_core::store::{RecordQuery, list};
use tandem_core::*;
use tandem_intake_email::{Delivery, Envelope, Intake, IntakeLimits, ReplyKey};

/// Realistic messages from the corpus, each sent with a fresh Message-ID; every second one
/// replies to an earlier message (threads by References).
const SAMPLES: &[&str] = &[
    "gmail-new.eml",
    "outlook-new.eml",
    "apple-mail-inline-image.eml",
    "thunderbird-pdf.eml",
    "shift-jis.eml",
    "nested-multipart.eml",
    "qp-soft-breaks.eml",
    "windows-1252-subject.eml",
];

fn sample(name: &str) -> String {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    String::from_utf8_lossy(&std::fs::read(&path).expect("corpus file")).into_owned()
}

/// The message with its Message-ID replaced (and, for replies, an In-Reply-To added).
fn variant(base: &str, n: u64, reply_to: Option<u64>) -> Vec<u8> {
    let mut out = String::with_capacity(base.len() + 200);
    let mut replaced = false;
    for line in base.split_inclusive('\n') {
        let lower = line.to_ascii_lowercase();
        if !replaced && lower.starts_with("message-id:") {
            out.push_str(&format!("Message-ID: <bench-{n}@club.example>\r\n"));
            if let Some(r) = reply_to {
                out.push_str(&format!("In-Reply-To: <bench-{r}@club.example>\r\n"));
            }
            replaced = true;
        } else if lower.starts_with("in-reply-to:") || lower.starts_with("references:") {
            continue;
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

async fn run(intake: Arc<Intake>, clients: u64, run_for: Duration, next: Arc<AtomicU64>) -> (u64, f64) {
    let samples: Arc<Vec<String>> = Arc::new(SAMPLES.iter().map(|s| sample(s)).collect());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (intake, samples, next) = (intake.clone(), samples.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let envelope = Envelope {
                transport: MailTransport::Smtp,
                mail_from: None,
                recipients: vec!["it@desk.example".into()],
            };
            while start.elapsed() < run_for {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let reply_to = (n % 2 == 1 && n > 8).then(|| n - 7);
                let raw = variant(&samples[(n as usize) % samples.len()], n, reply_to);
                let results = intake.deliver(raw, &envelope).await;
                assert!(matches!(results[0].1, Delivery::Stored(_)), "{results:?}");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client task");
    }
    (total, total as f64 / start.elapsed().as_secs_f64())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tandem_storage_sqlite::SqliteStore::open(dir.path().join("bench.db"), Default::default())
            .expect("sqlite");
        let desk = Desk::new(
            Arc::new(store),
            Arc::new(FixedClock(chrono::Utc::now())),
            Arc::new(tandem_tests::fixture::TestIds),
            Limits::default(),
        );
        let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
        let ws = desk.execute(&boot, &CreateWorkspace { name: "Bench".into() }).await.expect("workspace");
        let admin = Actor::server_admin(ws.id);
        let types: Vec<ItemType> = list(desk.store().as_ref(), ws.id, &RecordQuery::all()).await.expect("types");
        desk.execute(&admin, &ConfigureMail {
            addresses: Some(vec![InboundAddress { address: "it@desk.example".into(), item_type: types[0].id }]),
            ..Default::default()
        })
        .await
        .expect("mail settings");
        let intake = Arc::new(Intake::new(desk, ReplyKey::new([1; 32]), "bench", IntakeLimits::default()));
        let next = Arc::new(AtomicU64::new(0));
        for clients in [1, 8, 32] {
            let (n, rate) = run(intake.clone(), clients, Duration::from_secs(4), next.clone()).await;
            println!("sqlite   email ingest (parse + thread + store), {clients:>2} concurrent deliveries: {rate:>7.0} messages/s ({n} messages)");
        }
    });
}
