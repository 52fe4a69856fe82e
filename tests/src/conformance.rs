//! The storage conformance suite: each behaviour of the `Store` contract, written once.
//!
//! [`conformance_suite!`](crate::conformance_suite) stamps every case out for a backend:
//!
//! ```text
//! tandem_tests::conformance_suite!(tandem_tests::backends::sqlite);
//! ```
//!
//! The macro lists every case, so a new case runs on every backend at once and a backend can't
//! silently miss one.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::Duration;
use tandem_core::store::{self, EventQuery, JobFilter, JobState, RecordQuery, SearchQuery};
use tandem_core::webhook::WEBHOOK_RELAY;
use tandem_core::*;

use crate::TestStore;
use crate::backends::TEST_MAX_BLOB;
use crate::fixture::{Ws, id, insert, update, workspace};

fn numbers(items: &[Item]) -> Vec<i64> {
    items.iter().map(|i| i.number).collect()
}

fn all_in(scope: ItemScope) -> ItemQuery {
    let mut q = ItemQuery::new(scope);
    q.limit = 1000;
    q
}

/// New items get 1, 2, 3... and events consecutive sequence numbers, both per workspace.
pub async fn commit_assigns_numbers_and_sequences(store: TestStore) {
    let a = workspace(store.as_ref(), "A").await;
    let b = workspace(store.as_ref(), "B").await;
    let mut changes = a.changes();
    let first = a.item("one");
    let second = a.item("two");
    changes.insert(Record::Item(first.clone())).insert(Record::Item(second.clone()));
    changes.event(Some(first.id), EventData::ItemUpdated { changes: vec![] });
    changes.event(Some(second.id), EventData::ItemUpdated { changes: vec![] });
    let receipt = store.commit(changes).await.unwrap();
    assert_eq!(receipt.item_numbers, vec![(first.id, 1), (second.id, 2)]);
    assert_eq!(receipt.seqs, vec![1, 2]);
    let third = insert(store.as_ref(), &a, a.item("three")).await;
    assert_eq!(third.number, 3);
    let other = insert(store.as_ref(), &b, b.item("elsewhere")).await;
    assert_eq!(other.number, 1, "numbers are per workspace");
    let stored = store.item_by_number(a.id, 2).await.unwrap().unwrap();
    assert_eq!(stored.id, second.id);
    assert_eq!(stored.number, 2, "the stored record carries its number");
}

/// Many concurrent creators: every number from 1 to n exactly once.
pub async fn concurrent_creates_are_numbered_without_gaps(store: TestStore) {
    let ws = workspace(store.as_ref(), "busy").await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            let mut changes = ws.changes();
            let item = ws.item(&format!("item {i}"));
            changes.insert(Record::Item(item.clone()));
            changes.event(Some(item.id), EventData::ItemUpdated { changes: vec![] });
            store.commit(changes).await.unwrap()
        }));
    }
    let mut numbers = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    for t in tasks {
        let receipt = t.await.unwrap();
        numbers.insert(receipt.item_numbers[0].1);
        seqs.insert(receipt.seqs[0]);
    }
    assert_eq!(numbers, (1..=60).collect());
    assert_eq!(seqs, (1..=60).collect());
}

/// A stale version fails the whole change set: nothing written, no number or sequence used.
pub async fn stale_version_conflicts_and_writes_nothing(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let item = insert(store.as_ref(), &ws, ws.item("original")).await;
    let renamed = Item { title: "renamed".into(), version: 2, ..item.clone() };
    update(store.as_ref(), &ws, renamed.clone()).await.unwrap();

    // Another writer read version 1 as well.
    let mut changes = ws.changes();
    let newcomer = ws.item("newcomer");
    changes.insert(Record::Item(newcomer.clone()));
    changes.update(Record::Item(Item { title: "lost update".into(), version: 2, ..item.clone() }), 1);
    changes.event(Some(item.id), EventData::ItemUpdated { changes: vec![] });
    changes.job(ws.job("mail", "k1"));
    let err = store.commit(changes).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    assert_eq!(store.item_by_number(ws.id, 1).await.unwrap().unwrap().title, "renamed");
    assert!(tandem_core::store::get::<Item>(store.as_ref(), ws.id, newcomer.id.0).await.unwrap().is_none());
    assert!(store.events(ws.id, &EventQuery { after: 0, item: None, limit: 10 }).await.unwrap().is_empty());
    assert!(
        store
            .jobs(&JobFilter { workspace: Some(ws.id), limit: 10, ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
    let next = insert(store.as_ref(), &ws, ws.item("next")).await;
    assert_eq!(next.number, 2, "the failed commit used no number");

    // Inserting a record that exists is a conflict too; deleting needs the current version.
    let mut again = ws.changes();
    again.insert(Record::Item(Item { version: 1, ..renamed.clone() }));
    assert!(matches!(store.commit(again).await, Err(StoreError::Conflict(_))));
    let link = insert(
        store.as_ref(),
        &ws,
        ItemLink {
            id: id(),
            workspace_id: ws.id,
            from: item.id,
            to: next.id,
            kind: LinkKind::Relates,
            dependency: None,
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    let mut stale_delete = ws.changes();
    stale_delete.delete(RecordKind::Link, link.id.0, 7);
    assert!(matches!(store.commit(stale_delete).await, Err(StoreError::Conflict(_))));
    let mut delete = ws.changes();
    delete.delete(RecordKind::Link, link.id.0, 1);
    store.commit(delete).await.unwrap();
    assert!(store.links(ws.id, item.id).await.unwrap().is_empty());
}

/// Unique keys (a person's email and handle) answer `Duplicate`, not `Conflict`.
pub async fn unique_keys_are_duplicates(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let ana = insert(store.as_ref(), &ws, ws.user("Ana", Role::Agent)).await;
    let mut clash = ws.user("Ana", Role::Customer);
    clash.handle = Some("someone_else".into());
    let mut changes = ws.changes();
    changes.insert(Record::User(clash));
    assert!(matches!(store.commit(changes).await, Err(StoreError::Duplicate(_))));
    let found = store.user_by_email(ws.id, "ANA@example.org").await.unwrap().unwrap();
    assert_eq!(found.id, ana.id);
    let by_handle = store.users_by_handles(ws.id, &["ana".into(), "nobody".into()]).await.unwrap();
    assert_eq!(by_handle.len(), 1);
    // The same email in another workspace is fine.
    let other = workspace(store.as_ref(), "other").await;
    insert(store.as_ref(), &other, other.user("Ana", Role::Agent)).await;
}

/// Records are listed in id order, by parent, with `after` + `limit` paging.
pub async fn records_list_by_parent_in_order(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let project = insert(
        store.as_ref(),
        &ws,
        Project {
            id: id(),
            workspace_id: ws.id,
            name: "P".into(),
            description: String::new(),
            portfolio: None,
            archived: false,
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    let other = insert(store.as_ref(), &ws, Project { id: id(), name: "Q".into(), ..project.clone() }).await;
    let mut folders = Vec::new();
    for i in 0..5 {
        let parent = if i < 4 { project.id } else { other.id };
        folders.push(
            insert(
                store.as_ref(),
                &ws,
                Folder {
                    id: id(),
                    workspace_id: ws.id,
                    project: parent,
                    name: format!("f{i}"),
                    parent: None,
                    created_at: ws.now,
                    version: 1,
                },
            )
            .await,
        );
    }
    let q = RecordQuery { parent: Some(project.id.0), after: None, limit: 3 };
    let page1: Vec<Folder> = tandem_core::store::list(store.as_ref(), ws.id, &q).await.unwrap();
    assert_eq!(page1.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["f0", "f1", "f2"]);
    let q2 = RecordQuery { after: Some(page1[2].id.0), ..q };
    let page2: Vec<Folder> = tandem_core::store::list(store.as_ref(), ws.id, &q2).await.unwrap();
    assert_eq!(page2.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["f3"]);
    let all: Vec<Folder> =
        tandem_core::store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(all.len(), 5);
    let types: Vec<ItemType> =
        tandem_core::store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(types.len(), 2);
    assert_eq!(store.workspaces().await.unwrap().iter().filter(|w| w.id == ws.id).count(), 1);
}

/// Events come back in sequence order, paged by `after`, filtered by item.
pub async fn events_are_ordered_and_paged(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let a = insert(store.as_ref(), &ws, ws.item("a")).await;
    let b = insert(store.as_ref(), &ws, ws.item("b")).await;
    for i in 0..10 {
        let mut changes = ws.changes();
        let target = if i % 2 == 0 { &a } else { &b };
        changes.event(
            Some(target.id),
            EventData::ItemUpdated {
                changes: vec![FieldChange {
                    field: "n".into(),
                    from: serde_json::json!(i),
                    to: serde_json::json!(i + 1),
                }],
            },
        );
        store.commit(changes).await.unwrap();
    }
    let all = store.events(ws.id, &EventQuery { after: 0, item: None, limit: 100 }).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    let page = store.events(ws.id, &EventQuery { after: 4, item: None, limit: 3 }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6, 7]);
    let of_a = store.events(ws.id, &EventQuery { after: 0, item: Some(a.id), limit: 100 }).await.unwrap();
    assert_eq!(of_a.len(), 5);
    assert!(of_a.iter().all(|e| e.item == Some(a.id)));
    assert_eq!(of_a[0].actor, ActorRef::System);
    assert_eq!(of_a[0].at, ws.now);
    assert!(matches!(&of_a[0].data, EventData::ItemUpdated { changes } if changes[0].field == "n"));
}

async fn seed_items(store: &dyn Store, ws: &Ws, n: usize) -> (Vec<Item>, User, User, Team) {
    let agent = insert(store, ws, ws.user("Agent", Role::Agent)).await;
    let customer = insert(store, ws, ws.user("Customer", Role::Customer)).await;
    let team = insert(
        store,
        ws,
        Team {
            id: id(),
            workspace_id: ws.id,
            name: "Hardware".into(),
            members: vec![agent.id],
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    let mut items = Vec::new();
    for i in 0..n {
        let mut item = ws.item(&format!("item {i}"));
        item.priority = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent][i % 4];
        item.created_at = ws.at(i as i64);
        item.updated_at = ws.at(((i * 7) % n) as i64);
        if i % 3 == 0 {
            item.requester = Some(customer.id);
        }
        if i % 5 == 0 {
            item.followers = vec![customer.id];
        }
        if i % 2 == 0 {
            item.assignees = vec![Assignee::User(agent.id)];
        } else if i % 7 == 1 {
            item.assignees = vec![Assignee::Team(team.id)];
        }
        if i % 4 == 3 {
            item.status = "delivery".into();
            item.category = StatusCategory::Resolved;
            item.item_type = ws.task_type;
            item.kind = ItemKind::Task;
        }
        items.push(insert(store, ws, item).await);
    }
    (items, agent, customer, team)
}

/// Keyset pages chain without duplicates or gaps in every sort order, ascending and descending.
pub async fn keyset_pagination_covers_every_order(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let (items, ..) = seed_items(store.as_ref(), &ws, 37).await;
    for sort in [SortKey::Number, SortKey::CreatedAt, SortKey::UpdatedAt, SortKey::Priority] {
        for descending in [false, true] {
            let mut q = ItemQuery::new(ItemScope::All);
            q.sort = sort;
            q.descending = descending;
            q.limit = 5;
            let mut seen = Vec::new();
            loop {
                let page = store.items(ws.id, &q).await.unwrap();
                assert!(page.items.len() <= 5);
                seen.extend(page.items.iter().cloned());
                match page.next {
                    Some(c) => q.after = Some(c),
                    None => break,
                }
            }
            let mut expected = items.clone();
            expected.sort_by_key(|i| (sort.value(i), i.number));
            if descending {
                expected.reverse();
            }
            assert_eq!(numbers(&seen), numbers(&expected), "{sort:?} descending={descending}");
        }
    }
}

/// Every filter narrows the list exactly as described.
pub async fn filters_select_exactly(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let (items, agent, customer, team) = seed_items(store.as_ref(), &ws, 30).await;
    let check = |filter: ItemFilter, expect: &dyn Fn(&Item) -> bool| {
        let store = store.clone();
        let expected: Vec<i64> = items.iter().filter(|i| expect(i)).map(|i| i.number).collect();
        async move {
            let mut q = all_in(ItemScope::All);
            q.filter = filter.clone();
            let got = numbers(&store.items(ws.id, &q).await.unwrap().items);
            assert_eq!(got, expected, "{filter:?}");
        }
    };
    check(ItemFilter { kind: Some(ItemKind::Task), ..Default::default() }, &|i| i.kind == ItemKind::Task)
        .await;
    check(ItemFilter { item_types: vec![ws.ticket_type], ..Default::default() }, &|i| {
        i.item_type == ws.ticket_type
    })
    .await;
    check(ItemFilter { statuses: vec!["delivery".into()], ..Default::default() }, &|i| {
        i.status == "delivery"
    })
    .await;
    check(ItemFilter { categories: vec![StatusCategory::New], ..Default::default() }, &|i| {
        i.category == StatusCategory::New
    })
    .await;
    check(ItemFilter { priorities: vec![Priority::High, Priority::Urgent], ..Default::default() }, &|i| {
        i.priority >= Priority::High
    })
    .await;
    check(ItemFilter { assignee: Some(Assignee::User(agent.id)), ..Default::default() }, &|i| {
        i.assignees.contains(&Assignee::User(agent.id))
    })
    .await;
    check(ItemFilter { assignee: Some(Assignee::Team(team.id)), ..Default::default() }, &|i| {
        i.assignees.contains(&Assignee::Team(team.id))
    })
    .await;
    check(ItemFilter { requester: Some(customer.id), ..Default::default() }, &|i| {
        i.requester == Some(customer.id)
    })
    .await;
    check(ItemFilter { follower: Some(customer.id), ..Default::default() }, &|i| {
        i.followers.contains(&customer.id)
    })
    .await;
    check(
        ItemFilter { created_after: Some(ws.at(10)), created_before: Some(ws.at(20)), ..Default::default() },
        &|i| i.created_at >= ws.at(10) && i.created_at < ws.at(20),
    )
    .await;
    check(ItemFilter { updated_after: Some(ws.at(25)), ..Default::default() }, &|i| {
        i.updated_at >= ws.at(25)
    })
    .await;
    check(
        ItemFilter { kind: Some(ItemKind::Ticket), priorities: vec![Priority::Low], ..Default::default() },
        &|i| i.kind == ItemKind::Ticket && i.priority == Priority::Low,
    )
    .await;

    // Project, folder and parent.
    let project = insert(
        store.as_ref(),
        &ws,
        Project {
            id: id(),
            workspace_id: ws.id,
            name: "P".into(),
            description: String::new(),
            portfolio: None,
            archived: false,
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    let folder = insert(
        store.as_ref(),
        &ws,
        Folder {
            id: id(),
            workspace_id: ws.id,
            project: project.id,
            name: "F".into(),
            parent: None,
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    let filed = Item {
        project: Some(project.id),
        folder: Some(folder.id),
        parent: Some(items[0].id),
        version: items[1].version + 1,
        ..items[1].clone()
    };
    update(store.as_ref(), &ws, filed.clone()).await.unwrap();
    for filter in [
        ItemFilter { project: Some(project.id), ..Default::default() },
        ItemFilter { folder: Some(folder.id), ..Default::default() },
        ItemFilter { parent: Some(items[0].id), ..Default::default() },
    ] {
        let mut q = all_in(ItemScope::All);
        q.filter = filter;
        assert_eq!(numbers(&store.items(ws.id, &q).await.unwrap().items), [filed.number]);
    }
    // Updating an item re-indexes its assignees and followers.
    let unassigned =
        Item { assignees: vec![], followers: vec![], version: items[0].version + 1, ..items[0].clone() };
    update(store.as_ref(), &ws, unassigned).await.unwrap();
    let mut q = all_in(ItemScope::All);
    q.filter = ItemFilter { assignee: Some(Assignee::User(agent.id)), ..Default::default() };
    assert!(!numbers(&store.items(ws.id, &q).await.unwrap().items).contains(&items[0].number));
}

/// A restricted scope is applied in the query: lists and search return only involved items.
pub async fn scope_is_pushed_down(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let (items, _, customer, _) = seed_items(store.as_ref(), &ws, 30).await;
    let mine: Vec<i64> = items
        .iter()
        .filter(|i| i.requester == Some(customer.id) || i.followers.contains(&customer.id))
        .map(|i| i.number)
        .collect();
    let mut q = all_in(ItemScope::Involving(customer.id));
    q.limit = 4;
    let mut seen = Vec::new();
    loop {
        let page = store.items(ws.id, &q).await.unwrap();
        seen.extend(numbers(&page.items));
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, mine);
    let hits = store
        .search(
            ws.id,
            &SearchQuery {
                text: "item".into(),
                scope: ItemScope::Involving(customer.id),
                include_internal: false,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let mut hit_numbers: Vec<i64> = hits.iter().map(|h| h.item.number).collect();
    hit_numbers.sort();
    assert_eq!(hit_numbers, mine);
}

/// Search finds titles, descriptions and messages; internal messages only when allowed; one hit
/// per item; user input is never parsed as query syntax.
pub async fn search_matches_text_and_respects_internal(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let mut printer = ws.item("Printer on floor 3 is jammed");
    printer.description = "Paper tray makes a grinding noise".into();
    let printer = insert(store.as_ref(), &ws, printer).await;
    let vpn = insert(store.as_ref(), &ws, ws.item("VPN disconnects every hour")).await;
    let mut changes = ws.changes();
    changes.insert(Record::Message(ws.message(
        &vpn,
        "Could be the router firmware, see ticket about Zürich office",
        Visibility::Public,
    )));
    changes.insert(Record::Message(ws.message(
        &printer,
        "Secret budget code 4711 for the replacement",
        Visibility::Internal,
    )));
    changes.insert(Record::Message(ws.message(&printer, "The printer grinding again", Visibility::Public)));
    store.commit(changes).await.unwrap();
    let search = |text: &str, internal: bool| {
        let store = store.clone();
        let q = SearchQuery {
            text: text.to_string(),
            scope: ItemScope::All,
            include_internal: internal,
            limit: 10,
        };
        async move {
            store.search(ws.id, &q).await.unwrap().into_iter().map(|h| h.item.number).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("jammed", false).await, [printer.number]);
    assert_eq!(search("grinding", false).await, [printer.number], "title+description+message match once");
    assert_eq!(search("firmware", false).await, [vpn.number]);
    assert_eq!(search("zurich", false).await, [vpn.number], "diacritics are folded");
    assert_eq!(search("budget", false).await, Vec::<i64>::new(), "internal notes are hidden");
    assert_eq!(search("budget", true).await, [printer.number]);
    assert_eq!(search("disconn", false).await, [vpn.number], "the last word is a prefix");
    assert_eq!(search("printer floor", false).await, [printer.number], "all words must match");
    for hostile in ["\"", "*", "AND OR NOT", "-", "floor\" OR \"x", "(", "NEAR(a b)", "title:x", "🙂", "   "]
    {
        let _ = search(hostile, false).await;
    }
    let hits = store
        .search(
            ws.id,
            &SearchQuery { text: "jammed".into(), scope: ItemScope::All, include_internal: false, limit: 10 },
        )
        .await
        .unwrap();
    assert!(hits[0].snippet.to_lowercase().contains("jammed"), "{}", hits[0].snippet);
    // Retitling re-indexes.
    update(store.as_ref(), &ws, Item { title: "Toner empty".into(), version: 2, ..printer.clone() })
        .await
        .unwrap();
    assert_eq!(search("jammed", false).await, Vec::<i64>::new());
    assert_eq!(search("toner", false).await, [printer.number]);
}

/// Messages come back in posting order; internal ones only when asked for.
pub async fn messages_are_ordered_and_filtered(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let item = insert(store.as_ref(), &ws, ws.item("x")).await;
    let mut changes = ws.changes();
    for (i, vis) in [Visibility::Public, Visibility::Internal, Visibility::Public].into_iter().enumerate() {
        let mut m = ws.message(&item, &format!("m{i}"), vis);
        m.created_at = ws.at(i as i64);
        changes.insert(Record::Message(m));
    }
    store.commit(changes).await.unwrap();
    let all = store.messages(ws.id, item.id, true).await.unwrap();
    assert_eq!(all.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["m0", "m1", "m2"]);
    let public = store.messages(ws.id, item.id, false).await.unwrap();
    assert_eq!(public.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["m0", "m2"]);
}

/// Links are found from either end.
pub async fn links_are_found_from_both_ends(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let a = insert(store.as_ref(), &ws, ws.item("a")).await;
    let b = insert(store.as_ref(), &ws, ws.item("b")).await;
    let c = insert(store.as_ref(), &ws, ws.item("c")).await;
    insert(
        store.as_ref(),
        &ws,
        ItemLink {
            id: id(),
            workspace_id: ws.id,
            from: a.id,
            to: b.id,
            kind: LinkKind::Blocks,
            dependency: None,
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    insert(
        store.as_ref(),
        &ws,
        ItemLink {
            id: id(),
            workspace_id: ws.id,
            from: c.id,
            to: a.id,
            kind: LinkKind::Relates,
            dependency: None,
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    assert_eq!(store.links(ws.id, a.id).await.unwrap().len(), 2);
    assert_eq!(store.links(ws.id, b.id).await.unwrap().len(), 1);
    assert_eq!(store.links(ws.id, c.id).await.unwrap().len(), 1);
}

/// Blobs are content-addressed and limited in size; an oversize blob writes nothing.
pub async fn blobs_are_deduplicated_and_limited(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let item = insert(store.as_ref(), &ws, ws.item("x")).await;
    let bytes: Arc<[u8]> = Arc::from(vec![7u8; 1000]);
    let sha = tandem_core::conversation::sha256_hex(&bytes);
    for _ in 0..2 {
        let mut changes = ws.changes();
        changes.blob(sha.clone(), bytes.clone());
        store.commit(changes).await.unwrap();
    }
    assert_eq!(store.blob(ws.id, &sha).await.unwrap().as_deref(), Some(&bytes[..]));
    let huge: Arc<[u8]> = Arc::from(vec![1u8; TEST_MAX_BLOB as usize + 1]);
    let huge_sha = tandem_core::conversation::sha256_hex(&huge);
    let mut changes = ws.changes();
    let attachment = Attachment {
        id: id(),
        workspace_id: ws.id,
        item: item.id,
        message: None,
        filename: "big.bin".into(),
        content_type: "application/octet-stream".into(),
        size: huge.len() as u64,
        sha256: huge_sha.clone(),
        uploaded_by: ActorRef::System,
        created_at: ws.now,
        version: 1,
    };
    changes.blob(huge_sha.clone(), huge).insert(Record::Attachment(attachment.clone()));
    assert!(matches!(store.commit(changes).await, Err(StoreError::TooLarge { .. })));
    assert!(store.blob(ws.id, &huge_sha).await.unwrap().is_none());
    assert!(
        tandem_core::store::get::<Attachment>(store.as_ref(), ws.id, attachment.id.0)
            .await
            .unwrap()
            .is_none()
    );
}

/// Nothing of workspace A can be read through workspace B.
pub async fn tenancy_is_total(store: TestStore) {
    let a = workspace(store.as_ref(), "A").await;
    let b = workspace(store.as_ref(), "B").await;
    let user = insert(store.as_ref(), &a, a.user("Ana", Role::Agent)).await;
    let mut item = a.item("secret plans");
    item.requester = Some(user.id);
    item.followers = vec![user.id];
    let item = insert(store.as_ref(), &a, item).await;
    let other = insert(store.as_ref(), &a, a.item("other")).await;
    insert(
        store.as_ref(),
        &a,
        ItemLink {
            id: id(),
            workspace_id: a.id,
            from: item.id,
            to: other.id,
            kind: LinkKind::Relates,
            dependency: None,
            created_at: a.now,
            version: 1,
        },
    )
    .await;
    let bytes: Arc<[u8]> = Arc::from(&b"plans"[..]);
    let sha = tandem_core::conversation::sha256_hex(&bytes);
    let mut changes = a.changes();
    changes.insert(Record::Message(a.message(&item, "secret message", Visibility::Public)));
    changes.blob(sha.clone(), bytes);
    changes.event(Some(item.id), EventData::ItemUpdated { changes: vec![] });
    changes.job(a.job("mail", "secret"));
    store.commit(changes).await.unwrap();

    let ws = b.id;
    for kind in RecordKind::ALL {
        let id = match kind {
            RecordKind::Workspace => a.id.0,
            RecordKind::User => user.id.0,
            RecordKind::ItemType => a.ticket_type.0,
            _ => item.id.0,
        };
        assert!(store.record(ws, kind, id).await.unwrap().is_none(), "{kind:?}");
        let leaked: Vec<_> = store
            .records(ws, kind, &RecordQuery::all())
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.workspace_id() != b.id)
            .collect();
        assert!(leaked.is_empty(), "{kind:?}");
    }
    assert!(store.item_by_number(ws, item.number).await.unwrap().is_none());
    assert!(store.items(ws, &all_in(ItemScope::All)).await.unwrap().items.is_empty());
    assert!(store.items(ws, &all_in(ItemScope::Involving(user.id))).await.unwrap().items.is_empty());
    for internal in [false, true] {
        let q = SearchQuery {
            text: "secret".into(),
            scope: ItemScope::All,
            include_internal: internal,
            limit: 10,
        };
        assert!(store.search(ws, &q).await.unwrap().is_empty());
    }
    assert!(store.messages(ws, item.id, true).await.unwrap().is_empty());
    assert!(store.links(ws, item.id).await.unwrap().is_empty());
    assert!(store.events(ws, &EventQuery { after: 0, item: None, limit: 100 }).await.unwrap().is_empty());
    assert!(store.blob(ws, &sha).await.unwrap().is_none());
    assert!(store.user_by_email(ws, "ana@example.org").await.unwrap().is_none());
    assert!(store.users_by_handles(ws, &["ana".into()]).await.unwrap().is_empty());
    assert!(
        store
            .jobs(&JobFilter { workspace: Some(ws), limit: 100, ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
    // A change set may not write into another workspace.
    let mut sneaky = b.changes();
    sneaky.insert(Record::Item(a.item("planted")));
    assert!(store.commit(sneaky).await.is_err());
}

/// The job queue: idempotency, due times, exclusive claims, leases, retries, dead letters.
pub async fn jobs_lifecycle(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let now = ws.now;
    let mut changes = ws.changes();
    changes.job(ws.job("mail", "a")).job(ws.job("mail", "a")).job(ws.job("hook", "b"));
    let mut later = ws.job("mail", "c");
    later.run_at = now + Duration::minutes(10);
    changes.job(later);
    store.commit(changes).await.unwrap();
    let all =
        store.jobs(&JobFilter { workspace: Some(ws.id), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 3, "the duplicate idempotency key was dropped");

    let lease = now + Duration::seconds(30);
    let mail = store.claim_jobs(&["mail".into()], 10, now, lease).await.unwrap();
    assert_eq!(mail.len(), 1, "only due jobs of the kind");
    let job = &mail[0];
    assert_eq!((job.state, job.attempts, job.lease_until), (JobState::Running, 1, Some(lease)));
    assert!(
        store.claim_jobs(&["mail".into()], 10, now, lease).await.unwrap().is_empty(),
        "a claimed job is not handed out twice"
    );

    // Failing schedules a retry; the stale claim can no longer complete it.
    let retry_at = now + Duration::seconds(5);
    assert!(store.fail_job(job.id, 1, "smtp 451", Some(retry_at), now).await.unwrap());
    assert!(!store.complete_job(job.id, 1, now).await.unwrap());
    assert!(store.claim_jobs(&["mail".into()], 10, now, lease).await.unwrap().is_empty(), "not due yet");
    let again =
        store.claim_jobs(&["mail".into()], 10, retry_at, retry_at + Duration::seconds(30)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("smtp 451"));

    // A worker that dies: its lease expires and another worker reclaims the job.
    let reclaimed = store
        .claim_jobs(&["mail".into()], 10, retry_at + Duration::seconds(31), retry_at + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].attempts, 3);
    assert!(!store.complete_job(job.id, 2, now).await.unwrap(), "the dead worker's claim is void");
    // The job has used all 3 attempts; when this lease expires too it is dead.
    let after = store
        .claim_jobs(&["mail".into()], 10, retry_at + Duration::seconds(61), retry_at + Duration::seconds(90))
        .await
        .unwrap();
    assert!(after.iter().all(|j| j.id != job.id));
    let dead = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);

    // Dead letters can be retried by an operator.
    assert!(store.retry_job(job.id, now).await.unwrap());
    let revived = store.claim_jobs(&["mail".into()], 10, now, lease).await.unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(revived[0].attempts, 1);
    assert!(store.complete_job(job.id, 1, now).await.unwrap());
    assert_eq!(store.job(job.id).await.unwrap().unwrap().state, JobState::Done);
    assert!(
        !store.retry_job(all.iter().find(|j| j.kind == "hook").unwrap().id, now).await.unwrap(),
        "only done/dead jobs are retried"
    );

    // Failing without a retry time is a dead letter with the error kept.
    let hook = store.claim_jobs(&["hook".into()], 10, now, lease).await.unwrap();
    assert!(store.fail_job(hook[0].id, 1, "410 Gone", None, now).await.unwrap());
    let dead = store
        .jobs(&JobFilter { state: Some(JobState::Dead), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert!(dead.iter().any(|j| j.id == hook[0].id && j.last_error.as_deref() == Some("410 Gone")));
}

/// Claims take only the kinds asked for (every kind when none is named), oldest due first.
pub async fn claims_select_kinds_in_due_order(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let mut changes = ws.changes();
    for (i, kind) in ["a", "b", "c", "a", "b", "c"].iter().enumerate() {
        let mut job = ws.job(kind, &format!("{kind}{i}"));
        job.run_at = ws.now - Duration::minutes(10 - i as i64);
        changes.job(job);
    }
    store.commit(changes).await.unwrap();
    let lease = ws.now + Duration::minutes(1);
    let keys =
        |jobs: Vec<tandem_core::store::Job>| jobs.into_iter().map(|j| j.idempotency_key).collect::<Vec<_>>();
    let one = store.claim_jobs(&["b".into()], 1, ws.now, lease).await.unwrap();
    assert_eq!(keys(one), ["b1"]);
    let two = store.claim_jobs(&["a".into(), "b".into()], 10, ws.now, lease).await.unwrap();
    let mut two = keys(two);
    two.sort();
    assert_eq!(two, ["a0", "a3", "b4"]);
    let rest = store.claim_jobs(&[], 1, ws.now, lease).await.unwrap();
    assert_eq!(keys(rest), ["c2"], "every kind, oldest due first");
    assert_eq!(keys(store.claim_jobs(&[], 10, ws.now, lease).await.unwrap()), ["c5"]);
}

/// Concurrent claimers never receive the same job.
pub async fn concurrent_claims_are_exclusive(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let mut changes = ws.changes();
    for i in 0..100 {
        changes.job(ws.job("work", &format!("k{i}")));
    }
    store.commit(changes).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let now = ws.now;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got =
                    store.claim_jobs(&["work".into()], 7, now, now + Duration::minutes(5)).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(seen.len(), 100);
}

fn webhook(ws: &Ws, url: &str) -> Webhook {
    Webhook {
        id: id(),
        workspace_id: ws.id,
        url: url.to_string(),
        secret: "whsec_conformance_secret".into(),
        events: vec!["item.*".into()],
        active: true,
        created_at: ws.now,
        version: 1,
    }
}

fn relay_cursor(ws: &Ws, seq: i64, version: i64) -> EventCursor {
    EventCursor {
        id: EventCursor::id_for(ws.id, WEBHOOK_RELAY),
        workspace_id: ws.id,
        consumer: WEBHOOK_RELAY.into(),
        seq,
        updated_at: ws.now,
        version,
    }
}

/// Webhooks and event cursors are stored, listed, versioned and deleted like every record, and
/// stay in their workspace.
pub async fn webhooks_and_cursors_are_records(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let first = insert(store.as_ref(), &ws, webhook(&ws, "https://a.example.org/in?token=1")).await;
    let second = insert(store.as_ref(), &ws, webhook(&ws, "https://b.example.org/in")).await;
    insert(store.as_ref(), &other, webhook(&other, "https://c.example.org/in")).await;
    let listed: Vec<Webhook> = store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(listed, [first.clone(), second.clone()]);

    let paused = Webhook { active: false, events: vec![], version: 2, ..first.clone() };
    update(store.as_ref(), &ws, paused.clone()).await.unwrap();
    assert_eq!(store::get::<Webhook>(store.as_ref(), ws.id, first.id.0).await.unwrap(), Some(paused.clone()));
    let stale = Webhook { url: "https://stale.example.org/".into(), ..paused.clone() };
    assert!(matches!(update(store.as_ref(), &ws, stale).await, Err(StoreError::Conflict(_))));
    assert!(store::get::<Webhook>(store.as_ref(), other.id, first.id.0).await.unwrap().is_none());
    let mut delete = ws.changes();
    delete.delete(RecordKind::Webhook, second.id.0, 1);
    store.commit(delete).await.unwrap();
    let listed: Vec<Webhook> = store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(listed, [paused]);

    // A consumer has one cursor per workspace: its id is derived, so a second one conflicts.
    let cursor = insert(store.as_ref(), &ws, relay_cursor(&ws, 3, 1)).await;
    let mut again = ws.changes();
    again.insert(Record::EventCursor(relay_cursor(&ws, 5, 1)));
    assert!(matches!(store.commit(again).await, Err(StoreError::Conflict(_))));
    insert(store.as_ref(), &other, relay_cursor(&other, 9, 1)).await;
    let stored = store::get::<EventCursor>(store.as_ref(), ws.id, cursor.id.0).await.unwrap();
    assert_eq!(stored, Some(cursor));
}

/// Relays racing to advance one cursor: exactly one commit wins, and the losers' delivery jobs
/// are not written.
pub async fn racing_cursor_advances_admit_one_winner(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    insert(store.as_ref(), &ws, relay_cursor(&ws, 0, 1)).await;
    let mut racers = Vec::new();
    for r in 0..8 {
        let (store, ws) = (store.clone(), ws.clone());
        racers.push(tokio::spawn(async move {
            let mut changes = ws.changes();
            changes.update(Record::EventCursor(relay_cursor(&ws, 10 + r, 2)), 1);
            changes.job(ws.job("webhook.deliver", &format!("racer {r} a")));
            changes.job(ws.job("webhook.deliver", &format!("racer {r} b")));
            (r, store.commit(changes).await)
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            (r, Ok(_)) => winners.push(r),
            (_, Err(StoreError::Conflict(_))) => {}
            (r, Err(e)) => panic!("racer {r}: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let won = winners[0];
    let cursor =
        store::get::<EventCursor>(store.as_ref(), ws.id, relay_cursor(&ws, 0, 1).id.0).await.unwrap();
    assert_eq!(cursor.map(|c| (c.seq, c.version)), Some((10 + won, 2)));
    let mut keys: Vec<String> = store
        .jobs(&JobFilter { workspace: Some(ws.id), limit: 100, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.idempotency_key)
        .collect();
    keys.sort();
    assert_eq!(keys, [format!("racer {won} a"), format!("racer {won} b")]);
}

/// Relays running at once through `Desk` (as several servers do) enqueue every delivery exactly
/// once, whoever wins each batch.
pub async fn concurrent_relays_enqueue_each_delivery_once(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let hooks = [
        insert(store.as_ref(), &ws, webhook(&ws, "https://a.example.org/in")).await,
        insert(store.as_ref(), &ws, Webhook { events: vec![], ..webhook(&ws, "https://b.example.org/in") })
            .await,
    ];
    let (desk, clock) = crate::fixture::desk(store.clone());
    clock.advance(Duration::minutes(1));
    let desk = Arc::new(desk);
    let system = Actor::system(ws.id);
    let mut seqs = Vec::new();
    for i in 0..40 {
        let mut changes = ws.changes();
        changes.at = clock.now();
        let item = ws.item(&format!("item {i}"));
        changes.insert(Record::Item(item.clone()));
        changes.event(Some(item.id), EventData::ItemUpdated { changes: vec![] });
        seqs.extend(store.commit(changes).await.unwrap().seqs);
    }
    let mut relays = Vec::new();
    for _ in 0..6 {
        let (desk, system) = (desk.clone(), system.clone());
        relays.push(tokio::spawn(async move {
            let relay = tandem_core::commands::RelayEvents { batch: 7, max_attempts: 4 };
            loop {
                match desk.execute(&system, &relay).await {
                    Ok(done) if !done.more => return,
                    Ok(_) => {}
                    // Every retry lost to another relay; the next round reads the moved cursor.
                    Err(DeskError::Conflict(_)) => {}
                    Err(e) => panic!("relay failed: {e:?}"),
                }
            }
        }));
    }
    for relay in relays {
        relay.await.unwrap();
    }
    let jobs = store
        .jobs(&JobFilter {
            workspace: Some(ws.id),
            kind: Some("webhook.deliver".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut keys: Vec<String> = jobs.iter().map(|j| j.idempotency_key.clone()).collect();
    keys.sort();
    let mut expected: Vec<String> = hooks
        .iter()
        .flat_map(|h| seqs.iter().map(|s| tandem_core::commands::delivery_key(h.id, *s)))
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "one delivery per (event, webhook), none twice");
    assert!(jobs.iter().all(|j| j.max_attempts == 4 && j.state == JobState::Queued));
    let cursor =
        store::get::<EventCursor>(store.as_ref(), ws.id, relay_cursor(&ws, 0, 1).id.0).await.unwrap();
    assert_eq!(cursor.map(|c| c.seq), seqs.last().copied());
}

/// Server settings and token lookup (authentication crosses workspaces by design).
pub async fn settings_and_tokens(store: TestStore) {
    assert_eq!(store.server_setting("admin_token_sha256").await.unwrap(), None);
    store.set_server_setting("admin_token_sha256", "abc").await.unwrap();
    store.set_server_setting("admin_token_sha256", "def").await.unwrap();
    assert_eq!(store.server_setting("admin_token_sha256").await.unwrap().as_deref(), Some("def"));
    let ws = workspace(store.as_ref(), "w").await;
    let user = insert(store.as_ref(), &ws, ws.user("Ana", Role::Agent)).await;
    let secret = "f".repeat(64);
    insert(
        store.as_ref(),
        &ws,
        ApiToken {
            id: id(),
            workspace_id: ws.id,
            user: user.id,
            name: "cli".into(),
            secret_sha256: secret.clone(),
            scope: TokenScope::Write,
            created_at: ws.now,
            revoked_at: None,
            last_used_at: None,
            version: 1,
        },
    )
    .await;
    let found = store.token_by_secret(&secret).await.unwrap().unwrap();
    assert_eq!((found.user, found.workspace_id), (user.id, ws.id));
    assert!(store.token_by_secret(&"0".repeat(64)).await.unwrap().is_none());
}

/// Inbound addresses route mail to their workspace; an address belongs to one workspace only.
pub async fn mail_addresses_route_across_workspaces(store: TestStore) {
    let a = workspace(store.as_ref(), "A").await;
    let b = workspace(store.as_ref(), "B").await;
    let settings = insert(store.as_ref(), &a, a.mail_settings(&["it@a.example", "help@a.example"])).await;
    assert_eq!(store.mail_workspace("it@a.example").await.unwrap(), Some(a.id));
    assert_eq!(
        store.mail_workspace("IT@A.example").await.unwrap(),
        Some(a.id),
        "addresses compare lowercase"
    );
    assert_eq!(store.mail_workspace("nobody@a.example").await.unwrap(), None);

    // B cannot claim A's address: nothing of the commit is written.
    let mut changes = b.changes();
    changes.insert(Record::MailSettings(b.mail_settings(&["own@b.example", "help@a.example"])));
    changes.insert(Record::Item(b.item("would be lost")));
    assert!(matches!(store.commit(changes).await, Err(StoreError::Duplicate(_))));
    assert_eq!(store.mail_workspace("own@b.example").await.unwrap(), None);
    assert_eq!(store.item_by_number(b.id, 1).await.unwrap(), None);

    // Once A lets it go, B may take it.
    let mut fewer = settings.clone();
    fewer.addresses.retain(|x| x.address != "help@a.example");
    fewer.version = 2;
    update(store.as_ref(), &a, fewer).await.unwrap();
    assert_eq!(store.mail_workspace("help@a.example").await.unwrap(), None);
    assert_eq!(store.mail_workspace("it@a.example").await.unwrap(), Some(a.id));
    insert(store.as_ref(), &b, b.mail_settings(&["help@a.example"])).await;
    assert_eq!(store.mail_workspace("help@a.example").await.unwrap(), Some(b.id));
    let read = tandem_core::store::get::<MailSettings>(store.as_ref(), b.id, b.id.0).await.unwrap().unwrap();
    assert_eq!(read.addresses.len(), 1);
}

/// One record per dedupe key and workspace: a second delivery of the same message is refused by
/// the store itself, whatever raced it.
pub async fn inbound_mail_is_deduplicated(store: TestStore) {
    let a = workspace(store.as_ref(), "A").await;
    let b = workspace(store.as_ref(), "B").await;
    let first =
        insert(store.as_ref(), &a, a.inbound_mail("mid:one@club.example", Some("one@club.example"), None))
            .await;
    let mut again = a.changes();
    again.insert(Record::InboundMail(a.inbound_mail("mid:one@club.example", Some("one@club.example"), None)));
    again.event(None, EventData::ItemUpdated { changes: vec![] });
    assert!(matches!(store.commit(again).await, Err(StoreError::Duplicate(_))));
    assert!(store.events(a.id, &EventQuery { after: 0, item: None, limit: 10 }).await.unwrap().is_empty());
    assert_eq!(store.inbound_mail_by_key(a.id, "mid:one@club.example").await.unwrap(), Some(first));
    assert_eq!(store.inbound_mail_by_key(a.id, "mid:other@club.example").await.unwrap(), None);
    // The same key in another workspace is another message.
    assert_eq!(store.inbound_mail_by_key(b.id, "mid:one@club.example").await.unwrap(), None);
    insert(store.as_ref(), &b, b.inbound_mail("mid:one@club.example", None, None)).await;

    // Concurrent deliveries of one message: exactly one record.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, a) = (store.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let mut changes = a.changes();
            changes.insert(Record::InboundMail(a.inbound_mail("sha256:abc", None, None)));
            store.commit(changes).await.is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);
}

/// Message-IDs of inbound mails and of messages with email headers find their item; the first
/// item a Message-ID was stored for keeps it.
pub async fn message_ids_thread_to_items(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let first = insert(store.as_ref(), &ws, ws.item("printer")).await;
    let second = insert(store.as_ref(), &ws, ws.item("scanner")).await;
    insert(store.as_ref(), &ws, ws.inbound_mail("mid:a@x", Some("a@x"), Some(first.id))).await;
    insert(store.as_ref(), &ws, ws.inbound_mail("mid:unthreaded@x", Some("unthreaded@x"), None)).await;
    let mut reply = ws.message(&second, "thanks", Visibility::Public);
    reply.email = Some(EmailMeta { message_id: Some("b@x".into()), ..Default::default() });
    insert(store.as_ref(), &ws, reply).await;
    let mut clash = ws.message(&second, "same id again", Visibility::Public);
    clash.email = Some(EmailMeta { message_id: Some("a@x".into()), ..Default::default() });
    insert(store.as_ref(), &ws, clash).await;

    let mut found = store
        .items_by_message_ids(ws.id, &["b@x".into(), "a@x".into(), "unthreaded@x".into(), "nope@x".into()])
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, vec![("a@x".to_string(), first.id), ("b@x".to_string(), second.id)]);
    assert!(store.items_by_message_ids(other.id, &["a@x".into()]).await.unwrap().is_empty());
    assert!(store.items_by_message_ids(ws.id, &[]).await.unwrap().is_empty());
}

/// The outbound mail log filters by item, recipient, status and time, newest first; a record is
/// found by the id its job key gives, a second one for the same key is refused, and a sent
/// mail's Message-ID threads to its item.
pub async fn outbound_mail_log_filters_and_threads(store: TestStore) {
    use tandem_core::mail::{OutboundMail, OutboundStatus};
    use tandem_core::store::OutboundQuery;
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let printer = insert(store.as_ref(), &ws, ws.item("printer")).await;
    let scanner = insert(store.as_ref(), &ws, ws.item("scanner")).await;
    let rows = [
        ("mail:1:maria", "maria@club.example", Some(printer.id), OutboundStatus::Sent, 0),
        ("mail:2:maria", "maria@club.example", Some(scanner.id), OutboundStatus::Sent, 5),
        ("mail:3:joao", "joao@club.example", Some(printer.id), OutboundStatus::Withheld, 10),
        ("mail:4:maria", "maria@club.example", Some(printer.id), OutboundStatus::Failed, 15),
        ("mail:5:ana", "ana@desk.example", None, OutboundStatus::Sent, 20),
    ];
    for (key, to, item, status, minutes) in rows {
        insert(store.as_ref(), &ws, ws.outbound_mail(key, to, item, status, minutes)).await;
    }
    insert(
        store.as_ref(),
        &other,
        other.outbound_mail("mail:1:maria", "maria@club.example", None, OutboundStatus::Sent, 0),
    )
    .await;
    let keys = |found: Vec<OutboundMail>| found.into_iter().map(|m| m.key).collect::<Vec<_>>();
    let q = OutboundQuery::all(100);
    assert_eq!(
        keys(store.outbound_mails(ws.id, &q).await.unwrap()),
        ["mail:5:ana", "mail:4:maria", "mail:3:joao", "mail:2:maria", "mail:1:maria"]
    );
    let by_item = OutboundQuery { item: Some(printer.id), ..q.clone() };
    assert_eq!(
        keys(store.outbound_mails(ws.id, &by_item).await.unwrap()),
        ["mail:4:maria", "mail:3:joao", "mail:1:maria"]
    );
    let recent_sent_to_maria = OutboundQuery {
        recipient: Some("Maria@Club.example".into()),
        status: Some(OutboundStatus::Sent),
        since: Some(ws.at(5)),
        ..q.clone()
    };
    assert_eq!(keys(store.outbound_mails(ws.id, &recent_sent_to_maria).await.unwrap()), ["mail:2:maria"]);
    assert_eq!(
        keys(store.outbound_mails(ws.id, &OutboundQuery::all(2)).await.unwrap()),
        ["mail:5:ana", "mail:4:maria"]
    );
    assert_eq!(store.outbound_mails(other.id, &q).await.unwrap().len(), 1);

    let id = OutboundMail::id_for(ws.id, "mail:3:joao");
    let found = store::get::<OutboundMail>(store.as_ref(), ws.id, id.0).await.unwrap().unwrap();
    assert_eq!(found.status, OutboundStatus::Withheld);
    let mut again = ws.changes();
    again.insert(Record::OutboundMail(ws.outbound_mail(
        "mail:3:joao",
        "joao@club.example",
        None,
        OutboundStatus::Sent,
        30,
    )));
    assert!(matches!(store.commit(again).await, Err(StoreError::Conflict(_))));

    let sent =
        ws.outbound_mail("mail:1:maria", "maria@club.example", Some(printer.id), OutboundStatus::Sent, 0);
    let mid = sent.message_id.clone().unwrap();
    assert_eq!(
        store.items_by_message_ids(ws.id, std::slice::from_ref(&mid)).await.unwrap(),
        vec![(mid, printer.id)]
    );
}

fn session(ws: &Ws, user: &User, secret: &str) -> Session {
    Session {
        id: id(),
        workspace_id: ws.id,
        user: user.id,
        secret_sha256: secret.to_string(),
        method: SignInMethod::Password,
        created_at: ws.now,
        expires_at: ws.at(60),
        revoked_at: None,
        version: 1,
    }
}

/// Sessions and sign-in links are found by their secret's digest whatever the workspace;
/// credentials are records of their own, one per user.
pub async fn sign_in_records_are_found_by_secret(store: TestStore) {
    let a = workspace(store.as_ref(), "A").await;
    let b = workspace(store.as_ref(), "B").await;
    let ana = insert(store.as_ref(), &a, a.user("Ana", Role::Agent)).await;
    let bo = insert(store.as_ref(), &b, b.user("Bo", Role::Customer)).await;
    let mine = insert(store.as_ref(), &a, session(&a, &ana, &"a".repeat(64))).await;
    let link = insert(
        store.as_ref(),
        &b,
        SignInLink {
            id: id(),
            workspace_id: b.id,
            user: bo.id,
            secret_sha256: "b".repeat(64),
            created_at: b.now,
            expires_at: b.at(15),
            used_at: None,
            version: 1,
        },
    )
    .await;
    let found = |kind, secret: String| {
        let store = store.clone();
        async move { store.record_by_secret(kind, &secret).await.unwrap() }
    };
    assert_eq!(found(RecordKind::Session, "a".repeat(64)).await, Some(Record::Session(mine.clone())));
    assert_eq!(found(RecordKind::SignInLink, "b".repeat(64)).await, Some(Record::SignInLink(link.clone())));
    assert_eq!(found(RecordKind::Session, "b".repeat(64)).await, None, "kinds do not mix");
    assert_eq!(found(RecordKind::SignInLink, "c".repeat(64)).await, None);
    assert_eq!(found(RecordKind::User, "a".repeat(64)).await, None, "users hold no secret");

    // Ending a session is an update like any other.
    let ended = Session { revoked_at: Some(a.at(5)), version: 2, ..mine.clone() };
    update(store.as_ref(), &a, ended.clone()).await.unwrap();
    assert_eq!(found(RecordKind::Session, "a".repeat(64)).await, Some(Record::Session(ended)));
    let listed: Vec<Session> =
        store::list(store.as_ref(), a.id, &RecordQuery::children_of(ana.id.0)).await.unwrap();
    assert_eq!(listed.len(), 1, "sessions list under their user");

    // One credential per user: its id is the user's.
    let credential = Credential {
        id: ana.id.0.into(),
        workspace_id: a.id,
        user: ana.id,
        password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        changed_at: a.now,
        version: 1,
    };
    insert(store.as_ref(), &a, credential.clone()).await;
    let mut again = a.changes();
    again.insert(Record::Credential(credential.clone()));
    assert!(matches!(store.commit(again).await, Err(StoreError::Conflict(_))));
    assert_eq!(store::get::<Credential>(store.as_ref(), a.id, ana.id.0).await.unwrap(), Some(credential));
    assert_eq!(store::get::<Credential>(store.as_ref(), b.id, ana.id.0).await.unwrap(), None);
}

/// A token's use is written at most once per interval, as a versioned change that later
/// updates build on.
pub async fn token_use_is_recorded_once_per_interval(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let ana = insert(store.as_ref(), &ws, ws.user("Ana", Role::Agent)).await;
    let token = insert(
        store.as_ref(),
        &ws,
        ApiToken {
            id: id(),
            workspace_id: ws.id,
            user: ana.id,
            name: "ci".into(),
            secret_sha256: "d".repeat(64),
            scope: TokenScope::Read,
            created_at: ws.now,
            revoked_at: None,
            last_used_at: None,
            version: 1,
        },
    )
    .await;
    let every = Duration::minutes(1);
    assert!(store.touch_token(ws.id, token.id, ws.at(1), every).await.unwrap());
    assert!(!store.touch_token(ws.id, token.id, ws.at(1) + Duration::seconds(30), every).await.unwrap());
    assert!(store.touch_token(ws.id, token.id, ws.at(2), every).await.unwrap());
    let other = workspace(store.as_ref(), "other").await;
    assert!(!store.touch_token(other.id, token.id, ws.at(9), every).await.unwrap(), "tenancy");
    let read = store::get::<ApiToken>(store.as_ref(), ws.id, token.id.0).await.unwrap().unwrap();
    assert_eq!((read.last_used_at, read.version), (Some(ws.at(2)), 3));
    assert_eq!(store.token_by_secret(&"d".repeat(64)).await.unwrap(), Some(read.clone()));
    // A writer that read before the touch loses; one that read after wins.
    let stale = ApiToken { revoked_at: Some(ws.at(3)), version: 2, ..token };
    assert!(matches!(update(store.as_ref(), &ws, stale).await, Err(StoreError::Conflict(_))));
    let revoked = ApiToken { revoked_at: Some(ws.at(3)), version: 4, ..read };
    update(store.as_ref(), &ws, revoked.clone()).await.unwrap();
    let read = store::get::<ApiToken>(store.as_ref(), ws.id, revoked.id.0).await.unwrap().unwrap();
    assert_eq!(read, revoked);
}

/// Failed sign-ins are counted atomically and lock exactly as `Throttle::after_failure` says.
pub async fn login_failures_count_lock_and_clear(store: TestStore) {
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let policy =
        ThrottlePolicy { max_failures: 3, window: Duration::minutes(10), lockout: Duration::minutes(5) };
    assert_eq!(store.login_throttle(ws.id, "account:ana@x").await.unwrap(), None);
    let mut expected = None;
    for minute in [0, 1, 2, 4, 7, 8, 30] {
        let now = ws.at(minute);
        let counted = store.record_login_failure(ws.id, "account:ana@x", now, &policy).await.unwrap();
        let model = Throttle::after_failure(expected, now, &policy);
        assert_eq!(counted, model, "minute {minute}");
        expected = Some(model);
    }
    assert_eq!(store.login_throttle(ws.id, "account:ana@x").await.unwrap(), expected);
    assert_eq!(store.login_throttle(other.id, "account:ana@x").await.unwrap(), None, "per workspace");
    store.clear_login_failures(ws.id, "account:ana@x").await.unwrap();
    assert_eq!(store.login_throttle(ws.id, "account:ana@x").await.unwrap(), None);

    // Servers counting at once lose no failure.
    let wide = ThrottlePolicy { max_failures: 1000, ..policy };
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (store, ws) = (store.clone(), ws.clone());
        tasks.push(tokio::spawn(async move {
            store.record_login_failure(ws.id, "ip:192.0.2.7", ws.now, &wide).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counted = store.login_throttle(ws.id, "ip:192.0.2.7").await.unwrap().unwrap();
    assert_eq!((counted.failures, counted.locked_until), (24, None));
}

/// Stamps out every conformance case for one backend. `$harness` is an async fn returning
/// `Option<Harness>`; `None` means the backend is unavailable here and the case is skipped (the
/// harness prints why, and must fail instead under `CI=true`).
#[macro_export]
macro_rules! conformance_suite {
    ($harness:path) => {
        $crate::stamp!($harness; conformance;
            commit_assigns_numbers_and_sequences,
            concurrent_creates_are_numbered_without_gaps,
            stale_version_conflicts_and_writes_nothing,
            unique_keys_are_duplicates,
            records_list_by_parent_in_order,
            events_are_ordered_and_paged,
            keyset_pagination_covers_every_order,
            filters_select_exactly,
            scope_is_pushed_down,
            search_matches_text_and_respects_internal,
            messages_are_ordered_and_filtered,
            links_are_found_from_both_ends,
            blobs_are_deduplicated_and_limited,
            tenancy_is_total,
            jobs_lifecycle,
            concurrent_claims_are_exclusive,
            claims_select_kinds_in_due_order,
            settings_and_tokens,
            webhooks_and_cursors_are_records,
            racing_cursor_advances_admit_one_winner,
            concurrent_relays_enqueue_each_delivery_once,
            mail_addresses_route_across_workspaces,
            inbound_mail_is_deduplicated,
            message_ids_thread_to_items,
            automation_records_round_trip,
            outbound_mail_log_filters_and_threads,
            sign_in_records_are_found_by_secret,
            token_use_is_recorded_once_per_interval,
            login_failures_count_lock_and_clear,
            calendars_and_plans_are_stored,
            time_entries_filter_and_one_timer_runs,
            scheduled_reports_are_stored,
        );
        $crate::stamp!($harness; conformance_access;
            organizations_own_their_domains,
            memberships_are_records,
            scopes_agree_with_admits,
        );
    };
}

/// Rules (with nested conditions), the run log (children of their item) and the per-workspace
/// automation state are stored whole, versioned and kept per tenant.
pub async fn automation_records_round_trip(store: TestStore) {
    use tandem_core::automation::{AutomationRun, AutomationState, Rule, RunOutcome};
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let item = insert(store.as_ref(), &ws, ws.item("printer")).await;
    let second = insert(store.as_ref(), &ws, ws.item("scanner")).await;
    let rule: Rule = serde_json::from_value(serde_json::json!({
        "id": id::<RuleId>(), "workspace_id": ws.id, "name": "Hardware", "enabled": true, "position": 1,
        "trigger": {"type": "item_created"},
        "conditions": {"any": [{"field": "custom.category", "op": "eq", "value": "Hardware"},
                               {"not": {"business_hours": {"days": ["mon"], "start": "09:00", "end": "17:00"}}}]},
        "actions": [{"type": "set_priority", "priority": "high"}],
        "created_at": ws.now, "updated_at": ws.now, "version": 1,
    }))
    .unwrap();
    let rule = insert(store.as_ref(), &ws, rule).await;
    let read = store::get::<Rule>(store.as_ref(), ws.id, rule.id.0).await.unwrap();
    assert_eq!(read.as_ref(), Some(&rule));
    assert_eq!(store::get::<Rule>(store.as_ref(), other.id, rule.id.0).await.unwrap(), None);

    let run = |item: ItemId, n: i64| AutomationRun {
        id: id(),
        workspace_id: ws.id,
        rule: rule.id,
        rule_name: rule.name.clone(),
        item,
        at: ws.at(n),
        outcome: RunOutcome::Fired,
        reason: "item.created".into(),
        depth: 0,
        changes: vec!["priority = high".into()],
        occurrence: (n == 2).then(|| "idle:1".to_string()),
        version: 1,
    };
    let first = insert(store.as_ref(), &ws, run(item.id, 1)).await;
    let third = insert(store.as_ref(), &ws, run(item.id, 2)).await;
    insert(store.as_ref(), &ws, run(second.id, 3)).await;
    let of_item = store::list::<AutomationRun>(store.as_ref(), ws.id, &RecordQuery::children_of(item.id.0))
        .await
        .unwrap();
    assert_eq!(of_item, vec![first, third]);
    assert_eq!(
        store::list::<AutomationRun>(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap().len(),
        3
    );

    let mut state = AutomationState::new(ws.id, ws.now);
    state.item_firings.insert(item.id, 3);
    state.round_robin.insert(format!("{}:0", rule.id), 7);
    state.version = 1;
    let state = insert(store.as_ref(), &ws, state).await;
    let mut next = state.clone();
    next.workspace_firings = 9;
    next.version = 2;
    update(store.as_ref(), &ws, next.clone()).await.unwrap();
    // A writer that read version 1 loses.
    assert!(matches!(update(store.as_ref(), &ws, next.clone()).await, Err(StoreError::Conflict(_))));
    assert_eq!(store::get::<AutomationState>(store.as_ref(), ws.id, ws.id.0).await.unwrap(), Some(next));
}

/// One `#[tokio::test]` per case of `$module`, each on a fresh store from `$harness`.
#[macro_export]
macro_rules! stamp {
    ($harness:path; $module:ident; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some(harness) = $harness().await else { return };
            $crate::$module::$case(harness.store.clone()).await;
        }
    )*};
}

/// Working calendars are records (one per owner: the id is the workspace's or the user's, so a
/// second one conflicts); personal ones list under their user. Planning fields of an item and the
/// timing of a dependency survive the round trip.
pub async fn calendars_and_plans_are_stored(store: TestStore) {
    use tandem_core::schedule::{Baseline, Constraint, DependencyKind, Exception, Lag, Mode, WeekPattern};
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let ann = insert(store.as_ref(), &ws, ws.user("ann", Role::Agent)).await;
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    let calendar = |owner| WorkCalendar {
        id: WorkCalendar::id_for(ws.id, owner),
        workspace_id: ws.id,
        owner,
        week: Some(WeekPattern::standard()),
        exceptions: vec![Exception::holiday("Christmas", day(25))],
        updated_at: ws.now,
        version: 1,
    };
    let workspace_calendar = insert(store.as_ref(), &ws, calendar(CalendarOwner::Workspace)).await;
    let personal = WorkCalendar {
        week: None,
        exceptions: vec![Exception::days_off("Holiday", day(28), day(31))],
        ..calendar(CalendarOwner::User(ann.id))
    };
    let personal = insert(store.as_ref(), &ws, personal).await;
    let mut again = ws.changes();
    again.insert(Record::Calendar(calendar(CalendarOwner::Workspace)));
    assert!(matches!(store.commit(again).await, Err(StoreError::Conflict(_) | StoreError::Duplicate(_))));
    let all: Vec<WorkCalendar> = store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&workspace_calendar) && all.contains(&personal));
    let mine: Vec<WorkCalendar> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(ann.id.0)).await.unwrap();
    assert_eq!(mine, std::slice::from_ref(&personal));
    assert!(
        store::list::<WorkCalendar>(store.as_ref(), other.id, &RecordQuery::all()).await.unwrap().is_empty()
    );
    let shorter = WorkCalendar { exceptions: vec![], version: 2, ..personal.clone() };
    update(store.as_ref(), &ws, shorter.clone()).await.unwrap();
    assert_eq!(
        store::get::<WorkCalendar>(store.as_ref(), ws.id, personal.id.0).await.unwrap(),
        Some(shorter)
    );

    let at = |d, h| day(d).and_hms_opt(h, 0, 0).unwrap();
    let planned = Item {
        kind: ItemKind::Task,
        item_type: ws.task_type,
        plan: TaskPlan {
            duration: Some(960),
            work: Some(1200),
            constraint: Constraint::StartNoEarlierThan(at(1, 8)),
            mode: Mode::Automatic,
            percent_complete: 40,
            points: Some(3.5),
            baseline: Some(Baseline { start: at(1, 8), finish: at(2, 17) }),
            actual_start: Some(at(1, 9)),
            resource: Some(ann.id),
            ..Default::default()
        },
        ..ws.item("planned")
    };
    let planned = insert(store.as_ref(), &ws, planned).await;
    let next = insert(store.as_ref(), &ws, Item { kind: ItemKind::Task, ..ws.item("next") }).await;
    let link = insert(
        store.as_ref(),
        &ws,
        ItemLink {
            id: id(),
            workspace_id: ws.id,
            from: planned.id,
            to: next.id,
            kind: LinkKind::Blocks,
            dependency: Some(DependencyTiming { kind: DependencyKind::StartToStart, lag: Lag::Percent(50) }),
            created_at: ws.now,
            version: 1,
        },
    )
    .await;
    let stored = store::get::<Item>(store.as_ref(), ws.id, planned.id.0).await.unwrap().unwrap();
    assert_eq!(stored.plan, planned.plan);
    assert_eq!(store.links(ws.id, next.id).await.unwrap(), [link]);
}

/// Time entries filter by person, items, status, running and start; a person has one running
/// timer at most (a second is `Duplicate`, even from a racing commit), and stopping it frees the
/// slot.
pub async fn time_entries_filter_and_one_timer_runs(store: TestStore) {
    use tandem_core::store::TimeEntryQuery;
    use tandem_core::timesheet::Timer;
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let ann = insert(store.as_ref(), &ws, ws.user("ann", Role::Agent)).await;
    let bob = insert(store.as_ref(), &ws, ws.user("bob", Role::Agent)).await;
    let a = insert(store.as_ref(), &ws, ws.item("a")).await;
    let b = insert(store.as_ref(), &ws, ws.item("b")).await;
    let entry = |user: &User, item: &Item, start: i64, status: EntryStatus, timer: Option<Timer>| TimeEntry {
        id: id(),
        workspace_id: ws.id,
        item: item.id,
        user: user.id,
        started_at: ws.at(start),
        minutes: 30,
        note: String::new(),
        timer,
        status,
        submitted_at: None,
        reviewed_by: None,
        reviewed_at: None,
        rejection_reason: None,
        created_at: ws.now,
        updated_at: ws.now,
        version: 1,
    };
    let running = || Some(Timer::Running { since: ws.now });
    let e1 = insert(store.as_ref(), &ws, entry(&ann, &a, 60, EntryStatus::Approved, None)).await;
    let e2 = insert(store.as_ref(), &ws, entry(&ann, &b, 0, EntryStatus::Draft, None)).await;
    let e3 = insert(store.as_ref(), &ws, entry(&bob, &a, 30, EntryStatus::Submitted, None)).await;
    let timer = insert(store.as_ref(), &ws, entry(&ann, &a, 120, EntryStatus::Draft, running())).await;
    insert(store.as_ref(), &ws, entry(&bob, &b, 120, EntryStatus::Draft, running())).await;

    let ws_id = ws.id;
    let ids = |q: TimeEntryQuery| {
        let store = store.clone();
        async move {
            store
                .time_entries(ws_id, &q)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<TimeEntryId>>()
        }
    };
    let all = TimeEntryQuery::all;
    assert_eq!(ids(TimeEntryQuery { user: Some(ann.id), ..all() }).await, [e2.id, e1.id, timer.id]);
    assert_eq!(ids(TimeEntryQuery { items: Some(vec![a.id]), ..all() }).await.len(), 3);
    assert_eq!(ids(TimeEntryQuery { items: Some(vec![]), ..all() }).await, []);
    assert_eq!(
        ids(TimeEntryQuery { statuses: vec![EntryStatus::Approved, EntryStatus::Submitted], ..all() }).await,
        [e3.id, e1.id]
    );
    assert_eq!(ids(TimeEntryQuery { user: Some(ann.id), running: Some(true), ..all() }).await, [timer.id]);
    assert_eq!(
        ids(TimeEntryQuery { started_from: Some(ws.at(30)), started_before: Some(ws.at(120)), ..all() })
            .await,
        [e3.id, e1.id]
    );
    assert_eq!(ids(TimeEntryQuery { limit: 2, ..all() }).await.len(), 2);
    assert!(store.time_entries(other.id, &all()).await.unwrap().is_empty());

    // A second running timer for ann is refused, also when two race.
    let mut second = ws.changes();
    second.insert(Record::TimeEntry(entry(&ann, &b, 200, EntryStatus::Draft, running())));
    assert!(matches!(store.commit(second).await, Err(StoreError::Duplicate(_))));
    // Four commits racing to start carl's first timer: exactly one wins.
    let carl = insert(store.as_ref(), &ws, ws.user("carl", Role::Agent)).await;
    let mut racers = Vec::new();
    for i in 0..4 {
        let store = store.clone();
        let mut c = ws.changes();
        c.insert(Record::TimeEntry(entry(&carl, &a, 300 + i, EntryStatus::Draft, running())));
        racers.push(tokio::spawn(async move { store.commit(c).await }));
    }
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Duplicate(_)) => {}
            Err(e) => panic!("a racing timer failed with {e:?}"),
        }
    }
    assert_eq!(won, 1);
    // Pausing ann's timer frees the slot.
    let paused = TimeEntry { timer: Some(Timer::Paused), version: 2, ..timer.clone() };
    update(store.as_ref(), &ws, paused).await.unwrap();
    insert(store.as_ref(), &ws, entry(&ann, &b, 400, EntryStatus::Draft, running())).await;
    assert_eq!(ids(TimeEntryQuery { running: Some(true), ..all() }).await.len(), 3);
}

/// Scheduled reports are records listed under their owner; versions guard changes; a report is
/// its workspace's alone.
pub async fn scheduled_reports_are_stored(store: TestStore) {
    use tandem_core::reports::{Recipient, ReportFormat, ReportSchedule, ScheduledReport};
    let ws = workspace(store.as_ref(), "w").await;
    let other = workspace(store.as_ref(), "other").await;
    let ann = insert(store.as_ref(), &ws, ws.user("ann", Role::Agent)).await;
    let bo = insert(store.as_ref(), &ws, ws.user("bo", Role::Agent)).await;
    let report = |owner: UserId, name: &str| ScheduledReport {
        id: id(),
        workspace_id: ws.id,
        name: name.into(),
        owner,
        view: id(),
        schedule: ReportSchedule::Week { days: vec![chrono::Weekday::Mon], at: "08:00".into() },
        format: ReportFormat::Xlsx,
        recipients: vec![Recipient::User(bo.id), Recipient::Address("ops@partner.example".into())],
        enabled: true,
        next_run: ws.now + Duration::days(1),
        last_run: None,
        created_at: ws.now,
        updated_at: ws.now,
        version: 1,
    };
    let weekly = insert(store.as_ref(), &ws, report(ann.id, "Weekly")).await;
    let daily = insert(store.as_ref(), &ws, report(bo.id, "Daily")).await;
    let anns: Vec<ScheduledReport> =
        store::list(store.as_ref(), ws.id, &RecordQuery::children_of(ann.id.0)).await.unwrap();
    assert_eq!(anns, std::slice::from_ref(&weekly));
    let all: Vec<ScheduledReport> = store::list(store.as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        store::list::<ScheduledReport>(store.as_ref(), other.id, &RecordQuery::all())
            .await
            .unwrap()
            .is_empty()
    );
    let sent = ScheduledReport {
        last_run: Some(ws.now),
        next_run: ws.now + Duration::days(7),
        version: 2,
        ..weekly.clone()
    };
    update(store.as_ref(), &ws, sent.clone()).await.unwrap();
    // A second server queueing the same occurrence read version 1: it conflicts.
    let racing = ScheduledReport { version: 2, ..weekly.clone() };
    assert!(matches!(update(store.as_ref(), &ws, racing).await, Err(StoreError::Conflict(_))));
    assert_eq!(store::get::<ScheduledReport>(store.as_ref(), ws.id, weekly.id.0).await.unwrap(), Some(sent));
    let mut gone = ws.changes();
    gone.delete(RecordKind::Report, daily.id.0, daily.version);
    store.commit(gone).await.unwrap();
    assert!(store::get::<ScheduledReport>(store.as_ref(), ws.id, daily.id.0).await.unwrap().is_none());
}
