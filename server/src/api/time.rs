//! Time tracking: manual entries and timers on items, the acting user's timer, editing,
//! submission, review, and tracked time rolled up to items, projects and portfolios.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tandem_core::commands::{
    ControlTimer, DeleteTimeEntry, EditTimeEntry, LogTime, Review, ReviewTime, StartTimer, SubmitTime,
    TimeEntryPatch, TimerAction,
};
use tandem_core::store::TimeEntryQuery;
use tandem_core::timesheet::{EntryStatus, TimeEntry, TimeReport};
use tandem_core::{TimeEntryId, UserId};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, OptionalJson, QueryPairs};
use crate::state::AppState;

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// `GET /time-entries?user=&item=&status=&from=&to=&running=&limit=`
pub async fn list_entries(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<TimeEntry>>> {
    q.only(&["user", "item", "status", "from", "to", "running", "limit"])?;
    let mut query = TimeEntryQuery::all();
    query.user = q.parse("user", |v| uuid::Uuid::parse_str(v).ok().map(UserId), "a user id")?;
    let item = q.parse("item", |v| v.parse::<tandem_core::ItemRef>().ok(), "an item number or id")?;
    if let Some(item) = item {
        query.items = Some(vec![s.desk().item(&actor, item).await?.id]);
    }
    query.statuses = q.list("status", EntryStatus::parse, "draft, submitted, approved or rejected")?;
    query.started_from = q.parse("from", time, "an RFC 3339 time")?;
    query.started_before = q.parse("to", time, "an RFC 3339 time")?;
    query.running = q.parse(
        "running",
        |v| match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        "true or false",
    )?;
    query.limit = q.limit(1000, 10_000)?;
    Ok(Json(s.desk().time_entries(&actor, query).await?))
}

pub async fn get_entry(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<TimeEntry>> {
    Ok(Json(s.desk().time_entry(&actor, id.id("time entry")?).await?))
}

/// `POST /items/{item}/time`: work recorded by hand.
pub async fn log_time(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(mut cmd): JsonBody<LogTime>,
) -> ApiResult<(StatusCode, Json<TimeEntry>)> {
    cmd.item = item.item()?;
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Serialize)]
pub struct ItemTime {
    entries: Vec<TimeEntry>,
    #[serde(flatten)]
    report: TimeReport,
}

/// `GET /items/{item}/time`: the item's entries and its time with its sub-items'.
pub async fn item_time(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
) -> ApiResult<Json<ItemTime>> {
    let (entries, report) = s.desk().item_time(&actor, item.item()?).await?;
    Ok(Json(ItemTime { entries, report }))
}

pub async fn project_time(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<TimeReport>> {
    Ok(Json(s.desk().project_time(&actor, id.id("project")?).await?))
}

pub async fn portfolio_time(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<TimeReport>> {
    Ok(Json(s.desk().portfolio_time(&actor, id.id("portfolio")?).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    #[serde(default)]
    note: String,
}

/// `POST /items/{item}/timer`: starts the acting user's timer on the item.
pub async fn start_timer(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    OptionalJson(body): OptionalJson<StartBody>,
) -> ApiResult<(StatusCode, Json<TimeEntry>)> {
    let cmd = StartTimer { item: item.item()?, note: body.note };
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerBody {
    /// Which timer; the running one (or, to resume, the last paused one) when absent.
    #[serde(default)]
    entry: Option<TimeEntryId>,
    /// Stop only: the minutes really worked instead of what was measured.
    #[serde(default)]
    minutes: Option<i64>,
    /// Stop only: replaces the note.
    #[serde(default)]
    note: Option<String>,
}

async fn control(
    s: &AppState,
    actor: &tandem_core::Actor,
    body: TimerBody,
    action: TimerAction,
) -> ApiResult<Json<TimeEntry>> {
    if !matches!(action, TimerAction::Stop { .. }) && (body.minutes.is_some() || body.note.is_some()) {
        return Err(ApiError::invalid("minutes", "only stopping a timer takes minutes or a note"));
    }
    let cmd = ControlTimer { entry: body.entry, action };
    Ok(Json(s.desk().execute(actor, &cmd).await?))
}

/// `POST /timer/pause`
pub async fn pause_timer(
    State(s): State<AppState>,
    Auth(actor): Auth,
    OptionalJson(body): OptionalJson<TimerBody>,
) -> ApiResult<Json<TimeEntry>> {
    control(&s, &actor, body, TimerAction::Pause).await
}

/// `POST /timer/resume`
pub async fn resume_timer(
    State(s): State<AppState>,
    Auth(actor): Auth,
    OptionalJson(body): OptionalJson<TimerBody>,
) -> ApiResult<Json<TimeEntry>> {
    control(&s, &actor, body, TimerAction::Resume).await
}

/// `POST /timer/stop`
pub async fn stop_timer(
    State(s): State<AppState>,
    Auth(actor): Auth,
    OptionalJson(body): OptionalJson<TimerBody>,
) -> ApiResult<Json<TimeEntry>> {
    let action = TimerAction::Stop { minutes: body.minutes, note: body.note.clone() };
    control(&s, &actor, TimerBody { minutes: None, note: None, ..body }, action).await
}

/// `GET /timer`: the acting user's running timer, 404 when none runs.
pub async fn current_timer(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<TimeEntry>> {
    let Some(user) = actor.user_id() else { return Err(ApiError::not_found("running timer")) };
    let query = TimeEntryQuery { user: Some(user), running: Some(true), ..TimeEntryQuery::all() };
    let mut running = s.desk().time_entries(&actor, query).await?;
    running.pop().map(Json).ok_or_else(|| ApiError::not_found("running timer"))
}

/// `PATCH /time-entries/{id}`
pub async fn edit_entry(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<TimeEntryPatch>,
) -> ApiResult<Json<TimeEntry>> {
    let cmd = EditTimeEntry { entry: id.id("time entry")?, patch };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

/// `DELETE /time-entries/{id}`
pub async fn delete_entry(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteTimeEntry { entry: id.id("time entry")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /time-entries/submit` `{"entries": [...]}`
pub async fn submit(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<SubmitTime>,
) -> ApiResult<Json<Vec<TimeEntry>>> {
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

/// `POST /time-entries/{id}/approve`
pub async fn approve(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<TimeEntry>> {
    let cmd = ReviewTime { entry: id.id("time entry")?, review: Review::Approve };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    reason: String,
}

/// `POST /time-entries/{id}/reject` `{"reason": "..."}`
pub async fn reject(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<RejectBody>,
) -> ApiResult<Json<TimeEntry>> {
    let cmd = ReviewTime { entry: id.id("time entry")?, review: Review::Reject { reason: body.reason } };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}
