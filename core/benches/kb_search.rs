//! Knowledge base search speed: ranking in memory over the articles a reader may see (the choice
//! `core/src/kb` makes instead of a full-text index). 2,000 articles of ~300 words each — a large
//! help centre — searched with one- to three-word queries. Prints p50/p99 per query and queries
//! per second. Asserts nothing.
//!
//! `cargo bench -p tandem-core --bench kb_search`

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tandem_core::kb::{KbArticle, KbReader, KbVisibility, search};
use tandem_core::{KbArticleId, WorkspaceId};

const WORDS: &[&str] = &[
    "pump",
    "filter",
    "pond",
    "water",
    "clean",
    "replace",
    "warranty",
    "order",
    "invoice",
    "delivery",
    "koi",
    "liner",
    "heater",
    "winter",
    "spring",
    "algae",
    "uv",
    "clarifier",
    "skimmer",
    "fountain",
    "password",
    "account",
    "printer",
    "network",
    "shipping",
    "return",
    "refund",
    "store",
    "hours",
    "setup",
];

fn article(n: u64, rng: &mut u64) -> KbArticle {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let title: Vec<&str> = (0..5).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
    let text: Vec<&str> = (0..300).map(|_| WORDS[(next() % WORDS.len() as u64) as usize]).collect();
    let at = DateTime::<Utc>::from_timestamp(1_700_000_000 + n as i64, 0).unwrap_or_default();
    KbArticle {
        id: KbArticleId(uuid::Uuid::from_u128(u128::from(n))),
        workspace_id: WorkspaceId(uuid::Uuid::from_u128(1)),
        category: None,
        title: title.join(" "),
        html: String::new(),
        text: text.join(" "),
        visibility: if n.is_multiple_of(4) { KbVisibility::Internal } else { KbVisibility::Public },
        published: true,
        author: None,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

fn main() {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let all: Vec<KbArticle> = (0..2_000).map(|n| article(n, &mut rng)).collect();
    let queries = ["pump", "filter winter", "koi heater algae", "refund shipping", "zzz"];
    let mut times: Vec<Duration> = Vec::new();
    let started = Instant::now();
    for round in 0..200 {
        let q = queries[round % queries.len()];
        let t = Instant::now();
        // What `Desk::kb_search` does after reading the kind: visibility, then ranking.
        let visible: Vec<KbArticle> =
            all.iter().filter(|a| KbReader::Anonymous.may_read(a)).cloned().collect();
        let hits = search(visible, q, 20);
        times.push(t.elapsed());
        std::hint::black_box(hits);
    }
    let total = started.elapsed();
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "kb search over 2,000 articles (1,500 visible): p50 {:?}, p99 {:?}, {:.0} queries/s",
        p(0.5),
        p(0.99),
        times.len() as f64 / total.as_secs_f64()
    );
}
