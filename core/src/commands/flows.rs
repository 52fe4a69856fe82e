//! Flows: managing them (admins and managers), starting runs from the event log, incoming
//! webhooks and polls, recording what each step did, replaying failed runs, and incoming
//! webhook endpoints. The engine that performs the steps is `tandem-integrations`' `flows`.
//!
//! Runs write no events: a flow's changes to items are the events of the commands its steps
//! run (as Tandem itself), and the relay ignores events Tandem itself caused — except what mail
//! intake records (new items and messages that arrived by email) — so a flow never feeds itself.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde_json::{Value, json};

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::automation::eval::trigger_matches;
use crate::change::{ChangeSet, NewJob, Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::error::{DeskError, Invalid};
use crate::event::{Event, EventData, FieldChange};
use crate::flows::{
    ErrorClass, FLOW_POLL_JOB, FLOW_RELAY, FLOW_RUN_JOB, Flow, FlowPollState, FlowRun, FlowSpec, FlowTrigger,
    HookEndpoint, HookTarget, RunStatus, STEP_ATTEMPTS, StepError, StepRecord, passes, token_digest,
    validate_target,
};
use crate::ids::{FlowId, FlowRunId, HookEndpointId, ItemId};
use crate::item::{ActorRef, Channel, Item};
use crate::store::{EventQuery, RecordQuery, Store, get, list};
use crate::webhook::EventCursor;

fn check(actor: &Actor) -> Result<(), DeskError> {
    can(actor, Action::ManageStructure, Target::Workspace).into_result()
}

fn system_only(actor: &Actor, what: &str) -> Result<(), DeskError> {
    if actor.kind == ActorKind::System {
        Ok(())
    } else {
        Err(DeskError::Forbidden(format!("only Tandem itself {what}")))
    }
}

/// The `flow.run` job of a run's current attempt.
pub fn run_job(env: &Env<'_>, run: &FlowRun) -> NewJob {
    NewJob {
        id: env.new_id(),
        kind: FLOW_RUN_JOB.into(),
        payload: json!({"run": run.id, "attempt": run.attempt}),
        idempotency_key: run.job_key(),
        run_at: env.now,
        max_attempts: STEP_ATTEMPTS,
    }
}

fn new_run(env: &Env<'_>, flow: &Flow, trigger: Value, trigger_id: Option<String>) -> FlowRun {
    FlowRun {
        id: env.new_id(),
        workspace_id: flow.workspace_id,
        flow: flow.id,
        flow_name: flow.name.clone(),
        trigger,
        trigger_id,
        status: RunStatus::Running,
        steps: Vec::new(),
        attempt: 1,
        started_at: env.now,
        finished_at: None,
        error: None,
        version: 1,
    }
}

fn start_run(
    changes: &mut ChangeSet,
    env: &Env<'_>,
    flow: &Flow,
    trigger: Value,
    id: Option<String>,
) -> FlowRun {
    let run = new_run(env, flow, trigger, id);
    changes.job(run_job(env, &run));
    changes.insert(Record::FlowRun(run.clone()));
    run
}

/// The `flow.poll` job of the poll due at `slot`.
fn poll_job(env: &Env<'_>, flow: FlowId, slot: chrono::DateTime<chrono::Utc>) -> NewJob {
    NewJob {
        id: env.new_id(),
        kind: FLOW_POLL_JOB.into(),
        payload: json!({"flow": flow}),
        idempotency_key: format!("flow.poll:{flow}:{}", slot.timestamp()),
        run_at: env.now,
        max_attempts: 1,
    }
}

/// Creates the poll state (unseeded) of a poll flow being enabled if it has none, and enqueues
/// the seeding poll. An existing state keeps its cursor.
fn arm_poll(changes: &mut ChangeSet, env: &Env<'_>, flow: &Flow, state: Option<&FlowPollState>) {
    if flow.poll_interval_secs().is_none() || !flow.enabled {
        return;
    }
    if state.is_none() {
        changes.insert(Record::FlowPollState(FlowPollState::unseeded(flow, env.now)));
        changes.job(poll_job(env, flow.id, env.now));
    }
}

/// Creates a flow (enabled unless said otherwise). A poll flow is seeded by its first poll,
/// which fires nothing.
#[derive(Debug, Clone)]
pub struct CreateFlow {
    pub spec: FlowSpec,
    pub enabled: bool,
}

impl Command for CreateFlow {
    type State = ();
    type Output = Flow;

    async fn load(&self, _: &Actor, _: &dyn Store) -> Result<(), DeskError> {
        Ok(())
    }

    fn decide(&self, actor: &Actor, _: (), env: &Env<'_>) -> Result<Decided<Flow>, DeskError> {
        check(actor)?;
        self.spec.validate()?;
        let s = &self.spec;
        let flow = Flow {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: s.name.trim().to_string(),
            enabled: self.enabled,
            paused_reason: None,
            trigger: s.trigger.clone(),
            filters: s.filters.clone(),
            steps: s.steps.clone(),
            consecutive_failures: 0,
            pause_after: s.pause_after,
            created_at: env.now,
            updated_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::Flow, id: flow.id.0, name: flow.name.clone() },
        );
        changes.insert(Record::Flow(flow.clone()));
        arm_poll(&mut changes, env, &flow, None);
        Ok(Decided { changes, output: flow })
    }
}

/// Replaces a flow's definition. Its enabled state, failure count and poll cursor stay.
#[derive(Debug, Clone)]
pub struct UpdateFlow {
    pub id: FlowId,
    pub spec: FlowSpec,
    pub version: Option<i64>,
}

impl Command for UpdateFlow {
    type State = Flow;
    type Output = Flow;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Flow, DeskError> {
        // Refused before reading, so a caller who may not cannot probe which ids exist.
        check(actor)?;
        load::<Flow>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, old: Flow, env: &Env<'_>) -> Result<Decided<Flow>, DeskError> {
        check(actor)?;
        if let Some(v) = self.version
            && v != old.version
        {
            return Err(DeskError::Conflict(format!(
                "flow {} is at version {}, not {v}; reload it and try again",
                old.id, old.version
            )));
        }
        self.spec.validate()?;
        let s = &self.spec;
        let next = Flow {
            name: s.name.trim().to_string(),
            trigger: s.trigger.clone(),
            filters: s.filters.clone(),
            steps: s.steps.clone(),
            pause_after: s.pause_after,
            updated_at: env.now,
            version: old.version + 1,
            ..old.clone()
        };
        let mut changes = env.changes(actor);
        let mut audit = Vec::new();
        if old.name != next.name {
            audit.push(FieldChange { field: "name".into(), from: json!(old.name), to: json!(next.name) });
        }
        if old.trigger != next.trigger || old.filters != next.filters || old.steps != next.steps {
            audit.push(FieldChange {
                field: "definition".into(),
                from: json!(old.version),
                to: json!(next.version),
            });
        }
        changes
            .event(None, EventData::RecordUpdated { record: RecordKind::Flow, id: old.id.0, changes: audit });
        changes.update(Record::Flow(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Enables (clearing a pause and the failure count) or disables a flow. Enabling a poll flow
/// for the first time seeds it; later it keeps its cursor.
#[derive(Debug, Clone)]
pub struct SetFlowEnabled {
    pub id: FlowId,
    pub enabled: bool,
}

impl Command for SetFlowEnabled {
    type State = (Flow, Option<FlowPollState>);
    type Output = Flow;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        // Refused before reading, so a caller who may not cannot probe which ids exist.
        check(actor)?;
        let flow = load::<Flow>(store, actor.workspace_id, self.id).await?;
        let state = get::<FlowPollState>(store, actor.workspace_id, self.id.0).await?;
        Ok((flow, state))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, state): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Flow>, DeskError> {
        check(actor)?;
        let mut changes = env.changes(actor);
        if old.enabled == self.enabled && old.paused_reason.is_none() {
            return Ok(Decided { changes, output: old });
        }
        let next = Flow {
            enabled: self.enabled,
            paused_reason: None,
            consecutive_failures: if self.enabled { 0 } else { old.consecutive_failures },
            updated_at: env.now,
            version: old.version + 1,
            ..old.clone()
        };
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::Flow,
                id: old.id.0,
                changes: vec![FieldChange {
                    field: "enabled".into(),
                    from: json!(old.enabled),
                    to: json!(next.enabled),
                }],
            },
        );
        changes.update(Record::Flow(next.clone()), old.version);
        arm_poll(&mut changes, env, &next, state.as_ref());
        Ok(Decided { changes, output: next })
    }
}

/// Deletes a flow and its poll state; its run history stays readable by id.
#[derive(Debug, Clone)]
pub struct DeleteFlow {
    pub id: FlowId,
}

impl Command for DeleteFlow {
    type State = (Flow, Option<FlowPollState>);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        // Refused before reading, so a caller who may not cannot probe which ids exist.
        check(actor)?;
        let flow = load::<Flow>(store, actor.workspace_id, self.id).await?;
        let state = get::<FlowPollState>(store, actor.workspace_id, self.id.0).await?;
        Ok((flow, state))
    }

    fn decide(
        &self,
        actor: &Actor,
        (flow, state): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check(actor)?;
        let mut changes = env.changes(actor);
        changes.delete(RecordKind::Flow, flow.id.0, flow.version);
        if let Some(s) = state {
            changes.delete(RecordKind::FlowPollState, s.id.0, s.version);
        }
        changes.event(None, EventData::RecordDeleted { record: RecordKind::Flow, id: flow.id.0 });
        Ok(Decided { changes, output: () })
    }
}

/// Runs a failed run again from its failed step; the earlier steps' outputs are kept.
#[derive(Debug, Clone)]
pub struct ReplayFlowRun {
    pub run: FlowRunId,
}

impl Command for ReplayFlowRun {
    type State = (FlowRun, Flow);
    type Output = FlowRun;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        // Refused before reading, so a caller who may not cannot probe which ids exist.
        check(actor)?;
        let run = load::<FlowRun>(store, actor.workspace_id, self.run).await?;
        let flow = load::<Flow>(store, actor.workspace_id, run.flow).await?;
        Ok((run, flow))
    }

    fn decide(
        &self,
        actor: &Actor,
        (run, flow): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<FlowRun>, DeskError> {
        check(actor)?;
        if run.status != RunStatus::Failed {
            return Err(DeskError::Conflict(format!(
                "run {} is {:?}, not failed; only failed runs are replayed",
                run.id, run.status
            )));
        }
        if run.next_step() >= flow.steps.len() {
            return Err(DeskError::Conflict(format!(
                "flow {} no longer has the step run {} failed in",
                flow.id, run.id
            )));
        }
        let next = FlowRun {
            status: RunStatus::Running,
            attempt: run.attempt + 1,
            finished_at: None,
            error: None,
            version: run.version + 1,
            ..run.clone()
        };
        let mut changes = env.changes(actor);
        changes.job(run_job(env, &next));
        changes.update(Record::FlowRun(next.clone()), run.version);
        Ok(Decided { changes, output: next })
    }
}

/// What a step did, recorded by the engine (Tandem itself) after each step.
#[derive(Debug, Clone)]
pub struct RecordFlowStep {
    pub run: FlowRunId,
    /// The run attempt the engine is working on; a stale one is refused.
    pub attempt: u32,
    pub step: StepRecord,
    /// The last attempt the job gets: a retryable failure fails the run.
    pub final_attempt: bool,
    /// Whether a failure counts towards pausing the flow (a run cancelled because the flow was
    /// paused or deleted does not).
    pub counts: bool,
}

#[derive(Debug, Clone)]
pub struct StepState {
    pub run: FlowRun,
    pub flow: Option<Flow>,
}

impl Command for RecordFlowStep {
    type State = StepState;
    type Output = FlowRun;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<StepState, DeskError> {
        let run = load::<FlowRun>(store, actor.workspace_id, self.run).await?;
        let flow = get::<Flow>(store, actor.workspace_id, run.flow.0).await?;
        Ok(StepState { run, flow })
    }

    fn runs_automations() -> bool {
        false
    }

    fn decide(&self, actor: &Actor, s: StepState, env: &Env<'_>) -> Result<Decided<FlowRun>, DeskError> {
        system_only(actor, "records flow steps")?;
        let StepState { run: old, flow } = s;
        if old.attempt != self.attempt || matches!(old.status, RunStatus::Succeeded | RunStatus::Failed) {
            return Err(DeskError::Conflict(format!(
                "run {} is no longer at attempt {}",
                old.id, self.attempt
            )));
        }
        let mut run = old.clone();
        let i = self.step.index;
        if i > run.steps.len() {
            return Err(DeskError::invalid("step.index", format!("run {} has no step {i} yet", run.id)));
        }
        run.steps.truncate(i);
        run.steps.push(self.step.clone());
        run.version = old.version + 1;
        let mut changes = env.changes(actor);
        let total = flow.as_ref().map_or(0, |f| f.steps.len());
        let mut flow_next: Option<Flow> = None;
        match &self.step.error {
            None => {
                if i + 1 >= total {
                    run.status = RunStatus::Succeeded;
                    run.finished_at = Some(env.now);
                    if let Some(f) = &flow
                        && f.consecutive_failures > 0
                    {
                        flow_next = Some(Flow { consecutive_failures: 0, ..f.clone() });
                    }
                } else {
                    run.status = RunStatus::Running;
                }
            }
            Some(StepError { class, message }) if class.is_retryable() && !self.final_attempt => {
                run.status = RunStatus::WaitingRetry;
                run.error = Some(message.clone());
            }
            Some(StepError { class, message }) => {
                run.status = RunStatus::Failed;
                run.finished_at = Some(env.now);
                run.error = Some(format!("step {i} ({}): {message}", self.step.kind));
                if let Some(f) = &flow
                    && self.counts
                {
                    let failures = f.consecutive_failures + 1;
                    let mut next = Flow { consecutive_failures: failures, ..f.clone() };
                    if f.enabled && *class == ErrorClass::Auth {
                        next.enabled = false;
                        next.paused_reason =
                            Some(format!("paused: authentication failed in step {i}: {message}"));
                    } else if f.enabled && failures >= f.pause_after {
                        next.enabled = false;
                        next.paused_reason = Some(format!(
                            "paused after {failures} failed runs in a row; the last: {message}"
                        ));
                    }
                    flow_next = Some(next);
                }
            }
        }
        if let (Some(mut next), Some(f)) = (flow_next, flow) {
            next.version = f.version + 1;
            if next.enabled != f.enabled {
                changes.event(
                    None,
                    EventData::RecordUpdated {
                        record: RecordKind::Flow,
                        id: f.id.0,
                        changes: vec![FieldChange {
                            field: "enabled".into(),
                            from: json!(true),
                            to: json!(next.paused_reason.clone()),
                        }],
                    },
                );
            }
            changes.update(Record::Flow(next), f.version);
        }
        changes.update(Record::FlowRun(run.clone()), old.version);
        Ok(Decided { changes, output: run })
    }
}

/// Starts event-triggered flows from the event log: one run (and `flow.run` job) per (event,
/// enabled flow whose trigger matches and filters hold, created before the event), and the
/// relay cursor moved past the batch — in one commit. Events Tandem itself caused are skipped.
#[derive(Debug, Clone)]
pub struct RelayFlowEvents {
    pub batch: usize,
}

#[derive(Debug, Clone)]
pub struct FlowRelayState {
    cursor: Option<EventCursor>,
    events: Vec<Event>,
    flows: Vec<Flow>,
    items: BTreeMap<ItemId, Item>,
}

/// What a relay pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsRelayed {
    pub events: usize,
    pub runs: usize,
    pub more: bool,
}

/// Whether an event may start flows: not one Tandem itself caused (flow steps, automations'
/// deferred deliveries, timed rules), unless it is mail arriving (items and messages by email).
pub fn starts_flows(event: &Event) -> bool {
    event.actor != ActorRef::System
        || matches!(
            event.data,
            EventData::ItemCreated { channel: Channel::Email, .. }
                | EventData::MessagePosted { channel: Channel::Email, .. }
        )
}

/// The trigger payload of an event: what `{{trigger.*}}` reads.
pub fn event_payload(event: &Event, item: &Item) -> Value {
    json!({
        "event": event.data.name(),
        "seq": event.seq,
        "at": event.at,
        "actor": event.actor,
        "data": event.data,
        "item": item,
    })
}

impl Command for RelayFlowEvents {
    type State = FlowRelayState;
    type Output = FlowsRelayed;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<FlowRelayState, DeskError> {
        let ws = actor.workspace_id;
        let cursor = get::<EventCursor>(store, ws, EventCursor::id_for(ws, FLOW_RELAY).0).await?;
        let after = cursor.as_ref().map_or(0, |c| c.seq);
        let events = store.events(ws, &EventQuery { after, item: None, limit: self.batch.max(1) }).await?;
        let mut flows = Vec::new();
        let mut items = BTreeMap::new();
        if !events.is_empty() {
            flows = list::<Flow>(store, ws, &RecordQuery::all()).await?;
            flows.retain(|f| f.enabled && matches!(f.trigger, FlowTrigger::Event { .. }));
            if !flows.is_empty() {
                let wanted: BTreeSet<ItemId> =
                    events.iter().filter(|e| starts_flows(e)).filter_map(|e| e.item).collect();
                for id in wanted {
                    if let Some(item) = get::<Item>(store, ws, id.0).await? {
                        items.insert(id, item);
                    }
                }
            }
        }
        Ok(FlowRelayState { cursor, events, flows, items })
    }

    fn runs_automations() -> bool {
        false
    }

    fn decide(
        &self,
        actor: &Actor,
        s: FlowRelayState,
        env: &Env<'_>,
    ) -> Result<Decided<FlowsRelayed>, DeskError> {
        system_only(actor, "relays events to flows")?;
        let mut changes = env.changes(actor);
        let Some(last) = s.events.last().map(|e| e.seq) else {
            return Ok(Decided { changes, output: FlowsRelayed { events: 0, runs: 0, more: false } });
        };
        let mut runs = 0;
        for event in s.events.iter().filter(|e| starts_flows(e)) {
            let Some(item) = event.item.and_then(|i| s.items.get(&i)) else { continue };
            for flow in s.flows.iter().filter(|f| event.happened_since(f.created_at)) {
                let FlowTrigger::Event { on } = &flow.trigger else { continue };
                if !trigger_matches(on, &event.data, item, event.actor, None, None) {
                    continue;
                }
                let payload = event_payload(event, item);
                if !passes(&flow.filters, &payload, env.now) {
                    continue;
                }
                start_run(&mut changes, env, flow, payload, Some(event.seq.to_string()));
                runs += 1;
            }
        }
        match s.cursor {
            Some(c) => {
                let read = c.version;
                changes.update(
                    Record::EventCursor(EventCursor {
                        seq: last,
                        updated_at: env.now,
                        version: read + 1,
                        ..c
                    }),
                    read,
                );
            }
            None => {
                changes.insert(Record::EventCursor(EventCursor {
                    id: EventCursor::id_for(actor.workspace_id, FLOW_RELAY),
                    workspace_id: actor.workspace_id,
                    consumer: FLOW_RELAY.into(),
                    seq: last,
                    updated_at: env.now,
                    version: 1,
                }));
            }
        }
        let output = FlowsRelayed { events: s.events.len(), runs, more: s.events.len() >= self.batch.max(1) };
        Ok(Decided { changes, output })
    }
}

/// Something a poll or webhook trigger saw.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenItem {
    pub id: String,
    pub data: Value,
}

/// Records one poll of a poll flow in ONE commit: the cursor, the seen ids and a run per new
/// item. The first poll (not yet seeded) only seeds: it fires nothing. A failed poll keeps the
/// cursor; an authentication failure pauses the flow.
#[derive(Debug, Clone)]
pub struct RecordPoll {
    pub flow: FlowId,
    pub outcome: Result<(Vec<SeenItem>, Option<String>), StepError>,
}

/// What a poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    pub seeded: bool,
    pub runs: Vec<FlowRunId>,
}

impl Command for RecordPoll {
    type State = (Flow, Option<FlowPollState>);
    type Output = Polled;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let flow = load::<Flow>(store, actor.workspace_id, self.flow).await?;
        let state = get::<FlowPollState>(store, actor.workspace_id, self.flow.0).await?;
        Ok((flow, state))
    }

    fn runs_automations() -> bool {
        false
    }

    fn decide(
        &self,
        actor: &Actor,
        (flow, state): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Polled>, DeskError> {
        system_only(actor, "records polls")?;
        let Some(interval) = flow.poll_interval_secs() else {
            return Err(DeskError::invalid("flow", format!("flow {} is not poll-triggered", flow.id)));
        };
        let Some(old) = state else {
            return Err(DeskError::not_found(format!("poll state of flow {}", flow.id)));
        };
        let mut changes = env.changes(actor);
        let mut next = FlowPollState {
            last_polled_at: Some(env.now),
            next_poll_at: env.now + Duration::seconds(i64::try_from(interval).unwrap_or(i64::MAX / 2)),
            version: old.version + 1,
            ..old.clone()
        };
        let mut output = Polled { seeded: false, runs: Vec::new() };
        match &self.outcome {
            Ok((items, cursor)) => {
                next.last_error = None;
                if let Some(c) = cursor {
                    next.cursor = Some(c.clone());
                }
                if !old.seeded {
                    next.seeded = true;
                    output.seeded = true;
                    next.remember(items.iter().map(|i| i.id.clone()));
                } else if flow.enabled {
                    let mut fresh = Vec::new();
                    for item in items {
                        if next.seen.contains(&item.id) || fresh.contains(&item.id) {
                            continue;
                        }
                        fresh.push(item.id.clone());
                        if passes(&flow.filters, &item.data, env.now) {
                            let run =
                                start_run(&mut changes, env, &flow, item.data.clone(), Some(item.id.clone()));
                            output.runs.push(run.id);
                        }
                    }
                    next.remember(fresh);
                }
            }
            Err(e) => {
                next.last_error = Some(e.message.clone());
                if e.class == ErrorClass::Auth && flow.enabled {
                    let paused = Flow {
                        enabled: false,
                        paused_reason: Some(format!(
                            "paused: authentication failed while polling: {}",
                            e.message
                        )),
                        version: flow.version + 1,
                        ..flow.clone()
                    };
                    changes.update(Record::Flow(paused), flow.version);
                }
            }
        }
        changes.update(Record::FlowPollState(next), old.version);
        Ok(Decided { changes, output })
    }
}

/// Enqueues a `flow.poll` job for every enabled poll flow that is due, and moves its next poll
/// on by its interval. Servers racing on this collide on the poll state's version and the
/// job's key (`flow.poll:{flow}:{due time}`), so each poll is enqueued once.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFlowPolls;

impl Command for ScheduleFlowPolls {
    type State = Vec<(Flow, FlowPollState)>;
    type Output = usize;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let flows = list::<Flow>(store, ws, &RecordQuery::all()).await?;
        let mut out = Vec::new();
        for f in flows.into_iter().filter(|f| f.enabled && f.poll_interval_secs().is_some()) {
            if let Some(s) = get::<FlowPollState>(store, ws, f.id.0).await? {
                out.push((f, s));
            }
        }
        Ok(out)
    }

    fn runs_automations() -> bool {
        false
    }

    fn decide(&self, actor: &Actor, due: Self::State, env: &Env<'_>) -> Result<Decided<usize>, DeskError> {
        system_only(actor, "schedules polls")?;
        let mut changes = env.changes(actor);
        let mut n = 0;
        for (flow, state) in due.into_iter().filter(|(_, s)| s.next_poll_at <= env.now) {
            let interval = flow.poll_interval_secs().unwrap_or(60);
            changes.job(poll_job(env, flow.id, state.next_poll_at));
            let moved = FlowPollState {
                next_poll_at: env.now + Duration::seconds(i64::try_from(interval).unwrap_or(i64::MAX / 2)),
                version: state.version + 1,
                ..state.clone()
            };
            changes.update(Record::FlowPollState(moved), state.version);
            n += 1;
        }
        Ok(Decided { changes, output: n })
    }
}

/// Starts a run of a webhook-triggered flow with what a request (or a plugin reading it)
/// delivered; each item is one run. When the ids come from the sender (`remember_ids`: a
/// delivery id header, the ids a plugin read from the request), an id seen before starts
/// nothing: the ids are remembered in the flow's [`FlowPollState`] (bounded like a poll's),
/// written in the same commit as the runs, so a repeat racing the first delivery conflicts and,
/// run again, finds the id. Ids made up for a request without one are not remembered.
#[derive(Debug, Clone)]
pub struct TriggerFlow {
    pub flow: FlowId,
    pub items: Vec<SeenItem>,
    pub remember_ids: bool,
}

/// What a webhook delivery started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggered {
    pub runs: Vec<FlowRunId>,
    /// Ids already seen (earlier, or earlier in the same delivery): nothing started for them.
    pub duplicates: Vec<String>,
}

impl Command for TriggerFlow {
    type State = (Flow, Option<FlowPollState>);
    type Output = Triggered;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let flow = load::<Flow>(store, actor.workspace_id, self.flow).await?;
        let seen = if self.remember_ids {
            get::<FlowPollState>(store, actor.workspace_id, self.flow.0).await?
        } else {
            None
        };
        Ok((flow, seen))
    }

    fn runs_automations() -> bool {
        false
    }

    fn decide(
        &self,
        actor: &Actor,
        (flow, seen): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Triggered>, DeskError> {
        system_only(actor, "starts flows from webhooks")?;
        if !matches!(flow.trigger, FlowTrigger::IncomingWebhook | FlowTrigger::PluginWebhook { .. }) {
            return Err(DeskError::invalid(
                "target.flow",
                format!("flow {} is not webhook-triggered", flow.id),
            ));
        }
        let mut changes = env.changes(actor);
        if !flow.enabled {
            return Err(DeskError::Conflict(format!(
                "flow '{}' is paused{}",
                flow.name,
                flow.paused_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            )));
        }
        let mut out = Triggered::default();
        let mut fresh: Vec<String> = Vec::new();
        for item in &self.items {
            if self.remember_ids {
                let repeated =
                    fresh.contains(&item.id) || seen.as_ref().is_some_and(|s| s.seen.contains(&item.id));
                if repeated {
                    out.duplicates.push(item.id.clone());
                    continue;
                }
                fresh.push(item.id.clone());
            }
            if passes(&flow.filters, &item.data, env.now) {
                out.runs
                    .push(start_run(&mut changes, env, &flow, item.data.clone(), Some(item.id.clone())).id);
            }
        }
        if !fresh.is_empty() {
            match seen {
                Some(old) => {
                    let mut next = FlowPollState { version: old.version + 1, ..old.clone() };
                    next.remember(fresh);
                    changes.update(Record::FlowPollState(next), old.version);
                }
                None => {
                    // Not seeded: should the flow become poll-triggered, its first poll seeds.
                    let mut state = FlowPollState::unseeded(&flow, env.now);
                    state.remember(fresh);
                    changes.insert(Record::FlowPollState(state));
                }
            }
        }
        Ok(Decided { changes, output: out })
    }
}

/// Creates an incoming webhook endpoint; the API makes up the token's secret and gives only its
/// SHA-256 here.
#[derive(Debug, Clone)]
pub struct CreateHookEndpoint {
    pub name: String,
    pub token_sha256: String,
    pub signing_secret: Option<String>,
    pub target: HookTarget,
}

impl Command for CreateHookEndpoint {
    type State = Option<Flow>;
    type Output = HookEndpoint;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Option<Flow>, DeskError> {
        match &self.target {
            HookTarget::Flow { flow } => Ok(get::<Flow>(store, actor.workspace_id, flow.0).await?),
            _ => Ok(None),
        }
    }

    fn decide(
        &self,
        actor: &Actor,
        flow: Option<Flow>,
        env: &Env<'_>,
    ) -> Result<Decided<HookEndpoint>, DeskError> {
        check(actor)?;
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Invalid::new("name", "must be 1 to 200 characters").into());
        }
        validate_target(&self.target)?;
        if let HookTarget::Flow { flow: id } = &self.target {
            match flow {
                None => return Err(Invalid::new("target.flow", format!("no flow {id}")).into()),
                Some(f)
                    if !matches!(
                        f.trigger,
                        FlowTrigger::IncomingWebhook | FlowTrigger::PluginWebhook { .. }
                    ) =>
                {
                    return Err(Invalid::new(
                        "target.flow",
                        format!("flow '{}' is not triggered by an incoming webhook", f.name),
                    )
                    .into());
                }
                Some(_) => {}
            }
        }
        let signing_secret = match &self.signing_secret {
            Some(s) => Some(crate::webhook::validate_secret("signing_secret", s)?),
            None => None,
        };
        let hook = HookEndpoint {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: name.to_string(),
            token_sha256: self.token_sha256.clone(),
            signing_secret,
            target: self.target.clone(),
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::HookEndpoint,
                id: hook.id.0,
                name: hook.name.clone(),
            },
        );
        changes.insert(Record::HookEndpoint(hook.clone()));
        Ok(Decided { changes, output: hook })
    }
}

#[derive(Debug, Clone)]
pub struct DeleteHookEndpoint {
    pub id: HookEndpointId,
}

impl Command for DeleteHookEndpoint {
    type State = HookEndpoint;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<HookEndpoint, DeskError> {
        // Refused before reading, so a caller who may not cannot probe which ids exist.
        check(actor)?;
        load::<HookEndpoint>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, hook: HookEndpoint, env: &Env<'_>) -> Result<Decided<()>, DeskError> {
        check(actor)?;
        let mut changes = env.changes(actor);
        changes.delete(RecordKind::HookEndpoint, hook.id.0, hook.version);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::HookEndpoint, id: hook.id.0 });
        Ok(Decided { changes, output: () })
    }
}

/// Whether a token's secret is the endpoint's (constant time over the digests).
pub fn token_matches(hook: &HookEndpoint, secret: &str) -> bool {
    let a = token_digest(secret);
    let (a, b) = (a.as_bytes(), hook.token_sha256.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
