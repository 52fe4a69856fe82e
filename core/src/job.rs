//! What runs a job. Each kind of side effect (a webhook delivery, later mail and plugin actions)
//! has a [`JobHandler`], owned by the adapter crate that knows how to perform it; the server's
//! runner claims due jobs with a lease, calls the handler, and records the outcome with the
//! store. A handler reports failure as a [`JobFailure`], which decides whether and when the job
//! is tried again.
//!
//! Jobs run at least once: a worker that dies after the side effect but before recording it
//! leaves the job to be reclaimed when its lease expires. Handlers make the effect happen once
//! by passing the job's idempotency key to whoever performs it.

use std::time::Duration;

use async_trait::async_trait;

use crate::store::Job;

#[async_trait]
pub trait JobHandler: Send + Sync + std::fmt::Debug {
    /// The job kind this handler runs (`webhook.deliver`).
    fn kind(&self) -> &'static str;

    /// Performs the job's side effect. `Ok` completes the job; an error is recorded as the job's
    /// last error and retried (or not) as it says.
    async fn run(&self, job: &Job) -> Result<(), JobFailure>;
}

/// Why a job attempt failed, and what that means for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    /// A transient failure (a timeout, a 503): try again after the usual backoff.
    Retry(String),
    /// The other side asked to wait (a 429 with `Retry-After`): try again no sooner than this.
    RetryAfter(String, Duration),
    /// Trying again cannot help (a 410, a malformed payload): the job is dead at once.
    Fatal(String),
}

impl JobFailure {
    pub fn reason(&self) -> &str {
        match self {
            JobFailure::Retry(r) | JobFailure::RetryAfter(r, _) | JobFailure::Fatal(r) => r,
        }
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for JobFailure {}
