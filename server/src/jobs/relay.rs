//! The event relay loop: every `interval`, for every workspace, run
//! [`RelayEvents`](tandem_core::commands::RelayEvents) as Tandem itself until the workspace's
//! log is relayed — and, when outbound mail is configured,
//! [`NotifyFollowers`](tandem_core::commands::NotifyFollowers) likewise on its own cursor — and
//! wake the job runner when jobs were enqueued.
//!
//! Every server runs this loop. They race for each batch through the relay cursor's version;
//! a lost race is simply a batch another server relayed.

use std::sync::Arc;
use std::time::Duration;

use tandem_core::commands::{NotifyFollowers, RelayEvents};
use tandem_core::{Actor, Desk, DeskError};
use tokio::sync::{Notify, watch};

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub interval: Duration,
    /// Most events relayed per commit.
    pub batch: usize,
    /// Attempts each delivery gets before it is a dead letter.
    pub max_attempts: u32,
    /// When set, followers are mailed too, each mail getting this many attempts (only when an
    /// SMTP relay is configured: otherwise nobody would run the jobs).
    pub mail_attempts: Option<u32>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(1), batch: 200, max_attempts: 10, mail_attempts: None }
    }
}

/// Relays every workspace's new events once; returns how many jobs (deliveries and mails) were
/// enqueued.
pub async fn relay_all(desk: &Desk, config: &RelayConfig) -> Result<usize, DeskError> {
    let relay = RelayEvents { batch: config.batch, max_attempts: config.max_attempts };
    let mut deliveries = 0;
    for ws in desk.store().workspaces().await? {
        let system = Actor::system(ws.id);
        loop {
            match desk.execute(&system, &relay).await {
                Ok(done) => {
                    deliveries += done.deliveries;
                    if !done.more {
                        break;
                    }
                }
                // Other servers kept winning this workspace's batches: they are relaying it.
                Err(DeskError::Conflict(_)) => break,
                Err(e) => {
                    tracing::warn!(workspace = %ws.id, error = %e, "relaying events failed; trying again later");
                    break;
                }
            }
        }
        let Some(attempts) = config.mail_attempts else { continue };
        let notify = NotifyFollowers { batch: config.batch, max_attempts: attempts };
        loop {
            match desk.execute(&system, &notify).await {
                Ok(done) => {
                    deliveries += done.mails;
                    if !done.more {
                        break;
                    }
                }
                Err(DeskError::Conflict(_)) => break,
                Err(e) => {
                    tracing::warn!(workspace = %ws.id, error = %e, "mailing followers failed; trying again later");
                    break;
                }
            }
        }
    }
    Ok(deliveries)
}

/// Runs the relay until `stop` turns true.
pub fn spawn(
    desk: Desk,
    config: RelayConfig,
    wake_runner: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            match relay_all(&desk, &config).await {
                Ok(0) => {}
                Ok(_) => wake_runner.notify_one(),
                Err(e) => tracing::warn!(error = %e, "listing workspaces for the relay failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(config.interval) => {}
                _ = stop.changed() => break,
            }
        }
    })
}
