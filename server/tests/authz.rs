#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The authorization matrix: every route of the API (`tandem_server::api::routes()`, the table
//! the router itself is built from, so no route exists without a rule) × every kind of caller
//! → the status its rule says, through the real router. A route whose outcome for some caller
//! disagrees with its rule fails the test with the route's name, the caller and what came back.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::{Action, Desk, Limits};
use tandem_server::api::{Route, Rule, routes};
use tandem_server::{AdminToken, AppState, SignInConfig, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

const ADMIN: &str = "tdm_authorization_matrix_admin";
const BOUNDARY: &str = "tandem-matrix-boundary";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Manager,
    Agent,
    Collaborator,
    Customer,
    /// The administrator's read-only token.
    ReadToken,
    Anonymous,
}

/// The callers, least powerful first: a route that deletes what it names does so last.
const EVERYONE: [Who; 7] =
    [Who::Anonymous, Who::ReadToken, Who::Customer, Who::Collaborator, Who::Agent, Who::Manager, Who::Admin];

/// What a caller must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Past authentication and authorization: anything but 401 and 403 (a 404 for a record a
    /// request names, a 409 for a duplicate name... are the route's business).
    Allowed,
    Status(StatusCode),
    /// Whatever an anonymous caller gets: the route does not look at who calls.
    AsAnonymous,
    /// Past authentication; whether this caller may act on the record is the command's rule.
    Authenticated,
    /// Refused: 403, or 404 for a record the caller may not know of.
    Refused,
}

/// The policy, written out role by role (independently of `access::can`). The matrix's items are
/// in no project and nobody in it requested or follows them; nobody holds a project role.
fn may(who: Who, action: Action) -> bool {
    use Action::*;
    match who {
        Who::Admin => true,
        // The administrator's read-only token: their role, within the read scope.
        Who::ReadToken => matches!(action, ViewDirectory | ViewAudit | ViewItem | ViewInternal | ViewHistory),
        Who::Manager => action != AdministerWorkspace,
        Who::Agent => !matches!(action, AdministerWorkspace | ManageStructure | ManageUsers | ManageMembers),
        // Collaborators work in the projects they belong to: nothing here but the directory.
        Who::Collaborator => matches!(action, ViewDirectory | ViewItem | RequestToJoin),
        // Customers' item rights hold on their own items.
        Who::Customer => matches!(action, CreateItem | ViewItem),
        Who::Anonymous => false,
    }
}

fn expected(route: &Route, who: Who) -> Expect {
    use Expect::*;
    let forbidden = Status(StatusCode::FORBIDDEN);
    if route.rule == Rule::Public {
        return AsAnonymous;
    }
    if who == Who::Anonymous {
        return Status(StatusCode::UNAUTHORIZED);
    }
    if who == Who::ReadToken && route.method != Method::GET {
        return forbidden;
    }
    match route.rule {
        Rule::Public | Rule::SignedIn => Allowed,
        Rule::ServerAdmin => forbidden,
        Rule::Workspace(action) => {
            if may(who, action) {
                Allowed
            } else {
                forbidden
            }
        }
        Rule::Staff if who == Who::Customer => Refused,
        Rule::Staff => Authenticated,
        // An item a customer or collaborator cannot see does not exist, as far as they can tell.
        Rule::Item(_) if matches!(who, Who::Customer | Who::Collaborator) => Status(StatusCode::NOT_FOUND),
        Rule::Item(action) => {
            if may(who, action) {
                Allowed
            } else {
                forbidden
            }
        }
    }
}

/// The records the requests name.
struct World {
    app: Router,
    _dir: tempfile::TempDir,
    tokens: Vec<(Who, String)>,
    ids: Vec<(&'static str, String)>,
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Payload,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Payload::None => Body::empty(),
        Payload::Json(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        Payload::File => {
            req = req.header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"));
            Body::from(format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                 Content-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n"
            ))
        }
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[derive(Debug, Clone)]
enum Payload {
    None,
    Json(Value),
    File,
}

impl World {
    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let payload = if body.is_null() { Payload::None } else { Payload::Json(body) };
        let (status, body) = call(&self.app, method, path, Some(ADMIN), payload).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    fn id(&self, name: &str) -> &str {
        &self.ids.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no {name} in the world")).1
    }

    async fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.db"), SqliteOptions::default()).unwrap();
        let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
        let app =
            router(AppState::with_sign_in(desk, AdminToken::from_secret(ADMIN), SignInConfig::default()));
        let mut w = World { app, _dir: dir, tokens: Vec::new(), ids: Vec::new() };
        w.admin(Method::POST, "/workspaces", json!({"name": "Matrix"})).await;
        for (who, name, role) in [
            (Who::Admin, "Ada Admin", "admin"),
            (Who::Manager, "Max Manager", "manager"),
            (Who::Agent, "Ana Agent", "agent"),
            (Who::Collaborator, "Cleo Collab", "collaborator"),
            (Who::Customer, "Carl Customer", "customer"),
        ] {
            let email = format!("{}@matrix.example", name.split(' ').next().unwrap().to_lowercase());
            let user =
                w.admin(Method::POST, "/users", json!({"name": name, "email": email, "role": role})).await;
            let id = user["id"].as_str().unwrap().to_string();
            let token = w
                .admin(Method::POST, &format!("/users/{id}/tokens"), json!({"name": "m", "scope": "admin"}))
                .await;
            w.tokens.push((who, token["secret"].as_str().unwrap().to_string()));
            if who == Who::Admin {
                let read = w
                    .admin(
                        Method::POST,
                        &format!("/users/{id}/tokens"),
                        json!({"name": "r", "scope": "read"}),
                    )
                    .await;
                w.tokens.push((Who::ReadToken, read["secret"].as_str().unwrap().to_string()));
            }
        }
        // The person the people routes are about, with a token to revoke.
        let vic = w
            .admin(
                Method::POST,
                "/users",
                json!({"name": "Vic Target", "email": "vic@matrix.example", "role": "agent"}),
            )
            .await;
        let vic = vic["id"].as_str().unwrap().to_string();
        let token = w
            .admin(Method::POST, &format!("/users/{vic}/tokens"), json!({"name": "v", "scope": "write"}))
            .await;
        w.ids.push(("token", token["token"]["id"].as_str().unwrap().to_string()));
        w.ids.push(("user", vic));
        let types = w.admin(Method::GET, "/item-types", Value::Null).await;
        for t in types.as_array().unwrap() {
            let name = if t["kind"] == "ticket" { "ticket_type" } else { "task_type" };
            w.ids.push((name, t["id"].as_str().unwrap().to_string()));
        }
        let portfolio = w.admin(Method::POST, "/portfolios", json!({"name": "Clinics"})).await;
        w.ids.push(("portfolio", portfolio["id"].as_str().unwrap().to_string()));
        let project = w.admin(Method::POST, "/projects", json!({"name": "Rollout"})).await;
        let project = project["id"].as_str().unwrap().to_string();
        let folder = w.admin(Method::POST, "/folders", json!({"project": project, "name": "Phase 1"})).await;
        w.ids.push(("project", project));
        w.ids.push(("folder", folder["id"].as_str().unwrap().to_string()));
        let team = w.admin(Method::POST, "/teams", json!({"name": "Front desk"})).await;
        w.ids.push(("team", team["id"].as_str().unwrap().to_string()));
        // Two tickets nobody in the matrix requested or follows, linked; one with a file.
        for title in ["Printer on fire", "Scanner jams"] {
            let item = w
                .admin(Method::POST, "/items", json!({"item_type": w.id("ticket_type"), "title": title}))
                .await;
            assert!(item["number"].is_i64());
        }
        let link = w.admin(Method::POST, "/items/1/links", json!({"to": 2})).await;
        w.ids.push(("link", link["id"].as_str().unwrap().to_string()));
        let org = w.admin(Method::POST, "/organizations", json!({"name": "Clinic group"})).await;
        w.ids.push(("organization", org["id"].as_str().unwrap().to_string()));
        // A join request to decide on, from the collaborator.
        let cleo = w.tokens.iter().find(|(t, _)| *t == Who::Collaborator).unwrap().1.clone();
        let path = format!("/projects/{}/join-requests", w.id("project"));
        let (status, request) =
            call(&w.app, Method::POST, &path, Some(&cleo), Payload::Json(json!({"note": "let me in"}))).await;
        assert_eq!(status, StatusCode::CREATED, "{request}");
        w.ids.push(("join_request", request["id"].as_str().unwrap().to_string()));
        let rule = w
            .admin(
                Method::POST,
                "/automations",
                json!({"name": "Triage", "trigger": {"type": "item_created"},
                    "actions": [{"type": "set_priority", "priority": "high"}]}),
            )
            .await;
        w.ids.push(("automation", rule["id"].as_str().unwrap().to_string()));
        let hook = w.admin(Method::POST, "/webhooks", json!({"url": "https://hooks.example/tandem"})).await;
        w.ids.push(("webhook", hook["id"].as_str().unwrap().to_string()));
        let flow = w.admin(Method::POST, "/flows", w.flow_body("Matrix flow")).await;
        w.ids.push(("flow", flow["id"].as_str().unwrap().to_string()));
        let endpoint = w
            .admin(
                Method::POST,
                "/hook-endpoints",
                json!({"name": "Matrix hook", "target": {"type": "flow", "flow": flow["id"]}}),
            )
            .await;
        w.ids.push(("hook_endpoint", endpoint["id"].as_str().unwrap().to_string()));
        let sub = w
            .admin(
                Method::POST,
                "/hooks/subscriptions",
                json!({"event": "item.created", "target_url": "https://hooks.example/sub"}),
            )
            .await;
        w.ids.push(("subscription", sub["id"].as_str().unwrap().to_string()));
        let (status, file) =
            call(&w.app, Method::POST, "/items/1/attachments", Some(ADMIN), Payload::File).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        w.ids.push(("attachment", file["id"].as_str().unwrap().to_string()));
        w
    }

    fn flow_body(&self, name: &str) -> Value {
        json!({"name": name, "trigger": {"type": "incoming_webhook"},
            "steps": [{"type": "add_message", "item": "{{trigger.n}}", "body": "hi"}]})
    }

    /// The route's path with its parameters filled in with records of the world.
    fn path(&self, route: &Route) -> String {
        let nothing = "0190f0f0-0000-7000-8000-000000000000";
        let param = match route.path {
            p if p.contains("{item}") || p.starts_with("/tickets/") || p.starts_with("/tasks/") => "1",
            p if !p.contains('{') => return p.to_string(),
            p if p.starts_with("/portfolios/") => self.id("portfolio"),
            p if p.starts_with("/projects/") => self.id("project"),
            p if p.starts_with("/folders/") => self.id("folder"),
            p if p.starts_with("/item-types/") => self.id("ticket_type"),
            p if p.starts_with("/users/") => self.id("user"),
            p if p.starts_with("/tokens/") => self.id("token"),
            p if p.starts_with("/teams/") => self.id("team"),
            p if p.starts_with("/links/") => self.id("link"),
            p if p.starts_with("/attachments/") => self.id("attachment"),
            p if p.starts_with("/webhooks/") => self.id("webhook"),
            p if p.starts_with("/organizations/") => self.id("organization"),
            p if p.starts_with("/join-requests/") => self.id("join_request"),
            p if p.starts_with("/auth/magic/") => "tdm_not_a_link",
            p if p.starts_with("/automations/") => self.id("automation"),
            p if p.starts_with("/flows/") => self.id("flow"),
            p if p.starts_with("/hook-endpoints/") => self.id("hook_endpoint"),
            p if p.starts_with("/hooks/subscriptions/") => self.id("subscription"),
            p if p.starts_with("/hooks/in/") => "hk_not_a_token",
            p if p.starts_with("/flow-runs/") => nothing,
            // No such plugin: past the rule, an administrator gets 404.
            p if p.starts_with("/plugins/") => "matrix-plugin",
            p if p.starts_with("/notifications/")
                || p.starts_with("/jobs/")
                || p.starts_with("/views/")
                || p.starts_with("/reports/")
                || p.starts_with("/time-entries/")
                || p.starts_with("/kb/")
                || p.starts_with("/chats/")
                || p.starts_with("/me/chats/") =>
            {
                nothing
            }
            p => panic!("{} {p}: the matrix does not know what to put in this route's path", route.method),
        };
        let mut path = route.path.to_string();
        let mut first = true;
        while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
            let value = match &path[start..=end] {
                _ if first => param,
                "{user}" => self.id("user"),
                other => panic!("{} {}: no value for {other}", route.method, route.path),
            };
            path.replace_range(start..=end, value);
            first = false;
        }
        path
    }

    /// A well-formed body for the route, so that what decides the answer is who calls.
    fn body(&self, route: &Route, who: Who) -> Payload {
        let m = &route.method;
        let json = |v: Value| Payload::Json(v);
        let unique = format!("{who:?}").to_lowercase();
        match (m.as_str(), route.path) {
            ("GET" | "DELETE", _) => Payload::None,
            // A different address each time, so that the matrix's own failures lock nobody out.
            ("POST", "/auth/login") => {
                json(json!({"email": format!("{unique}@nobody.example"), "password": "not the password"}))
            }
            ("POST", "/auth/logout") => Payload::None,
            ("POST", "/auth/magic-link") => json(json!({"email": "nobody@matrix.example"})),
            ("POST", "/workspaces") => json(json!({"name": format!("W {unique}")})),
            ("PATCH", "/workspace") => json(json!({"name": "Matrix"})),
            ("POST", "/portfolios") => json(json!({"name": format!("P {unique}")})),
            ("PATCH", "/portfolios/{id}") => json(json!({"name": "Clinics"})),
            ("POST", "/projects") => json(json!({"name": format!("Pr {unique}")})),
            ("PATCH", "/projects/{id}") => json(json!({"description": "d"})),
            ("POST", "/folders") => {
                json(json!({"project": self.id("project"), "name": format!("F {unique}")}))
            }
            ("PATCH", "/folders/{id}") => json(json!({"name": "Phase 1"})),
            ("POST", "/item-types") => json(json!({"name": format!("T {unique}"), "kind": "ticket"})),
            ("PATCH", "/item-types/{id}") => json(json!({"description": "d"})),
            ("POST", "/item-types/{id}/workflow") => {
                json(json!({"op": "add_status", "name": format!("S {unique}"), "category": "in_progress"}))
            }
            ("POST", "/item-types/{id}/fields") => json(json!({
                "op": "add", "field": {"key": format!("f_{unique}"), "label": "F", "kind": "text"}
            })),
            ("POST", "/users") => {
                json(json!({"name": "New", "email": format!("{unique}@new.example"), "role": "agent"}))
            }
            ("PATCH", "/users/{id}") => json(json!({"name": "Vic Target"})),
            ("POST", "/users/{id}/password") => json(json!({"password": "a long enough passphrase"})),
            ("POST", "/users/{id}/tokens") => json(json!({"name": "n", "scope": "read"})),
            ("POST", "/teams") => json(json!({"name": format!("Team {unique}")})),
            ("PATCH", "/teams/{id}") => json(json!({"name": "Front desk"})),
            ("POST", "/notifications/{id}/read") => Payload::None,
            ("POST", "/items") => json(json!({"item_type": self.id("ticket_type"), "title": "New"})),
            ("PATCH", "/items/{item}") => json(json!({"title": "Printer on fire"})),
            ("POST", "/items/{item}/transition") => json(json!({"status": "triage"})),
            ("POST", "/items/{item}/close") => Payload::None,
            ("PUT", "/items/{item}/assignees") => json(json!({"assignees": []})),
            ("POST", "/items/{item}/followers") => json(json!({"add": [], "remove": []})),
            ("POST", "/items/{item}/convert") => json(json!({"item_type": self.id("ticket_type")})),
            ("POST", "/items/{item}/links") => json(json!({"to": 2, "kind": "relates"})),
            ("PATCH", "/mail/settings") => json(json!({"copied_follow": true})),
            ("POST", "/items/{item}/messages") => {
                json(json!({"visibility": "public", "body": {"format": "text", "content": "Hello"}}))
            }
            ("POST", "/items/{item}/attachments") => Payload::File,
            ("POST", "/jobs/{id}/retry") => Payload::None,
            ("POST", "/organizations") => json(json!({"name": format!("Org {unique}")})),
            ("PATCH", "/organizations/{id}") => json(json!({"name": "Clinic group"})),
            ("PUT", "/projects/{id}/members/{user}") => json(json!({"role": "member"})),
            ("POST", "/projects/{id}/join-requests") => json(json!({"note": "please"})),
            ("POST", "/join-requests/{id}/approve" | "/join-requests/{id}/deny") => json(json!({})),
            ("PATCH", "/portal") => json(json!({})),
            ("POST", "/webhooks") => json(json!({"url": "https://hooks.example/tandem", "events": []})),
            ("PATCH", "/webhooks/{id}") => json(json!({"active": false})),
            ("POST", "/automations") => json(json!({"name": format!("Rule {unique}"),
                "trigger": {"type": "item_created"},
                "actions": [{"type": "set_priority", "priority": "high"}]})),
            ("POST", "/automations/reorder") => json(json!({"order": [self.id("automation")]})),
            ("POST", "/automations/dry-run") => json(json!({"item": 1})),
            ("PATCH", "/automations/{id}") => json(json!({"name": "Renamed"})),
            ("POST", "/automations/{id}/enable" | "/automations/{id}/disable") => Payload::None,
            ("PUT", "/calendars/workspace" | "/users/{id}/calendar") => json(json!({"exceptions": []})),
            ("POST", "/flows") | ("PUT", "/flows/{id}") => json(self.flow_body(&format!("Flow {unique}"))),
            ("POST", "/flows/{id}/enable" | "/flows/{id}/disable" | "/flow-runs/{id}/replay") => {
                Payload::None
            }
            ("POST", "/hook-endpoints") => json(json!({"name": format!("Hook {unique}"),
                "target": {"type": "create_item", "item_type": self.id("ticket_type"), "title": "{{trigger.t}}"}})),
            ("POST", "/hooks/in/{token}") => json(json!({"t": "x"})),
            ("POST", "/hooks/subscriptions") => {
                json(json!({"event": "item.created", "target_url": "https://hooks.example/sub"}))
            }
            // Not a plugin upload (no wasm or manifest part): refused before it is read unless
            // the caller is an administrator, who gets 422.
            ("POST", "/plugins" | "/plugins/{id}/upgrade") => Payload::File,
            ("POST", "/plugins/{id}/approve") => json(json!({})),
            ("PUT", "/plugins/{id}/config") => json(json!({"team": "it"})),
            ("POST", "/plugins/{id}/enable" | "/plugins/{id}/disable") => Payload::None,
            ("POST", "/views") => json(json!({"name": format!("View {unique}")})),
            ("POST", "/reports") => json(json!({"name": format!("Report {unique}"),
                "view": "0190f0f0-0000-7000-8000-000000000000", "schedule": {"every": "day", "at": "08:00"},
                "recipients": [{"address": "ops@matrix.example"}]})),
            ("PATCH", "/reports/{id}") => json(json!({"enabled": false})),
            ("POST", "/reports/{id}/send") => Payload::None,
            ("POST", "/projects/{id}/import/csv") => json(json!({
                "csv": "title\nImported by the matrix\n", "item_type": self.id("ticket_type"), "dry_run": true
            })),
            ("POST", "/projects/{id}/import/mspdi") => json(json!({
                "xml": "<Project><Tasks><Task><UID>1</UID><Name>T</Name></Task></Tasks></Project>",
                "item_type": self.id("ticket_type"), "dry_run": true
            })),
            ("PATCH", "/views/{id}") => json(json!({"name": "Renamed"})),
            ("POST", "/views/{id}/board/move") => json(json!({"item": 1, "status": "waiting"})),
            ("POST", "/items/{item}/time") => {
                json(json!({"started_at": "2026-01-05T09:00:00Z", "minutes": 30}))
            }
            ("POST", "/items/{item}/timer" | "/timer/pause" | "/timer/resume" | "/timer/stop") => {
                json(json!({}))
            }
            ("POST", "/time-entries/submit") => {
                json(json!({"entries": ["0190f0f0-0000-7000-8000-000000000000"]}))
            }
            ("PATCH", "/time-entries/{id}") => json(json!({"minutes": 20})),
            ("POST", "/time-entries/{id}/approve") => Payload::None,
            ("POST", "/time-entries/{id}/reject") => json(json!({"reason": "Wrong item"})),
            ("POST", "/kb/categories") => json(json!({"name": format!("Pumps {unique}")})),
            ("PATCH", "/kb/categories/{id}") => json(json!({"name": "Filters"})),
            ("POST", "/kb/articles") => json(
                json!({"title": "Cleaning the pump", "body": {"format": "text", "content": "Unplug it."}}),
            ),
            ("PATCH", "/kb/articles/{id}") => json(json!({"title": "Cleaning the filter"})),
            ("POST", "/kb/articles/{id}/publish" | "/kb/articles/{id}/unpublish") => Payload::None,
            ("POST", "/chats/{id}/take" | "/chats/{id}/end") => Payload::None,
            ("POST", "/chats/{id}/messages") => json(json!({"text": "How can I help?"})),
            (method, path) => {
                panic!("{method} {path}: the matrix has no request body for this route; add one")
            }
        }
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_its_rule_says() {
    let w = World::new().await;
    let all = routes();
    assert!(all.len() > 60, "the route table lists the whole API ({} routes)", all.len());
    let mut seen = std::collections::HashSet::new();
    for r in &all {
        assert!(seen.insert((r.method.clone(), r.path)), "{} {} is in the table twice", r.method, r.path);
    }
    let mut wrong = Vec::new();
    let mut checked = 0;
    for route in &all {
        let path = w.path(route);
        let (anonymous, _) =
            call(&w.app, route.method.clone(), &path, None, w.body(route, Who::Anonymous)).await;
        for who in EVERYONE {
            let token = w.tokens.iter().find(|(t, _)| *t == who).map(|(_, s)| s.as_str());
            let (status, body) = call(&w.app, route.method.clone(), &path, token, w.body(route, who)).await;
            let unrouted =
                body["error"]["message"] == "no such endpoint" || status == StatusCode::METHOD_NOT_ALLOWED;
            let expect = expected(route, who);
            let ok = !unrouted
                && match expect {
                    Expect::Allowed => status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    Expect::Status(s) => status == s,
                    Expect::AsAnonymous => status == anonymous,
                    Expect::Authenticated => status != StatusCode::UNAUTHORIZED,
                    Expect::Refused => status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                };
            checked += 1;
            if !ok {
                wrong.push(format!(
                    "{} {} ({:?}) as {who:?}: expected {expect:?}, got {status} {body}",
                    route.method, route.path, route.rule
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} answers disagree with the rules:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
