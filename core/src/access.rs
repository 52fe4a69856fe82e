//! Who may do what: one pure function, [`can`], consulted by `Desk` for every command and query.
//! Its answer carries the reason, which the API returns with a 403.

use std::collections::BTreeMap;

use crate::ids::{ItemTypeId, OrganizationId, ProjectId, UserId, WorkspaceId};
use crate::item::{ActorRef, Item};
use crate::membership::{PortalSettings, PortalVisibility, ProjectMember, ProjectRole};
use crate::people::{Role, TokenScope, User};
use crate::store::{ItemScope, PortalScope};

/// The authenticated party a command runs for.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub workspace_id: WorkspaceId,
    pub kind: ActorKind,
    /// What the credential allows, whatever the role would.
    pub scope: TokenScope,
    /// The user's project roles and portal scope, read by `Desk` from the store at the start of
    /// every command and query (never cached across them, so a removed membership stops access
    /// at once). `None` until then: `can` treats it as no memberships and the narrowest scope.
    pub access: Option<Access>,
}

/// What a collaborator or customer may reach beyond their role: their project roles and, for
/// customers, the portal scope. Staff with a workspace-wide role need none.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    pub projects: BTreeMap<ProjectId, ProjectRole>,
    pub items: ItemScope,
}

impl Access {
    /// Computes a user's access from their memberships, the workspace's portal settings and its
    /// item types. Pure: `Desk` loads the inputs.
    pub fn of(
        user: &User,
        memberships: &[ProjectMember],
        portal: &PortalSettings,
        item_types: &[ItemTypeId],
    ) -> Self {
        let projects: BTreeMap<ProjectId, ProjectRole> =
            memberships.iter().filter(|m| m.user == user.id).map(|m| (m.project, m.role)).collect();
        let items = match user.role {
            Role::Admin | Role::Manager | Role::Agent => ItemScope::All,
            Role::Collaborator => ItemScope::Projects(projects.keys().copied().collect()),
            Role::Customer => {
                let of = |v: PortalVisibility| -> Vec<ItemTypeId> {
                    item_types.iter().copied().filter(|t| portal.for_type(*t) == v).collect()
                };
                ItemScope::Portal(PortalScope {
                    user: user.id,
                    organization: user.organization,
                    organization_types: if user.organization.is_some() {
                        of(PortalVisibility::Organization)
                    } else {
                        Vec::new()
                    },
                    public_types: of(PortalVisibility::AllPublic),
                    projects: projects.keys().copied().collect(),
                })
            }
        };
        Self { projects, items }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActorKind {
    /// The server operator's bootstrap token: full rights in every workspace.
    ServerAdmin,
    /// Tandem itself (automations, mail intake, timers).
    System,
    User(User),
}

impl Actor {
    pub fn user(user: User, scope: TokenScope) -> Self {
        Self { workspace_id: user.workspace_id, kind: ActorKind::User(user), scope, access: None }
    }

    pub fn server_admin(workspace_id: WorkspaceId) -> Self {
        Self { workspace_id, kind: ActorKind::ServerAdmin, scope: TokenScope::Admin, access: None }
    }

    pub fn system(workspace_id: WorkspaceId) -> Self {
        Self { workspace_id, kind: ActorKind::System, scope: TokenScope::Admin, access: None }
    }

    /// The actor's role on a project, from its resolved access.
    pub fn project_role(&self, project: ProjectId) -> Option<ProjectRole> {
        self.access.as_ref().and_then(|a| a.projects.get(&project).copied())
    }

    pub fn reference(&self) -> ActorRef {
        match &self.kind {
            ActorKind::ServerAdmin => ActorRef::ServerAdmin,
            ActorKind::System => ActorRef::System,
            ActorKind::User(u) => ActorRef::User(u.id),
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match &self.kind {
            ActorKind::User(u) => Some(u.id),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match &self.kind {
            ActorKind::User(u) => Some(u.role),
            _ => None,
        }
    }

    /// Staff, the server admin and the system see internal messages; customers never do.
    pub fn is_staff(&self) -> bool {
        self.role().is_none_or(Role::is_staff)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create workspaces, rename the workspace.
    AdministerWorkspace,
    /// Portfolios, projects, folders, item types, workflows, custom fields, teams.
    ManageStructure,
    /// Create and change people and their roles, issue tokens for others.
    ManageUsers,
    /// Read the workspace's structure and directory (projects, types, users, teams).
    ViewDirectory,
    /// Read the workspace event log and job queue.
    ViewAudit,
    CreateItem,
    ViewItem,
    EditItem,
    TransitionItem,
    AssignItem,
    ManageFollowers,
    ConvertItem,
    LinkItems,
    PostPublicMessage,
    PostInternalMessage,
    ViewInternal,
    AddAttachment,
    ViewHistory,
    /// Add, change and remove a project's members and grants; approve or deny join requests.
    ManageMembers,
    /// Ask to join a project.
    RequestToJoin,
}

impl Action {
    fn needs(self) -> TokenScope {
        match self {
            Action::ViewDirectory
            | Action::ViewAudit
            | Action::ViewItem
            | Action::ViewInternal
            | Action::ViewHistory => TokenScope::Read,
            Action::AdministerWorkspace | Action::ManageStructure | Action::ManageUsers => TokenScope::Admin,
            // A project manager's everyday work, not workspace administration.
            _ => TokenScope::Write,
        }
    }
}

/// What an action is about.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Workspace,
    Item(&'a Item),
    /// An item together with the organization of its requester, which portal visibility by
    /// organization needs (`Item` alone counts as "requester in no organization").
    ItemOf {
        item: &'a Item,
        requester_organization: Option<OrganizationId>,
    },
    Project(ProjectId),
    /// A person being created or changed, with the role they would have afterwards.
    Person {
        current: Option<&'a User>,
        new_role: Role,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

impl Decision {
    fn allow(reason: impl Into<String>) -> Self {
        Self { allowed: true, reason: reason.into() }
    }

    fn deny(reason: impl Into<String>) -> Self {
        Self { allowed: false, reason: reason.into() }
    }

    pub fn into_result(self) -> Result<(), crate::DeskError> {
        if self.allowed { Ok(()) } else { Err(crate::DeskError::Forbidden(self.reason)) }
    }
}

fn involves(item: &Item, user: UserId) -> bool {
    item.requester == Some(user) || item.followers.contains(&user)
}

/// The item a target is about, with its requester's organization when known.
fn item_of<'a>(target: Target<'a>) -> Option<(&'a Item, Option<OrganizationId>)> {
    match target {
        Target::Item(item) => Some((item, None)),
        Target::ItemOf { item, requester_organization } => Some((item, requester_organization)),
        _ => None,
    }
}

/// Decides whether `actor` may perform `action` on `target`, and why.
pub fn can(actor: &Actor, action: Action, target: Target<'_>) -> Decision {
    if let Some((item, _)) = item_of(target)
        && item.workspace_id != actor.workspace_id
    {
        return Decision::deny("the item belongs to another workspace");
    }
    if actor.scope < action.needs() {
        return Decision::deny(format!(
            "this token's scope is {:?}; the action needs {:?}",
            actor.scope,
            action.needs()
        ));
    }
    let user = match &actor.kind {
        ActorKind::ServerAdmin => return Decision::allow("server administrator"),
        ActorKind::System => return Decision::allow("Tandem itself"),
        ActorKind::User(user) => user,
    };
    if !user.active {
        return Decision::deny("the account is disabled");
    }
    use Action::*;
    match user.role {
        Role::Admin => Decision::allow("workspace administrator"),
        Role::Manager => match (action, target) {
            (AdministerWorkspace, _) => Decision::deny("only administrators change workspace settings"),
            (ManageUsers, Target::Person { current, new_role }) => {
                if new_role == Role::Admin || current.is_some_and(|u| u.role == Role::Admin) {
                    Decision::deny("only administrators create or change administrators")
                } else {
                    Decision::allow("managers manage people")
                }
            }
            _ => Decision::allow("managers may do this"),
        },
        Role::Agent => match (action, target) {
            (AdministerWorkspace | ManageStructure | ManageUsers, _) => {
                Decision::deny("agents cannot change the workspace's structure or people")
            }
            (ManageMembers, _) => project_manager(actor, target),
            _ => Decision::allow("agents work on every item"),
        },
        Role::Collaborator => collaborator(actor, action, target),
        Role::Customer => customer(actor, user, action, target),
    }
}

/// Managing a project's members: a manager of that project (workspace managers and admins are
/// allowed before this is asked).
fn project_manager(actor: &Actor, target: Target<'_>) -> Decision {
    match target {
        Target::Project(p) if actor.project_role(p) == Some(ProjectRole::Manager) => {
            Decision::allow("a manager of the project")
        }
        _ => Decision::deny("only workspace managers and the project's managers manage its members"),
    }
}

/// Collaborators work only inside the projects they belong to, as far as their project role goes.
fn collaborator(actor: &Actor, action: Action, target: Target<'_>) -> Decision {
    use Action::*;
    match action {
        AdministerWorkspace | ManageStructure | ManageUsers | ViewAudit => {
            return Decision::deny("collaborators cannot change the workspace's structure or people");
        }
        PostPublicMessage => {
            return Decision::deny("collaborators write internal notes; only agents answer requesters");
        }
        ManageMembers => return project_manager(actor, target),
        RequestToJoin | ViewDirectory => return Decision::allow("collaborators may do this"),
        _ => {}
    }
    let Some((item, _)) = item_of(target) else {
        // Listing and searching: the item scope limits what they see.
        return Decision::allow("collaborators see the items of their projects");
    };
    let Some(role) = item.project.and_then(|p| actor.project_role(p)) else {
        return Decision::deny("collaborators see only the items of projects they belong to");
    };
    let (ok, needs) = match action {
        ViewItem | ViewInternal | ViewHistory => (true, ""),
        PostInternalMessage | AddAttachment => (role.comments(), "commenter"),
        _ => (role.works(), "member"),
    };
    if ok {
        Decision::allow(format!("a {} of the item's project", role.as_str()))
    } else {
        Decision::deny(format!(
            "a {} of the project may not do this; it needs the {needs} role or above",
            role.as_str()
        ))
    }
}

/// Customers see what the portal scope admits and write only where they take part.
fn customer(actor: &Actor, user: &User, action: Action, target: Target<'_>) -> Decision {
    use Action::*;
    let granted = |item: &Item| item.project.and_then(|p| actor.project_role(p));
    match (action, item_of(target)) {
        (CreateItem, _) => Decision::allow("customers submit requests"),
        (ViewItem, Some((item, requester_organization))) => {
            if involves(item, user.id) {
                return Decision::allow("the customer requested or follows this item");
            }
            let scope = item_scope(actor);
            if scope.admits(item, requester_organization) {
                Decision::allow("the portal shows this item to the customer")
            } else {
                Decision::deny("customers see only the items the portal shows them")
            }
        }
        (PostPublicMessage | AddAttachment, Some((item, _))) => {
            if involves(item, user.id) {
                Decision::allow("the customer requested or follows this item")
            } else if granted(item).is_some_and(ProjectRole::comments) {
                Decision::allow("the customer may comment on the project's items")
            } else {
                Decision::deny("customers reply only on their own requests")
            }
        }
        _ => Decision::deny("customers cannot do this"),
    }
}

/// Checks `action` on an item. An actor who may not even see the item is told it does not exist,
/// so a refusal never reveals which items exist; otherwise a refusal says why.
pub fn check_item(actor: &Actor, action: Action, item: &Item) -> Result<(), crate::DeskError> {
    let about_the_actor = matches!(&actor.kind, ActorKind::User(u) if !u.active);
    if !about_the_actor && !can(actor, Action::ViewItem, Target::Item(item)).allowed {
        return Err(crate::DeskError::NotFound(format!("item #{}", item.number)));
    }
    can(actor, action, Target::Item(item)).into_result()
}

/// The items an actor may list and search, for pushing down into storage: everything for
/// workspace-wide roles; for collaborators and customers what their resolved [`Access`] says, or
/// — before `Desk` resolved it — the narrowest scope of their role.
pub fn item_scope(actor: &Actor) -> ItemScope {
    match &actor.kind {
        ActorKind::User(u) if matches!(u.role, Role::Collaborator | Role::Customer) => match &actor.access {
            Some(a) => a.items.clone(),
            None if u.role == Role::Customer => ItemScope::Involving(u.id),
            None => ItemScope::Projects(Vec::new()),
        },
        _ => ItemScope::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ItemId, ItemTypeId};
    use crate::item::{Channel, ItemKind, Priority};
    use crate::workflow::StatusCategory;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn ws() -> WorkspaceId {
        WorkspaceId(Uuid::from_u128(1))
    }

    fn user(n: u128, role: Role) -> User {
        User {
            id: UserId(Uuid::from_u128(n)),
            workspace_id: ws(),
            name: format!("u{n}"),
            email: None,
            handle: None,
            role,
            active: true,
            email_bounce: None,
            organization: None,
            created_at: chrono::Utc.timestamp_opt(0, 0).unwrap(),
            version: 1,
        }
    }

    fn item(requester: UserId) -> Item {
        let t = chrono::Utc.timestamp_opt(0, 0).unwrap();
        Item {
            id: ItemId(Uuid::from_u128(100)),
            workspace_id: ws(),
            number: 1,
            item_type: ItemTypeId(Uuid::from_u128(50)),
            kind: ItemKind::Ticket,
            title: "t".into(),
            description: String::new(),
            project: None,
            folder: None,
            parent: None,
            requester: Some(requester),
            assignees: vec![],
            followers: vec![],
            priority: Priority::Normal,
            status: "triage".into(),
            category: StatusCategory::New,
            custom: Default::default(),
            channel: Channel::Api,
            created_by: ActorRef::System,
            created_at: t,
            updated_at: t,
            done_at: None,
            plan: Default::default(),
            version: 1,
        }
    }

    #[test]
    fn role_table() {
        let customer = user(10, Role::Customer);
        let other_customer = user(11, Role::Customer);
        let mine = item(customer.id);
        use Action::*;
        // (role, action, on own item?, expected)
        let table: &[(Role, Action, bool)] = &[
            (Role::Admin, AdministerWorkspace, true),
            (Role::Manager, AdministerWorkspace, false),
            (Role::Manager, ManageStructure, true),
            (Role::Agent, ManageStructure, false),
            (Role::Agent, PostPublicMessage, true),
            (Role::Agent, ViewInternal, true),
            (Role::Collaborator, PostPublicMessage, false),
            // Collaborators work only inside projects they belong to; this item is in none.
            (Role::Collaborator, PostInternalMessage, false),
            (Role::Collaborator, ViewItem, false),
            (Role::Customer, CreateItem, true),
            (Role::Customer, ViewInternal, false),
            (Role::Customer, PostInternalMessage, false),
            (Role::Customer, TransitionItem, false),
            (Role::Customer, ViewHistory, false),
        ];
        for &(role, action, expected) in table {
            let actor = if role == Role::Customer {
                Actor::user(customer.clone(), TokenScope::Admin)
            } else {
                Actor::user(user(20, role), TokenScope::Admin)
            };
            let d = can(&actor, action, Target::Item(&mine));
            assert_eq!(d.allowed, expected, "{role:?} {action:?}: {}", d.reason);
            assert!(!d.reason.is_empty());
        }
        let stranger = Actor::user(other_customer, TokenScope::Admin);
        assert!(!can(&stranger, ViewItem, Target::Item(&mine)).allowed);
        assert!(can(&Actor::user(customer, TokenScope::Admin), ViewItem, Target::Item(&mine)).allowed);
    }

    #[test]
    fn scopes_disabled_accounts_and_tenancy() {
        let agent = user(20, Role::Agent);
        let mine = item(agent.id);
        assert!(
            !can(&Actor::user(agent.clone(), TokenScope::Read), Action::EditItem, Target::Item(&mine))
                .allowed
        );
        assert!(
            can(&Actor::user(agent.clone(), TokenScope::Read), Action::ViewItem, Target::Item(&mine)).allowed
        );
        let disabled = User { active: false, ..agent.clone() };
        assert!(
            !can(&Actor::user(disabled, TokenScope::Write), Action::ViewItem, Target::Item(&mine)).allowed
        );
        let foreign = Item { workspace_id: WorkspaceId(Uuid::from_u128(2)), ..mine };
        assert!(!can(&Actor::server_admin(ws()), Action::ViewItem, Target::Item(&foreign)).allowed);
    }

    #[test]
    fn managers_cannot_touch_admins() {
        let manager = Actor::user(user(30, Role::Manager), TokenScope::Admin);
        let admin = user(31, Role::Admin);
        let agent = user(32, Role::Agent);
        assert!(
            !can(&manager, Action::ManageUsers, Target::Person { current: None, new_role: Role::Admin })
                .allowed
        );
        assert!(
            !can(
                &manager,
                Action::ManageUsers,
                Target::Person { current: Some(&admin), new_role: Role::Agent }
            )
            .allowed
        );
        assert!(
            can(
                &manager,
                Action::ManageUsers,
                Target::Person { current: Some(&agent), new_role: Role::Manager }
            )
            .allowed
        );
    }
}
