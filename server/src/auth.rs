//! Who is calling → an [`Actor`]. Three credentials, tried in this order:
//!
//! - `Authorization: Bearer <token>` with the server administrator's token acts as
//!   [`Actor::server_admin`] in the workspace named by the `Tandem-Workspace` header, or in the
//!   oldest workspace.
//! - `Authorization: Bearer <token>` with a user's API token, looked up by the SHA-256 of its
//!   secret; it must not be revoked and its user must be active. It acts in its own workspace
//!   only, within its scope: a `read` token may only make `GET` requests. Its `last_used_at` is
//!   recorded at most once per [`SignInConfig::token_touch_every`](crate::SignInConfig).
//! - The `tandem_session` cookie of a browser session (see `api/sign_in.rs`), looked up the same
//!   way; it must be live and its user active. A request that may change something (any method
//!   but `GET`, `HEAD` and `OPTIONS`) must also carry the session's CSRF token in `X-CSRF-Token`:
//!   a browser sends the cookie with requests other sites make it send, but only a page that was
//!   given the token can send the token. Bearer requests need none — no browser adds them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use tandem_core::conversation::sha256_hex;
use tandem_core::{
    Actor, ApiToken, Record, RecordKind, Session, SessionId, TokenId, TokenScope, User, Workspace,
    WorkspaceId, store,
};

use crate::error::ApiError;
use crate::sign_in;
use crate::state::{AppState, constant_time_eq};

pub const WORKSPACE_HEADER: &str = "tandem-workspace";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

/// The authenticated caller and the credential used.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub via: Via,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    ServerAdmin,
    Token(TokenId),
    /// A browser session, with its secret (for its CSRF token).
    Session {
        id: SessionId,
        secret: String,
    },
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value =
        value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not readable"))?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| ApiError::unauthorized("expected 'Bearer <token>'"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized("expected 'Bearer <token>'"));
    }
    Ok(Some(token))
}

fn requested_workspace(parts: &Parts) -> Result<Option<WorkspaceId>, ApiError> {
    let Some(value) = parts.headers.get(WORKSPACE_HEADER) else { return Ok(None) };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<WorkspaceId>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("the Tandem-Workspace header must be a workspace id"))
}

fn rejected() -> ApiError {
    ApiError::unauthorized("the token is unknown or has been revoked")
}

/// Whether a request with this method may change something.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn by_token(parts: &Parts, state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    let wanted = requested_workspace(parts)?;
    let store = state.desk().store().as_ref();
    if state.admin_token().matches(secret) {
        let ws = match wanted {
            Some(ws) => {
                store::get::<Workspace>(store, ws, ws.0)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("workspace {ws}")))?;
                ws
            }
            None => state.default_workspace().await?,
        };
        return Ok(Caller { actor: Actor::server_admin(ws), via: Via::ServerAdmin });
    }

    let digest = sha256_hex(secret.as_bytes());
    let token: ApiToken = store
        .token_by_secret(&digest)
        .await?
        .filter(|t| constant_time_eq(t.secret_sha256.as_bytes(), digest.as_bytes()))
        .ok_or_else(rejected)?;
    if token.revoked_at.is_some() {
        return Err(rejected());
    }
    let user = store::get::<User>(store, token.workspace_id, token.user.0).await?.ok_or_else(rejected)?;
    if !user.active {
        return Err(ApiError::unauthorized("the account this token belongs to is disabled"));
    }
    if wanted.is_some_and(|ws| ws != token.workspace_id) {
        return Err(ApiError::forbidden("this token belongs to another workspace"));
    }
    if token.scope == TokenScope::Read && changes_state(&parts.method) {
        return Err(ApiError::forbidden("this token is read-only: it may only make GET requests"));
    }
    touch(state, &token).await;
    Ok(Caller { actor: Actor::user(user, token.scope), via: Via::Token(token.id) })
}

/// Records the token's use, at most once per interval: the token read just now says when it was
/// last recorded, so most requests write nothing.
async fn touch(state: &AppState, token: &ApiToken) {
    let now = state.desk().now();
    let every = state.sign_in().token_touch_every;
    if token.last_used_at.is_some_and(|at| now - at < every) {
        return;
    }
    if let Err(e) = state.desk().store().touch_token(token.workspace_id, token.id, now, every).await {
        // Bookkeeping: a request is not refused because its token's use could not be noted.
        tracing::warn!(error = %e, token = %token.id, "cannot record a token's use");
    }
}

fn session_rejected() -> ApiError {
    ApiError::unauthorized("the session has ended or expired; sign in again")
}

/// The live session a secret names and its active user.
pub(crate) async fn session_user(state: &AppState, secret: &str) -> Result<(Session, User), ApiError> {
    let store = state.desk().store().as_ref();
    let digest = sha256_hex(secret.as_bytes());
    let session: Session = match store.record_by_secret(RecordKind::Session, &digest).await? {
        Some(Record::Session(s)) if constant_time_eq(s.secret_sha256.as_bytes(), digest.as_bytes()) => s,
        _ => return Err(session_rejected()),
    };
    if !session.is_live(state.desk().now()) {
        return Err(session_rejected());
    }
    let user = store::get::<User>(store, session.workspace_id, session.user.0)
        .await?
        .ok_or_else(session_rejected)?;
    if !user.active {
        return Err(ApiError::unauthorized("the account is disabled"));
    }
    Ok((session, user))
}

async fn by_session(parts: &Parts, state: &AppState, secret: &str) -> Result<Caller, ApiError> {
    let (session, user) = session_user(state, secret).await?;
    if requested_workspace(parts)?.is_some_and(|ws| ws != session.workspace_id) {
        return Err(ApiError::forbidden("this session belongs to another workspace"));
    }
    if changes_state(&parts.method) && !sign_in::csrf_ok(&parts.headers, secret) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "csrf",
            "a request signed in with a session cookie must send the session's CSRF token in X-CSRF-Token",
        ));
    }
    // A session acts with its user's full role; there is no narrower scope to choose.
    Ok(Caller {
        actor: Actor::user(user, TokenScope::Admin),
        via: Via::Session { id: session.id, secret: secret.to_string() },
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(secret) = bearer(parts)? {
            return by_token(parts, state, secret).await;
        }
        if let Some(secret) = sign_in::session_secret(&parts.headers) {
            let secret = secret.to_string();
            return by_session(parts, state, &secret).await;
        }
        Err(ApiError::unauthorized(
            "this endpoint needs an 'Authorization: Bearer <token>' header or a signed-in session",
        ))
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state).await.map(|c| Auth(c.actor))
    }
}

/// The caller when there is one: a request without credentials is anonymous (`None`); one with
/// credentials that fail is refused like anywhere else. For routes anyone may call whose answer
/// depends on who calls (the knowledge base).
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Actor>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if bearer(parts)?.is_none() && sign_in::session_secret(&parts.headers).is_none() {
            return Ok(MaybeAuth(None));
        }
        Caller::from_request_parts(parts, state).await.map(|c| MaybeAuth(Some(c.actor)))
    }
}

/// The signed-in user behind a request's session cookie, for the pages outside the API
/// (`tandem-intake-web`). Read as for a `GET`: no CSRF token is checked, so what a page does
/// with this actor must not change anything on the cookie's word alone.
pub async fn session_actor(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Actor> {
    let secret = sign_in::session_secret(headers)?.to_string();
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    by_session(&parts, state, &secret).await.ok().map(|c| c.actor)
}

/// The server's session cookie as `tandem-intake-web` sees it (its `Sessions` port).
#[derive(Debug, Clone)]
pub struct BrowserSessions(pub AppState);

#[async_trait::async_trait]
impl tandem_intake_web::Sessions for BrowserSessions {
    async fn actor(&self, headers: &axum::http::HeaderMap) -> Option<Actor> {
        session_actor(&self.0, headers).await
    }
}
