#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The REST API driven in-process through `tower::ServiceExt::oneshot`: every error class maps
//! to its status and error shape, and a refused request writes nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

const ADMIN: &str = "tdm_router_test_admin_token";
const ATTACHMENT_LIMIT: u64 = 4096;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {:?} {}", self.status, String::from_utf8_lossy(&self.bytes))
        })
    }

    #[track_caller]
    fn expect(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.bytes));
        if self.bytes.is_empty() { Value::Null } else { self.json() }
    }

    /// Asserts the API error shape and returns the error's `field`.
    #[track_caller]
    fn error(&self, status: StatusCode, code: &str) -> Option<String> {
        let body = self.expect(status);
        let error = &body["error"];
        assert_eq!(error["code"], code, "{body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        error["field"].as_str().map(str::to_string)
    }
}

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
    agent: String,
    customer: String,
    other_customer: String,
    customer_id: String,
    agent_id: String,
    ticket_type: String,
    task_type: String,
    form_type: String,
}

async fn request(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, bytes }
}

async fn send(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    request(app, req.body(Body::from(body)).unwrap()).await
}

impl Api {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        send(&self.app, method, path, token, content_type, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None, Vec::new()).await
    }

    async fn json(&self, method: Method, path: &str, token: &str, body: Value) -> Reply {
        self.send(method, path, Some(token), Some("application/json"), body.to_string().into_bytes()).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.json(Method::POST, path, token, body).await
    }

    async fn multipart(&self, path: &str, token: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Reply {
        let boundary = "tandem-test-boundary-7f3a";
        let mut body = Vec::new();
        for (name, filename, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/plain\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        self.send(Method::POST, path, Some(token), Some(&ct), body).await
    }

    async fn item_count(&self) -> usize {
        self.get("/items?limit=500", ADMIN).await.expect(StatusCode::OK)["items"].as_array().unwrap().len()
    }

    async fn history_len(&self, item: i64) -> usize {
        self.get(&format!("/items/{item}/history"), ADMIN)
            .await
            .expect(StatusCode::OK)
            .as_array()
            .unwrap()
            .len()
    }

    async fn event_count(&self) -> usize {
        self.get("/events?limit=1000", ADMIN).await.expect(StatusCode::OK).as_array().unwrap().len()
    }

    async fn create_ticket(&self, token: &str, title: &str) -> Value {
        self.post("/items", token, json!({"item_type": self.ticket_type, "title": title}))
            .await
            .expect(StatusCode::CREATED)
    }
}

async fn token_for(app: &Router, user: &str) -> String {
    let body = json!({"name": "test", "scope": "write"}).to_string().into_bytes();
    let issued = send(
        app,
        Method::POST,
        &format!("/users/{user}/tokens"),
        Some(ADMIN),
        Some("application/json"),
        body,
    )
    .await;
    issued.expect(StatusCode::CREATED)["secret"].as_str().unwrap().to_string()
}

/// A workspace with an agent, two customers, the default ticket/task types and a ticket type
/// with custom fields; attachments limited to 4 KiB.
async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("api.db"), SqliteOptions::default()).unwrap();
    let limits = Limits { max_attachment_bytes: ATTACHMENT_LIMIT, ..Limits::default() };
    let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), limits);
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let mut api = Api {
        app: app.clone(),
        _dir: dir,
        agent: String::new(),
        customer: String::new(),
        other_customer: String::new(),
        customer_id: String::new(),
        agent_id: String::new(),
        ticket_type: String::new(),
        task_type: String::new(),
        form_type: String::new(),
    };
    api.post("/workspaces", ADMIN, json!({"name": "Clinics"})).await.expect(StatusCode::CREATED);
    let mut ids = Vec::new();
    for (name, email, role) in [
        ("Ana Agent", "ana@desk.example", "agent"),
        ("Carl Customer", "carl@clinic.example", "customer"),
        ("Olga Other", "olga@other.example", "customer"),
    ] {
        let user = api.post("/users", ADMIN, json!({"name": name, "email": email, "role": role})).await;
        ids.push(user.expect(StatusCode::CREATED)["id"].as_str().unwrap().to_string());
    }
    api.agent = token_for(&app, &ids[0]).await;
    api.customer = token_for(&app, &ids[1]).await;
    api.other_customer = token_for(&app, &ids[2]).await;
    api.agent_id = ids[0].clone();
    api.customer_id = ids[1].clone();
    let types = api.get("/item-types", ADMIN).await.expect(StatusCode::OK);
    for t in types.as_array().unwrap() {
        match t["kind"].as_str() {
            Some("ticket") => api.ticket_type = t["id"].as_str().unwrap().to_string(),
            _ => api.task_type = t["id"].as_str().unwrap().to_string(),
        }
    }
    let form = api
        .post(
            "/item-types",
            ADMIN,
            json!({
                "name": "Marketing request",
                "kind": "ticket",
                "fields": [
                    {"key": "budget", "label": "Budget", "kind": "number", "rules": {"min": 0}},
                    {"key": "clinic", "label": "Clinic", "kind": "choice", "rules": {"options": ["Utrecht", "Delft"]}}
                ]
            }),
        )
        .await
        .expect(StatusCode::CREATED);
    api.form_type = form["id"].as_str().unwrap().to_string();
    api
}

#[tokio::test]
async fn health_needs_no_token_and_everything_else_does() {
    let api = api().await;
    let health = api.send(Method::GET, "/health", None, None, Vec::new()).await;
    assert_eq!(health.expect(StatusCode::OK), json!({"status": "ok"}));

    let before = api.item_count().await;
    let none = api.send(Method::GET, "/items", None, None, Vec::new()).await;
    assert_eq!(none.error(StatusCode::UNAUTHORIZED, "unauthorized"), None);
    assert_eq!(none.headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    api.get("/items", "tdm_not_a_real_token").await.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let basic = Request::builder()
        .uri("/api/v1/items")
        .header(header::AUTHORIZATION, format!("Basic {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    request(&api.app, basic).await.error(StatusCode::UNAUTHORIZED, "unauthorized");
    let body = json!({"item_type": api.ticket_type, "title": "Sneaky"}).to_string().into_bytes();
    api.send(Method::POST, "/items", None, Some("application/json"), body)
        .await
        .error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(api.item_count().await, before);
}

#[tokio::test]
async fn revoked_tokens_and_disabled_users_are_refused() {
    let api = api().await;
    let user = api
        .post("/users", ADMIN, json!({"name": "Temp", "email": "temp@desk.example", "role": "agent"}))
        .await;
    let user = user.expect(StatusCode::CREATED);
    let issued = api
        .post(
            &format!("/users/{}/tokens", user["id"].as_str().unwrap()),
            ADMIN,
            json!({"name": "ci", "scope": "read"}),
        )
        .await;
    let issued = issued.expect(StatusCode::CREATED);
    assert!(issued["token"].get("secret_sha256").is_none(), "the digest is not shown: {issued}");
    let secret = issued["secret"].as_str().unwrap();
    api.get("/items", secret).await.expect(StatusCode::OK);

    // A read-scoped token cannot write.
    let write = api.post("/items", secret, json!({"item_type": api.ticket_type, "title": "x"})).await;
    write.error(StatusCode::FORBIDDEN, "forbidden");

    let token_id = issued["token"]["id"].as_str().unwrap();
    let revoked =
        api.send(Method::DELETE, &format!("/tokens/{token_id}"), Some(ADMIN), None, Vec::new()).await;
    assert!(revoked.expect(StatusCode::OK)["revoked_at"].is_string());
    api.get("/items", secret).await.error(StatusCode::UNAUTHORIZED, "unauthorized");

    api.json(Method::PATCH, &format!("/users/{}", api.agent_id), ADMIN, json!({"active": false}))
        .await
        .expect(StatusCode::OK);
    api.get("/items", &api.agent).await.error(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn malformed_json_and_wrong_content_types_are_400_and_write_nothing() {
    let api = api().await;
    let before = (api.item_count().await, api.event_count().await);
    let cases: Vec<(Option<&str>, &[u8])> = vec![
        (Some("application/json"), b"{\"item_type\": "),
        (Some("application/json"), b"{\"title\": \"a\"} {}"),
        (Some("application/json"), b""),
        (Some("text/plain"), b"{\"title\": \"a\"}"),
        (None, b"{\"title\": \"a\"}"),
    ];
    for (ct, body) in cases {
        let reply = api.send(Method::POST, "/items", Some(&api.agent), ct, body.to_vec()).await;
        assert_eq!(reply.error(StatusCode::BAD_REQUEST, "bad_request"), None, "{ct:?}");
    }
    assert_eq!((api.item_count().await, api.event_count().await), before);
}

#[tokio::test]
async fn shape_errors_are_422_naming_the_field() {
    let api = api().await;
    let before = (api.item_count().await, api.event_count().await);
    let ticket = api.ticket_type.clone();
    let cases = [
        (json!({"item_type": ticket, "title": "a", "colour": "red"}), "colour"),
        (json!({"item_type": ticket}), "title"),
        (json!({"item_type": "not-a-uuid", "title": "a"}), "item_type"),
        (json!({"item_type": ticket, "title": 42}), "title"),
        (json!({"item_type": ticket, "title": "a", "priority": "whenever"}), "priority"),
        (json!({"item_type": api.form_type, "title": "a", "custom": {"budget": "lots"}}), "custom.budget"),
        (json!({"item_type": api.form_type, "title": "a", "custom": {"budget": -5}}), "custom.budget"),
        (json!({"item_type": api.form_type, "title": "a", "custom": {"clinic": "Paris"}}), "custom.clinic"),
        (json!({"item_type": api.form_type, "title": "a", "custom": {"mood": 1}}), "custom.mood"),
        (json!({"item_type": ticket, "title": "   "}), "title"),
    ];
    for (body, field) in cases {
        let reply = api.post("/items", &api.agent, body.clone()).await;
        assert_eq!(
            reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").as_deref(),
            Some(field),
            "{body}"
        );
    }
    // `json!` sorts keys; a client writing the tag first gets the full path.
    let raw = format!(
        r#"{{"item_type": "{ticket}", "title": "a", "assignees": [{{"type": "user", "id": "{}"}}, {{"type": "user", "id": "nope"}}]}}"#,
        api.agent_id
    );
    let reply =
        api.send(Method::POST, "/items", Some(&api.agent), Some("application/json"), raw.into_bytes()).await;
    assert_eq!(reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").as_deref(), Some("assignees[1].id"));
    assert_eq!((api.item_count().await, api.event_count().await), before);

    // Query parameters too.
    api.get("/items?status=triage&colour=red", &api.agent)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let bad_limit = api.get("/items?limit=9999", &api.agent).await;
    assert_eq!(bad_limit.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").as_deref(), Some("limit"));
}

#[tokio::test]
async fn customers_see_only_their_own_items_and_public_messages() {
    let api = api().await;
    let mine = api.create_ticket(&api.customer, "My hearing aid app crashes").await;
    let theirs = api.create_ticket(&api.other_customer, "Invoice question").await;
    let (mine_n, theirs_n) = (mine["number"].as_i64().unwrap(), theirs["number"].as_i64().unwrap());
    assert_eq!(mine["requester"], json!(api.customer_id));

    api.get(&format!("/items/{theirs_n}"), &api.customer).await.error(StatusCode::NOT_FOUND, "not_found");
    api.get(&format!("/items/{}", theirs["id"].as_str().unwrap()), &api.customer)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    api.get(&format!("/items/{theirs_n}/messages"), &api.customer)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let before = api.history_len(theirs_n).await;
    let poke = api
        .post(
            &format!("/items/{theirs_n}/messages"),
            &api.customer,
            json!({"visibility": "public", "body": {"format": "text", "content": "hi"}}),
        )
        .await;
    poke.error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(api.history_len(theirs_n).await, before);

    let listed = api.get("/items", &api.customer).await.expect(StatusCode::OK);
    let numbers: Vec<i64> =
        listed["items"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [mine_n]);

    api.post(
        &format!("/items/{mine_n}/messages"),
        &api.agent,
        json!({"visibility": "internal", "body": {"format": "text", "content": "Known bug in 2.3"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    api.post(&format!("/items/{mine_n}/messages"), &api.agent, json!({"visibility": "public", "body": {"format": "html", "content": "<p>Update to 2.4 <script>x()</script></p>"}}))
        .await
        .expect(StatusCode::CREATED);
    let staff_view = api.get(&format!("/items/{mine_n}/messages"), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(staff_view.as_array().unwrap().len(), 2);
    let customer_view =
        api.get(&format!("/items/{mine_n}/messages"), &api.customer).await.expect(StatusCode::OK);
    let customer_view = customer_view.as_array().unwrap();
    assert_eq!(customer_view.len(), 1);
    assert_eq!(customer_view[0]["visibility"], "public");
    assert!(!customer_view[0]["html"].as_str().unwrap().contains("script"));
    // Customers cannot write internal notes nor read history.
    api.post(
        &format!("/items/{mine_n}/messages"),
        &api.customer,
        json!({"visibility": "internal", "body": {"format": "text", "content": "psst"}}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "forbidden");
    api.get(&format!("/items/{mine_n}/history"), &api.customer)
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn agents_cannot_change_structure() {
    let api = api().await;
    let types_before = api.get("/item-types", ADMIN).await.expect(StatusCode::OK).as_array().unwrap().len();
    let events_before = api.event_count().await;
    let attempts = [
        (Method::POST, "/item-types".to_string(), json!({"name": "Bug", "kind": "ticket"})),
        (Method::POST, "/projects".to_string(), json!({"name": "Secret project"})),
        (Method::POST, "/portfolios".to_string(), json!({"name": "Mine"})),
        (Method::POST, "/teams".to_string(), json!({"name": "Rogue"})),
        (Method::PATCH, "/workspace".to_string(), json!({"name": "Renamed"})),
        (
            Method::POST,
            format!("/item-types/{}/workflow", api.ticket_type),
            json!({"op": "add_status", "name": "Parked", "category": "waiting"}),
        ),
        (
            Method::POST,
            format!("/item-types/{}/fields", api.ticket_type),
            json!({"op": "add", "field": {"key": "x", "label": "X", "kind": "text"}}),
        ),
        (Method::POST, "/workspaces".to_string(), json!({"name": "Another"})),
        (
            Method::POST,
            "/users".to_string(),
            json!({"name": "Eve", "email": "eve@desk.example", "role": "admin"}),
        ),
    ];
    for (method, path, body) in attempts {
        let reply = api.json(method.clone(), &path, &api.agent, body).await;
        reply.error(StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(
        api.get("/item-types", ADMIN).await.expect(StatusCode::OK).as_array().unwrap().len(),
        types_before
    );
    assert_eq!(api.event_count().await, events_before);
    // What they may do: read the directory.
    api.get("/item-types", &api.agent).await.expect(StatusCode::OK);
    api.get("/users", &api.agent).await.expect(StatusCode::OK);
    api.get("/users", &api.customer).await.error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn stale_versions_are_409_and_change_nothing() {
    let api = api().await;
    let item = api.create_ticket(&api.agent, "Printer offline").await;
    let n = item["number"].as_i64().unwrap();
    let v1 = item["version"].as_i64().unwrap();
    let updated = api
        .json(
            Method::PATCH,
            &format!("/items/{n}"),
            &api.agent,
            json!({"title": "Printer offline in room 4", "version": v1}),
        )
        .await;
    let updated = updated.expect(StatusCode::OK);
    assert_eq!(updated["version"].as_i64().unwrap(), v1 + 1);

    let history = api.history_len(n).await;
    let stale = [
        (Method::PATCH, format!("/items/{n}"), json!({"title": "Lost update", "version": v1})),
        (Method::POST, format!("/items/{n}/transition"), json!({"status": "execution", "version": v1})),
        (Method::POST, format!("/items/{n}/close"), json!({"version": v1})),
        (
            Method::PUT,
            format!("/items/{n}/assignees"),
            json!({"assignees": [{"type": "user", "id": api.agent_id}], "version": v1}),
        ),
        (Method::POST, format!("/items/{n}/convert"), json!({"item_type": api.task_type, "version": v1})),
    ];
    for (method, path, body) in stale {
        api.json(method, &path, &api.agent, body).await.error(StatusCode::CONFLICT, "conflict");
    }
    assert_eq!(api.history_len(n).await, history);
    let now = api.get(&format!("/items/{n}"), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(now["title"], "Printer offline in room 4");
    assert_eq!(now["status"], "triage");
    assert_eq!(now["version"].as_i64().unwrap(), v1 + 1);
}

#[tokio::test]
async fn oversize_uploads_are_413_and_store_nothing() {
    let api = api().await;
    let item = api.create_ticket(&api.agent, "Scan attached").await;
    let n = item["number"].as_i64().unwrap();
    let history = api.history_len(n).await;
    let path = format!("/items/{n}/attachments");

    // Over the attachment limit, within the request-size limit: refused by Desk.
    let big = vec![b'x'; ATTACHMENT_LIMIT as usize + 1];
    api.multipart(&path, &api.agent, &[("file", Some("scan.txt"), &big)])
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // Over the request-size limit: refused while reading the body.
    let huge = vec![b'x'; ATTACHMENT_LIMIT as usize + 2 * 1024 * 1024];
    api.multipart(&path, &api.agent, &[("file", Some("scan.txt"), &huge)])
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let message = format!("/items/{n}/messages");
    api.multipart(
        &message,
        &api.agent,
        &[("visibility", None, b"public"), ("body", None, b"see file"), ("file", Some("a.txt"), &big)],
    )
    .await
    .error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let long_json =
        json!({"visibility": "public", "body": {"format": "text", "content": "y".repeat(3 * 1024 * 1024)}});
    api.post(&message, &api.agent, long_json).await.error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    assert_eq!(api.history_len(n).await, history);
    assert!(api.get(&path, &api.agent).await.expect(StatusCode::OK).as_array().unwrap().is_empty());
    assert!(api.get(&message, &api.agent).await.expect(StatusCode::OK).as_array().unwrap().is_empty());

    // At the limit it is fine.
    let fits = vec![b'x'; ATTACHMENT_LIMIT as usize];
    api.multipart(&path, &api.agent, &[("file", Some("scan.txt"), &fits)]).await.expect(StatusCode::CREATED);
}

#[tokio::test]
async fn attachments_upload_download_and_hide_internal_files() {
    let api = api().await;
    let item = api.create_ticket(&api.customer, "Audiogram").await;
    let n = item["number"].as_i64().unwrap();
    let public = api
        .multipart(
            &format!("/items/{n}/attachments"),
            &api.customer,
            &[("file", Some("résumé 2026.txt"), b"hello bytes")],
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(public["size"], 11);
    let internal = api
        .multipart(
            &format!("/items/{n}/messages"),
            &api.agent,
            &[
                ("visibility", None, b"internal"),
                ("body", None, b"Our notes"),
                ("file", Some("notes.txt"), b"secret"),
            ],
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(internal["message"]["visibility"], "internal");
    assert_eq!(internal["attachments"].as_array().unwrap().len(), 1);
    let internal_id = internal["attachments"][0]["id"].as_str().unwrap();

    let download = api.get(&format!("/attachments/{}", public["id"].as_str().unwrap()), &api.customer).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.bytes, b"hello bytes");
    assert_eq!(download.headers[header::CONTENT_TYPE], "text/plain");
    assert_eq!(download.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let disposition = download.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%202026.txt"), "{disposition}");

    let listed = api.get(&format!("/items/{n}/attachments"), &api.customer).await.expect(StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    api.get(&format!("/attachments/{internal_id}"), &api.customer)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    let staff = api.get(&format!("/attachments/{internal_id}"), &api.agent).await;
    assert_eq!((staff.status, staff.bytes.as_slice()), (StatusCode::OK, &b"secret"[..]));

    // Form mistakes are named.
    let no_file =
        api.multipart(&format!("/items/{n}/attachments"), &api.agent, &[("note", None, b"x")]).await;
    assert_eq!(no_file.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").as_deref(), Some("note"));
    let no_visibility =
        api.multipart(&format!("/items/{n}/messages"), &api.agent, &[("body", None, b"x")]).await;
    assert_eq!(
        no_visibility.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid").as_deref(),
        Some("visibility")
    );
}

#[tokio::test]
async fn converted_tickets_redirect_from_their_ticket_url() {
    let api = api().await;
    let item = api.create_ticket(&api.agent, "Migrate the mail server").await;
    let n = item["number"].as_i64().unwrap();
    assert_eq!(api.get(&format!("/tickets/{n}"), &api.agent).await.expect(StatusCode::OK)["id"], item["id"]);
    let to_task = api.get(&format!("/tasks/{n}"), &api.agent).await;
    assert_eq!(to_task.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(to_task.headers[header::LOCATION], format!("/api/v1/tickets/{n}"));

    let moved = api
        .post(&format!("/items/{n}/transition"), &api.agent, json!({"status": "execution"}))
        .await
        .expect(StatusCode::OK);
    let converted = api
        .post(
            &format!("/items/{n}/convert"),
            &api.agent,
            json!({"item_type": api.task_type, "version": moved["version"]}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!((converted["kind"].as_str(), converted["number"].as_i64()), (Some("task"), Some(n)));
    assert_eq!(converted["status"], "execution");

    let old = api.get(&format!("/tickets/{n}"), &api.agent).await;
    assert_eq!(old.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(old.headers[header::LOCATION], format!("/api/v1/tasks/{n}"));
    assert_eq!(api.get(&format!("/tasks/{n}"), &api.agent).await.expect(StatusCode::OK)["kind"], "task");
    assert_eq!(api.get(&format!("/items/%23{n}"), &api.agent).await.expect(StatusCode::OK)["kind"], "task");
    api.get("/tickets/999", &api.agent).await.error(StatusCode::NOT_FOUND, "not_found");
    api.get("/tickets/abc", &api.agent).await.error(StatusCode::NOT_FOUND, "not_found");

    let history = api.get(&format!("/items/{n}/history"), &api.agent).await.expect(StatusCode::OK);
    let kinds: Vec<&str> =
        history.as_array().unwrap().iter().map(|e| e["data"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["item_created", "status_changed", "item_converted"]);
}

#[tokio::test]
async fn item_lists_filter_and_paginate() {
    let api = api().await;
    for i in 0..5 {
        api.create_ticket(&api.agent, &format!("Ticket {i}")).await;
    }
    let task = api
        .post("/items", &api.agent, json!({"item_type": api.task_type, "title": "Plan"}))
        .await
        .expect(StatusCode::CREATED);
    api.put_assignee(&task).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/items?kind=ticket&limit=2&order=desc&cursor={c}"),
            None => "/items?kind=ticket&limit=2&order=desc".to_string(),
        };
        let page = api.get(&path, &api.agent).await.expect(StatusCode::OK);
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["number"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);

    let assigned =
        api.get(&format!("/items?assignee=user:{}", api.agent_id), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(assigned["items"].as_array().unwrap().len(), 1);
    assert_eq!(assigned["items"][0]["kind"], "task");
    let triage =
        api.get("/items?status=triage,execution&category=new", &api.agent).await.expect(StatusCode::OK);
    assert_eq!(triage["items"].as_array().unwrap().len(), 6);

    let hits = api.get("/search?q=Plan", &api.agent).await.expect(StatusCode::OK);
    assert_eq!(hits[0]["item"]["title"], "Plan");
    api.get("/search?q=", &api.agent).await.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
}

impl Api {
    async fn put_assignee(&self, item: &Value) {
        let path = format!("/items/{}/assignees", item["id"].as_str().unwrap());
        let body = json!({"assignees": [{"type": "user", "id": self.agent_id}]});
        self.json(Method::PUT, &path, &self.agent, body).await.expect(StatusCode::OK);
    }
}

#[tokio::test]
async fn structure_people_and_mentions_round_trip() {
    let api = api().await;
    let portfolio =
        api.post("/portfolios", ADMIN, json!({"name": "Operations"})).await.expect(StatusCode::CREATED);
    let project = api
        .post("/projects", ADMIN, json!({"name": "IT", "portfolio": portfolio["id"]}))
        .await
        .expect(StatusCode::CREATED);
    let pid = project["id"].as_str().unwrap();
    let folder = api
        .post("/folders", ADMIN, json!({"project": pid, "name": "Hardware"}))
        .await
        .expect(StatusCode::CREATED);
    let folders = api.get(&format!("/projects/{pid}/folders"), &api.agent).await.expect(StatusCode::OK);
    assert_eq!(folders.as_array().unwrap().len(), 1);
    api.get(&format!("/projects/{}/folders", uuid::Uuid::nil()), &api.agent)
        .await
        .error(StatusCode::NOT_FOUND, "not_found");
    api.get("/projects/not-a-uuid", &api.agent).await.error(StatusCode::NOT_FOUND, "not_found");
    let renamed = api
        .json(
            Method::PATCH,
            &format!("/folders/{}", folder["id"].as_str().unwrap()),
            ADMIN,
            json!({"name": "Devices"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(renamed["name"], "Devices");
    let busy = api
        .send(
            Method::DELETE,
            &format!("/portfolios/{}", portfolio["id"].as_str().unwrap()),
            Some(ADMIN),
            None,
            vec![],
        )
        .await;
    busy.error(StatusCode::CONFLICT, "conflict");

    let t = api
        .post(
            &format!("/item-types/{}/workflow", api.ticket_type),
            ADMIN,
            json!({"op": "add_status", "name": "Parked", "category": "waiting"}),
        )
        .await
        .expect(StatusCode::OK);
    assert!(t["workflow"]["statuses"].as_array().unwrap().iter().any(|s| s["key"] == "parked"));
    let bad_op =
        api.post(&format!("/item-types/{}/workflow", api.ticket_type), ADMIN, json!({"op": "explode"})).await;
    bad_op.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");

    let team = api
        .post("/teams", ADMIN, json!({"name": "Hardware", "members": [api.agent_id]}))
        .await
        .expect(StatusCode::CREATED);
    api.json(
        Method::PATCH,
        &format!("/teams/{}", team["id"].as_str().unwrap()),
        ADMIN,
        json!({"name": "Devices"}),
    )
    .await
    .expect(StatusCode::OK);
    api.json(Method::PATCH, &format!("/users/{}", api.agent_id), ADMIN, json!({"handle": "ana"}))
        .await
        .expect(StatusCode::OK);

    let item = api
        .post(
            "/items",
            ADMIN,
            json!({"item_type": api.ticket_type, "title": "Switch", "project": pid, "folder": folder["id"]}),
        )
        .await
        .expect(StatusCode::CREATED);
    let n = item["number"].as_i64().unwrap();
    api.post(
        &format!("/items/{n}/messages"),
        ADMIN,
        json!({"visibility": "internal", "body": {"format": "text", "content": "@ana can you look?"}}),
    )
    .await
    .expect(StatusCode::CREATED);
    let inbox = api.get("/notifications", &api.agent).await.expect(StatusCode::OK);
    let inbox = inbox.as_array().unwrap();
    assert_eq!(inbox.len(), 1);
    let read = api
        .post(&format!("/notifications/{}/read", inbox[0]["id"].as_str().unwrap()), &api.agent, json!({}))
        .await;
    assert!(read.expect(StatusCode::OK)["read_at"].is_string());

    let other = api.create_ticket(&api.agent, "Cable").await;
    let link = api
        .post(&format!("/items/{n}/links"), &api.agent, json!({"to": other["number"], "kind": "blocks"}))
        .await;
    let link = link.expect(StatusCode::CREATED);
    assert_eq!(
        api.get(&format!("/items/{n}/links"), &api.agent)
            .await
            .expect(StatusCode::OK)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let unlinked = api
        .send(
            Method::DELETE,
            &format!("/links/{}", link["id"].as_str().unwrap()),
            Some(&api.agent),
            None,
            vec![],
        )
        .await;
    assert_eq!(unlinked.status, StatusCode::NO_CONTENT);

    let followed = api
        .post(&format!("/items/{n}/followers"), &api.agent, json!({"add": [api.customer_id], "remove": []}))
        .await
        .expect(StatusCode::OK);
    assert!(followed["followers"].as_array().unwrap().contains(&json!(api.customer_id)));
    api.get(&format!("/items/{n}"), &api.customer).await.expect(StatusCode::OK);

    let closed = api.send(Method::POST, &format!("/items/{n}/close"), Some(&api.agent), None, vec![]).await;
    assert_eq!(closed.expect(StatusCode::OK)["category"], "closed");
}

#[tokio::test]
async fn workspaces_events_jobs_and_unknown_routes() {
    let api = api().await;
    let second = api.post("/workspaces", ADMIN, json!({"name": "Second"})).await.expect(StatusCode::CREATED);
    assert_eq!(api.get("/workspaces", ADMIN).await.expect(StatusCode::OK).as_array().unwrap().len(), 2);
    assert_eq!(api.get("/workspaces", &api.agent).await.expect(StatusCode::OK).as_array().unwrap().len(), 1);
    assert_eq!(api.get("/workspace", ADMIN).await.expect(StatusCode::OK)["name"], "Clinics");

    let in_second = |path: &str, ws: &str| {
        Request::builder()
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header("Tandem-Workspace", ws)
            .body(Body::empty())
            .unwrap()
    };
    let reply =
        api.app.clone().oneshot(in_second("/workspace", second["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["name"], "Second");
    let missing =
        api.app.clone().oneshot(in_second("/workspace", &uuid::Uuid::nil().to_string())).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let garbage = api.app.clone().oneshot(in_second("/workspace", "nope")).await.unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);

    let events = api.get("/events?after=0&limit=5", ADMIN).await.expect(StatusCode::OK);
    let seqs: Vec<i64> = events.as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    api.get("/events", &api.customer).await.error(StatusCode::FORBIDDEN, "forbidden");

    assert!(api.get("/jobs?state=dead", ADMIN).await.expect(StatusCode::OK).as_array().unwrap().is_empty());
    api.get("/jobs?state=sleeping", ADMIN).await.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    let job = uuid::Uuid::nil();
    api.post(&format!("/jobs/{job}/retry"), ADMIN, json!({})).await.error(StatusCode::NOT_FOUND, "not_found");
    api.post(&format!("/jobs/{job}/retry"), &api.agent, json!({}))
        .await
        .error(StatusCode::FORBIDDEN, "forbidden");

    api.get("/nowhere", ADMIN).await.error(StatusCode::NOT_FOUND, "not_found");
    api.send(Method::DELETE, "/items", Some(ADMIN), None, vec![])
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
