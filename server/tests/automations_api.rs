#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! `/api/v1/automations` driven in-process on a real SQLite store: rule CRUD, reorder,
//! enable/disable, validation errors naming JSON paths, rules firing inside the commands that
//! set them off (same commit), deferred replies delivered by the job handler, the dry run, the
//! run log, and time-based rules fired once per occurrence by the scheduler.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::automation::AUTOMATION_DELIVER_JOB;
use tandem_core::{Clock, Desk, JobHandler, Limits};
use tandem_server::jobs::automations::{AutomationDelivery, fire_due};
use tandem_server::{AdminToken, AppState, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

const ADMIN: &str = "tdm_automations_api_admin_token";

/// A clock tests move forward.
#[derive(Debug)]
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

struct Api {
    app: Router,
    desk: Desk,
    clock: Arc<TestClock>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(Utc::now().timestamp_millis())));
        let desk = Desk::new(Arc::new(store), clock.clone(), Arc::new(UuidV7Ids), Limits::default());
        let app = router(AppState::new(desk.clone(), AdminToken::from_secret(ADMIN)));
        let api = Api { app, desk, clock, _dir: dir };
        api.call(Method::POST, "/workspaces", ADMIN, Some(json!({"name": "Desk"})), StatusCode::CREATED)
            .await;
        api
    }

    fn advance(&self, by: Duration) {
        self.clock.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        assert_eq!(status, expected, "{method} {path}: {value}");
        value
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.call(Method::POST, path, token, Some(body), StatusCode::CREATED).await
    }

    /// A user with `role` and a token for them.
    async fn person(&self, name: &str, email: &str, role: &str) -> (String, String) {
        let user = self.post("/users", ADMIN, json!({"name": name, "email": email, "role": role})).await;
        let id = user["id"].as_str().unwrap().to_string();
        let scope = if role == "customer" { "write" } else { "admin" };
        let issued =
            self.post(&format!("/users/{id}/tokens"), ADMIN, json!({"name": "t", "scope": scope})).await;
        (id, issued["secret"].as_str().unwrap().to_string())
    }

    async fn ticket_type(&self) -> String {
        let t = self
            .post(
                "/item-types",
                ADMIN,
                json!({"name": "IT support", "kind": "ticket", "fields": [
                    {"key": "category", "label": "Category", "kind": "choice",
                     "rules": {"options": ["Hardware", "Software"]}}]}),
            )
            .await;
        t["id"].as_str().unwrap().to_string()
    }

    /// Runs the queued `automation.deliver` jobs through their handler, as the runner would.
    async fn deliver(&self) -> usize {
        let store = self.desk.store().clone();
        let now = self.clock.now();
        let jobs = store
            .claim_jobs(&[AUTOMATION_DELIVER_JOB.to_string()], 100, now, now + Duration::minutes(1))
            .await
            .unwrap();
        let handler = AutomationDelivery::new(self.desk.clone());
        for job in &jobs {
            handler.run(job).await.unwrap();
            store.complete_job(job.id, job.attempts, now).await.unwrap();
        }
        jobs.len()
    }
}

#[tokio::test]
async fn rules_are_managed_through_the_api_and_bad_parts_are_named() {
    let api = Api::new().await;
    let t = api.ticket_type().await;
    let (_, agent) = api.person("Ana", "ana@desk.example", "agent").await;
    let rule = json!({
        "name": "Hardware first",
        "item_types": [t],
        "trigger": {"type": "item_created"},
        "conditions": {"any": [{"field": "custom.category", "op": "eq", "value": "Hardware"}]},
        "actions": [{"type": "set_priority", "priority": "high"}],
    });
    let a = api.post("/automations", ADMIN, rule.clone()).await;
    assert_eq!((a["position"].as_i64(), a["enabled"].as_bool()), (Some(1), Some(true)));
    let b = api
        .post(
            "/automations",
            ADMIN,
            json!({"name": "Second", "trigger": {"type": "assignee_changed"},
        "actions": [{"type": "set_priority", "priority": "low"}]}),
        )
        .await;
    assert_eq!(b["position"], 2);
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());

    // Validation in the core names the JSON path …
    let mut bad = rule.clone();
    bad["conditions"] = json!({"any": [
        {"field": "title", "op": "contains", "value": "x"},
        {"field": "title", "op": "contains", "value": "y"},
        {"field": "custom.colour", "op": "eq", "value": "red"}]});
    let err =
        api.call(Method::POST, "/automations", ADMIN, Some(bad), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(err["error"]["field"], "conditions.any[2].field", "{err}");
    // … and so does the shape check.
    let mut bad = rule.clone();
    bad["conditions"] = json!({"all": [{"field": "title", "op": "contains", "value": "x"}, {"field": "titel", "op": "eq", "value": "y"}]});
    let err =
        api.call(Method::POST, "/automations", ADMIN, Some(bad), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(err["error"]["field"], "conditions.all[1].field", "{err}");
    let mut bad = rule.clone();
    bad["actions"] = json!([{"type": "set_priority", "priority": "high"}, {"type": "assign", "to": {"strategy": "round_robin", "team": a_id}}]);
    let err =
        api.call(Method::POST, "/automations", ADMIN, Some(bad), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(err["error"]["field"], "actions[1].to.team", "{err}");
    let mut bad = rule.clone();
    bad["actions"] = json!([{"type": "explode"}]);
    let err =
        api.call(Method::POST, "/automations", ADMIN, Some(bad), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(err["error"]["field"].as_str().unwrap().starts_with("actions[0]"), "{err}");

    // Agents may read, not manage.
    api.call(Method::GET, "/automations", &agent, None, StatusCode::OK).await;
    api.call(Method::POST, "/automations", &agent, Some(rule.clone()), StatusCode::FORBIDDEN).await;

    let reordered = api
        .call(Method::POST, "/automations/reorder", ADMIN, Some(json!({"order": [b_id]})), StatusCode::OK)
        .await;
    let names: Vec<_> = reordered.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Second", "Hardware first"]);
    let off =
        api.call(Method::POST, &format!("/automations/{a_id}/disable"), ADMIN, None, StatusCode::OK).await;
    assert_eq!(off["enabled"], false);
    let on =
        api.call(Method::POST, &format!("/automations/{a_id}/enable"), ADMIN, None, StatusCode::OK).await;
    assert_eq!(on["enabled"], true);
    let renamed = api
        .call(
            Method::PATCH,
            &format!("/automations/{a_id}"),
            ADMIN,
            Some(json!({"name": "Hardware", "version": on["version"]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(renamed["name"], "Hardware");
    api.call(
        Method::PATCH,
        &format!("/automations/{a_id}"),
        ADMIN,
        Some(json!({"name": "x", "version": 1})),
        StatusCode::CONFLICT,
    )
    .await;
    api.call(Method::DELETE, &format!("/automations/{b_id}"), ADMIN, None, StatusCode::NO_CONTENT).await;
    api.call(Method::GET, &format!("/automations/{b_id}"), ADMIN, None, StatusCode::NOT_FOUND).await;
    let list = api.call(Method::GET, "/automations", ADMIN, None, StatusCode::OK).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rules_act_in_the_same_commit_and_log_their_runs() {
    let api = Api::new().await;
    let t = api.ticket_type().await;
    let (ana, _) = api.person("Ana", "ana@desk.example", "agent").await;
    let (ben, _) = api.person("Ben", "ben@desk.example", "agent").await;
    let (_, carla) = api.person("Carla", "carla@clinic.example", "customer").await;
    let team = api.post("/teams", ADMIN, json!({"name": "Hardware", "members": [ana, ben]})).await;
    let project = api.post("/projects", ADMIN, json!({"name": "Clinics"})).await;

    api.post(
        "/automations",
        ADMIN,
        json!({
            "name": "Acknowledge",
            "trigger": {"type": "item_created"},
            "conditions": {"field": "requester.role", "op": "eq", "value": "customer"},
            "actions": [{"type": "reply", "visibility": "public",
                         "template": "Thanks {{requester.name}}, your request #{{item.number}} is in."}],
        }),
    )
    .await;
    api.post(
        "/automations",
        ADMIN,
        json!({
            "name": "Hardware round robin",
            "item_types": [t],
            "trigger": {"type": "item_created"},
            "conditions": {"field": "custom.category", "op": "eq", "value": "Hardware"},
            "actions": [{"type": "assign", "to": {"strategy": "round_robin", "team": team["id"]}}],
        }),
    )
    .await;
    api.post(
        "/automations",
        ADMIN,
        json!({
            "name": "Clinics by domain",
            "trigger": {"type": "item_created"},
            "conditions": {"field": "requester.domain", "op": "eq", "value": "clinic.example"},
            "actions": [{"type": "move_to", "project": project["id"]}],
        }),
    )
    .await;

    let mut assignees = Vec::new();
    let mut numbers = Vec::new();
    for title in ["Printer", "Screen"] {
        let item = api
            .post(
                "/items",
                &carla,
                json!({"item_type": t, "title": title, "custom": {"category": "Hardware"}}),
            )
            .await;
        // Committed with the rules' effects (the answer shows the command's own decision).
        let n = item["number"].as_i64().unwrap();
        let item = api.call(Method::GET, &format!("/items/{n}"), ADMIN, None, StatusCode::OK).await;
        assert_eq!(item["project"], project["id"], "{item}");
        assignees.push(item["assignees"][0]["id"].as_str().unwrap().to_string());
        numbers.push(item["number"].as_i64().unwrap());
    }
    assert_eq!(assignees, [ana.clone(), ben.clone()]);

    // The acknowledgements are posted after the commit, with the numbers the store gave.
    assert_eq!(api.deliver().await, 2);
    let messages =
        api.call(Method::GET, &format!("/items/{}/messages", numbers[1]), &carla, None, StatusCode::OK).await;
    let texts: Vec<_> =
        messages.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, [format!("Thanks Carla, your request #{} is in.", numbers[1])]);

    // The run log, all of it and per item.
    let runs = api
        .call(Method::GET, &format!("/automations/runs?item={}", numbers[0]), ADMIN, None, StatusCode::OK)
        .await;
    let mut fired: Vec<_> =
        runs.as_array().unwrap().iter().map(|r| r["rule_name"].as_str().unwrap().to_string()).collect();
    fired.sort();
    assert_eq!(fired, ["Acknowledge", "Clinics by domain", "Hardware round robin"]);
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "fired" && r["reason"].as_str().unwrap().starts_with("item.created"))
    );
    let all = api.call(Method::GET, "/automations/runs?limit=100", ADMIN, None, StatusCode::OK).await;
    assert_eq!(all.as_array().unwrap().len(), 6);
    api.call(Method::GET, "/automations/runs?colour=red", ADMIN, None, StatusCode::UNPROCESSABLE_ENTITY)
        .await;

    // Dry run: which rules would fire on the first item now.
    let dry = api
        .call(Method::POST, "/automations/dry-run", ADMIN, Some(json!({"item": numbers[0]})), StatusCode::OK)
        .await;
    let would: Vec<_> = dry["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule_name"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        would,
        [("Acknowledge", "fired"), ("Hardware round robin", "fired"), ("Clinics by domain", "fired")]
    );
    api.call(Method::POST, "/automations/dry-run", ADMIN, Some(json!({"item": 999})), StatusCode::NOT_FOUND)
        .await;
    let err = api
        .call(
            Method::POST,
            "/automations/dry-run",
            ADMIN,
            Some(json!({"item": true})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(err["error"]["field"], "item");
}

#[tokio::test]
async fn a_looping_pair_of_rules_is_stopped_and_logged() {
    let api = Api::new().await;
    let t = api.ticket_type().await;
    for (name, on, to) in [("Ping", "execution", "waiting"), ("Pong", "waiting", "execution")] {
        api.post(
            "/automations",
            ADMIN,
            json!({"name": name, "trigger": {"type": "status_changed", "to": on},
            "actions": [{"type": "set_status", "status": to}]}),
        )
        .await;
    }
    let item = api.post("/items", ADMIN, json!({"item_type": t, "title": "Loop me"})).await;
    let n = item["number"].as_i64().unwrap();
    api.call(
        Method::POST,
        &format!("/items/{n}/transition"),
        ADMIN,
        Some(json!({"status": "execution"})),
        StatusCode::OK,
    )
    .await;
    let runs =
        api.call(Method::GET, &format!("/automations/runs?item={n}"), ADMIN, None, StatusCode::OK).await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.iter().filter(|r| r["outcome"] == "fired").count(), 5);
    let stopped: Vec<_> = runs.iter().filter(|r| r["outcome"] == "stopped").collect();
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0]["reason"].as_str().unwrap().contains("a loop?"), "{}", stopped[0]);
}

#[tokio::test]
async fn idle_rules_fire_once_per_idle_period() {
    let api = Api::new().await;
    let t = api.ticket_type().await;
    api.post("/automations", ADMIN, json!({
        "name": "Chase idle tickets",
        "trigger": {"type": "idle", "hours": 48},
        "actions": [{"type": "set_priority", "priority": "urgent"},
                    {"type": "reply", "visibility": "internal", "template": "#{{item.number}} idle for two days"}],
    })).await;
    let item = api.post("/items", ADMIN, json!({"item_type": t, "title": "Forgotten"})).await;
    let n = item["number"].as_i64().unwrap();
    assert_eq!(fire_due(&api.desk).await.unwrap(), 0);
    api.advance(Duration::hours(49));
    assert_eq!(fire_due(&api.desk).await.unwrap(), 1);
    assert_eq!(fire_due(&api.desk).await.unwrap(), 0, "once per occurrence");
    let item = api.call(Method::GET, &format!("/items/{n}"), ADMIN, None, StatusCode::OK).await;
    assert_eq!(item["priority"], "urgent");
    let messages = api.call(Method::GET, &format!("/items/{n}/messages"), ADMIN, None, StatusCode::OK).await;
    assert_eq!(messages[0]["text"], format!("#{n} idle for two days"));
    let runs =
        api.call(Method::GET, &format!("/automations/runs?item={n}"), ADMIN, None, StatusCode::OK).await;
    assert_eq!(runs[0]["reason"], "idle for 48 h");
    // Idle again for two days after the rule touched it: a new occurrence.
    api.advance(Duration::hours(49));
    assert_eq!(fire_due(&api.desk).await.unwrap(), 1);
}
