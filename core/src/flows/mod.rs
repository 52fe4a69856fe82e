//! Flows: a trigger → filters → ordered steps, run by Tandem outside any request (a self-hosted
//! Zapier). Everything here is pure: the records, validation (errors name the JSON path),
//! templates and filter evaluation. Commands are in `commands/flows.rs`; the engine that runs
//! steps (plugins, HTTP, Tandem commands) is `tandem-integrations`' `flows` module.
//!
//! - [`Flow`] (per workspace): name, `enabled` (with the reason when paused), [`FlowTrigger`],
//!   filters (the automation [`Condition`] tree over `trigger.*` paths), [`FlowStep`]s,
//!   consecutive-failure count and the auto-pause threshold.
//! - [`FlowRun`]: one run's trigger payload and every step's input, output, error and error
//!   class; status running / waiting-retry / succeeded / failed; replayable from the failed step.
//! - [`FlowPollState`] (id = the flow's id): a poll trigger's cursor and the ids seen recently.
//!   A record of its own so editing a flow never touches (or resets) it.
//! - [`HookEndpoint`]: an incoming webhook URL `POST /api/v1/hooks/in/{token}` that creates or
//!   updates an item per a mapping, or feeds a flow.
//!
//! Templates: any string in a step's input may hold `{{trigger.<path>}}` and
//! `{{steps.<n>.output.<path>}}` (n an earlier step); a string that is exactly one placeholder
//! takes the value's JSON type, otherwise values are written into the text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::automation::eval::{Regexes, holds_with, placeholders};
use crate::automation::{Condition, FieldRef, Trigger, validate_condition_with};
use crate::conversation::Visibility;
use crate::error::Invalid;
use crate::ids::{FlowId, FlowPollStateId, FlowRunId, HookEndpointId, ItemTypeId, WorkspaceId};
use crate::store::RecordQuery;

/// The job that runs (or resumes) one flow run.
pub const FLOW_RUN_JOB: &str = "flow.run";
/// The job that polls one poll-triggered flow.
pub const FLOW_POLL_JOB: &str = "flow.poll";
/// The event-log consumer that starts event-triggered flows.
pub const FLOW_RELAY: &str = "flows";

pub const MAX_STEPS: usize = 20;
pub const MAX_NAME_CHARS: usize = 200;
/// Ids a poll state remembers (oldest forgotten first).
pub const MAX_SEEN_IDS: usize = 1000;
/// Shortest poll interval.
pub const MIN_POLL_SECS: u64 = 10;
pub const DEFAULT_PAUSE_AFTER: u32 = 5;
/// Attempts a step gets (retryable failures) before the run fails.
pub const STEP_ATTEMPTS: u32 = 5;

fn default_pause_after() -> u32 {
    DEFAULT_PAUSE_AFTER
}

fn default_visibility() -> Visibility {
    Visibility::Internal
}

/// What starts a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FlowTrigger {
    /// A Tandem event on an item: the automation triggers that react to events (`item_created`,
    /// `status_changed`, `message_posted`, `item_updated` with fields...).
    Event { on: Trigger },
    /// A plugin trigger polled every `interval_secs`.
    PluginPoll { plugin: String, trigger: String, interval_secs: u64 },
    /// A plugin trigger fed by requests to an incoming webhook endpoint.
    PluginWebhook { plugin: String, trigger: String },
    /// Tandem's own incoming webhook: the request's JSON body is the trigger payload.
    IncomingWebhook,
}

/// One step of a flow. Strings anywhere in `input`, `title`, `body`... are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FlowStep {
    PluginAction {
        plugin: String,
        action: String,
        #[serde(default)]
        input: Value,
    },
    CreateItem {
        item_type: ItemTypeId,
        title: String,
        #[serde(default)]
        description: String,
        /// Custom field values (templates allowed).
        #[serde(default)]
        custom: BTreeMap<String, Value>,
    },
    AddMessage {
        /// The item's number or id (a template such as `{{trigger.item.number}}`).
        item: String,
        body: String,
        #[serde(default = "default_visibility")]
        visibility: Visibility,
    },
    UpdateField {
        item: String,
        /// `title`, `description`, `priority` or `custom.<key>`.
        field: String,
        value: Value,
    },
    /// A signed POST (`Tandem-Signature: t=<unix>,v1=<hex>`) of `body` (default: the trigger and
    /// the earlier steps' outputs).
    Webhook {
        url: String,
        secret: String,
        #[serde(default)]
        body: Option<Value>,
    },
}

impl FlowStep {
    pub fn name(&self) -> &'static str {
        match self {
            FlowStep::PluginAction { .. } => "plugin_action",
            FlowStep::CreateItem { .. } => "create_item",
            FlowStep::AddMessage { .. } => "add_message",
            FlowStep::UpdateField { .. } => "update_field",
            FlowStep::Webhook { .. } => "webhook",
        }
    }

    /// The step's input before templates are filled in (what [`render`] takes).
    pub fn input_template(&self) -> Value {
        match self {
            FlowStep::PluginAction { input, .. } => input.clone(),
            FlowStep::CreateItem { title, description, custom, .. } => serde_json::json!({
                "title": title, "description": description, "custom": custom,
            }),
            FlowStep::AddMessage { item, body, .. } => serde_json::json!({"item": item, "body": body}),
            FlowStep::UpdateField { item, field, value } => {
                serde_json::json!({"item": item, "field": field, "value": value})
            }
            FlowStep::Webhook { body, .. } => body
                .clone()
                .unwrap_or_else(|| serde_json::json!({"trigger": "{{trigger}}", "steps": "{{steps}}"})),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub id: FlowId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub enabled: bool,
    /// Why the flow was paused by Tandem (auth error, too many failures); `None` when enabled or
    /// disabled by hand.
    #[serde(default)]
    pub paused_reason: Option<String>,
    pub trigger: FlowTrigger,
    #[serde(default)]
    pub filters: Condition,
    pub steps: Vec<FlowStep>,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Failed runs in a row after which the flow pauses itself.
    #[serde(default = "default_pause_after")]
    pub pause_after: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Flow {
    /// The plugins this flow calls, with where each is named (for checking they are installed).
    pub fn plugin_uses(&self) -> Vec<PluginUse> {
        plugin_uses(&self.trigger, &self.steps)
    }

    pub fn poll_interval_secs(&self) -> Option<u64> {
        match self.trigger {
            FlowTrigger::PluginPoll { interval_secs, .. } => Some(interval_secs),
            _ => None,
        }
    }
}

/// The plugin triggers and actions a flow definition names, with where.
pub fn plugin_uses(trigger: &FlowTrigger, steps: &[FlowStep]) -> Vec<PluginUse> {
    let mut out = Vec::new();
    match trigger {
        FlowTrigger::PluginPoll { plugin, trigger, .. } | FlowTrigger::PluginWebhook { plugin, trigger } => {
            out.push(PluginUse {
                path: "trigger.plugin".into(),
                plugin: plugin.clone(),
                name: trigger.clone(),
                is_trigger: true,
            })
        }
        _ => {}
    }
    for (i, s) in steps.iter().enumerate() {
        if let FlowStep::PluginAction { plugin, action, .. } = s {
            out.push(PluginUse {
                path: format!("steps[{i}].plugin"),
                plugin: plugin.clone(),
                name: action.clone(),
                is_trigger: false,
            });
        }
    }
    out
}

/// A plugin trigger or action a flow names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginUse {
    pub path: String,
    pub plugin: String,
    pub name: String,
    pub is_trigger: bool,
}

/// What a caller gives to create or replace a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    pub name: String,
    pub trigger: FlowTrigger,
    #[serde(default)]
    pub filters: Condition,
    pub steps: Vec<FlowStep>,
    #[serde(default = "default_pause_after")]
    pub pause_after: u32,
}

impl FlowSpec {
    /// Reads a spec from JSON, naming the path of what is wrong (`steps[1]: unknown variant ...`).
    pub fn from_json(v: &Value) -> Result<FlowSpec, Invalid> {
        let Value::Object(map) = v else { return Err(Invalid::new("", "a flow is a JSON object")) };
        for key in map.keys() {
            if !["name", "trigger", "filters", "steps", "pause_after"].contains(&key.as_str()) {
                return Err(Invalid::new(
                    key.clone(),
                    "unknown field; a flow has name, trigger, filters, steps, pause_after",
                ));
            }
        }
        let name = match map.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(Invalid::new("name", "expected text")),
        };
        let trigger = serde_json::from_value(map.get("trigger").cloned().unwrap_or(Value::Null))
            .map_err(|e| Invalid::new("trigger", e.to_string()))?;
        let filters = match map.get("filters") {
            None | Some(Value::Null) => Condition::default(),
            Some(f) => {
                serde_json::from_value(f.clone()).map_err(|e| Invalid::new("filters", e.to_string()))?
            }
        };
        let Some(Value::Array(raw_steps)) = map.get("steps") else {
            return Err(Invalid::new("steps", "expected a list of steps"));
        };
        let mut steps = Vec::with_capacity(raw_steps.len());
        for (i, s) in raw_steps.iter().enumerate() {
            steps.push(
                serde_json::from_value(s.clone())
                    .map_err(|e| Invalid::new(format!("steps[{i}]"), e.to_string()))?,
            );
        }
        let pause_after = match map.get("pause_after") {
            None | Some(Value::Null) => DEFAULT_PAUSE_AFTER,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| Invalid::new("pause_after", "expected a whole number"))?,
        };
        Ok(FlowSpec { name, trigger, filters, steps, pause_after })
    }

    /// Everything that can be checked without reading: names, trigger, filters, steps and their
    /// templates.
    pub fn validate(&self) -> Result<(), Invalid> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(Invalid::new("name", "must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new("name", format!("at most {MAX_NAME_CHARS} characters")));
        }
        match &self.trigger {
            FlowTrigger::Event { on } if on.is_timed() => {
                return Err(Invalid::new(
                    "trigger.on",
                    format!("'{}' is time-based; flows react to events", on.name()),
                ));
            }
            FlowTrigger::PluginPoll { plugin, trigger, interval_secs } => {
                plugin_name("trigger.plugin", plugin)?;
                plugin_name("trigger.trigger", trigger)?;
                if *interval_secs < MIN_POLL_SECS {
                    return Err(Invalid::new(
                        "trigger.interval_secs",
                        format!("at least {MIN_POLL_SECS} seconds"),
                    ));
                }
            }
            FlowTrigger::PluginWebhook { plugin, trigger } => {
                plugin_name("trigger.plugin", plugin)?;
                plugin_name("trigger.trigger", trigger)?;
            }
            _ => {}
        }
        if self.pause_after == 0 || self.pause_after > 1000 {
            return Err(Invalid::new("pause_after", "must be 1 to 1000"));
        }
        let mut count = 0;
        let field_ok = |field: &FieldRef, path: &str| match field {
            FieldRef::Path(p) if p.starts_with("trigger.") => Ok(()),
            other => Err(Invalid::new(
                path,
                format!("flow filters read the trigger's data: use trigger.<path>, not '{}'", other.name()),
            )),
        };
        validate_condition_with(&self.filters, "filters", 0, &mut count, &field_ok)?;
        if self.steps.is_empty() {
            return Err(Invalid::new("steps", "a flow needs at least one step"));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(Invalid::new("steps", format!("at most {MAX_STEPS} steps")));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let path = format!("steps[{i}]");
            match step {
                FlowStep::PluginAction { plugin, action, .. } => {
                    plugin_name(&format!("{path}.plugin"), plugin)?;
                    plugin_name(&format!("{path}.action"), action)?;
                }
                FlowStep::CreateItem { title, .. } if title.trim().is_empty() => {
                    return Err(Invalid::new(format!("{path}.title"), "must not be empty"));
                }
                FlowStep::AddMessage { item, body, .. } => {
                    if item.trim().is_empty() {
                        return Err(Invalid::new(format!("{path}.item"), "must name an item"));
                    }
                    if body.trim().is_empty() {
                        return Err(Invalid::new(format!("{path}.body"), "must not be empty"));
                    }
                }
                FlowStep::UpdateField { item, field, .. } => {
                    if item.trim().is_empty() {
                        return Err(Invalid::new(format!("{path}.item"), "must name an item"));
                    }
                    let ok = ["title", "description", "priority"].contains(&field.as_str())
                        || field.strip_prefix("custom.").is_some_and(|k| !k.is_empty());
                    if !ok {
                        return Err(Invalid::new(
                            format!("{path}.field"),
                            format!("'{field}' is not title, description, priority or custom.<key>"),
                        ));
                    }
                }
                FlowStep::Webhook { url, secret, .. } => {
                    if url.trim().is_empty() {
                        return Err(Invalid::new(format!("{path}.url"), "must not be empty"));
                    }
                    crate::webhook::validate_secret(&format!("{path}.secret"), secret)?;
                }
                _ => {}
            }
            check_templates(&step.input_template(), &format!("{path}.input"), i)?;
            if let FlowStep::Webhook { url, .. } = step {
                check_templates(&Value::String(url.clone()), &format!("{path}.url"), i)?;
            }
        }
        Ok(())
    }
}

fn plugin_name(path: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(path, format!("'{name}' is not a plugin or trigger/action name")))
    }
}

/// Every placeholder in a template value must be `trigger[.path]`, `steps` or
/// `steps.<n>.output[.path]` with `n` an earlier step.
pub fn check_templates(v: &Value, path: &str, step: usize) -> Result<(), Invalid> {
    match v {
        Value::String(s) => {
            for p in placeholders(s) {
                check_placeholder(p, step)
                    .map_err(|why| Invalid::new(path, format!("'{{{{{p}}}}}': {why}")))?;
            }
            Ok(())
        }
        Value::Array(a) => {
            a.iter().enumerate().try_for_each(|(i, v)| check_templates(v, &format!("{path}[{i}]"), step))
        }
        Value::Object(m) => m.iter().try_for_each(|(k, v)| check_templates(v, &format!("{path}.{k}"), step)),
        _ => Ok(()),
    }
}

fn check_placeholder(p: &str, step: usize) -> Result<(), String> {
    let mut parts = p.split('.');
    match parts.next() {
        Some("trigger") => {
            if parts.any(str::is_empty) {
                return Err("empty path segment".into());
            }
            Ok(())
        }
        Some("steps") => {
            let Some(n) = parts.next() else { return Ok(()) };
            let n: usize = n.parse().map_err(|_| format!("'{n}' is not a step number"))?;
            if n >= step {
                return Err(format!("step {n} does not run before step {step}"));
            }
            if parts.next() != Some("output") {
                return Err(format!("expected steps.{n}.output[.path]"));
            }
            if parts.any(str::is_empty) {
                return Err("empty path segment".into());
            }
            Ok(())
        }
        _ => Err("unknown placeholder; use trigger.<path> or steps.<n>.output.<path>".into()),
    }
}

/// Looks `a.b.0.c` up in a JSON value (array indexes as numbers).
pub fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(root);
    }
    path.split('.').try_fold(root, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// The data templates and filters read: `{"trigger": ..., "steps": [{"output": ...}, ...]}`.
pub fn context(trigger: &Value, steps: &[StepRecord]) -> Value {
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| serde_json::json!({"output": s.output.clone().unwrap_or(Value::Null)}))
        .collect();
    serde_json::json!({"trigger": trigger, "steps": steps})
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fills a template value's placeholders from `ctx` (see [`context`]). A string that is exactly
/// one placeholder becomes the value itself; a missing value is `null` (or empty text).
pub fn render(template: &Value, ctx: &Value) -> Value {
    match template {
        Value::String(s) => {
            let trimmed = s.trim();
            let single = placeholders(trimmed);
            if single.len() == 1 && trimmed.starts_with("{{") && trimmed.ends_with("}}") {
                let inner = &trimmed[2..trimmed.len() - 2];
                if !inner.contains("{{") {
                    return lookup(ctx, inner.trim()).cloned().unwrap_or(Value::Null);
                }
            }
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                out.push_str(&lookup(ctx, after[..end].trim()).map(text_of).unwrap_or_default());
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| render(v, ctx)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), render(v, ctx))).collect()),
        other => other.clone(),
    }
}

/// Whether the flow's filters hold for a trigger payload.
pub fn passes(filters: &Condition, trigger: &Value, now: DateTime<Utc>) -> bool {
    let ctx = serde_json::json!({"trigger": trigger});
    let regexes = Regexes::default();
    holds_with(
        filters,
        &|field| match field {
            FieldRef::Path(p) => lookup(&ctx, p).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        },
        now,
        &regexes,
    )
}

/// How a failure is classified (mirrors the plugin contract's error classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Retryable,
    RateLimited,
    Auth,
    InvalidInput,
    Fatal,
    Unavailable,
}

impl ErrorClass {
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retryable | ErrorClass::RateLimited)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    pub class: ErrorClass,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    WaitingRetry,
    Succeeded,
    Failed,
}

/// One step of a run as it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: String,
    pub input: Value,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default)]
    pub error: Option<StepError>,
    /// Attempts of this step so far.
    pub attempts: u32,
    #[serde(default)]
    pub log: Vec<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRun {
    pub id: FlowRunId,
    pub workspace_id: WorkspaceId,
    pub flow: FlowId,
    pub flow_name: String,
    pub trigger: Value,
    /// The id a poll or webhook trigger gave what it saw (dedupe), or the event's sequence number.
    #[serde(default)]
    pub trigger_id: Option<String>,
    pub status: RunStatus,
    /// Completed steps, then the failing one (if any).
    pub steps: Vec<StepRecord>,
    /// Runs of this run: 1, then +1 per replay.
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub error: Option<String>,
    pub version: i64,
}

impl FlowRun {
    /// The first step not yet done.
    pub fn next_step(&self) -> usize {
        self.steps.iter().take_while(|s| s.output.is_some() && s.error.is_none()).count()
    }

    /// The `flow.run` job key of this attempt: a replay is a new job, a repeat of one is not.
    pub fn job_key(&self) -> String {
        format!("flow.run:{}:{}", self.id, self.attempt)
    }
}

/// Fills in the numbers of items `create_item` steps made. Such a step is recorded in the same
/// commit as its item (exactly once), before the store gives the item its number, so its output
/// holds `"number": null`; the item, read back by id, knows it. Steps whose item is gone keep
/// `null`.
pub async fn fill_item_numbers(
    store: &dyn crate::store::Store,
    ws: WorkspaceId,
    run: &mut FlowRun,
) -> Result<(), crate::error::StoreError> {
    for step in run.steps.iter_mut().filter(|s| s.kind == "create_item") {
        let Some(out) = step.output.as_mut() else { continue };
        if !out.get("number").is_some_and(Value::is_null) {
            continue;
        }
        let Some(id) = out.get("id").and_then(Value::as_str).and_then(|s| uuid::Uuid::parse_str(s).ok())
        else {
            continue;
        };
        if let Some(item) = crate::store::get::<crate::item::Item>(store, ws, id).await? {
            out["number"] = Value::from(item.number);
        }
    }
    Ok(())
}

/// A poll-triggered flow's position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowPollState {
    pub id: FlowPollStateId,
    pub workspace_id: WorkspaceId,
    pub flow: FlowId,
    #[serde(default)]
    pub cursor: Option<String>,
    /// Whether the first poll (which fires nothing) happened.
    pub seeded: bool,
    /// Ids seen lately, oldest first, at most [`MAX_SEEN_IDS`].
    #[serde(default)]
    pub seen: Vec<String>,
    /// When the scheduler enqueues the next poll.
    pub next_poll_at: DateTime<Utc>,
    #[serde(default)]
    pub last_polled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    pub version: i64,
}

impl FlowPollState {
    /// A flow's state before its first poll: no cursor, nothing seen, a poll due `now`.
    pub fn unseeded(flow: &Flow, now: DateTime<Utc>) -> Self {
        FlowPollState {
            id: FlowPollStateId(flow.id.0),
            workspace_id: flow.workspace_id,
            flow: flow.id,
            cursor: None,
            seeded: false,
            seen: Vec::new(),
            next_poll_at: now,
            last_polled_at: None,
            last_error: None,
            version: 1,
        }
    }

    pub fn remember(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if !self.seen.contains(&id) {
                self.seen.push(id);
            }
        }
        if self.seen.len() > MAX_SEEN_IDS {
            let extra = self.seen.len() - MAX_SEEN_IDS;
            self.seen.drain(..extra);
        }
    }
}

/// What an incoming webhook does with a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HookTarget {
    /// Starts a flow whose trigger is `incoming_webhook` or `plugin_webhook`.
    Flow { flow: FlowId },
    /// Creates an item; strings are templates over `{{trigger.<path>}}` (the request body).
    CreateItem {
        item_type: ItemTypeId,
        title: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        custom: BTreeMap<String, Value>,
    },
    /// Updates the item `item` names (number or id, a template) with `fields`
    /// (`title`, `description`, `priority`, `custom.<key>` → template).
    UpdateItem { item: String, fields: BTreeMap<String, Value> },
}

/// An incoming webhook endpoint. The URL's token is `hk_<endpoint id>_<secret>`; only the
/// secret's SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookEndpoint {
    pub id: HookEndpointId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub token_sha256: String,
    /// When set, requests must carry `Tandem-Signature: t=<unix>,v1=<hex HMAC-SHA256>` made
    /// with it.
    #[serde(default)]
    pub signing_secret: Option<String>,
    pub target: HookTarget,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

pub fn token_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a URL token into the workspace, endpoint id and secret.
pub fn parse_token(token: &str) -> Option<(WorkspaceId, HookEndpointId, &str)> {
    let rest = token.strip_prefix("hk_")?;
    let mut parts = rest.splitn(3, '_');
    let ws = uuid::Uuid::parse_str(parts.next()?).ok()?;
    let id = uuid::Uuid::parse_str(parts.next()?).ok()?;
    let secret = parts.next().filter(|s| s.len() >= 32)?;
    Some((WorkspaceId(ws), HookEndpointId(id), secret))
}

pub fn make_token(ws: WorkspaceId, id: HookEndpointId, secret: &str) -> String {
    format!("hk_{}_{}_{secret}", ws.0.simple(), id.0.simple())
}

/// Checks a hook target's templates and names.
pub fn validate_target(target: &HookTarget) -> Result<(), Invalid> {
    match target {
        HookTarget::Flow { .. } => Ok(()),
        HookTarget::CreateItem { title, description, custom, .. } => {
            if title.trim().is_empty() {
                return Err(Invalid::new("target.title", "must not be empty"));
            }
            check_templates(&Value::String(title.clone()), "target.title", 0)?;
            check_templates(&Value::String(description.clone()), "target.description", 0)?;
            check_templates(&serde_json::to_value(custom).unwrap_or_default(), "target.custom", 0)
        }
        HookTarget::UpdateItem { item, fields } => {
            check_templates(&Value::String(item.clone()), "target.item", 0)?;
            if fields.is_empty() {
                return Err(Invalid::new("target.fields", "name at least one field to update"));
            }
            for (k, v) in fields {
                let ok = ["title", "description", "priority"].contains(&k.as_str())
                    || k.strip_prefix("custom.").is_some_and(|k| !k.is_empty());
                if !ok {
                    return Err(Invalid::new(
                        format!("target.fields.{k}"),
                        "expected title, description, priority or custom.<key>",
                    ));
                }
                check_templates(v, &format!("target.fields.{k}"), 0)?;
            }
            Ok(())
        }
    }
}

impl crate::desk::Desk {
    pub async fn flows(&self, actor: &crate::Actor) -> Result<Vec<Flow>, crate::DeskError> {
        manage(actor)?;
        Ok(crate::store::list::<Flow>(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?)
    }

    pub async fn flow(&self, actor: &crate::Actor, id: FlowId) -> Result<Flow, crate::DeskError> {
        manage(actor)?;
        crate::desk::load::<Flow>(self.store().as_ref(), actor.workspace_id, id).await
    }

    /// A poll flow's cursor and seen ids (`None` until it is first enabled).
    pub async fn flow_poll_state(
        &self,
        actor: &crate::Actor,
        id: FlowId,
    ) -> Result<Option<FlowPollState>, crate::DeskError> {
        manage(actor)?;
        Ok(crate::store::get::<FlowPollState>(self.store().as_ref(), actor.workspace_id, id.0).await?)
    }

    /// A flow's runs, newest first, at most `limit`.
    pub async fn flow_runs(
        &self,
        actor: &crate::Actor,
        flow: FlowId,
        limit: usize,
    ) -> Result<Vec<FlowRun>, crate::DeskError> {
        manage(actor)?;
        let store = self.store().as_ref();
        crate::desk::load::<Flow>(store, actor.workspace_id, flow).await?;
        let mut runs =
            crate::store::list::<FlowRun>(store, actor.workspace_id, &RecordQuery::children_of(flow.0))
                .await?;
        runs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        runs.truncate(limit);
        for run in &mut runs {
            fill_item_numbers(store, actor.workspace_id, run).await?;
        }
        Ok(runs)
    }

    pub async fn flow_run(&self, actor: &crate::Actor, id: FlowRunId) -> Result<FlowRun, crate::DeskError> {
        manage(actor)?;
        let store = self.store().as_ref();
        let mut run = crate::desk::load::<FlowRun>(store, actor.workspace_id, id).await?;
        fill_item_numbers(store, actor.workspace_id, &mut run).await?;
        Ok(run)
    }

    pub async fn hook_endpoints(&self, actor: &crate::Actor) -> Result<Vec<HookEndpoint>, crate::DeskError> {
        manage(actor)?;
        Ok(crate::store::list::<HookEndpoint>(self.store().as_ref(), actor.workspace_id, &RecordQuery::all())
            .await?)
    }

    /// The endpoint a URL token names, if the token's secret is right: the incoming webhook's
    /// whole authentication. A wrong or unknown token is `NotFound` either way.
    pub async fn hook_endpoint_by_token(&self, token: &str) -> Result<HookEndpoint, crate::DeskError> {
        let unknown = || crate::DeskError::not_found("incoming webhook");
        let (ws, id, secret) = parse_token(token).ok_or_else(unknown)?;
        let hook =
            crate::store::get::<HookEndpoint>(self.store().as_ref(), ws, id.0).await?.ok_or_else(unknown)?;
        if crate::commands::hook_token_matches(&hook, secret) { Ok(hook) } else { Err(unknown()) }
    }
}

fn manage(actor: &crate::Actor) -> Result<(), crate::DeskError> {
    crate::access::can(actor, crate::access::Action::ManageStructure, crate::access::Target::Workspace)
        .into_result()
}

#[cfg(test)]
mod tests;
