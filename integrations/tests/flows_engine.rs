#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The flow engine's behaviour with plugins, against a real SQLite store: seeding a poll trigger
//! without firing, deduping polled items by id, keeping the cursor across edits, retrying a
//! retryable step, replaying a failed run from its failed step, pausing after N failures or at
//! once on an authentication error. Plugins are a scripted `PluginRuntime` (the real WebAssembly
//! host implements the same port).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use tandem_core::commands::{
    CreateFlow, CreateHookEndpoint, ReplayFlowRun, SeenItem, SetFlowEnabled, TriggerFlow, UpdateFlow,
};
use tandem_core::flows::{
    FLOW_POLL_JOB, FLOW_RUN_JOB, Flow, FlowPollState, FlowRun, FlowSpec, HookTarget, RunStatus, make_token,
    token_digest,
};
use tandem_core::store::{Job, JobState, RecordQuery};
use tandem_core::*;
use tandem_integrations::flows::check_plugins;
use tandem_integrations::{
    Egress, FlowEngine, HookError, HookOutcome, IncomingRequest, PluginCall, PluginFailure, PluginOutcome,
    PluginPart, PluginRuntime, PollResult, TriggerItem,
};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

#[derive(Debug, Default)]
struct Plugins {
    pages: Mutex<VecDeque<Result<PollResult, PluginFailure>>>,
    actions: Mutex<VecDeque<Result<Value, PluginFailure>>>,
    /// (action, input, idempotency key) of every action call.
    calls: Mutex<Vec<(String, Value, String)>>,
    /// The cursor every poll was given.
    cursors: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl PluginRuntime for Plugins {
    async fn run_action(&self, call: &PluginCall, action: &str, input: &Value) -> PluginOutcome<Value> {
        self.calls.lock().unwrap().push((action.to_string(), input.clone(), call.idempotency_key.clone()));
        let result = self.actions.lock().unwrap().pop_front().unwrap_or_else(|| Ok(json!({"echo": input})));
        PluginOutcome { result, log: vec![format!("{action} called")] }
    }

    async fn poll(&self, _: &PluginCall, _: &str, cursor: Option<&str>) -> PluginOutcome<PollResult> {
        self.cursors.lock().unwrap().push(cursor.map(str::to_string));
        let result =
            self.pages.lock().unwrap().pop_front().unwrap_or(Ok(PollResult { items: vec![], cursor: None }));
        PluginOutcome { result, log: vec![] }
    }

    async fn handle_webhook(
        &self,
        _: &PluginCall,
        _: &str,
        request: IncomingRequest,
    ) -> PluginOutcome<Vec<TriggerItem>> {
        let result = serde_json::from_slice::<Value>(&request.body)
            .map(|data| vec![TriggerItem { id: data["id"].to_string(), data }])
            .map_err(|e| PluginFailure::InvalidInput { message: e.to_string() });
        PluginOutcome { result, log: vec![] }
    }

    async fn check(
        &self,
        _: WorkspaceId,
        plugin: &str,
        part: PluginPart,
        name: &str,
    ) -> Result<(), PluginFailure> {
        let known = matches!(
            (plugin, part, name),
            ("issues", PluginPart::Trigger, "new_issue") | ("chat", PluginPart::Action, "post")
        );
        if known {
            Ok(())
        } else {
            Err(PluginFailure::Unavailable {
                message: format!("no {part:?} '{name}' of a plugin '{plugin}' is installed"),
            })
        }
    }
}

struct Now;
impl Clock for Now {
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now()
    }
}

struct V7;
impl IdSource for V7 {
    fn new_id(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

struct Setup {
    desk: Desk,
    engine: FlowEngine,
    plugins: Arc<Plugins>,
    ws: WorkspaceId,
    admin: Actor,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap());
    let ws = WorkspaceId(uuid::Uuid::now_v7());
    let mut changes = ChangeSet::new(ws, ActorRef::System, Utc::now());
    changes.insert(Record::Workspace(Workspace {
        id: ws,
        name: "Federation".into(),
        created_at: Utc::now(),
        version: 1,
    }));
    store.commit(changes).await.unwrap();
    let desk = Desk::new(store, Arc::new(Now), Arc::new(V7), Limits::default());
    let plugins = Arc::new(Plugins::default());
    let runtime: Arc<dyn PluginRuntime> = plugins.clone();
    let engine =
        FlowEngine::new(desk.clone(), Some(runtime), Egress::default(), Duration::from_secs(5)).unwrap();
    Setup {
        desk,
        engine,
        plugins,
        ws,
        admin: Actor::server_admin(ws),
        db: dir.path().join("t.db"),
        _dir: dir,
    }
}

fn spec(v: Value) -> FlowSpec {
    let s = FlowSpec::from_json(&v).unwrap();
    s.validate().unwrap();
    s
}

impl Setup {
    async fn jobs(&self, kind: &str) -> Vec<Job> {
        let now = Utc::now();
        self.desk
            .store()
            .claim_jobs(&[kind.to_string()], 100, now, now + chrono::Duration::seconds(60))
            .await
            .unwrap()
    }

    fn job(&self, kind: &str, payload: Value, attempts: u32) -> Job {
        Job {
            id: JobId(uuid::Uuid::now_v7()),
            workspace_id: self.ws,
            kind: kind.into(),
            payload,
            idempotency_key: format!("test:{}", uuid::Uuid::now_v7()),
            state: JobState::Running,
            attempts,
            max_attempts: 3,
            run_at: Utc::now(),
            lease_until: None,
            last_error: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    async fn flow(&self, id: FlowId) -> Flow {
        store::get::<Flow>(self.desk.store().as_ref(), self.ws, id.0).await.unwrap().unwrap()
    }

    async fn state(&self, id: FlowId) -> FlowPollState {
        store::get::<FlowPollState>(self.desk.store().as_ref(), self.ws, id.0).await.unwrap().unwrap()
    }

    async fn runs(&self, id: FlowId) -> Vec<FlowRun> {
        store::list::<FlowRun>(self.desk.store().as_ref(), self.ws, &RecordQuery::children_of(id.0))
            .await
            .unwrap()
    }

    async fn run(&self, id: FlowRunId) -> FlowRun {
        store::get::<FlowRun>(self.desk.store().as_ref(), self.ws, id.0).await.unwrap().unwrap()
    }

    fn page(&self, ids: &[&str], cursor: Option<&str>) {
        let items = ids.iter().map(|id| TriggerItem {
            id: id.to_string(),
            data: json!({"id": id, "title": format!("Issue {id}")}),
        });
        self.plugins
            .pages
            .lock()
            .unwrap()
            .push_back(Ok(PollResult { items: items.collect(), cursor: cursor.map(str::to_string) }));
    }

    fn answer(&self, results: Vec<Result<Value, PluginFailure>>) {
        self.plugins.actions.lock().unwrap().extend(results);
    }

    fn calls(&self) -> Vec<(String, Value, String)> {
        self.plugins.calls.lock().unwrap().clone()
    }
}

fn poll_spec(name: &str) -> FlowSpec {
    spec(json!({
        "name": name,
        "trigger": {"type": "plugin_poll", "plugin": "issues", "trigger": "new_issue", "interval_secs": 60},
        "steps": [{"type": "plugin_action", "plugin": "chat", "action": "post", "input": {"text": "New: {{trigger.title}}"}}]
    }))
}

#[tokio::test]
async fn polls_seed_without_firing_dedupe_by_id_and_keep_the_cursor_across_edits() {
    let s = setup().await;
    let flow = s
        .desk
        .execute(&s.admin, &CreateFlow { spec: poll_spec("Issues to chat"), enabled: true })
        .await
        .unwrap();

    // Enabling enqueued the seeding poll; the scheduler, finding the poll due at the same time,
    // enqueues it under the same key, so it is not polled twice.
    tandem_integrations::flows::schedule(&s.desk, 100).await.unwrap();
    // The seeding poll stores the cursor and the ids, and fires nothing.
    let seeding = s.jobs(FLOW_POLL_JOB).await;
    assert_eq!(seeding.len(), 1);
    s.page(&["1", "2"], Some("c1"));
    s.engine.poll(&seeding[0]).await.unwrap();
    let state = s.state(flow.id).await;
    assert!(state.seeded);
    assert_eq!(
        (state.cursor.as_deref(), state.seen.clone()),
        (Some("c1"), vec!["1".to_string(), "2".to_string()])
    );
    assert!(s.runs(flow.id).await.is_empty(), "seeding fires nothing");
    assert!(s.jobs(FLOW_RUN_JOB).await.is_empty());

    // Editing the flow keeps the cursor; disabling and enabling again does not reseed.
    let edited = UpdateFlow { id: flow.id, spec: poll_spec("Issues to the team chat"), version: Some(1) };
    s.desk.execute(&s.admin, &edited).await.unwrap();
    s.desk.execute(&s.admin, &SetFlowEnabled { id: flow.id, enabled: false }).await.unwrap();
    s.desk.execute(&s.admin, &SetFlowEnabled { id: flow.id, enabled: true }).await.unwrap();
    assert!(s.jobs(FLOW_POLL_JOB).await.is_empty(), "an existing poll state is not seeded again");
    assert_eq!(s.state(flow.id).await.cursor.as_deref(), Some("c1"));

    // The next poll starts at the cursor; "2" was seen, "3" is new (twice on the page).
    s.page(&["2", "3", "3"], Some("c2"));
    s.engine.poll(&s.job(FLOW_POLL_JOB, json!({"flow": flow.id}), 1)).await.unwrap();
    assert_eq!(s.plugins.cursors.lock().unwrap().clone(), vec![None, Some("c1".to_string())]);
    let state = s.state(flow.id).await;
    assert_eq!((state.cursor.as_deref(), state.seen.len()), (Some("c2"), 3));
    let runs = s.runs(flow.id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger_id.as_deref(), Some("3"));

    // The run: a retryable failure, then success on the next attempt with the same key.
    let job = s.jobs(FLOW_RUN_JOB).await.pop().unwrap();
    s.answer(vec![Err(PluginFailure::Retryable { message: "chat is busy".into() })]);
    let failed = s.engine.run(&job).await.unwrap_err();
    assert!(matches!(failed, JobFailure::Retry(ref why) if why.contains("chat is busy")), "{failed:?}");
    let waiting = s.run(runs[0].id).await;
    assert_eq!(waiting.status, RunStatus::WaitingRetry);
    assert_eq!(waiting.steps[0].error.as_ref().unwrap().message, "chat is busy");
    s.answer(vec![Ok(json!({"id": "msg-9"}))]);
    s.engine.run(&Job { attempts: 2, ..job.clone() }).await.unwrap();
    let done = s.run(runs[0].id).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.steps[0].attempts, 2);
    assert_eq!(done.steps[0].input, json!({"text": "New: Issue 3"}));
    assert_eq!(done.steps[0].output, Some(json!({"id": "msg-9"})));
    assert_eq!(done.steps[0].log, vec!["post called"]);
    let calls = s.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].2, calls[1].2, "every attempt of a step carries one idempotency key");
    // A repeat of a finished run's job does nothing.
    s.engine.run(&Job { attempts: 3, ..job }).await.unwrap();
    assert_eq!(s.calls().len(), 2);

    // A poll failing to authenticate pauses the flow and keeps the cursor.
    s.plugins.pages.lock().unwrap().push_back(Err(PluginFailure::Auth { message: "token revoked".into() }));
    s.engine.poll(&s.job(FLOW_POLL_JOB, json!({"flow": flow.id}), 1)).await.unwrap();
    let paused = s.flow(flow.id).await;
    assert!(!paused.enabled);
    assert!(paused.paused_reason.unwrap().contains("token revoked"));
    assert_eq!(s.state(flow.id).await.cursor.as_deref(), Some("c2"));
}

fn two_steps() -> FlowSpec {
    spec(json!({
        "name": "Two posts",
        "trigger": {"type": "incoming_webhook"},
        "steps": [
            {"type": "plugin_action", "plugin": "chat", "action": "post", "input": {"text": "{{trigger.text}}"}},
            {"type": "plugin_action", "plugin": "chat", "action": "post", "input": {"reply_to": "{{steps.0.output.id}}"}}
        ],
        "pause_after": 2
    }))
}

async fn fire(s: &Setup, flow: FlowId, id: &str) -> FlowRunId {
    let items = vec![SeenItem { id: id.into(), data: json!({"text": format!("hello {id}")}) }];
    let runs = s
        .desk
        .execute(&Actor::system(s.ws), &TriggerFlow { flow, items, remember_ids: true })
        .await
        .unwrap()
        .runs;
    let job = s.jobs(FLOW_RUN_JOB).await.pop().unwrap();
    s.engine.run(&job).await.unwrap();
    runs[0]
}

#[tokio::test]
async fn failed_runs_replay_from_the_failed_step_and_failures_pause_the_flow() {
    let s = setup().await;
    let flow = s.desk.execute(&s.admin, &CreateFlow { spec: two_steps(), enabled: true }).await.unwrap();

    s.answer(vec![Ok(json!({"id": "m1"})), Err(PluginFailure::Fatal { message: "channel archived".into() })]);
    let run = fire(&s, flow.id, "a").await;
    let failed = s.run(run).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert!(failed.error.as_deref().unwrap().contains("channel archived"));
    assert_eq!(failed.steps[1].error.as_ref().unwrap().class, tandem_core::flows::ErrorClass::Fatal);
    assert_eq!(s.flow(flow.id).await.consecutive_failures, 1);

    // Replay: only the failed step runs again, with the first step's output kept.
    let replayed = s.desk.execute(&s.admin, &ReplayFlowRun { run }).await.unwrap();
    assert_eq!(replayed.attempt, 2);
    s.answer(vec![Ok(json!({"id": "m2"}))]);
    let job = s.jobs(FLOW_RUN_JOB).await.pop().unwrap();
    s.engine.run(&job).await.unwrap();
    let done = s.run(run).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.steps[0].output, Some(json!({"id": "m1"})));
    let calls = s.calls();
    assert_eq!(calls.len(), 3, "step 0 did not run again");
    assert_eq!(calls[2].1, json!({"reply_to": "m1"}));
    assert_eq!(s.flow(flow.id).await.consecutive_failures, 0, "a success resets the count");

    // Two failed runs in a row pause the flow, with the reason shown.
    for id in ["b", "c"] {
        s.answer(vec![Err(PluginFailure::InvalidInput { message: "text too long".into() })]);
        fire(&s, flow.id, id).await;
    }
    let paused = s.flow(flow.id).await;
    assert!(!paused.enabled);
    assert!(
        paused.paused_reason.as_deref().unwrap().starts_with("paused after 2 failed runs in a row"),
        "{paused:?}"
    );
    let refused = s
        .desk
        .execute(
            &Actor::system(s.ws),
            &TriggerFlow {
                flow: flow.id,
                items: vec![SeenItem { id: "d".into(), data: json!({}) }],
                remember_ids: true,
            },
        )
        .await;
    assert!(matches!(refused, Err(DeskError::Conflict(ref why)) if why.contains("paused")), "{refused:?}");

    // Enabled again: an authentication error pauses at once.
    s.desk.execute(&s.admin, &SetFlowEnabled { id: flow.id, enabled: true }).await.unwrap();
    s.answer(vec![Err(PluginFailure::Auth { message: "bot token expired".into() })]);
    fire(&s, flow.id, "e").await;
    let paused = s.flow(flow.id).await;
    assert!(!paused.enabled);
    assert!(
        paused
            .paused_reason
            .as_deref()
            .unwrap()
            .contains("authentication failed in step 0: bot token expired")
    );

    // A run still queued when its flow was paused is cancelled, not counted.
    s.desk.execute(&s.admin, &SetFlowEnabled { id: flow.id, enabled: true }).await.unwrap();
    let queued = s
        .desk
        .execute(
            &Actor::system(s.ws),
            &TriggerFlow {
                flow: flow.id,
                items: vec![SeenItem { id: "f".into(), data: json!({}) }],
                remember_ids: true,
            },
        )
        .await
        .unwrap()
        .runs;
    s.desk.execute(&s.admin, &SetFlowEnabled { id: flow.id, enabled: false }).await.unwrap();
    let before = s.calls().len();
    s.engine.run(&s.jobs(FLOW_RUN_JOB).await.pop().unwrap()).await.unwrap();
    let cancelled = s.run(queued[0]).await;
    assert_eq!(cancelled.status, RunStatus::Failed);
    assert!(cancelled.error.unwrap().contains("paused or deleted"));
    assert_eq!(s.calls().len(), before, "nothing was called");
    assert_eq!(s.flow(flow.id).await.consecutive_failures, 0);
}

#[tokio::test]
async fn a_plugin_webhook_trigger_reads_the_request_and_starts_runs() {
    let s = setup().await;
    let flow = spec(json!({
        "name": "Pushed issues",
        "trigger": {"type": "plugin_webhook", "plugin": "issues", "trigger": "new_issue"},
        "filters": {"field": "trigger.state", "op": "eq", "value": "open"},
        "steps": [{"type": "plugin_action", "plugin": "chat", "action": "post", "input": {"text": "{{trigger.title}}"}}]
    }));
    let flow = s.desk.execute(&s.admin, &CreateFlow { spec: flow, enabled: true }).await.unwrap();
    let secret = "t".repeat(43);
    let endpoint = CreateHookEndpoint {
        name: "Issue pushes".into(),
        token_sha256: token_digest(&secret),
        signing_secret: None,
        target: HookTarget::Flow { flow: flow.id },
    };
    let endpoint = s.desk.execute(&s.admin, &endpoint).await.unwrap();
    let token = make_token(s.ws, endpoint.id, &secret);
    let request = |body: &str| IncomingRequest {
        method: "POST".into(),
        path: "/api/v1/hooks/in".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    };
    let outcome = s
        .engine
        .receive(&token, request(r#"{"id": 7, "title": "Export fails", "state": "open"}"#))
        .await
        .unwrap();
    let HookOutcome::FlowStarted { runs, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(runs.len(), 1);
    assert_eq!(s.run(runs[0]).await.trigger["title"], "Export fails");
    // Filtered out: accepted, no run.
    let outcome =
        s.engine.receive(&token, request(r#"{"id": 8, "title": "Old", "state": "closed"}"#)).await.unwrap();
    assert_eq!(outcome, HookOutcome::FlowStarted { runs: vec![], duplicates: vec![] });
    // What the plugin cannot read is the sender's fault; a wrong token is not found.
    let bad = s.engine.receive(&token, request("not json")).await.unwrap_err();
    assert!(matches!(bad, HookError::BadRequest(_)), "{bad:?}");
    let wrong = make_token(s.ws, endpoint.id, &"u".repeat(43));
    assert_eq!(s.engine.receive(&wrong, request("{}")).await.unwrap_err(), HookError::NotFound);
    assert_eq!(s.runs(flow.id).await.len(), 1);
}

#[tokio::test]
async fn unknown_plugins_are_named_by_path() {
    let s = setup().await;
    let runtime: Arc<dyn PluginRuntime> = s.plugins.clone();
    let good = poll_spec("ok");
    check_plugins(Some(&runtime), s.ws, &good.trigger, &good.steps).await.unwrap();
    let bad = spec(json!({
        "name": "typo",
        "trigger": {"type": "incoming_webhook"},
        "steps": [
            {"type": "plugin_action", "plugin": "chat", "action": "post"},
            {"type": "plugin_action", "plugin": "chatt", "action": "post"}
        ]
    }));
    let e = check_plugins(Some(&runtime), s.ws, &bad.trigger, &bad.steps).await.unwrap_err();
    assert_eq!(e.field, "steps[1].plugin");
    assert!(e.reason.contains("'chatt'"), "{e}");
    let e = check_plugins(None, s.ws, &good.trigger, &good.steps).await.unwrap_err();
    assert_eq!((e.field.as_str(), e.reason.as_str()), ("trigger.plugin", "this server runs no plugin host"));
}

async fn ticket_type(s: &Setup) -> ItemTypeId {
    let id = ItemTypeId(uuid::Uuid::now_v7());
    let mut changes = ChangeSet::new(s.ws, ActorRef::System, Utc::now());
    changes.insert(Record::ItemType(ItemType {
        id,
        workspace_id: s.ws,
        name: "Ticket".into(),
        kind: ItemKind::Ticket,
        description: String::new(),
        workflow: Workflow::default_workflow(),
        fields: vec![],
        created_at: Utc::now(),
        version: 1,
    }));
    s.desk.store().commit(changes).await.unwrap();
    id
}

impl Setup {
    async fn items(&self) -> Vec<Item> {
        let mut q = ItemQuery::new(ItemScope::All);
        q.limit = 100;
        self.desk.store().items(self.ws, &q).await.unwrap().items
    }
}

#[tokio::test]
async fn a_built_in_step_and_its_record_are_one_commit() {
    let s = setup().await;
    let ticket = ticket_type(&s).await;
    let flow = spec(json!({
        "name": "A ticket per delivery",
        "trigger": {"type": "incoming_webhook"},
        "steps": [
            {"type": "create_item", "item_type": ticket, "title": "From {{trigger.text}}"},
            {"type": "add_message", "item": "{{steps.0.output.number}}", "body": "Filed as #{{steps.0.output.number}}"}
        ]
    }));
    let flow = s.desk.execute(&s.admin, &CreateFlow { spec: flow, enabled: true }).await.unwrap();
    let trigger = TriggerFlow {
        flow: flow.id,
        items: vec![SeenItem { id: "d1".into(), data: json!({"text": "the shop"}) }],
        remember_ids: true,
    };
    let run = s.desk.execute(&Actor::system(s.ws), &trigger).await.unwrap().runs[0];
    let job = s.jobs(FLOW_RUN_JOB).await.pop().unwrap();

    // Recording the run fails, as if the worker died right after the step: the item, in the
    // same commit, is not written either.
    let db = rusqlite::Connection::open(&s.db).unwrap();
    db.execute_batch(
        "CREATE TRIGGER lost BEFORE UPDATE ON flow_runs BEGIN SELECT RAISE(ABORT, 'the worker died'); END;",
    )
    .unwrap();
    let failed = s.engine.run(&job).await;
    assert!(matches!(failed, Err(JobFailure::Retry(_))), "{failed:?}");
    assert!(s.items().await.is_empty(), "no item without its step record");
    assert!(s.run(run).await.steps.is_empty());

    // The job's next attempt creates the item once, and the record names it.
    db.execute_batch("DROP TRIGGER lost;").unwrap();
    s.engine.run(&Job { attempts: 2, ..job.clone() }).await.unwrap();
    let items = s.items().await;
    assert_eq!(items.len(), 1);
    let done = s.desk.flow_run(&s.admin, run).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    let created = done.steps[0].output.clone().unwrap();
    assert_eq!(created["id"], json!(items[0].id));
    assert_eq!(created["number"], json!(items[0].number), "the number the commit gave is read back");
    let messages = s.desk.store().messages(s.ws, items[0].id, true).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, format!("Filed as #{}", items[0].number));

    // A repeat of the same attempt (a lease that ran out) writes nothing again.
    s.engine.run(&Job { attempts: 3, ..job }).await.unwrap();
    assert_eq!(s.items().await.len(), 1);
    assert_eq!(s.desk.store().messages(s.ws, items[0].id, true).await.unwrap().len(), 1);
}

#[tokio::test]
async fn incoming_webhooks_are_deduplicated_by_delivery_id() {
    let s = setup().await;
    let flow = s.desk.execute(&s.admin, &CreateFlow { spec: two_steps(), enabled: true }).await.unwrap();
    let secret = "s".repeat(43);
    let endpoint = CreateHookEndpoint {
        name: "Deliveries".into(),
        token_sha256: token_digest(&secret),
        signing_secret: None,
        target: HookTarget::Flow { flow: flow.id },
    };
    let endpoint = s.desk.execute(&s.admin, &endpoint).await.unwrap();
    let token = make_token(s.ws, endpoint.id, &secret);
    let request = |header: Option<(&str, &str)>| IncomingRequest {
        method: "POST".into(),
        path: "/api/v1/hooks/in".into(),
        headers: header.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: br#"{"text": "hi"}"#.to_vec(),
    };
    let receive = |header| s.engine.receive(&token, request(header));
    let HookOutcome::FlowStarted { runs, duplicates } =
        receive(Some(("Idempotency-Key", "a"))).await.unwrap()
    else {
        panic!()
    };
    assert_eq!((runs.len(), duplicates.len()), (1, 0));
    // The same id under any of the headers is the same delivery.
    for header in [("Idempotency-Key", "a"), ("tandem-delivery", "a"), ("X-Request-Id", "a")] {
        let again = receive(Some(header)).await.unwrap();
        assert_eq!(again, HookOutcome::FlowStarted { runs: vec![], duplicates: vec!["a".into()] });
    }
    let HookOutcome::FlowStarted { runs, .. } = receive(Some(("X-Request-Id", "b"))).await.unwrap() else {
        panic!()
    };
    assert_eq!(runs.len(), 1);
    // Without an id every request is new, and nothing is remembered for it.
    for _ in 0..2 {
        let HookOutcome::FlowStarted { runs, .. } = receive(None).await.unwrap() else { panic!() };
        assert_eq!(runs.len(), 1);
    }
    assert_eq!(s.runs(flow.id).await.len(), 4);
    assert_eq!(s.state(flow.id).await.seen, vec!["a".to_string(), "b".to_string()]);
    let long = "x".repeat(201);
    assert!(matches!(receive(Some(("Idempotency-Key", &long))).await, Err(HookError::BadRequest(_))));
}
