//! Outgoing webhooks. The signing secret is shown once, in the answer to the POST that created
//! it (made up by the server unless the client sends one); reads never include it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_core::commands::{CreateWebhook, DeleteWebhook, UpdateWebhook, WebhookPatch};
use tandem_core::{Webhook, WebhookId};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    /// The signing secret; the server makes one up when absent.
    #[serde(default)]
    secret: Option<String>,
    /// Event names (`item.created`) or namespaces (`item.*`); empty or absent means all.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
}

/// A webhook as reads show it: never the secret.
#[derive(Debug, Serialize)]
pub struct WebhookView {
    id: WebhookId,
    url: String,
    events: Vec<String>,
    active: bool,
    created_at: DateTime<Utc>,
    version: i64,
}

impl From<Webhook> for WebhookView {
    fn from(h: Webhook) -> Self {
        Self {
            id: h.id,
            url: h.url,
            events: h.events,
            active: h.active,
            created_at: h.created_at,
            version: h.version,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: WebhookView,
    /// Shown once: sign-checking receivers need it, and reads never return it.
    secret: String,
}

/// A signing secret: `whsec_` and 32 random bytes, base64url.
fn new_signing_secret() -> Result<String, ApiError> {
    Ok(format!("whsec_{}", random_secret(32)?))
}

/// `n` random bytes from the operating system, base64url without padding.
pub(crate) fn random_secret(n: usize) -> Result<String, ApiError> {
    use base64::Engine;
    use rand::TryRngCore;
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "the operating system's random source failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "cannot make a secret right now; try again",
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub async fn list_webhooks(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<WebhookView>>> {
    Ok(Json(s.desk().webhooks(&actor).await?.into_iter().map(WebhookView::from).collect()))
}

pub async fn create_webhook(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<NewWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let secret = match body.secret {
        Some(secret) => secret,
        None => new_signing_secret()?,
    };
    let cmd =
        CreateWebhook { url: body.url, secret, events: body.events, active: body.active, rest_hook: false };
    let hook = s.desk().execute(&actor, &cmd).await?;
    let secret = hook.secret.clone();
    Ok(created(CreatedWebhook { webhook: hook.into(), secret }))
}

pub async fn get_webhook(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(s.desk().webhook(&actor, id.id("webhook")?).await?.into()))
}

pub async fn update_webhook(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<WebhookPatch>,
) -> ApiResult<Json<WebhookView>> {
    let cmd = UpdateWebhook { id: id.id("webhook")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?.into()))
}

pub async fn delete_webhook(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteWebhook { id: id.id("webhook")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}
