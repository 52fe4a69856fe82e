//! The API router driven in-process (`tower::ServiceExt::oneshot`): one request, its whole reply.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Asserts the status; returns the JSON body (`null` when empty).
    #[track_caller]
    pub fn expect(&self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        if self.bytes.is_empty() { Value::Null } else { serde_json::from_slice(&self.bytes).unwrap() }
    }

    /// Asserts an error status; returns the error's field ("" when none) and message.
    #[track_caller]
    pub fn error(&self, status: StatusCode) -> (String, String) {
        let body = self.expect(status);
        let e = &body["error"];
        (e["field"].as_str().unwrap_or_default().to_string(), e["message"].as_str().unwrap().to_string())
    }

    /// Asserts a 422; returns the error's field and message.
    #[track_caller]
    pub fn invalid(&self) -> (String, String) {
        self.error(StatusCode::UNPROCESSABLE_ENTITY)
    }

    pub fn header(&self, name: header::HeaderName) -> String {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }
}

/// `method /api/v1{path}` as `token`, with `body` as JSON when there is one.
pub async fn send(app: &Router, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, bytes }
}
