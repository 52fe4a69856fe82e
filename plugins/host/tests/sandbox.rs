#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The sandbox against real plugins built from source: every way a plugin can misbehave fails
//! its own call with a clear reason, and the host goes on serving other calls.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};
use tandem_integrations::Egress;
use tandem_plugin_host::{
    Credential, HostConfig, Installation, Invocation, LoadError, MemoryState, PluginError, PluginHost,
    StateStore, WebhookRequest,
};

const MISBEHAVE: &str = "tandem-fixture-misbehave";
const HTTP_JSON: &str = "tandem-example-http-json";

fn config() -> HostConfig {
    HostConfig {
        memory_limit: 32 << 20,
        timeout: Duration::from_millis(1500),
        max_output_bytes: 256 * 1024,
        max_http_calls: 3,
        max_response_bytes: 64 * 1024,
        http_timeout: Duration::from_millis(800),
        egress: Egress { allow_private: true },
        max_concurrent_calls: 16,
        max_log_lines: 5,
    }
}

struct Fixture {
    host: Arc<PluginHost>,
    installation: Installation,
}

fn fixture(package: &str, config: HostConfig) -> Option<Fixture> {
    let wasm = common::wasm(package)?;
    let host = Arc::new(PluginHost::new(config).unwrap());
    let component = host.load(&wasm).unwrap();
    let installation = Installation {
        id: "inst-1".into(),
        component,
        allowed_hosts: vec!["127.0.0.1".into()],
        credentials: vec![],
        config: json!({ "team": "northwind-it" }),
        state: Arc::new(MemoryState::default()),
    };
    Some(Fixture { host, installation })
}

fn ctx() -> Invocation {
    Invocation { run_id: "run-7".into(), attempt: 2, idempotency_key: "flow:1:run:7:step:0".into() }
}

async fn run(f: &Fixture, action: &str, input: Value) -> Result<Value, PluginError> {
    f.host.run_action(&f.installation, action, &input, &ctx()).await
}

fn fatal_containing(result: Result<Value, PluginError>, needle: &str) {
    match result {
        Err(PluginError::Fatal(message)) => assert!(message.contains(needle), "{message:?} lacks {needle:?}"),
        other => panic!("expected a fatal error mentioning {needle:?}, got {other:?}"),
    }
}

/// A loopback HTTP server: `/ok` answers JSON, `/headers` echoes the request's headers,
/// `/big` answers 128 KiB, `/slow` takes 5 s.
async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { axum::Json(json!({ "ok": true })) }))
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let map: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), Value::String(v.to_str().unwrap_or_default().to_string())))
                    .collect();
                axum::Json(Value::Object(map))
            }),
        )
        .route("/big", get(|| async { "y".repeat(128 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_well_behaved_call_sees_its_input_config_and_context() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    let out = run(&f, "echo", json!({ "title": "Printer on fire" })).await.unwrap();
    assert_eq!(out["input"], json!({ "title": "Printer on fire" }));
    assert_eq!(out["config"], json!({ "team": "northwind-it" }));
    assert_eq!(
        out["ctx"],
        json!({ "installation": "inst-1", "run": "run-7", "attempt": 2, "key": "flow:1:run:7:step:0" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_endless_loop_is_stopped_at_the_deadline_while_other_calls_go_on() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    let f = Arc::new(f);
    let looping = {
        let f = f.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (run(&f, "loop", json!({})).await, started.elapsed())
        })
    };
    // While it spins, other calls on the same host finish promptly.
    let mut served = 0;
    while !looping.is_finished() {
        let started = Instant::now();
        run(&f, "echo", json!(1)).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(1000), "echo took {:?}", started.elapsed());
        served += 1;
    }
    assert!(served >= 5, "only {served} calls were served while the loop ran");
    let (result, took) = looping.await.unwrap();
    match result {
        Err(PluginError::Retryable(m)) => assert!(m.contains("time limit of 1500 ms"), "{m}"),
        other => panic!("expected a time-limit error, got {other:?}"),
    }
    assert!(took >= Duration::from_millis(1400) && took < Duration::from_secs(4), "stopped after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unbounded_allocation_hits_the_memory_cap() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    fatal_containing(run(&f, "alloc", json!({})).await, "the limit is 32 MiB");
    // The host is unaffected.
    run(&f, "echo", json!(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_starts_from_a_fresh_instance() {
    // Instances reuse pooled memory slots that are reset, not unmapped, between calls: nothing a
    // call wrote (statics, heap, memory it grew) may reach the next one.
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    for i in 0..40 {
        let out = run(&f, "remember", json!({ "note": format!("call {i} was here") })).await.unwrap();
        assert_eq!(out, json!({ "calls_before": 0, "seen": 0 }), "call {i}");
        if i % 10 == 0 {
            fatal_containing(run(&f, "alloc", json!({})).await, "the limit is 32 MiB");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_is_a_crash_with_the_message_in_the_log() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    let outcome = f.host.call_action(&f.installation, "trap", &json!({}), &ctx()).await;
    match &outcome.result {
        Err(PluginError::Fatal(m)) => assert!(m.contains("the plugin crashed"), "{m}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(
        outcome.log.iter().any(|l| l.message.contains("misbehave: told to panic")),
        "the panic message is in the run log: {:?}",
        outcome.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_that_is_not_json_or_too_large_is_refused() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    fatal_containing(run(&f, "garbage", json!({})).await, "not JSON");
    fatal_containing(run(&f, "huge", json!({ "bytes": 300_000 })).await, "the limit is 262144");
    assert_eq!(run(&f, "huge", json!({ "bytes": 10 })).await.unwrap(), json!("xxxxxxxxxx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plugin_errors_keep_their_class() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    let table = [
        ("retryable", PluginError::Retryable("try later".into())),
        (
            "rate-limited",
            PluginError::RateLimited {
                retry_after: Duration::from_millis(1500),
                message: "slow down".into(),
            },
        ),
        ("auth", PluginError::Auth("token revoked".into())),
        ("invalid-input", PluginError::InvalidInput("no such thing".into())),
        ("fatal", PluginError::Fatal("broken".into())),
    ];
    for (class, expected) in table {
        let got = run(&f, "fail", json!({ "class": class })).await.unwrap_err();
        assert_eq!(got, expected);
        assert_eq!(got.class(), class);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_outside_the_allow_list_or_to_private_addresses_are_refused() {
    let addr = server().await;
    // Not on the allow-list.
    let Some(mut f) = fixture(MISBEHAVE, config()) else { return };
    f.installation.allowed_hosts = vec!["api.example.com".into()];
    fatal_containing(
        run(&f, "fetch", json!({ "url": format!("http://{addr}/ok") })).await,
        "127.0.0.1 is not among the hosts this plugin may call (api.example.com)",
    );
    // On the allow-list, but loopback, and the operator has not allowed private addresses.
    let Some(f) = fixture(MISBEHAVE, HostConfig { egress: Egress::default(), ..config() }) else { return };
    fatal_containing(run(&f, "fetch", json!({ "url": format!("http://{addr}/ok") })).await, "loopback");
    // A name that resolves inward is refused too.
    let Some(mut f) = fixture(MISBEHAVE, HostConfig { egress: Egress::default(), ..config() }) else {
        return;
    };
    f.installation.allowed_hosts = vec!["localhost".into()];
    fatal_containing(
        run(&f, "fetch", json!({ "url": format!("http://localhost:{}/ok", addr.port()) })).await,
        "loopback",
    );
    // Other schemes never.
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    fatal_containing(run(&f, "fetch", json!({ "url": "file:///etc/passwd" })).await, "only http and https");
    // Allowed: it goes through.
    assert_eq!(
        run(&f, "fetch", json!({ "url": format!("http://{addr}/ok") })).await.unwrap(),
        json!({ "status": 200 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_call_budget_size_cap_and_timeout_hold() {
    let addr = server().await;
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    let url = format!("http://{addr}/ok");
    assert_eq!(
        run(&f, "fetch-many", json!({ "url": url, "times": 3 })).await.unwrap(),
        json!({ "fetched": 3 })
    );
    fatal_containing(
        run(&f, "fetch-many", json!({ "url": url, "times": 4 })).await,
        "more than 3 HTTP requests",
    );
    fatal_containing(
        run(&f, "fetch", json!({ "url": format!("http://{addr}/big") })).await,
        "over 65536 bytes",
    );
    let started = Instant::now();
    match run(&f, "fetch", json!({ "url": format!("http://{addr}/slow") })).await {
        Err(PluginError::Retryable(m)) => assert!(m.contains("no answer in time"), "{m}"),
        other => panic!("expected a retryable timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credentials_are_injected_by_the_host_and_cannot_be_forged() {
    let addr = server().await;
    let Some(mut f) = fixture(MISBEHAVE, config()) else { return };
    f.installation.credentials = vec![Credential {
        host: "127.0.0.1".into(),
        header: "Authorization".into(),
        value: "Bearer host-secret".into(),
    }];
    let seen = run(&f, "fetch-headers", json!({ "url": format!("http://{addr}/headers") })).await.unwrap();
    assert_eq!(seen["authorization"], "Bearer host-secret");
    // Without a credential for the host, the plugin's own header goes out.
    f.installation.credentials[0].host = "api.example.com".into();
    let seen = run(&f, "fetch-headers", json!({ "url": format!("http://{addr}/headers") })).await.unwrap();
    assert_eq!(seen["authorization"], "Bearer forged-by-plugin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_is_per_installation_with_compare_and_swap() {
    let Some(mut f) = fixture(MISBEHAVE, config()) else { return };
    let state: Arc<dyn StateStore> = Arc::new(MemoryState::default());
    f.installation.state = state.clone();
    let f = Arc::new(f);
    // Concurrent increments all land (compare-and-swap retries on conflict).
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move { run(&f, "count", json!({})).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(state.get("inst-1", "count").await.unwrap().unwrap().value, "6");
    let mut other = f.installation.clone();
    other.id = "inst-2".into();
    let out = f.host.run_action(&other, "count", &json!({}), &ctx()).await.unwrap();
    assert_eq!(out, json!({ "count": 1, "version": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wasi_is_locked_down_and_logs_are_capped() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    assert_eq!(
        run(&f, "env", json!({})).await.unwrap(),
        json!({ "vars": 0, "file": false, "socket": false })
    );
    let outcome = f.host.call_action(&f.installation, "log", &json!({ "lines": 8 }), &ctx()).await;
    assert!(outcome.result.is_ok());
    let messages: Vec<&str> = outcome.log.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["line 0", "line 1", "line 2", "line 3", "line 4", "3 more log lines were dropped"]);
    let now = run(&f, "clock", json!({})).await.unwrap()["now_ms"].as_u64().unwrap();
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(real.abs_diff(now) < 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn triggers_poll_take_webhooks_and_subscribe() {
    let Some(f) = fixture(MISBEHAVE, config()) else { return };
    let first = f.host.poll(&f.installation, "counter", None, &ctx()).await.result.unwrap();
    assert_eq!(first.cursor.as_deref(), Some("1"));
    let next = f.host.poll(&f.installation, "counter", Some("41"), &ctx()).await.result.unwrap();
    assert_eq!(next.items[0].id, "42");
    assert_eq!(next.items[0].data, json!({ "n": 42 }));
    match f.host.poll(&f.installation, "bad-item", None, &ctx()).await.result {
        Err(PluginError::Fatal(m)) => assert!(m.contains("data is not JSON"), "{m}"),
        other => panic!("{other:?}"),
    }
    let request =
        WebhookRequest { method: "POST".into(), path: "/hook".into(), headers: vec![], body: b"hi".to_vec() };
    let items = f.host.handle_webhook(&f.installation, "hook", request, &ctx()).await.result.unwrap();
    assert_eq!(items[0].data, json!({ "body": "hi", "path": "/hook" }));
    let sub = f
        .host
        .subscribe(&f.installation, "hook", "https://tandem.example/hooks/1", &ctx())
        .await
        .result
        .unwrap();
    assert_eq!(sub, json!({ "target": "https://tandem.example/hooks/1" }));
    f.host.unsubscribe(&f.installation, "hook", &sub, &ctx()).await.result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loading_checks_bytes_and_caches_by_hash() {
    let Some(wasm) = common::wasm(MISBEHAVE) else { return };
    let host = PluginHost::new(config()).unwrap();
    assert!(matches!(host.load(b"not wasm at all"), Err(LoadError::Compile(_))));
    // A core module is not a component.
    assert!(matches!(host.load(b"\0asm\x01\0\0\0"), Err(LoadError::Compile(_))));
    let digest = PluginHost::digest(&wasm);
    assert!(matches!(host.load_checked(&wasm, &"0".repeat(64)), Err(LoadError::Checksum { .. })));
    assert!(!host.is_loaded(&digest));
    let started = Instant::now();
    assert_eq!(host.load_checked(&wasm, &digest).unwrap(), digest);
    let compiled = started.elapsed();
    let started = Instant::now();
    assert_eq!(host.load(&wasm).unwrap(), digest);
    assert!(
        started.elapsed() < compiled / 10,
        "the second load is a cache hit: {:?} vs {compiled:?}",
        started.elapsed()
    );
    host.unload(&digest);
    let installation = Installation {
        id: "i".into(),
        component: digest,
        allowed_hosts: vec![],
        credentials: vec![],
        config: Value::Null,
        state: Arc::new(MemoryState::default()),
    };
    match host.run_action(&installation, "echo", &json!(1), &ctx()).await {
        Err(PluginError::Fatal(m)) => assert!(m.contains("is not loaded"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_http_json_example_talks_to_a_real_server() {
    use axum::routing::post;
    let app = Router::new().route(
        "/things",
        post(|headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
            let key =
                headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            (axum::http::StatusCode::CREATED, axum::Json(json!({ "created": body, "key": key })))
        })
        .get(|| async { (axum::http::StatusCode::UNAUTHORIZED, "who are you") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let Some(f) = fixture(HTTP_JSON, config()) else { return };
    let url = format!("http://{addr}/things");
    let out = run(&f, "request", json!({ "method": "POST", "url": url, "body": { "title": "VPN down" } }))
        .await
        .unwrap();
    assert_eq!(
        out,
        json!({ "status": 201, "body": { "created": { "title": "VPN down" }, "key": "flow:1:run:7:step:0" } })
    );
    match run(&f, "request", json!({ "url": url })).await {
        Err(PluginError::Auth(m)) => assert!(m.contains("401"), "{m}"),
        other => panic!("{other:?}"),
    }
    match run(&f, "request", json!({ "method": "POST" })).await {
        Err(PluginError::InvalidInput(m)) => assert!(m.contains("input.url"), "{m}"),
        other => panic!("{other:?}"),
    }
}
