//! The port between what calls plugins (flows, the automation action "run plugin action") and
//! what runs them (the plugin host, wired in by the server).
//!
//! Integrations never link wasmtime: they see installed plugins only through [`PluginRuntime`].
//! The server implements it on top of `tandem-plugin-host`, looking the installation up by
//! workspace and plugin id (one installation per plugin per workspace), checking that it is
//! enabled and its capabilities approved, and handing the call to the sandbox.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_core::WorkspaceId;

/// Who calls which plugin, and on behalf of which run. The idempotency key is the same for every
/// attempt of one step of one run, so a plugin can make a retry harmless on the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCall {
    pub workspace: WorkspaceId,
    /// The plugin's id from its manifest (`plugin.toml`'s `id`).
    pub plugin: String,
    pub run_id: String,
    pub attempt: u32,
    pub idempotency_key: String,
}

/// Why a plugin call failed. The class decides what happens next: retry with backoff, retry after
/// the given delay, pause what uses the installation, or give up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum PluginFailure {
    #[error("retryable: {message}")]
    Retryable { message: String },
    #[error("rate limited (retry after {retry_after_ms} ms): {message}")]
    RateLimited { retry_after_ms: u64, message: String },
    #[error("authentication failed: {message}")]
    Auth { message: String },
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    #[error("failed: {message}")]
    Fatal { message: String },
    /// No such plugin in the workspace, or it is disabled, or it has no such action or trigger.
    #[error("unavailable: {message}")]
    Unavailable { message: String },
}

impl PluginFailure {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PluginFailure::Retryable { .. } | PluginFailure::RateLimited { .. })
    }
}

/// A call's result with the lines the plugin logged (for the run log).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOutcome<T> {
    pub result: Result<T, PluginFailure>,
    pub log: Vec<String>,
}

/// Something a trigger saw; `id` is stable, and flows dedupe on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerItem {
    pub id: String,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollResult {
    pub items: Vec<TriggerItem>,
    /// Where the next poll starts; `None` keeps the current cursor.
    pub cursor: Option<String>,
}

/// An HTTP request delivered to a plugin trigger's incoming webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Runs installed plugins. Every method runs one call in a fresh sandbox; a failure is the
/// call's own and is returned, never panicked.
#[async_trait]
pub trait PluginRuntime: Send + Sync + std::fmt::Debug {
    async fn run_action(&self, call: &PluginCall, action: &str, input: &Value) -> PluginOutcome<Value>;

    /// Polls a trigger from `cursor` (`None`: the first poll, which seeds the cursor).
    async fn poll(&self, call: &PluginCall, trigger: &str, cursor: Option<&str>) -> PluginOutcome<PollResult>;

    async fn handle_webhook(
        &self,
        call: &PluginCall,
        trigger: &str,
        request: IncomingRequest,
    ) -> PluginOutcome<Vec<TriggerItem>>;
}
