//! Automations outside a request: the scheduler that fires time-based rules (idle, due date
//! approaching/passed, in a status for N hours), and the handler of `automation.deliver` jobs
//! (replies and notifications deferred until an item created in the same commit had its number).
//!
//! Every server runs the scheduler. Each firing is a [`FireTimedRule`] command, which fires at
//! most once per rule, item and occurrence (the run log is read in the same optimistic
//! transaction), so servers racing for the same firing commit it once.

use std::time::Duration;

use async_trait::async_trait;
use tandem_core::automation::AUTOMATION_DELIVER_JOB;
use tandem_core::commands::DeliverAutomation;
use tandem_core::store::Job;
use tandem_core::{Actor, Desk, DeskError, JobFailure, JobHandler};
use tokio::sync::watch;

/// Runs `automation.deliver` jobs through `Desk` as Tandem itself.
#[derive(Debug, Clone)]
pub struct AutomationDelivery {
    desk: Desk,
}

impl AutomationDelivery {
    pub fn new(desk: Desk) -> Self {
        Self { desk }
    }
}

#[async_trait]
impl JobHandler for AutomationDelivery {
    fn kind(&self) -> &'static str {
        AUTOMATION_DELIVER_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let cmd: DeliverAutomation = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::Fatal(format!("malformed automation.deliver payload: {e}")))?;
        match self.desk.execute(&Actor::system(job.workspace_id), &cmd).await {
            Ok(()) => Ok(()),
            // The item was deleted meanwhile, or the action cannot be delivered: nothing to retry.
            Err(e @ (DeskError::NotFound(_) | DeskError::Invalid(_) | DeskError::Forbidden(_))) => {
                Err(JobFailure::Fatal(e.to_string()))
            }
            Err(e) => Err(JobFailure::Retry(e.to_string())),
        }
    }
}

/// Fires every due time-based rule of every workspace once; returns how many fired.
pub async fn fire_due(desk: &Desk) -> Result<usize, DeskError> {
    let mut fired = 0;
    for ws in desk.store().workspaces().await? {
        let system = Actor::system(ws.id);
        let due = match desk.due_timed_firings(&system).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(workspace = %ws.id, error = %e, "looking for due automations failed");
                continue;
            }
        };
        for firing in due {
            match desk.execute(&system, &firing).await {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    workspace = %ws.id, rule = %firing.rule, item = %firing.item, error = %e,
                    "a time-based automation failed; trying again on the next pass"
                ),
            }
        }
    }
    Ok(fired)
}

/// Runs the scheduler every `interval` until `stop` turns true.
pub fn spawn(desk: Desk, interval: Duration, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            match fire_due(&desk).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(fired = n, "time-based automations fired"),
                Err(e) => tracing::warn!(error = %e, "listing workspaces for automations failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => break,
            }
        }
    })
}
