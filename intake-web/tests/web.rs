//! The web channel's knowledge base pages and widget endpoints through the real router (no
//! socket), over a real SQLite store: who sees what, escaping, and what a visitor's requests
//! need (the widget header, their chat token, the per-address limit).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::commands::{ConfigurePortal, CreateArticle, CreateItemType, CreateUser, CreateWorkspace};
use tandem_core::ids::{Clock, IdSource};
use tandem_core::kb::{ArticleBody, KbArticle, KbVisibility};
use tandem_core::membership::WebForm;
use tandem_core::{Actor, Desk, ItemKind, Limits, Role, TokenScope, WorkspaceId};
use tandem_intake_web::{NoSignIn, Sessions, WebLimits, WebState, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

struct Now;
impl Clock for Now {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

struct V7;
impl IdSource for V7 {
    fn new_id(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

/// The `Sessions` port answered from a table: `Cookie: who=<name>` is that person.
#[derive(Debug)]
struct Signed(Vec<(String, Actor)>);

#[async_trait::async_trait]
impl Sessions for Signed {
    async fn actor(&self, headers: &HeaderMap) -> Option<Actor> {
        let cookie = headers.get(header::COOKIE)?.to_str().ok()?;
        let name = cookie.strip_prefix("who=")?;
        self.0.iter().find(|(n, _)| n == name).map(|(_, a)| a.clone())
    }
}

struct World {
    app: axum::Router,
    desk: Desk,
    ws: WorkspaceId,
    internal: KbArticle,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("web.db"), SqliteOptions::default()).unwrap();
    let desk = Desk::new(Arc::new(store), Arc::new(Now), Arc::new(V7), Limits::default());
    let root = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&root, &CreateWorkspace { name: "Pond supplies".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let customer = desk
        .execute(
            &admin,
            &CreateUser {
                name: "Carl".into(),
                email: Some("carl@north-ponds.example".into()),
                handle: None,
                role: Role::Customer,
            },
        )
        .await
        .unwrap();
    let mut made = Vec::new();
    for (title, visibility) in [
        ("Cleaning the pond pump", KbVisibility::Public),
        ("Pump warranty for customers", KbVisibility::SignedIn),
        ("Pump supplier escalation", KbVisibility::Internal),
        ("<img src=x onerror=alert(1)> pump tricks", KbVisibility::Public),
    ] {
        let body = ArticleBody::Html(format!("<p>About the pump.</p><script>alert('{title}')</script>"));
        let a = desk
            .execute(
                &admin,
                &CreateArticle { title: title.into(), body, category: None, visibility, published: true },
            )
            .await
            .unwrap();
        made.push(a);
    }
    let sessions = Signed(vec![("carl".into(), Actor::user(customer, TokenScope::Admin))]);
    let app = router(
        WebState::new(desk.clone(), Arc::new(NoSignIn), [7; 32], WebLimits::default())
            .with_sessions(Arc::new(sessions)),
    );
    World { app, desk, ws: ws.id, internal: made.remove(2), _dir: dir }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn get(app: &axum::Router, uri: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let (status, _, body) = call(app, req.body(Body::empty()).unwrap()).await;
    (status, body)
}

fn widget_post(uri: &str, body: Value, token: Option<&str>) -> Request<Body> {
    let mut req =
        Request::post(uri).header("x-tandem-widget", "1").header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header("x-chat-token", t);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn knowledge_base_pages_show_each_reader_their_articles_escaped() {
    let w = world().await;
    let ws = w.ws;
    let (status, home) = get(&w.app, &format!("/kb?workspace={ws}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("Cleaning the pond pump"));
    assert!(!home.contains("warranty") && !home.contains("escalation"), "{home}");
    assert!(home.contains("&lt;img src=x onerror=alert(1)&gt;"), "titles are escaped");
    assert!(!home.contains("<img src=x"), "{home}");

    let (_, signed_in) = get(&w.app, &format!("/kb?workspace={ws}"), Some("who=carl")).await;
    assert!(signed_in.contains("Pump warranty for customers") && !signed_in.contains("escalation"));

    let (_, found) = get(&w.app, &format!("/kb/search?workspace={ws}&q=pump"), None).await;
    assert!(found.contains("Cleaning the pond pump") && !found.contains("escalation"), "{found}");
    let (_, none) = get(&w.app, &format!("/kb/search?workspace={ws}&q=%3Cscript%3Ezzz"), None).await;
    assert!(
        none.contains("&lt;script&gt;zzz") && !none.contains("<script>zzz"),
        "the query is escaped: {none}"
    );

    let (status, page) = get(&w.app, &format!("/kb/articles/{}?workspace={ws}", w.internal.id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    let (status, _) =
        get(&w.app, &format!("/kb/articles/{}?workspace={ws}", w.internal.id), Some("who=carl")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "customers do not read internal articles");
    let (status, _) = get(&w.app, &format!("/kb/articles/not-an-id?workspace={ws}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&w.app, "/kb?workspace=nonsense", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, panel) =
        get(&w.app, &format!("/widget/panel?workspace={ws}&q=%3Cscript%3Ealert(1)%3C/script%3E"), None).await;
    assert!(!panel.contains("<script>alert(1)") && panel.contains("&lt;script&gt;alert(1)"), "{panel}");
    let (_, panel) = get(&w.app, &format!("/widget/panel?workspace={ws}&q=pump"), None).await;
    assert!(panel.contains("Cleaning the pond pump") && !panel.contains("escalation"));
}

#[tokio::test]
async fn the_widget_offers_the_portal_s_forms_and_links_to_the_portal() {
    let w = world().await;
    let ws = w.ws;
    let (_, panel) = get(&w.app, &format!("/widget/panel?workspace={ws}&tab=forms"), None).await;
    assert!(panel.contains(&format!("href=\"/portal/{ws}\"")), "{panel}");
    assert!(!panel.contains("forms-list"), "no forms are offered before the portal has any: {panel}");

    let admin = Actor::server_admin(ws);
    let t = w
        .desk
        .execute(
            &admin,
            &CreateItemType {
                name: "Pump repair".into(),
                kind: ItemKind::Ticket,
                description: String::new(),
                workflow: None,
                fields: vec![],
            },
        )
        .await
        .unwrap();
    let form = WebForm { title: Some("Book a <pump> repair".into()), ..WebForm::default() };
    let configure =
        ConfigurePortal { forms: [(t.id, Some(form))].into_iter().collect(), ..Default::default() };
    w.desk.execute(&admin, &configure).await.unwrap();
    let (_, panel) = get(&w.app, &format!("/widget/panel?workspace={ws}&tab=forms"), None).await;
    assert!(panel.contains(&format!("href=\"/forms/{ws}/{}\"", t.id)), "{panel}");
    assert!(panel.contains("Book a &lt;pump&gt; repair"), "the title is escaped: {panel}");
}

#[tokio::test]
async fn widget_chat_requests_need_the_widget_header_and_the_token() {
    let w = world().await;
    let ws = w.ws.to_string();
    let (status, headers, script) =
        call(&w.app, Request::get("/widget.js").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.contains("/widget/panel?workspace="));

    let start =
        json!({"workspace": ws, "name": "Vera", "email": "vera@north-ponds.example", "text": "Hello"});
    // Without the widget's header (what a form on another site could send): refused.
    let plain = Request::post("/widget/chats")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(start.to_string()))
        .unwrap();
    let (status, _, body) = call(&w.app, plain).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) =
        call(&w.app, widget_post("/widget/chats", json!({"workspace": ws, "name": "Vera"}), None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("email"), "{body}");
    let (status, _, body) =
        call(&w.app, widget_post("/widget/chats", json!({"workspace": ws, "nonsense": 1}), None)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, _, body) = call(&w.app, widget_post("/widget/chats", start.clone(), None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let started: Value = serde_json::from_str(&body).unwrap();
    let chat = started["chat"]["id"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert!(started["chat"].get("token_sha256").is_none());

    let send = format!("/widget/chats/{chat}/messages?workspace={ws}");
    let (status, _, _) = call(&w.app, widget_post(&send, json!({"text": "hi"}), Some("guessed"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a wrong token finds no chat");
    let (status, _, _) = call(&w.app, widget_post(&send, json!({"text": "hi"}), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(&w.app, widget_post(&send, json!({"text": "  "}), Some(token))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, body) =
        call(&w.app, widget_post(&send, json!({"text": "My pump stopped"}), Some(token))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let events = |token: Option<&str>| {
        let mut req = Request::get(format!("/widget/chats/{chat}/events?workspace={ws}"));
        if let Some(t) = token {
            req = req.header("x-chat-token", t);
        }
        req.body(Body::empty()).unwrap()
    };
    let response = w.app.clone().oneshot(events(Some("guessed"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = w.app.clone().oneshot(events(Some(token))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    // The first frames carry what is there already: both messages, then the chat.
    let mut body = response.into_body();
    let mut seen = String::new();
    while !seen.contains("event: chat") {
        let frame = body.frame().await.unwrap().unwrap();
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
    }
    assert!(seen.contains("\"text\":\"Hello\"") && seen.contains("My pump stopped"), "{seen}");

    let end = format!("/widget/chats/{chat}/end?workspace={ws}");
    let (status, _, _) = call(&w.app, widget_post(&end, json!({}), Some("guessed"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(&w.app, widget_post(&end, json!({}), Some(token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ended["status"], "ended");
    assert!(ended["item"].is_string(), "the chat became a ticket: {ended}");
    let (status, _, _) = call(&w.app, widget_post(&send, json!({"text": "more"}), Some(token))).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn anonymous_chat_starts_are_limited_per_address() {
    let w = world().await;
    let start = json!({"workspace": w.ws, "name": "Spam", "email": "spam@spam.example"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _, _) = call(&w.app, widget_post("/widget/chats", start.clone(), None)).await;
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429]);
    // A signed-in customer is not an anonymous address.
    let mut req = widget_post("/widget/chats", json!({"workspace": w.ws, "text": "Price list?"}), None);
    req.headers_mut().insert(header::COOKIE, "who=carl".parse().unwrap());
    let (status, _, body) = call(&w.app, req).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let chat: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(chat["chat"]["visitor_name"], "Carl");
    assert!(chat["chat"]["requester"].is_string());
}
