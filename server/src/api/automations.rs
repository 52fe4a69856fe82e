//! Automation rules: CRUD, reorder, enable/disable, dry run and the run log. Rule bodies are
//! checked in the core; a bad part is a 422 naming its JSON path (`conditions.any[2].field`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tandem_core::automation::{AutomationRun, Rule};
use tandem_core::commands::{CreateRule, DeleteRule, DryRun, ReorderRules, RulePatch, RunFilter, UpdateRule};
use tandem_core::{ItemRef, RuleId};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;

pub async fn list_rules(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(s.desk().automation_rules(&actor).await?))
}

pub async fn create_rule(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<CreateRule>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    Ok(created(s.desk().execute(&actor, &body).await?))
}

pub async fn get_rule(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Rule>> {
    Ok(Json(s.desk().automation_rule(&actor, id.id("automation rule")?).await?))
}

pub async fn update_rule(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<RulePatch>,
) -> ApiResult<Json<Rule>> {
    let cmd = UpdateRule { id: id.id("automation rule")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

async fn switch(
    s: &AppState,
    actor: &tandem_core::Actor,
    id: RuleId,
    enabled: bool,
) -> ApiResult<Json<Rule>> {
    let cmd = UpdateRule { id, patch: RulePatch { enabled: Some(enabled), ..RulePatch::default() } };
    Ok(Json(s.desk().execute(actor, &cmd).await?))
}

pub async fn enable_rule(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Rule>> {
    switch(&s, &actor, id.id("automation rule")?, true).await
}

pub async fn disable_rule(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Rule>> {
    switch(&s, &actor, id.id("automation rule")?, false).await
}

pub async fn delete_rule(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteRule { id: id.id("automation rule")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reorder_rules(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<ReorderRules>,
) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(s.desk().execute(&actor, &body).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    /// An item number (`42`, `"#42"`) or id.
    item: serde_json::Value,
    #[serde(default)]
    rule: Option<RuleId>,
}

pub async fn dry_run(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<DryRunRequest>,
) -> ApiResult<Json<DryRun>> {
    let raw = match &body.item {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(ApiError::invalid("item", "expected an item number or id")),
    };
    let item: ItemRef = raw.parse().map_err(|e: tandem_core::Invalid| ApiError::invalid("item", e.reason))?;
    Ok(Json(s.desk().automation_dry_run(&actor, item, body.rule).await?))
}

pub async fn runs(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<AutomationRun>>> {
    q.only(&["rule", "item", "limit"])?;
    let filter = RunFilter {
        rule: q.parse("rule", |v| v.parse::<RuleId>().ok(), "a rule id")?,
        item: q.parse("item", |v| v.parse::<ItemRef>().ok(), "an item number or id")?,
        limit: q.limit(100, 1000)?,
    };
    Ok(Json(s.desk().automation_runs(&actor, &filter).await?))
}
