//! Items: create, update, transition, assign, follow, convert, link.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::access::{Action, Actor, Target, can, check_item};
use crate::change::{ChangeSet, CommitReceipt, Record, RecordKind};
use crate::desk::{Command, Decided, Env, ItemRef, load, load_item, load_opt};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::fields::{FieldDef, check_required, validate_value, validate_values};
use crate::hierarchy::{Folder, Project, validate_title};
use crate::ids::{FolderId, ItemId, ItemTypeId, LinkId, ProjectId, UserId};
use crate::item::{Assignee, Channel, Item, ItemKind, ItemLink, ItemType, LinkKind, Priority};
use crate::people::{Team, TokenScope, User};
use crate::planning::{DependencyTiming, PlanPatch};
use crate::store::Store;
use crate::workflow::Workflow;

use super::structure::validate_description;

const MAX_DEPTH: usize = 50;

fn api_channel() -> Channel {
    Channel::Api
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateItem {
    pub item_type: ItemTypeId,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub project: Option<ProjectId>,
    #[serde(default)]
    pub folder: Option<FolderId>,
    #[serde(default)]
    pub parent: Option<ItemId>,
    /// Defaults to the acting user.
    #[serde(default)]
    pub requester: Option<UserId>,
    #[serde(default)]
    pub assignees: Vec<Assignee>,
    #[serde(default)]
    pub followers: Vec<UserId>,
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The workflow's create default when absent.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub custom: BTreeMap<String, Value>,
    /// Set by the adapter the request came through, not by the request.
    #[serde(skip, default = "api_channel")]
    pub channel: Channel,
}

impl CreateItem {
    pub fn new(item_type: ItemTypeId, title: impl Into<String>) -> Self {
        Self {
            item_type,
            title: title.into(),
            description: String::new(),
            project: None,
            folder: None,
            parent: None,
            requester: None,
            assignees: Vec::new(),
            followers: Vec::new(),
            priority: None,
            status: None,
            custom: BTreeMap::new(),
            channel: Channel::Api,
        }
    }
}

/// The people, teams and places an item refers to, loaded so a decision can check them.
#[derive(Debug, Clone, Default)]
pub struct References {
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub project: Option<Project>,
    pub folder: Option<Folder>,
    /// The would-be parent and its ancestors, nearest first.
    pub ancestors: Vec<Item>,
}

impl References {
    fn user(&self, id: UserId) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }
}

async fn load_users(
    store: &dyn Store,
    actor: &Actor,
    ids: impl IntoIterator<Item = UserId>,
    refs: &mut References,
) -> Result<(), DeskError> {
    for id in ids {
        if refs.user(id).is_none()
            && let Some(u) = crate::store::get::<User>(store, actor.workspace_id, id.0).await?
        {
            refs.users.push(u);
        }
    }
    Ok(())
}

async fn load_teams(
    store: &dyn Store,
    actor: &Actor,
    assignees: &[Assignee],
    refs: &mut References,
) -> Result<(), DeskError> {
    for a in assignees {
        if let Assignee::Team(id) = a
            && let Some(t) = crate::store::get::<Team>(store, actor.workspace_id, id.0).await?
        {
            refs.teams.push(t);
        }
    }
    Ok(())
}

pub(super) async fn load_ancestors(
    store: &dyn Store,
    actor: &Actor,
    parent: Option<ItemId>,
) -> Result<Vec<Item>, DeskError> {
    let mut chain = Vec::new();
    let mut cursor = parent;
    while let Some(id) = cursor {
        if chain.len() > MAX_DEPTH {
            break;
        }
        let Some(item) = crate::store::get::<Item>(store, actor.workspace_id, id.0).await? else {
            if chain.is_empty() {
                return Err(Invalid::new("parent", format!("no item {id}")).into());
            }
            break;
        };
        cursor = item.parent;
        chain.push(item);
    }
    Ok(chain)
}

fn assigned_users(assignees: &[Assignee]) -> Vec<UserId> {
    assignees
        .iter()
        .filter_map(|a| match a {
            Assignee::User(u) => Some(*u),
            Assignee::Team(_) => None,
        })
        .collect()
}

fn check_user(refs: &References, id: UserId, field: &str) -> Result<(), Invalid> {
    match refs.user(id) {
        Some(u) if u.active => Ok(()),
        Some(u) => Err(Invalid::new(field, format!("{} is disabled", u.name))),
        None => Err(Invalid::new(field, format!("no user {id}"))),
    }
}

fn check_assignees(refs: &References, assignees: &[Assignee]) -> Result<Vec<Assignee>, Invalid> {
    let mut out = Vec::new();
    for (i, a) in assignees.iter().enumerate() {
        let field = format!("assignees[{i}]");
        match a {
            Assignee::User(id) => {
                check_user(refs, *id, &field)?;
                if refs.user(*id).is_some_and(|u| !u.role.is_staff()) {
                    return Err(Invalid::new(field, "customers cannot be assigned"));
                }
            }
            Assignee::Team(id) => {
                if !refs.teams.iter().any(|t| t.id == *id) {
                    return Err(Invalid::new(field, format!("no team {id}")));
                }
            }
        }
        if !out.contains(a) {
            out.push(*a);
        }
    }
    Ok(out)
}

fn check_followers(refs: &References, followers: &[UserId]) -> Result<Vec<UserId>, Invalid> {
    let mut out = Vec::new();
    for (i, id) in followers.iter().enumerate() {
        check_user(refs, *id, &format!("followers[{i}]"))?;
        if !out.contains(id) {
            out.push(*id);
        }
    }
    Ok(out)
}

/// Project and folder must agree: a folder implies its project.
fn place(
    refs: &References,
    project: Option<ProjectId>,
    folder: Option<FolderId>,
) -> Result<(Option<ProjectId>, Option<FolderId>), Invalid> {
    if let Some(p) = project
        && refs.project.as_ref().is_none_or(|x| x.id != p)
    {
        return Err(Invalid::new("project", format!("no project {p}")));
    }
    if let Some(p) = &refs.project
        && p.archived
    {
        return Err(Invalid::new("project", format!("project '{}' is archived", p.name)));
    }
    match (folder, &refs.folder) {
        (None, _) => Ok((project, None)),
        (Some(f), Some(folder)) if folder.id == f => {
            if project.is_some_and(|p| p != folder.project) {
                return Err(Invalid::new("folder", "the folder belongs to another project"));
            }
            Ok((Some(folder.project), Some(f)))
        }
        (Some(f), _) => Err(Invalid::new("folder", format!("no folder {f}"))),
    }
}

fn check_parent(item: ItemId, ancestors: &[Item]) -> Result<(), Invalid> {
    if ancestors.iter().any(|a| a.id == item) {
        return Err(Invalid::new("parent", "an item cannot be nested inside itself"));
    }
    if ancestors.len() >= MAX_DEPTH {
        return Err(Invalid::new("parent", format!("items nest at most {MAX_DEPTH} levels deep")));
    }
    Ok(())
}

/// Fields a customer may fill in: the type's fields minus internal ones.
fn fields_for(actor: &Actor, t: &ItemType) -> Vec<FieldDef> {
    t.fields.iter().filter(|f| actor.is_staff() || !f.internal).cloned().collect()
}

fn status_category(workflow: &Workflow, status: &str) -> Result<crate::workflow::StatusCategory, Invalid> {
    workflow
        .status(status)
        .map(|s| s.category)
        .ok_or_else(|| Invalid::new("status", format!("no status with key '{status}' in this workflow")))
}

impl Command for CreateItem {
    type State = (ItemType, References);
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let t = crate::store::get::<ItemType>(store, ws, self.item_type.0)
            .await?
            .ok_or_else(|| Invalid::new("item_type", format!("no item type {}", self.item_type)))?;
        let mut refs = References {
            project: load_opt::<Project>(store, ws, self.project)
                .await
                .map_err(|_| missing("project", self.project))?,
            folder: load_opt::<Folder>(store, ws, self.folder)
                .await
                .map_err(|_| missing("folder", self.folder))?,
            ancestors: load_ancestors(store, actor, self.parent).await?,
            ..Default::default()
        };
        if refs.project.is_none()
            && let Some(f) = &refs.folder
        {
            refs.project = load_opt::<Project>(store, ws, Some(f.project)).await?;
        }
        let users: Vec<UserId> = self
            .requester
            .into_iter()
            .chain(self.followers.iter().copied())
            .chain(assigned_users(&self.assignees))
            .collect();
        load_users(store, actor, users, &mut refs).await?;
        load_teams(store, actor, &self.assignees, &mut refs).await?;
        Ok((t, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (t, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Item>, DeskError> {
        can(actor, Action::CreateItem, Target::Workspace).into_result()?;
        if !actor.is_staff() {
            for (field, set) in [
                ("assignees", !self.assignees.is_empty()),
                ("followers", !self.followers.is_empty()),
                ("status", self.status.is_some()),
                ("priority", self.priority.is_some()),
                ("project", self.project.is_some()),
                ("folder", self.folder.is_some()),
                ("requester", self.requester.is_some_and(|r| Some(r) != actor.user_id())),
            ] {
                if set {
                    return Err(DeskError::Forbidden(format!("customers cannot set {field}")));
                }
            }
        }
        let id: ItemId = env.new_id();
        let title = validate_title("title", &self.title, 300)?;
        let description = validate_description(&self.description)?;
        let (project, folder) = place(&refs, self.project, self.folder)?;
        if self.parent.is_some() {
            check_parent(id, &refs.ancestors)?;
            // Nesting under an item touches it: only under items the actor may see.
            if let Some(parent) = refs.ancestors.first()
                && !can(actor, Action::ViewItem, Target::Item(parent)).allowed
            {
                return Err(Invalid::new("parent", format!("no item {}", parent.id)).into());
            }
        }
        let requester = self.requester.or(actor.user_id());
        // The acting user is not among the loaded references (`load` reads only the people the
        // request names); `can` has already checked that their account is active.
        if let Some(r) = requester.filter(|r| Some(*r) != actor.user_id()) {
            check_user(&refs, r, "requester")?;
        }
        let assignees = check_assignees(&refs, &self.assignees)?;
        let mut followers = check_followers(&refs, &self.followers)?;
        if let Some(r) = requester
            && !followers.contains(&r)
        {
            followers.insert(0, r);
        }
        let status = self.status.clone().unwrap_or_else(|| t.workflow.defaults.create.clone());
        let category = status_category(&t.workflow, &status)?;
        let custom = validate_values(&fields_for(actor, &t), &BTreeMap::new(), &self.custom)?;
        let item = Item {
            id,
            workspace_id: actor.workspace_id,
            number: 0,
            item_type: t.id,
            kind: t.kind,
            title,
            description,
            project,
            folder,
            parent: self.parent,
            requester,
            assignees,
            followers,
            priority: self.priority.unwrap_or(Priority::Normal),
            status: status.clone(),
            category,
            custom,
            channel: self.channel,
            created_by: actor.reference(),
            created_at: env.now,
            updated_at: env.now,
            done_at: category.is_done().then_some(env.now),
            plan: Default::default(),
            version: 1,
        };
        // Collaborators file items only into projects they work on.
        can(actor, Action::CreateItem, Target::Item(&item)).into_result()?;
        let mut changes = env.changes(actor);
        changes.insert(Record::Item(item.clone()));
        changes.event(
            Some(id),
            EventData::ItemCreated {
                item_type: t.id,
                kind: t.kind,
                title: item.title.clone(),
                status,
                requester,
                channel: self.channel,
            },
        );
        Ok(Decided { changes, output: item })
    }

    fn finish(mut item: Item, receipt: &CommitReceipt) -> Item {
        if let Some(n) = receipt.number_of(item.id) {
            item.number = n;
        }
        item
    }
}

fn missing(field: &str, id: Option<impl std::fmt::Display>) -> DeskError {
    Invalid::new(field, format!("no {field} {}", id.map(|i| i.to_string()).unwrap_or_default())).into()
}

/// Checks a client's expected version against the stored one (409 when stale).
fn check_version(item: &Item, expected: Option<i64>) -> Result<(), DeskError> {
    match expected {
        Some(v) if v != item.version => Err(DeskError::Conflict(format!(
            "item #{} is at version {}, not {v}; reload it and try again",
            item.number, item.version
        ))),
        _ => Ok(()),
    }
}

/// The next version of an item, touched now.
pub(crate) fn touched(item: &Item, env: &Env<'_>) -> Item {
    Item { updated_at: env.now, version: item.version + 1, ..item.clone() }
}

/// Writes an item update and its `ItemUpdated` event (when a user-visible field changed).
pub(crate) fn save_item(changes: &mut ChangeSet, old: &Item, next: Item) {
    let mut field_changes = diff(old, &next);
    // Status, assignees, followers and type have events of their own.
    field_changes.retain(|c| {
        !matches!(
            c.field.as_str(),
            "status" | "category" | "done_at" | "assignees" | "followers" | "item_type" | "kind"
        )
    });
    if !field_changes.is_empty() {
        changes.event(Some(old.id), EventData::ItemUpdated { changes: field_changes });
    }
    changes.update(Record::Item(next), old.version);
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub project: Option<Option<ProjectId>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub folder: Option<Option<FolderId>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub parent: Option<Option<ItemId>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub requester: Option<Option<UserId>>,
    /// Values to set; `null` clears one.
    #[serde(default)]
    pub custom: BTreeMap<String, Value>,
    /// Planning fields to change (tasks only).
    #[serde(default)]
    pub plan: Option<PlanPatch>,
    /// The version the client last read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i64>,
}

/// The folder after a patch: moving to another project alone leaves the old folder behind;
/// naming the project the item is already in is no move.
fn new_folder(p: &ItemPatch, item: &Item) -> Option<FolderId> {
    let moves_project = p.project.is_some_and(|project| project != item.project);
    p.folder.unwrap_or(if moves_project { None } else { item.folder })
}

/// The project after a patch: named explicitly, or implied by the new folder.
fn new_project(p: &ItemPatch, item: &Item, folder: Option<&Folder>) -> Option<ProjectId> {
    match (p.project, folder) {
        (Some(project), _) => project,
        (None, Some(f)) => Some(f.project),
        (None, None) => item.project,
    }
}

#[derive(Debug, Clone)]
pub struct UpdateItem {
    pub item: ItemRef,
    pub patch: ItemPatch,
}

impl Command for UpdateItem {
    type State = (Item, ItemType, References);
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let item = load_item(store, ws, self.item).await?;
        let t = load::<ItemType>(store, ws, item.item_type).await?;
        let p = &self.patch;
        let mut refs = References {
            ancestors: match p.parent {
                Some(parent) => load_ancestors(store, actor, parent).await?,
                None => Vec::new(),
            },
            ..Default::default()
        };
        if p.project.is_some() || p.folder.is_some() {
            let folder = new_folder(p, &item);
            refs.folder =
                load_opt::<Folder>(store, ws, folder).await.map_err(|_| missing("folder", folder))?;
            let project = new_project(p, &item, refs.folder.as_ref());
            refs.project =
                load_opt::<Project>(store, ws, project).await.map_err(|_| missing("project", project))?;
        }
        let resource = p.plan.as_ref().and_then(|plan| plan.resource.flatten());
        load_users(store, actor, p.requester.flatten().into_iter().chain(resource), &mut refs).await?;
        Ok((item, t, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, t, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Item>, DeskError> {
        check_item(actor, Action::EditItem, &old)?;
        check_version(&old, self.patch.version)?;
        let p = &self.patch;
        let mut next = touched(&old, env);
        if let Some(title) = &p.title {
            next.title = validate_title("title", title, 300)?;
        }
        if let Some(d) = &p.description {
            next.description = validate_description(d)?;
        }
        if let Some(priority) = p.priority {
            next.priority = priority;
        }
        if p.project.is_some() || p.folder.is_some() {
            let folder = new_folder(p, &old);
            (next.project, next.folder) = place(&refs, new_project(p, &old, refs.folder.as_ref()), folder)?;
        }
        if let Some(parent) = p.parent {
            if parent.is_some() {
                check_parent(old.id, &refs.ancestors)?;
            }
            next.parent = parent;
        }
        if let Some(requester) = p.requester {
            if let Some(r) = requester {
                check_user(&refs, r, "requester")?;
                if !next.followers.contains(&r) {
                    next.followers.push(r);
                }
            }
            next.requester = requester;
        }
        if !p.custom.is_empty() {
            next.custom = validate_values(&fields_for(actor, &t), &old.custom, &p.custom)?;
        }
        if let Some(plan) = &p.plan {
            if old.kind != ItemKind::Task {
                return Err(Invalid::new(
                    "plan",
                    "only tasks are planned; convert the ticket to a task first",
                )
                .into());
            }
            if let Some(Some(r)) = plan.resource {
                check_user(&refs, r, "plan.resource")?;
            }
            next.plan = plan.apply(&old.plan)?;
        }
        let mut changes = env.changes(actor);
        if next.followers != old.followers {
            let added = next.followers.iter().filter(|f| !old.followers.contains(f)).copied().collect();
            changes.event(Some(old.id), EventData::FollowersChanged { added, removed: vec![] });
        }
        save_item(&mut changes, &old, next.clone());
        Ok(Decided { changes, output: next })
    }
}

/// Where a transition goes: a named status, or the workflow's close default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionTo {
    Status(String),
    Close,
}

#[derive(Debug, Clone)]
pub struct TransitionItem {
    pub item: ItemRef,
    pub to: TransitionTo,
    pub version: Option<i64>,
}

/// Moves an item to `status` (already checked against the workflow), with its event.
pub(crate) fn move_to_status(
    changes: &mut ChangeSet,
    item: &mut Item,
    workflow: &Workflow,
    status: &str,
    env: &Env<'_>,
) {
    let Some(target) = workflow.status(status) else { return };
    let from = std::mem::replace(&mut item.status, target.key.clone());
    let from_category = std::mem::replace(&mut item.category, target.category);
    item.done_at = match (from_category.is_done(), target.category.is_done()) {
        (false, true) => Some(env.now),
        (_, false) => None,
        (true, true) => item.done_at,
    };
    changes.event(
        Some(item.id),
        EventData::StatusChanged {
            from,
            to: target.key.clone(),
            from_category,
            to_category: target.category,
        },
    );
}

impl Command for TransitionItem {
    type State = (Item, ItemType);
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let t = load::<ItemType>(store, actor.workspace_id, item.item_type).await?;
        Ok((item, t))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, t): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Item>, DeskError> {
        check_item(actor, Action::TransitionItem, &old)?;
        check_version(&old, self.version)?;
        let to = match &self.to {
            TransitionTo::Status(s) => s.clone(),
            TransitionTo::Close => t.workflow.defaults.close.clone(),
        };
        t.workflow.can_transition(&old.status, &to)?;
        let mut next = touched(&old, env);
        let mut changes = env.changes(actor);
        move_to_status(&mut changes, &mut next, &t.workflow, &to, env);
        changes.update(Record::Item(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct SetAssignees {
    pub item: ItemRef,
    pub assignees: Vec<Assignee>,
    pub version: Option<i64>,
}

impl Command for SetAssignees {
    type State = (Item, References);
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let mut refs = References::default();
        load_users(store, actor, assigned_users(&self.assignees), &mut refs).await?;
        load_teams(store, actor, &self.assignees, &mut refs).await?;
        Ok((item, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Item>, DeskError> {
        check_item(actor, Action::AssignItem, &old)?;
        check_version(&old, self.version)?;
        let assignees = check_assignees(&refs, &self.assignees)?;
        let added: Vec<Assignee> = assignees.iter().filter(|a| !old.assignees.contains(a)).copied().collect();
        let removed: Vec<Assignee> =
            old.assignees.iter().filter(|a| !assignees.contains(a)).copied().collect();
        let mut changes = env.changes(actor);
        if added.is_empty() && removed.is_empty() {
            return Ok(Decided { changes, output: old });
        }
        let next = Item { assignees, ..touched(&old, env) };
        changes.event(Some(old.id), EventData::AssigneesChanged { added, removed });
        changes.update(Record::Item(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct ChangeFollowers {
    pub item: ItemRef,
    pub add: Vec<UserId>,
    pub remove: Vec<UserId>,
}

impl Command for ChangeFollowers {
    type State = (Item, References);
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let mut refs = References::default();
        load_users(store, actor, self.add.iter().copied(), &mut refs).await?;
        Ok((item, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Item>, DeskError> {
        let only_self = self.add.iter().chain(&self.remove).all(|u| Some(*u) == actor.user_id());
        if only_self && actor.is_staff() {
            check_item(actor, Action::ViewItem, &old)?;
            // Following is a write even when seeing the item is enough to be allowed it.
            if actor.scope < TokenScope::Write {
                return Err(DeskError::Forbidden(format!(
                    "this token's scope is {:?}; following an item needs {:?}",
                    actor.scope,
                    TokenScope::Write
                )));
            }
        } else {
            check_item(actor, Action::ManageFollowers, &old)?;
        }
        let add = check_followers(&refs, &self.add)
            .map_err(|e| Invalid::new(e.field.replace("followers", "add"), e.reason))?;
        let mut next = touched(&old, env);
        next.followers.retain(|f| !self.remove.contains(f));
        for u in &add {
            if !next.followers.contains(u) {
                next.followers.push(*u);
            }
        }
        let added: Vec<UserId> =
            next.followers.iter().filter(|f| !old.followers.contains(f)).copied().collect();
        let removed: Vec<UserId> =
            old.followers.iter().filter(|f| !next.followers.contains(f)).copied().collect();
        let mut changes = env.changes(actor);
        if added.is_empty() && removed.is_empty() {
            return Ok(Decided { changes, output: old });
        }
        changes.event(Some(old.id), EventData::FollowersChanged { added, removed });
        changes.update(Record::Item(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Converts an item to another type — typically a ticket into a project task or back. The item
/// keeps its id, number, conversation, attachments, followers and links; its status moves to the
/// target workflow's status of the same category. Values of fields the target type lacks are
/// kept (hidden) so converting back restores them.
#[derive(Debug, Clone)]
pub struct ConvertItem {
    pub item: ItemRef,
    pub to_type: ItemTypeId,
    /// Values for the target type's fields (e.g. required ones the source lacked).
    pub custom: BTreeMap<String, Value>,
    pub version: Option<i64>,
}

impl Command for ConvertItem {
    type State = (Item, ItemType, ItemType);
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let from = load::<ItemType>(store, actor.workspace_id, item.item_type).await?;
        let to = crate::store::get::<ItemType>(store, actor.workspace_id, self.to_type.0)
            .await?
            .ok_or_else(|| Invalid::new("item_type", format!("no item type {}", self.to_type)))?;
        Ok((item, from, to))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, from, to): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Item>, DeskError> {
        check_item(actor, Action::ConvertItem, &old)?;
        check_version(&old, self.version)?;
        if from.id == to.id {
            return Err(Invalid::new("item_type", "the item already has this type").into());
        }
        // Carried-over values must still be valid under the target's definitions.
        let mut custom = old.custom.clone();
        for def in &to.fields {
            if self.custom.contains_key(&def.key) {
                continue;
            }
            if let Some(value) = old.custom.get(&def.key) {
                match validate_value(def, value) {
                    Ok(v) => {
                        custom.insert(def.key.clone(), v);
                    }
                    Err(e) => {
                        return Err(Invalid::new(
                            format!("custom.{}", def.key),
                            format!(
                                "the current value does not fit the target type ({}); supply a new one",
                                e.reason
                            ),
                        )
                        .into());
                    }
                }
            }
        }
        let custom = validate_values(&fields_for(actor, &to), &custom, &self.custom)?;
        check_required(&to.fields, &custom)?;
        let target = to.workflow.map_category(old.category);
        let mut next = touched(&old, env);
        next.item_type = to.id;
        next.kind = to.kind;
        next.custom = custom;
        next.status = target.key.clone();
        next.category = target.category;
        next.done_at = if target.category.is_done() { old.done_at.or(Some(env.now)) } else { None };
        let mut changes = env.changes(actor);
        changes.event(
            Some(old.id),
            EventData::ItemConverted {
                from_type: from.id,
                to_type: to.id,
                from_kind: from.kind,
                to_kind: to.kind,
                from_status: old.status.clone(),
                to_status: next.status.clone(),
            },
        );
        save_item(&mut changes, &old, next.clone());
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct LinkItems {
    pub from: ItemRef,
    pub to: ItemRef,
    pub kind: LinkKind,
    /// For `blocks` links: the scheduling dependency's type and lag (finish-to-start, no lag when
    /// absent). Linking an existing pair again with other timing changes the timing.
    pub dependency: Option<DependencyTiming>,
}

impl Command for LinkItems {
    type State = (Item, Item, Vec<ItemLink>);
    type Output = ItemLink;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let from = load_item(store, actor.workspace_id, self.from).await?;
        let to = load_item(store, actor.workspace_id, self.to)
            .await
            .map_err(|_| Invalid::new("to", format!("no {}", self.to)))?;
        let links = store.links(actor.workspace_id, from.id).await?;
        Ok((from, to, links))
    }

    fn decide(
        &self,
        actor: &Actor,
        (from, to, links): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<ItemLink>, DeskError> {
        check_item(actor, Action::LinkItems, &from)?;
        check_item(actor, Action::LinkItems, &to)?;
        if from.id == to.id {
            return Err(Invalid::new("to", "an item cannot be linked to itself").into());
        }
        let same = |l: &ItemLink| {
            l.kind == self.kind
                && ((l.from == from.id && l.to == to.id)
                    || (self.kind == LinkKind::Relates && l.from == to.id && l.to == from.id))
        };
        if let Some(timing) = self.dependency {
            if self.kind != LinkKind::Blocks {
                return Err(Invalid::new("dependency", "only blocks links schedule their items").into());
            }
            timing.validate()?;
        }
        if let Some(existing) = links.iter().find(|l| same(l)) {
            let mut changes = env.changes(actor);
            if self.dependency.is_none() || existing.dependency == self.dependency {
                return Ok(Decided { changes, output: existing.clone() });
            }
            let next =
                ItemLink { dependency: self.dependency, version: existing.version + 1, ..existing.clone() };
            changes.event(
                Some(from.id),
                EventData::RecordUpdated {
                    record: RecordKind::Link,
                    id: existing.id.0,
                    changes: diff(existing, &next),
                },
            );
            changes.update(Record::Link(next.clone()), existing.version);
            return Ok(Decided { changes, output: next });
        }
        let link = ItemLink {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            from: from.id,
            to: to.id,
            kind: self.kind,
            dependency: self.dependency,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        let data = EventData::ItemLinked { link: link.id, kind: link.kind, from: from.id, to: to.id };
        changes.event(Some(from.id), data.clone());
        changes.event(Some(to.id), data);
        changes.insert(Record::Link(link.clone()));
        Ok(Decided { changes, output: link })
    }
}

#[derive(Debug, Clone)]
pub struct UnlinkItems {
    pub link: LinkId,
}

impl Command for UnlinkItems {
    type State = (ItemLink, Item);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let link = load::<ItemLink>(store, actor.workspace_id, self.link).await?;
        let from = load::<Item>(store, actor.workspace_id, link.from).await?;
        Ok((link, from))
    }

    fn decide(
        &self,
        actor: &Actor,
        (link, from): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check_item(actor, Action::LinkItems, &from)?;
        let mut changes = env.changes(actor);
        let data = EventData::ItemUnlinked { link: link.id, kind: link.kind, from: link.from, to: link.to };
        changes.event(Some(link.from), data.clone());
        changes.event(Some(link.to), data);
        changes.delete(RecordKind::Link, link.id.0, link.version);
        Ok(Decided { changes, output: () })
    }
}
