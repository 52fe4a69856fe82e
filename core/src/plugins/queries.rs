//! Reading installations: the API's views (administrators) and what the plugin host needs to run
//! a call (Tandem itself: secrets included).

use super::{PluginInstallation, PluginState, PluginView};
use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::desk::Desk;
use crate::error::DeskError;
use crate::store::{self, RecordQuery};

impl Desk {
    /// Whether the actor may install and manage plugins (administrators): checked before an
    /// upload is compiled, so nobody else makes the server do that work.
    pub fn may_manage_plugins(&self, actor: &Actor) -> Result<(), DeskError> {
        can(actor, Action::AdministerWorkspace, Target::Workspace).into_result()
    }

    /// Every installation of the workspace, as the API shows them (administrators).
    pub async fn plugins(&self, actor: &Actor) -> Result<Vec<PluginView>, DeskError> {
        can(actor, Action::AdministerWorkspace, Target::Workspace).into_result()?;
        let mut all: Vec<PluginInstallation> =
            store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?;
        all.sort_by(|a, b| a.plugin.cmp(&b.plugin));
        Ok(all.iter().map(PluginInstallation::view).collect())
    }

    /// One installation by plugin id, as the API shows it (administrators).
    pub async fn plugin(&self, actor: &Actor, plugin: &str) -> Result<PluginView, DeskError> {
        can(actor, Action::AdministerWorkspace, Target::Workspace).into_result()?;
        Ok(self.plugin_installation(&Actor::system(actor.workspace_id), plugin).await?.view())
    }

    /// The whole installation, secrets included: for the plugin host only (Tandem itself).
    pub async fn plugin_installation(
        &self,
        actor: &Actor,
        plugin: &str,
    ) -> Result<PluginInstallation, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only the plugin host reads a plugin's secrets".into()));
        }
        let id = PluginInstallation::id_for(actor.workspace_id, plugin);
        store::get::<PluginInstallation>(self.store().as_ref(), actor.workspace_id, id.0)
            .await?
            .ok_or_else(|| DeskError::not_found(format!("plugin {plugin}")))
    }

    /// One key of an installation's state (the plugin host only).
    pub async fn plugin_state(
        &self,
        actor: &Actor,
        plugin: &str,
        key: &str,
    ) -> Result<Option<PluginState>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only the plugin host reads plugin state".into()));
        }
        let installation = PluginInstallation::id_for(actor.workspace_id, plugin);
        Ok(store::get::<PluginState>(
            self.store().as_ref(),
            actor.workspace_id,
            PluginState::id_for(installation, key).0,
        )
        .await?)
    }

    /// The component's bytes of an installation (the plugin host only; loaded once per process).
    pub async fn plugin_component(&self, actor: &Actor, sha256: &str) -> Result<Vec<u8>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only the plugin host reads plugin components".into()));
        }
        self.store()
            .blob(actor.workspace_id, sha256)
            .await?
            .ok_or_else(|| DeskError::not_found(format!("plugin component {sha256}")))
    }
}
