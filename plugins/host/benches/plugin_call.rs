#![allow(clippy::unwrap_used, clippy::print_stdout)] // A benchmark prints its figures and fails loudly.

//! Instantiate + call overhead of a plugin action: a fresh sandbox per call (pooling allocator,
//! pre-linked component), the `echo` action of the fixture plugin. Prints p50/p99 and calls/s.
//!
//!     cargo bench -p tandem-plugin-host --bench plugin_call
//!
//! Target: p50 ≤ 50 µs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_plugin_host::{HostConfig, Installation, Invocation, MemoryState, PluginHost};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let Some(wasm) = common::wasm("tandem-fixture-misbehave") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let host = PluginHost::new(HostConfig::default()).unwrap();
        let started = Instant::now();
        let component = host.load(&wasm).unwrap();
        println!("compile + link ({} KiB): {:?}", wasm.len() / 1024, started.elapsed());
        let installation = Installation {
            id: "bench".into(),
            component,
            allowed_hosts: vec![],
            credentials: vec![],
            config: json!({}),
            state: Arc::new(MemoryState::default()),
        };
        let ctx = Invocation { run_id: "r".into(), attempt: 1, idempotency_key: "k".into() };
        let input = json!({ "title": "Printer on fire" });
        for _ in 0..200 {
            host.run_action(&installation, "echo", &input, &ctx).await.unwrap();
        }
        let n = 5000;
        let mut times = Vec::with_capacity(n);
        let all = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            host.run_action(&installation, "echo", &input, &ctx).await.unwrap();
            times.push(t.elapsed());
        }
        let total = all.elapsed();
        times.sort();
        println!(
            "instantiate + call (echo), {n} calls: p50 {:?}, p99 {:?}, max {:?}; {:.0} calls/s on one task",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times[n - 1],
            n as f64 / total.as_secs_f64()
        );
    });
}
