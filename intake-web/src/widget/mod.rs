//! The embeddable widget: `GET /widget.js` (the `<script>` snippet's target) puts a button on the
//! host page that opens an isolated iframe, `GET /widget/panel`, served by Tandem: tabs for the
//! portal's forms, knowledge base search and the messenger (live chat).
//!
//! Chat endpoints (JSON, called by the panel's script):
//!
//! - `POST /widget/chats` starts a chat (anonymous: name and address; signed in: the session's
//!   user) and answers the chat and its token, once. Limited per client address ([`limit`]).
//! - `GET /widget/chats/{id}/events` — server-sent events ([`live`]).
//! - `POST /widget/chats/{id}/messages`, `POST /widget/chats/{id}/end`.
//!
//! Everything but the start needs the token in `X-Chat-Token`: the visitor's only key to their
//! chat (the core compares its SHA-256). Every `POST` needs `X-Tandem-Widget: 1` and a JSON body,
//! which a page on another site cannot send without a CORS preflight this server never grants:
//! so no other site can start a chat in a signed-in user's name.

pub mod limit;
pub mod live;
mod panel;

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tandem_core::chat::{Chat, ChatMessage};
use tandem_core::commands::{ChatParty, EndChat, PostChatMessage, StartChat};
use tandem_core::conversation::sha256_hex;
use tandem_core::{Actor, ChatId, DeskError, WorkspaceId};

use crate::WebState;
use crate::kb::workspace_named;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/widget.js", get(script))
        .route("/widget/panel", get(panel::panel))
        .route("/widget/panel.js", get(panel_script))
        .route("/widget/chats", post(start_chat))
        .route("/widget/chats/{id}/events", get(events))
        .route("/widget/chats/{id}/messages", post(post_message))
        .route("/widget/chats/{id}/end", post(end_chat))
}

/// The HTML a site operator pastes, for a Tandem served at `base` (no trailing slash).
pub fn snippet(base: &str, workspace: WorkspaceId) -> String {
    let base = base.trim_end_matches('/');
    format!(r#"<script src="{base}/widget.js" data-workspace="{workspace}" async></script>"#)
}

const WIDGET_JS: &str = include_str!("widget.js");
const PANEL_JS: &str = include_str!("panel.js");

fn javascript(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

async fn script() -> Response {
    javascript(WIDGET_JS)
}

async fn panel_script() -> Response {
    javascript(PANEL_JS)
}

/// An error as the panel's script reads it: `{"error": {"code", "message"}}`.
pub(crate) fn json_error(e: DeskError) -> Response {
    let (status, code, message) = match e {
        DeskError::Invalid(i) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid", format!("{}: {}", i.field, i.reason))
        }
        DeskError::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", format!("{what} not found")),
        DeskError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why),
        DeskError::Conflict(why) => (StatusCode::CONFLICT, "conflict", why),
        DeskError::RateLimited(why) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", why),
        DeskError::TooLarge { what, .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("{what} is too large"))
        }
        DeskError::Store(e) => {
            tracing::error!(error = %e, "the widget cannot reach storage");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the service is unavailable; try again".into())
        }
    };
    (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

/// Refuses a state-changing request that a page on another site could have made.
fn check_widget_request(headers: &HeaderMap) -> Result<(), DeskError> {
    let marked = headers.get("x-tandem-widget").is_some_and(|v| v == "1");
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
    });
    if marked && json {
        Ok(())
    } else {
        Err(DeskError::Forbidden("widget requests carry X-Tandem-Widget: 1 and a JSON body".into()))
    }
}

fn token_digest(headers: &HeaderMap) -> Result<String, DeskError> {
    headers
        .get("x-chat-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.trim().is_empty())
        .map(|t| sha256_hex(t.trim().as_bytes()))
        .ok_or_else(|| DeskError::not_found("chat"))
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, DeskError> {
    serde_json::from_str(body).map_err(|e| {
        DeskError::Invalid(tandem_core::Invalid::new("body", format!("not the expected JSON: {e}")))
    })
}

fn chat_id(id: &str) -> Result<ChatId, DeskError> {
    id.parse().map_err(|_| DeskError::not_found(format!("chat {id}")))
}

/// A fresh chat token: 32 random bytes, hex.
fn new_token() -> Result<String, DeskError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "the operating system's random source failed");
        DeskError::Store(tandem_core::StoreError::Unavailable("random source".into()))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workspace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

/// The client's address, when the server was started with connection info.
struct ClientIp(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

async fn start_chat(
    State(s): State<WebState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: String,
) -> Response {
    match start(&s, ip, &headers, &body).await {
        Ok(r) => r,
        Err(e) => json_error(e),
    }
}

async fn start(
    s: &WebState,
    addr: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    body: &str,
) -> Result<Response, DeskError> {
    check_widget_request(headers)?;
    let body: StartBody = parse_body(body)?;
    let signed_in = s.sessions.actor(headers).await;
    let ws = workspace_named(s, Some(&body.workspace), None).await?;
    let actor = match signed_in.filter(|a| a.workspace_id == ws.id) {
        Some(user) => user,
        None => Actor::system(ws.id),
    };
    if actor.user_id().is_none() && !s.chat_starts.admit(addr, Instant::now()) {
        return Err(DeskError::RateLimited(
            "too many chats from this address; try again in a few minutes".into(),
        ));
    }
    let token = new_token()?;
    let command = StartChat {
        name: body.name,
        email: body.email,
        text: body.text,
        page: body.page,
        token_sha256: sha256_hex(token.as_bytes()),
    };
    let (chat, messages) = s.desk.execute(&actor, &command).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"chat": chat, "token": token, "messages": messages})))
        .into_response())
}

#[derive(Debug, Deserialize)]
struct ChatQuery {
    workspace: String,
    #[serde(default)]
    after: u32,
}

async fn events(
    State(s): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<ChatQuery>,
    headers: HeaderMap,
) -> Response {
    let prepared = async {
        let id = chat_id(&id)?;
        let digest = token_digest(&headers)?;
        let ws = workspace_named(&s, Some(&q.workspace), None).await?;
        // Check the token before the stream starts, so a wrong one is a plain 404.
        s.desk.visitor_chat(ws.id, id, &digest, u32::MAX).await?;
        Ok::<_, DeskError>((id, digest, ws.id))
    };
    let (id, digest, ws) = match prepared.await {
        Ok(p) => p,
        Err(e) => return json_error(e),
    };
    let desk = s.desk.clone();
    live::chat_events(q.after, move |seq| {
        let desk = desk.clone();
        let digest = digest.clone();
        async move { desk.visitor_chat(ws, id, &digest, seq).await }
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
}

async fn post_message(
    State(s): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<ChatQuery>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let run = async {
        check_widget_request(&headers)?;
        let id = chat_id(&id)?;
        let digest = token_digest(&headers)?;
        let body: MessageBody = parse_body(&body)?;
        let ws = workspace_named(&s, Some(&q.workspace), None).await?;
        let command =
            PostChatMessage { chat: id, from: ChatParty::Visitor { token_sha256: digest }, text: body.text };
        let message: ChatMessage = s.desk.execute(&Actor::system(ws.id), &command).await?;
        Ok::<_, DeskError>((StatusCode::CREATED, axum::Json(message)).into_response())
    };
    match run.await {
        Ok(r) => r,
        Err(e) => json_error(e),
    }
}

async fn end_chat(
    State(s): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<ChatQuery>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        check_widget_request(&headers)?;
        let id = chat_id(&id)?;
        let digest = token_digest(&headers)?;
        let ws = workspace_named(&s, Some(&q.workspace), None).await?;
        let command = EndChat { chat: id, by: ChatParty::Visitor { token_sha256: digest }, item_type: None };
        let chat: Chat = s.desk.execute(&Actor::system(ws.id), &command).await?;
        Ok::<_, DeskError>(axum::Json(chat).into_response())
    };
    match run.await {
        Ok(r) => r,
        Err(e) => json_error(e),
    }
}
