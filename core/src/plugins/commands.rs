//! Installing, upgrading, approving, configuring, enabling, disabling and removing plugins
//! (administrators only), and the plugin state's compare-and-swap (Tandem itself only).

use serde_json::{Value, json};

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{ChangeSet, Record, RecordKind};
use crate::desk::{Command, Decided, Env};
use crate::error::{DeskError, Invalid};
use crate::event::{EventData, FieldChange};
use crate::store::{self, RecordQuery, Store};

use super::{
    MAX_CONFIG_BYTES, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES, MAX_WASM_BYTES, PluginInstallation,
    PluginPackage, PluginSecret, PluginState, PluginView, digest, host_matches, validate_plugin_id,
    version_key,
};

fn check(actor: &Actor) -> Result<(), DeskError> {
    can(actor, Action::AdministerWorkspace, Target::Workspace).into_result()
}

async fn load_installation(
    store: &dyn Store,
    actor: &Actor,
    plugin: &str,
) -> Result<Option<PluginInstallation>, DeskError> {
    let id = PluginInstallation::id_for(actor.workspace_id, plugin);
    Ok(store::get::<PluginInstallation>(store, actor.workspace_id, id.0).await?)
}

fn found(plugin: &str, installation: Option<PluginInstallation>) -> Result<PluginInstallation, DeskError> {
    installation.ok_or_else(|| DeskError::not_found(format!("plugin {plugin}")))
}

/// Writes `next` over `old` (its time and version moved on) with one `record.updated` event
/// naming `audit`, into `changes`; returns what the caller sees.
fn save(
    mut changes: ChangeSet,
    env: &Env<'_>,
    old: &PluginInstallation,
    mut next: PluginInstallation,
    audit: Vec<FieldChange>,
) -> Decided<PluginView> {
    next.updated_at = env.now;
    next.version = old.version + 1;
    changes.event(
        None,
        EventData::RecordUpdated { record: RecordKind::PluginInstallation, id: old.id.0, changes: audit },
    );
    let view = next.view();
    changes.update(Record::PluginInstallation(next), old.version);
    Decided { changes, output: view }
}

fn check_package(package: &PluginPackage) -> Result<String, DeskError> {
    validate_plugin_id("manifest.id", &package.plugin)?;
    if package.name.trim().is_empty() {
        return Err(DeskError::invalid("manifest.name", "must not be empty"));
    }
    if version_key(&package.plugin_version).is_none() {
        return Err(DeskError::invalid(
            "manifest.version",
            format!("{:?} is not a version like 1.2.3", package.plugin_version),
        ));
    }
    if package.wasm.is_empty() {
        return Err(DeskError::invalid("wasm", "the component file is empty"));
    }
    if package.wasm.len() > MAX_WASM_BYTES {
        return Err(DeskError::TooLarge {
            what: "the plugin component".into(),
            size: package.wasm.len() as u64,
            limit: MAX_WASM_BYTES as u64,
        });
    }
    Ok(digest(&package.wasm))
}

fn check_config(config: &Value) -> Result<Value, DeskError> {
    match config {
        Value::Null => Ok(json!({})),
        Value::Object(_) => {
            let size = config.to_string().len();
            if size > MAX_CONFIG_BYTES {
                return Err(DeskError::TooLarge {
                    what: "the plugin's config".into(),
                    size: size as u64,
                    limit: MAX_CONFIG_BYTES as u64,
                });
            }
            Ok(config.clone())
        }
        _ => Err(DeskError::invalid("config", "a JSON object is expected")),
    }
}

/// Installs a plugin in the workspace: the component becomes a blob, the installation a record.
/// With `approve`, the operator approves every host the manifest asks for at once; otherwise
/// the installation waits for [`ApprovePlugin`]. A plugin already installed is upgraded with
/// [`UpgradePlugin`], never installed twice.
#[derive(Debug, Clone)]
pub struct InstallPlugin {
    pub package: PluginPackage,
    pub approve: bool,
    pub config: Value,
}

impl Command for InstallPlugin {
    type State = Option<PluginInstallation>;
    type Output = PluginView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        load_installation(store, actor, &self.package.plugin).await
    }

    fn decide(
        &self,
        actor: &Actor,
        existing: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<PluginView>, DeskError> {
        check(actor)?;
        let sha256 = check_package(&self.package)?;
        if let Some(existing) = existing {
            return Err(DeskError::Conflict(format!(
                "plugin {} is already installed (version {}); upgrade it instead",
                existing.plugin, existing.plugin_version
            )));
        }
        let p = &self.package;
        let installation = PluginInstallation {
            id: PluginInstallation::id_for(actor.workspace_id, &p.plugin),
            workspace_id: actor.workspace_id,
            plugin: p.plugin.clone(),
            name: p.name.trim().to_string(),
            plugin_version: p.plugin_version.clone(),
            manifest: p.manifest.clone(),
            sha256: sha256.clone(),
            size: p.wasm.len() as u64,
            requested_hosts: p.hosts.clone(),
            requested_state: p.state,
            approved_hosts: if self.approve { p.hosts.clone() } else { vec![] },
            approved: self.approve,
            secrets: vec![],
            config: check_config(&self.config)?,
            enabled: true,
            installed_by: actor.reference(),
            installed_at: env.now,
            updated_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.blob(sha256, p.wasm.clone());
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::PluginInstallation,
                id: installation.id.0,
                name: format!("{} {}", installation.plugin, installation.plugin_version),
            },
        );
        let view = installation.view();
        changes.insert(Record::PluginInstallation(installation));
        Ok(Decided { changes, output: view })
    }
}

/// Replaces an installed plugin's component with a newer version of the same plugin. Settings,
/// secrets, state and enabled/disabled stay; approval stays if the new version asks for no host
/// that was not approved (secrets for hosts it no longer asks for are dropped).
#[derive(Debug, Clone)]
pub struct UpgradePlugin {
    pub package: PluginPackage,
}

impl Command for UpgradePlugin {
    type State = Option<PluginInstallation>;
    type Output = PluginView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        load_installation(store, actor, &self.package.plugin).await
    }

    fn decide(
        &self,
        actor: &Actor,
        old: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<PluginView>, DeskError> {
        check(actor)?;
        let sha256 = check_package(&self.package)?;
        let old = found(&self.package.plugin, old)?;
        let p = &self.package;
        if version_key(&p.plugin_version) <= version_key(&old.plugin_version) {
            return Err(DeskError::invalid(
                "manifest.version",
                format!(
                    "{} is not newer than the installed version {}",
                    p.plugin_version, old.plugin_version
                ),
            ));
        }
        let mut next = old.clone();
        next.name = p.name.trim().to_string();
        next.plugin_version = p.plugin_version.clone();
        next.manifest = p.manifest.clone();
        next.sha256 = sha256.clone();
        next.size = p.wasm.len() as u64;
        next.requested_hosts = p.hosts.clone();
        next.requested_state = p.state;
        next.approved_hosts.retain(|h| p.hosts.contains(h));
        next.approved = old.approved && p.hosts.iter().all(|h| old.approved_hosts.contains(h));
        next.secrets.retain(|s| next.approved_hosts.iter().any(|h| host_matches(h, &s.host) || h == &s.host));
        let mut changes = env.changes(actor);
        changes.blob(sha256, p.wasm.clone());
        let mut audit = vec![FieldChange {
            field: "plugin_version".into(),
            from: json!(old.plugin_version),
            to: json!(next.plugin_version),
        }];
        if old.approved != next.approved {
            audit.push(FieldChange {
                field: "approved".into(),
                from: json!(old.approved),
                to: json!(next.approved),
            });
        }
        Ok(save(changes, env, &old, next, audit))
    }
}

/// Approves the hosts an installation may call (all it asks for when `hosts` is `None`) and,
/// when given, replaces its secrets. A host the manifest does not ask for cannot be approved; a
/// secret must be for an approved host.
#[derive(Debug, Clone)]
pub struct ApprovePlugin {
    pub plugin: String,
    pub hosts: Option<Vec<String>>,
    pub secrets: Option<Vec<PluginSecret>>,
}

fn check_header(field: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok { Ok(()) } else { Err(Invalid::new(field, format!("{name:?} is not an HTTP header name"))) }
}

impl Command for ApprovePlugin {
    type State = Option<PluginInstallation>;
    type Output = PluginView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        load_installation(store, actor, &self.plugin).await
    }

    fn decide(
        &self,
        actor: &Actor,
        old: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<PluginView>, DeskError> {
        check(actor)?;
        let old = found(&self.plugin, old)?;
        let hosts = self.hosts.clone().unwrap_or_else(|| old.requested_hosts.clone());
        for (i, host) in hosts.iter().enumerate() {
            if !old.requested_hosts.contains(host) {
                return Err(DeskError::invalid(
                    format!("hosts[{i}]"),
                    format!(
                        "plugin {} does not ask for {host:?} (it asks for: {})",
                        old.plugin,
                        if old.requested_hosts.is_empty() {
                            "none".into()
                        } else {
                            old.requested_hosts.join(", ")
                        }
                    ),
                ));
            }
        }
        let mut next = old.clone();
        if let Some(secrets) = &self.secrets {
            for (i, secret) in secrets.iter().enumerate() {
                if !hosts.iter().any(|h| h == &secret.host || host_matches(h, &secret.host)) {
                    return Err(DeskError::invalid(
                        format!("secrets[{i}].host"),
                        format!("{:?} is not an approved host of plugin {}", secret.host, old.plugin),
                    ));
                }
                check_header(&format!("secrets[{i}].header"), &secret.header)?;
                if secret.value.is_empty() || secret.value.contains(['\r', '\n']) {
                    return Err(DeskError::invalid(
                        format!("secrets[{i}].value"),
                        "a non-empty value on one line is expected",
                    ));
                }
            }
            next.secrets = secrets.clone();
        }
        next.secrets.retain(|s| hosts.iter().any(|h| h == &s.host || host_matches(h, &s.host)));
        next.approved_hosts = hosts;
        next.approved = true;
        let mut audit = vec![];
        if old.approved_hosts != next.approved_hosts || old.approved != next.approved {
            audit.push(FieldChange {
                field: "approved_hosts".into(),
                from: json!(if old.approved { Some(&old.approved_hosts) } else { None }),
                to: json!(next.approved_hosts),
            });
        }
        if old.secrets != next.secrets {
            // Never the values: which headers for which hosts.
            let refs =
                |s: &[PluginSecret]| s.iter().map(|s| format!("{} {}", s.host, s.header)).collect::<Vec<_>>();
            audit.push(FieldChange {
                field: "secrets".into(),
                from: json!(refs(&old.secrets)),
                to: json!(refs(&next.secrets)),
            });
        }
        if audit.is_empty() {
            return Ok(Decided { changes: env.changes(actor), output: old.view() });
        }
        Ok(save(env.changes(actor), env, &old, next, audit))
    }
}

/// Replaces an installation's settings (a JSON object, passed to every call).
#[derive(Debug, Clone)]
pub struct ConfigurePlugin {
    pub plugin: String,
    pub config: Value,
}

impl Command for ConfigurePlugin {
    type State = Option<PluginInstallation>;
    type Output = PluginView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        load_installation(store, actor, &self.plugin).await
    }

    fn decide(
        &self,
        actor: &Actor,
        old: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<PluginView>, DeskError> {
        check(actor)?;
        let old = found(&self.plugin, old)?;
        let config = check_config(&self.config)?;
        if config == old.config {
            return Ok(Decided { changes: env.changes(actor), output: old.view() });
        }
        let audit =
            vec![FieldChange { field: "config".into(), from: old.config.clone(), to: config.clone() }];
        let next = PluginInstallation { config, ..old.clone() };
        Ok(save(env.changes(actor), env, &old, next, audit))
    }
}

/// Enables or disables an installation; a disabled one refuses every call.
#[derive(Debug, Clone)]
pub struct SetPluginEnabled {
    pub plugin: String,
    pub enabled: bool,
}

impl Command for SetPluginEnabled {
    type State = Option<PluginInstallation>;
    type Output = PluginView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        load_installation(store, actor, &self.plugin).await
    }

    fn decide(
        &self,
        actor: &Actor,
        old: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<PluginView>, DeskError> {
        check(actor)?;
        let old = found(&self.plugin, old)?;
        if old.enabled == self.enabled {
            return Ok(Decided { changes: env.changes(actor), output: old.view() });
        }
        let audit =
            vec![FieldChange { field: "enabled".into(), from: json!(old.enabled), to: json!(self.enabled) }];
        let next = PluginInstallation { enabled: self.enabled, ..old.clone() };
        Ok(save(env.changes(actor), env, &old, next, audit))
    }
}

/// Removes an installation and its state. Queued calls fail as "not installed" when they run.
#[derive(Debug, Clone)]
pub struct RemovePlugin {
    pub plugin: String,
}

impl Command for RemovePlugin {
    type State = Option<(PluginInstallation, Vec<PluginState>)>;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let Some(installation) = load_installation(store, actor, &self.plugin).await? else {
            return Ok(None);
        };
        let state = store::list::<PluginState>(
            store,
            actor.workspace_id,
            &RecordQuery::children_of(installation.id.0),
        )
        .await?;
        Ok(Some((installation, state)))
    }

    fn decide(&self, actor: &Actor, state: Self::State, env: &Env<'_>) -> Result<Decided<()>, DeskError> {
        check(actor)?;
        let (installation, entries) =
            state.ok_or_else(|| DeskError::not_found(format!("plugin {}", self.plugin)))?;
        let mut changes = env.changes(actor);
        for entry in entries {
            changes.delete(RecordKind::PluginState, entry.id.0, entry.version);
        }
        changes.delete(RecordKind::PluginInstallation, installation.id.0, installation.version);
        changes.event(
            None,
            EventData::RecordDeleted { record: RecordKind::PluginInstallation, id: installation.id.0 },
        );
        Ok(Decided { changes, output: () })
    }
}

/// The plugin `state` import's compare-and-swap: writes `value` (deletes the key when `None`) if
/// the key's version is `expected` (`None`: the key must not exist). Only Tandem itself (the plugin
/// host) runs it; it writes no event (it is the plugin's bookkeeping, not a change anyone made).
#[derive(Debug, Clone)]
pub struct SetPluginState {
    pub plugin: String,
    pub key: String,
    pub expected: Option<i64>,
    pub value: Option<String>,
}

/// What a compare-and-swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWritten {
    /// Written; the entry's new version (0 after a delete).
    Written(i64),
    /// The entry is at another version (`None`: it does not exist); nothing was written.
    Conflict(Option<i64>),
}

impl Command for SetPluginState {
    type State = (Option<PluginInstallation>, Option<PluginState>);
    type Output = StateWritten;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let installation = load_installation(store, actor, &self.plugin).await?;
        let entry = match &installation {
            Some(i) => {
                store::get::<PluginState>(store, actor.workspace_id, PluginState::id_for(i.id, &self.key).0)
                    .await?
            }
            None => None,
        };
        Ok((installation, entry))
    }

    fn runs_automations() -> bool {
        false
    }

    fn decide(
        &self,
        actor: &Actor,
        state: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<StateWritten>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only the plugin host writes plugin state".into()));
        }
        if self.key.is_empty() || self.key.len() > MAX_STATE_KEY_BYTES {
            return Err(DeskError::invalid("key", format!("1 to {MAX_STATE_KEY_BYTES} bytes are expected")));
        }
        if let Some(value) = &self.value
            && value.len() > MAX_STATE_VALUE_BYTES
        {
            return Err(DeskError::TooLarge {
                what: "the state value".into(),
                size: value.len() as u64,
                limit: MAX_STATE_VALUE_BYTES as u64,
            });
        }
        let (installation, entry) = state;
        let installation = found(&self.plugin, installation)?;
        let current = entry.as_ref().map(|e| e.version);
        let mut changes = env.changes(actor);
        if current != self.expected {
            return Ok(Decided { changes, output: StateWritten::Conflict(current) });
        }
        let output = match (&self.value, entry) {
            (Some(value), Some(entry)) => {
                let next = PluginState {
                    value: value.clone(),
                    updated_at: env.now,
                    version: entry.version + 1,
                    ..entry.clone()
                };
                changes.update(Record::PluginState(next), entry.version);
                StateWritten::Written(entry.version + 1)
            }
            (Some(value), None) => {
                changes.insert(Record::PluginState(PluginState {
                    id: PluginState::id_for(installation.id, &self.key),
                    workspace_id: actor.workspace_id,
                    installation: installation.id,
                    key: self.key.clone(),
                    value: value.clone(),
                    updated_at: env.now,
                    version: 1,
                }));
                StateWritten::Written(1)
            }
            (None, Some(entry)) => {
                changes.delete(RecordKind::PluginState, entry.id.0, entry.version);
                StateWritten::Written(0)
            }
            // Deleting what is not there, as expected: nothing to do.
            (None, None) => StateWritten::Written(0),
        };
        Ok(Decided { changes, output })
    }
}
