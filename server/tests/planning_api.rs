#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Planning through the REST API, in process: planning fields on tasks, dependencies as `blocks`
//! links with timing, calendars of the workspace and of people, a project's schedule and its Gantt
//! chart, and the errors (cycles, impossible dates, bad fields) as 422s naming what is wrong.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, header};
use common::router::Reply;
use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

const ADMIN: &str = "tdm_planning_test_admin_token";

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
    task_type: String,
    ticket_type: String,
    project: String,
    agent: String,
    agent_id: String,
    customer: String,
}

impl Api {
    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        common::router::send(&self.app, method, path, token, body).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, ADMIN, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, ADMIN, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, ADMIN, Some(body)).await
    }

    /// A task in the project with planning fields; returns its number.
    async fn task(&self, title: &str, plan: Value) -> i64 {
        let created = self
            .post("/items", json!({"item_type": self.task_type, "title": title, "project": self.project}))
            .await
            .expect(StatusCode::CREATED);
        let number = created["number"].as_i64().unwrap();
        self.patch(&format!("/items/{number}"), json!({"plan": plan})).await.expect(StatusCode::OK);
        number
    }

    async fn depend(&self, from: i64, to: i64, dependency: Value) -> Value {
        self.post(
            &format!("/items/{from}/links"),
            json!({"to": to, "kind": "blocks", "dependency": dependency}),
        )
        .await
        .expect(StatusCode::CREATED)
    }

    async fn schedule(&self) -> Value {
        self.get(&format!("/projects/{}/schedule", self.project)).await.expect(StatusCode::OK)
    }
}

fn task<'a>(schedule: &'a Value, name: &str) -> &'a Value {
    schedule["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no task {name} in {schedule}"))
}

/// The software company of the use cases: a release project with tasks, an agent and a customer.
async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("planning.db"), SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let mut api = Api {
        app,
        _dir: dir,
        task_type: String::new(),
        ticket_type: String::new(),
        project: String::new(),
        agent: String::new(),
        agent_id: String::new(),
        customer: String::new(),
    };
    api.post("/workspaces", json!({"name": "Software company"})).await.expect(StatusCode::CREATED);
    for t in api.get("/item-types").await.expect(StatusCode::OK).as_array().unwrap() {
        match t["kind"].as_str() {
            Some("task") => api.task_type = t["id"].as_str().unwrap().to_string(),
            _ => api.ticket_type = t["id"].as_str().unwrap().to_string(),
        }
    }
    let project = api.post("/projects", json!({"name": "Release 4.0"})).await.expect(StatusCode::CREATED);
    api.project = project["id"].as_str().unwrap().to_string();
    for (name, email, role) in
        [("Dev Dana", "dana@dev.example", "agent"), ("Cus Tom", "tom@shop.example", "customer")]
    {
        let user = api
            .post("/users", json!({"name": name, "email": email, "role": role}))
            .await
            .expect(StatusCode::CREATED);
        let id = user["id"].as_str().unwrap().to_string();
        let token = api
            .post(&format!("/users/{id}/tokens"), json!({"name": "t", "scope": "write"}))
            .await
            .expect(StatusCode::CREATED)["secret"]
            .as_str()
            .unwrap()
            .to_string();
        if role == "agent" {
            (api.agent, api.agent_id) = (token, id);
        } else {
            api.customer = token;
        }
    }
    api
}

#[tokio::test]
async fn a_project_is_scheduled_from_its_stored_tasks() {
    let api = api().await;
    // Mon 2 March 2026, standard week (Mon–Fri 08–12, 13–17).
    let spec = api
        .task("Spec", json!({"duration": 960, "constraint": {"type": "start_no_earlier_than", "date": "2026-03-02T08:00:00"}}))
        .await;
    let build = api.task("Build", json!({"duration": 1440, "points": 8, "work": 2400})).await;
    let docs = api.task("Docs", json!({"duration": 480})).await;
    let release = api.task("Release", json!({"duration": 0})).await;
    api.depend(spec, build, json!({"type": "FS"})).await;
    // Docs start a day after Build starts.
    api.depend(build, docs, json!({"type": "start_to_start", "lag": {"unit": "working", "value": 480}}))
        .await;
    api.depend(build, release, json!({"type": "FS"})).await;
    api.depend(docs, release, json!({"type": "FS"})).await;

    let s = api.schedule().await;
    assert_eq!(s["start"], "2026-03-02T08:00:00");
    assert_eq!(task(&s, "Spec")["finish"], "2026-03-03T17:00:00");
    assert_eq!(task(&s, "Build")["start"], "2026-03-04T08:00:00");
    assert_eq!(task(&s, "Build")["finish"], "2026-03-06T17:00:00");
    assert_eq!(task(&s, "Docs")["start"], "2026-03-05T08:00:00");
    assert_eq!(task(&s, "Docs")["total_slack"], 480, "{s}");
    assert_eq!(task(&s, "Release")["milestone"], true);
    assert_eq!(s["finish"], "2026-03-06T17:00:00");
    let critical: Vec<&str> =
        s["critical_path"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let id_of = |name| task(&s, name)["id"].as_str().unwrap();
    assert_eq!(critical[..2], [id_of("Spec"), id_of("Build")]);
    assert_eq!(task(&s, "Release")["critical"], true);
    assert_eq!(task(&s, "Docs")["critical"], false);
    let why = task(&s, "Build")["explanation"].as_str().unwrap();
    assert!(why.contains(&format!("#{spec} Spec")) && why.contains("FS"), "{why}");
    assert_eq!(s["dependencies"].as_array().unwrap().len(), 4);

    // A holiday in the workspace calendar moves Build; the agent's own calendar moves their task.
    api.send(
        Method::PUT,
        "/calendars/workspace",
        ADMIN,
        Some(json!({
            "week": {"days": ["08:00-12:00 13:00-17:00", "08:00-12:00 13:00-17:00", "08:00-12:00 13:00-17:00",
                             "08:00-12:00 13:00-17:00", "08:00-12:00 13:00-17:00", "", ""]},
            "exceptions": [{"name": "Founders' day", "from": "2026-03-04", "to": "2026-03-04"}]
        })),
    )
    .await
    .expect(StatusCode::OK);
    let s = api.schedule().await;
    assert_eq!(task(&s, "Build")["start"], "2026-03-05T08:00:00");
    assert_eq!(task(&s, "Build")["finish"], "2026-03-09T17:00:00");

    api.send(
        Method::PUT,
        &format!("/users/{}/calendar", api.agent_id),
        &api.agent,
        Some(json!({"exceptions": [{"name": "Leave", "from": "2026-03-05", "to": "2026-03-06"}]})),
    )
    .await
    .expect(StatusCode::OK);
    api.patch(&format!("/items/{build}"), json!({"plan": {"resource": api.agent_id}}))
        .await
        .expect(StatusCode::OK);
    let s = api.schedule().await;
    assert_eq!(task(&s, "Build")["start"], "2026-03-09T08:00:00", "{s}");
    assert_eq!(task(&s, "Build")["calendar"]["type"], "user");
    assert_eq!(api.get("/calendars").await.expect(StatusCode::OK).as_array().unwrap().len(), 2);

    // Baseline and actuals: the Gantt shows both, dependencies and the critical path.
    api.patch(
        &format!("/items/{spec}"),
        json!({"plan": {"baseline": {"start": "2026-03-02T08:00:00", "finish": "2026-03-03T17:00:00"},
                        "actual_start": "2026-03-02T10:00:00", "percent_complete": 50}}),
    )
    .await
    .expect(StatusCode::OK);
    let s = api.schedule().await;
    assert_eq!(task(&s, "Spec")["start"], "2026-03-02T10:00:00");
    assert_eq!(task(&s, "Spec")["finish_variance"], 120);
    let gantt = api.get(&format!("/projects/{}/gantt.svg", api.project)).await;
    assert_eq!(gantt.status, StatusCode::OK);
    let content_type = gantt.header(header::CONTENT_TYPE);
    assert!(content_type.starts_with("image/svg+xml"), "{content_type}");
    let svg = String::from_utf8(gantt.bytes).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..80]);
    for needle in
        [&format!("#{spec} Spec") as &str, "class=\"baseline\"", "class=\"dep", "class=\"bar critical\""]
    {
        assert!(svg.contains(needle), "the chart lacks {needle}");
    }
    let plain = api.get(&format!("/projects/{}/gantt.svg?baseline=false", api.project)).await;
    assert!(!String::from_utf8(plain.bytes).unwrap().contains("class=\"baseline\""));
}

#[tokio::test]
async fn planning_errors_name_what_is_wrong() {
    let api = api().await;
    let a = api.task("Alpha", json!({"duration": 480})).await;
    let b = api.task("Beta", json!({"duration": 480})).await;
    api.depend(a, b, json!({"type": "FS"})).await;

    // Bad planning fields: 422 naming the field, nothing written.
    for (plan, field) in [
        (json!({"duration": -30}), "plan.duration"),
        (json!({"percent_complete": 150}), "plan.percent_complete"),
        (json!({"mode": "manual"}), "plan.start"),
        (json!({"actual_finish": "2026-03-02T08:00:00"}), "plan.actual_finish"),
        (json!({"resource": "00000000-0000-0000-0000-00000000dead"}), "plan.resource"),
    ] {
        let (f, message) = api.patch(&format!("/items/{a}"), json!({"plan": plan})).await.invalid();
        assert_eq!(f, field, "{message}");
    }
    let item = api.get(&format!("/items/{a}")).await.expect(StatusCode::OK);
    assert_eq!(item["plan"]["duration"], 480);
    assert_eq!(item["plan"]["percent_complete"], 0);
    let bad_shape = api.patch(&format!("/items/{a}"), json!({"plan": {"duration": "two days"}})).await;
    assert!(bad_shape.status.is_client_error(), "{:?}", bad_shape.status);

    // Tickets are not planned.
    let ticket = api
        .post("/items", json!({"item_type": api.ticket_type, "title": "Bug", "project": api.project}))
        .await
        .expect(StatusCode::CREATED);
    let (field, _) =
        api.patch(&format!("/items/{}", ticket["number"]), json!({"plan": {"duration": 60}})).await.invalid();
    assert_eq!(field, "plan");

    // A dependency timing on a relates link, or an absurd lag.
    let (field, _) = api
        .post(&format!("/items/{a}/links"), json!({"to": b, "kind": "relates", "dependency": {"type": "SS"}}))
        .await
        .invalid();
    assert_eq!(field, "dependency");
    let (field, _) = api
        .post(
            &format!("/items/{a}/links"),
            json!({"to": b, "kind": "blocks", "dependency": {"type": "SS", "lag": {"unit": "working", "value": 99_999_999}}}),
        )
        .await
        .invalid();
    assert_eq!(field, "dependency.lag");

    // A cycle: 422 naming the tasks in the loop.
    let c = api.task("Gamma", json!({"duration": 480})).await;
    api.depend(b, c, json!({"type": "FS"})).await;
    let back = api.depend(c, a, json!({"type": "FS"})).await;
    let (field, message) = api.get(&format!("/projects/{}/schedule", api.project)).await.invalid();
    assert_eq!(field, "schedule");
    for name in [format!("#{a} Alpha"), format!("#{b} Beta"), format!("#{c} Gamma")] {
        assert!(message.contains(&name), "{message}");
    }
    api.get(&format!("/projects/{}/gantt.svg", api.project)).await.invalid();
    api.send(Method::DELETE, &format!("/links/{}", back["id"].as_str().unwrap()), ADMIN, None)
        .await
        .expect(StatusCode::NO_CONTENT);

    // A pinned date its predecessor rules out: 422 naming the task, its constraint and the predecessor.
    api.patch(
        &format!("/items/{a}"),
        json!({"plan": {"constraint": {"type": "start_no_earlier_than", "date": "2026-03-02T08:00:00"}}}),
    )
    .await
    .expect(StatusCode::OK);
    api.patch(
        &format!("/items/{b}"),
        json!({"plan": {"constraint": {"type": "must_start_on", "date": "2026-03-02T08:00:00"}}}),
    )
    .await
    .expect(StatusCode::OK);
    let (field, message) = api.get(&format!("/projects/{}/schedule", api.project)).await.invalid();
    assert_eq!(field, "schedule");
    assert!(message.contains(&format!("#{b} Beta")) && message.contains(&format!("#{a} Alpha")), "{message}");
    assert!(message.contains("must start on"), "{message}");

    // Query parameters and calendars are checked too.
    let path = format!("/projects/{}/schedule", api.project);
    assert_eq!(api.get(&format!("{path}?start=soon")).await.invalid().0, "start");
    assert_eq!(
        api.get(&format!("{path}?start=2026-03-09&deadline=2026-03-02")).await.invalid().0,
        "deadline"
    );
    assert_eq!(api.get(&format!("{path}?colour=red")).await.invalid().0, "colour");
    let no_week = api.send(Method::PUT, "/calendars/workspace", ADMIN, Some(json!({"exceptions": []}))).await;
    assert_eq!(no_week.invalid().0, "week");
    let backwards = json!({"week": {"days": ["09:00-17:00", "09:00-17:00", "09:00-17:00", "09:00-17:00", "09:00-17:00", "", ""]},
                           "exceptions": [{"name": "Break", "from": "2026-12-31", "to": "2026-12-20"}]});
    let (field, message) =
        api.send(Method::PUT, "/calendars/workspace", ADMIN, Some(backwards)).await.invalid();
    assert_eq!(field, "exceptions[0]", "{message}");
    let bad_hours = json!({"week": {"days": ["17:00-09:00", "", "", "", "", "", ""]}});
    let r = api.send(Method::PUT, "/calendars/workspace", ADMIN, Some(bad_hours)).await;
    assert!(r.status.is_client_error(), "{:?}", r.status);
    assert_eq!(api.get("/calendars/workspace").await.status, StatusCode::NOT_FOUND);

    // Customers see no plans; agents cannot change the workspace calendar.
    let customer = api.send(Method::GET, &path, &api.customer, None).await;
    assert_eq!(customer.status, StatusCode::FORBIDDEN);
    let week = json!({"week": {"days": ["09:00-17:00", "", "", "", "", "", ""]}});
    let agent = api.send(Method::PUT, "/calendars/workspace", &api.agent, Some(week)).await;
    assert_eq!(agent.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.get("/projects/00000000-0000-0000-0000-000000000000/schedule").await.status,
        StatusCode::NOT_FOUND
    );
}
