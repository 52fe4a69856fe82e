//! Items: create, update, transition, assign, follow, convert, link.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::items::References;
use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::desk::ItemRef;
use crate::event::EventData;
use crate::hierarchy::{Folder, Project};
use crate::ids::{FolderId, ItemId, ProjectId, TeamId, UserId};
use crate::item::{ActorRef, Assignee, Channel, Item, ItemKind, ItemLink, ItemType, LinkKind, Priority};
use crate::people::{Team, User};
use crate::workflow::StatusCategory;

fn nobody() -> UserId {
    UserId(uuid::Uuid::from_u128(0xDEAD))
}

fn id(item: &Item) -> ItemRef {
    ItemRef::Id(item.id)
}

fn custom(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The users and teams `load` finds among the ids a command names (unknown ones are left out).
fn refs_for(w: &World, users: impl IntoIterator<Item = UserId>, assignees: &[Assignee]) -> References {
    let mut refs = References::default();
    for u in users {
        if !refs.users.iter().any(|x| x.id == u)
            && let Some(user) = w.get::<User>(u)
        {
            refs.users.push(user);
        }
    }
    for a in assignees {
        if let Assignee::Team(t) = a
            && let Some(team) = w.get::<Team>(*t)
        {
            refs.teams.push(team);
        }
    }
    refs
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

/// What `CreateItem::load` reads: the type, the named project and folder (the folder's project
/// when only a folder is named), the parent's ancestry, and the requester, followers and
/// assignees it names.
fn create_state(w: &World, c: &CreateItem) -> (ItemType, References) {
    let users =
        c.requester.into_iter().chain(c.followers.iter().copied()).chain(assigned_users(&c.assignees));
    let mut refs = refs_for(w, users, &c.assignees);
    refs.folder = c.folder.and_then(|f| w.get::<Folder>(f));
    refs.project = c.project.or(refs.folder.as_ref().map(|f| f.project)).and_then(|p| w.get::<Project>(p));
    refs.ancestors = w.ancestors(c.parent);
    (w.get(c.item_type).unwrap(), refs)
}

fn new(t: &ItemType, title: &str) -> CreateItem {
    CreateItem::new(t.id, title)
}

fn created() -> Expect<Item> {
    ok(&["+item:new1"], &["item.created@new1"])
}

#[test]
fn create_item() {
    let w = World::new();
    let purchase =
        |pairs: &[(&str, Value)]| CreateItem { custom: custom(pairs), ..new(&w.purchase, "Laptops") };
    let unknown_team = Assignee::Team(TeamId(uuid::Uuid::from_u128(0xBEEF)));
    table(
        &w,
        create_state,
        vec![
            (
                Agent,
                new(&w.ticket, "  Printer down "),
                created().then(|w, i| {
                    assert_eq!(i.id, ItemId(uuid::Uuid::from_u128(1)));
                    assert_eq!(
                        (i.title.as_str(), i.kind, i.item_type),
                        ("Printer down", ItemKind::Ticket, w.ticket.id)
                    );
                    assert_eq!(
                        (i.requester, i.followers.as_slice()),
                        (Some(w.agent.id), [w.agent.id].as_slice())
                    );
                    assert_eq!(
                        (i.status.as_str(), i.category, i.done_at),
                        ("triage", StatusCategory::New, None)
                    );
                    assert_eq!(
                        (i.priority, i.number, i.version, i.channel),
                        (Priority::Normal, 0, 1, Channel::Api)
                    );
                    assert_eq!(
                        (i.created_by, i.created_at, i.updated_at),
                        (ActorRef::User(w.agent.id), now(), now())
                    );
                }),
            ),
            // The requester follows their own request.
            (
                CustomerA,
                new(&w.ticket, "Help"),
                created().then(|w, i| {
                    assert_eq!(
                        (i.requester, i.followers.as_slice()),
                        (Some(w.customer_a.id), [w.customer_a.id].as_slice())
                    );
                }),
            ),
            (CustomerA, new(&w.ticket, "Help").requester(w.customer_a.id), created()),
            (
                ServerAdmin,
                new(&w.ticket, "From the API"),
                created().then(|_, i| assert_eq!((i.requester, i.followers.len()), (None, 0))),
            ),
            (
                System,
                new(&w.ticket, "By mail").requester(w.customer_b.id).via(Channel::Email),
                created().then(|w, i| {
                    assert_eq!(
                        (i.requester, i.followers.as_slice()),
                        (Some(w.customer_b.id), [w.customer_b.id].as_slice())
                    );
                    assert_eq!((i.created_by, i.channel), (ActorRef::System, Channel::Email));
                }),
            ),
            (
                Agent,
                new(&w.ticket, "On behalf")
                    .requester(w.customer_a.id)
                    .followers(vec![w.collaborator.id, w.collaborator.id])
                    .assignees(vec![
                        Assignee::User(w.agent.id),
                        Assignee::Team(w.team.id),
                        Assignee::User(w.agent.id),
                    ])
                    .priority(Priority::High),
                created().then(|w, i| {
                    assert_eq!(i.followers, [w.customer_a.id, w.collaborator.id]);
                    assert_eq!(i.assignees, [Assignee::User(w.agent.id), Assignee::Team(w.team.id)]);
                    assert_eq!((i.requester, i.priority), (Some(w.customer_a.id), Priority::High));
                }),
            ),
            (Collaborator, new(&w.ticket, "Noticed something"), forbidden("projects they belong to")),
            (
                Agent,
                new(&w.ticket, "Started").status("execution"),
                created()
                    .then(|_, i| assert_eq!((i.category, i.done_at), (StatusCategory::InProgress, None))),
            ),
            (
                Agent,
                new(&w.ticket, "Already done").status("delivery"),
                created().then(|_, i| {
                    assert_eq!((i.category, i.done_at), (StatusCategory::Resolved, Some(now())))
                }),
            ),
            (
                Agent,
                new(&w.task, "A task"),
                created().then(|_, i| assert_eq!((i.kind, i.status.as_str()), (ItemKind::Task, "todo"))),
            ),
            (Agent, new(&w.ticket, "x").status("doing"), invalid("status", "no status")),
            (Agent, new(&w.ticket, "   "), invalid("title", "empty")),
            (Agent, new(&w.ticket, &"x".repeat(301)), invalid("title", "at most 300")),
            (Agent, new(&w.ticket, "Long").described("x".repeat(100_001)), invalid("description", "at most")),
            // People and teams.
            (
                Agent,
                new(&w.ticket, "x")
                    .assignees(vec![Assignee::User(w.agent.id), Assignee::User(w.customer_b.id)]),
                invalid("assignees[1]", "customers cannot be assigned"),
            ),
            (Agent, new(&w.ticket, "x").assignees(vec![unknown_team]), invalid("assignees[0]", "no team")),
            (
                Agent,
                new(&w.ticket, "x").assignees(vec![Assignee::User(w.disabled.id)]),
                invalid("assignees[0]", "disabled"),
            ),
            (
                Agent,
                new(&w.ticket, "x").followers(vec![w.agent.id, nobody()]),
                invalid("followers[1]", "no user"),
            ),
            (Agent, new(&w.ticket, "x").requester(w.disabled.id), invalid("requester", "disabled")),
            (Agent, new(&w.ticket, "x").requester(nobody()), invalid("requester", "no user")),
            // Custom fields.
            (
                Agent,
                purchase(&[
                    ("budget", json!("250")),
                    ("category", json!(" Software ")),
                    ("cost_centre", json!("CC-0001")),
                    ("needed_by", json!("2026-04-01")),
                    ("approver", json!(w.manager.id.to_string())),
                ]),
                created().then(|w, i| {
                    assert_eq!(i.custom["budget"], json!(250.0));
                    assert_eq!(i.custom["category"], json!("Software"));
                    assert_eq!(i.custom["approver"], json!(w.manager.id.to_string()));
                    assert_eq!(i.custom.len(), 5);
                }),
            ),
            (Agent, purchase(&[]), invalid("custom.budget", "'Budget' is required")),
            (Agent, purchase(&[("budget", Value::Null)]), invalid("custom.budget", "required")),
            (Agent, purchase(&[("budget", json!(-1))]), invalid("custom.budget", "at least 0")),
            (Agent, purchase(&[("budget", json!("lots"))]), invalid("custom.budget", "must be a number")),
            (
                Agent,
                purchase(&[("budget", json!(1)), ("colour", json!("red"))]),
                invalid("custom.colour", "no such field"),
            ),
            (
                Agent,
                purchase(&[("budget", json!(1)), ("cost_centre", json!("12"))]),
                invalid("custom.cost_centre", "format"),
            ),
            (
                Agent,
                purchase(&[("budget", json!(1)), ("category", json!("Food"))]),
                invalid("custom.category", "not one of"),
            ),
            (
                Agent,
                purchase(&[("budget", json!(1)), ("needed_by", json!("soon"))]),
                invalid("custom.needed_by", "date"),
            ),
            (
                Agent,
                purchase(&[("budget", json!(1)), ("approver", json!("ana"))]),
                invalid("custom.approver", "user id"),
            ),
            (
                Agent,
                purchase(&[("budget", json!(1)), ("vendor", json!("x".repeat(41)))]),
                invalid("custom.vendor", "at most 40"),
            ),
            (
                Agent,
                new(&w.ticket, "x").with_custom("budget", json!(1)),
                invalid("custom.budget", "no such field"),
            ),
            // Customers: no internal fields, no triage fields, no placement.
            (CustomerA, purchase(&[("budget", json!(100))]), created()),
            (
                CustomerA,
                purchase(&[("budget", json!(100)), ("cost_centre", json!("CC-0001"))]),
                invalid("custom.cost_centre", "no such field"),
            ),
            (
                CustomerA,
                new(&w.ticket, "x").assignees(vec![Assignee::User(w.agent.id)]),
                forbidden("customers cannot set assignees"),
            ),
            (CustomerA, new(&w.ticket, "x").followers(vec![w.agent.id]), forbidden("set followers")),
            (CustomerA, new(&w.ticket, "x").status("execution"), forbidden("set status")),
            (CustomerA, new(&w.ticket, "x").priority(Priority::Urgent), forbidden("set priority")),
            (CustomerA, new(&w.ticket, "x").project(w.project.id), forbidden("set project")),
            (CustomerA, new(&w.ticket, "x").folder(w.folder.id), forbidden("set folder")),
            (CustomerA, new(&w.ticket, "x").requester(w.customer_b.id), forbidden("set requester")),
            (AgentRead, new(&w.ticket, "x"), forbidden("scope")),
            (Disabled, new(&w.ticket, "x"), forbidden("disabled")),
            // Placement: a folder implies its project; archived projects take nothing new.
            (
                Agent,
                new(&w.task, "Filed").folder(w.folder.id),
                created()
                    .then(|w, i| assert_eq!((i.project, i.folder), (Some(w.project.id), Some(w.folder.id)))),
            ),
            (
                Agent,
                new(&w.task, "Filed").project(w.project.id).folder(w.subfolder.id),
                created().then(|w, i| {
                    assert_eq!((i.project, i.folder), (Some(w.project.id), Some(w.subfolder.id)))
                }),
            ),
            (
                Agent,
                new(&w.task, "Loose").project(w.other_project.id),
                created().then(|w, i| assert_eq!((i.project, i.folder), (Some(w.other_project.id), None))),
            ),
            (
                Agent,
                new(&w.task, "x").project(w.other_project.id).folder(w.folder.id),
                invalid("folder", "another project"),
            ),
            (Agent, new(&w.task, "x").project(w.archived_project.id), invalid("project", "archived")),
            (
                Agent,
                new(&w.task, "x").project(ProjectId(uuid::Uuid::nil())),
                invalid("project", "no project"),
            ),
            (Agent, new(&w.task, "x").folder(FolderId(uuid::Uuid::nil())), invalid("folder", "no folder")),
            // Parents.
            (
                Agent,
                new(&w.task, "Sub-sub").parent(w.subtask.id),
                created().then(|w, i| assert_eq!(i.parent, Some(w.subtask.id))),
            ),
            (
                CustomerA,
                new(&w.ticket, "Follow-up").parent(w.ticket_a.id),
                created().then(|w, i| assert_eq!(i.parent, Some(w.ticket_a.id))),
            ),
            // A parent the customer cannot see is as unknown as one that does not exist.
            (CustomerA, new(&w.ticket, "Sneaky").parent(w.ticket_b.id), invalid("parent", "no item")),
            (CustomerA, new(&w.ticket, "Sneaky").parent(w.plan.id), invalid("parent", "no item")),
        ],
    );
}

/// Builders, so that a row names only what it sets.
impl CreateItem {
    fn with_custom(mut self, key: &str, value: Value) -> Self {
        self.custom.insert(key.into(), value);
        self
    }

    fn requester(self, requester: UserId) -> Self {
        CreateItem { requester: Some(requester), ..self }
    }

    fn followers(self, followers: Vec<UserId>) -> Self {
        CreateItem { followers, ..self }
    }

    fn assignees(self, assignees: Vec<Assignee>) -> Self {
        CreateItem { assignees, ..self }
    }

    fn status(self, status: &str) -> Self {
        CreateItem { status: Some(status.into()), ..self }
    }

    fn priority(self, priority: Priority) -> Self {
        CreateItem { priority: Some(priority), ..self }
    }

    fn project(self, project: ProjectId) -> Self {
        CreateItem { project: Some(project), ..self }
    }

    fn folder(self, folder: FolderId) -> Self {
        CreateItem { folder: Some(folder), ..self }
    }

    fn parent(self, parent: ItemId) -> Self {
        CreateItem { parent: Some(parent), ..self }
    }

    fn described(self, description: String) -> Self {
        CreateItem { description, ..self }
    }

    fn via(self, channel: Channel) -> Self {
        CreateItem { channel, ..self }
    }
}

/// Items nest at most 50 levels deep.
#[test]
fn create_item_refuses_too_deep_nesting() {
    let w = World::new();
    let chain = |depth: u128| -> Vec<Item> {
        (0..depth)
            .map(|n| Item {
                id: ItemId(uuid::Uuid::from_u128(0xA000 + n)),
                number: 100 + n as i64,
                ..w.plan.clone()
            })
            .collect()
    };
    let cmd = new(&w.task, "Deep").parent(ItemId(uuid::Uuid::from_u128(0xA000)));
    let state = |depth| (w.task.clone(), References { ancestors: chain(depth), ..References::default() });
    let actor = w.actor(Agent);
    check(&w, &actor, run(&cmd, &actor, state(49)), &created(), "49 ancestors");
    check(&w, &actor, run(&cmd, &actor, state(50)), &invalid("parent", "at most 50 levels"), "50 ancestors");
}

/// The new-folder rule of `UpdateItem::load`: naming another project alone leaves the folder
/// behind; the folder's project follows from a newly named folder.
fn update_state(w: &World, c: &UpdateItem) -> (Item, ItemType, References) {
    let item = w.item(c.item);
    let p = &c.patch;
    let mut refs = refs_for(w, p.requester.flatten(), &[]);
    if let Some(parent) = p.parent {
        refs.ancestors = w.ancestors(parent);
    }
    if p.project.is_some() || p.folder.is_some() {
        let moves_project = p.project.is_some_and(|project| project != item.project);
        let folder = p.folder.unwrap_or(if moves_project { None } else { item.folder });
        refs.folder = folder.and_then(|f| w.get::<Folder>(f));
        let project = match (p.project, &refs.folder) {
            (Some(project), _) => project,
            (None, Some(f)) => Some(f.project),
            (None, None) => item.project,
        };
        refs.project = project.and_then(|p| w.get::<Project>(p));
    }
    let t = w.item_type_of(&item);
    (item, t, refs)
}

#[test]
fn update_item() {
    let w = World::new();
    let update = |item: &Item, patch: ItemPatch| UpdateItem { item: id(item), patch };
    let title = |t: &str| ItemPatch { title: Some(t.into()), ..Default::default() };
    let project = |p: Option<ProjectId>| ItemPatch { project: Some(p), ..Default::default() };
    let folder = |f: Option<FolderId>| ItemPatch { folder: Some(f), ..Default::default() };
    let parent = |p: Option<ItemId>| ItemPatch { parent: Some(p), ..Default::default() };
    let requester = |r: Option<UserId>| ItemPatch { requester: Some(r), ..Default::default() };
    let set = |pairs: &[(&str, Value)]| ItemPatch { custom: custom(pairs), ..Default::default() };
    let plan = || ok::<Item>(&["item:plan@2"], &["item.updated@plan"]);
    let purchase = || ok::<Item>(&["item:purchase_item@1"], &["item.updated@purchase_item"]);
    table(
        &w,
        update_state,
        vec![
            (
                Agent,
                update(&w.plan, ItemPatch { version: Some(2), ..title(" Plan it ") }),
                plan().then(|w, i| {
                    assert_eq!((i.title.as_str(), i.version, i.updated_at), ("Plan it", 3, now()));
                    assert_eq!(
                        (i.number, i.created_at, &i.followers),
                        (w.plan.number, w.plan.created_at, &w.plan.followers)
                    );
                }),
            ),
            (
                Agent,
                update(&w.plan, ItemPatch { version: Some(1), ..title("Stale") }),
                conflict("version 2, not 1"),
            ),
            (
                Agent,
                UpdateItem {
                    item: ItemRef::Number(1),
                    patch: ItemPatch { priority: Some(Priority::Urgent), ..Default::default() },
                },
                ok(&["item:ticket_a@3"], &["item.updated@ticket_a"])
                    .then(|_, i| assert_eq!(i.priority, Priority::Urgent)),
            ),
            (Collaborator, update(&w.plan, title("Plan")), plan()),
            (ServerAdmin, update(&w.plan, title("Plan")), plan()),
            (CustomerA, update(&w.ticket_a, title("Mine")), forbidden("customers cannot")),
            (AgentRead, update(&w.plan, title("Plan")), forbidden("scope")),
            (Agent, update(&w.plan, title(" ")), invalid("title", "empty")),
            (
                Agent,
                update(&w.plan, ItemPatch { description: Some("x".repeat(100_001)), ..Default::default() }),
                invalid("description", "at most"),
            ),
            // Placement.
            (
                Agent,
                update(&w.plan, folder(Some(w.other_folder.id))),
                plan().then(|w, i| {
                    assert_eq!((i.project, i.folder), (Some(w.other_project.id), Some(w.other_folder.id)))
                }),
            ),
            (
                Agent,
                update(&w.plan, folder(Some(w.empty_folder.id))),
                plan().then(|w, i| {
                    assert_eq!((i.project, i.folder), (Some(w.project.id), Some(w.empty_folder.id)))
                }),
            ),
            (
                Agent,
                update(&w.plan, folder(None)),
                plan().then(|w, i| assert_eq!((i.project, i.folder), (Some(w.project.id), None))),
            ),
            (
                Agent,
                update(&w.plan, project(Some(w.other_project.id))),
                plan().then(|w, i| assert_eq!((i.project, i.folder), (Some(w.other_project.id), None))),
            ),
            // Naming the project the item is already in is not a move: the folder stays.
            (
                Agent,
                update(&w.plan, project(Some(w.project.id))),
                ok(&["item:plan@2"], &[])
                    .then(|w, i| assert_eq!((i.project, i.folder), (Some(w.project.id), Some(w.folder.id)))),
            ),
            (
                Agent,
                update(&w.plan, project(None)),
                plan().then(|_, i| assert_eq!((i.project, i.folder), (None, None))),
            ),
            (
                Agent,
                update(&w.ticket_a, folder(Some(w.folder.id))),
                ok(&["item:ticket_a@3"], &["item.updated@ticket_a"])
                    .then(|w, i| assert_eq!((i.project, i.folder), (Some(w.project.id), Some(w.folder.id)))),
            ),
            (Agent, update(&w.plan, project(Some(w.archived_project.id))), invalid("project", "archived")),
            (
                Agent,
                update(
                    &w.plan,
                    ItemPatch {
                        project: Some(Some(w.other_project.id)),
                        folder: Some(Some(w.folder.id)),
                        ..Default::default()
                    },
                ),
                invalid("folder", "another project"),
            ),
            // Parents: no cycles.
            (Agent, update(&w.plan, parent(Some(w.subtask.id))), invalid("parent", "inside itself")),
            (Agent, update(&w.plan, parent(Some(w.plan.id))), invalid("parent", "inside itself")),
            (
                Agent,
                update(&w.subtask, parent(None)),
                ok(&["item:subtask@1"], &["item.updated@subtask"]).then(|_, i| assert_eq!(i.parent, None)),
            ),
            (
                Agent,
                update(&w.ticket_b, parent(Some(w.subtask.id))),
                ok(&["item:ticket_b@1"], &["item.updated@ticket_b"])
                    .then(|w, i| assert_eq!(i.parent, Some(w.subtask.id))),
            ),
            // A new requester follows the item.
            (
                Agent,
                update(&w.ticket_a, requester(Some(w.customer_b.id))),
                ok(&["item:ticket_a@3"], &["item.followers_changed@ticket_a", "item.updated@ticket_a"]).then(
                    |w, i| {
                        assert_eq!(i.requester, Some(w.customer_b.id));
                        assert_eq!(i.followers, [w.customer_a.id, w.customer_b.id]);
                    },
                ),
            ),
            (
                Agent,
                update(&w.ticket_a, requester(None)),
                ok(&["item:ticket_a@3"], &["item.updated@ticket_a"]).then(|w, i| {
                    assert_eq!((i.requester, i.followers.as_slice()), (None, [w.customer_a.id].as_slice()));
                }),
            ),
            (Agent, update(&w.ticket_a, requester(Some(w.disabled.id))), invalid("requester", "disabled")),
            (Agent, update(&w.ticket_a, requester(Some(nobody()))), invalid("requester", "no user")),
            // Custom fields: validated against the type, existing values kept.
            (
                Agent,
                update(&w.purchase_item, set(&[("vendor", json!(" Globex "))])),
                purchase().then(|w, i| {
                    assert_eq!(i.custom["vendor"], json!("Globex"));
                    assert_eq!(i.custom.len(), w.purchase_item.custom.len());
                }),
            ),
            (
                Agent,
                update(&w.purchase_item, set(&[("vendor", Value::Null)])),
                purchase().then(|_, i| assert!(!i.custom.contains_key("vendor"))),
            ),
            (Agent, update(&w.purchase_item, set(&[("cost_centre", json!("CC-9999"))])), purchase()),
            (
                Collaborator,
                update(&w.purchase_item, set(&[("cost_centre", json!("CC-9999"))])),
                not_found("item #5"),
            ),
            (
                Agent,
                update(&w.purchase_item, set(&[("budget", json!(20_000))])),
                invalid("custom.budget", "at most 10000"),
            ),
            (
                Agent,
                update(&w.purchase_item, set(&[("budget", Value::Null)])),
                invalid("custom.budget", "required"),
            ),
            (
                Agent,
                update(&w.purchase_item, set(&[("nope", json!(1))])),
                invalid("custom.nope", "no such field"),
            ),
            (
                Agent,
                update(&w.ticket_a, set(&[("budget", json!(1))])),
                invalid("custom.budget", "no such field"),
            ),
        ],
    );
}

/// `ItemUpdated` lists exactly the fields that changed, custom fields one by one.
#[test]
fn update_item_events_name_the_changed_fields() {
    let w = World::new();
    let cmd = UpdateItem {
        item: id(&w.purchase_item),
        patch: ItemPatch {
            title: Some("Two printers".into()),
            priority: Some(Priority::High),
            custom: custom(&[("vendor", json!("Globex")), ("budget", json!(500))]),
            ..Default::default()
        },
    };
    let decided = run(&cmd, &w.actor(Agent), update_state(&w, &cmd)).unwrap();
    let EventData::ItemUpdated { changes } = &decided.changes.events[0].data else { panic!() };
    let fields: Vec<_> = changes.iter().map(|c| (c.field.as_str(), c.from.clone(), c.to.clone())).collect();
    assert_eq!(
        fields,
        [("custom.vendor", json!("Acme"), json!("Globex")), ("priority", json!("normal"), json!("high"))]
    );
}

fn transition_state(w: &World, c: &TransitionItem) -> (Item, ItemType) {
    let item = w.item(c.item);
    let t = w.item_type_of(&item);
    (item, t)
}

#[test]
fn transition_item() {
    let w = World::new();
    let to = |item: &Item, status: &str, version| TransitionItem {
        item: id(item),
        to: TransitionTo::Status(status.into()),
        version,
    };
    let close = |item: &Item| TransitionItem { item: id(item), to: TransitionTo::Close, version: None };
    let moved = || ok::<Item>(&["item:ticket_a@3"], &["item.status_changed@ticket_a"]);
    table(
        &w,
        transition_state,
        vec![
            (
                Agent,
                to(&w.ticket_a, "execution", Some(3)),
                moved().then(|_, i| {
                    assert_eq!(
                        (i.status.as_str(), i.category, i.done_at),
                        ("execution", StatusCategory::InProgress, None)
                    );
                    assert_eq!(i.version, 4);
                }),
            ),
            (
                Agent,
                close(&w.ticket_a),
                moved().then(|_, i| {
                    assert_eq!(
                        (i.status.as_str(), i.category, i.done_at),
                        ("closed", StatusCategory::Closed, Some(now()))
                    );
                }),
            ),
            (Collaborator, to(&w.ticket_a, "waiting", None), not_found("item #1")),
            (System, to(&w.ticket_a, "waiting", None), moved()),
            (Agent, to(&w.ticket_a, "triage", None), invalid("status", "already in 'triage'")),
            (Agent, to(&w.ticket_a, "ghost", None), invalid("status", "no status with key 'ghost'")),
            (Agent, to(&w.ticket_a, "doing", None), invalid("status", "no status with key 'doing'")),
            (Agent, to(&w.ticket_a, "execution", Some(2)), conflict("version 3, not 2")),
            // The task workflow restricts moves.
            (
                Agent,
                to(&w.plan, "done", None),
                ok(&["item:plan@2"], &["item.status_changed@plan"])
                    .then(|_, i| assert_eq!(i.done_at, Some(now()))),
            ),
            (Agent, close(&w.plan), ok(&["item:plan@2"], &["item.status_changed@plan"])),
            (
                Agent,
                to(&w.plan, "archived", None),
                invalid("status", "does not allow moving from 'doing' to 'archived'"),
            ),
            (Agent, to(&w.subtask, "blocked", None), invalid("status", "does not allow")),
            (CustomerA, to(&w.ticket_a, "execution", None), forbidden("customers cannot")),
            (AgentRead, to(&w.ticket_a, "execution", None), forbidden("scope")),
        ],
    );

    // Reopening a done item clears `done_at`; moving between done statuses keeps it.
    let mut w = World::new();
    let ticket = w.ticket.clone();
    set_status(&mut w.ticket_b, &ticket, "delivery");
    let b = || ok::<Item>(&["item:ticket_b@1"], &["item.status_changed@ticket_b"]);
    table(
        &w,
        transition_state,
        vec![
            (Agent, to(&w.ticket_b, "execution", None), b().then(|_, i| assert_eq!(i.done_at, None))),
            (
                Agent,
                close(&w.ticket_b),
                b().then(|_, i| assert_eq!((i.status.as_str(), i.done_at), ("closed", Some(t0())))),
            ),
        ],
    );
}

fn assign_state(w: &World, c: &SetAssignees) -> (Item, References) {
    (w.item(c.item), refs_for(w, assigned_users(&c.assignees), &c.assignees))
}

#[test]
fn set_assignees() {
    let w = World::new();
    let assign =
        |item: &Item, assignees: Vec<Assignee>, version| SetAssignees { item: id(item), assignees, version };
    let (agent, collaborator, team) =
        (Assignee::User(w.agent.id), Assignee::User(w.collaborator.id), Assignee::Team(w.team.id));
    let a = || ok::<Item>(&["item:ticket_a@3"], &["item.assignees_changed@ticket_a"]);
    table(
        &w,
        assign_state,
        vec![
            (
                Agent,
                assign(&w.ticket_a, vec![agent, team, agent], Some(3)),
                a().then(|w, i| {
                    assert_eq!(i.assignees, [Assignee::User(w.agent.id), Assignee::Team(w.team.id)])
                }),
            ),
            (Collaborator, assign(&w.ticket_a, vec![collaborator], None), not_found("item #1")),
            (Manager, assign(&w.plan, vec![agent], Some(2)), unchanged().then(|w, i| assert_eq!(i, &w.plan))),
            (
                Manager,
                assign(&w.plan, vec![], None),
                ok(&["item:plan@2"], &["item.assignees_changed@plan"])
                    .then(|_, i| assert!(i.assignees.is_empty())),
            ),
            (
                Agent,
                assign(&w.ticket_a, vec![agent, Assignee::User(w.customer_a.id)], None),
                invalid("assignees[1]", "customers"),
            ),
            (
                Agent,
                assign(&w.ticket_a, vec![Assignee::Team(TeamId(uuid::Uuid::nil()))], None),
                invalid("assignees[0]", "no team"),
            ),
            (
                Agent,
                assign(&w.ticket_a, vec![Assignee::User(w.disabled.id)], None),
                invalid("assignees[0]", "disabled"),
            ),
            (
                Agent,
                assign(&w.ticket_a, vec![Assignee::User(nobody())], None),
                invalid("assignees[0]", "no user"),
            ),
            (Agent, assign(&w.ticket_a, vec![agent], Some(1)), conflict("not 1")),
            (CustomerA, assign(&w.ticket_a, vec![agent], None), forbidden("customers cannot")),
            (AgentRead, assign(&w.ticket_a, vec![agent], None), forbidden("scope")),
        ],
    );
}

/// `AssigneesChanged` says who was added and who removed.
#[test]
fn set_assignees_event_names_the_difference() {
    let w = World::new();
    let cmd = SetAssignees {
        item: id(&w.plan),
        assignees: vec![Assignee::Team(w.team.id), Assignee::User(w.collaborator.id)],
        version: None,
    };
    let decided = run(&cmd, &w.actor(Agent), assign_state(&w, &cmd)).unwrap();
    assert_eq!(
        decided.changes.events[0].data,
        EventData::AssigneesChanged {
            added: vec![Assignee::Team(w.team.id), Assignee::User(w.collaborator.id)],
            removed: vec![Assignee::User(w.agent.id)],
        }
    );
}

fn follow_state(w: &World, c: &ChangeFollowers) -> (Item, References) {
    (w.item(c.item), refs_for(w, c.add.iter().copied(), &[]))
}

#[test]
fn change_followers() {
    let w = World::new();
    let follow =
        |item: &Item, add: Vec<UserId>, remove: Vec<UserId>| ChangeFollowers { item: id(item), add, remove };
    let a = || ok::<Item>(&["item:ticket_a@3"], &["item.followers_changed@ticket_a"]);
    table(
        &w,
        follow_state,
        vec![
            (
                Agent,
                follow(&w.ticket_a, vec![w.agent.id], vec![]),
                a().then(|w, i| assert_eq!(i.followers, [w.customer_a.id, w.agent.id])),
            ),
            (
                Manager,
                follow(&w.ticket_a, vec![w.agent.id, w.manager.id, w.agent.id], vec![]),
                a().then(|w, i| assert_eq!(i.followers, [w.customer_a.id, w.agent.id, w.manager.id])),
            ),
            (Collaborator, follow(&w.ticket_a, vec![w.agent.id], vec![]), not_found("item #1")),
            (
                Agent,
                follow(&w.ticket_a, vec![w.collaborator.id], vec![w.customer_a.id]),
                a().then(|w, i| assert_eq!(i.followers, [w.collaborator.id])),
            ),
            (
                Agent,
                follow(&w.plan, vec![], vec![w.agent.id]),
                ok(&["item:plan@2"], &["item.followers_changed@plan"])
                    .then(|_, i| assert!(i.followers.is_empty())),
            ),
            (Agent, follow(&w.ticket_a, vec![w.customer_a.id], vec![]), unchanged()),
            (Agent, follow(&w.ticket_a, vec![], vec![w.manager.id]), unchanged()),
            (Agent, follow(&w.ticket_a, vec![nobody()], vec![]), invalid("add[0]", "no user")),
            (
                Agent,
                follow(&w.ticket_a, vec![w.agent.id, w.disabled.id], vec![]),
                invalid("add[1]", "disabled"),
            ),
            // A read-only token cannot write, not even to follow an item itself.
            (AgentRead, follow(&w.ticket_a, vec![w.agent.id], vec![]), forbidden("scope")),
            (AgentRead, follow(&w.plan, vec![], vec![w.agent.id]), forbidden("scope")),
            (AgentWrite, follow(&w.ticket_a, vec![w.agent.id], vec![]), a()),
            (Disabled, follow(&w.ticket_a, vec![w.disabled.id], vec![]), forbidden("disabled")),
            (CustomerA, follow(&w.ticket_a, vec![], vec![w.customer_a.id]), forbidden("customers cannot")),
            (CustomerA, follow(&w.ticket_b, vec![w.customer_a.id], vec![]), not_found("item #")),
        ],
    );
}

fn convert_state(w: &World, c: &ConvertItem) -> (Item, ItemType, ItemType) {
    let item = w.item(c.item);
    let from = w.item_type_of(&item);
    (item, from, w.get(c.to_type).unwrap())
}

fn convert(item: &Item, to: &ItemType, pairs: &[(&str, Value)], version: Option<i64>) -> ConvertItem {
    ConvertItem { item: id(item), to_type: to.id, custom: custom(pairs), version }
}

#[test]
fn convert_item() {
    let w = World::new();
    let purchase = || ok::<Item>(&["item:purchase_item@1"], &["item.converted@purchase_item"]);
    table(
        &w,
        convert_state,
        vec![
            (
                Agent,
                convert(&w.ticket_a, &w.task, &[], Some(3)),
                ok(&["item:ticket_a@3"], &["item.converted@ticket_a"]).then(|w, i| {
                    assert_eq!((i.id, i.number, i.version), (w.ticket_a.id, w.ticket_a.number, 4));
                    assert_eq!((i.item_type, i.kind), (w.task.id, ItemKind::Task));
                    assert_eq!((i.status.as_str(), i.category), ("todo", StatusCategory::New));
                    assert_eq!((&i.followers, i.requester), (&w.ticket_a.followers, w.ticket_a.requester));
                    assert_eq!(
                        (&i.title, i.created_at, i.channel),
                        (&w.ticket_a.title, w.ticket_a.created_at, Channel::Portal)
                    );
                }),
            ),
            (
                Manager,
                convert(&w.plan, &w.ticket, &[], Some(2)),
                ok(&["item:plan@2"], &["item.converted@plan"]).then(|w, i| {
                    assert_eq!(
                        (i.kind, i.status.as_str(), i.category),
                        (ItemKind::Ticket, "execution", StatusCategory::InProgress)
                    );
                    assert_eq!(
                        (&i.assignees, i.project, i.folder),
                        (&w.plan.assignees, w.plan.project, w.plan.folder)
                    );
                }),
            ),
            // Carried values are re-validated; values of fields the target lacks are kept.
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[], None),
                purchase().then(|w, i| assert_eq!(i.custom, w.purchase_item.custom)),
            ),
            (
                Agent,
                convert(&w.purchase_item, &w.ticket, &[], None),
                purchase().then(|w, i| assert_eq!(i.custom, w.purchase_item.custom)),
            ),
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[("points", json!(3))], None),
                ok(
                    &["item:purchase_item@1"],
                    &["item.converted@purchase_item", "item.updated@purchase_item"],
                )
                .then(|_, i| assert_eq!((i.custom["points"].clone(), i.custom.len()), (json!(3.0), 5))),
            ),
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[("points", json!("many"))], None),
                invalid("custom.points", "number"),
            ),
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[("vendor", json!("x"))], None),
                invalid("custom.vendor", "no such field"),
            ),
            (
                Agent,
                convert(&w.ticket_a, &w.ticket, &[], None),
                invalid("item_type", "already has this type"),
            ),
            (Agent, convert(&w.ticket_a, &w.task, &[], Some(2)), conflict("not 2")),
            (
                Manager,
                convert(&w.ticket_a, &w.task, &[], None),
                ok(&["item:ticket_a@3"], &["item.converted@ticket_a"]),
            ),
            (Collaborator, convert(&w.ticket_a, &w.task, &[], None), not_found("item #1")),
            (CustomerA, convert(&w.ticket_a, &w.task, &[], None), forbidden("customers cannot")),
            (AgentRead, convert(&w.ticket_a, &w.task, &[], None), forbidden("scope")),
        ],
    );

    // A carried value that the target's definition refuses must be replaced (or cleared).
    let mut w = World::new();
    w.purchase_item.custom.insert("budget".into(), json!(5000.0));
    let both = || {
        ok::<Item>(&["item:purchase_item@1"], &["item.converted@purchase_item", "item.updated@purchase_item"])
    };
    table(
        &w,
        convert_state,
        vec![
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[], None),
                invalid("custom.budget", "does not fit the target type"),
            ),
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[("budget", json!(900))], None),
                both().then(|_, i| assert_eq!(i.custom["budget"], json!(900.0))),
            ),
            (
                Agent,
                convert(&w.purchase_item, &w.task, &[("budget", Value::Null)], None),
                both().then(|_, i| {
                    assert!(!i.custom.contains_key("budget") && i.custom.contains_key("vendor"))
                }),
            ),
            // Converting to a type without the field keeps the value as it was.
            (Agent, convert(&w.purchase_item, &w.ticket, &[], None), purchase()),
        ],
    );

    // A target's required fields must be filled in by the conversion.
    let mut w = World::new();
    w.task.fields[1].required = true;
    table(
        &w,
        convert_state,
        vec![
            (
                Agent,
                convert(&w.ticket_a, &w.task, &[], None),
                invalid("custom.points", "'Points' is required"),
            ),
            (
                Agent,
                convert(&w.ticket_a, &w.task, &[("points", json!(2))], None),
                ok(&["item:ticket_a@3"], &["item.converted@ticket_a", "item.updated@ticket_a"]),
            ),
        ],
    );
}

/// Statuses map by category: every default-workflow status lands on the task status of the same
/// category, and a done item keeps when it was done.
#[test]
fn convert_maps_status_by_category() {
    let cases = [
        ("triage", "todo", None),
        ("execution", "doing", None),
        ("waiting", "blocked", None),
        ("delivery", "done", Some(t0())),
        ("closed", "archived", Some(t0())),
    ];
    for (from, to, done_at) in cases {
        let mut w = World::new();
        let ticket = w.ticket.clone();
        set_status(&mut w.ticket_a, &ticket, from);
        let cmd = convert(&w.ticket_a, &w.task, &[], None);
        let decided = run(&cmd, &w.actor(Agent), convert_state(&w, &cmd)).unwrap();
        assert_eq!((decided.output.status.as_str(), decided.output.done_at), (to, done_at), "{from}");
        assert_eq!(
            decided.changes.events[0].data,
            EventData::ItemConverted {
                from_type: w.ticket.id,
                to_type: w.task.id,
                from_kind: ItemKind::Ticket,
                to_kind: ItemKind::Task,
                from_status: from.into(),
                to_status: to.into(),
            }
        );
    }
    // An "open" item lands on the nearest category, the earlier one on a tie.
    let mut w = World::new();
    w.ticket_a.category = StatusCategory::Open;
    let cmd = convert(&w.ticket_a, &w.task, &[], None);
    assert_eq!(run(&cmd, &w.actor(Agent), convert_state(&w, &cmd)).unwrap().output.status, "todo");
}

fn link_state(w: &World, c: &LinkItems) -> (Item, Item, Vec<ItemLink>) {
    let (from, to) = (w.item(c.from), w.item(c.to));
    let links = [w.link.clone()].into_iter().filter(|l| l.from == from.id || l.to == from.id).collect();
    (from, to, links)
}

#[test]
fn link_items() {
    let w = World::new();
    let link =
        |from: &Item, to: &Item, kind| LinkItems { from: id(from), to: id(to), kind, dependency: None };
    let existing = || unchanged::<ItemLink>().then(|w, l| assert_eq!(l, &w.link));
    table(
        &w,
        link_state,
        vec![
            (
                Agent,
                link(&w.ticket_a, &w.plan, LinkKind::Blocks),
                ok(&["+link:new1"], &["item.linked@ticket_a", "item.linked@plan"]).then(|w, l| {
                    assert_eq!(
                        (l.from, l.to, l.kind, l.version),
                        (w.ticket_a.id, w.plan.id, LinkKind::Blocks, 1)
                    );
                }),
            ),
            // The same link again, or a "relates" link the other way round, is the existing one.
            (Agent, link(&w.ticket_a, &w.ticket_b, LinkKind::Relates), existing()),
            (Agent, link(&w.ticket_b, &w.ticket_a, LinkKind::Relates), existing()),
            (
                Agent,
                link(&w.ticket_b, &w.ticket_a, LinkKind::Blocks),
                ok(&["+link:new1"], &["item.linked@ticket_b", "item.linked@ticket_a"]),
            ),
            (
                Agent,
                link(&w.ticket_a, &w.ticket_b, LinkKind::Duplicates),
                ok(&["+link:new1"], &["item.linked@ticket_a", "item.linked@ticket_b"]),
            ),
            (Agent, link(&w.ticket_a, &w.ticket_a, LinkKind::Relates), invalid("to", "itself")),
            (
                Collaborator,
                link(&w.plan, &w.subtask, LinkKind::Blocks),
                ok(&["+link:new1"], &["item.linked@plan", "item.linked@subtask"]),
            ),
            (
                CustomerA,
                link(&w.ticket_a, &w.purchase_item, LinkKind::Relates),
                forbidden("customers cannot"),
            ),
            (AgentRead, link(&w.ticket_a, &w.plan, LinkKind::Relates), forbidden("scope")),
        ],
    );
}

#[test]
fn unlink_items() {
    let w = World::new();
    let cmd = UnlinkItems { link: w.link.id };
    table(
        &w,
        |w, _: &UnlinkItems| (w.link.clone(), w.ticket_a.clone()),
        vec![
            (
                Agent,
                cmd.clone(),
                ok(&["-link:link@1"], &["item.unlinked@ticket_a", "item.unlinked@ticket_b"]),
            ),
            (Collaborator, cmd.clone(), not_found("item #1")),
            (CustomerA, cmd.clone(), forbidden("customers cannot")),
            (AgentRead, cmd, forbidden("scope")),
        ],
    );
}
