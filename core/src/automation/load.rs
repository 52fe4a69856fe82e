//! Reads what the rules need for one change set (the only part of automations that touches the
//! store; it runs in `Desk` between `decide` and `commit`, inside the conflict-retry loop).

use std::collections::BTreeSet;

use super::engine::World;
use super::{Action, AssignTo, AutomationState, Rule};
use crate::change::{ChangeSet, Record, Write};
use crate::error::StoreError;
use crate::hierarchy::{Folder, Project};
use crate::ids::{ItemId, TeamId, UserId, WorkspaceId};
use crate::item::{ActorRef, Assignee, Item, ItemType};
use crate::people::{Team, User};
use crate::store::{self, ItemFilter, ItemQuery, ItemScope, RecordQuery, Store};
use crate::workflow::StatusCategory;

/// Open items counted per member for "least open items" (beyond this it is "many").
const OPEN_COUNT_CAP: usize = 500;

/// The enabled rules of a workspace in position order.
pub async fn enabled_rules(store: &dyn Store, ws: WorkspaceId) -> Result<Vec<Rule>, StoreError> {
    let mut rules: Vec<Rule> = store::list::<Rule>(store, ws, &RecordQuery::all()).await?;
    rules.retain(|r| r.enabled);
    rules.sort_by_key(|r| (r.position, r.id));
    Ok(rules)
}

/// Loads the world for a change set's events (plus `extra` items, for time-based firings);
/// `None` when no item event needs it or the workspace has no enabled rule.
pub async fn load_world(
    store: &dyn Store,
    ws: WorkspaceId,
    changes: &ChangeSet,
    extra: &[ItemId],
) -> Result<Option<World>, StoreError> {
    let mut item_ids: BTreeSet<ItemId> = changes.events.iter().filter_map(|e| e.item).collect();
    item_ids.extend(extra.iter().copied());
    if item_ids.is_empty() {
        return Ok(None);
    }
    let rules = enabled_rules(store, ws).await?;
    if rules.is_empty() {
        return Ok(None);
    }
    load_world_for(store, ws, rules, changes, &item_ids).await.map(Some)
}

/// Loads a world for the given rules and items (also used by the dry run).
pub(crate) async fn load_world_for(
    store: &dyn Store,
    ws: WorkspaceId,
    rules: Vec<Rule>,
    changes: &ChangeSet,
    item_ids: &BTreeSet<ItemId>,
) -> Result<World, StoreError> {
    let mut world = World { rules, ..Default::default() };
    let written: Vec<&Item> = changes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { record: Record::Item(i), .. } => Some(i),
            _ => None,
        })
        .collect();
    let mut items: Vec<Item> = written.iter().map(|i| (*i).clone()).collect();
    for id in item_ids {
        if let Some(stored) = store::get::<Item>(store, ws, id.0).await? {
            if !written.iter().any(|w| w.id == *id) {
                items.push(stored.clone());
            }
            world.items.insert(*id, stored);
        }
    }
    for t in store::list::<ItemType>(store, ws, &RecordQuery::all()).await? {
        world.item_types.insert(t.id, t);
    }

    let mut users: BTreeSet<UserId> = BTreeSet::new();
    let mut teams: BTreeSet<TeamId> = BTreeSet::new();
    let mut least_open: BTreeSet<TeamId> = BTreeSet::new();
    for item in &items {
        users.extend(item.requester);
        users.extend(item.assigned_users());
    }
    if let ActorRef::User(u) = changes.actor {
        users.insert(u);
    }
    for w in &changes.writes {
        if let Write::Put { record: Record::Message(m), .. } = w
            && let ActorRef::User(u) = m.author
        {
            users.insert(u);
        }
    }
    for rule in &world.rules {
        for action in &rule.actions {
            match action {
                Action::Assign { to } => match to {
                    AssignTo::User { user } => {
                        users.insert(*user);
                    }
                    AssignTo::Team { team } | AssignTo::RoundRobin { team } => {
                        teams.insert(*team);
                    }
                    AssignTo::LeastOpen { team } => {
                        teams.insert(*team);
                        least_open.insert(*team);
                    }
                },
                Action::AddFollowers { users: u, .. } | Action::RemoveFollowers { users: u } => {
                    users.extend(u.iter().copied())
                }
                Action::Notify { users: u, .. } => users.extend(u.iter().copied()),
                Action::MoveTo { project, folder } => {
                    if let Some(p) = store::get::<Project>(store, ws, project.0).await? {
                        world.projects.insert(p.id, p);
                    }
                    if let Some(f) = folder
                        && let Some(f) = store::get::<Folder>(store, ws, f.0).await?
                    {
                        world.folders.insert(f.id, f);
                    }
                }
                _ => {}
            }
        }
    }
    for team in teams {
        if let Some(t) = store::get::<Team>(store, ws, team.0).await? {
            users.extend(t.members.iter().copied());
            world.teams.insert(t.id, t);
        }
    }
    for user in users {
        if let Some(u) = store::get::<User>(store, ws, user.0).await? {
            world.users.insert(u.id, u);
        }
    }
    for team in least_open {
        let members = world.teams.get(&team).map(|t| t.members.clone()).unwrap_or_default();
        for m in members {
            let mut query = ItemQuery::new(ItemScope::All);
            query.filter = ItemFilter {
                assignee: Some(Assignee::User(m)),
                categories: vec![
                    StatusCategory::New,
                    StatusCategory::Open,
                    StatusCategory::InProgress,
                    StatusCategory::Waiting,
                ],
                ..Default::default()
            };
            query.limit = OPEN_COUNT_CAP;
            let page = store.items(ws, &query).await?;
            world.open_items.insert(m, page.items.len() as u64);
        }
    }
    world.state = store::get::<AutomationState>(store, ws, ws.0).await?;
    Ok(world)
}
