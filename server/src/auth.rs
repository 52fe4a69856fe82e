//! Who is calling: `Authorization: Bearer <token>` → an [`Actor`].
//!
//! - The server administrator's token acts as [`Actor::server_admin`] in the workspace named by
//!   the `Tandem-Workspace` header, or in the oldest workspace.
//! - A user token is looked up by the SHA-256 of its secret; it must not be revoked and its user
//!   must be active. It acts in its own workspace only.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tandem_core::conversation::sha256_hex;
use tandem_core::{Actor, User, Workspace, WorkspaceId, store};

use crate::error::ApiError;
use crate::state::{AppState, constant_time_eq};

pub const WORKSPACE_HEADER: &str = "tandem-workspace";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub Actor);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("this endpoint needs an 'Authorization: Bearer <token>' header")
    })?;
    let value =
        value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not readable"))?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| ApiError::unauthorized("expected 'Bearer <token>'"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized("expected 'Bearer <token>'"));
    }
    Ok(token)
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

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secret = bearer(parts)?;
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
            return Ok(Auth(Actor::server_admin(ws)));
        }

        let digest = sha256_hex(secret.as_bytes());
        let token = store
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
        Ok(Auth(Actor::user(user, token.scope)))
    }
}
