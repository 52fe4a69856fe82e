#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! `/api/v1/webhooks` driven in-process: the secret is shown once, reads never show it, bad input
//! names its field, and only those who manage the workspace's structure may touch webhooks.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::{Desk, Limits};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};
use tower::ServiceExt;

const ADMIN: &str = "tdm_webhook_api_admin_token";

struct Api {
    app: Router,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap();
        let desk = Desk::new(Arc::new(store), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
        let api = Api { app: router(AppState::new(desk, AdminToken::from_secret(ADMIN))), _dir: dir };
        api.call(Method::POST, "/workspaces", ADMIN, Some(json!({"name": "Hooks"})), StatusCode::CREATED)
            .await;
        api
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

    /// A token of a new user with `role`.
    async fn token(&self, role: &str) -> String {
        let user = self
            .call(
                Method::POST,
                "/users",
                ADMIN,
                Some(json!({"name": format!("A {role}"), "email": format!("{role}@hooks.example"), "role": role})),
                StatusCode::CREATED,
            )
            .await;
        let path = format!("/users/{}/tokens", user["id"].as_str().unwrap());
        let scope = if role == "customer" { "write" } else { "admin" };
        let issued = self
            .call(Method::POST, &path, ADMIN, Some(json!({"name": "t", "scope": scope})), StatusCode::CREATED)
            .await;
        issued["secret"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn a_webhook_lives_and_its_secret_is_shown_once() {
    let api = Api::new().await;
    let manager = api.token("manager").await;
    let made = api
        .call(
            Method::POST,
            "/webhooks",
            &manager,
            Some(json!({"url": "https://hooks.example.org/tandem?token=abc", "events": ["item.created", "item.*"]})),
            StatusCode::CREATED,
        )
        .await;
    let secret = made["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert_eq!(made["url"], "https://hooks.example.org/tandem?token=abc");
    assert_eq!(made["events"], json!(["item.created", "item.*"]));
    assert_eq!((made["active"].as_bool(), made["version"].as_i64()), (Some(true), Some(1)));
    let path = format!("/webhooks/{}", made["id"].as_str().unwrap());

    let listed = api.call(Method::GET, "/webhooks", &manager, None, StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let one = api.call(Method::GET, &path, &manager, None, StatusCode::OK).await;
    for shown in [&listed[0], &one] {
        assert!(shown.get("secret").is_none(), "reads never show the secret: {shown}");
        assert_eq!(shown["id"], made["id"]);
    }

    let given = api
        .call(
            Method::POST,
            "/webhooks",
            ADMIN,
            Some(json!({"url": "https://b.example.org/in", "secret": "my-own-signing-secret", "active": false})),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (given["secret"].as_str(), given["active"].as_bool()),
        (Some("my-own-signing-secret"), Some(false))
    );
    assert_eq!(given["events"], json!([]));

    let paused = api
        .call(Method::PATCH, &path, &manager, Some(json!({"active": false, "version": 1})), StatusCode::OK)
        .await;
    assert_eq!((paused["active"].as_bool(), paused["version"].as_i64()), (Some(false), Some(2)));
    assert!(paused.get("secret").is_none());
    api.call(
        Method::PATCH,
        &path,
        &manager,
        Some(json!({"active": true, "version": 1})),
        StatusCode::CONFLICT,
    )
    .await;
    let rotated = api
        .call(
            Method::PATCH,
            &path,
            &manager,
            Some(json!({"secret": "rotated-signing-secret"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(rotated["version"], 3);

    // The audit trail shows the destination's origin and that the secret changed, nothing more.
    let events = api.call(Method::GET, "/events", ADMIN, None, StatusCode::OK).await.to_string();
    assert!(events.contains("https://hooks.example.org"), "{events}");
    for hidden in ["token=abc", secret, "rotated-signing-secret", "my-own-signing-secret"] {
        assert!(!events.contains(hidden), "the event log shows {hidden}: {events}");
    }

    api.call(Method::DELETE, &path, &manager, None, StatusCode::NO_CONTENT).await;
    api.call(Method::GET, &path, &manager, None, StatusCode::NOT_FOUND).await;
    api.call(Method::DELETE, &path, &manager, None, StatusCode::NOT_FOUND).await;
    api.call(Method::GET, "/webhooks/not-a-uuid", &manager, None, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn bad_webhooks_are_refused_naming_the_field() {
    let api = Api::new().await;
    let table = [
        (json!({"url": "http://127.0.0.1:8080/hook"}), "url", "public addresses"),
        (json!({"url": "http://169.254.169.254/latest/meta-data"}), "url", "public addresses"),
        (json!({"url": "gopher://hooks.example.org/"}), "url", "http or https"),
        (json!({"url": "not a url"}), "url", "not a URL"),
        (
            json!({"url": "https://hooks.example.org/", "events": ["item.created", "item.exploded"]}),
            "events[1]",
            "not an event name",
        ),
        (json!({"url": "https://hooks.example.org/", "secret": "short"}), "secret", "16 to 256"),
        (json!({"url": "https://hooks.example.org/", "colour": "red"}), "colour", "unknown field"),
        (json!({"events": []}), "url", "missing field"),
    ];
    for (body, field, reason) in table {
        let error = api
            .call(Method::POST, "/webhooks", ADMIN, Some(body.clone()), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(reason), "{body}: {error}");
    }
    assert_eq!(
        api.call(Method::GET, "/webhooks", ADMIN, None, StatusCode::OK).await,
        json!([]),
        "nothing was written"
    );
}

#[tokio::test]
async fn only_structure_managers_touch_webhooks() {
    let api = Api::new().await;
    let made = api
        .call(
            Method::POST,
            "/webhooks",
            ADMIN,
            Some(json!({"url": "https://hooks.example.org/"})),
            StatusCode::CREATED,
        )
        .await;
    let path = format!("/webhooks/{}", made["id"].as_str().unwrap());
    for role in ["agent", "customer"] {
        let token = api.token(role).await;
        api.call(Method::GET, "/webhooks", &token, None, StatusCode::FORBIDDEN).await;
        api.call(Method::GET, &path, &token, None, StatusCode::FORBIDDEN).await;
        api.call(
            Method::POST,
            "/webhooks",
            &token,
            Some(json!({"url": "https://x.example.org/"})),
            StatusCode::FORBIDDEN,
        )
        .await;
        api.call(Method::PATCH, &path, &token, Some(json!({"active": false})), StatusCode::FORBIDDEN).await;
        api.call(Method::DELETE, &path, &token, None, StatusCode::FORBIDDEN).await;
    }
    api.call(Method::GET, &path, ADMIN, None, StatusCode::OK).await;
}
