//! Saved views: CRUD, running a view in its layout (list, tree, board, calendar, Gantt), the Gantt
//! chart as SVG, and moving a board card (a workflow transition through the normal command).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tandem_core::commands::{CreateView, DeleteView, TransitionItem, TransitionTo, UpdateView, ViewPatch};
use tandem_core::schedule::gantt::{GanttOptions, render};
use tandem_core::views::{Layout, SavedView, ViewData, ViewRequest, ViewResult};
use tandem_core::{Item, ItemRef, ViewId};

use super::planning::{ScheduleOut, schedule_json};
use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;

pub async fn list_views(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<SavedView>>> {
    Ok(Json(s.desk().views(&actor).await?))
}

pub async fn create_view(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateView>,
) -> ApiResult<(StatusCode, Json<SavedView>)> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_view(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<SavedView>> {
    Ok(Json(s.desk().view(&actor, id.id("view")?).await?))
}

pub async fn update_view(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<ViewPatch>,
) -> ApiResult<Json<SavedView>> {
    Ok(Json(s.desk().execute(&actor, &UpdateView { view: id.id("view")?, patch }).await?))
}

pub async fn delete_view(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteView { view: id.id("view")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn layout(s: &str) -> Option<Layout> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn month(s: &str) -> Option<(i32, u32)> {
    let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()?;
    use chrono::Datelike;
    Some((d.year(), d.month()))
}

fn request(q: &QueryPairs, extra: &[&str]) -> ApiResult<ViewRequest> {
    let mut known = vec!["layout", "month", "due_field"];
    known.extend_from_slice(extra);
    q.only(&known)?;
    Ok(ViewRequest {
        layout: q.parse("layout", layout, "list, tree, board, calendar or gantt")?,
        month: q.parse("month", month, "a month like 2026-03")?,
        due_field: q.get("due_field").map(|f| f.trim_start_matches("custom.").to_string()),
    })
}

async fn run(
    s: &AppState,
    actor: &tandem_core::Actor,
    id: &Param,
    request: &ViewRequest,
) -> ApiResult<ViewResult> {
    let view = s.desk().view(actor, id.id::<ViewId>("view")?).await?;
    Ok(s.desk().run_view(actor, view, request, Utc::now()).await?)
}

#[derive(Debug, Serialize)]
pub struct ViewOut {
    view: SavedView,
    /// How many items the view selected.
    count: usize,
    #[serde(flatten)]
    data: ViewData,
    /// The Gantt layout's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleOut>,
}

/// `GET /views/{id}/run?layout=&month=&due_field=`: the view's data in its layout (or another).
pub async fn run_view(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Json<ViewOut>> {
    let result = run(&s, &actor, &id, &request(&q, &[])?).await?;
    let schedule = result.gantt.as_ref().map(|(plan, _, schedule)| schedule_json(None, plan, schedule));
    Ok(Json(ViewOut { count: result.items.len(), view: result.view, data: result.data, schedule }))
}

/// `GET /views/{id}/gantt.svg`: the view's tasks as a Gantt chart.
pub async fn view_gantt(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Response> {
    q.only(&[])?;
    let request = ViewRequest { layout: Some(Layout::Gantt), ..ViewRequest::default() };
    let result = run(&s, &actor, &id, &request).await?;
    let Some((plan, calendars, schedule)) = result.gantt else {
        return Err(ApiError::invalid("layout", "the view has no Gantt chart"));
    };
    let svg = render(&plan, &schedule, &calendars, &GanttOptions::default());
    Ok(([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveCard {
    item: super::items::RefInput,
    status: String,
    /// The card's version as the board showed it; a newer item is a 409.
    #[serde(default)]
    version: Option<i64>,
}

/// `POST /views/{id}/board/move`: moving a card to another column is a workflow transition, with
/// the workflow's rules, permissions and events.
pub async fn move_card(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<MoveCard>,
) -> ApiResult<Json<Item>> {
    // The view must exist and be visible: a board only moves cards it shows.
    let view = s.desk().view(&actor, id.id::<ViewId>("view")?).await?;
    let items = s.desk().view_items(&actor, &view, Utc::now()).await?;
    let item = s.desk().item(&actor, body.item.0).await?;
    if !items.iter().any(|i| i.id == item.id) {
        return Err(ApiError::invalid("item", format!("item #{} is not on this board", item.number)));
    }
    let cmd = TransitionItem {
        item: ItemRef::Id(item.id),
        to: TransitionTo::Status(body.status),
        version: body.version,
    };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}
