//! Import and export: CSV and MS Project XML (MSPDI) into a project, a project as MSPDI, saved
//! views and timesheets as CSV or XLSX.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tandem_core::commands::{CalendarBody, ImportItems, SetCalendar};
use tandem_core::export::Table;
use tandem_core::import::{ImportReport, csv, mspdi};
use tandem_core::store::TimeEntryQuery;
use tandem_core::timesheet::EntryStatus;
use tandem_core::{CalendarOwner, ProjectId, UserId, ViewId};

use super::Param;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::export::{FileFormat, file_name};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvImport {
    /// The file's text (UTF-8, a header row first).
    csv: String,
    /// Header → item field; unnamed headers are mapped by name (see `tandem_core::import::csv`).
    #[serde(default)]
    mapping: BTreeMap<String, String>,
    /// The type of rows without a `type` column: a name or an id.
    #[serde(default)]
    item_type: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    all_or_nothing: bool,
}

/// `POST /projects/{id}/import/csv`: validates every row as `POST /items` would, writes the
/// valid ones in one commit (none with `all_or_nothing` when a row is bad, none in a dry run),
/// and answers the per-row problem report.
pub async fn import_csv(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<CsvImport>,
) -> ApiResult<Json<ImportReport>> {
    let project: ProjectId = id.id("project")?;
    let rows = csv::read(&body.csv, &body.mapping)?;
    let cmd = ImportItems {
        project,
        item_type: body.item_type,
        rows: rows.rows,
        ignored_columns: rows.ignored_columns,
        dry_run: body.dry_run,
        all_or_nothing: body.all_or_nothing,
    };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MspdiImport {
    /// The MSPDI document.
    xml: String,
    /// The (task) type of the imported items: a name or an id.
    item_type: String,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    all_or_nothing: bool,
    /// Also make the document's base calendar the workspace calendar (managers).
    #[serde(default)]
    calendar: bool,
}

/// `POST /projects/{id}/import/mspdi`: the document's tasks become tasks of the project
/// (hierarchy, dependencies, constraints, durations, progress, baselines); with `calendar`, its
/// base calendar replaces the workspace's once the tasks are written.
pub async fn import_mspdi(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<MspdiImport>,
) -> ApiResult<Json<ImportReport>> {
    let project: ProjectId = id.id("project")?;
    let doc = mspdi::read(&body.xml)?;
    let cmd = ImportItems {
        project,
        item_type: Some(body.item_type),
        rows: doc.rows(),
        ignored_columns: Vec::new(),
        dry_run: body.dry_run,
        all_or_nothing: body.all_or_nothing,
    };
    let report = s.desk().execute(&actor, &cmd).await?;
    if body.calendar && report.committed {
        let calendar = SetCalendar {
            owner: CalendarOwner::Workspace,
            body: CalendarBody {
                week: Some(doc.calendar.week),
                exceptions: doc.calendar.exceptions,
                version: None,
            },
        };
        s.desk().execute(&actor, &calendar).await?;
    }
    Ok(Json(report))
}

/// A file download.
pub(crate) fn file(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /projects/{id}/export/mspdi`: the project's tasks as MS Project XML.
pub async fn export_mspdi(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Response> {
    q.only(&[])?;
    // Wall-clock time is UTC until workspaces have a time zone.
    let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    let doc = s.desk().project_document(&actor, id.id("project")?, today).await?;
    let xml = mspdi::write(&doc);
    Ok(file(xml.into_bytes(), "application/xml; charset=utf-8", &file_name(&doc.name, "xml")))
}

fn format(q: &QueryPairs) -> ApiResult<FileFormat> {
    Ok(q.parse("format", FileFormat::parse, "csv or xlsx")?.unwrap_or(FileFormat::Csv))
}

fn table_file(table: &Table, format: FileFormat) -> ApiResult<Response> {
    let bytes = format.write(table).map_err(|e| {
        tracing::error!(error = %e, "writing a workbook failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the workbook could not be written",
        )
    })?;
    Ok(file(bytes, format.content_type(), &file_name(&table.name, format.extension())))
}

/// `GET /views/{id}/export?format=csv|xlsx`: the view's items with its columns, whatever its
/// layout (grouped views get the group as the first column).
pub async fn export_view(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Response> {
    q.only(&["format"])?;
    let format = format(&q)?;
    let table = s.desk().view_table(&actor, id.id::<ViewId>("view")?, Utc::now()).await?;
    table_file(&table, format)
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// `GET /time/export?format=&user=&status=&from=&to=`: timesheet entries with person, item,
/// start, minutes and status.
pub async fn export_time(State(s): State<AppState>, Auth(actor): Auth, q: QueryPairs) -> ApiResult<Response> {
    q.only(&["format", "user", "status", "from", "to"])?;
    let format = format(&q)?;
    let mut query = TimeEntryQuery::all();
    query.user = q.parse("user", |v| uuid::Uuid::parse_str(v).ok().map(UserId), "a user id")?;
    query.statuses = q.list("status", EntryStatus::parse, "draft, submitted, approved or rejected")?;
    query.started_from = q.parse("from", time, "an RFC 3339 time")?;
    query.started_before = q.parse("to", time, "an RFC 3339 time")?;
    query.limit = 10_000;
    let table = s.desk().time_table(&actor, query, Utc::now()).await?;
    table_file(&table, format)
}
