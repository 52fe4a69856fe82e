#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Time tracking through the REST API, in process, on a clock the test moves: manual entries,
//! one running timer per person, pause/resume/stop, submission, review by a manager, rollups to
//! items, projects and portfolios — and every refusal as a clear error that writes nothing.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use common::router::Reply;
use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tandem_tests::fixture::{ManualClock, t0};

const ADMIN: &str = "tdm_time_test_admin_token";

struct Api {
    app: Router,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    /// Dev Dana (agent), Sam Second (agent), Mia Manager, Cus Tom (customer).
    dana: String,
    sam: String,
    mia: String,
    customer: String,
    dana_id: String,
    task_type: String,
}

impl Api {
    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        common::router::send(&self.app, method, path, token, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    fn at(&self, minutes: i64) -> String {
        (t0() + Duration::minutes(minutes)).to_rfc3339()
    }

    async fn entries(&self) -> usize {
        self.get("/time-entries", ADMIN).await.expect(StatusCode::OK).as_array().unwrap().len()
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("time.db"), SqliteOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let desk = Desk::new(Arc::new(store), clock.clone(), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let mut api = Api {
        app,
        clock,
        _dir: dir,
        dana: String::new(),
        sam: String::new(),
        mia: String::new(),
        customer: String::new(),
        dana_id: String::new(),
        task_type: String::new(),
    };
    api.post("/workspaces", ADMIN, json!({"name": "Software company"})).await.expect(StatusCode::CREATED);
    for t in api.get("/item-types", ADMIN).await.expect(StatusCode::OK).as_array().unwrap() {
        if t["kind"] == "task" {
            api.task_type = t["id"].as_str().unwrap().to_string();
        }
    }
    for (name, role) in
        [("Dev Dana", "agent"), ("Sam Second", "agent"), ("Mia Manager", "manager"), ("Cus Tom", "customer")]
    {
        let email = format!("{}@example.com", name.split(' ').next().unwrap().to_lowercase());
        let user = api
            .post("/users", ADMIN, json!({"name": name, "email": email, "role": role}))
            .await
            .expect(StatusCode::CREATED);
        let id = user["id"].as_str().unwrap().to_string();
        let token = api
            .post(&format!("/users/{id}/tokens"), ADMIN, json!({"name": "t", "scope": "write"}))
            .await
            .expect(StatusCode::CREATED)["secret"]
            .as_str()
            .unwrap()
            .to_string();
        match role {
            "manager" => api.mia = token,
            "customer" => api.customer = token,
            _ if api.dana.is_empty() => (api.dana, api.dana_id) = (token, id),
            _ => api.sam = token,
        }
    }
    api
}

#[tokio::test]
async fn timers_run_one_at_a_time_and_stop_into_entries() {
    let api = &api().await;
    let task = |title: &'static str| {
        let body = json!({"item_type": api.task_type, "title": title});
        async move {
            api.post("/items", ADMIN, body).await.expect(StatusCode::CREATED)["number"].as_i64().unwrap()
        }
    };
    let (a, b) = (task("Fix login").await, task("Write docs").await);

    let started = api.post(&format!("/items/{a}/timer"), &api.dana, json!({"note": "login bug"})).await;
    let entry = started.expect(StatusCode::CREATED);
    assert_eq!(entry["timer"]["state"], "running");
    let (_, message) =
        api.post(&format!("/items/{b}/timer"), &api.dana, json!({})).await.error(StatusCode::CONFLICT);
    assert!(message.contains("running"), "{message}");
    // Someone else's timer runs independently.
    api.post(&format!("/items/{b}/timer"), &api.sam, json!({})).await.expect(StatusCode::CREATED);
    assert_eq!(api.get("/timer", &api.dana).await.expect(StatusCode::OK)["id"], entry["id"]);

    api.clock.advance(Duration::minutes(50));
    let paused = api.post("/timer/pause", &api.dana, json!({})).await.expect(StatusCode::OK);
    assert_eq!((paused["minutes"].as_i64(), &paused["timer"]["state"]), (Some(50), &json!("paused")));
    api.get("/timer", &api.dana).await.error(StatusCode::NOT_FOUND);
    api.post("/timer/pause", &api.dana, json!({})).await.error(StatusCode::NOT_FOUND);
    // While paused, another timer may run; resuming the first then waits for it to stop.
    let other =
        api.post(&format!("/items/{b}/timer"), &api.dana, json!({})).await.expect(StatusCode::CREATED);
    api.clock.advance(Duration::minutes(10));
    api.post("/timer/resume", &api.dana, json!({"entry": entry["id"]})).await.error(StatusCode::CONFLICT);
    let stopped = api.post("/timer/stop", &api.dana, json!({})).await.expect(StatusCode::OK);
    assert_eq!((stopped["id"].clone(), stopped["minutes"].as_i64()), (other["id"].clone(), Some(10)));
    assert_eq!(stopped["timer"], Value::Null);

    let resumed = api.post("/timer/resume", &api.dana, json!({})).await.expect(StatusCode::OK);
    assert_eq!(resumed["id"], entry["id"]);
    api.clock.advance(Duration::minutes(25));
    let done = api.post("/timer/stop", &api.dana, json!({"note": "fixed"})).await.expect(StatusCode::OK);
    assert_eq!((done["minutes"].as_i64(), done["note"].as_str()), (Some(75), Some("fixed")));
    assert_eq!(done["status"], "draft");

    // A timer forgotten over the weekend is refused unless the real minutes are given.
    api.post(&format!("/items/{a}/timer"), &api.dana, json!({})).await.expect(StatusCode::CREATED);
    api.clock.advance(Duration::hours(60));
    let (field, message) =
        api.post("/timer/stop", &api.dana, json!({})).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "minutes", "{message}");
    assert!(message.contains("60 hours"), "{message}");
    let fixed = api.post("/timer/stop", &api.dana, json!({"minutes": 240})).await.expect(StatusCode::OK);
    assert_eq!(fixed["minutes"], 240);
    api.post("/timer/pause", &api.dana, json!({"minutes": 5})).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    // Customers do not track time.
    let status = api.post(&format!("/items/{a}/timer"), &api.customer, json!({})).await.status;
    assert!(matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{status}");
    assert_eq!(api.get("/time-entries", &api.customer).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn entries_are_validated_submitted_and_reviewed() {
    let api = &api().await;
    api.clock.advance(Duration::days(1));
    let portfolio =
        api.post("/portfolios", ADMIN, json!({"name": "Product"})).await.expect(StatusCode::CREATED);
    let project = api
        .post("/projects", ADMIN, json!({"name": "Release", "portfolio": portfolio["id"]}))
        .await
        .expect(StatusCode::CREATED);
    let parent = api
        .post("/items", ADMIN, json!({"item_type": api.task_type, "title": "Epic", "project": project["id"]}))
        .await
        .expect(StatusCode::CREATED);
    let child = api
        .post(
            "/items",
            ADMIN,
            json!({"item_type": api.task_type, "title": "Story", "project": project["id"], "parent": parent["id"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let (p, c) = (parent["number"].as_i64().unwrap(), child["number"].as_i64().unwrap());
    let log = |item: i64, start: i64, minutes: i64| {
        let body = json!({"started_at": api.at(start), "minutes": minutes});
        async move { api.post(&format!("/items/{item}/time"), &api.dana, body).await }
    };

    let morning = log(p, 60, 120).await.expect(StatusCode::CREATED);
    let afternoon = log(c, 300, 90).await.expect(StatusCode::CREATED);
    let before = api.entries().await;
    for (start, minutes, field) in [
        (600, -15, "minutes"),
        (600, 0, "minutes"),
        (600, 24 * 60 + 1, "minutes"),
        (3 * 24 * 60, 30, "started_at"), // in the future
        (120, 30, "started_at"),         // overlaps the morning
    ] {
        let (f, message) = log(p, start, minutes).await.error(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(f, field, "{start}+{minutes}: {message}");
    }
    let (field, _) = api
        .post(&format!("/items/{p}/time"), &api.dana, json!({"started_at": "yesterday", "minutes": 10}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "started_at");
    // Only managers record time for someone else.
    let for_dana = json!({"started_at": api.at(500), "minutes": 30, "user": api.dana_id});
    api.post(&format!("/items/{p}/time"), &api.sam, for_dana.clone()).await.error(StatusCode::FORBIDDEN);
    assert_eq!(api.entries().await, before, "refusals write nothing");
    let by_manager =
        api.post(&format!("/items/{p}/time"), &api.mia, for_dana).await.expect(StatusCode::CREATED);
    assert_eq!(by_manager["user"].as_str(), Some(api.dana_id.as_str()));

    // Rollups: the epic counts its story; the project and its portfolio count both.
    let rollup = api.get(&format!("/items/{p}/time"), &api.sam).await.expect(StatusCode::OK);
    assert_eq!(rollup["totals"]["total"], 120 + 90 + 30);
    assert_eq!(rollup["parts"][child["id"].as_str().unwrap()]["total"], 90);
    assert_eq!(rollup["entries"].as_array().unwrap().len(), 2);
    let project_time = api.get(&format!("/projects/{}/time", project["id"].as_str().unwrap()), ADMIN).await;
    assert_eq!(project_time.expect(StatusCode::OK)["totals"]["draft"], 240);
    let portfolio_time =
        api.get(&format!("/portfolios/{}/time", portfolio["id"].as_str().unwrap()), ADMIN).await;
    let portfolio_time = portfolio_time.expect(StatusCode::OK);
    assert_eq!(portfolio_time["totals"]["total"], 240);
    assert_eq!(portfolio_time["parts"][project["id"].as_str().unwrap()]["entries"], 3);

    // Submit, then review: nobody reviews their own time; a rejection needs a reason.
    let ids =
        |entries: &[&Value]| json!({"entries": entries.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()});
    let (field, _) = api
        .post("/time-entries/submit", &api.sam, ids(&[&morning]))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "entries[0]", "another person's entry");
    let submitted = api.post("/time-entries/submit", &api.dana, ids(&[&morning, &afternoon])).await;
    assert_eq!(submitted.expect(StatusCode::OK)[1]["status"], "submitted");
    let (field, _) = api
        .post("/time-entries/submit", &api.dana, ids(&[&morning]))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "entries[0]", "submitted already");
    let m = morning["id"].as_str().unwrap();
    let a = afternoon["id"].as_str().unwrap();
    api.post(&format!("/time-entries/{m}/approve"), &api.sam, json!({})).await.error(StatusCode::FORBIDDEN);
    let (field, _) = api
        .post(&format!("/time-entries/{a}/reject"), &api.mia, json!({"reason": "  "}))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "reason");
    let approved =
        api.post(&format!("/time-entries/{m}/approve"), &api.mia, json!({})).await.expect(StatusCode::OK);
    assert_eq!(approved["status"], "approved");
    let rejected = api
        .post(
            &format!("/time-entries/{a}/reject"),
            &api.mia,
            json!({"reason": "that was the demo, not the story"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(rejected["rejection_reason"], "that was the demo, not the story");

    // Approved entries are frozen; a rejected one is fixed and becomes a draft again.
    let patch = |id: &str, body: Value| {
        let path = format!("/time-entries/{id}");
        async move { api.send(Method::PATCH, &path, &api.dana, Some(body)).await }
    };
    patch(m, json!({"minutes": 10})).await.error(StatusCode::CONFLICT);
    api.send(Method::DELETE, &format!("/time-entries/{m}"), &api.dana, None)
        .await
        .error(StatusCode::CONFLICT);
    let (field, _) =
        patch(a, json!({"started_at": api.at(90)})).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "started_at", "moved onto the morning");
    let fixed = patch(a, json!({"minutes": 45, "note": "story only"})).await.expect(StatusCode::OK);
    assert_eq!((fixed["status"].as_str(), fixed["minutes"].as_i64()), (Some("draft"), Some(45)));
    patch(a, json!({"minutes": 30, "version": 1})).await.error(StatusCode::CONFLICT);

    let queue = api.get("/time-entries?status=approved", &api.mia).await.expect(StatusCode::OK);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    let by_dana =
        api.get(&format!("/time-entries?user={}", api.dana_id), &api.mia).await.expect(StatusCode::OK);
    assert_eq!(by_dana.as_array().unwrap().len(), 3);
    let (field, _) =
        api.get("/time-entries?status=lost", ADMIN).await.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field, "status");
    let rollup = api.get(&format!("/items/{p}/time"), &api.mia).await.expect(StatusCode::OK);
    assert_eq!(
        (
            rollup["totals"]["approved"].as_i64(),
            rollup["totals"]["draft"].as_i64(),
            rollup["totals"]["total"].as_i64()
        ),
        (Some(120), Some(45 + 30), Some(120 + 45 + 30))
    );
}
