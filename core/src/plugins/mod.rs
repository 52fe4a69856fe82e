//! Plugin installations: which WebAssembly plugins a workspace runs, what the operator approved
//! them to do, their settings and secrets, and their key-value state.
//!
//! The core never runs a plugin and never parses its manifest: the server checks the manifest and
//! compiles the component (`tandem-plugin-host`) and hands the result to [`InstallPlugin`] /
//! [`UpgradePlugin`] as a [`PluginPackage`]. What the core decides is who may install and manage
//! plugins (administrators), which hosts an installation may call (only approved ones, only ones
//! the manifest asks for), and the bookkeeping: one installation per plugin per workspace, the
//! component's bytes as a content-addressed blob, upgrades that keep settings, state that lives and
//! dies with its installation.
//!
//! Secrets ([`PluginSecret`]) are kept in the record for the host to add to requests; they are
//! never in events and never in what the API shows ([`PluginView`]).

mod commands;
mod queries;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use commands::{
    ApprovePlugin, ConfigurePlugin, InstallPlugin, RemovePlugin, SetPluginEnabled, SetPluginState,
    StateWritten, UpgradePlugin,
};

use crate::error::Invalid;
use crate::ids::{PluginInstallationId, PluginStateId, WorkspaceId};
use crate::item::ActorRef;

/// The job the automation action "run plugin action" enqueues (re-exported for handlers).
pub use crate::automation::PLUGIN_ACTION_JOB;

/// Largest component accepted, in bytes.
pub const MAX_WASM_BYTES: usize = 32 << 20;
/// Largest installation config (JSON text), in bytes.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Longest state key, in bytes.
pub const MAX_STATE_KEY_BYTES: usize = 256;
/// Largest state value, in bytes.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;

/// What the server learned from a plugin's manifest and component, checked by the host before
/// the core sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginPackage {
    /// `plugin.toml`'s `id`.
    pub plugin: String,
    pub name: String,
    /// `plugin.toml`'s `version` (semver).
    pub plugin_version: String,
    /// Hosts the plugin asks to call.
    pub hosts: Vec<String>,
    /// Whether it asks for key-value state.
    pub state: bool,
    /// The whole manifest, as JSON (actions, triggers and their schemas).
    pub manifest: Value,
    /// The component's bytes.
    pub wasm: std::sync::Arc<[u8]>,
}

/// A secret the host adds to the plugin's requests to one host (e.g. `Authorization: Bearer …`).
/// The plugin never reads it; the API never shows its value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSecret {
    /// An approved host (exactly, or `*.example.com`).
    pub host: String,
    pub header: String,
    pub value: String,
}

impl std::fmt::Debug for PluginSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSecret")
            .field("host", &self.host)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// One plugin installed in one workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInstallation {
    /// Derived from the workspace and the plugin id ([`PluginInstallation::id_for`]): one per
    /// plugin per workspace, even when two installs race.
    pub id: PluginInstallationId,
    pub workspace_id: WorkspaceId,
    pub plugin: String,
    pub name: String,
    pub plugin_version: String,
    pub manifest: Value,
    /// SHA-256 (hex) of the component: its blob and its key in the host's compiled-code cache.
    pub sha256: String,
    pub size: u64,
    /// Hosts the manifest asks for.
    pub requested_hosts: Vec<String>,
    pub requested_state: bool,
    /// Hosts the operator approved (a subset of the requested ones).
    pub approved_hosts: Vec<String>,
    /// Whether the operator approved what the current version asks for. An upgrade asking for
    /// more clears it; an unapproved installation does not run.
    pub approved: bool,
    #[serde(default)]
    pub secrets: Vec<PluginSecret>,
    /// The installation's settings, passed to every call (a JSON object; not secret).
    pub config: Value,
    pub enabled: bool,
    pub installed_by: ActorRef,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl PluginInstallation {
    /// The installation id of `plugin` in `workspace`: the first 16 bytes of a SHA-256.
    pub fn id_for(workspace: WorkspaceId, plugin: &str) -> PluginInstallationId {
        let digest = Sha256::new()
            .chain_update(b"tandem.plugin.")
            .chain_update(workspace.0.as_bytes())
            .chain_update(plugin)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        PluginInstallationId(uuid::Uuid::from_bytes(bytes))
    }

    /// Whether calls may run: enabled and its capabilities approved.
    pub fn runnable(&self) -> Result<(), String> {
        if !self.enabled {
            return Err(format!("plugin {} is disabled", self.plugin));
        }
        if !self.approved {
            return Err(format!(
                "plugin {} asks for capabilities an administrator has not approved yet",
                self.plugin
            ));
        }
        Ok(())
    }

    /// Whether the manifest offers `action`.
    pub fn has_action(&self, action: &str) -> bool {
        self.manifest.get("actions").and_then(|a| a.get(action)).is_some()
    }

    /// Whether the manifest offers `trigger`.
    pub fn has_trigger(&self, trigger: &str) -> bool {
        self.manifest.get("triggers").and_then(|t| t.get(trigger)).is_some()
    }

    /// What the API shows: everything but the secrets' values.
    pub fn view(&self) -> PluginView {
        PluginView {
            id: self.id,
            plugin: self.plugin.clone(),
            name: self.name.clone(),
            plugin_version: self.plugin_version.clone(),
            manifest: self.manifest.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
            requested_hosts: self.requested_hosts.clone(),
            requested_state: self.requested_state,
            approved_hosts: self.approved_hosts.clone(),
            approved: self.approved,
            secrets: self
                .secrets
                .iter()
                .map(|s| SecretRef { host: s.host.clone(), header: s.header.clone() })
                .collect(),
            config: self.config.clone(),
            enabled: self.enabled,
            installed_by: self.installed_by,
            installed_at: self.installed_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

/// A secret as the API shows it: which header for which host, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub host: String,
    pub header: String,
}

/// An installation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginView {
    pub id: PluginInstallationId,
    pub plugin: String,
    pub name: String,
    pub plugin_version: String,
    pub manifest: Value,
    pub sha256: String,
    pub size: u64,
    pub requested_hosts: Vec<String>,
    pub requested_state: bool,
    pub approved_hosts: Vec<String>,
    pub approved: bool,
    pub secrets: Vec<SecretRef>,
    pub config: Value,
    pub enabled: bool,
    pub installed_by: ActorRef,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// One key of an installation's key-value state. The record's `version` is the entry's version
/// for compare-and-swap: 1 when written first, one more on every write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginState {
    /// Derived from the installation and the key ([`PluginState::id_for`]).
    pub id: PluginStateId,
    pub workspace_id: WorkspaceId,
    pub installation: PluginInstallationId,
    pub key: String,
    pub value: String,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl PluginState {
    pub fn id_for(installation: PluginInstallationId, key: &str) -> PluginStateId {
        let digest = Sha256::new()
            .chain_update(b"tandem.plugin-state.")
            .chain_update(installation.0.as_bytes())
            .chain_update(key)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        PluginStateId(uuid::Uuid::from_bytes(bytes))
    }
}

/// The SHA-256 (hex) of a component's bytes.
pub fn digest(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A plugin id as the manifest and the API name it.
pub fn validate_plugin_id(field: &str, id: &str) -> Result<(), Invalid> {
    if is_name(id) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("{id:?} is not a plugin id (1–64 lowercase letters, digits and '-')"),
        ))
    }
}

/// `major.minor.patch` as numbers (pre-release and build parts ignored), for "is this newer".
pub fn version_key(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let key = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(key)
}

/// Whether `host` falls under an allow-list `pattern` (the name, or `*.domain` for subdomains).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => host == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_and_distinct() {
        let ws = WorkspaceId(uuid::Uuid::from_u128(1));
        assert_eq!(PluginInstallation::id_for(ws, "a"), PluginInstallation::id_for(ws, "a"));
        assert_ne!(PluginInstallation::id_for(ws, "a"), PluginInstallation::id_for(ws, "b"));
        let other = WorkspaceId(uuid::Uuid::from_u128(2));
        assert_ne!(PluginInstallation::id_for(ws, "a"), PluginInstallation::id_for(other, "a"));
        let i = PluginInstallation::id_for(ws, "a");
        assert_ne!(PluginState::id_for(i, "k"), PluginState::id_for(i, "l"));
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(version_key("0.10.0") > version_key("0.9.3"));
        assert_eq!(version_key("1.2.3-beta.1"), Some((1, 2, 3)));
        assert_eq!(version_key("1.2"), None);
        assert_eq!(version_key("1.2.x"), None);
    }

    #[test]
    fn secrets_do_not_print_their_value() {
        let s =
            PluginSecret { host: "h".into(), header: "authorization".into(), value: "Bearer s3cret".into() };
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
