//! The job runner: drains the durable job queue with at most `workers` jobs in flight.
//!
//! - One dispatcher claims due jobs for each registered kind with that kind's lease, as many as
//!   there are free worker slots, and runs each in a task of its own. A claim is a lease, not a
//!   lock: if this process dies, the lease expires and any server reclaims the job.
//! - A handler gets less time than its lease ([`KindPolicy::timeout`] < [`KindPolicy::lease`]),
//!   so a slow handler is timed out and its failure recorded before another server could
//!   reclaim the job.
//! - Outcomes: done; retried after exponential backoff with full jitter ([`backoff`]) or when the
//!   handler's `RetryAfter` says; dead with the last error kept when fatal or out of attempts.
//!   Only the claim still holding the job may record its outcome (the store checks `attempts`).
//! - Idle, the dispatcher polls every `poll` — or sooner when [`Runner::waker`] is notified
//!   (the relay does so after enqueuing deliveries).
//! - Shutdown: stop claiming, let the jobs in flight finish (each is bounded by its timeout),
//!   then return, so the caller can close the store.

pub mod automations;
pub mod backoff;
pub mod flows;
pub mod relay;
pub mod reports;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tandem_core::store::Job;
use tandem_core::{Clock, JobFailure, JobHandler, Store};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use backoff::Backoff;

/// How long a kind's jobs are leased, and how long its handler may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindPolicy {
    pub lease: Duration,
    /// Shorter than the lease.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Most jobs in flight at once in this process.
    pub workers: usize,
    /// The lease and timeout of kinds registered without their own.
    pub policy: KindPolicy,
    /// How often an idle runner looks for due jobs.
    pub poll: Duration,
    pub backoff: Backoff,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            policy: KindPolicy { lease: Duration::from_secs(60), timeout: Duration::from_secs(30) },
            poll: Duration::from_secs(1),
            backoff: Backoff::default(),
        }
    }
}

/// The handlers this process runs, by job kind.
#[derive(Debug, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, (Arc<dyn JobHandler>, Option<KindPolicy>)>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `handler`'s kind with the runner's default lease and timeout.
    pub fn register(&mut self, handler: Arc<dyn JobHandler>) -> &mut Self {
        self.handlers.insert(handler.kind(), (handler, None));
        self
    }

    /// Runs `handler`'s kind with a lease and timeout of its own.
    pub fn register_with(&mut self, handler: Arc<dyn JobHandler>, policy: KindPolicy) -> &mut Self {
        self.handlers.insert(handler.kind(), (handler, Some(policy)));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

/// A configuration the runner cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("job kind {kind}: the handler timeout ({timeout:?}) must be shorter than the lease ({lease:?})")]
    TimeoutNotShorterThanLease { kind: &'static str, timeout: Duration, lease: Duration },
    #[error("the job poll interval must be more than zero")]
    ZeroPoll,
}

struct Kind {
    name: &'static str,
    handler: Arc<dyn JobHandler>,
    policy: KindPolicy,
}

struct Shared {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    kinds: Vec<Kind>,
    config: RunnerConfig,
    wake: Arc<Notify>,
}

/// A running job runner.
#[derive(Debug)]
pub struct Runner {
    wake: Arc<Notify>,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl Runner {
    /// Starts the dispatcher. It stops claiming when `stop` turns true; [`Runner::finished`]
    /// then resolves once the jobs in flight are done.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        registry: Registry,
        config: RunnerConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<Runner, ConfigError> {
        if config.poll.is_zero() {
            return Err(ConfigError::ZeroPoll);
        }
        let mut kinds = Vec::new();
        for (name, (handler, policy)) in registry.handlers {
            let policy = policy.unwrap_or(config.policy);
            if policy.timeout >= policy.lease {
                return Err(ConfigError::TimeoutNotShorterThanLease {
                    kind: name,
                    timeout: policy.timeout,
                    lease: policy.lease,
                });
            }
            kinds.push(Kind { name, handler, policy });
        }
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared { store, clock, kinds, config, wake: wake.clone() });
        let dispatcher = tokio::spawn(dispatch(shared, stop));
        Ok(Runner { wake, dispatcher })
    }

    /// Notify this to make an idle runner look for jobs now.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Resolves when the runner has stopped claiming and every job in flight has finished.
    pub async fn finished(self) {
        if let Err(e) = self.dispatcher.await {
            tracing::error!(error = %e, "the job dispatcher failed");
        }
    }
}

fn lease_end(now: chrono::DateTime<chrono::Utc>, lease: Duration) -> chrono::DateTime<chrono::Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

async fn dispatch(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let workers = shared.config.workers.max(1);
    let mut running: JoinSet<()> = JoinSet::new();
    let mut first_kind = 0usize;
    'claiming: loop {
        while let Some(done) = running.try_join_next() {
            report_panic(done);
        }
        if *stop.borrow() || shared.kinds.is_empty() {
            break;
        }
        if running.len() >= workers {
            tokio::select! {
                done = running.join_next() => if let Some(done) = done { report_panic(done) },
                _ = stop.changed() => break,
            }
            continue;
        }
        // One claim per kind, starting from a different kind each round so none starves.
        let mut claimed = 0;
        let mut failed = false;
        for i in 0..shared.kinds.len() {
            let free = workers.saturating_sub(running.len());
            if free == 0 || *stop.borrow() {
                break;
            }
            let kind = &shared.kinds[(first_kind + i) % shared.kinds.len()];
            let now = shared.clock.now();
            let until = lease_end(now, kind.policy.lease);
            match shared.store.claim_jobs(&[kind.name.to_string()], free, now, until).await {
                Ok(jobs) => {
                    claimed += jobs.len();
                    for job in jobs {
                        running.spawn(execute(shared.clone(), (first_kind + i) % shared.kinds.len(), job));
                    }
                }
                Err(e) => {
                    tracing::warn!(kind = kind.name, error = %e, "claiming jobs failed; trying again shortly");
                    failed = true;
                }
            }
        }
        first_kind = first_kind.wrapping_add(1);
        if claimed > 0 && !failed {
            continue;
        }
        // Idle (or the store is failing): wait for the next poll, a wake-up, a finished job or
        // the stop signal.
        let idle = tokio::time::sleep(shared.config.poll);
        tokio::select! {
            () = idle => {}
            () = shared.wake.notified(), if !failed => {}
            done = running.join_next(), if !running.is_empty() => if let Some(done) = done { report_panic(done) },
            _ = stop.changed() => break 'claiming,
        }
    }
    let in_flight = running.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for running jobs to finish");
    }
    while let Some(done) = running.join_next().await {
        report_panic(done);
    }
}

fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a job task failed");
    }
}

/// Runs one claimed job and records its outcome.
async fn execute(shared: Arc<Shared>, kind: usize, job: Job) {
    let kind = &shared.kinds[kind];
    let timeout = kind.policy.timeout;
    let run = AssertUnwindSafe(kind.handler.run(&job)).catch_unwind();
    let result = match tokio::time::timeout(timeout, run).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(JobFailure::Retry("the handler panicked".into())),
        Err(_) => {
            Err(JobFailure::Retry(format!("the handler did not finish within {} s", timeout.as_secs_f32())))
        }
    };
    let now = shared.clock.now();
    let recorded = match &result {
        Ok(()) => shared.store.complete_job(job.id, job.attempts, now).await,
        Err(failure) => {
            let unit = rand::random::<f64>();
            let next =
                backoff::retry_at(failure, job.attempts, job.max_attempts, now, &shared.config.backoff, unit);
            match next {
                Some(at) => {
                    tracing::info!(job = %job.id, kind = kind.name, attempt = job.attempts, retry_at = %at, error = %failure, "job failed; will retry")
                }
                None => {
                    tracing::warn!(job = %job.id, kind = kind.name, attempt = job.attempts, error = %failure, "job failed for good; it is a dead letter")
                }
            }
            shared.store.fail_job(job.id, job.attempts, failure.reason(), next, now).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job = %job.id,
            kind = kind.name,
            "the job's lease expired before it finished; another claim owns it now"
        ),
        // The lease will expire and the job run again: at least once, never lost.
        Err(e) => {
            tracing::error!(job = %job.id, kind = kind.name, error = %e, "recording the job's outcome failed")
        }
    }
}
