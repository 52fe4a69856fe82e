//! Flows, their run history, incoming webhook endpoints and REST-hook subscriptions.
//!
//! - `/flows`: CRUD, enable/disable, run history; `/flow-runs/{id}` and its replay.
//! - `/hook-endpoints`: incoming webhook endpoints. The token (in the URL
//!   `/api/v1/hooks/in/{token}`) is shown once, when the endpoint is created.
//! - `POST /hooks/in/{token}`: public; the token authenticates (and a signature, when the
//!   endpoint has a signing secret).
//! - `/hooks/subscriptions`: REST hooks for external automation platforms — a subscription is a
//!   signed outgoing webhook for one event, removed by `DELETE` or by a 410 Gone from its target.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_core::commands::{
    CreateFlow, CreateHookEndpoint, CreateWebhook, DeleteFlow, DeleteHookEndpoint, DeleteWebhook,
    ReplayFlowRun, SetFlowEnabled, UpdateFlow,
};
use tandem_core::flows::{
    Flow, FlowPollState, FlowRun, FlowSpec, HookEndpoint, HookTarget, make_token, token_digest,
};
use tandem_core::{FlowId, HookEndpointId, Invalid, WebhookId};
use tandem_integrations::flows::check_plugins;
use tandem_integrations::{HookError, HookOutcome, IncomingRequest};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::state::AppState;

/// A flow with its poll position (poll-triggered flows).
#[derive(Debug, Serialize)]
pub struct FlowView {
    #[serde(flatten)]
    flow: Flow,
    #[serde(skip_serializing_if = "Option::is_none")]
    poll: Option<FlowPollState>,
}

/// A flow's definition from the create/update body (the API's and `tandem flow create --file`'s):
/// the spec, and `enabled` and `version` when given.
pub(crate) fn spec_of(body: &Value) -> Result<(FlowSpec, Option<bool>, Option<i64>), Invalid> {
    let mut body = body.clone();
    let (enabled, version) = match body.as_object_mut() {
        Some(map) => {
            let enabled = match map.remove("enabled") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(b),
                Some(_) => return Err(Invalid::new("enabled", "expected true or false")),
            };
            let version = match map.remove("version") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| Invalid::new("version", "expected a number"))?),
            };
            (enabled, version)
        }
        None => (None, None),
    };
    let spec = FlowSpec::from_json(&body)?;
    spec.validate()?;
    Ok((spec, enabled, version))
}

async fn plugins_known(s: &AppState, ws: tandem_core::WorkspaceId, spec: &FlowSpec) -> Result<(), ApiError> {
    let runtime = s.plugins().ok().map(|p| p as std::sync::Arc<dyn tandem_integrations::PluginRuntime>);
    check_plugins(runtime.as_ref(), ws, &spec.trigger, &spec.steps).await.map_err(ApiError::from)
}

pub async fn list_flows(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<Flow>>> {
    Ok(Json(s.desk().flows(&actor).await?))
}

pub async fn create_flow(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Flow>)> {
    // Who may is Desk's rule; checking it first keeps a refused caller from learning what a
    // valid flow looks like.
    s.desk().flows(&actor).await?;
    let (spec, enabled, _) = spec_of(&body)?;
    plugins_known(&s, actor.workspace_id, &spec).await?;
    let flow = s.desk().execute(&actor, &CreateFlow { spec, enabled: enabled.unwrap_or(true) }).await?;
    Ok(created(flow))
}

pub async fn get_flow(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<FlowView>> {
    let id: FlowId = id.id("flow")?;
    let flow = s.desk().flow(&actor, id).await?;
    let poll = s.desk().flow_poll_state(&actor, id).await?;
    Ok(Json(FlowView { flow, poll }))
}

pub async fn update_flow(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Flow>> {
    let id: FlowId = id.id("flow")?;
    s.desk().flow(&actor, id).await?;
    let (spec, _, version) = spec_of(&body)?;
    plugins_known(&s, actor.workspace_id, &spec).await?;
    Ok(Json(s.desk().execute(&actor, &UpdateFlow { id, spec, version }).await?))
}

pub async fn delete_flow(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteFlow { id: id.id("flow")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn enable_flow(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Flow>> {
    Ok(Json(s.desk().execute(&actor, &SetFlowEnabled { id: id.id("flow")?, enabled: true }).await?))
}

pub async fn disable_flow(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Flow>> {
    Ok(Json(s.desk().execute(&actor, &SetFlowEnabled { id: id.id("flow")?, enabled: false }).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn list_runs(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<Vec<FlowRun>>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(s.desk().flow_runs(&actor, id.id("flow")?, limit).await?))
}

pub async fn get_run(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<FlowRun>> {
    Ok(Json(s.desk().flow_run(&actor, id.id("flow run")?).await?))
}

pub async fn replay_run(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<FlowRun>> {
    Ok(Json(s.desk().execute(&actor, &ReplayFlowRun { run: id.id("flow run")? }).await?))
}

/// An endpoint as reads show it: never the token, and the signing secret only as "set".
#[derive(Debug, Serialize)]
pub struct EndpointView {
    id: HookEndpointId,
    name: String,
    target: HookTarget,
    signed: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    version: i64,
}

impl From<HookEndpoint> for EndpointView {
    fn from(h: HookEndpoint) -> Self {
        Self {
            id: h.id,
            name: h.name,
            target: h.target,
            signed: h.signing_secret.is_some(),
            created_at: h.created_at,
            version: h.version,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    name: String,
    target: HookTarget,
    /// When given, requests must be signed with it (`Tandem-Signature`).
    #[serde(default)]
    signing_secret: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// Shown once.
    token: String,
    /// Where to send requests (under this server's address).
    path: String,
}

pub async fn list_endpoints(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<EndpointView>>> {
    Ok(Json(s.desk().hook_endpoints(&actor).await?.into_iter().map(EndpointView::from).collect()))
}

pub async fn create_endpoint(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let secret = super::webhooks::random_secret(32)?;
    let cmd = CreateHookEndpoint {
        name: body.name,
        token_sha256: token_digest(&secret),
        signing_secret: body.signing_secret,
        target: body.target,
    };
    let hook = s.desk().execute(&actor, &cmd).await?;
    let token = make_token(hook.workspace_id, hook.id, &secret);
    let path = format!("/api/v1/hooks/in/{token}");
    Ok(created(CreatedEndpoint { endpoint: hook.into(), token, path }))
}

pub async fn delete_endpoint(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteHookEndpoint { id: id.id("incoming webhook")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn hook_error(e: HookError) -> ApiError {
    let message = e.to_string();
    match e {
        HookError::NotFound => ApiError::not_found("incoming webhook"),
        HookError::BadSignature(_) => ApiError::unauthorized(message),
        HookError::BadRequest(_) => ApiError::bad_request(message),
        HookError::Unprocessable(_) => ApiError::invalid("", message),
        HookError::Conflict(_) => ApiError::conflict(message),
        HookError::Unavailable(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
    }
}

/// `POST /hooks/in/{token}`: public, authenticated by the token alone (and the signature).
pub async fn receive(
    State(s): State<AppState>,
    token: Param,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<HookOutcome>)> {
    let request = IncomingRequest {
        method: "POST".into(),
        path: "/api/v1/hooks/in".into(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect(),
        body: body.to_vec(),
    };
    let outcome = s.flows()?.receive(&token.0, request).await.map_err(hook_error)?;
    let status = match &outcome {
        HookOutcome::ItemCreated { .. } => StatusCode::CREATED,
        HookOutcome::ItemUpdated { .. } => StatusCode::OK,
        // Every delivery id seen before: nothing new was accepted, and nothing is wrong either.
        HookOutcome::FlowStarted { runs, duplicates } if runs.is_empty() && !duplicates.is_empty() => {
            StatusCode::OK
        }
        HookOutcome::FlowStarted { .. } => StatusCode::ACCEPTED,
    };
    Ok((status, Json(outcome)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    event: String,
    target_url: String,
}

#[derive(Debug, Serialize)]
pub struct Subscribed {
    id: WebhookId,
    event: String,
    target_url: String,
    /// Deliveries are signed with it (`Tandem-Signature`); shown once.
    secret: String,
}

pub async fn subscribe(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<Subscribe>,
) -> ApiResult<(StatusCode, Json<Subscribed>)> {
    let secret = format!("whsec_{}", super::webhooks::random_secret(32)?);
    let cmd = CreateWebhook {
        url: body.target_url,
        secret: secret.clone(),
        events: vec![body.event],
        active: true,
        rest_hook: true,
    };
    let hook = s.desk().execute(&actor, &cmd).await.map_err(|e| match ApiError::from(e) {
        // The request names `target_url` and `event`, not the webhook's `url` and `events`.
        ApiError { field: Some(f), message, status, code } => {
            let renamed = f.replacen("url", "target_url", 1).replacen("events[0]", "event", 1);
            ApiError { message: message.replacen(&f, &renamed, 1), field: Some(renamed), status, code }
        }
        other => other,
    })?;
    Ok(created(Subscribed {
        id: hook.id,
        event: hook.events.first().cloned().unwrap_or_default(),
        target_url: hook.url,
        secret,
    }))
}

pub async fn unsubscribe(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    let id: WebhookId = id.id("subscription")?;
    let hook = s.desk().webhook(&actor, id).await?;
    if !hook.rest_hook {
        return Err(ApiError::not_found(format!("subscription {id}")));
    }
    s.desk().execute(&actor, &DeleteWebhook { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
