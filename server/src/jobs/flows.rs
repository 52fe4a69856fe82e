//! The flow scheduler: every `interval`, on every server, start event-triggered flows from the
//! event log and enqueue the polls that are due (`tandem_integrations::flows::schedule`), and
//! wake the job runner when something was enqueued. Servers racing on a workspace collide on
//! the relay cursor's and the poll states' versions, so each run and poll is enqueued once.

use std::sync::Arc;
use std::time::Duration;

use tandem_core::Desk;
use tokio::sync::{Notify, watch};

/// Most events turned into runs per commit.
pub const BATCH: usize = 200;

/// Runs the scheduler until `stop` turns true.
pub fn spawn(
    desk: Desk,
    interval: Duration,
    wake_runner: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            match tandem_integrations::flows::schedule(&desk, BATCH).await {
                Ok(0) => {}
                Ok(_) => wake_runner.notify_one(),
                Err(e) => tracing::warn!(error = %e, "listing workspaces for flows failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => break,
            }
        }
    })
}
