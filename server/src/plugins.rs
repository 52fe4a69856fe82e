//! Plugins in the server: checking what is uploaded, running installed plugins through the
//! sandbox (`tandem-plugin-host`) as the integrations' [`PluginRuntime`], their state in the
//! database, and the `plugin.action` job that the automation action "run plugin action" enqueues.
//!
//! ```text
//! upload (API, CLI) ─► Plugins::package: manifest checked, SHA-256 checked, component compiled
//!                      against the contract (cached by hash) ─► InstallPlugin / UpgradePlugin (Desk)
//! call (flows, plugin.action job) ─► PluginRuntime ─► installation (Desk: enabled, approved,
//!        secrets) ─► component loaded from its blob on first use ─► PluginHost (fresh sandbox)
//!        state import ─► DeskState ─► SetPluginState (compare-and-swap in the database)
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tandem_core::plugins::{PLUGIN_ACTION_JOB, PluginPackage, SetPluginState, StateWritten};
use tandem_core::store::Job;
use tandem_core::{Actor, Desk, DeskError, Invalid, JobFailure, JobHandler, PluginInstallation, WorkspaceId};
use tandem_integrations::plugin_runtime::{
    IncomingRequest, PluginCall, PluginFailure, PluginOutcome, PluginPart, PluginRuntime, PollResult,
    TriggerItem,
};
use tandem_plugin_host::state::{CasError, StateEntry, StateStore};
use tandem_plugin_host::{
    Credential, HostConfig, Installation, Invocation, LoadError, LogLevel, Manifest, Outcome, PluginError,
    PluginHost,
};

/// The server's plugin runtime: one sandbox host for the process, installations read through
/// `Desk` on every call (so disabling or removing one acts at once).
#[derive(Debug)]
pub struct Plugins {
    host: Arc<PluginHost>,
    desk: Desk,
}

impl Plugins {
    pub fn new(desk: Desk, config: HostConfig) -> Result<Self, String> {
        Ok(Self { host: Arc::new(PluginHost::new(config)?), desk })
    }

    /// The host's limits for a server: private destinations only when the operator allows them
    /// (the same switch as for webhooks).
    pub fn host_config(allow_private: bool) -> HostConfig {
        HostConfig { egress: tandem_integrations::Egress { allow_private }, ..HostConfig::default() }
    }

    pub fn host(&self) -> &Arc<PluginHost> {
        &self.host
    }

    /// Checks an uploaded plugin: the manifest (TOML, API version, names, schemas), the
    /// component's SHA-256 against the manifest's, and the component against the contract
    /// (compiling it, which also caches it). Errors name the part that is wrong.
    pub async fn package(&self, manifest: &str, wasm: Vec<u8>) -> Result<PluginPackage, DeskError> {
        let parsed = Manifest::parse(manifest)
            .map_err(|e| DeskError::Invalid(Invalid::new(format!("manifest.{}", e.field), e.message)))?;
        if wasm.is_empty() {
            return Err(DeskError::invalid("wasm", "the component file is empty"));
        }
        if wasm.len() > tandem_core::plugins::MAX_WASM_BYTES {
            return Err(DeskError::TooLarge {
                what: "the plugin component".into(),
                size: wasm.len() as u64,
                limit: tandem_core::plugins::MAX_WASM_BYTES as u64,
            });
        }
        let host = self.host.clone();
        let expected = parsed.sha256.clone();
        let wasm: Arc<[u8]> = Arc::from(wasm);
        let bytes = wasm.clone();
        // Compiling is CPU-heavy: off the async workers.
        let loaded = tokio::task::spawn_blocking(move || match expected {
            Some(sha) => host.load_checked(&bytes, &sha),
            None => host.load(&bytes),
        })
        .await
        .map_err(|e| DeskError::invalid("wasm", format!("compiling the component failed: {e}")))?;
        match loaded {
            Ok(_) => {}
            Err(e @ LoadError::Checksum { .. }) => {
                return Err(DeskError::invalid("manifest.sha256", e.to_string()));
            }
            Err(e) => return Err(DeskError::invalid("wasm", e.to_string())),
        }
        let manifest_json = serde_json::to_value(&parsed)
            .map_err(|e| DeskError::invalid("manifest", format!("cannot be represented as JSON: {e}")))?;
        Ok(PluginPackage {
            plugin: parsed.id,
            name: parsed.name,
            plugin_version: parsed.version,
            hosts: parsed.capabilities.http,
            state: parsed.capabilities.state,
            manifest: manifest_json,
            wasm,
        })
    }

    /// The installation a call runs as: enabled, approved, its component loaded (from its blob
    /// on the first call after a restart).
    async fn installation(
        &self,
        call: &PluginCall,
        check: impl FnOnce(&PluginInstallation) -> Result<(), String>,
    ) -> Result<Installation, PluginFailure> {
        let system = Actor::system(call.workspace);
        let record = match self.desk.plugin_installation(&system, &call.plugin).await {
            Ok(record) => record,
            Err(DeskError::NotFound(_)) => {
                return Err(PluginFailure::Unavailable {
                    message: format!("plugin {} is not installed in this workspace", call.plugin),
                });
            }
            Err(e) => {
                return Err(PluginFailure::Retryable {
                    message: format!("reading plugin {}: {e}", call.plugin),
                });
            }
        };
        record.runnable().map_err(|message| PluginFailure::Unavailable { message })?;
        check(&record).map_err(|message| PluginFailure::Unavailable { message })?;
        if !self.host.is_loaded(&record.sha256) {
            let wasm = self.desk.plugin_component(&system, &record.sha256).await.map_err(|e| match e {
                DeskError::NotFound(_) => PluginFailure::Fatal {
                    message: format!(
                        "the component of plugin {} is missing from the database",
                        record.plugin
                    ),
                },
                e => PluginFailure::Retryable { message: format!("reading plugin {}: {e}", record.plugin) },
            })?;
            let host = self.host.clone();
            let sha = record.sha256.clone();
            tokio::task::spawn_blocking(move || host.load_checked(&wasm, &sha))
                .await
                .map_err(|e| PluginFailure::Retryable { message: format!("loading the plugin failed: {e}") })?
                .map_err(|e| PluginFailure::Fatal { message: e.to_string() })?;
        }
        Ok(Installation {
            id: record.id.to_string(),
            component: record.sha256.clone(),
            allowed_hosts: record.approved_hosts.clone(),
            credentials: record
                .secrets
                .iter()
                .map(|s| Credential {
                    host: s.host.clone(),
                    header: s.header.clone(),
                    value: s.value.clone(),
                })
                .collect(),
            config: record.config.clone(),
            state: Arc::new(DeskState {
                desk: self.desk.clone(),
                workspace: call.workspace,
                plugin: record.plugin.clone(),
            }),
        })
    }
}

fn invocation(call: &PluginCall) -> Invocation {
    Invocation {
        run_id: call.run_id.clone(),
        attempt: call.attempt,
        idempotency_key: call.idempotency_key.clone(),
    }
}

fn failure(error: PluginError) -> PluginFailure {
    match error {
        PluginError::Retryable(message) => PluginFailure::Retryable { message },
        PluginError::RateLimited { retry_after, message } => {
            PluginFailure::RateLimited { retry_after_ms: retry_after.as_millis() as u64, message }
        }
        PluginError::Auth(message) => PluginFailure::Auth { message },
        PluginError::InvalidInput(message) => PluginFailure::InvalidInput { message },
        PluginError::Fatal(message) => PluginFailure::Fatal { message },
    }
}

fn outcome<T, U>(outcome: Outcome<T>, map: impl FnOnce(T) -> U) -> PluginOutcome<U> {
    let level = |l: LogLevel| match l {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    PluginOutcome {
        result: outcome.result.map(map).map_err(failure),
        log: outcome
            .log
            .into_iter()
            .map(|l| format!("{} ms {}: {}", l.at_ms, level(l.level), l.message))
            .collect(),
    }
}

fn refused<T>(failure: PluginFailure) -> PluginOutcome<T> {
    PluginOutcome { result: Err(failure), log: vec![] }
}

#[async_trait]
impl PluginRuntime for Plugins {
    async fn check(
        &self,
        workspace: WorkspaceId,
        plugin: &str,
        part: PluginPart,
        name: &str,
    ) -> Result<(), PluginFailure> {
        let system = Actor::system(workspace);
        let record = match self.desk.plugin_installation(&system, plugin).await {
            Ok(record) => record,
            Err(DeskError::NotFound(_)) => {
                return Err(PluginFailure::Unavailable {
                    message: format!("plugin {plugin} is not installed in this workspace"),
                });
            }
            Err(e) => {
                return Err(PluginFailure::Retryable { message: format!("reading plugin {plugin}: {e}") });
            }
        };
        record.runnable().map_err(|message| PluginFailure::Unavailable { message })?;
        let (has, what) = match part {
            PluginPart::Trigger => (record.has_trigger(name), "trigger"),
            PluginPart::Action => (record.has_action(name), "action"),
        };
        if has {
            Ok(())
        } else {
            Err(PluginFailure::Unavailable { message: format!("plugin {plugin} has no {what} {name:?}") })
        }
    }

    async fn run_action(&self, call: &PluginCall, action: &str, input: &Value) -> PluginOutcome<Value> {
        let mut schema = None;
        let has = |i: &PluginInstallation| {
            if i.has_action(action) {
                schema = i
                    .manifest
                    .get("actions")
                    .and_then(|a| a.get(action))
                    .and_then(|a| a.get("input"))
                    .cloned();
                Ok(())
            } else {
                Err(format!("plugin {} has no action {action:?}", i.plugin))
            }
        };
        match self.installation(call, has).await {
            Ok(installation) => {
                // The manifest's input schema is checked before the plugin runs: bad input is the
                // caller's, and retrying it cannot help.
                if let Some(Err(message)) =
                    schema.as_ref().map(|s| tandem_plugin_host::manifest::validate_input(s, input))
                {
                    return refused(PluginFailure::InvalidInput { message });
                }
                outcome(self.host.call_action(&installation, action, input, &invocation(call)).await, |v| v)
            }
            Err(f) => refused(f),
        }
    }

    async fn poll(
        &self,
        call: &PluginCall,
        trigger: &str,
        cursor: Option<&str>,
    ) -> PluginOutcome<PollResult> {
        let has = |i: &PluginInstallation| {
            if i.has_trigger(trigger) {
                Ok(())
            } else {
                Err(format!("plugin {} has no trigger {trigger:?}", i.plugin))
            }
        };
        match self.installation(call, has).await {
            Ok(installation) => {
                outcome(self.host.poll(&installation, trigger, cursor, &invocation(call)).await, |p| {
                    PollResult {
                        items: p.items.into_iter().map(|i| TriggerItem { id: i.id, data: i.data }).collect(),
                        cursor: p.cursor,
                    }
                })
            }
            Err(f) => refused(f),
        }
    }

    async fn handle_webhook(
        &self,
        call: &PluginCall,
        trigger: &str,
        request: IncomingRequest,
    ) -> PluginOutcome<Vec<TriggerItem>> {
        let has = |i: &PluginInstallation| {
            if i.has_trigger(trigger) {
                Ok(())
            } else {
                Err(format!("plugin {} has no trigger {trigger:?}", i.plugin))
            }
        };
        match self.installation(call, has).await {
            Ok(installation) => {
                let request = tandem_plugin_host::WebhookRequest {
                    method: request.method,
                    path: request.path,
                    headers: request.headers,
                    body: request.body,
                };
                outcome(
                    self.host.handle_webhook(&installation, trigger, request, &invocation(call)).await,
                    |items| items.into_iter().map(|i| TriggerItem { id: i.id, data: i.data }).collect(),
                )
            }
            Err(f) => refused(f),
        }
    }
}

/// An installation's key-value state, in the database: reads through `Desk`, writes as
/// [`SetPluginState`] (compare-and-swap on the record's version).
#[derive(Debug)]
struct DeskState {
    desk: Desk,
    workspace: WorkspaceId,
    plugin: String,
}

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[async_trait]
impl StateStore for DeskState {
    async fn get(&self, _installation: &str, key: &str) -> Result<Option<StateEntry>, CasError> {
        let entry = self
            .desk
            .plugin_state(&Actor::system(self.workspace), &self.plugin, key)
            .await
            .map_err(|e| CasError::Store(e.to_string()))?;
        Ok(entry.map(|e| StateEntry { value: e.value, version: version(e.version) }))
    }

    async fn compare_and_swap(
        &self,
        _installation: &str,
        key: &str,
        expected: Option<u64>,
        value: Option<String>,
    ) -> Result<u64, CasError> {
        tandem_plugin_host::state::check_sizes(key, value.as_deref())?;
        let expected = match expected.map(i64::try_from) {
            None => None,
            Some(Ok(v)) => Some(v),
            // No entry has a version that large: it cannot match.
            Some(Err(_)) => {
                let current = self.get("", key).await?.map(|e| e.version);
                return Err(CasError::Conflict { current });
            }
        };
        let command = SetPluginState { plugin: self.plugin.clone(), key: key.to_string(), expected, value };
        match self.desk.execute(&Actor::system(self.workspace), &command).await {
            Ok(StateWritten::Written(v)) => Ok(version(v)),
            Ok(StateWritten::Conflict(current)) => Err(CasError::Conflict { current: current.map(version) }),
            Err(DeskError::Invalid(i)) => Err(CasError::TooLarge(i.to_string())),
            Err(DeskError::TooLarge { what, size, limit }) => {
                Err(CasError::TooLarge(format!("{what} is {size} bytes; the limit is {limit}")))
            }
            Err(e) => Err(CasError::Store(e.to_string())),
        }
    }
}

/// Runs the `plugin.action` jobs the automation action "run plugin action" enqueues, through
/// the same [`PluginRuntime`] as flows. Payload: `{"plugin", "action", "input", "item", "rule",
/// "run"}`; the job's idempotency key is the plugin's, the same for every attempt.
#[derive(Debug)]
pub struct PluginActionJob {
    runtime: Arc<dyn PluginRuntime>,
}

impl PluginActionJob {
    pub fn new(runtime: Arc<dyn PluginRuntime>) -> Self {
        Self { runtime }
    }
}

/// What a failed call means for the job: retryable → retry with backoff, rate limited → retry
/// after the delay, anything else → dead at once.
pub fn job_failure(failure: PluginFailure) -> JobFailure {
    let reason = failure.to_string();
    match failure {
        PluginFailure::Retryable { .. } => JobFailure::Retry(reason),
        PluginFailure::RateLimited { retry_after_ms, .. } => {
            JobFailure::RetryAfter(reason, std::time::Duration::from_millis(retry_after_ms))
        }
        PluginFailure::Auth { .. }
        | PluginFailure::InvalidInput { .. }
        | PluginFailure::Fatal { .. }
        | PluginFailure::Unavailable { .. } => JobFailure::Fatal(reason),
    }
}

#[async_trait]
impl JobHandler for PluginActionJob {
    fn kind(&self) -> &'static str {
        PLUGIN_ACTION_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let text = |field: &str| {
            job.payload
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| JobFailure::Fatal(format!("the job's payload has no {field}")))
        };
        let plugin = text("plugin")?;
        let action = text("action")?;
        let input = job.payload.get("input").cloned().unwrap_or(Value::Null);
        let run_id = match job.payload.get("run") {
            Some(Value::String(run)) => run.clone(),
            _ => job.id.to_string(),
        };
        let call = PluginCall {
            workspace: job.workspace_id,
            plugin: plugin.clone(),
            run_id,
            attempt: job.attempts.max(1),
            idempotency_key: job.idempotency_key.clone(),
        };
        let outcome = self.runtime.run_action(&call, &action, &input).await;
        for line in &outcome.log {
            tracing::info!(plugin = %plugin, action = %action, job = %job.id, "{line}");
        }
        match outcome.result {
            Ok(_) => Ok(()),
            Err(failure) => {
                tracing::warn!(plugin = %plugin, action = %action, job = %job.id, error = %failure, "plugin action failed");
                Err(job_failure(failure))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_onto_job_outcomes() {
        let m = |s: &str| s.to_string();
        assert!(matches!(job_failure(PluginFailure::Retryable { message: m("x") }), JobFailure::Retry(_)));
        assert_eq!(
            job_failure(PluginFailure::RateLimited { retry_after_ms: 1500, message: m("slow") }),
            JobFailure::RetryAfter(
                m("rate limited (retry after 1500 ms): slow"),
                std::time::Duration::from_millis(1500)
            )
        );
        for f in [
            PluginFailure::Auth { message: m("x") },
            PluginFailure::InvalidInput { message: m("x") },
            PluginFailure::Fatal { message: m("x") },
            PluginFailure::Unavailable { message: m("x") },
        ] {
            assert!(matches!(job_failure(f), JobFailure::Fatal(_)));
        }
    }
}
