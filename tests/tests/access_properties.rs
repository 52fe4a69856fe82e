#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Access invariants over random workspaces, checked through `Desk` (list, search, get) on a real
//! SQLite store — not through the pure function alone:
//! - customers never see internal messages, in conversations or in search;
//! - customers never see another organization's items unless the item's type is all public;
//! - what a customer sees is exactly what the portal settings say (own / organization / public);
//! - collaborators see exactly the items of the projects they belong to;
//! - removing a membership removes access at once.

use std::collections::BTreeSet;

use proptest::prelude::*;
use tandem_core::commands::*;
use tandem_core::*;
use tandem_tests::fixture::desk;

const PROJECTS: usize = 3;

#[derive(Debug, Clone)]
struct ItemSpec {
    /// Index of the requesting customer; `None`: requested by the agent.
    requester: Option<usize>,
    /// Index of a customer who follows the item.
    follower: Option<usize>,
    project: Option<usize>,
    task: bool,
}

#[derive(Debug, Clone)]
struct World {
    organizations: usize,
    /// Per customer: the index of their email domain; `organizations` means a domain no
    /// organization owns. Even-numbered customers exist before the organizations (they join when
    /// the domain is added), odd-numbered ones are created after (they join on creation).
    customers: Vec<usize>,
    /// Per collaborator: a bitmask of the projects they belong to.
    collaborators: Vec<u8>,
    default_visibility: u8,
    task_visibility: Option<u8>,
    items: Vec<ItemSpec>,
}

fn visibility(n: u8) -> PortalVisibility {
    [PortalVisibility::Own, PortalVisibility::Organization, PortalVisibility::AllPublic][usize::from(n % 3)]
}

fn world() -> impl Strategy<Value = World> {
    (1usize..=3, 1usize..=5, 1usize..=3).prop_flat_map(|(orgs, customers, collaborators)| {
        let item = (
            proptest::option::of(0..customers),
            proptest::option::weighted(0.3, 0..customers),
            proptest::option::of(0..PROJECTS),
            any::<bool>(),
        )
            .prop_map(|(requester, follower, project, task)| ItemSpec {
                requester,
                follower,
                project,
                task,
            });
        (
            Just(orgs),
            proptest::collection::vec(0..=orgs, customers),
            proptest::collection::vec(0u8..8, collaborators),
            0u8..3,
            proptest::option::of(0u8..3),
            proptest::collection::vec(item, 1..10),
        )
            .prop_map(
                |(organizations, customers, collaborators, default_visibility, task_visibility, items)| {
                    World {
                        organizations,
                        customers,
                        collaborators,
                        default_visibility,
                        task_visibility,
                        items,
                    }
                },
            )
    })
}

fn domain(i: usize, orgs: usize) -> String {
    if i == orgs { "free.example".into() } else { format!("site{i}.example") }
}

async fn check(w: World) {
    let harness = tandem_tests::backends::sqlite().await.unwrap();
    let (desk, _clock) = desk(harness.store.clone());
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Random".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let types: Vec<ItemType> = desk.directory(&admin, &store::RecordQuery::all()).await.unwrap();
    let ticket = types.iter().find(|t| t.kind == ItemKind::Ticket).unwrap().id;
    let task = types.iter().find(|t| t.kind == ItemKind::Task).unwrap().id;
    let person =
        |name: String, email: String, role| CreateUser { name, email: Some(email), handle: None, role };

    let agent = desk
        .execute(&admin, &person("Agent".into(), "agent@desk.example".into(), Role::Agent))
        .await
        .unwrap();
    let agent = Actor::user(agent, TokenScope::Admin);
    let mut customers: Vec<Option<User>> = vec![None; w.customers.len()];
    for (i, d) in w.customers.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let email = format!("c{i}@{}", domain(*d, w.organizations));
        customers[i] =
            Some(desk.execute(&admin, &person(format!("C{i}"), email, Role::Customer)).await.unwrap());
    }
    let mut organizations = Vec::new();
    for o in 0..w.organizations {
        let cmd = CreateOrganization { name: format!("Site {o}"), domains: vec![domain(o, w.organizations)] };
        organizations.push(desk.execute(&admin, &cmd).await.unwrap());
    }
    for (i, d) in w.customers.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        let email = format!("c{i}@{}", domain(*d, w.organizations));
        customers[i] =
            Some(desk.execute(&admin, &person(format!("C{i}"), email, Role::Customer)).await.unwrap());
    }
    let customers: Vec<User> = customers.into_iter().map(Option::unwrap).collect();
    // Everyone at an organization's domain belongs to it, whenever they arrived.
    let org_of = |c: usize| (w.customers[c] < w.organizations).then(|| organizations[w.customers[c]].id);
    for (i, c) in customers.iter().enumerate() {
        let stored: User = desk.directory_entry(&admin, c.id.0).await.unwrap();
        assert_eq!(stored.organization, org_of(i), "customer {i}");
    }

    let mut projects = Vec::new();
    for p in 0..PROJECTS {
        let cmd = CreateProject { name: format!("P{p}"), description: String::new(), portfolio: None };
        projects.push(desk.execute(&admin, &cmd).await.unwrap());
    }
    let mut collaborators = Vec::new();
    for (i, mask) in w.collaborators.iter().enumerate() {
        let u = desk
            .execute(&admin, &person(format!("Col{i}"), format!("col{i}@desk.example"), Role::Collaborator))
            .await
            .unwrap();
        for (p, project) in projects.iter().enumerate().filter(|(p, _)| mask & (1 << p) != 0) {
            let role = [ProjectRole::Member, ProjectRole::Viewer, ProjectRole::Manager][p % 3];
            desk.execute(&admin, &SetProjectMember { project: project.id, user: u.id, role }).await.unwrap();
        }
        collaborators.push(Actor::user(u, TokenScope::Admin));
    }
    let mut by_type = std::collections::BTreeMap::new();
    by_type.insert(task, w.task_visibility.map(visibility));
    desk.execute(
        &admin,
        &ConfigurePortal {
            visibility: Some(visibility(w.default_visibility)),
            by_type,
            ..ConfigurePortal::default()
        },
    )
    .await
    .unwrap();

    let mut numbers = Vec::new();
    for (n, spec) in w.items.iter().enumerate() {
        let cmd = CreateItem {
            item_type: if spec.task { task } else { ticket },
            title: format!("pump {n}"),
            description: String::new(),
            project: spec.project.map(|p| projects[p].id),
            folder: None,
            parent: None,
            requester: spec.requester.map(|c| customers[c].id),
            assignees: vec![],
            followers: spec.follower.map(|c| customers[c].id).into_iter().collect(),
            priority: None,
            status: None,
            custom: Default::default(),
            channel: Channel::Api,
        };
        let item = desk.execute(&agent, &cmd).await.unwrap();
        for (visibility, text) in [(Visibility::Internal, "secretnote"), (Visibility::Public, "publicreply")]
        {
            let body = Body::Text(format!("{text} {n}"));
            desk.execute(&agent, &PostMessage::new(item.id, visibility, body)).await.unwrap();
        }
        numbers.push(item.number);
    }
    let type_visibility = |spec: &ItemSpec| {
        if spec.task {
            w.task_visibility.map_or(visibility(w.default_visibility), visibility)
        } else {
            visibility(w.default_visibility)
        }
    };

    // Customers.
    for (c, customer) in customers.iter().enumerate() {
        let actor = Actor::user(customer.clone(), TokenScope::Read);
        let expected: BTreeSet<i64> = w
            .items
            .iter()
            .zip(&numbers)
            .filter(|(spec, _)| {
                let involved = spec.requester == Some(c) || spec.follower == Some(c);
                let same_org = org_of(c).is_some() && spec.requester.and_then(org_of) == org_of(c);
                involved
                    || match type_visibility(spec) {
                        PortalVisibility::Own => false,
                        PortalVisibility::Organization => same_org,
                        PortalVisibility::AllPublic => true,
                    }
            })
            .map(|(_, n)| *n)
            .collect();
        assert_visible(&desk, &actor, &numbers, &expected).await;
        for (spec, n) in w.items.iter().zip(&numbers) {
            // Following another organization's item (added by staff) is taking part in it.
            let involved = spec.requester == Some(c) || spec.follower == Some(c);
            let foreign = spec.requester.and_then(org_of).is_some_and(|o| Some(o) != org_of(c));
            if foreign && !involved && type_visibility(spec) != PortalVisibility::AllPublic {
                assert!(!expected.contains(n), "another organization's item #{n}");
            }
        }
        for n in &expected {
            let messages = desk.messages(&actor, ItemRef::Number(*n)).await.unwrap();
            assert!(messages.iter().all(|m| m.visibility == Visibility::Public), "internal message on #{n}");
            assert_eq!(messages.len(), 1);
        }
        assert!(desk.search(&actor, "secretnote", 200).await.unwrap().is_empty(), "internal text found");
    }

    // Collaborators, then one membership removed.
    for (i, actor) in collaborators.iter().enumerate() {
        let in_projects = |mask: u8| -> BTreeSet<i64> {
            w.items
                .iter()
                .zip(&numbers)
                .filter(|(spec, _)| spec.project.is_some_and(|p| mask & (1 << p) != 0))
                .map(|(_, n)| *n)
                .collect()
        };
        let mask = w.collaborators[i];
        assert_visible(&desk, actor, &numbers, &in_projects(mask)).await;
        if let Some(p) = (0..PROJECTS).find(|p| mask & (1 << p) != 0) {
            let user = actor.user_id().unwrap();
            desk.execute(&admin, &RemoveProjectMember { project: projects[p].id, user }).await.unwrap();
            assert_visible(&desk, actor, &numbers, &in_projects(mask & !(1 << p))).await;
        }
    }
}

/// List, search and get agree with `expected`.
async fn assert_visible(desk: &Desk, actor: &Actor, all: &[i64], expected: &BTreeSet<i64>) {
    let mut q = ItemQuery::new(ItemScope::All);
    q.limit = 500;
    let listed: BTreeSet<i64> = desk.items(actor, q).await.unwrap().items.iter().map(|i| i.number).collect();
    assert_eq!(&listed, expected, "list");
    let found: BTreeSet<i64> =
        desk.search(actor, "pump", 200).await.unwrap().iter().map(|h| h.item.number).collect();
    assert_eq!(&found, expected, "search");
    for n in all {
        let got = desk.item(actor, ItemRef::Number(*n)).await;
        assert_eq!(got.is_ok(), expected.contains(n), "get #{n}: {got:?}");
        if let Err(e) = got {
            assert!(matches!(e, DeskError::NotFound(_)), "a hidden item is not found: {e:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn access_invariants_hold_through_desk(w in world()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(check(w));
    }
}
