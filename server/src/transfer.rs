//! `tandem import csv|mspdi …` and `tandem export view|timesheet|mspdi …`: the same import and
//! export as the API, on the `--db` store, acting as the server administrator. A progress bar on
//! stderr shows the steps of long work (only on a terminal; hidden when stderr is a file or pipe).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tandem_core::commands::{CalendarBody, ImportItems, SetCalendar};
use tandem_core::import::{ImportReport, csv, mspdi};
use tandem_core::store::TimeEntryQuery;
use tandem_core::timesheet::EntryStatus;
use tandem_core::{Actor, CalendarOwner, Desk, Limits, ProjectId, UserId, ViewId, WorkspaceId};

use crate::admin::{Done, EXIT_INVALID, EXIT_STORAGE, Failed, resolve_workspace};
use crate::backend::{Backend, BackendOptions, DbLocation};
use crate::export::FileFormat;
use crate::runtime::{SystemClock, UuidV7Ids};

#[derive(Debug, Clone)]
pub enum TransferCommand {
    ImportCsv {
        project: ProjectId,
        file: PathBuf,
        /// `Header=field` pairs.
        mapping: Vec<String>,
        item_type: Option<String>,
        dry_run: bool,
        all_or_nothing: bool,
    },
    ImportMspdi {
        project: ProjectId,
        file: PathBuf,
        item_type: String,
        dry_run: bool,
        all_or_nothing: bool,
        calendar: bool,
    },
    ExportView {
        view: ViewId,
        format: FileFormat,
        out: PathBuf,
    },
    ExportTimesheet {
        format: FileFormat,
        user: Option<UserId>,
        statuses: Vec<EntryStatus>,
        out: PathBuf,
    },
    ExportMspdi {
        project: ProjectId,
        out: PathBuf,
    },
}

/// A bar of `steps` steps, drawn on stderr only when it is a terminal.
fn progress(steps: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn read_file(path: &Path) -> Result<String, Failed> {
    std::fs::read_to_string(path)
        .map_err(|e| Failed::new(EXIT_INVALID, format!("cannot read {}: {e}", path.display())))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failed> {
    std::fs::write(path, bytes)
        .map_err(|e| Failed::new(EXIT_STORAGE, format!("cannot write {}: {e}", path.display())))
}

fn invalid(e: tandem_core::Invalid) -> Failed {
    Failed::new(EXIT_INVALID, format!("{}: {}", e.field, e.reason))
}

/// The report as lines; problems make the command fail with [`EXIT_INVALID`] (after printing it).
fn report_lines(r: &ImportReport) -> Result<Done, Failed> {
    let mut lines = vec![format!(
        "{}: {} rows, {} valid, {} created, {} dependencies",
        if r.dry_run {
            "dry run"
        } else if r.committed {
            "imported"
        } else {
            "nothing imported"
        },
        r.rows,
        r.valid,
        if r.committed { r.items.len() } else { 0 },
        r.links
    )];
    for p in &r.problems {
        let column = p.column.as_deref().map(|c| format!(", column {c}")).unwrap_or_default();
        let field = if p.field.is_empty() { String::new() } else { format!(" ({})", p.field) };
        lines.push(format!("row {}{column}{field}: {}", p.row, p.message));
    }
    if !r.ignored_columns.is_empty() {
        lines.push(format!("ignored columns: {}", r.ignored_columns.join(", ")));
    }
    let text = lines.join("\n");
    if r.problems.is_empty() { Ok(Done { output: text }) } else { Err(Failed::new(EXIT_INVALID, text)) }
}

/// Opens the database, runs one import or export and closes it again.
pub async fn run(
    db: &DbLocation,
    options: &BackendOptions,
    workspace: Option<WorkspaceId>,
    command: TransferCommand,
) -> Result<Done, Failed> {
    let backend =
        Backend::open(db, options).await.map_err(|e| Failed::new(EXIT_STORAGE, format!("{e:#}")))?;
    let desk = Desk::new(backend.store(), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let result = match resolve_workspace(&desk, workspace).await {
        Ok(ws) => execute(&desk, &Actor::server_admin(ws), command).await,
        Err(e) => Err(e),
    };
    backend.close().await;
    result
}

async fn execute(desk: &Desk, actor: &Actor, command: TransferCommand) -> Result<Done, Failed> {
    match command {
        TransferCommand::ImportCsv { project, file, mapping, item_type, dry_run, all_or_nothing } => {
            let bar = progress(3);
            bar.set_message(format!("reading {}", file.display()));
            let mut pairs = BTreeMap::new();
            for m in &mapping {
                let (header, field) = m.split_once('=').ok_or_else(|| {
                    Failed::new(EXIT_INVALID, format!("--mapping '{m}' is not Header=field"))
                })?;
                pairs.insert(header.trim().to_string(), field.trim().to_string());
            }
            let rows = csv::read(&read_file(&file)?, &pairs).map_err(invalid)?;
            bar.inc(1);
            bar.set_message(format!("checking {} rows", rows.rows.len()));
            let cmd = ImportItems {
                project,
                item_type,
                rows: rows.rows,
                ignored_columns: rows.ignored_columns,
                dry_run,
                all_or_nothing,
            };
            let report = desk.execute(actor, &cmd).await?;
            bar.inc(2);
            bar.finish_and_clear();
            report_lines(&report)
        }
        TransferCommand::ImportMspdi { project, file, item_type, dry_run, all_or_nothing, calendar } => {
            let bar = progress(3);
            bar.set_message(format!("reading {}", file.display()));
            let doc = mspdi::read(&read_file(&file)?).map_err(invalid)?;
            bar.inc(1);
            bar.set_message(format!("checking {} tasks", doc.tasks.len()));
            let cmd = ImportItems {
                project,
                item_type: Some(item_type),
                rows: doc.rows(),
                ignored_columns: Vec::new(),
                dry_run,
                all_or_nothing,
            };
            let report = desk.execute(actor, &cmd).await?;
            bar.inc(1);
            if calendar && report.committed {
                bar.set_message("setting the workspace calendar");
                let body = CalendarBody {
                    week: Some(doc.calendar.week),
                    exceptions: doc.calendar.exceptions,
                    version: None,
                };
                desk.execute(actor, &SetCalendar { owner: CalendarOwner::Workspace, body }).await?;
            }
            bar.inc(1);
            bar.finish_and_clear();
            report_lines(&report)
        }
        TransferCommand::ExportView { view, format, out } => {
            let bar = progress(2);
            bar.set_message("running the view");
            let table = desk.view_table(actor, view, Utc::now()).await?;
            bar.inc(1);
            bar.set_message(format!("writing {} rows", table.rows.len()));
            let bytes = format.write(&table).map_err(|e| Failed::new(EXIT_STORAGE, e.to_string()))?;
            write_file(&out, &bytes)?;
            bar.finish_and_clear();
            Ok(Done { output: format!("{}: {} rows", out.display(), table.rows.len()) })
        }
        TransferCommand::ExportTimesheet { format, user, statuses, out } => {
            let bar = progress(2);
            bar.set_message("reading time entries");
            let mut query = TimeEntryQuery::all();
            query.user = user;
            query.statuses = statuses;
            query.limit = 10_000;
            let table = desk.time_table(actor, query, Utc::now()).await?;
            bar.inc(1);
            let bytes = format.write(&table).map_err(|e| Failed::new(EXIT_STORAGE, e.to_string()))?;
            write_file(&out, &bytes)?;
            bar.finish_and_clear();
            Ok(Done { output: format!("{}: {} entries", out.display(), table.rows.len()) })
        }
        TransferCommand::ExportMspdi { project, out } => {
            let bar = progress(2);
            bar.set_message("scheduling the project");
            let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
            let doc = desk.project_document(actor, project, today).await?;
            bar.inc(1);
            write_file(&out, mspdi::write(&doc).as_bytes())?;
            bar.finish_and_clear();
            Ok(Done { output: format!("{}: {} tasks", out.display(), doc.tasks.len()) })
        }
    }
}
