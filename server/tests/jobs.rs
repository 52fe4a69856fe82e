#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The job runner on every backend: retries with backoff, `RetryAfter`, dead letters, timeouts,
//! reclaimed leases, bounded concurrency, graceful shutdown — and the admin API showing and
//! retrying dead jobs. A scripted handler decides each attempt's fate from the job's payload.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tandem_core::store::{Job, JobState};
use tandem_core::{
    ChangeSet, Desk, JobFailure, JobHandler, JobId, Limits, NewJob, Store, TokenScope, WorkspaceId,
};
use tandem_server::jobs::{Backoff, KindPolicy, Registry, Runner, RunnerConfig};
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_tests::TestStore;
use tokio::sync::watch;
use tower::ServiceExt;

const KIND: &str = "test.scripted";

/// Runs each attempt as the job's `script` says, by attempt number: `ok`, `retry`,
/// `retry_after:<ms>`, `fatal`, `hang` (past any timeout), `slow:<ms>` (then ok), `panic`,
/// `flaky` (fatal until the test says otherwise).
#[derive(Debug, Default)]
struct Scripted {
    calls: Mutex<Vec<(JobId, u32)>>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    started: tokio::sync::Notify,
    healthy: AtomicBool,
}

#[async_trait]
impl JobHandler for Scripted {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        self.calls.lock().unwrap().push((job.id, job.attempts));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        self.started.notify_one();
        let script = job.payload["script"].as_array().unwrap();
        let step = script[(job.attempts as usize - 1).min(script.len() - 1)].as_str().unwrap().to_string();
        let outcome = async {
            let (verb, arg) = step.split_once(':').unwrap_or((step.as_str(), "0"));
            let ms = Duration::from_millis(arg.parse().unwrap());
            match verb {
                "ok" => Ok(()),
                "retry" => Err(JobFailure::Retry(format!("attempt {} failed", job.attempts))),
                "retry_after" => Err(JobFailure::RetryAfter(format!("busy at attempt {}", job.attempts), ms)),
                "fatal" => Err(JobFailure::Fatal("410 Gone".into())),
                "flaky" if self.healthy.load(Ordering::SeqCst) => Ok(()),
                "flaky" => Err(JobFailure::Fatal("the receiver refused it".into())),
                "hang" => {
                    std::future::pending::<()>().await;
                    Ok(())
                }
                "slow" => {
                    // Stands for work that takes a while, not for synchronisation.
                    tokio::time::sleep(ms).await;
                    Ok(())
                }
                "panic" => panic!("the handler broke"),
                other => panic!("unknown step {other}"),
            }
        };
        let result = outcome.await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl Scripted {
    fn attempts_of(&self, id: JobId) -> Vec<u32> {
        self.calls.lock().unwrap().iter().filter(|(j, _)| *j == id).map(|(_, a)| *a).collect()
    }
}

struct Setup {
    store: TestStore,
    ws: WorkspaceId,
    handler: Arc<Scripted>,
    stop: watch::Sender<bool>,
}

fn config(workers: usize, lease_ms: u64, timeout_ms: u64) -> RunnerConfig {
    RunnerConfig {
        workers,
        policy: KindPolicy {
            lease: Duration::from_millis(lease_ms),
            timeout: Duration::from_millis(timeout_ms),
        },
        poll: Duration::from_millis(20),
        backoff: Backoff {
            base: Duration::from_millis(10),
            factor: 2,
            cap: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(3600),
        },
    }
}

impl Setup {
    async fn new(store: TestStore) -> Setup {
        let ws = tandem_tests::fixture::workspace(store.as_ref(), "jobs").await.id;
        let (stop, _) = watch::channel(false);
        Setup { store, ws, handler: Arc::new(Scripted::default()), stop }
    }

    async fn enqueue(&self, script: &[&str], max_attempts: u32) -> JobId {
        let id = JobId(uuid::Uuid::now_v7());
        let mut changes = ChangeSet::new(self.ws, tandem_core::ActorRef::System, Utc::now());
        changes.job(NewJob {
            id,
            kind: KIND.into(),
            payload: json!({"script": script}),
            idempotency_key: format!("test:{id}"),
            run_at: Utc::now(),
            max_attempts,
        });
        self.store.commit(changes).await.unwrap();
        id
    }

    fn start(&self, config: RunnerConfig) -> Runner {
        let mut registry = Registry::new();
        registry.register(self.handler.clone());
        Runner::start(self.store.clone(), Arc::new(SystemClock), registry, config, self.stop.subscribe())
            .unwrap()
    }

    async fn job(&self, id: JobId) -> Job {
        self.store.job(id).await.unwrap().unwrap()
    }

    /// Polls the job until `done` holds (or fails after a deadline).
    async fn until(&self, id: JobId, what: &str, done: impl Fn(&Job) -> bool) -> Job {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "waited in vain for {what}: {job:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(&self, runner: Runner) {
        self.stop.send_replace(true);
        runner.finished().await;
    }
}

pub async fn a_failure_is_retried_later_with_backoff(store: TestStore) {
    let s = Setup::new(store).await;
    let id = s.enqueue(&["retry", "ok"], 5).await;
    let slow_backoff = RunnerConfig {
        backoff: Backoff {
            base: Duration::from_secs(3600),
            cap: Duration::from_secs(3600),
            ..Backoff::default()
        },
        ..config(2, 5_000, 1_000)
    };
    let runner = s.start(slow_backoff);
    let job = s.until(id, "the first failure", |j| j.state == JobState::Queued && j.attempts == 1).await;
    s.stop(runner).await;
    assert_eq!(job.last_error.as_deref(), Some("attempt 1 failed"));
    let wait = job.run_at - job.updated_at;
    assert!(wait >= chrono::Duration::zero() && wait <= chrono::Duration::hours(1), "{wait}");
    assert_eq!(s.handler.attempts_of(id), [1], "not run again before its time");
}

pub async fn retry_after_is_respected(store: TestStore) {
    let s = Setup::new(store).await;
    let id = s.enqueue(&["retry_after:1800000"], 5).await;
    let runner = s.start(config(1, 5_000, 1_000));
    let job = s.until(id, "the failure", |j| j.state == JobState::Queued && j.attempts == 1).await;
    s.stop(runner).await;
    assert_eq!(job.run_at - job.updated_at, chrono::Duration::minutes(30));
    assert_eq!(job.last_error.as_deref(), Some("busy at attempt 1"));
}

pub async fn retries_run_until_the_job_succeeds(store: TestStore) {
    let s = Setup::new(store).await;
    let id = s.enqueue(&["retry", "retry_after:30", "panic", "ok"], 5).await;
    let runner = s.start(config(2, 5_000, 1_000));
    let job = s.until(id, "success", |j| j.state == JobState::Done).await;
    s.stop(runner).await;
    assert_eq!(job.attempts, 4);
    assert_eq!(s.handler.attempts_of(id), [1, 2, 3, 4]);
    assert_eq!(job.last_error.as_deref(), Some("the handler panicked"), "the last failure is kept");
}

pub async fn fatal_failures_and_exhausted_attempts_are_dead_letters(store: TestStore) {
    let s = Setup::new(store).await;
    let fatal = s.enqueue(&["fatal", "ok"], 5).await;
    let exhausted = s.enqueue(&["retry"], 3).await;
    let runner = s.start(config(2, 5_000, 1_000));
    let fatal_job = s.until(fatal, "the dead letter", |j| j.state == JobState::Dead).await;
    let exhausted_job = s.until(exhausted, "the dead letter", |j| j.state == JobState::Dead).await;
    s.stop(runner).await;
    assert_eq!((fatal_job.attempts, fatal_job.last_error.as_deref()), (1, Some("410 Gone")));
    assert_eq!(s.handler.attempts_of(fatal), [1]);
    assert_eq!((exhausted_job.attempts, exhausted_job.last_error.as_deref()), (3, Some("attempt 3 failed")));
    assert_eq!(s.handler.attempts_of(exhausted), [1, 2, 3]);
}

pub async fn a_handler_past_its_timeout_fails_before_its_lease_ends(store: TestStore) {
    let s = Setup::new(store).await;
    let id = s.enqueue(&["hang", "ok"], 5).await;
    let runner = s.start(config(1, 10_000, 200));
    let job = s.until(id, "success", |j| j.state == JobState::Done).await;
    s.stop(runner).await;
    assert_eq!(job.attempts, 2);
    assert_eq!(job.last_error.as_deref(), Some("the handler did not finish within 0.2 s"));
}

/// A worker that claimed a job and died: once the lease expires, a runner reclaims the job, and
/// the dead worker's claim can no longer record anything.
pub async fn an_expired_lease_is_reclaimed(store: TestStore) {
    let s = Setup::new(store).await;
    let id = s.enqueue(&["ok"], 5).await;
    let now = Utc::now();
    let crashed =
        s.store.claim_jobs(&[KIND.into()], 1, now, now + chrono::Duration::milliseconds(400)).await.unwrap();
    assert_eq!(crashed.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    let runner = s.start(config(1, 5_000, 1_000));
    let job = s.until(id, "the reclaimed job to finish", |j| j.state == JobState::Done).await;
    s.stop(runner).await;
    assert_eq!(job.attempts, 2);
    assert_eq!(s.handler.attempts_of(id), [2]);
    assert!(!s.store.complete_job(id, 1, Utc::now()).await.unwrap(), "the crashed claim is void");
}

pub async fn workers_bound_how_many_jobs_run_at_once(store: TestStore) {
    let s = Setup::new(store).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(s.enqueue(&["slow:100"], 5).await);
    }
    let runner = s.start(config(3, 5_000, 1_000));
    for id in &ids {
        s.until(*id, "every job to finish", |j| j.state == JobState::Done).await;
    }
    s.stop(runner).await;
    let most = s.handler.most_at_once.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "{most} jobs ran at once with 3 workers");
}

/// Stopping: nothing new is claimed, the job in flight finishes and is recorded, then the runner
/// returns (so the server can close the store after it).
pub async fn shutdown_lets_jobs_in_flight_finish(store: TestStore) {
    let s = Setup::new(store).await;
    let slow = s.enqueue(&["slow:600"], 5).await;
    let runner = s.start(config(1, 5_000, 2_000));
    s.handler.started.notified().await;
    let waiting = s.enqueue(&["ok"], 5).await;
    s.stop.send_replace(true);
    runner.finished().await;
    assert_eq!(s.job(slow).await.state, JobState::Done, "the job in flight was finished and recorded");
    let untouched = s.job(waiting).await;
    assert_eq!(
        (untouched.state, untouched.attempts),
        (JobState::Queued, 0),
        "nothing claimed after the stop"
    );
}

async fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(format!("/api/v1{path}"));
    req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

/// Operators see dead letters with their last error through the API and put them back in the
/// queue; the runner then runs them again.
pub async fn the_admin_api_shows_and_retries_dead_jobs(store: TestStore) {
    const ADMIN: &str = "tdm_jobs_test_admin_token";
    let desk = Desk::new(store.clone(), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let app = router(AppState::new(desk, AdminToken::from_secret(ADMIN)));
    let (status, ws) = call(&app, Method::POST, "/workspaces", ADMIN, Some(json!({"name": "Ops"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{ws}");
    let ws = WorkspaceId(ws["id"].as_str().unwrap().parse().unwrap());
    let (_, agent) = call(
        &app,
        Method::POST,
        "/users",
        ADMIN,
        Some(json!({"name": "Ana", "email": "ana@ops.example", "role": "agent"})),
    )
    .await;
    let path = format!("/users/{}/tokens", agent["id"].as_str().unwrap());
    let (_, issued) =
        call(&app, Method::POST, &path, ADMIN, Some(json!({"name": "t", "scope": TokenScope::Write}))).await;
    let agent_token = issued["secret"].as_str().unwrap().to_string();

    let (stop, _) = watch::channel(false);
    let s = Setup { store: store.clone(), ws, handler: Arc::new(Scripted::default()), stop };
    let id = s.enqueue(&["flaky"], 5).await;
    let runner = s.start(config(1, 5_000, 1_000));
    s.until(id, "the dead letter", |j| j.state == JobState::Dead).await;

    let (status, dead) = call(&app, Method::GET, "/jobs?state=dead", ADMIN, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&Value> = dead.as_array().unwrap().iter().filter(|j| j["id"] == json!(id)).collect();
    assert_eq!(listed.len(), 1, "{dead}");
    assert_eq!(listed[0]["last_error"], "the receiver refused it");
    assert_eq!(listed[0]["kind"], KIND);
    let (status, _) = call(&app, Method::GET, "/jobs?state=buried", ADMIN, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let retry = format!("/jobs/{id}/retry");
    let (status, _) = call(&app, Method::POST, &retry, &agent_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "agents do not retry jobs");
    s.handler.healthy.store(true, Ordering::SeqCst);
    let (status, retried) = call(&app, Method::POST, &retry, ADMIN, None).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!((retried["state"].as_str(), retried["attempts"].as_u64()), (Some("queued"), Some(0)));
    runner.waker().notify_one();
    let done = s.until(id, "the retried job", |j| j.state == JobState::Done).await;
    assert_eq!(done.attempts, 1);
    let (status, again) = call(&app, Method::POST, &retry, ADMIN, None).await;
    assert_eq!(status, StatusCode::OK, "done jobs can be run again too: {again}");
    let unknown = format!("/jobs/{}/retry", uuid::Uuid::now_v7());
    assert_eq!(call(&app, Method::POST, &unknown, ADMIN, None).await.0, StatusCode::NOT_FOUND);
    s.stop(runner).await;
}

/// One `#[tokio::test]` per case, per backend.
macro_rules! runner_suite {
    ($backend:ident) => {
        mod $backend {
            runner_suite!(@cases $backend;
                a_failure_is_retried_later_with_backoff,
                retry_after_is_respected,
                retries_run_until_the_job_succeeds,
                fatal_failures_and_exhausted_attempts_are_dead_letters,
                a_handler_past_its_timeout_fails_before_its_lease_ends,
                an_expired_lease_is_reclaimed,
                workers_bound_how_many_jobs_run_at_once,
                shutdown_lets_jobs_in_flight_finish,
                the_admin_api_shows_and_retries_dead_jobs,
            );
        }
    };
    (@cases $backend:ident; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some(harness) = tandem_tests::backends::$backend().await else { return };
            super::$case(harness.store.clone()).await;
        }
    )*};
}

runner_suite!(sqlite);
runner_suite!(postgres);

#[test]
fn a_timeout_as_long_as_the_lease_is_refused() {
    let (_, stop) = watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            tandem_storage_sqlite::SqliteStore::open(dir.path().join("t.db"), Default::default()).unwrap(),
        );
        let mut registry = Registry::new();
        registry.register(Arc::new(Scripted::default()));
        let err =
            Runner::start(store, Arc::new(SystemClock), registry, config(1, 1_000, 1_000), stop).unwrap_err();
        assert!(err.to_string().contains("shorter than the lease"), "{err}");
    });
}
