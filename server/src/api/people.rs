//! Users, API tokens, teams and the caller's notifications.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_core::commands::{
    CreateTeam, CreateUser, IssueToken, MarkNotificationRead, RevokeToken, TeamPatch, UpdateTeam, UpdateUser,
    UserPatch,
};
use tandem_core::conversation::sha256_hex;
use tandem_core::store::RecordQuery;
use tandem_core::{ApiToken, Notification, Team, TokenId, TokenScope, User, UserId, WorkspaceId};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

type Created<T> = (StatusCode, Json<T>);

pub async fn list_users(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.desk().directory(&actor, &RecordQuery::all()).await?))
}

pub async fn create_user(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateUser>,
) -> ApiResult<Created<User>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_user(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<User>> {
    Ok(Json(s.desk().directory_entry(&actor, id.id("user")?).await?))
}

pub async fn update_user(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<UserPatch>,
) -> ApiResult<Json<User>> {
    let cmd = UpdateUser { id: id.id("user")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    scope: TokenScope,
}

/// A token as the API shows it: never the secret's digest.
#[derive(Debug, Serialize)]
pub struct TokenView {
    id: TokenId,
    workspace_id: WorkspaceId,
    user: UserId,
    name: String,
    scope: TokenScope,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            workspace_id: t.workspace_id,
            user: t.user,
            name: t.name,
            scope: t.scope,
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IssuedToken {
    token: TokenView,
    /// Shown once: only its SHA-256 is stored.
    secret: String,
}

/// A fresh API secret: `tdm_` and 32 random bytes, base64url.
pub fn new_secret() -> Result<String, ApiError> {
    use base64::Engine;
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "the operating system's random source failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "cannot make a secret right now; try again",
        )
    })?;
    Ok(format!("tdm_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

pub async fn issue_token(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<NewToken>,
) -> ApiResult<Created<IssuedToken>> {
    let secret = new_secret()?;
    let cmd = IssueToken {
        user: id.id("user")?,
        name: body.name,
        scope: body.scope,
        secret_sha256: sha256_hex(secret.as_bytes()),
    };
    let token = s.desk().execute(&actor, &cmd).await?;
    Ok(created(IssuedToken { token: token.into(), secret }))
}

pub async fn revoke_token(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<TokenView>> {
    let token = s.desk().execute(&actor, &RevokeToken { id: id.id("token")? }).await?;
    Ok(Json(token.into()))
}

pub async fn list_teams(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<Team>>> {
    Ok(Json(s.desk().directory(&actor, &RecordQuery::all()).await?))
}

pub async fn create_team(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateTeam>,
) -> ApiResult<Created<Team>> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn update_team(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<TeamPatch>,
) -> ApiResult<Json<Team>> {
    let cmd = UpdateTeam { id: id.id("team")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn list_notifications(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<Notification>>> {
    Ok(Json(s.desk().notifications(&actor).await?))
}

pub async fn read_notification(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<Notification>> {
    Ok(Json(s.desk().execute(&actor, &MarkNotificationRead { id: id.id("notification")? }).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_prefixed_and_distinct() {
        let a = super::new_secret().unwrap();
        let b = super::new_secret().unwrap();
        assert!(a.starts_with("tdm_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
    }
}
