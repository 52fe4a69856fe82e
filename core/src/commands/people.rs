//! Users, teams and API tokens.

use serde::Deserialize;

use crate::access::{Action, Actor, Target, can};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::validate_title;
use crate::ids::{OrganizationId, TeamId, TokenId, UserId};
use crate::people::{
    ApiToken, Organization, Role, Team, TokenScope, User, email_domain, normalise_email, validate_handle,
};
use crate::store::{RecordQuery, Store, list};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub handle: Option<String>,
    pub role: Role,
}

/// Users already holding the email or handle someone wants to use.
async fn holders(
    store: &dyn Store,
    actor: &Actor,
    email: Option<&str>,
    handle: Option<&str>,
) -> Result<Vec<User>, DeskError> {
    let ws = actor.workspace_id;
    let mut found = Vec::new();
    if let Some(email) = email.and_then(|e| normalise_email("email", e).ok()) {
        found.extend(store.user_by_email(ws, &email).await?);
    }
    if let Some(handle) = handle.and_then(|h| validate_handle("handle", h).ok()) {
        found.extend(store.users_by_handles(ws, &[handle]).await?);
    }
    Ok(found)
}

fn check_unique(
    me: Option<UserId>,
    holders: &[User],
    email: &Option<String>,
    handle: &Option<String>,
) -> Result<(), DeskError> {
    for other in holders.iter().filter(|u| Some(u.id) != me) {
        if email.is_some() && other.email == *email {
            return Err(DeskError::Conflict(format!(
                "another person already uses {}",
                email.as_deref().unwrap_or("")
            )));
        }
        if handle.is_some() && other.handle == *handle {
            return Err(DeskError::Conflict(format!(
                "the handle @{} is taken",
                handle.as_deref().unwrap_or("")
            )));
        }
    }
    Ok(())
}

fn clean_email(email: &Option<String>) -> Result<Option<String>, Invalid> {
    email.as_deref().filter(|e| !e.trim().is_empty()).map(|e| normalise_email("email", e)).transpose()
}

fn clean_handle(handle: &Option<String>) -> Result<Option<String>, Invalid> {
    handle.as_deref().filter(|h| !h.trim().is_empty()).map(|h| validate_handle("handle", h)).transpose()
}

/// The organization owning the domain of `email`, for a customer about to be created.
async fn organization_of(
    store: &dyn Store,
    actor: &Actor,
    role: Role,
    email: Option<&str>,
) -> Result<Option<Organization>, DeskError> {
    let Some(email) = email.and_then(|e| normalise_email("email", e).ok()) else { return Ok(None) };
    match email_domain(&email) {
        Some(domain) if role == Role::Customer => {
            Ok(store.organization_by_domain(actor.workspace_id, domain).await?)
        }
        _ => Ok(None),
    }
}

impl Command for CreateUser {
    type State = (Vec<User>, Option<Organization>);
    type Output = User;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let holders = holders(store, actor, self.email.as_deref(), self.handle.as_deref()).await?;
        Ok((holders, organization_of(store, actor, self.role, self.email.as_deref()).await?))
    }

    fn decide(
        &self,
        actor: &Actor,
        (holders, organization): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<User>, DeskError> {
        can(actor, Action::ManageUsers, Target::Person { current: None, new_role: self.role })
            .into_result()?;
        let email = clean_email(&self.email)?;
        let handle = clean_handle(&self.handle)?;
        if self.role.is_staff() && email.is_none() {
            return Err(Invalid::new("email", "staff need an email address").into());
        }
        check_unique(None, &holders, &email, &handle)?;
        // Customers join the organization owning their email's domain.
        let organization = organization
            .filter(|o| {
                self.role == Role::Customer
                    && email
                        .as_deref()
                        .and_then(email_domain)
                        .is_some_and(|d| o.domains.iter().any(|x| x == d))
            })
            .map(|o| o.id);
        let user = User {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: validate_title("name", &self.name, 200)?,
            email,
            handle,
            role: self.role,
            active: true,
            email_bounce: None,
            organization,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::User, id: user.id.0, name: user.name.clone() },
        );
        changes.insert(Record::User(user.clone()));
        Ok(Decided { changes, output: user })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub handle: Option<Option<String>>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub active: Option<bool>,
    /// The customer's organization; `null` takes them out of it.
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub organization: Option<Option<OrganizationId>>,
}

#[derive(Debug, Clone)]
pub struct UpdateUser {
    pub id: UserId,
    pub patch: UserPatch,
}

impl Command for UpdateUser {
    type State = (User, Vec<User>, Option<Organization>);
    type Output = User;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let user = load::<User>(store, actor.workspace_id, self.id).await?;
        let email = self.patch.email.clone().flatten();
        let handle = self.patch.handle.clone().flatten();
        let organization = match self.patch.organization {
            Some(Some(id)) => Some(
                crate::store::get::<Organization>(store, actor.workspace_id, id.0)
                    .await?
                    .ok_or_else(|| Invalid::new("organization", format!("no organization {id}")))?,
            ),
            // A new address: the organization owning its domain, which a customer without one joins.
            None if email.is_some() => {
                organization_of(store, actor, self.patch.role.unwrap_or(user.role), email.as_deref()).await?
            }
            _ => None,
        };
        Ok((user, holders(store, actor, email.as_deref(), handle.as_deref()).await?, organization))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, holders, organization): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<User>, DeskError> {
        let new_role = self.patch.role.unwrap_or(old.role);
        can(actor, Action::ManageUsers, Target::Person { current: Some(&old), new_role }).into_result()?;
        if actor.user_id() == Some(old.id) && (self.patch.active == Some(false) || new_role != old.role) {
            return Err(DeskError::Forbidden("you cannot disable yourself or change your own role".into()));
        }
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            next.name = validate_title("name", name, 200)?;
        }
        if let Some(email) = &self.patch.email {
            next.email = clean_email(email)?;
            if next.email != old.email {
                next.email_bounce = None;
            }
        }
        if let Some(handle) = &self.patch.handle {
            next.handle = clean_handle(handle)?;
        }
        next.role = new_role;
        if next.role.is_staff() && next.email.is_none() {
            return Err(Invalid::new("email", "staff need an email address").into());
        }
        check_unique(Some(old.id), &holders, &next.email, &next.handle)?;
        if let Some(active) = self.patch.active {
            next.active = active;
        }
        match self.patch.organization {
            Some(wanted) => next.organization = wanted.and(organization.map(|o| o.id)),
            // Like a new contact, a customer whose new address is at an organization's domain
            // joins it, unless they already belong to one.
            None if next.email != old.email && next.organization.is_none() && next.role == Role::Customer => {
                next.organization = organization
                    .filter(|o| {
                        next.email
                            .as_deref()
                            .and_then(email_domain)
                            .is_some_and(|d| o.domains.iter().any(|x| x == d))
                    })
                    .map(|o| o.id);
            }
            None => {}
        }
        if next.role.is_staff() {
            if self.patch.organization.flatten().is_some() {
                return Err(Invalid::new("organization", "only customers belong to organizations").into());
            }
            next.organization = None;
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::User, id: old.id.0, changes: diff(&old, &next) },
        );
        changes.update(Record::User(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    #[serde(default)]
    pub members: Vec<UserId>,
}

/// Loads the given users, answering `Invalid` naming the first unknown one.
async fn load_members(store: &dyn Store, actor: &Actor, ids: &[UserId]) -> Result<Vec<User>, DeskError> {
    let mut users = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        match crate::store::get::<User>(store, actor.workspace_id, id.0).await? {
            Some(u) => users.push(u),
            None => return Err(Invalid::new(format!("members[{i}]"), format!("no user {id}")).into()),
        }
    }
    Ok(users)
}

fn check_members(users: &[User]) -> Result<Vec<UserId>, Invalid> {
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        if !u.role.is_staff() {
            return Err(Invalid::new(
                format!("members[{i}]"),
                format!("{} is a customer; teams are staff", u.name),
            ));
        }
        if !ids.contains(&u.id) {
            ids.push(u.id);
        }
    }
    Ok(ids)
}

impl Command for CreateTeam {
    type State = (Vec<User>, Vec<Team>);
    type Output = Team;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let members = load_members(store, actor, &self.members).await?;
        let teams = list::<Team>(store, actor.workspace_id, &RecordQuery::all()).await?;
        Ok((members, teams))
    }

    fn decide(
        &self,
        actor: &Actor,
        (members, teams): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Team>, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        let name = validate_title("name", &self.name, 120)?;
        if teams.iter().any(|t| t.name.eq_ignore_ascii_case(&name)) {
            return Err(DeskError::Conflict(format!("a team called '{name}' exists")));
        }
        let team = Team {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name,
            members: check_members(&members)?,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::Team, id: team.id.0, name: team.name.clone() },
        );
        changes.insert(Record::Team(team.clone()));
        Ok(Decided { changes, output: team })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub members: Option<Vec<UserId>>,
}

#[derive(Debug, Clone)]
pub struct UpdateTeam {
    pub id: TeamId,
    pub patch: TeamPatch,
}

impl Command for UpdateTeam {
    type State = (Team, Vec<User>, Vec<Team>);
    type Output = Team;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let team = load::<Team>(store, actor.workspace_id, self.id).await?;
        let members = load_members(store, actor, self.patch.members.as_deref().unwrap_or(&[])).await?;
        let teams = list::<Team>(store, actor.workspace_id, &RecordQuery::all()).await?;
        Ok((team, members, teams))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, members, teams): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Team>, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            let name = validate_title("name", name, 120)?;
            if teams.iter().any(|t| t.id != old.id && t.name.eq_ignore_ascii_case(&name)) {
                return Err(DeskError::Conflict(format!("a team called '{name}' exists")));
            }
            next.name = name;
        }
        if self.patch.members.is_some() {
            next.members = check_members(&members)?;
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::Team, id: old.id.0, changes: diff(&old, &next) },
        );
        changes.update(Record::Team(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Issues an API token for a user. The caller generates the secret and passes only its SHA-256;
/// the secret itself never reaches the core or the store.
#[derive(Debug, Clone)]
pub struct IssueToken {
    pub user: UserId,
    pub name: String,
    pub scope: TokenScope,
    pub secret_sha256: String,
}

impl Command for IssueToken {
    type State = User;
    type Output = ApiToken;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<User, DeskError> {
        load::<User>(store, actor.workspace_id, self.user).await
    }

    fn decide(&self, actor: &Actor, user: User, env: &Env<'_>) -> Result<Decided<ApiToken>, DeskError> {
        if actor.user_id() == Some(user.id) {
            // Anyone may make themselves a token, but never one wider than the credential in use.
            if self.scope > actor.scope {
                return Err(DeskError::Forbidden(format!(
                    "a {:?} token cannot issue a {:?} token",
                    actor.scope, self.scope
                )));
            }
        } else {
            can(actor, Action::ManageUsers, Target::Person { current: Some(&user), new_role: user.role })
                .into_result()?;
        }
        if !user.active {
            return Err(DeskError::Conflict(format!("{} is disabled", user.name)));
        }
        if self.secret_sha256.len() != 64 || !self.secret_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Invalid::new("secret_sha256", "must be a hex SHA-256").into());
        }
        let token = ApiToken {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            user: user.id,
            name: validate_title("name", &self.name, 120)?,
            secret_sha256: self.secret_sha256.to_ascii_lowercase(),
            scope: self.scope,
            created_at: env.now,
            revoked_at: None,
            last_used_at: None,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::Token, id: token.id.0, name: token.name.clone() },
        );
        changes.insert(Record::Token(token.clone()));
        Ok(Decided { changes, output: token })
    }
}

#[derive(Debug, Clone)]
pub struct RevokeToken {
    pub id: TokenId,
}

impl Command for RevokeToken {
    type State = (ApiToken, User);
    type Output = ApiToken;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let token = load::<ApiToken>(store, actor.workspace_id, self.id).await?;
        let user = load::<User>(store, actor.workspace_id, token.user).await?;
        Ok((token, user))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, owner): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<ApiToken>, DeskError> {
        if actor.user_id() != Some(owner.id) {
            can(actor, Action::ManageUsers, Target::Person { current: Some(&owner), new_role: owner.role })
                .into_result()?;
        }
        if old.revoked_at.is_some() {
            return Ok(Decided { changes: env.changes(actor), output: old });
        }
        let next = ApiToken { revoked_at: Some(env.now), version: old.version + 1, ..old.clone() };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::Token, id: old.id.0, changes: diff(&old, &next) },
        );
        changes.update(Record::Token(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}
