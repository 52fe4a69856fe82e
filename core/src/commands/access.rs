//! Organizations, project membership and grants, join requests and the portal's visibility.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::access::{Action, Actor, Target, can};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::{Project, validate_title};
use crate::ids::{ItemTypeId, JoinRequestId, OrganizationId, ProjectId, UserId};
use crate::item::ItemType;
use crate::membership::{
    JoinRequest, JoinState, PortalBranding, PortalSettings, PortalVisibility, ProjectMember, ProjectRole,
    WebForm,
};
use crate::people::{Organization, Role, User, validate_domain};
use crate::store::{RecordQuery, Store, UserFilter, get, list};

/// How many existing contacts adding one domain may move into an organization in one commit.
/// Beyond that the change is refused (the commit would be too large), naming the domain.
pub const MAX_CONTACTS_JOINED: usize = 2_000;

/// Cleans a list of domains: valid, lowercase, no repeats.
fn clean_domains(domains: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::with_capacity(domains.len());
    for (i, d) in domains.iter().enumerate() {
        let d = validate_domain(&format!("domains[{i}]"), d)?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.len() > 100 {
        return Err(Invalid::new("domains", "at most 100 domains per organization"));
    }
    Ok(out)
}

/// What a change of an organization's domains needs: who holds each wanted domain now, and the
/// contacts at each domain the organization is about to gain.
#[derive(Debug, Clone, Default)]
pub struct DomainState {
    pub holders: Vec<(String, Organization)>,
    pub contacts: Vec<(String, Vec<User>)>,
}

async fn load_domains(
    store: &dyn Store,
    actor: &Actor,
    domains: &[String],
    current: &[String],
) -> Result<DomainState, DeskError> {
    let ws = actor.workspace_id;
    let mut state = DomainState::default();
    for d in domains.iter().filter_map(|d| validate_domain("domains", d).ok()) {
        if current.contains(&d) || state.holders.iter().any(|(x, _)| *x == d) {
            continue;
        }
        if let Some(o) = store.organization_by_domain(ws, &d).await? {
            state.holders.push((d.clone(), o));
        }
        let filter =
            UserFilter { email_domain: Some(d.clone()), organization: None, limit: MAX_CONTACTS_JOINED + 1 };
        state.contacts.push((d, store.users(ws, &filter).await?));
    }
    Ok(state)
}

/// Checks the wanted domains against their holders and writes the contacts who join.
fn take_domains(
    org: OrganizationId,
    domains: &[String],
    current: &[String],
    state: &DomainState,
    changes: &mut crate::change::ChangeSet,
) -> Result<(), DeskError> {
    for (i, d) in domains.iter().enumerate() {
        if current.contains(d) {
            continue;
        }
        if let Some((_, holder)) = state.holders.iter().find(|(x, o)| x == d && o.id != org) {
            return Err(Invalid::new(
                format!("domains[{i}]"),
                format!("{d} belongs to the organization '{}'", holder.name),
            )
            .into());
        }
        let contacts = state.contacts.iter().find(|(x, _)| x == d).map(|(_, c)| c.as_slice()).unwrap_or(&[]);
        if contacts.len() > MAX_CONTACTS_JOINED {
            return Err(Invalid::new(
                format!("domains[{i}]"),
                format!(
                    "more than {MAX_CONTACTS_JOINED} people use {d}; split it into smaller organizations"
                ),
            )
            .into());
        }
        // Customers without an organization join; staff and members of another organization
        // (set by hand) stay where they are.
        for u in contacts.iter().filter(|u| u.role == Role::Customer && u.organization.is_none()) {
            let next = User { organization: Some(org), version: u.version + 1, ..u.clone() };
            changes.event(
                None,
                EventData::RecordUpdated { record: RecordKind::User, id: u.id.0, changes: diff(u, &next) },
            );
            changes.update(Record::User(next), u.version);
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    pub name: String,
    #[serde(default)]
    pub domains: Vec<String>,
}

impl Command for CreateOrganization {
    type State = (Vec<Organization>, DomainState);
    type Output = Organization;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let all = list::<Organization>(store, actor.workspace_id, &RecordQuery::all()).await?;
        Ok((all, load_domains(store, actor, &self.domains, &[]).await?))
    }

    fn decide(
        &self,
        actor: &Actor,
        (all, domains): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Organization>, DeskError> {
        can(actor, Action::ManageUsers, Target::Workspace).into_result()?;
        let name = validate_title("name", &self.name, 200)?;
        if all.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
            return Err(DeskError::Conflict(format!("an organization called '{name}' exists")));
        }
        let org = Organization {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name,
            domains: clean_domains(&self.domains)?,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::Organization,
                id: org.id.0,
                name: org.name.clone(),
            },
        );
        changes.insert(Record::Organization(org.clone()));
        take_domains(org.id, &org.domains, &[], &domains, &mut changes)?;
        Ok(Decided { changes, output: org })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPatch {
    #[serde(default)]
    pub name: Option<String>,
    /// The whole new list. Contacts at an added domain join; removing a domain leaves its
    /// members in the organization (change them one by one).
    #[serde(default)]
    pub domains: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct UpdateOrganization {
    pub id: OrganizationId,
    pub patch: OrganizationPatch,
}

impl Command for UpdateOrganization {
    type State = (Organization, Vec<Organization>, DomainState);
    type Output = Organization;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let org = load::<Organization>(store, actor.workspace_id, self.id).await?;
        let all = list::<Organization>(store, actor.workspace_id, &RecordQuery::all()).await?;
        let wanted = self.patch.domains.as_deref().unwrap_or(&[]);
        let domains = load_domains(store, actor, wanted, &org.domains).await?;
        Ok((org, all, domains))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, all, domains): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Organization>, DeskError> {
        can(actor, Action::ManageUsers, Target::Workspace).into_result()?;
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            let name = validate_title("name", name, 200)?;
            if all.iter().any(|o| o.id != old.id && o.name.eq_ignore_ascii_case(&name)) {
                return Err(DeskError::Conflict(format!("an organization called '{name}' exists")));
            }
            next.name = name;
        }
        if let Some(d) = &self.patch.domains {
            next.domains = clean_domains(d)?;
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::Organization,
                id: old.id.0,
                changes: diff(&old, &next),
            },
        );
        changes.update(Record::Organization(next.clone()), old.version);
        take_domains(next.id, &next.domains, &old.domains, &domains, &mut changes)?;
        Ok(Decided { changes, output: next })
    }
}

/// Deletes an organization; its members (at most [`MAX_CONTACTS_JOINED`]) leave it in the same
/// commit.
#[derive(Debug, Clone)]
pub struct DeleteOrganization {
    pub id: OrganizationId,
}

impl Command for DeleteOrganization {
    type State = (Organization, Vec<User>);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let org = load::<Organization>(store, actor.workspace_id, self.id).await?;
        let filter =
            UserFilter { email_domain: None, organization: Some(org.id), limit: MAX_CONTACTS_JOINED + 1 };
        let members = store.users(actor.workspace_id, &filter).await?;
        Ok((org, members))
    }

    fn decide(
        &self,
        actor: &Actor,
        (org, members): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        can(actor, Action::ManageUsers, Target::Workspace).into_result()?;
        if members.len() > MAX_CONTACTS_JOINED {
            return Err(DeskError::Conflict(format!(
                "'{}' has more than {MAX_CONTACTS_JOINED} members; move some out first",
                org.name
            )));
        }
        let mut changes = env.changes(actor);
        for u in &members {
            let next = User { organization: None, version: u.version + 1, ..u.clone() };
            changes.event(
                None,
                EventData::RecordUpdated { record: RecordKind::User, id: u.id.0, changes: diff(u, &next) },
            );
            changes.update(Record::User(next), u.version);
        }
        changes.event(None, EventData::RecordDeleted { record: RecordKind::Organization, id: org.id.0 });
        changes.delete(RecordKind::Organization, org.id.0, org.version);
        Ok(Decided { changes, output: () })
    }
}

// ---------------------------------------------------------------------------------------------
// Project membership and grants

/// Which roles a person may hold on a project: customers get grants (viewer, commenter) only.
fn check_role(user: &User, role: ProjectRole) -> Result<(), Invalid> {
    if user.role == Role::Customer && role.works() {
        return Err(Invalid::new(
            "role",
            format!("{} is a customer; customers are granted viewer or commenter", user.name),
        ));
    }
    if !user.active {
        return Err(Invalid::new("user", format!("{} is disabled", user.name)));
    }
    Ok(())
}

fn member_event(old: Option<&ProjectMember>, next: &ProjectMember, user: &User) -> EventData {
    match old {
        None => EventData::RecordCreated {
            record: RecordKind::ProjectMember,
            id: next.id.0,
            name: format!("{} ({})", user.name, next.role.as_str()),
        },
        Some(old) => EventData::RecordUpdated {
            record: RecordKind::ProjectMember,
            id: old.id.0,
            changes: diff(old, next),
        },
    }
}

/// Gives a person a role on a project, or changes the role they have.
#[derive(Debug, Clone)]
pub struct SetProjectMember {
    pub project: ProjectId,
    pub user: UserId,
    pub role: ProjectRole,
}

impl Command for SetProjectMember {
    type State = (Project, User, Option<ProjectMember>);
    type Output = ProjectMember;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let project = load::<Project>(store, ws, self.project).await?;
        let user = get::<User>(store, ws, self.user.0)
            .await?
            .ok_or_else(|| Invalid::new("user", format!("no user {}", self.user)))?;
        let existing =
            get::<ProjectMember>(store, ws, ProjectMember::id_for(self.project, self.user).0).await?;
        Ok((project, user, existing))
    }

    fn decide(
        &self,
        actor: &Actor,
        (project, user, existing): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<ProjectMember>, DeskError> {
        can(actor, Action::ManageMembers, Target::Project(project.id)).into_result()?;
        check_role(&user, self.role)?;
        if let Some(old) = &existing
            && old.role == self.role
        {
            return Ok(Decided { changes: env.changes(actor), output: old.clone() });
        }
        let next = ProjectMember {
            id: ProjectMember::id_for(project.id, user.id),
            workspace_id: actor.workspace_id,
            project: project.id,
            user: user.id,
            role: self.role,
            created_at: existing.as_ref().map_or(env.now, |m| m.created_at),
            version: existing.as_ref().map_or(1, |m| m.version + 1),
        };
        let mut changes = env.changes(actor);
        changes.event(None, member_event(existing.as_ref(), &next, &user));
        match &existing {
            None => changes.insert(Record::ProjectMember(next.clone())),
            Some(old) => changes.update(Record::ProjectMember(next.clone()), old.version),
        };
        Ok(Decided { changes, output: next })
    }
}

/// Takes a person off a project: their access through it ends with this commit.
#[derive(Debug, Clone)]
pub struct RemoveProjectMember {
    pub project: ProjectId,
    pub user: UserId,
}

impl Command for RemoveProjectMember {
    type State = ProjectMember;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ProjectMember, DeskError> {
        get::<ProjectMember>(store, actor.workspace_id, ProjectMember::id_for(self.project, self.user).0)
            .await?
            .ok_or_else(|| DeskError::not_found(format!("user {} on project {}", self.user, self.project)))
    }

    fn decide(&self, actor: &Actor, m: ProjectMember, env: &Env<'_>) -> Result<Decided<()>, DeskError> {
        // Anyone may leave a project; others need to manage its members.
        if actor.user_id() != Some(m.user) {
            can(actor, Action::ManageMembers, Target::Project(m.project)).into_result()?;
        }
        let mut changes = env.changes(actor);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::ProjectMember, id: m.id.0 });
        changes.delete(RecordKind::ProjectMember, m.id.0, m.version);
        Ok(Decided { changes, output: () })
    }
}

/// A user asks to join a project.
#[derive(Debug, Clone)]
pub struct RequestToJoin {
    pub project: ProjectId,
    pub note: String,
    /// The role asked for; `member` when absent.
    pub role: Option<ProjectRole>,
}

impl Command for RequestToJoin {
    type State = (Project, Option<ProjectMember>, Vec<JoinRequest>);
    type Output = JoinRequest;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let id = self.project;
        let project = load::<Project>(store, ws, id).await?;
        let (existing, pending) = match actor.user_id() {
            Some(u) => (
                get::<ProjectMember>(store, ws, ProjectMember::id_for(id, u).0).await?,
                list::<JoinRequest>(store, ws, &RecordQuery::children_of(id.0)).await?,
            ),
            None => (None, Vec::new()),
        };
        Ok((project, existing, pending))
    }

    fn decide(
        &self,
        actor: &Actor,
        (project, existing, requests): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<JoinRequest>, DeskError> {
        can(actor, Action::RequestToJoin, Target::Project(project.id)).into_result()?;
        let Some(user) = actor.user_id() else {
            return Err(DeskError::Forbidden("only users ask to join projects".into()));
        };
        if existing.is_some() {
            return Err(DeskError::Conflict(format!("you are already on '{}'", project.name)));
        }
        if let Some(r) = requests.iter().find(|r| r.user == user && r.state == JoinState::Pending) {
            return Ok(Decided { changes: env.changes(actor), output: r.clone() });
        }
        let note = self.note.trim();
        if note.chars().count() > 2000 {
            return Err(Invalid::new("note", "at most 2000 characters").into());
        }
        let request = JoinRequest {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            project: project.id,
            user,
            note: note.to_string(),
            state: JoinState::Pending,
            role: self.role.unwrap_or(ProjectRole::Member),
            decided_by: None,
            decided_at: None,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::JoinRequest,
                id: request.id.0,
                name: format!("join {}", project.name),
            },
        );
        changes.insert(Record::JoinRequest(request.clone()));
        Ok(Decided { changes, output: request })
    }
}

/// Approves (creating the membership in the same commit) or denies a pending join request.
#[derive(Debug, Clone)]
pub struct DecideJoinRequest {
    pub id: JoinRequestId,
    pub approve: bool,
    /// Overrides the role asked for, on approval.
    pub role: Option<ProjectRole>,
}

impl Command for DecideJoinRequest {
    type State = (JoinRequest, User, Option<ProjectMember>);
    type Output = JoinRequest;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let request = load::<JoinRequest>(store, ws, self.id).await?;
        let user = load::<User>(store, ws, request.user).await?;
        let existing =
            get::<ProjectMember>(store, ws, ProjectMember::id_for(request.project, user.id).0).await?;
        Ok((request, user, existing))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, user, existing): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<JoinRequest>, DeskError> {
        can(actor, Action::ManageMembers, Target::Project(old.project)).into_result()?;
        if old.state != JoinState::Pending {
            return Err(DeskError::Conflict(
                format!("the request was already {:?}", old.state).to_lowercase(),
            ));
        }
        let next = JoinRequest {
            state: if self.approve { JoinState::Approved } else { JoinState::Denied },
            role: self.role.unwrap_or(old.role),
            decided_by: actor.user_id(),
            decided_at: Some(env.now),
            version: old.version + 1,
            ..old.clone()
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::JoinRequest,
                id: old.id.0,
                changes: diff(&old, &next),
            },
        );
        changes.update(Record::JoinRequest(next.clone()), old.version);
        if self.approve {
            check_role(&user, next.role)?;
            let member = ProjectMember {
                id: ProjectMember::id_for(old.project, user.id),
                workspace_id: actor.workspace_id,
                project: old.project,
                user: user.id,
                role: next.role,
                created_at: existing.as_ref().map_or(env.now, |m| m.created_at),
                version: existing.as_ref().map_or(1, |m| m.version + 1),
            };
            changes.event(None, member_event(existing.as_ref(), &member, &user));
            match &existing {
                None => changes.insert(Record::ProjectMember(member)),
                Some(m) => changes.update(Record::ProjectMember(member), m.version),
            };
        }
        Ok(Decided { changes, output: next })
    }
}

// ---------------------------------------------------------------------------------------------
// Portal visibility

/// Sets what customers see in the portal: the workspace default and per-type overrides
/// (`null` removes a type's override).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigurePortal {
    #[serde(default)]
    pub visibility: Option<PortalVisibility>,
    #[serde(default)]
    pub by_type: BTreeMap<ItemTypeId, Option<PortalVisibility>>,
    /// Replaces the branding when present.
    #[serde(default)]
    pub branding: Option<PortalBranding>,
    /// Whether public forms accept requests without a sign-in.
    #[serde(default)]
    pub open_forms: Option<bool>,
    /// Sets (or, with `null`, removes) a type's public web form.
    #[serde(default)]
    pub forms: BTreeMap<ItemTypeId, Option<WebForm>>,
}

impl Command for ConfigurePortal {
    type State = (Option<PortalSettings>, Vec<ItemType>);
    type Output = PortalSettings;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        Ok((
            get::<PortalSettings>(store, ws, ws.0).await?,
            list::<ItemType>(store, ws, &RecordQuery::all()).await?,
        ))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, types): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<PortalSettings>, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        let base = old.clone().unwrap_or_else(|| PortalSettings::empty(actor.workspace_id));
        let mut next = base.clone();
        if let Some(v) = self.visibility {
            next.visibility = v;
        }
        for (t, v) in &self.by_type {
            if !types.iter().any(|x| x.id == *t) {
                return Err(Invalid::new(format!("by_type.{t}"), "no such item type").into());
            }
            match v {
                Some(v) => next.by_type.insert(*t, *v),
                None => next.by_type.remove(t),
            };
        }
        if let Some(branding) = &self.branding {
            branding.validate()?;
            next.branding = branding.clone();
        }
        if let Some(open) = self.open_forms {
            next.open_forms = open;
        }
        for (t, form) in &self.forms {
            if !types.iter().any(|x| x.id == *t) {
                return Err(Invalid::new(format!("forms.{t}"), "no such item type").into());
            }
            match form {
                Some(form) => {
                    form.validate(&format!("forms.{t}"))?;
                    next.forms.insert(*t, form.clone())
                }
                None => next.forms.remove(t),
            };
        }
        if next == base && old.is_some() {
            return Ok(Decided { changes: env.changes(actor), output: base });
        }
        next.version = base.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::PortalSettings,
                id: next.id.0,
                changes: diff(&base, &next),
            },
        );
        match old {
            None => changes.insert(Record::PortalSettings(next.clone())),
            Some(o) => changes.update(Record::PortalSettings(next.clone()), o.version),
        };
        Ok(Decided { changes, output: next })
    }
}
