#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Saved views through the REST API: sharing, filters with custom fields and relative dates,
//! parse errors naming the position, and every layout's data — list (grouped, chosen columns),
//! tree, status board (moving a card is a workflow transition), month calendar and Gantt.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::{Datelike, Duration, Utc};
use common::router::Reply;
use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

const ADMIN: &str = "tdm_views_test_admin_token";

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
    agent: String,
    agent_id: String,
    other: String,
    manager: String,
    team: String,
    ticket_type: String,
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

    async fn item(&self, body: Value) -> Value {
        self.post("/items", ADMIN, body).await.expect(StatusCode::CREATED)
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("views.db"), SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let mut api = Api {
        app,
        _dir: dir,
        agent: String::new(),
        agent_id: String::new(),
        other: String::new(),
        manager: String::new(),
        team: String::new(),
        ticket_type: String::new(),
        task_type: String::new(),
    };
    api.post("/workspaces", ADMIN, json!({"name": "Hearing clinics"})).await.expect(StatusCode::CREATED);
    for t in api.get("/item-types", ADMIN).await.expect(StatusCode::OK).as_array().unwrap() {
        match t["kind"].as_str() {
            Some("task") => api.task_type = t["id"].as_str().unwrap().to_string(),
            _ => api.ticket_type = t["id"].as_str().unwrap().to_string(),
        }
    }
    // The marketing ticket type has a due date field.
    api.post(
        &format!("/item-types/{}/fields", api.ticket_type),
        ADMIN,
        json!({"op": "add", "field": {"key": "due", "label": "Due", "kind": "date"}}),
    )
    .await
    .expect(StatusCode::OK);
    let mut ids = Vec::new();
    for (name, role) in [("Ann Agent", "agent"), ("Otto Other", "agent"), ("Mia Manager", "manager")] {
        let email = format!("{}@clinic.example", name.split(' ').next().unwrap().to_lowercase());
        let user = api.post("/users", ADMIN, json!({"name": name, "email": email, "role": role})).await;
        let id = user.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
        let token = api
            .post(&format!("/users/{id}/tokens"), ADMIN, json!({"name": "t", "scope": "write"}))
            .await
            .expect(StatusCode::CREATED)["secret"]
            .as_str()
            .unwrap()
            .to_string();
        ids.push((id, token));
    }
    (api.agent_id, api.agent) = ids[0].clone();
    api.other = ids[1].1.clone();
    api.manager = ids[2].1.clone();
    let team = api.post("/teams", ADMIN, json!({"name": "Marketing", "members": [ids[0].0]})).await;
    api.team = team.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string();
    api
}

#[tokio::test]
async fn views_filter_share_and_lay_out_items() {
    let api = api().await;
    let fields = api.get(&format!("/item-types/{}", api.ticket_type), ADMIN).await.expect(StatusCode::OK);
    assert!(fields["fields"].as_array().unwrap().iter().any(|f| f["key"] == "due"), "{fields}");
    let today = Utc::now().date_naive();
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let in_week = monday + Duration::days(2);
    let later = monday + Duration::days(20);

    let portfolio =
        api.post("/portfolios", ADMIN, json!({"name": "Marketing"})).await.expect(StatusCode::CREATED);
    let project = api
        .post("/projects", ADMIN, json!({"name": "Spring campaign", "portfolio": portfolio["id"]}))
        .await
        .expect(StatusCode::CREATED);
    let folder = api
        .post("/folders", ADMIN, json!({"name": "Print", "project": project["id"]}))
        .await
        .expect(StatusCode::CREATED);
    let flyer = api
        .item(json!({"item_type": api.ticket_type, "title": "Flyer for Delft", "project": project["id"],
                     "folder": folder["id"], "priority": "high", "custom": {"due": in_week.to_string()},
                     "assignees": [{"type": "user", "id": api.agent_id}]}))
        .await;
    let poster = api
        .item(json!({"item_type": api.ticket_type, "title": "Poster for Utrecht", "project": project["id"],
                     "custom": {"due": later.to_string()}}))
        .await;
    let proof = api
        .item(json!({"item_type": api.ticket_type, "title": "Proofread flyer", "project": project["id"],
                     "parent": flyer["id"], "custom": {"due": in_week.to_string()}}))
        .await;
    api.item(json!({"item_type": api.ticket_type, "title": "Printer broken"})).await;

    // Personal by default: invisible to others; sharing needs a manager.
    let mine = api
        .post(
            "/views",
            &api.agent,
            json!({"name": "Due this week", "filter": "custom.due = this_week and project = ".to_string() + project["id"].as_str().unwrap(),
                   "sort": [{"field": "priority", "descending": true}], "columns": ["number", "title", "custom.due", "assignee"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let mine_id = mine["id"].as_str().unwrap();
    assert_eq!(api.get(&format!("/views/{mine_id}"), &api.other).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/views", &api.other).await.expect(StatusCode::OK), json!([]));
    let share = json!({"sharing": {"with": "teams", "teams": [api.team]}});
    assert_eq!(
        api.send(Method::PATCH, &format!("/views/{mine_id}"), &api.agent, Some(share.clone())).await.status,
        StatusCode::FORBIDDEN
    );
    let shared = api
        .post("/views", &api.manager, json!({"name": "Campaign board", "layout": "board", "sharing": {"with": "teams", "teams": [api.team]},
                                              "filter": format!("project = {}", project["id"].as_str().unwrap())}))
        .await
        .expect(StatusCode::CREATED);
    let shared_id = shared["id"].as_str().unwrap();
    assert_eq!(api.get("/views", &api.agent).await.expect(StatusCode::OK).as_array().unwrap().len(), 2);
    assert_eq!(api.get(&format!("/views/{shared_id}"), &api.other).await.status, StatusCode::NOT_FOUND);

    // List: the due-this-week items, high priority first, with the chosen columns.
    let list = api.get(&format!("/views/{mine_id}/run"), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(list["layout"], "list");
    assert_eq!(list["columns"], json!(["number", "title", "custom.due", "assignee"]));
    let rows = list["groups"][0]["rows"].as_array().unwrap();
    let numbers: Vec<&Value> = rows.iter().map(|r| &r["number"]).collect();
    assert_eq!(numbers, [&flyer["number"], &proof["number"]]);
    assert_eq!(rows[0]["cells"][3], json!([api.agent_id]));
    // Grouped by priority.
    api.send(Method::PATCH, &format!("/views/{mine_id}"), &api.agent, Some(json!({"group_by": "priority", "filter": "project = ".to_string() + project["id"].as_str().unwrap()})))
        .await
        .expect(StatusCode::OK);
    let grouped = api.get(&format!("/views/{mine_id}/run"), &api.agent).await.expect(StatusCode::OK);
    let keys: Vec<&str> =
        grouped["groups"].as_array().unwrap().iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["normal", "high"]);
    assert_eq!(grouped["count"], 3);

    // Tree: portfolio → project → folder → item → sub-item.
    let tree = api.get(&format!("/views/{mine_id}/run?layout=tree"), &api.agent).await.expect(StatusCode::OK);
    let root = &tree["roots"][0];
    assert_eq!((root["kind"].as_str(), root["name"].as_str()), (Some("portfolio"), Some("Marketing")));
    let project_node = &root["children"][0];
    assert_eq!(project_node["kind"], "project");
    let folder_node = &project_node["children"][0];
    assert_eq!((folder_node["kind"].as_str(), folder_node["name"].as_str()), (Some("folder"), Some("Print")));
    assert_eq!(folder_node["children"][0]["number"], flyer["number"]);
    assert_eq!(folder_node["children"][0]["children"][0]["number"], proof["number"]);
    assert_eq!(project_node["children"][1]["number"], poster["number"]);

    // Board: columns are the workflow's statuses; moving a card is a transition.
    let board = api.get(&format!("/views/{shared_id}/run"), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(board["layout"], "board");
    let columns = board["columns"].as_array().unwrap();
    assert!(columns.len() >= 3, "{board}");
    let first = columns[0]["status"].as_str().unwrap();
    assert_eq!(columns[0]["cards"].as_array().unwrap().len(), 3);
    let target = columns[1]["status"].as_str().unwrap();
    let moved = api
        .post(
            &format!("/views/{shared_id}/board/move"),
            &api.agent,
            json!({"item": flyer["number"], "status": target, "version": flyer["version"]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(moved["status"], target);
    let history = api.get(&format!("/items/{}/history", flyer["number"]), ADMIN).await.expect(StatusCode::OK);
    assert!(history.as_array().unwrap().iter().any(|e| e["data"]["type"] == "status_changed"), "{history}");
    let stale = api
        .post(
            &format!("/views/{shared_id}/board/move"),
            &api.agent,
            json!({"item": flyer["number"], "status": first, "version": flyer["version"]}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text());
    let (field, _) = api
        .post(
            &format!("/views/{shared_id}/board/move"),
            &api.agent,
            json!({"item": flyer["number"], "status": "no_such_status"}),
        )
        .await
        .invalid();
    assert!(field.contains("status"), "{field}");
    let outside = api
        .post(&format!("/views/{shared_id}/board/move"), &api.agent, json!({"item": 4, "status": target}))
        .await;
    assert_eq!(outside.invalid().0, "item");

    // Calendar: this month's due dates (the later poster may fall into the next month).
    let month = format!("{:04}-{:02}", in_week.year(), in_week.month());
    let cal = api
        .get(&format!("/views/{mine_id}/run?layout=calendar&month={month}"), &api.agent)
        .await
        .expect(StatusCode::OK);
    assert_eq!(cal["month"], month);
    let due: Vec<&Value> = cal["entries"].as_array().unwrap().iter().map(|e| &e["due"]).collect();
    assert!(due.contains(&&json!(in_week.to_string())), "{cal}");

    // Parse errors name the position; bad fields name the column.
    let (field, message) = api
        .post("/views", &api.agent, json!({"name": "Broken", "filter": "status = open and"}))
        .await
        .invalid();
    assert_eq!(field, "filter");
    assert!(message.contains("position 18"), "{message}");
    let (field, _) = api
        .post("/views", &api.agent, json!({"name": "Broken", "columns": ["title", "colour"]}))
        .await
        .invalid();
    assert_eq!(field, "columns[1]");
    let (field, _) = api
        .post("/views", &api.agent, json!({"name": "Broken", "sort": [{"field": "size"}]}))
        .await
        .invalid();
    assert_eq!(field, "sort[0].field");
    let (field, _) = api.get(&format!("/views/{mine_id}/run?layout=kanban"), &api.agent).await.invalid();
    assert_eq!(field, "layout");
    let (field, _) = api.get(&format!("/views/{mine_id}/run?month=March"), &api.agent).await.invalid();
    assert_eq!(field, "month");

    // Only the owner (or a manager for shared views) changes or deletes.
    assert_eq!(
        api.send(Method::DELETE, &format!("/views/{shared_id}"), &api.agent, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.send(Method::DELETE, &format!("/views/{mine_id}"), &api.agent, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.send(Method::DELETE, &format!("/views/{shared_id}"), &api.manager, None).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_gantt_view_schedules_its_tasks() {
    let api = api().await;
    let project = api.post("/projects", ADMIN, json!({"name": "Website"})).await.expect(StatusCode::CREATED);
    let mut numbers = Vec::new();
    for (title, minutes) in [("Design", 960), ("Build", 1440)] {
        let t = api.item(json!({"item_type": api.task_type, "title": title, "project": project["id"]})).await;
        let n = t["number"].as_i64().unwrap();
        api.send(
            Method::PATCH,
            &format!("/items/{n}"),
            ADMIN,
            Some(json!({"plan": {"duration": minutes, "constraint": {"type": "start_no_earlier_than", "date": "2026-03-02T08:00:00"}}})),
        )
        .await
        .expect(StatusCode::OK);
        numbers.push(n);
    }
    api.post(&format!("/items/{}/links", numbers[0]), ADMIN, json!({"to": numbers[1], "kind": "blocks"}))
        .await
        .expect(StatusCode::CREATED);
    let view = api
        .post(
            "/views",
            &api.agent,
            json!({"name": "Website plan", "layout": "gantt", "filter": "kind = task"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = view["id"].as_str().unwrap();
    let run = api.get(&format!("/views/{id}/run"), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(run["layout"], "gantt");
    assert_eq!(run["tasks"].as_array().unwrap().len(), 2);
    let build = run["schedule"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().ends_with("Build"))
        .unwrap();
    assert_eq!(build["start"], "2026-03-04T08:00:00");
    assert_eq!(run["schedule"]["critical_path"].as_array().unwrap().len(), 2);
    let svg = api.get(&format!("/views/{id}/gantt.svg"), &api.agent).await;
    assert_eq!(svg.status, StatusCode::OK);
    let svg = svg.text();
    assert!(svg.contains("<svg") && svg.contains("Build"), "{}", svg.chars().take(200).collect::<String>());
}
