//! Conformance cases for organizations, project membership and the item scopes that carry them
//! (stamped out by `conformance_suite!` with the rest).

use std::collections::HashMap;

use tandem_core::store::{self, PortalScope, RecordQuery, SearchQuery, UserFilter};
use tandem_core::*;

use crate::TestStore;
use crate::fixture::{Ws, id, insert, update, workspace};

pub fn organization(ws: &Ws, name: &str, domains: &[&str]) -> Organization {
    Organization {
        id: id(),
        workspace_id: ws.id,
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        created_at: ws.now,
        version: 1,
    }
}

pub fn project(ws: &Ws, name: &str) -> Project {
    Project {
        id: id(),
        workspace_id: ws.id,
        name: name.into(),
        description: String::new(),
        portfolio: None,
        archived: false,
        created_at: ws.now,
        version: 1,
    }
}

fn person(ws: &Ws, name: &str, email: &str, role: Role, organization: Option<OrganizationId>) -> User {
    User { email: Some(email.into()), handle: None, organization, ..ws.user(name, role) }
}

/// A domain belongs to one organization per workspace; the lookup follows the organization's
/// current domains; users are found by exact email domain and by organization.
pub async fn organizations_own_their_domains(store: TestStore) {
    let ws = workspace(store.as_ref(), "Clinics").await;
    let other = workspace(store.as_ref(), "Other").await;
    let north =
        insert(store.as_ref(), &ws, organization(&ws, "North", &["north.example", "n.example"])).await;
    let found = store.organization_by_domain(ws.id, "north.example").await.unwrap();
    assert_eq!(found.map(|o| o.id), Some(north.id));
    assert_eq!(store.organization_by_domain(ws.id, "south.example").await.unwrap(), None);
    assert_eq!(store.organization_by_domain(other.id, "north.example").await.unwrap(), None, "per workspace");

    // A second organization claiming a taken domain: Duplicate, and nothing of it is written.
    let south = organization(&ws, "South", &["south.example", "n.example"]);
    let mut changes = ws.changes();
    changes.insert(Record::Organization(south.clone()));
    assert!(matches!(store.commit(changes).await, Err(StoreError::Duplicate(_))));
    assert!(store::get::<Organization>(store.as_ref(), ws.id, south.id.0).await.unwrap().is_none());
    assert_eq!(store.organization_by_domain(ws.id, "south.example").await.unwrap(), None);
    // Another workspace may use the same domain.
    insert(store.as_ref(), &other, organization(&other, "North too", &["north.example"])).await;

    // Giving up a domain frees it.
    let north2 = Organization { domains: vec!["north.example".into()], version: 2, ..north.clone() };
    update(store.as_ref(), &ws, north2.clone()).await.unwrap();
    assert_eq!(store.organization_by_domain(ws.id, "n.example").await.unwrap(), None);
    let south = insert(store.as_ref(), &ws, south).await;
    assert_eq!(store.organization_by_domain(ws.id, "n.example").await.unwrap().map(|o| o.id), Some(south.id));

    // Deleting an organization frees its domains.
    let mut changes = ws.changes();
    changes.delete(RecordKind::Organization, north.id.0, 2);
    store.commit(changes).await.unwrap();
    assert_eq!(store.organization_by_domain(ws.id, "north.example").await.unwrap(), None);

    // Users by email domain (exact, not subdomains) and by organization, in id order.
    let a = insert(store.as_ref(), &ws, person(&ws, "A", "a@clinic.example", Role::Customer, Some(south.id)))
        .await;
    let b = insert(store.as_ref(), &ws, person(&ws, "B", "b@clinic.example", Role::Customer, None)).await;
    insert(store.as_ref(), &ws, person(&ws, "C", "c@x.clinic.example", Role::Customer, None)).await;
    insert(store.as_ref(), &other, person(&other, "D", "d@clinic.example", Role::Customer, None)).await;
    let ids = |us: Vec<User>| us.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let by_domain = UserFilter { email_domain: Some("clinic.example".into()), organization: None, limit: 10 };
    assert_eq!(ids(store.users(ws.id, &by_domain).await.unwrap()), [a.id, b.id]);
    assert_eq!(ids(store.users(ws.id, &UserFilter { limit: 1, ..by_domain.clone() }).await.unwrap()), [a.id]);
    let by_org = UserFilter { email_domain: None, organization: Some(south.id), limit: 10 };
    assert_eq!(ids(store.users(ws.id, &by_org).await.unwrap()), [a.id]);
    // Leaving the organization is seen at once.
    update(store.as_ref(), &ws, User { organization: None, version: 2, ..a.clone() }).await.unwrap();
    assert!(store.users(ws.id, &by_org).await.unwrap().is_empty());
}

/// Memberships are listed by user, join requests by project; portal settings are one record.
pub async fn memberships_are_records(store: TestStore) {
    let ws = workspace(store.as_ref(), "Union").await;
    let p = insert(store.as_ref(), &ws, project(&ws, "IT")).await;
    let q = insert(store.as_ref(), &ws, project(&ws, "Design")).await;
    let u = insert(store.as_ref(), &ws, ws.user("Col", Role::Collaborator)).await;
    let member = |project: ProjectId, role| ProjectMember {
        id: ProjectMember::id_for(project, u.id),
        workspace_id: ws.id,
        project,
        user: u.id,
        role,
        created_at: ws.now,
        version: 1,
    };
    insert(store.as_ref(), &ws, member(p.id, ProjectRole::Member)).await;
    insert(store.as_ref(), &ws, member(q.id, ProjectRole::Viewer)).await;
    // The same pair again collides: one membership per person and project.
    let mut changes = ws.changes();
    changes.insert(Record::ProjectMember(member(p.id, ProjectRole::Manager)));
    assert!(matches!(store.commit(changes).await, Err(StoreError::Conflict(_))));
    let mine: Vec<ProjectMember> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(u.id.0)).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().any(|m| m.project == p.id && m.role == ProjectRole::Member));

    let request = JoinRequest {
        id: id(),
        workspace_id: ws.id,
        project: q.id,
        user: u.id,
        note: "I design the posters".into(),
        state: JoinState::Pending,
        role: ProjectRole::Member,
        decided_by: None,
        decided_at: None,
        created_at: ws.now,
        version: 1,
    };
    insert(store.as_ref(), &ws, request.clone()).await;
    let of_q: Vec<JoinRequest> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(q.id.0)).await.unwrap();
    assert_eq!(of_q, [request]);
    let of_p: Vec<JoinRequest> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(p.id.0)).await.unwrap();
    assert!(of_p.is_empty());

    let mut portal = PortalSettings::empty(ws.id);
    portal.visibility = PortalVisibility::Organization;
    portal.by_type.insert(ws.task_type, PortalVisibility::AllPublic);
    portal.open_forms = true;
    portal.branding = tandem_core::PortalBranding {
        name: "Hearwell marketing".into(),
        logo_url: Some("https://cdn.example/hearwell.png".into()),
        primary_color: Some("#0b6e4f".into()),
        background_color: None,
    };
    portal.forms.insert(
        ws.task_type,
        tandem_core::WebForm { title: Some("Campaign request".into()), survey: true, ..Default::default() },
    );
    portal.version = 1;
    insert(store.as_ref(), &ws, portal.clone()).await;
    assert_eq!(store::get::<PortalSettings>(store.as_ref(), ws.id, ws.id.0).await.unwrap(), Some(portal));
}

/// Every scope applied in SQL — list (paged), and search — selects exactly the items
/// `ItemScope::admits` admits, so single reads (`can`) and lists agree.
pub async fn scopes_agree_with_admits(store: TestStore) {
    let ws = workspace(store.as_ref(), "Aquatics").await;
    let s = store.as_ref();
    let org_a = insert(s, &ws, organization(&ws, "Calgary", &["calgary.example"])).await;
    let org_b = insert(s, &ws, organization(&ws, "Denver", &["denver.example"])).await;
    let p1 = insert(s, &ws, project(&ws, "Hardware")).await;
    let p2 = insert(s, &ws, project(&ws, "Web")).await;
    let mut people = Vec::new();
    for (i, org) in [Some(org_a.id), Some(org_a.id), Some(org_b.id), None].into_iter().enumerate() {
        let site = if org == Some(org_b.id) { "denver" } else { "calgary" };
        let u = person(&ws, &format!("P{i}"), &format!("p{i}@{site}.example"), Role::Customer, org);
        people.push(insert(s, &ws, u).await);
    }
    let org_of: HashMap<UserId, Option<OrganizationId>> =
        people.iter().map(|u| (u.id, u.organization)).collect();
    let mut items = Vec::new();
    for i in 0..40usize {
        let mut item = ws.item(&format!("pump {i}"));
        item.requester = (i % 5 != 4).then(|| people[i % people.len()].id);
        if i % 6 == 0 {
            item.followers = vec![people[(i / 6) % people.len()].id];
        }
        item.project = match i % 3 {
            0 => Some(p1.id),
            1 => Some(p2.id),
            _ => None,
        };
        if i % 4 == 1 {
            item.item_type = ws.task_type;
            item.kind = ItemKind::Task;
        }
        items.push(insert(s, &ws, item).await);
    }
    let portal = |u: &User, org_types: Vec<ItemTypeId>, public: Vec<ItemTypeId>, projects: Vec<ProjectId>| {
        ItemScope::Portal(PortalScope {
            user: u.id,
            organization: u.organization,
            organization_types: org_types,
            public_types: public,
            projects,
        })
    };
    let both = vec![ws.ticket_type, ws.task_type];
    let scopes = vec![
        ItemScope::All,
        ItemScope::Involving(people[0].id),
        ItemScope::Projects(vec![]),
        ItemScope::Projects(vec![p1.id]),
        ItemScope::Projects(vec![p1.id, p2.id]),
        portal(&people[0], vec![], vec![], vec![]),
        portal(&people[0], both.clone(), vec![], vec![]),
        portal(&people[1], vec![ws.ticket_type], vec![ws.task_type], vec![]),
        portal(&people[2], both.clone(), vec![], vec![p2.id]),
        portal(&people[3], both.clone(), vec![], vec![]),
        portal(&people[3], vec![], vec![ws.task_type], vec![p1.id]),
    ];
    for scope in scopes {
        let mut expected: Vec<i64> = items
            .iter()
            .filter(|i| scope.admits(i, i.requester.and_then(|r| org_of.get(&r).copied().flatten())))
            .map(|i| i.number)
            .collect();
        expected.sort();
        let mut q = ItemQuery::new(scope.clone());
        q.limit = 7;
        let mut listed = Vec::new();
        loop {
            let page = store.items(ws.id, &q).await.unwrap();
            listed.extend(page.items.iter().map(|i| i.number));
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        assert_eq!(listed, expected, "list under {scope:?}");
        let hits = store
            .search(
                ws.id,
                &SearchQuery {
                    text: "pump".into(),
                    scope: scope.clone(),
                    include_internal: false,
                    limit: 200,
                },
            )
            .await
            .unwrap();
        let mut found: Vec<i64> = hits.iter().map(|h| h.item.number).collect();
        found.sort();
        assert_eq!(found, expected, "search under {scope:?}");
    }
}
