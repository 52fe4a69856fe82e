//! The flow engine: runs flows' steps as jobs, polls plugin triggers and takes incoming
//! webhooks. Every decision (what a step did, what a poll saw, pausing a flow) is a `Desk`
//! command; this module does the I/O in between.
//!
//! ```text
//! events ─► RelayFlowEvents ─┐                          (one commit: runs + flow.run jobs + cursor)
//! ScheduleFlowPolls ─► flow.poll ─► PluginRuntime::poll ─► RecordPoll   (cursor + seen ids + runs: one commit)
//! POST /hooks/in/{token} ─► IncomingHooks::receive ─► TriggerFlow / CreateItem / UpdateItem
//! flow.run ─► FlowRunner: for each step from the first not done:
//!               render templates ─► plugin action | create item | add message | update field | signed POST
//!               ─► RecordFlowStep (input, output or classified error; retry / fail / pause)
//! ```
//!
//! A retryable failure leaves the run waiting and the job retried with the runner's backoff
//! (or the plugin's `retry after`); the next attempt resumes at the failed step.
//!
//! Built-in steps (create item, add message, update field) happen exactly once: the step's
//! command and its `RecordFlowStep` are decided together and committed as ONE change set
//! (`Desk::execute_then`), so a worker dying at any point either wrote both or neither, and a
//! retry of the same attempt starts after the recorded step. Plugin actions and the signed
//! webhook step act on other systems and cannot be part of a commit: they run at least once (a
//! worker dying between the call and its record repeats it), and carry the idempotency key
//! `flow:{run}:{step}` (the plugin call's key; the webhook's `Tandem-Delivery` header), the
//! same on every attempt, for the receiver to deduplicate on.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_core::commands::{
    CreateItem, ItemPatch, PostMessage, Posted, RecordFlowStep, RecordPoll, RelayFlowEvents,
    ScheduleFlowPolls, SeenItem, TriggerFlow, UpdateItem,
};
use tandem_core::flows::{
    ErrorClass, FLOW_POLL_JOB, FLOW_RUN_JOB, Flow, FlowPollState, FlowRun, FlowStep, FlowTrigger,
    HookEndpoint, HookTarget, RunStatus, StepError, StepRecord, context, fill_item_numbers, render,
};
use tandem_core::store::{self, Job};
use tandem_core::{
    Actor, Body, Command, Desk, DeskError, FlowId, FlowRunId, Item, ItemRef, JobFailure, JobHandler,
    Priority, StoreError, ThenError,
};

use crate::egress::{Egress, refusal};
use crate::plugin_runtime::{IncomingRequest, PluginCall, PluginFailure, PluginRuntime};
use crate::webhooks::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign, verify};

/// How much of a webhook step's response is kept as its output.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How old an incoming webhook's signature may be.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// What runs flows: the `Desk` (as Tandem itself), the plugins and an egress-gated HTTP client.
#[derive(Debug, Clone)]
pub struct FlowEngine {
    desk: Desk,
    plugins: Option<Arc<dyn PluginRuntime>>,
    client: reqwest::Client,
    egress: Egress,
}

impl FlowEngine {
    /// `plugins` is `None` on a server without a plugin host: plugin steps then fail as
    /// unavailable.
    pub fn new(
        desk: Desk,
        plugins: Option<Arc<dyn PluginRuntime>>,
        egress: Egress,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("Tandem-Flows/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(egress.resolver())
            .build()?;
        Ok(Self { desk, plugins, client, egress })
    }

    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    pub fn plugins(&self) -> Option<&Arc<dyn PluginRuntime>> {
        self.plugins.as_ref()
    }

    /// The `flow.run` and `flow.poll` handlers.
    pub fn handlers(self: &Arc<Self>) -> [Arc<dyn JobHandler>; 2] {
        [Arc::new(FlowRunner(self.clone())), Arc::new(FlowPoller(self.clone()))]
    }
}

fn failure_class(f: &PluginFailure) -> (ErrorClass, Option<Duration>) {
    match f {
        PluginFailure::Retryable { .. } => (ErrorClass::Retryable, None),
        PluginFailure::RateLimited { retry_after_ms, .. } => {
            (ErrorClass::RateLimited, Some(Duration::from_millis(*retry_after_ms)))
        }
        PluginFailure::Auth { .. } => (ErrorClass::Auth, None),
        PluginFailure::InvalidInput { .. } => (ErrorClass::InvalidInput, None),
        PluginFailure::Fatal { .. } => (ErrorClass::Fatal, None),
        PluginFailure::Unavailable { .. } => (ErrorClass::Unavailable, None),
    }
}

/// A plugin failure as a step error (and the wait it asked for).
pub fn step_error(f: &PluginFailure) -> (StepError, Option<Duration>) {
    let (class, wait) = failure_class(f);
    let message = match f {
        PluginFailure::Retryable { message }
        | PluginFailure::RateLimited { message, .. }
        | PluginFailure::Auth { message }
        | PluginFailure::InvalidInput { message }
        | PluginFailure::Fatal { message }
        | PluginFailure::Unavailable { message } => message.clone(),
    };
    (StepError { class, message }, wait)
}

fn err(class: ErrorClass, message: impl Into<String>) -> StepError {
    StepError { class, message: message.into() }
}

/// A `Desk` refusal as a step error: bad input stays bad, storage trouble is worth retrying.
fn desk_error(e: DeskError) -> StepError {
    match e {
        DeskError::Invalid(_) | DeskError::TooLarge { .. } => err(ErrorClass::InvalidInput, e.to_string()),
        DeskError::NotFound(_) | DeskError::Forbidden(_) => err(ErrorClass::Fatal, e.to_string()),
        DeskError::Conflict(_) | DeskError::Store(_) | DeskError::RateLimited(_) => {
            err(ErrorClass::Retryable, e.to_string())
        }
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn item_ref(v: Option<&Value>) -> Result<ItemRef, StepError> {
    let raw = text(v);
    raw.parse::<ItemRef>().map_err(|e| err(ErrorClass::InvalidInput, format!("item: {}", e.reason)))
}

fn item_output(item: &tandem_core::Item) -> Value {
    json!({"id": item.id, "number": item.number, "title": item.title, "status": item.status})
}

/// Sets one named field (`title`, `description`, `priority`, `custom.<key>`) on a patch.
fn patch_field(patch: &mut ItemPatch, field: &str, value: Value) -> Result<(), StepError> {
    match field {
        "title" => patch.title = Some(text(Some(&value))),
        "description" => patch.description = Some(text(Some(&value))),
        "priority" => {
            let p: Priority = serde_json::from_value(value.clone()).map_err(|_| {
                err(ErrorClass::InvalidInput, format!("priority: '{}' is not a priority", text(Some(&value))))
            })?;
            patch.priority = Some(p);
        }
        other => match other.strip_prefix("custom.") {
            Some(key) if !key.is_empty() => {
                patch.custom.insert(key.to_string(), value);
            }
            _ => {
                return Err(err(
                    ErrorClass::InvalidInput,
                    format!("'{other}' is not a field a flow can set"),
                ));
            }
        },
    }
    Ok(())
}

fn create_command(item_type: tandem_core::ItemTypeId, input: &Value) -> CreateItem {
    let mut cmd = CreateItem::new(item_type, text(input.get("title")));
    cmd.description = text(input.get("description"));
    if let Some(Value::Object(custom)) = input.get("custom") {
        cmd.custom = custom.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    cmd
}

fn update_command(item: ItemRef, fields: &[(String, Value)]) -> Result<UpdateItem, StepError> {
    let mut patch = ItemPatch::default();
    for (field, value) in fields {
        patch_field(&mut patch, field, value.clone())?;
    }
    Ok(UpdateItem { item, patch })
}

/// A step that is a Tandem command: its write and its step record are one commit.
enum Builtin {
    Create(CreateItem),
    Post(PostMessage),
    Update(UpdateItem),
}

/// The command a built-in step runs with its rendered input; `None` for steps that call out.
fn builtin(step: &FlowStep, input: &Value) -> Option<Result<Builtin, StepError>> {
    match step {
        FlowStep::CreateItem { item_type, .. } => {
            Some(Ok(Builtin::Create(create_command(*item_type, input))))
        }
        FlowStep::AddMessage { visibility, .. } => Some(item_ref(input.get("item")).map(|item| {
            Builtin::Post(PostMessage::new(item, *visibility, Body::Text(text(input.get("body")))))
        })),
        FlowStep::UpdateField { .. } => Some(item_ref(input.get("item")).and_then(|item| {
            let value = input.get("value").cloned().unwrap_or(Value::Null);
            update_command(item, &[(text(input.get("field")), value)]).map(Builtin::Update)
        })),
        FlowStep::PluginAction { .. } | FlowStep::Webhook { .. } => None,
    }
}

fn posted_output(posted: &Posted) -> Value {
    json!({"message": posted.message.id, "item": posted.item.number})
}

/// A new item's output as recorded with it: its number is given by the commit itself, so it
/// is recorded as `null` and filled in from the item when read (`fill_item_numbers`).
fn new_item_output(item: &Item) -> Value {
    let mut out = item_output(item);
    if item.number == 0 {
        out["number"] = Value::Null;
    }
    out
}

#[derive(Debug, Deserialize)]
struct RunPayload {
    run: FlowRunId,
    attempt: u32,
}

#[derive(Debug, Deserialize)]
struct PollPayload {
    flow: FlowId,
}

/// A step's outcome: output or error, the wait a rate limit asked for, and log lines.
struct Done {
    result: Result<Value, StepError>,
    wait: Option<Duration>,
    log: Vec<String>,
}

impl FlowEngine {
    /// Runs one attempt of a run: every step from the first not yet done, recording each.
    pub async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let p: RunPayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::Fatal(format!("malformed flow.run payload: {e}")))?;
        let ws = job.workspace_id;
        let system = Actor::system(ws);
        let store = self.desk.store().as_ref();
        let read = |e: StoreError| JobFailure::Retry(format!("cannot read the run: {e}"));
        let Some(mut run) = store::get::<FlowRun>(store, ws, p.run.0).await.map_err(read)? else {
            return Ok(());
        };
        if run.attempt != p.attempt || matches!(run.status, RunStatus::Succeeded | RunStatus::Failed) {
            return Ok(());
        }
        let flow = store::get::<Flow>(store, ws, run.flow.0).await.map_err(read)?;
        let final_attempt = job.attempts >= job.max_attempts;
        let Some(flow) = flow.filter(|f| f.enabled) else {
            let step = StepRecord {
                index: run.next_step(),
                kind: "cancelled".into(),
                input: Value::Null,
                output: None,
                error: Some(err(
                    ErrorClass::Unavailable,
                    "the flow was paused or deleted before this run finished",
                )),
                attempts: 1,
                log: Vec::new(),
                at: self.desk.now(),
            };
            let cmd = RecordFlowStep {
                run: run.id,
                attempt: run.attempt,
                step,
                final_attempt: true,
                counts: false,
            };
            return self.record(&system, &cmd).await.map(|_| ());
        };
        // What the commit of a create_item step could not know yet.
        fill_item_numbers(store, ws, &mut run).await.map_err(read)?;
        for i in run.next_step()..flow.steps.len() {
            let step = &flow.steps[i];
            let ctx = context(&run.trigger, &run.steps[..i.min(run.steps.len())]);
            let input = render(&step.input_template(), &ctx);
            let attempts = run.steps.get(i).map_or(0, |s| s.attempts) + 1;
            let (run_id, run_attempt) = (run.id, run.attempt);
            let recorder = |result: Result<Value, StepError>, log: Vec<String>| {
                let (output, error) = match result {
                    Ok(v) => (Some(v), None),
                    Err(e) => (None, Some(e)),
                };
                RecordFlowStep {
                    run: run_id,
                    attempt: run_attempt,
                    step: StepRecord {
                        index: i,
                        kind: step.name().into(),
                        input: input.clone(),
                        output,
                        error,
                        attempts,
                        log,
                        at: self.desk.now(),
                    },
                    final_attempt,
                    counts: true,
                }
            };
            let (next, wait) = match builtin(step, &input) {
                Some(Ok(command)) => (self.write_and_record(&system, command, &recorder).await?, None),
                Some(Err(e)) => (self.record(&system, &recorder(Err(e), Vec::new())).await?, None),
                None => {
                    let done = self.perform(job, &run, i, step, &input, &ctx).await;
                    (self.record(&system, &recorder(done.result, done.log)).await?, done.wait)
                }
            };
            let Some(next) = next else { return Ok(()) };
            run = next;
            match run.status {
                RunStatus::Running => continue,
                RunStatus::Succeeded | RunStatus::Failed => return Ok(()),
                RunStatus::WaitingRetry => {
                    let why = run.error.clone().unwrap_or_else(|| format!("step {i} failed"));
                    return Err(match wait {
                        Some(wait) => JobFailure::RetryAfter(why, wait),
                        None => JobFailure::Retry(why),
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs a built-in step's command and records the step in one commit. When the command
    /// refuses, the refusal is recorded instead (nothing else was written).
    async fn write_and_record<R>(
        &self,
        system: &Actor,
        command: Builtin,
        recorder: &R,
    ) -> Result<Option<FlowRun>, JobFailure>
    where
        R: Fn(Result<Value, StepError>, Vec<String>) -> RecordFlowStep + Send + Sync,
    {
        match command {
            Builtin::Create(c) => {
                self.together(system, &c, recorder, new_item_output, |item, run| {
                    // The number the commit gave, for the steps of this attempt.
                    if let Some(out) = run.steps.last_mut().and_then(|s| s.output.as_mut())
                        && out.get("id") == Some(&json!(item.id))
                    {
                        out["number"] = json!(item.number);
                    }
                })
                .await
            }
            Builtin::Post(c) => self.together(system, &c, recorder, posted_output, |_, _| {}).await,
            Builtin::Update(c) => self.together(system, &c, recorder, item_output, |_, _| {}).await,
        }
    }

    async fn together<C, R, O, F>(
        &self,
        system: &Actor,
        command: &C,
        recorder: &R,
        output: O,
        finish: F,
    ) -> Result<Option<FlowRun>, JobFailure>
    where
        C: Command,
        R: Fn(Result<Value, StepError>, Vec<String>) -> RecordFlowStep + Send + Sync,
        O: Fn(&C::Output) -> Value + Send + Sync,
        F: FnOnce(&C::Output, &mut FlowRun),
    {
        let done =
            self.desk.execute_then(system, command, |out| Ok(recorder(Ok(output(out)), Vec::new()))).await;
        match done {
            Ok((out, mut run)) => {
                finish(&out, &mut run);
                Ok(Some(run))
            }
            Err(ThenError::First(e)) => self.record(system, &recorder(Err(desk_error(e)), Vec::new())).await,
            Err(ThenError::Second(e)) => Self::record_refused(&recorder(Ok(Value::Null), Vec::new()), e),
            // Nothing was written: the job's next attempt does the step again.
            Err(ThenError::Commit(e)) => {
                Err(JobFailure::Retry(format!("committing a flow step failed: {e}")))
            }
        }
    }

    /// Records a step; `None` when the run moved on without us (a replay, another worker).
    async fn record(&self, system: &Actor, cmd: &RecordFlowStep) -> Result<Option<FlowRun>, JobFailure> {
        match self.desk.execute(system, cmd).await {
            Ok(run) => Ok(Some(run)),
            Err(e) => Self::record_refused(cmd, e),
        }
    }

    fn record_refused(cmd: &RecordFlowStep, e: DeskError) -> Result<Option<FlowRun>, JobFailure> {
        match e {
            DeskError::Conflict(why) => {
                tracing::info!(run = %cmd.run, %why, "the run moved on; this attempt stops");
                Ok(None)
            }
            e @ (DeskError::NotFound(_) | DeskError::Invalid(_)) => Err(JobFailure::Fatal(e.to_string())),
            e => Err(JobFailure::Retry(format!("recording step {} failed: {e}", cmd.step.index))),
        }
    }

    async fn perform(
        &self,
        job: &Job,
        run: &FlowRun,
        i: usize,
        step: &FlowStep,
        input: &Value,
        ctx: &Value,
    ) -> Done {
        let plain = |result| Done { result, wait: None, log: Vec::new() };
        match step {
            FlowStep::PluginAction { plugin, action, .. } => {
                let Some(plugins) = &self.plugins else {
                    return plain(Err(err(ErrorClass::Unavailable, "this server runs no plugin host")));
                };
                let call = PluginCall {
                    workspace: job.workspace_id,
                    plugin: plugin.clone(),
                    run_id: run.id.to_string(),
                    attempt: job.attempts,
                    idempotency_key: format!("flow:{}:{i}", run.id),
                };
                let outcome = plugins.run_action(&call, action, input).await;
                match outcome.result {
                    Ok(v) => Done { result: Ok(v), wait: None, log: outcome.log },
                    Err(f) => {
                        let (e, wait) = step_error(&f);
                        Done { result: Err(e), wait, log: outcome.log }
                    }
                }
            }
            FlowStep::CreateItem { .. } | FlowStep::AddMessage { .. } | FlowStep::UpdateField { .. } => {
                // Never called for these: `run` commits them with their record.
                plain(Err(err(ErrorClass::Fatal, "a built-in step runs as a command of its own")))
            }
            FlowStep::Webhook { url, secret, .. } => {
                let url = text(Some(&render(&Value::String(url.clone()), ctx)));
                plain(self.post(&url, secret, &format!("flow:{}:{i}", run.id), input).await)
            }
        }
    }

    /// A signed POST, as outgoing webhooks are signed.
    async fn post(&self, raw_url: &str, secret: &str, key: &str, body: &Value) -> Result<Value, StepError> {
        let url = reqwest::Url::parse(raw_url)
            .map_err(|e| err(ErrorClass::InvalidInput, format!("'{raw_url}' is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(ErrorClass::InvalidInput, format!("'{raw_url}' is not an http or https URL")));
        }
        let to = tandem_core::webhook::origin(raw_url);
        self.egress.check_url(&url).map_err(|r| err(ErrorClass::Fatal, format!("{to}: {r}")))?;
        let body = body.to_string();
        let signature = sign(secret, Utc::now().timestamp(), body.as_bytes());
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, key)
            .header(EVENT_HEADER, "flow.step")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|e| match refusal(&e) {
            Some(r) => err(ErrorClass::Fatal, format!("{to}: {r}")),
            None if e.is_timeout() => err(ErrorClass::Retryable, format!("{to} did not answer in time")),
            None => err(ErrorClass::Retryable, format!("sending to {to} failed: {e}")),
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        let mut response = response;
        while bytes.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(c)) => bytes.extend_from_slice(&c),
                _ => break,
            }
        }
        bytes.truncate(MAX_RESPONSE_BYTES);
        let answer = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).chars().take(2000).collect()));
        let what = format!("HTTP {status} from {to}");
        match status {
            200..=299 => Ok(json!({"status": status, "body": answer})),
            401 | 403 => Err(err(ErrorClass::Auth, what)),
            429 if retry_after.is_some() => Err(err(ErrorClass::RateLimited, what)),
            408 | 429 | 500..=599 => Err(err(ErrorClass::Retryable, what)),
            _ => Err(err(ErrorClass::Fatal, what)),
        }
    }

    /// Polls one poll flow and records what it saw (one commit).
    pub async fn poll(&self, job: &Job) -> Result<(), JobFailure> {
        let p: PollPayload = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::Fatal(format!("malformed flow.poll payload: {e}")))?;
        let ws = job.workspace_id;
        let store = self.desk.store().as_ref();
        let read = |e: StoreError| JobFailure::Retry(format!("cannot read the flow: {e}"));
        let Some(flow) = store::get::<Flow>(store, ws, p.flow.0).await.map_err(read)? else { return Ok(()) };
        let Some(state) = store::get::<FlowPollState>(store, ws, p.flow.0).await.map_err(read)? else {
            return Ok(());
        };
        let FlowTrigger::PluginPoll { plugin, trigger, .. } = &flow.trigger else { return Ok(()) };
        if !flow.enabled {
            return Ok(());
        }
        let outcome = match &self.plugins {
            None => Err(err(ErrorClass::Unavailable, "this server runs no plugin host")),
            Some(plugins) => {
                let call = PluginCall {
                    workspace: ws,
                    plugin: plugin.clone(),
                    run_id: format!("poll:{}", job.id),
                    attempt: job.attempts,
                    idempotency_key: job.idempotency_key.clone(),
                };
                let polled = plugins.poll(&call, trigger, state.cursor.as_deref()).await;
                match polled.result {
                    Ok(r) => Ok((
                        r.items.into_iter().map(|i| SeenItem { id: i.id, data: i.data }).collect(),
                        r.cursor,
                    )),
                    Err(f) => Err(step_error(&f).0),
                }
            }
        };
        let cmd = RecordPoll { flow: flow.id, outcome };
        match self.desk.execute(&Actor::system(ws), &cmd).await {
            Ok(_) => Ok(()),
            Err(e @ (DeskError::NotFound(_) | DeskError::Invalid(_))) => {
                Err(JobFailure::Fatal(e.to_string()))
            }
            Err(e) => Err(JobFailure::Retry(format!("recording the poll failed: {e}"))),
        }
    }
}

/// The `flow.run` job handler.
#[derive(Debug, Clone)]
pub struct FlowRunner(pub Arc<FlowEngine>);

#[async_trait]
impl JobHandler for FlowRunner {
    fn kind(&self) -> &'static str {
        FLOW_RUN_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        self.0.run(job).await
    }
}

/// The `flow.poll` job handler.
#[derive(Debug, Clone)]
pub struct FlowPoller(pub Arc<FlowEngine>);

#[async_trait]
impl JobHandler for FlowPoller {
    fn kind(&self) -> &'static str {
        FLOW_POLL_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        self.0.poll(job).await
    }
}

/// One pass of the flow scheduler over every workspace: start event-triggered runs from the
/// event log and enqueue due polls. Returns how many runs and polls were enqueued.
pub async fn schedule(desk: &Desk, batch: usize) -> Result<usize, DeskError> {
    let mut enqueued = 0;
    for ws in desk.store().workspaces().await? {
        let system = Actor::system(ws.id);
        loop {
            match desk.execute(&system, &RelayFlowEvents { batch }).await {
                Ok(done) => {
                    enqueued += done.runs;
                    if !done.more {
                        break;
                    }
                }
                Err(DeskError::Conflict(_)) => break,
                Err(e) => {
                    tracing::warn!(workspace = %ws.id, error = %e, "starting flows from events failed; trying again later");
                    break;
                }
            }
        }
        match desk.execute(&system, &ScheduleFlowPolls).await {
            Ok(n) => enqueued += n,
            Err(DeskError::Conflict(_)) => {}
            Err(e) => tracing::warn!(workspace = %ws.id, error = %e, "scheduling flow polls failed"),
        }
    }
    Ok(enqueued)
}

/// Why an incoming webhook request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// Unknown endpoint or wrong token: the same answer either way.
    #[error("no such incoming webhook")]
    NotFound,
    #[error("signature refused: {0}")]
    BadSignature(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    /// The flow is paused.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<DeskError> for HookError {
    fn from(e: DeskError) -> Self {
        match e {
            DeskError::NotFound(what) => HookError::Unprocessable(format!("{what} not found")),
            DeskError::Invalid(i) => HookError::Unprocessable(i.to_string()),
            DeskError::Conflict(c) => HookError::Conflict(c),
            other => HookError::Unavailable(other.to_string()),
        }
    }
}

/// What an incoming webhook did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HookOutcome {
    ItemCreated {
        item: Value,
    },
    ItemUpdated {
        item: Value,
    },
    /// `duplicates`: delivery ids seen before, which started nothing (the request is still
    /// accepted, so a sender retrying a delivery that did arrive stops retrying).
    FlowStarted {
        runs: Vec<FlowRunId>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        duplicates: Vec<String>,
    },
}

/// Headers a sender names a delivery by, the first present wins: Tandem's own, then the common
/// `Idempotency-Key` and `X-Request-Id`.
pub const DELIVERY_ID_HEADERS: [&str; 3] = [DELIVERY_HEADER, "idempotency-key", "x-request-id"];
/// The longest delivery id kept.
pub const MAX_DELIVERY_ID_CHARS: usize = 200;

/// The sender's id of a delivery, if it gave one.
fn delivery_id(headers: &[(String, String)]) -> Result<Option<String>, HookError> {
    for name in DELIVERY_ID_HEADERS {
        let Some((_, value)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) else { continue };
        let id = value.trim();
        if id.is_empty() {
            continue;
        }
        if id.chars().count() > MAX_DELIVERY_ID_CHARS {
            return Err(HookError::BadRequest(format!(
                "the {name} header is longer than {MAX_DELIVERY_ID_CHARS} characters"
            )));
        }
        return Ok(Some(id.to_string()));
    }
    Ok(None)
}

impl FlowEngine {
    /// Handles `POST /api/v1/hooks/in/{token}`: authenticate by token (and signature when the
    /// endpoint has a signing secret), then create or update an item per the mapping, or feed
    /// the flow. Nothing is written unless the request is accepted.
    pub async fn receive(&self, token: &str, request: IncomingRequest) -> Result<HookOutcome, HookError> {
        let hook: HookEndpoint = self.desk.hook_endpoint_by_token(token).await.map_err(|e| match e {
            DeskError::NotFound(_) => HookError::NotFound,
            other => HookError::Unavailable(other.to_string()),
        })?;
        if let Some(secret) = &hook.signing_secret {
            let header = request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(SIGNATURE_HEADER))
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| {
                    HookError::BadSignature(format!("the {SIGNATURE_HEADER} header is missing"))
                })?;
            verify(secret, header, &request.body, Utc::now(), SIGNATURE_TOLERANCE).map_err(|e| {
                HookError::BadSignature(match e {
                    crate::webhooks::SignatureError::Malformed => {
                        "malformed; expected t=<unix>,v1=<hex>".into()
                    }
                    crate::webhooks::SignatureError::Mismatch => "it does not match the body".into(),
                    crate::webhooks::SignatureError::Stale { age_secs } => {
                        format!(
                            "signed {age_secs} s ago; at most {} s are accepted",
                            SIGNATURE_TOLERANCE.as_secs()
                        )
                    }
                })
            })?;
        }
        let system = Actor::system(hook.workspace_id);
        let json_body = || -> Result<Value, HookError> {
            serde_json::from_slice(&request.body)
                .map_err(|e| HookError::BadRequest(format!("the body is not JSON: {e}")))
        };
        match &hook.target {
            HookTarget::CreateItem { item_type, title, description, custom } => {
                let ctx = json!({"trigger": json_body()?});
                let input =
                    render(&json!({"title": title, "description": description, "custom": custom}), &ctx);
                let item = self
                    .desk
                    .execute(&system, &create_command(*item_type, &input))
                    .await
                    .map_err(|e| HookError::Unprocessable(e.to_string()))?;
                Ok(HookOutcome::ItemCreated { item: item_output(&item) })
            }
            HookTarget::UpdateItem { item, fields } => {
                let ctx = json!({"trigger": json_body()?});
                let target = item_ref(Some(&render(&Value::String(item.clone()), &ctx)))
                    .map_err(|e| HookError::Unprocessable(e.message))?;
                let fields: Vec<(String, Value)> =
                    fields.iter().map(|(k, v)| (k.clone(), render(v, &ctx))).collect();
                let command =
                    update_command(target, &fields).map_err(|e| HookError::Unprocessable(e.message))?;
                let item = self
                    .desk
                    .execute(&system, &command)
                    .await
                    .map_err(|e| HookError::Unprocessable(e.to_string()))?;
                Ok(HookOutcome::ItemUpdated { item: item_output(&item) })
            }
            HookTarget::Flow { flow } => {
                let f = store::get::<Flow>(self.desk.store().as_ref(), hook.workspace_id, flow.0)
                    .await
                    .map_err(|e| HookError::Unavailable(e.to_string()))?
                    .ok_or_else(|| HookError::Unprocessable(format!("the endpoint's flow {flow} is gone")))?;
                let (items, remember_ids) = match &f.trigger {
                    FlowTrigger::IncomingWebhook => {
                        let data = json_body()?;
                        match delivery_id(&request.headers)? {
                            Some(id) => (vec![SeenItem { id, data }], true),
                            // Nothing to recognise a repeat by: every request is a new delivery.
                            None => (vec![SeenItem { id: self.desk.new_id().to_string(), data }], false),
                        }
                    }
                    FlowTrigger::PluginWebhook { plugin, trigger } => {
                        let plugins = self.plugins.as_ref().ok_or_else(|| {
                            HookError::Unavailable("this server runs no plugin host".into())
                        })?;
                        let call = PluginCall {
                            workspace: hook.workspace_id,
                            plugin: plugin.clone(),
                            run_id: format!("hook:{}", hook.id),
                            attempt: 1,
                            idempotency_key: format!("hook:{}:{}", hook.id, self.desk.new_id()),
                        };
                        match plugins.handle_webhook(&call, trigger, request).await.result {
                            Ok(items) => (
                                items.into_iter().map(|i| SeenItem { id: i.id, data: i.data }).collect(),
                                true,
                            ),
                            Err(PluginFailure::InvalidInput { message }) => {
                                return Err(HookError::BadRequest(message));
                            }
                            Err(PluginFailure::Auth { message }) => {
                                return Err(HookError::BadSignature(message));
                            }
                            Err(other) => return Err(HookError::Unavailable(other.to_string())),
                        }
                    }
                    _ => {
                        return Err(HookError::Unprocessable(format!(
                            "flow '{}' is not webhook-triggered",
                            f.name
                        )));
                    }
                };
                let started =
                    self.desk.execute(&system, &TriggerFlow { flow: f.id, items, remember_ids }).await?;
                Ok(HookOutcome::FlowStarted { runs: started.runs, duplicates: started.duplicates })
            }
        }
    }
}

/// Checks that every plugin trigger and action a flow names is known to the runtime; errors
/// name the path (`steps[2].plugin`).
pub async fn check_plugins(
    plugins: Option<&Arc<dyn PluginRuntime>>,
    ws: tandem_core::WorkspaceId,
    trigger: &FlowTrigger,
    steps: &[FlowStep],
) -> Result<(), tandem_core::Invalid> {
    let uses = tandem_core::flows::plugin_uses(trigger, steps);
    if uses.is_empty() {
        return Ok(());
    }
    let Some(plugins) = plugins else {
        return Err(tandem_core::Invalid::new(uses[0].path.clone(), "this server runs no plugin host"));
    };
    for u in uses {
        let part = if u.is_trigger {
            crate::plugin_runtime::PluginPart::Trigger
        } else {
            crate::plugin_runtime::PluginPart::Action
        };
        if let Err(f) = plugins.check(ws, &u.plugin, part, &u.name).await {
            return Err(tandem_core::Invalid::new(u.path, f.to_string()));
        }
    }
    Ok(())
}
