//! Organizations, project members and grants, join requests, portal settings.

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::membership::{
    JoinRequest, JoinState, PortalSettings, PortalVisibility, ProjectMember, ProjectRole,
};
use crate::people::{Organization, User};

fn clinic_org(w: &World) -> Organization {
    Organization {
        id: uuid::Uuid::from_u128(0xF000_0100).into(),
        workspace_id: w.ws.id,
        name: "Clinic".into(),
        domains: vec!["clinic.example".into()],
        created_at: now(),
        version: 1,
    }
}

/// Who `load` finds at each domain: customer A is at clinic.example.
fn domain_state(w: &World, domains: &[String], holders: Vec<(String, Organization)>) -> DomainState {
    let contacts = domains
        .iter()
        .map(|d| {
            let d = d.trim().to_lowercase();
            let at: Vec<User> =
                w.users().into_iter().filter(|u| u.email_domain() == Some(d.as_str())).collect();
            (d, at)
        })
        .collect();
    DomainState { holders, contacts }
}

#[test]
fn create_organization() {
    let w = World::new();
    let new = |name: &str, domains: &[&str]| CreateOrganization {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
    };
    table(
        &w,
        |w, c: &CreateOrganization| {
            let holders = if c.domains.iter().any(|d| d == "clinic.example") && c.name == "Taken" {
                vec![("clinic.example".to_string(), clinic_org(w))]
            } else {
                Vec::new()
            };
            (Vec::new(), domain_state(w, &c.domains, holders))
        },
        vec![
            // Customer A is at clinic.example and joins in the same commit; staff at a domain do not.
            (
                Manager,
                new("Clinic", &["Clinic.Example", "clinic.example", "fed.example"]),
                ok(&["+organization:new1", "user:customer_a@1"], &["record.created", "record.updated"])
                    .then(|_, o: &Organization| assert_eq!(o.domains, ["clinic.example", "fed.example"])),
            ),
            (Manager, new("Empty", &[]), ok(&["+organization:new1"], &["record.created"])),
            (
                Manager,
                new("Taken", &["clinic.example"]),
                invalid("domains[0]", "belongs to the organization 'Clinic'"),
            ),
            (
                Manager,
                new("Bad", &["ok.example", "no spaces.example"]),
                invalid("domains[1]", "not a mail domain"),
            ),
            (Manager, new("Bad", &["localhost"]), invalid("domains[0]", "not a mail domain")),
            (Manager, new(" ", &[]), invalid("name", "must not be empty")),
            (Agent, new("Clinic", &[]), forbidden("agents")),
            (CustomerA, new("Clinic", &[]), forbidden("customers")),
        ],
    );
}

#[test]
fn project_members_and_grants() {
    let w = World::new();
    let set = |user: &User, role| SetProjectMember { project: w.project.id, user: user.id, role };
    let existing = ProjectMember {
        id: ProjectMember::id_for(w.project.id, w.collaborator.id),
        workspace_id: w.ws.id,
        project: w.project.id,
        user: w.collaborator.id,
        role: ProjectRole::Member,
        created_at: now(),
        version: 1,
    };
    let m = |u: &User| format!("project_member:{}", ProjectMember::id_for(w.project.id, u.id).0);
    let (agent, col, cust) =
        (format!("+{}", m(&w.agent)), format!("{}@1", m(&w.collaborator)), format!("+{}", m(&w.customer_a)));
    table(
        &w,
        |w, c: &SetProjectMember| {
            let user = w.get::<User>(c.user).unwrap();
            let current = (c.user == w.collaborator.id).then(|| existing.clone());
            (w.project.clone(), user, current)
        },
        vec![
            (Manager, set(&w.agent, ProjectRole::Manager), ok(&[&agent], &["record.created"])),
            (Manager, set(&w.collaborator, ProjectRole::Viewer), ok(&[&col], &["record.updated"])),
            (Manager, set(&w.collaborator, ProjectRole::Member), unchanged()),
            (Manager, set(&w.customer_a, ProjectRole::Commenter), ok(&[&cust], &["record.created"])),
            (
                Manager,
                set(&w.customer_a, ProjectRole::Member),
                invalid("role", "customers are granted viewer or commenter"),
            ),
            (Manager, set(&w.disabled, ProjectRole::Member), invalid("user", "disabled")),
            // An agent who manages no project, and a mere member, cannot.
            (Agent, set(&w.customer_a, ProjectRole::Viewer), forbidden("project's managers")),
            (Collaborator, set(&w.customer_a, ProjectRole::Viewer), forbidden("project's managers")),
            (CustomerA, set(&w.customer_a, ProjectRole::Viewer), forbidden("customers")),
        ],
    );
}

#[test]
fn join_requests() {
    let w = World::new();
    let request = JoinRequest {
        id: uuid::Uuid::from_u128(0xF000_0200).into(),
        workspace_id: w.ws.id,
        project: w.other_project.id,
        user: w.collaborator.id,
        note: "I can help".into(),
        state: JoinState::Pending,
        role: ProjectRole::Member,
        decided_by: None,
        decided_at: None,
        created_at: now(),
        version: 1,
    };
    let ask = |note: &str| RequestToJoin { project: w.other_project.id, note: note.into(), role: None };
    table(
        &w,
        |w, _: &RequestToJoin| (w.other_project.clone(), None, Vec::new()),
        vec![
            (
                Collaborator,
                ask(" I can help "),
                ok(&["+join_request:new1"], &["record.created"]).then(|w, r: &JoinRequest| {
                    assert_eq!(
                        (r.user, r.state, r.note.as_str()),
                        (w.collaborator.id, JoinState::Pending, "I can help")
                    )
                }),
            ),
            (Agent, ask(""), ok(&["+join_request:new1"], &["record.created"])),
            (CustomerA, ask(""), forbidden("customers")),
            (Collaborator, ask(&"x".repeat(2001)), invalid("note", "2000")),
        ],
    );
    let decide = |approve, role| DecideJoinRequest { id: request.id, approve, role };
    let member =
        format!("+project_member:{}", ProjectMember::id_for(w.other_project.id, w.collaborator.id).0);
    let updated = format!("join_request:{}@1", request.id.0);
    table(
        &w,
        |w, _: &DecideJoinRequest| (request.clone(), w.collaborator.clone(), None),
        vec![
            (Manager, decide(true, None), ok(&[&updated, &member], &["record.updated", "record.created"])),
            (Manager, decide(false, None), ok(&[&updated], &["record.updated"])),
            (Agent, decide(true, None), forbidden("project's managers")),
            (Collaborator, decide(true, None), forbidden("project's managers")),
        ],
    );
}

#[test]
fn portal_settings() {
    let w = World::new();
    let types = vec![w.ticket.clone(), w.task.clone(), w.purchase.clone()];
    let configured = {
        let mut s = PortalSettings::empty(w.ws.id);
        s.visibility = PortalVisibility::Organization;
        s.version = 1;
        s
    };
    let cmd = |v: Option<PortalVisibility>, by: Vec<(crate::ids::ItemTypeId, Option<PortalVisibility>)>| {
        ConfigurePortal { visibility: v, by_type: by.into_iter().collect(), ..ConfigurePortal::default() }
    };
    table(
        &w,
        |_, c: &ConfigurePortal| {
            let old = (c.visibility == Some(PortalVisibility::Organization)).then(|| configured.clone());
            (old, types.clone())
        },
        vec![
            (
                Manager,
                cmd(Some(PortalVisibility::AllPublic), vec![(w.task.id, Some(PortalVisibility::Own))]),
                ok(&["+portal_settings:ws"], &["record.updated"]).then(|w, s: &PortalSettings| {
                    assert_eq!(s.for_type(w.task.id), PortalVisibility::Own);
                    assert_eq!(s.for_type(w.ticket.id), PortalVisibility::AllPublic);
                }),
            ),
            (Manager, cmd(Some(PortalVisibility::Organization), vec![]), unchanged()),
            (
                Manager,
                cmd(None, vec![(uuid::Uuid::from_u128(0xF000_0999).into(), None)]),
                invalid("by_type.00000000-0000-0000-0000-0000f0000999", "no such item type"),
            ),
            (Agent, cmd(Some(PortalVisibility::AllPublic), vec![]), forbidden("agents")),
        ],
    );
}

#[test]
fn a_customer_moving_to_an_organizations_domain_joins_it() {
    let w = World::new();
    let org = clinic_org(&w);
    let bert = User { organization: None, email: Some("bert@other.example".into()), ..w.customer_b.clone() };
    let moving_to = |email: &str| UpdateUser {
        id: bert.id,
        patch: UserPatch { email: Some(Some(email.into())), ..Default::default() },
    };
    let state = |who: &User| (who.clone(), Vec::new(), Some(org.clone()));
    let moved = run(&moving_to("bert@clinic.example"), &w.actor(Manager), state(&bert)).unwrap();
    assert_eq!(moved.output.organization, Some(org.id));
    // An address at a domain the organization does not own changes nothing.
    let elsewhere = run(&moving_to("bert@elsewhere.example"), &w.actor(Manager), state(&bert)).unwrap();
    assert_eq!(elsewhere.output.organization, None);
    // Someone already in an organization stays where they are.
    let placed = User { organization: Some(uuid::Uuid::from_u128(0xF000_0200).into()), ..bert.clone() };
    let kept = run(&moving_to("bert@clinic.example"), &w.actor(Manager), state(&placed)).unwrap();
    assert_eq!(kept.output.organization, placed.organization);
}
