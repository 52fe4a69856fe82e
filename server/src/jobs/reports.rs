//! Scheduled reports outside a request: the scheduler that queues due reports (every server, each
//! occurrence queued once by the versioned `QueueReport` commit), and the `report.send` handler,
//! which runs the view as the report's owner, renders it and hands it to `DeliverReport`.

use std::time::Duration;

use async_trait::async_trait;
use tandem_core::commands::{DeliverReport, QueueReport, ReportFile};
use tandem_core::reports::{REPORT_SEND_JOB, ReportFormat, ReportJob, ScheduledReport};
use tandem_core::store::{Job, get};
use tandem_core::{Actor, Desk, DeskError, JobFailure, JobHandler, TokenScope, User};
use tokio::sync::watch;

use crate::export::{FileFormat, file_name, html};

/// Runs `report.send` jobs.
#[derive(Debug, Clone)]
pub struct ReportDelivery {
    desk: Desk,
}

impl ReportDelivery {
    pub fn new(desk: Desk) -> Self {
        Self { desk }
    }
}

fn retry(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(e.to_string())
}

#[async_trait]
impl JobHandler for ReportDelivery {
    fn kind(&self) -> &'static str {
        REPORT_SEND_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let ws = job.workspace_id;
        let payload: ReportJob = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::Fatal(format!("malformed report.send payload: {e}")))?;
        let store = self.desk.store().as_ref();
        let Some(report) = get::<ScheduledReport>(store, ws, payload.report.0).await.map_err(retry)? else {
            // Deleted since it was queued: nothing to send.
            return Ok(());
        };
        let owner = get::<User>(store, ws, report.owner.0).await.map_err(retry)?;
        let Some(owner) = owner.filter(|u| u.active) else {
            return Err(JobFailure::Fatal(format!(
                "report '{}': its owner is gone or disabled; nothing is sent",
                report.name
            )));
        };
        // The owner's permissions, read-only: the view shows what they may see, nothing more.
        let as_owner = Actor::user(owner, TokenScope::Read);
        let table = match self.desk.view_table(&as_owner, report.view, self.desk.now()).await {
            Ok(t) => t,
            Err(e @ (DeskError::NotFound(_) | DeskError::Forbidden(_) | DeskError::Invalid(_))) => {
                return Err(JobFailure::Fatal(format!("report '{}': {e}", report.name)));
            }
            Err(e) => return Err(retry(e)),
        };
        let title = format!("{} {}", report.name, payload.occurrence.format("%Y-%m-%d"));
        let (file, body) = match report.format {
            ReportFormat::Html => (None, Some(html(&table))),
            ReportFormat::Csv | ReportFormat::Xlsx => {
                let format =
                    if report.format == ReportFormat::Csv { FileFormat::Csv } else { FileFormat::Xlsx };
                let bytes = format.write(&table).map_err(|e| JobFailure::Fatal(e.to_string()))?;
                let name = file_name(&title, format.extension());
                let content_type = format.content_type().to_string();
                (Some(ReportFile { name, content_type, bytes }), None)
            }
        };
        let cmd = DeliverReport {
            report: report.id,
            occurrence: payload.occurrence,
            rows: table.rows.len(),
            file,
            html: body,
        };
        match self.desk.execute(&Actor::system(ws), &cmd).await {
            Ok(_) => Ok(()),
            Err(e @ (DeskError::NotFound(_) | DeskError::Invalid(_) | DeskError::Forbidden(_))) => {
                Err(JobFailure::Fatal(e.to_string()))
            }
            Err(e) => Err(retry(e)),
        }
    }
}

/// Queues every due report of every workspace once; returns how many were queued.
pub async fn queue_due(desk: &Desk) -> Result<usize, DeskError> {
    let mut queued = 0;
    for ws in desk.store().workspaces().await? {
        let system = Actor::system(ws.id);
        let due = match desk.due_reports(&system, desk.now()).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(workspace = %ws.id, error = %e, "looking for due reports failed");
                continue;
            }
        };
        for report in due {
            match desk.execute(&system, &QueueReport { report, now: false }).await {
                Ok(true) => queued += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    workspace = %ws.id, report = %report, error = %e,
                    "queueing a scheduled report failed; trying again on the next pass"
                ),
            }
        }
    }
    Ok(queued)
}

/// Runs the report scheduler every `interval` until `stop` turns true.
pub fn spawn(desk: Desk, interval: Duration, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            match queue_due(&desk).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "scheduled reports queued"),
                Err(e) => tracing::warn!(error = %e, "listing workspaces for reports failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => break,
            }
        }
    })
}
