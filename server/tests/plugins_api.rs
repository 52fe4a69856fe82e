#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Plugins through the real `tandem` binary: installed over the API from a component built from
//! source, approved, configured; an automation rule's "run plugin action" runs it through the job
//! runner and a real HTTP server on loopback receives the call, with the host's secret added —
//! also after a restart, when the component is loaded again from the database. Bad uploads are
//! refused with the part named; secrets never come back out.

mod common;
#[path = "../../plugins/host/tests/common/mod.rs"]
mod plugin_build;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{ADMIN, Http, eventually, start, type_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SERVE: &[&str] = &["--workers", "2", "--job-poll-ms", "50", "--allow-private-webhooks"];

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A JSON API on loopback that records what is posted to `/things`.
async fn receiver() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/things",
            post(|State(seen): State<Seen>, headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                seen.lock().unwrap().push((headers, body.clone()));
                (axum::http::StatusCode::CREATED, axum::Json(json!({ "created": body })))
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// The example's manifest, allowed to call loopback instead of `api.example.com`.
fn manifest() -> String {
    let path = plugin_build::guests().join("examples/http-json/plugin.toml");
    std::fs::read_to_string(path).unwrap().replace("\"api.example.com\"", "\"127.0.0.1\"")
}

async fn upload(
    http: &Http,
    path: &str,
    wasm: &[u8],
    manifest: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new()
        .part("wasm", reqwest::multipart::Part::bytes(wasm.to_vec()).file_name("plugin.wasm"))
        .text("manifest", manifest.to_string());
    for (name, value) in extra {
        form = form.text(name.to_string(), value.to_string());
    }
    let response = http.request(Method::POST, path).multipart(form).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

fn field_of(error: &Value) -> String {
    error["error"]["field"]
        .as_str()
        .or(error["error"]["details"]["field"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_runs_an_installed_plugin_against_a_real_server() {
    let Some(wasm) = plugin_build::wasm("tandem-example-http-json") else { return };
    let (addr, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db").display().to_string();
    let server = start(&db, Some(ADMIN), SERVE).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Northwind IT"}), StatusCode::CREATED).await;
    let ticket = type_id(&http.get("/item-types").await, "ticket");

    // Bad uploads name what is wrong; nothing is installed.
    let (status, error) = upload(&http, "/plugins", &wasm, "id = \"http-json\"\nname = ", &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert!(field_of(&error).starts_with("manifest"), "{error}");
    let wrong_api = manifest().replace("tandem:plugin@0.1.0", "tandem:plugin@2.0.0");
    let (status, error) = upload(&http, "/plugins", &wasm, &wrong_api, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(field_of(&error), "manifest.api", "{error}");
    let pinned = manifest().replace("api = ", &format!("sha256 = \"{}\"\napi = ", "0".repeat(64)));
    let (status, error) = upload(&http, "/plugins", &wasm, &pinned, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(field_of(&error), "manifest.sha256", "{error}");
    let (status, error) = upload(&http, "/plugins", b"\0asm\x01\0\0\0", &manifest(), &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(field_of(&error), "wasm", "{error}");
    assert_eq!(http.get("/plugins").await, json!([]));

    // Installed, awaiting approval.
    let (status, installed) =
        upload(&http, "/plugins", &wasm, &manifest(), &[("config", "{\"team\": \"it\"}")]).await;
    assert_eq!(status, StatusCode::CREATED, "{installed}");
    assert_eq!(installed["plugin"], "http-json");
    assert_eq!(installed["plugin_version"], "0.1.0");
    assert_eq!(installed["approved"], false);
    assert_eq!(installed["requested_hosts"], json!(["127.0.0.1"]));
    let (status, again) = upload(&http, "/plugins", &wasm, &manifest(), &[]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    // The rule: every new ticket is posted to the receiver through the plugin; the input's
    // strings are templates filled from the item. An unknown placeholder is refused by path.
    let rule = |title: &str| {
        json!({
            "name": "Mirror new tickets",
            "trigger": {"type": "item_created"},
            "actions": [{"type": "run_plugin", "plugin": "http-json", "action": "request",
                "input": {"method": "POST", "url": format!("http://{addr}/things"),
                          "body": {"source": "tandem", "title": title, "tags": ["{{item.priority}}", 3]}}}],
        })
    };
    let refused = http.post("/automations", rule("{{item.colour}}"), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(field_of(&refused), "actions[0].input.body.title", "{refused}");
    http.post("/automations", rule("{{item.title}}"), StatusCode::CREATED).await;

    // Not approved yet: the job fails for good, saying why; the receiver hears nothing.
    http.post("/items", json!({"item_type": ticket, "title": "Printer on fire"}), StatusCode::CREATED).await;
    let dead = eventually("the unapproved call to fail", Duration::from_secs(30), || async {
        let jobs = http.jobs("plugin.action").await;
        jobs.into_iter().find(|j| j["state"] == "dead")
    })
    .await;
    assert!(dead["last_error"].as_str().unwrap().contains("not approved"), "{dead}");
    assert!(seen.lock().unwrap().is_empty());

    // Approved, with a secret for the host: the next ticket reaches the receiver.
    let approved = http
        .post(
            "/plugins/http-json/approve",
            json!({"secrets": [{"host": "127.0.0.1", "header": "Authorization", "value": "Bearer northwind-secret"}]}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(approved["approved"], true);
    assert_eq!(approved["secrets"], json!([{"host": "127.0.0.1", "header": "Authorization"}]));
    let shown = http.get("/plugins/http-json").await.to_string() + &http.get("/plugins").await.to_string();
    assert!(!shown.contains("northwind-secret"), "secrets never come back out: {shown}");
    let bad = http
        .post(
            "/plugins/http-json/approve",
            json!({"hosts": ["evil.example"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(field_of(&bad), "hosts[0]", "{bad}");

    http.post("/items", json!({"item_type": ticket, "title": "VPN down"}), StatusCode::CREATED).await;
    let (headers, body) =
        eventually("the receiver to get the plugin's call", Duration::from_secs(30), || async {
            seen.lock().unwrap().first().cloned()
        })
        .await;
    assert_eq!(body["source"], "tandem");
    assert_eq!(body["title"], "VPN down", "the template was filled from the item: {body}");
    assert_eq!(body["tags"][1], 3, "non-strings stay as they are: {body}");
    assert!(!body["tags"][0].as_str().unwrap().contains("{{"), "{body}");
    assert_eq!(headers["authorization"], "Bearer northwind-secret");
    let key = headers["idempotency-key"].to_str().unwrap().to_string();
    assert!(key.starts_with("automation:"), "{key}");

    // Disabled: calls stop. Enabled again after a restart: the component is loaded from the
    // database and the call goes through.
    http.post("/plugins/http-json/disable", json!({}), StatusCode::OK).await;
    server.stop().await;
    let server = start(&db, Some(ADMIN), SERVE).await;
    let http = Http::new(&server, ADMIN);
    let listed = http.get("/plugins").await;
    assert_eq!(listed[0]["enabled"], false);
    http.post("/plugins/http-json/enable", json!({}), StatusCode::OK).await;
    http.post("/items", json!({"item_type": ticket, "title": "Laptop will not boot"}), StatusCode::CREATED)
        .await;
    eventually("the call after the restart", Duration::from_secs(30), || async {
        (seen.lock().unwrap().len() >= 2).then_some(())
    })
    .await;

    // Removed: listed no more; the next rule firing fails as "not installed".
    let response = http.request(Method::DELETE, "/plugins/http-json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(http.get("/plugins").await, json!([]));
    http.post("/items", json!({"item_type": ticket, "title": "Monitor flickers"}), StatusCode::CREATED).await;
    eventually("the call to a removed plugin to fail", Duration::from_secs(30), || async {
        let jobs = http.jobs("plugin.action").await;
        jobs.into_iter().find(|j| {
            j["state"] == "dead" && j["last_error"].as_str().unwrap_or("").contains("not installed")
        })
    })
    .await;
    assert_eq!(seen.lock().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_manage_plugins_and_upgrades_keep_settings() {
    let Some(wasm) = plugin_build::wasm("tandem-example-http-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db").display().to_string();
    let server = start(&db, Some(ADMIN), &["--workers", "0"]).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Northwind IT"}), StatusCode::CREATED).await;
    let user = http
        .post(
            "/users",
            json!({"name": "Mia Manager", "email": "mia@northwind.example", "role": "manager"}),
            StatusCode::CREATED,
        )
        .await;
    let token = http
        .post(
            &format!("/users/{}/tokens", user["id"].as_str().unwrap()),
            json!({"name": "t", "scope": "admin"}),
            StatusCode::CREATED,
        )
        .await;
    let manager = Http::new(&server, token["secret"].as_str().unwrap());
    let (status, _) = upload(&manager, "/plugins", &wasm, &manifest(), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = upload(&http, "/plugins", &wasm, &manifest(), &[("approve", "true")]).await;
    assert_eq!(status, StatusCode::CREATED);
    http.call(Method::PUT, "/plugins/http-json/config", Some(json!({"team": "it"})), StatusCode::OK).await;
    let bad = http
        .call(Method::PUT, "/plugins/http-json/config", Some(json!([1])), StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(field_of(&bad), "config", "{bad}");

    // The same version again is no upgrade; a newer one is, and keeps config and approval.
    let (status, error) = upload(&http, "/plugins/http-json/upgrade", &wasm, &manifest(), &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(field_of(&error), "manifest.version", "{error}");
    let newer = manifest().replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    let (status, upgraded) = upload(&http, "/plugins/http-json/upgrade", &wasm, &newer, &[]).await;
    assert_eq!(status, StatusCode::OK, "{upgraded}");
    assert_eq!(upgraded["plugin_version"], "0.2.0");
    assert_eq!(upgraded["config"], json!({"team": "it"}));
    assert_eq!(upgraded["approved"], true);
    // A version asking for a new host needs approval again.
    let wider = manifest()
        .replace("version = \"0.1.0\"", "version = \"0.3.0\"")
        .replace("\"127.0.0.1\"", "\"127.0.0.1\", \"hooks.example.org\"");
    let (status, upgraded) = upload(&http, "/plugins/http-json/upgrade", &wasm, &wider, &[]).await;
    assert_eq!(status, StatusCode::OK, "{upgraded}");
    assert_eq!(upgraded["approved"], false);
    server.stop().await;
}

/// `tandem plugin …` on a database file: install (with approval), list, disable, remove; a bad
/// manifest is exit code 3 naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_installs_lists_and_removes_plugins() {
    let Some(dir) = plugin_build::built() else { return };
    let wasm = dir.join("tandem_example_http_json.wasm");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("tandem.db").display().to_string();
    // A workspace to install into.
    let server = start(&db, Some(ADMIN), &["--workers", "0"]).await;
    Http::new(&server, ADMIN).post("/workspaces", json!({"name": "Northwind IT"}), StatusCode::CREATED).await;
    server.stop().await;
    let manifest_file = tmp.path().join("plugin.toml");
    std::fs::write(&manifest_file, manifest()).unwrap();
    let bad_file = tmp.path().join("bad.toml");
    std::fs::write(&bad_file, manifest().replace("tandem:plugin@0.1.0", "tandem:plugin@9.9.9")).unwrap();

    let run = |args: Vec<String>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .arg("plugin")
            .args(&args)
            .args(["--db", &db])
            .env_remove("TANDEM_DB")
            .env_remove("TANDEM_WORKSPACE")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let (code, _, err) = run(vec!["install".into(), path(&wasm), "--manifest".into(), path(&bad_file)]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("manifest.api"), "{err}");
    let (code, out, err) = run(vec![
        "install".into(),
        path(&wasm),
        "--manifest".into(),
        path(&manifest_file),
        "--approve".into(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "http-json\t0.1.0\tenabled\t127.0.0.1");
    let (code, out, _) = run(vec!["disable".into(), "http-json".into()]);
    assert_eq!((code, out.trim()), (0, "http-json\t0.1.0\tdisabled\t127.0.0.1"));
    let (code, out, _) = run(vec!["list".into()]);
    assert_eq!((code, out.trim()), (0, "http-json\t0.1.0\tdisabled\t127.0.0.1"));
    let (code, out, _) = run(vec!["remove".into(), "http-json".into()]);
    assert_eq!((code, out.trim()), (0, "http-json\tremoved"));
    let (code, _, err) = run(vec!["remove".into(), "http-json".into()]);
    assert_eq!(code, 4, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_step_runs_an_installed_plugin_with_mapped_fields() {
    let Some(wasm) = plugin_build::wasm("tandem-example-http-json") else { return };
    let (addr, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tandem.db").display().to_string();
    let server = start(&db, Some(ADMIN), SERVE).await;
    let http = Http::new(&server, ADMIN);
    http.post("/workspaces", json!({"name": "Pond supplies"}), StatusCode::CREATED).await;
    let ticket = type_id(&http.get("/item-types").await, "ticket");

    // A flow naming a plugin that is not installed is refused, naming the step.
    let flow = json!({
        "name": "Mirror pump tickets",
        "trigger": {"type": "event", "on": {"type": "item_created"}},
        "filters": {"field": "trigger.item.title", "op": "contains", "value": "pump"},
        "steps": [{"type": "plugin_action", "plugin": "http-json", "action": "request",
            "input": {"method": "POST", "url": format!("http://{addr}/things"),
                      "body": {"title": "{{trigger.item.title}}", "number": "{{trigger.item.number}}"}}}],
    });
    let refused = http.post("/flows", flow.clone(), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["error"]["field"], "steps[0].plugin", "{refused}");

    let (status, installed) = upload(&http, "/plugins", &wasm, &manifest(), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{installed}");
    http.post("/plugins/http-json/approve", json!({}), StatusCode::OK).await;
    let created = http.post("/flows", flow, StatusCode::CREATED).await;
    let flow_id = created["id"].as_str().unwrap().to_string();

    http.post("/items", json!({"item_type": ticket, "title": "Printer jam"}), StatusCode::CREATED).await;
    let item = http
        .post("/items", json!({"item_type": ticket, "title": "Pond pump hums"}), StatusCode::CREATED)
        .await;
    let (headers, body) = eventually("the plugin's call from the flow", Duration::from_secs(30), || async {
        seen.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(body["title"], "Pond pump hums");
    assert_eq!(body["number"].to_string().trim_matches('"'), item["number"].to_string());
    let key = headers["idempotency-key"].to_str().unwrap().to_string();
    assert!(key.starts_with("flow:"), "{key}");

    // The run history shows the step's input and the plugin's output.
    let runs = eventually("a succeeded run", Duration::from_secs(30), || async {
        let runs = http.get(&format!("/flows/{flow_id}/runs")).await;
        (runs.as_array().is_some_and(|r| !r.is_empty()) && runs[0]["status"] == "succeeded").then_some(runs)
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "the filter kept the printer out: {runs}");
    let step = &runs[0]["steps"][0];
    assert_eq!(step["input"]["body"]["title"], "Pond pump hums", "{step}");
    assert_eq!(step["output"]["status"], 201, "{step}");
    assert_eq!(seen.lock().unwrap().len(), 1);

    // Input that does not fit the action's schema (no url) fails the run as invalid input,
    // before the plugin runs, saying where.
    let broken = json!({
        "name": "Broken mirror",
        "trigger": {"type": "event", "on": {"type": "item_created"}},
        "filters": {"field": "trigger.item.title", "op": "contains", "value": "filter"},
        "steps": [{"type": "plugin_action", "plugin": "http-json", "action": "request",
            "input": {"method": "POST", "body": {"title": "{{trigger.item.title}}"}}}],
    });
    let broken = http.post("/flows", broken, StatusCode::CREATED).await;
    let broken_id = broken["id"].as_str().unwrap().to_string();
    http.post("/items", json!({"item_type": ticket, "title": "Clogged filter"}), StatusCode::CREATED).await;
    let runs = eventually("the broken run to fail", Duration::from_secs(30), || async {
        let runs = http.get(&format!("/flows/{broken_id}/runs")).await;
        (runs.as_array().is_some_and(|r| !r.is_empty()) && runs[0]["status"] == "failed").then_some(runs)
    })
    .await;
    let error = runs[0]["steps"][0]["error"].to_string();
    assert!(error.contains("invalid") && error.contains("url"), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 1, "the plugin never ran");
    server.stop().await;
}
