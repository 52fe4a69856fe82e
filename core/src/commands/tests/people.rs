//! Users, teams and API tokens.

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::ids::TeamId;
use crate::people::{ApiToken, Role, Team, TokenScope, User, normalise_email, validate_handle};

/// What the user commands' `load` reads: the people already holding an email or handle.
fn holders(w: &World, email: Option<&str>, handle: Option<&str>) -> Vec<User> {
    let mut found = Vec::new();
    if let Some(email) = email.and_then(|e| normalise_email("email", e).ok()) {
        found.extend(w.users().into_iter().filter(|u| u.email.as_deref() == Some(email.as_str())));
    }
    if let Some(handle) = handle.and_then(|h| validate_handle("handle", h).ok()) {
        found.extend(w.users().into_iter().filter(|u| u.handle.as_deref() == Some(handle.as_str())));
    }
    found
}

fn new_user(name: &str, email: Option<&str>, handle: Option<&str>, role: Role) -> CreateUser {
    CreateUser { name: name.into(), email: email.map(Into::into), handle: handle.map(Into::into), role }
}

#[test]
fn create_user() {
    let w = World::new();
    let created = || ok::<User>(&["+user:new1"], &["record.created"]);
    table(
        &w,
        |w, c: &CreateUser| (holders(w, c.email.as_deref(), c.handle.as_deref()), None),
        vec![
            (
                Admin,
                new_user(" Zoe Zed ", Some(" Zoe@Fed.Example "), Some("@Zoe"), Role::Admin),
                created().then(|_, u| {
                    assert_eq!(u.name, "Zoe Zed");
                    assert_eq!(
                        (u.email.as_deref(), u.handle.as_deref()),
                        (Some("zoe@fed.example"), Some("zoe"))
                    );
                    assert_eq!((u.role, u.active, u.version, u.created_at), (Role::Admin, true, 1, now()));
                }),
            ),
            (
                Manager,
                new_user("Zoe", Some("zoe@fed.example"), None, Role::Admin),
                forbidden("only administrators"),
            ),
            (Manager, new_user("Zoe", Some("zoe@fed.example"), None, Role::Agent), created()),
            (Manager, new_user("Zoe", Some("zoe@fed.example"), None, Role::Manager), created()),
            (
                Manager,
                new_user("Walk-in", None, Some(""), Role::Customer),
                created().then(|_, u| assert_eq!((u.email.as_deref(), u.handle.as_deref()), (None, None))),
            ),
            (Manager, new_user("Zoe", None, None, Role::Agent), invalid("email", "staff need an email")),
            (
                Manager,
                new_user("Zoe", Some("   "), None, Role::Collaborator),
                invalid("email", "staff need an email"),
            ),
            (
                Manager,
                new_user("Zoe", Some("zoe at fed"), None, Role::Agent),
                invalid("email", "not an email"),
            ),
            (
                Manager,
                new_user("Zoe", Some("zoe@fed.example"), Some("z"), Role::Agent),
                invalid("handle", "2 to 32"),
            ),
            (
                Manager,
                new_user("Zoe", Some("zoe@fed.example"), Some("zo e"), Role::Agent),
                invalid("handle", ""),
            ),
            (
                Manager,
                new_user("Ana 2", Some("ANA@fed.example"), None, Role::Agent),
                conflict("already uses ana@fed.example"),
            ),
            (
                Manager,
                new_user("Ana 2", Some("ana2@fed.example"), Some("@Ana"), Role::Agent),
                conflict("@ana is taken"),
            ),
            (Manager, new_user(" ", Some("zoe@fed.example"), None, Role::Agent), invalid("name", "empty")),
            (Agent, new_user("Zoe", None, None, Role::Customer), forbidden("agents")),
            (Collaborator, new_user("Zoe", None, None, Role::Customer), forbidden("collaborators")),
            (CustomerA, new_user("Zoe", None, None, Role::Customer), forbidden("customers")),
            (AdminRead, new_user("Zoe", None, None, Role::Customer), forbidden("scope")),
            (ServerAdmin, new_user("Root", Some("root@fed.example"), None, Role::Admin), created()),
        ],
    );
}

#[test]
fn update_user() {
    let w = World::new();
    let patch = |id, patch| UpdateUser { id, patch };
    let role = |role| UserPatch { role: Some(role), ..Default::default() };
    let name = |name: &str| UserPatch { name: Some(name.into()), ..Default::default() };
    let email = |email: Option<&str>| UserPatch { email: Some(email.map(Into::into)), ..Default::default() };
    table(
        &w,
        |w, c: &UpdateUser| {
            let email = c.patch.email.clone().flatten();
            let handle = c.patch.handle.clone().flatten();
            (w.get::<User>(c.id).unwrap(), holders(w, email.as_deref(), handle.as_deref()), None)
        },
        vec![
            (
                Manager,
                patch(w.agent.id, name("Ana A.")),
                ok(&["user:agent@1"], &["record.updated"])
                    .then(|_, u: &User| assert_eq!((u.name.as_str(), u.version), ("Ana A.", 2))),
            ),
            (
                Manager,
                patch(w.agent.id, UserPatch { active: Some(false), ..Default::default() }),
                ok(&["user:agent@1"], &["record.updated"]).then(|_, u| assert!(!u.active)),
            ),
            (
                Manager,
                patch(w.agent.id, role(Role::Manager)),
                ok(&["user:agent@1"], &["record.updated"]).then(|_, u| assert_eq!(u.role, Role::Manager)),
            ),
            (Manager, patch(w.agent.id, role(Role::Admin)), forbidden("only administrators")),
            (Manager, patch(w.admin.id, name("Ada")), forbidden("only administrators")),
            (Admin, patch(w.manager.id, role(Role::Admin)), ok(&["user:manager@1"], &["record.updated"])),
            (Admin, patch(w.admin.id, name("Ada A.")), ok(&["user:admin@1"], &["record.updated"])),
            (Admin, patch(w.admin.id, role(Role::Manager)), forbidden("yourself")),
            (
                Admin,
                patch(w.admin.id, UserPatch { active: Some(false), ..Default::default() }),
                forbidden("yourself"),
            ),
            // Staff need an email whatever role they had before the change.
            (Manager, patch(w.customer_b.id, role(Role::Agent)), invalid("email", "staff need an email")),
            (
                Manager,
                patch(
                    w.customer_b.id,
                    UserPatch {
                        role: Some(Role::Agent),
                        email: Some(Some("bert@fed.example".into())),
                        ..Default::default()
                    },
                ),
                ok(&["user:customer_b@1"], &["record.updated"]).then(|_, u| {
                    assert_eq!((u.role, u.email.as_deref()), (Role::Agent, Some("bert@fed.example")))
                }),
            ),
            (
                Manager,
                patch(
                    w.collaborator.id,
                    UserPatch { role: Some(Role::Customer), email: Some(None), ..Default::default() },
                ),
                ok(&["user:collaborator@1"], &["record.updated"])
                    .then(|_, u| assert_eq!((u.role, u.email.as_deref()), (Role::Customer, None))),
            ),
            (Manager, patch(w.agent.id, email(None)), invalid("email", "staff need an email")),
            (Manager, patch(w.customer_a.id, email(None)), ok(&["user:customer_a@1"], &["record.updated"])),
            (Manager, patch(w.agent.id, email(Some("nope"))), invalid("email", "not an email")),
            (
                Manager,
                patch(w.agent.id, email(Some("MAX@fed.example"))),
                conflict("already uses max@fed.example"),
            ),
            (
                Manager,
                patch(w.agent.id, email(Some("ANA@fed.example"))),
                ok(&["user:agent@1"], &["record.updated"]),
            ),
            (
                Manager,
                patch(w.agent.id, UserPatch { handle: Some(Some("Max".into())), ..Default::default() }),
                conflict("@max is taken"),
            ),
            (
                Manager,
                patch(w.agent.id, UserPatch { handle: Some(None), ..Default::default() }),
                ok(&["user:agent@1"], &["record.updated"]).then(|_, u| assert_eq!(u.handle, None)),
            ),
            (Agent, patch(w.collaborator.id, name("Cole")), forbidden("agents")),
            (Agent, patch(w.agent.id, name("Ana")), forbidden("agents")),
            (CustomerA, patch(w.customer_a.id, name("Carla")), forbidden("customers")),
        ],
    );
}

/// Another team, for name clashes.
fn field_team(w: &World) -> Team {
    Team {
        id: TeamId(uuid::Uuid::from_u128(0xF000_0777)),
        name: "Field techs".into(),
        members: vec![],
        ..w.team.clone()
    }
}

fn members(w: &World, ids: &[crate::UserId]) -> Vec<User> {
    ids.iter().map(|id| w.get::<User>(*id).unwrap()).collect()
}

#[test]
fn create_team() {
    let w = World::new();
    let cmd = |name: &str, members: Vec<crate::UserId>| CreateTeam { name: name.into(), members };
    table(
        &w,
        |w, c: &CreateTeam| (members(w, &c.members), vec![w.team.clone(), field_team(w)]),
        vec![
            (
                Manager,
                cmd(" Night shift ", vec![w.agent.id, w.collaborator.id, w.agent.id]),
                ok(&["+team:new1"], &["record.created"]).then(|w, t: &Team| {
                    assert_eq!(t.name, "Night shift");
                    assert_eq!(t.members, [w.agent.id, w.collaborator.id]);
                }),
            ),
            (Admin, cmd("Empty", vec![]), ok(&["+team:new1"], &["record.created"])),
            (Manager, cmd("service DESK", vec![]), conflict("a team called 'service DESK' exists")),
            (Manager, cmd("Mixed", vec![w.agent.id, w.customer_a.id]), invalid("members[1]", "customer")),
            (Manager, cmd("", vec![]), invalid("name", "empty")),
            (Agent, cmd("Mine", vec![]), forbidden("agents")),
        ],
    );
}

#[test]
fn update_team() {
    let w = World::new();
    let cmd = |name: Option<&str>, members: Option<Vec<crate::UserId>>| UpdateTeam {
        id: w.team.id,
        patch: TeamPatch { name: name.map(Into::into), members },
    };
    table(
        &w,
        |w, c: &UpdateTeam| {
            let m = members(w, c.patch.members.as_deref().unwrap_or(&[]));
            (w.team.clone(), m, vec![w.team.clone(), field_team(w)])
        },
        vec![
            (
                Manager,
                cmd(Some("SERVICE desk"), None),
                ok(&["team:team@1"], &["record.updated"]).then(|w, t: &Team| {
                    assert_eq!((t.name.as_str(), t.version), ("SERVICE desk", 2));
                    assert_eq!(t.members, w.team.members);
                }),
            ),
            (
                Manager,
                cmd(None, Some(vec![w.manager.id])),
                ok(&["team:team@1"], &["record.updated"]).then(|w, t| assert_eq!(t.members, [w.manager.id])),
            ),
            (
                Manager,
                cmd(None, Some(vec![])),
                ok(&["team:team@1"], &["record.updated"]).then(|_, t| assert!(t.members.is_empty())),
            ),
            (Manager, cmd(Some("field techs"), None), conflict("exists")),
            (Manager, cmd(None, Some(vec![w.customer_b.id])), invalid("members[0]", "customer")),
            (Manager, cmd(Some(" "), None), invalid("name", "empty")),
            (Collaborator, cmd(Some("Mine"), None), forbidden("collaborators")),
        ],
    );
}

const SHA: &str = "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB";

#[test]
fn issue_token() {
    let w = World::new();
    let cmd = |user, scope| IssueToken { user, name: "laptop".into(), scope, secret_sha256: SHA.into() };
    let issued = || ok::<ApiToken>(&["+token:new1"], &["record.created"]);
    table(
        &w,
        |w, c: &IssueToken| w.get::<User>(c.user).unwrap(),
        vec![
            (
                AgentWrite,
                cmd(w.agent.id, TokenScope::Write),
                issued().then(|w, t| {
                    assert_eq!(
                        (t.user, t.scope, t.revoked_at, t.version),
                        (w.agent.id, TokenScope::Write, None, 1)
                    );
                    assert_eq!(t.secret_sha256, SHA.to_ascii_lowercase());
                    assert_eq!(t.name, "laptop");
                }),
            ),
            // Anyone may issue themselves a token no wider than the credential in use.
            (AgentWrite, cmd(w.agent.id, TokenScope::Read), issued()),
            (
                AgentWrite,
                cmd(w.agent.id, TokenScope::Admin),
                forbidden("a Write token cannot issue a Admin token"),
            ),
            (AgentRead, cmd(w.agent.id, TokenScope::Read), issued()),
            (AgentRead, cmd(w.agent.id, TokenScope::Write), forbidden("cannot issue")),
            (CustomerA, cmd(w.customer_a.id, TokenScope::Read), issued()),
            // Tokens for others are people management.
            (
                Manager,
                cmd(w.agent.id, TokenScope::Admin),
                issued().then(|w, t| assert_eq!(t.user, w.agent.id)),
            ),
            (Admin, cmd(w.manager.id, TokenScope::Write), issued()),
            (ServerAdmin, cmd(w.admin.id, TokenScope::Admin), issued()),
            (Manager, cmd(w.admin.id, TokenScope::Read), forbidden("only administrators")),
            (Agent, cmd(w.collaborator.id, TokenScope::Read), forbidden("agents")),
            (CustomerA, cmd(w.customer_b.id, TokenScope::Read), forbidden("customers")),
            (AdminRead, cmd(w.agent.id, TokenScope::Read), forbidden("scope")),
            (Admin, cmd(w.disabled.id, TokenScope::Read), conflict("disabled")),
            (
                Admin,
                IssueToken { secret_sha256: "abc".into(), ..cmd(w.agent.id, TokenScope::Read) },
                invalid("secret_sha256", "hex"),
            ),
            (
                Admin,
                IssueToken { secret_sha256: "g".repeat(64), ..cmd(w.agent.id, TokenScope::Read) },
                invalid("secret_sha256", "hex"),
            ),
            (
                Admin,
                IssueToken { name: " ".into(), ..cmd(w.agent.id, TokenScope::Read) },
                invalid("name", "empty"),
            ),
        ],
    );
}

#[test]
fn revoke_token() {
    let w = World::new();
    let cmd = |id| RevokeToken { id };
    let revoked = |write: &'static str| ok::<ApiToken>(&[write], &["record.updated"]);
    table(
        &w,
        |w, c: &RevokeToken| {
            let token: ApiToken = w.get(c.id).unwrap();
            let owner = w.get::<User>(token.user).unwrap();
            (token, owner)
        },
        vec![
            (
                AgentWrite,
                cmd(w.agent_token.id),
                revoked("token:agent_token@1")
                    .then(|_, t| assert_eq!((t.revoked_at, t.version), (Some(now()), 2))),
            ),
            (Admin, cmd(w.agent_token.id), revoked("token:agent_token@1")),
            (Manager, cmd(w.agent_token.id), revoked("token:agent_token@1")),
            (Admin, cmd(w.admin_token.id), revoked("token:admin_token@1")),
            // Revoking twice changes nothing and answers the token as it is.
            (
                Agent,
                cmd(w.revoked_token.id),
                unchanged().then(|w, t| {
                    assert_eq!((t.revoked_at, t.version), (Some(t0()), w.revoked_token.version))
                }),
            ),
            (Manager, cmd(w.revoked_token.id), unchanged()),
            (Manager, cmd(w.admin_token.id), forbidden("only administrators")),
            (Collaborator, cmd(w.agent_token.id), forbidden("collaborators")),
            (Collaborator, cmd(w.revoked_token.id), forbidden("collaborators")),
            (CustomerA, cmd(w.agent_token.id), forbidden("customers")),
        ],
    );
}
