//! Scheduled reports: a saved view mailed on a schedule (UTC) as CSV, XLSX or HTML.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tandem_core::ReportId;
use tandem_core::commands::{CreateReport, DeleteReport, QueueReport, ReportPatch, UpdateReport};
use tandem_core::reports::ScheduledReport;

use super::{Param, created};
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::state::AppState;

pub async fn list_reports(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<ScheduledReport>>> {
    Ok(Json(s.desk().reports(&actor).await?))
}

pub async fn create_report(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateReport>,
) -> ApiResult<(StatusCode, Json<ScheduledReport>)> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_report(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<ScheduledReport>> {
    Ok(Json(s.desk().report(&actor, id.id::<ReportId>("report")?).await?))
}

pub async fn update_report(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<ReportPatch>,
) -> ApiResult<Json<ScheduledReport>> {
    Ok(Json(s.desk().execute(&actor, &UpdateReport { report: id.id("report")?, patch }).await?))
}

pub async fn delete_report(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteReport { report: id.id("report")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /reports/{id}/send`: one occurrence now (its owner or an administrator); the schedule
/// stays. 202: the mail goes out through the job queue.
pub async fn send_report(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &QueueReport { report: id.id("report")?, now: true }).await?;
    Ok(StatusCode::ACCEPTED)
}
