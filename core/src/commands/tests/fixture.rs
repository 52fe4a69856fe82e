//! A workspace built by hand, and the helpers that turn a command table into assertions.
//!
//! Fixture records get ids `F000_0000 + n`; ids a decision makes up come from [`SequentialIds`]
//! (1, 2, 3, ...) and are summarised as `new1`, `new2`, ... so a table can say which new record
//! got which id.

use std::collections::BTreeMap;
use std::fmt::Debug;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::access::{Actor, ActorKind};
use crate::change::{ChangeSet, Record, Write};
use crate::conversation::sha256_hex;
use crate::desk::{Command, Decided, Env, ItemRef, Limits};
use crate::error::DeskError;
use crate::fields::{FieldDef, FieldKind, FieldRules, validate_def};
use crate::hierarchy::{Folder, Portfolio, Project, Workspace};
use crate::ids::{ItemId, SequentialIds};
use crate::item::{ActorRef, Assignee, Channel, Item, ItemKind, ItemLink, ItemType, LinkKind, Priority};
use crate::people::{ApiToken, Notification, NotificationKind, Role, Team, TokenScope, User};
use crate::store::TypedRecord;
use crate::workflow::{Status, StatusCategory, Transition, Workflow, WorkflowDefaults};

/// The largest attachment the tables' `Limits` allow.
pub(super) const LIMIT: u64 = 1024;

const BASE: u128 = 0xF000_0000;

fn fid<T: From<Uuid>>(n: u128) -> T {
    T::from(Uuid::from_u128(BASE + n))
}

/// When the fixture's records were created.
pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// The `now` every decision runs at.
pub(super) fn now() -> DateTime<Utc> {
    t0() + Duration::hours(2)
}

pub(super) fn limits() -> Limits {
    Limits { max_attachment_bytes: LIMIT, ..Limits::default() }
}

/// Runs a command's pure `decide` with fresh sequential ids, the fixed `now` and the test limits.
pub(super) fn run<C: Command>(
    cmd: &C,
    actor: &Actor,
    state: C::State,
) -> Result<Decided<C::Output>, DeskError> {
    let ids = SequentialIds::default();
    let limits = limits();
    let env = Env { now: now(), ids: &ids, limits: &limits };
    cmd.decide(actor, state, &env)
}

/// Who runs a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Who {
    ServerAdmin,
    System,
    Admin,
    Manager,
    Agent,
    Collaborator,
    CustomerA,
    CustomerB,
    /// A disabled agent.
    Disabled,
    /// The admin through a read-only token.
    AdminRead,
    /// The agent through a read-only token.
    AgentRead,
    /// The agent through a read-and-write token.
    AgentWrite,
}

/// The workspace every table runs against.
#[derive(Debug, Clone)]
pub(super) struct World {
    pub ws: Workspace,
    /// "Ticket": the default workflow, no custom fields.
    pub ticket: ItemType,
    /// "Task": its own workflow (todo → doing → blocked → done → archived, restricted transitions)
    /// and two optional number fields, `budget` (≤ 1000) and `points`.
    pub task: ItemType,
    /// "Purchase request" (a ticket type): custom fields of several kinds, `budget` required,
    /// `cost_centre` internal.
    pub purchase: ItemType,
    pub admin: User,
    pub manager: User,
    pub agent: User,
    pub collaborator: User,
    pub customer_a: User,
    /// A customer without an email address.
    pub customer_b: User,
    /// A disabled agent.
    pub disabled: User,
    /// Agent and collaborator.
    pub team: Team,
    /// Holds `sub_portfolio` and `project`.
    pub portfolio: Portfolio,
    /// Holds `other_project`.
    pub sub_portfolio: Portfolio,
    pub empty_portfolio: Portfolio,
    /// Holds `folder` (→ `subfolder`) and `empty_folder`.
    pub project: Project,
    /// Holds `other_folder`.
    pub other_project: Project,
    pub archived_project: Project,
    /// Holds `subfolder` and the item `plan`.
    pub folder: Folder,
    /// Holds the item `subtask`.
    pub subfolder: Folder,
    pub empty_folder: Folder,
    pub other_folder: Folder,
    /// #1, a ticket requested by customer A (who follows it), in triage, at version 3.
    pub ticket_a: Item,
    /// #2, a ticket requested by customer B, in triage.
    pub ticket_b: Item,
    /// #3, a task in `project`/`folder`, assigned to and followed by the agent, in "doing", v2.
    pub plan: Item,
    /// #4, a task under `plan`, in `subfolder`.
    pub subtask: Item,
    /// #5, a purchase request by customer A with custom values, followed by the manager too.
    pub purchase_item: Item,
    /// `ticket_a` relates to `ticket_b`.
    pub link: ItemLink,
    pub agent_token: ApiToken,
    pub admin_token: ApiToken,
    /// The agent's, already revoked.
    pub revoked_token: ApiToken,
    /// The agent's, unread, about `ticket_a`.
    pub notification: Notification,
}

fn user(n: u128, name: &str, role: Role, email: Option<&str>, handle: Option<&str>) -> User {
    User {
        id: fid(n),
        workspace_id: fid(0),
        name: name.into(),
        email: email.map(Into::into),
        handle: handle.map(Into::into),
        role,
        active: true,
        email_bounce: None,
        organization: None,
        created_at: t0(),
        version: 1,
    }
}

pub(super) fn field(key: &str, label: &str, kind: FieldKind) -> FieldDef {
    FieldDef {
        key: key.into(),
        label: label.into(),
        kind,
        required: false,
        help: None,
        internal: false,
        rules: FieldRules::default(),
    }
}

fn status(key: &str, name: &str, category: StatusCategory) -> Status {
    Status { key: key.into(), name: name.into(), category, public_label: None }
}

fn task_workflow() -> Workflow {
    use StatusCategory::*;
    let t = |from: &str, to: &str| Transition { from: from.into(), to: to.into() };
    Workflow {
        statuses: vec![
            status("todo", "To do", New),
            status("doing", "Doing", InProgress),
            status("blocked", "Blocked", Waiting),
            status("done", "Done", Resolved),
            status("archived", "Archived", Closed),
        ],
        transitions: Some(vec![
            t("todo", "doing"),
            t("doing", "blocked"),
            t("blocked", "doing"),
            t("doing", "done"),
            t("done", "doing"),
            t("done", "archived"),
        ]),
        defaults: WorkflowDefaults {
            create: "todo".into(),
            customer_reply: "doing".into(),
            close: "done".into(),
        },
    }
}

fn item_type(n: u128, name: &str, kind: ItemKind, workflow: Workflow, fields: Vec<FieldDef>) -> ItemType {
    ItemType {
        id: fid(n),
        workspace_id: fid(0),
        name: name.into(),
        kind,
        description: String::new(),
        workflow,
        fields,
        created_at: t0(),
        version: 1,
    }
}

fn item(n: u128, number: i64, t: &ItemType, title: &str) -> Item {
    let create = &t.workflow.defaults.create;
    Item {
        id: fid(n),
        workspace_id: fid(0),
        number,
        item_type: t.id,
        kind: t.kind,
        title: title.into(),
        description: String::new(),
        project: None,
        folder: None,
        parent: None,
        requester: None,
        assignees: vec![],
        followers: vec![],
        priority: Priority::Normal,
        status: create.clone(),
        category: t.workflow.status(create).map(|s| s.category).unwrap(),
        custom: BTreeMap::new(),
        channel: Channel::Api,
        created_by: ActorRef::System,
        created_at: t0(),
        updated_at: t0(),
        done_at: None,
        plan: Default::default(),
        version: 1,
    }
}

fn token(n: u128, user: &User, name: &str, scope: TokenScope) -> ApiToken {
    ApiToken {
        id: fid(n),
        workspace_id: fid(0),
        user: user.id,
        name: name.into(),
        secret_sha256: sha256_hex(name.as_bytes()),
        scope,
        created_at: t0(),
        revoked_at: None,
        last_used_at: None,
        version: 1,
    }
}

impl World {
    pub fn new() -> World {
        let ws = Workspace { id: fid(0), name: "Federation".into(), created_at: t0(), version: 1 };
        let ticket = item_type(1, "Ticket", ItemKind::Ticket, Workflow::default_workflow(), vec![]);
        let task = item_type(
            2,
            "Task",
            ItemKind::Task,
            task_workflow(),
            vec![
                FieldDef {
                    rules: FieldRules { min: Some(0.0), max: Some(1000.0), ..FieldRules::default() },
                    ..field("budget", "Budget", FieldKind::Number)
                },
                field("points", "Points", FieldKind::Number),
            ],
        );
        let purchase = item_type(
            3,
            "Purchase request",
            ItemKind::Ticket,
            Workflow::default_workflow(),
            vec![
                FieldDef {
                    required: true,
                    rules: FieldRules { min: Some(0.0), max: Some(10_000.0), ..FieldRules::default() },
                    ..field("budget", "Budget", FieldKind::Number)
                },
                FieldDef {
                    rules: FieldRules { max: Some(40.0), ..FieldRules::default() },
                    ..field("vendor", "Vendor", FieldKind::Text)
                },
                field("needed_by", "Needed by", FieldKind::Date),
                FieldDef {
                    rules: FieldRules {
                        options: vec!["Hardware".into(), "Software".into(), "Services".into()],
                        ..FieldRules::default()
                    },
                    ..field("category", "Category", FieldKind::Choice)
                },
                field("approver", "Approver", FieldKind::User),
                FieldDef {
                    internal: true,
                    rules: FieldRules { pattern: Some("CC-[0-9]{4}".into()), ..FieldRules::default() },
                    ..field("cost_centre", "Cost centre", FieldKind::Text)
                },
            ],
        );

        let admin = user(10, "Ada Admin", Role::Admin, Some("ada@fed.example"), Some("ada"));
        let manager = user(11, "Max Manager", Role::Manager, Some("max@fed.example"), Some("max"));
        let agent = user(12, "Ana Agent", Role::Agent, Some("ana@fed.example"), Some("ana"));
        let collaborator =
            user(13, "Cole Collaborator", Role::Collaborator, Some("cole@fed.example"), Some("cole"));
        let customer_a =
            user(14, "Carla Customer", Role::Customer, Some("carla@clinic.example"), Some("carla"));
        let customer_b = user(15, "Bert Customer", Role::Customer, None, None);
        let disabled = User {
            active: false,
            ..user(16, "Dora Disabled", Role::Agent, Some("dora@fed.example"), Some("dora"))
        };
        let team = Team {
            id: fid(20),
            workspace_id: fid(0),
            name: "Service desk".into(),
            members: vec![agent.id, collaborator.id],
            created_at: t0(),
            version: 1,
        };

        let portfolio = Portfolio {
            id: fid(30),
            workspace_id: fid(0),
            name: "Clinics".into(),
            parent: None,
            created_at: t0(),
            version: 1,
        };
        let sub_portfolio =
            Portfolio { id: fid(31), name: "North".into(), parent: Some(portfolio.id), ..portfolio.clone() };
        let empty_portfolio =
            Portfolio { id: fid(32), name: "Empty".into(), parent: None, ..portfolio.clone() };
        let project = Project {
            id: fid(40),
            workspace_id: fid(0),
            name: "Rollout".into(),
            description: String::new(),
            portfolio: Some(portfolio.id),
            archived: false,
            created_at: t0(),
            version: 1,
        };
        let other_project = Project {
            id: fid(41),
            name: "Audit".into(),
            portfolio: Some(sub_portfolio.id),
            ..project.clone()
        };
        let archived_project =
            Project { id: fid(42), name: "Old".into(), portfolio: None, archived: true, ..project.clone() };
        let folder = Folder {
            id: fid(50),
            workspace_id: fid(0),
            project: project.id,
            name: "Phase 1".into(),
            parent: None,
            created_at: t0(),
            version: 1,
        };
        let subfolder =
            Folder { id: fid(51), name: "Week 1".into(), parent: Some(folder.id), ..folder.clone() };
        let empty_folder = Folder { id: fid(52), name: "Phase 2".into(), ..folder.clone() };
        let other_folder =
            Folder { id: fid(53), project: other_project.id, name: "Findings".into(), ..folder.clone() };

        let ticket_a = Item {
            requester: Some(customer_a.id),
            followers: vec![customer_a.id],
            channel: Channel::Portal,
            version: 3,
            ..item(60, 1, &ticket, "Printer down")
        };
        let ticket_b = Item {
            requester: Some(customer_b.id),
            followers: vec![customer_b.id],
            ..item(61, 2, &ticket, "VPN broken")
        };
        let mut plan = Item {
            project: Some(project.id),
            folder: Some(folder.id),
            assignees: vec![Assignee::User(agent.id)],
            followers: vec![agent.id],
            created_by: ActorRef::User(manager.id),
            version: 2,
            ..item(62, 3, &task, "Plan the rollout")
        };
        set_status(&mut plan, &task, "doing");
        let subtask = Item {
            project: Some(project.id),
            folder: Some(subfolder.id),
            parent: Some(plan.id),
            ..item(63, 4, &task, "Order printers")
        };
        let purchase_item = Item {
            requester: Some(customer_a.id),
            followers: vec![customer_a.id, manager.id],
            custom: [
                ("budget".to_string(), json!(500.0)),
                ("vendor".to_string(), json!("Acme")),
                ("category".to_string(), json!("Hardware")),
                ("cost_centre".to_string(), json!("CC-1234")),
            ]
            .into(),
            ..item(64, 5, &purchase, "Two printers")
        };
        let link = ItemLink {
            id: fid(70),
            workspace_id: fid(0),
            from: ticket_a.id,
            to: ticket_b.id,
            kind: LinkKind::Relates,
            dependency: None,
            created_at: t0(),
            version: 1,
        };
        let agent_token = token(80, &agent, "ana laptop", TokenScope::Write);
        let admin_token = token(81, &admin, "ada ci", TokenScope::Admin);
        let revoked_token =
            ApiToken { revoked_at: Some(t0()), version: 2, ..token(82, &agent, "ana old", TokenScope::Read) };
        let notification = Notification {
            id: fid(90),
            workspace_id: fid(0),
            user: agent.id,
            item: ticket_a.id,
            kind: NotificationKind::Mention { message: fid(91) },
            created_at: t0(),
            read_at: None,
            version: 1,
        };
        World {
            ws,
            ticket,
            task,
            purchase,
            admin,
            manager,
            agent,
            collaborator,
            customer_a,
            customer_b,
            disabled,
            team,
            portfolio,
            sub_portfolio,
            empty_portfolio,
            project,
            other_project,
            archived_project,
            folder,
            subfolder,
            empty_folder,
            other_folder,
            ticket_a,
            ticket_b,
            plan,
            subtask,
            purchase_item,
            link,
            agent_token,
            admin_token,
            revoked_token,
            notification,
        }
    }

    pub fn actor(&self, who: Who) -> Actor {
        let user = |u: &User, scope| Actor::user(u.clone(), scope);
        match who {
            Who::ServerAdmin => Actor::server_admin(self.ws.id),
            Who::System => Actor::system(self.ws.id),
            Who::Admin => user(&self.admin, TokenScope::Admin),
            Who::Manager => user(&self.manager, TokenScope::Admin),
            Who::Agent => user(&self.agent, TokenScope::Admin),
            // A member of `project` (as `Desk::resolve` would find in the store), nothing else.
            Who::Collaborator => {
                let member = crate::membership::ProjectMember {
                    id: crate::membership::ProjectMember::id_for(self.project.id, self.collaborator.id),
                    workspace_id: self.ws.id,
                    project: self.project.id,
                    user: self.collaborator.id,
                    role: crate::membership::ProjectRole::Member,
                    created_at: t0(),
                    version: 1,
                };
                let portal = crate::membership::PortalSettings::empty(self.ws.id);
                Actor {
                    access: Some(crate::access::Access::of(&self.collaborator, &[member], &portal, &[])),
                    ..user(&self.collaborator, TokenScope::Admin)
                }
            }
            Who::CustomerA => user(&self.customer_a, TokenScope::Admin),
            Who::CustomerB => user(&self.customer_b, TokenScope::Admin),
            Who::Disabled => user(&self.disabled, TokenScope::Admin),
            Who::AdminRead => user(&self.admin, TokenScope::Read),
            Who::AgentRead => user(&self.agent, TokenScope::Read),
            Who::AgentWrite => user(&self.agent, TokenScope::Write),
        }
    }

    /// Every record, as a store holding this world would return them.
    pub fn records(&self) -> Vec<Record> {
        let mut out = vec![Record::Workspace(self.ws.clone())];
        out.extend([&self.ticket, &self.task, &self.purchase].map(|t| Record::ItemType(t.clone())));
        out.extend(self.users().into_iter().map(Record::User));
        out.push(Record::Team(self.team.clone()));
        out.extend(self.portfolios().into_iter().map(Record::Portfolio));
        out.extend(
            [&self.project, &self.other_project, &self.archived_project].map(|p| Record::Project(p.clone())),
        );
        out.extend(self.folders().into_iter().map(Record::Folder));
        out.extend(self.items().into_iter().map(Record::Item));
        out.push(Record::Link(self.link.clone()));
        out.extend(
            [&self.agent_token, &self.admin_token, &self.revoked_token].map(|t| Record::Token(t.clone())),
        );
        out.push(Record::Notification(self.notification.clone()));
        out
    }

    /// A record by id, like `store::get`.
    pub fn get<T: TypedRecord>(&self, id: impl Into<Uuid>) -> Option<T> {
        let id = id.into();
        self.records()
            .into_iter()
            .filter(|r| r.kind() == T::KIND)
            .find(|r| r.id() == id)
            .and_then(T::from_record)
    }

    pub fn users(&self) -> Vec<User> {
        [
            &self.admin,
            &self.manager,
            &self.agent,
            &self.collaborator,
            &self.customer_a,
            &self.customer_b,
            &self.disabled,
        ]
        .map(Clone::clone)
        .to_vec()
    }

    pub fn portfolios(&self) -> Vec<Portfolio> {
        [&self.portfolio, &self.sub_portfolio, &self.empty_portfolio].map(Clone::clone).to_vec()
    }

    pub fn folders(&self) -> Vec<Folder> {
        [&self.folder, &self.subfolder, &self.empty_folder, &self.other_folder].map(Clone::clone).to_vec()
    }

    pub fn items(&self) -> Vec<Item> {
        [&self.ticket_a, &self.ticket_b, &self.plan, &self.subtask, &self.purchase_item]
            .map(Clone::clone)
            .to_vec()
    }

    /// An item by reference, like `load_item` (the tables only name existing items).
    pub fn item(&self, r: ItemRef) -> Item {
        self.items()
            .into_iter()
            .find(|i| match r {
                ItemRef::Id(id) => i.id == id,
                ItemRef::Number(n) => i.number == n,
            })
            .unwrap_or_else(|| panic!("the fixture has no {r}"))
    }

    pub fn item_type_of(&self, item: &Item) -> ItemType {
        self.get::<ItemType>(item.item_type).expect("every fixture item has a type")
    }

    /// The would-be parent and its ancestors, nearest first, like `load_ancestors`.
    pub fn ancestors(&self, parent: Option<ItemId>) -> Vec<Item> {
        let mut chain = Vec::new();
        let mut cursor = parent;
        while let Some(item) = cursor.and_then(|id| self.get::<Item>(id)) {
            if chain.iter().any(|i: &Item| i.id == item.id) {
                break;
            }
            cursor = item.parent;
            chain.push(item);
        }
        chain
    }

    /// A readable name for an id in summaries: the fixture's field name, or `newN` for the Nth id
    /// a decision made up.
    pub fn name(&self, id: Uuid) -> String {
        let n = id.as_u128();
        if n < BASE {
            return format!("new{n}");
        }
        let named: [(Uuid, &str); 32] = [
            (self.ws.id.0, "ws"),
            (self.ticket.id.0, "ticket"),
            (self.task.id.0, "task"),
            (self.purchase.id.0, "purchase"),
            (self.admin.id.0, "admin"),
            (self.manager.id.0, "manager"),
            (self.agent.id.0, "agent"),
            (self.collaborator.id.0, "collaborator"),
            (self.customer_a.id.0, "customer_a"),
            (self.customer_b.id.0, "customer_b"),
            (self.disabled.id.0, "disabled"),
            (self.team.id.0, "team"),
            (self.portfolio.id.0, "portfolio"),
            (self.sub_portfolio.id.0, "sub_portfolio"),
            (self.empty_portfolio.id.0, "empty_portfolio"),
            (self.project.id.0, "project"),
            (self.other_project.id.0, "other_project"),
            (self.archived_project.id.0, "archived_project"),
            (self.folder.id.0, "folder"),
            (self.subfolder.id.0, "subfolder"),
            (self.empty_folder.id.0, "empty_folder"),
            (self.other_folder.id.0, "other_folder"),
            (self.ticket_a.id.0, "ticket_a"),
            (self.ticket_b.id.0, "ticket_b"),
            (self.plan.id.0, "plan"),
            (self.subtask.id.0, "subtask"),
            (self.purchase_item.id.0, "purchase_item"),
            (self.link.id.0, "link"),
            (self.agent_token.id.0, "agent_token"),
            (self.admin_token.id.0, "admin_token"),
            (self.revoked_token.id.0, "revoked_token"),
            (self.notification.id.0, "notification"),
        ];
        named.iter().find(|(x, _)| *x == id).map_or_else(|| id.to_string(), |(_, name)| name.to_string())
    }
}

/// Puts an item in a status of its type's workflow, with the category and `done_at` that go with
/// it (done items were finished at `t0`).
pub(super) fn set_status(item: &mut Item, t: &ItemType, key: &str) {
    let s = t.workflow.status(key).unwrap_or_else(|| panic!("no status {key}"));
    item.status = s.key.clone();
    item.category = s.category;
    item.done_at = s.category.is_done().then(t0);
}

// ---------------------------------------------------------------------------------------------
// Expectations

/// How a row must fail.
#[derive(Debug, Clone)]
pub(super) enum Fail {
    /// `Invalid` naming exactly `field`, with `reason` somewhere in its reason.
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    Forbidden(&'static str),
    NotFound(&'static str),
    Conflict(&'static str),
    TooLarge {
        size: u64,
    },
}

/// What a row must produce.
#[derive(Debug)]
pub(super) enum Expect<O> {
    /// A decision writing exactly `writes` and emitting exactly `events`, in order (see
    /// [`summarise`]), whose output passes `then`.
    Ok {
        writes: Vec<String>,
        events: Vec<String>,
        then: Option<fn(&World, &O)>,
    },
    Fail(Fail),
}

/// A decision writing `writes` and emitting `events`:
/// - writes: `+kind:name` (insert), `kind:name@v` (update of version `v`), `-kind:name@v`
///   (delete), `blob`;
/// - events: `event.name@item` (or just the name for workspace-level events).
pub(super) fn ok<O>(writes: &[&str], events: &[&str]) -> Expect<O> {
    Expect::Ok {
        writes: writes.iter().map(|s| s.to_string()).collect(),
        events: events.iter().map(|s| s.to_string()).collect(),
        then: None,
    }
}

/// A decision that changes nothing (an idempotent repeat).
pub(super) fn unchanged<O>() -> Expect<O> {
    ok(&[], &[])
}

impl<O> Expect<O> {
    /// Also checks the output.
    pub fn then(self, f: fn(&World, &O)) -> Expect<O> {
        match self {
            Expect::Ok { writes, events, .. } => Expect::Ok { writes, events, then: Some(f) },
            fail => fail,
        }
    }
}

pub(super) fn invalid<O>(field: &'static str, reason: &'static str) -> Expect<O> {
    Expect::Fail(Fail::Invalid { field, reason })
}

pub(super) fn forbidden<O>(reason: &'static str) -> Expect<O> {
    Expect::Fail(Fail::Forbidden(reason))
}

pub(super) fn not_found<O>(what: &'static str) -> Expect<O> {
    Expect::Fail(Fail::NotFound(what))
}

pub(super) fn conflict<O>(reason: &'static str) -> Expect<O> {
    Expect::Fail(Fail::Conflict(reason))
}

pub(super) fn too_large<O>(size: u64) -> Expect<O> {
    Expect::Fail(Fail::TooLarge { size })
}

fn kind_name<T: serde::Serialize>(kind: T) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The write and event summaries of a change set (see [`ok`]).
pub(super) fn summarise(w: &World, changes: &ChangeSet) -> (Vec<String>, Vec<String>) {
    let writes = changes
        .writes
        .iter()
        .map(|write| match write {
            Write::Put { record, expected_version: None } => {
                format!("+{}:{}", kind_name(record.kind()), w.name(record.id()))
            }
            Write::Put { record, expected_version: Some(v) } => {
                format!("{}:{}@{v}", kind_name(record.kind()), w.name(record.id()))
            }
            Write::Delete { kind, id, expected_version } => {
                format!("-{}:{}@{expected_version}", kind_name(*kind), w.name(*id))
            }
            Write::Blob { .. } => "blob".to_string(),
        })
        .collect();
    let events = changes
        .events
        .iter()
        .map(|e| match e.item {
            Some(item) => format!("{}@{}", e.data.name(), w.name(item.0)),
            None => e.data.name().to_string(),
        })
        .collect();
    (writes, events)
}

/// What every successful decision must satisfy, whatever the command: it is stamped with the
/// actor and `now`, stays inside one workspace, inserts at version 1, replaces a record with
/// the next version, and stores blobs under their hash.
fn check_invariants(actor: &Actor, changes: &ChangeSet, row: &str) {
    assert_eq!(changes.at, now(), "{row}: change set time");
    assert_eq!(changes.actor, actor.reference(), "{row}: change set actor");
    let creates_workspace =
        changes.writes.iter().any(|w| matches!(w, Write::Put { record: Record::Workspace(_), .. }));
    if !creates_workspace {
        assert_eq!(changes.workspace_id, actor.workspace_id, "{row}: change set workspace");
    }
    for write in &changes.writes {
        match write {
            Write::Put { record, expected_version } => {
                assert_eq!(
                    record.workspace_id(),
                    changes.workspace_id,
                    "{row}: {record:?} crosses workspaces"
                );
                assert_eq!(
                    record.version(),
                    expected_version.map_or(1, |v| v + 1),
                    "{row}: version of {record:?}"
                );
                if let Record::Item(item) = record {
                    assert_eq!(item.updated_at, now(), "{row}: an item write touches updated_at");
                    assert_eq!(
                        item.done_at.is_some(),
                        item.category.is_done(),
                        "{row}: done_at and category disagree on {item:?}"
                    );
                }
            }
            Write::Delete { .. } => {}
            Write::Blob { sha256, bytes } => assert_eq!(*sha256, sha256_hex(bytes), "{row}: blob address"),
        }
    }
}

impl Fail {
    fn check(&self, e: &DeskError, row: &str) {
        let ok = match (self, e) {
            (Fail::Invalid { field, reason }, DeskError::Invalid(i)) => {
                i.field == *field && i.reason.contains(reason)
            }
            (Fail::Forbidden(f), DeskError::Forbidden(r))
            | (Fail::NotFound(f), DeskError::NotFound(r))
            | (Fail::Conflict(f), DeskError::Conflict(r)) => r.contains(f),
            (Fail::TooLarge { size }, DeskError::TooLarge { size: s, limit, .. }) => {
                s == size && *limit == LIMIT
            }
            _ => false,
        };
        assert!(ok, "{row}: expected {self:?}, got {e:?}");
    }
}

/// Checks one decision against its expectation.
pub(super) fn check<O: Debug>(
    w: &World,
    actor: &Actor,
    result: Result<Decided<O>, DeskError>,
    expect: &Expect<O>,
    row: &str,
) {
    match (expect, result) {
        (Expect::Ok { writes, events, then }, Ok(decided)) => {
            check_invariants(actor, &decided.changes, row);
            let (got_writes, got_events) = summarise(w, &decided.changes);
            assert_eq!(&got_writes, writes, "{row}: writes");
            assert_eq!(&got_events, events, "{row}: events");
            if let Some(then) = then {
                eprintln!("checking the output of {row}");
                then(w, &decided.output);
            }
        }
        (Expect::Fail(fail), Err(e)) => fail.check(&e, row),
        (Expect::Ok { .. }, Err(e)) => panic!("{row}: expected success, got {e:?}"),
        (Expect::Fail(fail), Ok(decided)) => {
            panic!("{row}: expected {fail:?}, got success: {:?}", summarise(w, &decided.changes))
        }
    }
}

/// Runs a table: each row's state is what `load` would have read from `w`.
pub(super) fn table<C>(
    w: &World,
    load: impl Fn(&World, &C) -> C::State,
    rows: Vec<(Who, C, Expect<C::Output>)>,
) where
    C: Command + Debug,
    C::Output: Debug,
{
    table_as(w, |w, _, c| load(w, c), rows);
}

/// [`table`] for commands whose `load` depends on who asks.
pub(super) fn table_as<C>(
    w: &World,
    load: impl Fn(&World, &Actor, &C) -> C::State,
    rows: Vec<(Who, C, Expect<C::Output>)>,
) where
    C: Command + Debug,
    C::Output: Debug,
{
    assert!(!rows.is_empty());
    for (i, (who, cmd, expect)) in rows.into_iter().enumerate() {
        let actor = w.actor(who);
        let row = format!("row {i} ({who:?}, {cmd:?})");
        check(w, &actor, run(&cmd, &actor, load(w, &actor, &cmd)), &expect, &row);
    }
}

/// The fixture is what it claims to be: valid workflows and fields, one workspace, consistent
/// statuses, and every role present.
#[test]
fn the_fixture_is_consistent() {
    let w = World::new();
    for t in [&w.ticket, &w.task, &w.purchase] {
        t.workflow.validate().unwrap();
        for f in &t.fields {
            validate_def(f).unwrap();
        }
    }
    assert!(w.purchase.fields.iter().any(|f| f.required) && w.purchase.fields.iter().any(|f| f.internal));
    for r in w.records() {
        assert_eq!(r.workspace_id(), w.ws.id, "{r:?}");
        assert!(r.id().as_u128() >= BASE && !w.name(r.id()).starts_with("new"), "{r:?}");
    }
    for item in w.items() {
        let t = w.item_type_of(&item);
        assert_eq!(t.workflow.status(&item.status).map(|s| s.category), Some(item.category), "{item:?}");
        assert_eq!(item.kind, t.kind);
    }
    let roles: Vec<Role> = w.users().iter().map(|u| u.role).collect();
    for role in [Role::Admin, Role::Manager, Role::Agent, Role::Collaborator, Role::Customer] {
        assert!(roles.contains(&role), "{role:?}");
    }
    assert!(matches!(w.actor(Who::ServerAdmin).kind, ActorKind::ServerAdmin));
    assert_eq!(
        w.ancestors(Some(w.subtask.id)).iter().map(|i| i.id).collect::<Vec<_>>(),
        [w.subtask.id, w.plan.id]
    );
}
