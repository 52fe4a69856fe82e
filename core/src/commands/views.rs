//! Saved views: create, change, delete. Anyone on staff keeps personal views; sharing with teams
//! or everybody, and changing other people's shared views, is for managers and administrators.

use serde::Deserialize;

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::DeskError;
use crate::event::EventData;
use crate::hierarchy::validate_title;
use crate::ids::ViewId;
use crate::people::{Role, Team};
use crate::store::{self, RecordQuery, Store};
use crate::views::{Layout, SavedView, Sharing, SortSpec, validate};

/// Administrators, the server administrator and Tandem itself see and change every view.
pub(crate) fn views_admin(actor: &Actor) -> bool {
    match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.active && u.role == Role::Admin,
    }
}

fn may_share(actor: &Actor) -> bool {
    match &actor.kind {
        ActorKind::User(u) => u.active && matches!(u.role, Role::Admin | Role::Manager),
        _ => true,
    }
}

fn check_author(actor: &Actor) -> Result<(), DeskError> {
    if !actor.is_staff() {
        return Err(DeskError::Forbidden("customers do not keep saved views".into()));
    }
    // Saving a view is writing: a read-only token may run views, not save them.
    can(actor, Action::CreateItem, Target::Workspace).into_result()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateView {
    pub name: String,
    #[serde(default)]
    pub sharing: Sharing,
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub sort: Vec<SortSpec>,
    #[serde(default)]
    pub group_by: Option<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub layout: Layout,
}

impl Command for CreateView {
    type State = Vec<Team>;
    type Output = SavedView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Vec<Team>, DeskError> {
        Ok(store::list(store, actor.workspace_id, &RecordQuery::all()).await?)
    }

    fn decide(
        &self,
        actor: &Actor,
        teams: Vec<Team>,
        env: &Env<'_>,
    ) -> Result<Decided<SavedView>, DeskError> {
        check_author(actor)?;
        if self.sharing != Sharing::Personal && !may_share(actor) {
            return Err(DeskError::Forbidden("only managers and administrators share views".into()));
        }
        let view = SavedView {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: validate_title("name", &self.name, 200)?,
            owner: actor.user_id(),
            sharing: self.sharing.clone(),
            filter: self.filter.trim().to_string(),
            sort: self.sort.clone(),
            group_by: self.group_by.clone().filter(|g| !g.trim().is_empty()),
            columns: self.columns.clone(),
            layout: self.layout,
            created_at: env.now,
            updated_at: env.now,
            version: 1,
        };
        validate(&view, &teams)?;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::View, id: view.id.0, name: view.name.clone() },
        );
        changes.insert(Record::View(view.clone()));
        Ok(Decided { changes, output: view })
    }
}

/// A change to a view: absent fields stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sharing: Option<Sharing>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub sort: Option<Vec<SortSpec>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub group_by: Option<Option<String>>,
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    #[serde(default)]
    pub layout: Option<Layout>,
    #[serde(default)]
    pub version: Option<i64>,
}

/// Who may change or delete a view: its owner (sharing aside), managers for shared views,
/// administrators for any.
fn check_editor(actor: &Actor, view: &SavedView) -> Result<(), DeskError> {
    check_author(actor)?;
    let own = actor.user_id().is_some() && view.owner == actor.user_id();
    let shared_and_manager = view.sharing != Sharing::Personal && may_share(actor);
    if own || shared_and_manager || views_admin(actor) {
        return Ok(());
    }
    Err(DeskError::Forbidden("only its owner, or a manager for a shared view, changes a view".into()))
}

#[derive(Debug, Clone)]
pub struct UpdateView {
    pub view: ViewId,
    pub patch: ViewPatch,
}

impl Command for UpdateView {
    type State = (SavedView, Vec<Team>);
    type Output = SavedView;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let view = load::<SavedView>(store, actor.workspace_id, self.view).await?;
        Ok((view, store::list(store, actor.workspace_id, &RecordQuery::all()).await?))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, teams): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<SavedView>, DeskError> {
        let visible = views_admin(actor) || old.visible_to(actor.user_id(), &teams);
        if !visible {
            return Err(DeskError::not_found(format!("view {}", old.id)));
        }
        check_editor(actor, &old)?;
        let p = &self.patch;
        if let Some(v) = p.version
            && v != old.version
        {
            return Err(DeskError::Conflict(format!(
                "view {} is at version {}, not {v}; reload it and try again",
                old.id, old.version
            )));
        }
        let mut next = SavedView { updated_at: env.now, version: old.version + 1, ..old.clone() };
        if let Some(n) = &p.name {
            next.name = validate_title("name", n, 200)?;
        }
        if let Some(s) = &p.sharing {
            if *s != old.sharing && !may_share(actor) {
                return Err(DeskError::Forbidden("only managers and administrators share views".into()));
            }
            next.sharing = s.clone();
        }
        if let Some(f) = &p.filter {
            next.filter = f.trim().to_string();
        }
        if let Some(s) = &p.sort {
            next.sort = s.clone();
        }
        if let Some(g) = &p.group_by {
            next.group_by = g.clone().filter(|g| !g.trim().is_empty());
        }
        if let Some(c) = &p.columns {
            next.columns = c.clone();
        }
        if let Some(l) = p.layout {
            next.layout = l;
        }
        validate(&next, &teams)?;
        let mut changes = env.changes(actor);
        let mut field_changes = diff(&old, &next);
        field_changes.retain(|c| c.field != "updated_at");
        if field_changes.is_empty() {
            return Ok(Decided { changes, output: old });
        }
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::View, id: old.id.0, changes: field_changes },
        );
        changes.update(Record::View(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct DeleteView {
    pub view: ViewId,
}

impl Command for DeleteView {
    type State = (SavedView, Vec<Team>);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let view = load::<SavedView>(store, actor.workspace_id, self.view).await?;
        Ok((view, store::list(store, actor.workspace_id, &RecordQuery::all()).await?))
    }

    fn decide(
        &self,
        actor: &Actor,
        (view, teams): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        if !views_admin(actor) && !view.visible_to(actor.user_id(), &teams) {
            return Err(DeskError::not_found(format!("view {}", view.id)));
        }
        check_editor(actor, &view)?;
        let mut changes = env.changes(actor);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::View, id: view.id.0 });
        changes.delete(RecordKind::View, view.id.0, view.version);
        Ok(Decided { changes, output: () })
    }
}
