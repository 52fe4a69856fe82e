#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The example plugins, built from source, end to end against real HTTP servers on loopback:
//! the chat notifier against a Slack-compatible incoming webhook, the issue poll trigger against
//! a GitHub-like API with `Link` pagination, and the transform step.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tandem_integrations::Egress;
use tandem_plugin_host::{
    Credential, HostConfig, Installation, Invocation, Manifest, MemoryState, PluginError, PluginHost,
};

fn config() -> HostConfig {
    HostConfig {
        timeout: Duration::from_secs(5),
        // The servers below are on loopback: the operator allows private destinations here.
        egress: Egress { allow_private: true },
        max_concurrent_calls: 8,
        ..HostConfig::default()
    }
}

fn manifest(dir: &str) -> Manifest {
    let path = common::guests().join("examples").join(dir).join("plugin.toml");
    Manifest::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn install(package: &str, config: Value) -> Option<(PluginHost, Installation)> {
    let wasm = common::wasm(package)?;
    let host = PluginHost::new(self::config()).unwrap();
    let component = host.load(&wasm).unwrap();
    let installation = Installation {
        id: "inst".into(),
        component,
        allowed_hosts: vec!["127.0.0.1".into()],
        credentials: vec![],
        config,
        state: Arc::new(MemoryState::default()),
    };
    Some((host, installation))
}

fn ctx(key: &str) -> Invocation {
    Invocation { run_id: "run-1".into(), attempt: 1, idempotency_key: key.into() }
}

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[test]
fn every_example_manifest_parses() {
    for dir in ["http-json", "chat-notify", "issue-poll", "transform"] {
        let m = manifest(dir);
        assert_eq!(m.id, dir);
    }
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_notifier_posts_to_an_incoming_webhook() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/services/T000/B000/XXXX",
            post(|State(seen): State<Seen>, headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                seen.lock().unwrap().push((headers, body));
                // What Slack-compatible incoming webhooks answer: plain text.
                "ok"
            }),
        )
        .route("/services/revoked", post(|| async { (StatusCode::FORBIDDEN, "invalid_token") }))
        .route("/services/busy", post(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "slow down") }))
        .with_state(seen.clone());
    let addr = serve(app).await;
    let hook = format!("http://{addr}/services/T000/B000/XXXX");
    let Some((host, inst)) =
        install("tandem-example-chat-notify", json!({ "webhook_url": hook, "username": "Tandem" }))
    else {
        return;
    };
    let out = host
        .run_action(
            &inst,
            "notify",
            &json!({ "text": "Ticket #42 (printer on fire) is urgent" }),
            &ctx("k-1"),
        )
        .await
        .unwrap();
    assert_eq!(out, json!({ "delivered": true, "status": 200 }));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (headers, body) = &seen[0];
        assert_eq!(body, &json!({ "text": "Ticket #42 (printer on fire) is urgent", "username": "Tandem" }));
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["idempotency-key"], "k-1");
    }
    // Failures keep their class.
    match host.run_action(&inst, "notify", &json!({ "text": "" }), &ctx("k-2")).await {
        Err(PluginError::InvalidInput(m)) => assert!(m.contains("input.text"), "{m}"),
        other => panic!("{other:?}"),
    }
    let revoked = json!({ "text": "x", "webhook_url": format!("http://{addr}/services/revoked") });
    match host.run_action(&inst, "notify", &revoked, &ctx("k-3")).await {
        Err(PluginError::Auth(m)) => assert!(m.contains("403"), "{m}"),
        other => panic!("{other:?}"),
    }
    let busy = json!({ "text": "x", "webhook_url": format!("http://{addr}/services/busy") });
    match host.run_action(&inst, "notify", &busy, &ctx("k-4")).await {
        Err(PluginError::RateLimited { retry_after, .. }) => assert_eq!(retry_after, Duration::from_secs(7)),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// A GitHub-like issues API: issues sorted by `updated_at` (then id), `since` inclusive,
/// `per_page` pages linked with `Link: <...>; rel="next"`. Records every request's query and
/// authorization header.
#[derive(Clone, Default)]
struct Issues {
    issues: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

async fn list_issues(
    State(api): State<Issues>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut query: Vec<_> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    query.sort();
    api.requests.lock().unwrap().push((query.join("&"), auth));
    let mut all = api.issues.lock().unwrap().clone();
    let key =
        |i: &Value| (i["updated_at"].as_str().unwrap_or_default().to_string(), i["id"].as_u64().unwrap_or(0));
    all.sort_by_key(key);
    if q.get("direction").map(String::as_str) == Some("desc") {
        all.reverse();
    }
    if let Some(since) = q.get("since") {
        all.retain(|i| i["updated_at"].as_str().unwrap_or_default() >= since.as_str());
    }
    let per_page: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let chunk: Vec<Value> = all.iter().skip((page - 1) * per_page).take(per_page).cloned().collect();
    let mut response = axum::Json(Value::Array(chunk)).into_response();
    if page * per_page < all.len() {
        let mut next: Vec<String> =
            q.iter().filter(|(k, _)| k.as_str() != "page").map(|(k, v)| format!("{k}={v}")).collect();
        next.push(format!("page={}", page + 1));
        let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let link = format!(
            "<http://{host}/repos/acme/vpn/issues?{}>; rel=\"next\", <http://{host}/x>; rel=\"last\"",
            next.join("&")
        );
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

fn issue(id: u64, number: u64, title: &str, updated_at: &str) -> Value {
    json!({ "id": id, "number": number, "title": title, "state": "open", "updated_at": updated_at,
            "html_url": format!("https://git.example/acme/vpn/issues/{number}"), "user": { "login": "ana" },
            "labels": [{ "name": "it" }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_trigger_seeds_then_pages_through_what_is_new() {
    let api = Issues::default();
    api.issues.lock().unwrap().extend([
        issue(1, 1, "VPN drops every hour", "2026-03-01T10:00:00Z"),
        issue(2, 2, "Printer on fire", "2026-03-02T10:00:00Z"),
    ]);
    let app = Router::new().route("/repos/acme/vpn/issues", get(list_issues)).with_state(api.clone());
    let addr = serve(app).await;
    let config = json!({ "api_url": format!("http://{addr}"), "repo": "acme/vpn" });
    let Some((host, mut inst)) = install("tandem-example-issue-poll", config) else { return };
    inst.credentials = vec![Credential {
        host: "127.0.0.1".into(),
        header: "authorization".into(),
        value: "Bearer gh-token".into(),
    }];

    // The first poll seeds the cursor at the newest issue and fires nothing.
    let first = host.poll(&inst, "issue-updated", None, &ctx("p")).await.result.unwrap();
    assert!(first.items.is_empty());
    let cursor = first.cursor.unwrap();
    assert_eq!(cursor, "2026-03-02T10:00:00Z|2");

    // Nothing new: nothing fires, the cursor stays.
    let idle = host.poll(&inst, "issue-updated", Some(&cursor), &ctx("p")).await.result.unwrap();
    assert!(idle.items.is_empty(), "{:?}", idle.items);
    assert_eq!(idle.cursor.as_deref(), Some(cursor.as_str()));

    // 120 new issues (three pages of 50) and one old issue updated: all of them, in order, once.
    {
        let mut issues = api.issues.lock().unwrap();
        for n in 0..120u64 {
            issues.push(issue(
                100 + n,
                10 + n,
                &format!("Issue {n}"),
                &format!("2026-03-03T10:{:02}:{:02}Z", n / 60, n % 60),
            ));
        }
        issues[0] = issue(1, 1, "VPN drops every hour (again)", "2026-03-04T09:00:00Z");
    }
    let next = host.poll(&inst, "issue-updated", Some(&cursor), &ctx("p")).await.result.unwrap();
    assert_eq!(next.items.len(), 121);
    assert_eq!(next.items[0].id, "100@2026-03-03T10:00:00Z");
    assert_eq!(next.items[0].data["title"], "Issue 0");
    assert_eq!(next.items[0].data["labels"], json!(["it"]));
    assert_eq!(next.items[120].id, "1@2026-03-04T09:00:00Z");
    assert_eq!(next.items[120].data["number"], 1);
    let ids: std::collections::HashSet<&str> = next.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 121, "no duplicates");
    let cursor = next.cursor.unwrap();
    assert_eq!(cursor, "2026-03-04T09:00:00Z|1");

    // Pagination followed the Link header; the host added the credential to every request.
    let requests = api.requests.lock().unwrap().clone();
    let paged: Vec<&(String, String)> =
        requests.iter().filter(|(q, _)| q.contains("since=2026-03-02")).collect();
    assert_eq!(paged.len(), 1 + 3, "{requests:?}");
    assert!(paged.iter().any(|(q, _)| q.contains("page=3")), "{requests:?}");
    assert!(requests.iter().all(|(_, auth)| auth == "Bearer gh-token"), "{requests:?}");

    // Polled again from the new cursor: nothing repeats.
    let again = host.poll(&inst, "issue-updated", Some(&cursor), &ctx("p")).await.result.unwrap();
    assert!(again.items.is_empty(), "{:?}", again.items);

    // A broken config or cursor is the caller's problem, named.
    let mut broken = inst.clone();
    broken.config = json!({ "api_url": format!("http://{addr}") });
    match host.poll(&broken, "issue-updated", None, &ctx("p")).await.result {
        Err(PluginError::InvalidInput(m)) => assert!(m.contains("config.repo"), "{m}"),
        other => panic!("{other:?}"),
    }
    match host.poll(&inst, "issue-updated", Some("yesterday"), &ctx("p")).await.result {
        Err(PluginError::InvalidInput(m)) => assert!(m.contains("cursor"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transform_step_maps_json_without_io() {
    let Some((host, mut inst)) = install("tandem-example-transform", json!({})) else { return };
    // No hosts at all: the step is pure.
    inst.allowed_hosts.clear();
    let input = json!({
        "source": { "issue": { "number": 42, "title": "VPN down", "labels": ["it"], "assignee": null } },
        "mapping": {
            "title": "/issue/title",
            "labels": "/issue/labels",
            "missing": "/issue/nope",
            "summary": "#{/issue/number}: {/issue/title}{/issue/assignee} {{literal}",
            "fixed": { "$literal": "/not/a/pointer" },
            "nested": { "list": ["/issue/number", 7, true] },
        },
    });
    let out = host.run_action(&inst, "map", &input, &ctx("t")).await.unwrap();
    assert_eq!(
        out,
        json!({
            "title": "VPN down", "labels": ["it"], "missing": null,
            "summary": "#42: VPN down {literal}", "fixed": "/not/a/pointer",
            "nested": { "list": [42, 7, true] },
        })
    );
    let bad = json!({ "source": {}, "mapping": { "a": { "b": "x {/open" } } });
    match host.run_action(&inst, "map", &bad, &ctx("t")).await {
        Err(PluginError::InvalidInput(m)) => assert!(m.contains("mapping.a.b"), "{m}"),
        other => panic!("{other:?}"),
    }
    match host.run_action(&inst, "map", &json!({ "source": {} }), &ctx("t")).await {
        Err(PluginError::InvalidInput(m)) => assert!(m.contains("input.mapping"), "{m}"),
        other => panic!("{other:?}"),
    }
}
