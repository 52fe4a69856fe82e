//! End-to-end scenarios through `Desk`, drawn from the teams in USE-CASES.md, run on every backend
//! by [`scenario_suite!`](crate::scenario_suite).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use tandem_core::commands::*;
use tandem_core::store::RecordQuery;
use tandem_core::*;

use crate::TestStore;
use crate::fixture::desk;

fn server_admin() -> Actor {
    Actor::server_admin(WorkspaceId(uuid::Uuid::nil()))
}

async fn user(desk: &Desk, admin: &Actor, name: &str, email: &str, role: Role) -> Actor {
    let u = desk
        .execute(
            admin,
            &CreateUser {
                name: name.into(),
                email: Some(email.into()),
                handle: Some(name.to_lowercase()),
                role,
            },
        )
        .await
        .unwrap();
    Actor::user(u, TokenScope::Admin)
}

fn text(s: &str) -> Body {
    Body::Text(s.into())
}

fn kind_of(e: &DeskError) -> &'static str {
    match e {
        DeskError::Invalid(_) => "invalid",
        DeskError::NotFound(_) => "not_found",
        DeskError::Forbidden(_) => "forbidden",
        DeskError::Conflict(_) => "conflict",
        DeskError::RateLimited(_) => "rate_limited",
        DeskError::TooLarge { .. } => "too_large",
        DeskError::Store(_) => "store",
    }
}

/// The federation's data-services desk: a member's request arrives, is answered publicly, discussed
/// internally with an @mention, waits on the member, reopens on their reply and finally becomes a
/// project task without losing anything.
pub async fn federation_request_becomes_a_project_task(store: TestStore) {
    let (desk, clock) = desk(store);
    let ws = desk.execute(&server_admin(), &CreateWorkspace { name: "Data services".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let ana = user(&desk, &admin, "Ana", "ana@federation.example", Role::Agent).await;
    let ben = user(&desk, &admin, "Ben", "ben@federation.example", Role::Agent).await;
    let maria = user(&desk, &admin, "Maria", "maria@club-lisbon.example", Role::Customer).await;
    let other_member = user(&desk, &admin, "Otto", "otto@club-graz.example", Role::Customer).await;

    let request_type = desk
        .execute(
            &admin,
            &CreateItemType {
                name: "Data request".into(),
                kind: ItemKind::Ticket,
                description: String::new(),
                workflow: None,
                fields: vec![FieldDef {
                    key: "club_number".into(),
                    label: "Club number".into(),
                    kind: FieldKind::Number,
                    required: true,
                    help: None,
                    internal: false,
                    rules: FieldRules { min: Some(1.0), ..Default::default() },
                }],
            },
        )
        .await
        .unwrap();
    let types: Vec<ItemType> = desk.directory(&admin, &RecordQuery::all()).await.unwrap();
    let task_type = types.iter().find(|t| t.kind == ItemKind::Task).unwrap().clone();
    let project = desk
        .execute(
            &admin,
            &CreateProject { name: "Club data cleanup".into(), description: String::new(), portfolio: None },
        )
        .await
        .unwrap();

    // The member submits; a missing required field is refused and nothing is created.
    let mut submit = CreateItem::new(request_type.id, "Export of our members for the AGM");
    submit.description = "We need a list of all active members with their joining date.".into();
    let err = desk.execute(&maria, &submit).await.unwrap_err();
    assert!(matches!(&err, DeskError::Invalid(i) if i.field == "custom.club_number"), "{err:?}");
    assert!(desk.items(&admin, ItemQuery::new(ItemScope::All)).await.unwrap().items.is_empty());
    submit.custom = BTreeMap::from([("club_number".to_string(), json!("4711"))]);
    let ticket = desk.execute(&maria, &submit).await.unwrap();
    assert_eq!(ticket.number, 1);
    assert_eq!(ticket.requester, maria.user_id());
    assert_eq!(ticket.followers, vec![maria.user_id().unwrap()], "the requester follows their request");
    assert_eq!(ticket.custom["club_number"], json!(4711.0));

    // Public answer, internal note with a mention.
    clock.advance(Duration::minutes(5));
    desk.execute(&ana, &PostMessage::new(ticket.id, Visibility::Public, text("Hi Maria, we are on it.")))
        .await
        .unwrap();
    let note = desk
        .execute(
            &ana,
            &PostMessage::new(
                ticket.id,
                Visibility::Internal,
                text("@ben can you check the export permissions?"),
            ),
        )
        .await
        .unwrap();
    assert_eq!(note.message.mentions, vec![ben.user_id().unwrap()]);
    assert!(note.item.followers.contains(&ben.user_id().unwrap()), "a mentioned colleague follows");
    let inbox = desk.notifications(&ben).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].item, ticket.id);
    desk.execute(&ben, &MarkNotificationRead { id: inbox[0].id }).await.unwrap();
    assert!(desk.notifications(&ben).await.unwrap()[0].read_at.is_some());

    // The member sees the public conversation only, and cannot find the note by searching.
    let seen_by_maria = desk.messages(&maria, ItemRef::Number(1)).await.unwrap();
    assert_eq!(
        seen_by_maria.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["Hi Maria, we are on it."]
    );
    assert!(desk.search(&maria, "permissions", 10).await.unwrap().is_empty());
    assert_eq!(desk.search(&ana, "permissions", 10).await.unwrap().len(), 1);
    // Another member can neither see nor find it.
    assert_eq!(kind_of(&desk.item(&other_member, ItemRef::Number(1)).await.unwrap_err()), "not_found");
    assert!(desk.items(&other_member, ItemQuery::new(ItemScope::All)).await.unwrap().items.is_empty());
    assert_eq!(kind_of(&desk.history(&maria, ItemRef::Number(1)).await.unwrap_err()), "forbidden");

    // Waiting on the member; their reply puts it back into execution.
    let waiting = TransitionItem {
        item: ItemRef::Number(1),
        to: TransitionTo::Status("waiting".into()),
        version: None,
    };
    assert_eq!(kind_of(&desk.execute(&maria, &waiting).await.unwrap_err()), "forbidden");
    desk.execute(&ana, &waiting).await.unwrap();
    let reply = desk
        .execute(
            &maria,
            &PostMessage::new(ticket.id, Visibility::Public, text("Only active members, please.")),
        )
        .await
        .unwrap();
    assert_eq!(reply.item.status, "execution");

    // It grows into project work: convert to a task, file it in the project.
    let converted = desk
        .execute(
            &ana,
            &ConvertItem {
                item: ItemRef::Number(1),
                to_type: task_type.id,
                custom: BTreeMap::new(),
                version: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (converted.number, converted.kind, converted.status.as_str()),
        (1, ItemKind::Task, "execution")
    );
    let filed = desk
        .execute(
            &ana,
            &UpdateItem {
                item: ItemRef::Number(1),
                patch: ItemPatch { project: Some(Some(project.id)), ..Default::default() },
            },
        )
        .await
        .unwrap();
    assert_eq!(filed.project, Some(project.id));
    assert_eq!(
        filed.followers,
        ticket.followers.iter().copied().chain([ben.user_id().unwrap()]).collect::<Vec<_>>()
    );
    assert_eq!(filed.custom["club_number"], json!(4711.0), "values of fields the task type lacks are kept");
    let by_old_number = desk.item(&ana, ItemRef::Number(1)).await.unwrap();
    assert_eq!(by_old_number.id, ticket.id);
    assert_eq!(desk.messages(&ana, ItemRef::Number(1)).await.unwrap().len(), 3);

    let history: Vec<&str> = desk
        .history(&ana, ItemRef::Number(1))
        .await
        .unwrap()
        .iter()
        .map(|e| e.data.name())
        .collect::<Vec<_>>()
        .leak()
        .to_vec();
    assert_eq!(
        history,
        [
            "item.created",
            "item.message_posted",
            "item.message_posted",
            "item.followers_changed",
            "item.status_changed",
            "item.message_posted",
            "item.status_changed",
            "item.converted",
            "item.updated",
        ]
    );
}

/// The student union's IT team reshapes its workflow while tickets are in flight.
pub async fn workflow_edits_move_items_in_flight(store: TestStore) {
    let (desk, _) = desk(store);
    let ws = desk.execute(&server_admin(), &CreateWorkspace { name: "Student union".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let agent = user(&desk, &admin, "Iris", "iris@union.example", Role::Agent).await;
    let types: Vec<ItemType> = desk.directory(&admin, &RecordQuery::all()).await.unwrap();
    let ticket_type = types.iter().find(|t| t.kind == ItemKind::Ticket).unwrap().id;
    for i in 0..3 {
        let item = desk
            .execute(&agent, &CreateItem::new(ticket_type, format!("Laptop {i} won't boot")))
            .await
            .unwrap();
        desk.execute(
            &agent,
            &TransitionItem {
                item: item.id.into(),
                to: TransitionTo::Status("waiting".into()),
                version: None,
            },
        )
        .await
        .unwrap();
    }
    let edit = |edit| EditWorkflow { item_type: ticket_type, edit };
    // Agents may not edit workflows.
    let err = desk
        .execute(
            &agent,
            &edit(WorkflowEdit::AddStatus {
                name: "In review".into(),
                category: StatusCategory::InProgress,
                position: Some(2),
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(kind_of(&err), "forbidden");
    let t = desk
        .execute(
            &admin,
            &edit(WorkflowEdit::AddStatus {
                name: "In review".into(),
                category: StatusCategory::InProgress,
                position: Some(2),
            }),
        )
        .await
        .unwrap();
    assert_eq!(t.workflow.statuses[2].key, "in_review");
    let t = desk
        .execute(
            &admin,
            &edit(WorkflowEdit::UpdateStatus {
                key: "triage".into(),
                name: Some("New request".into()),
                category: None,
                public_label: None,
            }),
        )
        .await
        .unwrap();
    assert_eq!(t.workflow.status("triage").unwrap().name, "New request");
    // Removing a status in use needs a target; items move there with a status event each.
    let t = desk
        .execute(
            &admin,
            &edit(WorkflowEdit::RemoveStatus { key: "waiting".into(), replace_with: "in_review".into() }),
        )
        .await
        .unwrap();
    assert!(t.workflow.status("waiting").is_none());
    let mut q = ItemQuery::new(ItemScope::All);
    q.filter.statuses = vec!["in_review".into()];
    let moved = desk.items(&agent, q).await.unwrap().items;
    assert_eq!(moved.len(), 3);
    assert!(moved.iter().all(|i| i.category == StatusCategory::InProgress));
    let last = desk.history(&agent, ItemRef::Number(3)).await.unwrap();
    assert!(
        matches!(&last.last().unwrap().data, EventData::StatusChanged { from, to, .. } if from == "waiting" && to == "in_review")
    );
    // A transition to the removed status is refused with a reason.
    let err = desk
        .execute(
            &agent,
            &TransitionItem {
                item: ItemRef::Number(1),
                to: TransitionTo::Status("waiting".into()),
                version: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, DeskError::Invalid(i) if i.field == "status"), "{err:?}");
}

/// Concurrent edits of one item both land (Desk retries on conflict); a client holding a stale
/// version is told so instead of overwriting.
pub async fn concurrent_edits_retry_and_stale_clients_conflict(store: TestStore) {
    let (desk, _) = desk(store);
    let desk = Arc::new(desk);
    let ws = desk.execute(&server_admin(), &CreateWorkspace { name: "Clinics".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let types: Vec<ItemType> = desk.directory(&admin, &RecordQuery::all()).await.unwrap();
    let ticket =
        desk.execute(&admin, &CreateItem::new(types[0].id, "Flyer for the Leeds clinic")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (desk, admin) = (desk.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            desk.execute(
                &admin,
                &PostMessage::new(ticket.id, Visibility::Internal, text(&format!("note {i}"))),
            )
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let item = desk.item(&admin, ItemRef::Number(1)).await.unwrap();
    assert_eq!(item.version, 13, "each message bumped the item once");
    assert_eq!(desk.messages(&admin, ItemRef::Number(1)).await.unwrap().len(), 12);
    let stale = UpdateItem {
        item: ItemRef::Number(1),
        patch: ItemPatch { title: Some("x".into()), version: Some(3), ..Default::default() },
    };
    assert_eq!(kind_of(&desk.execute(&admin, &stale).await.unwrap_err()), "conflict");
    assert_eq!(desk.item(&admin, ItemRef::Number(1)).await.unwrap().title, "Flyer for the Leeds clinic");
}

/// Attachments: identical uploads share one blob, files on internal notes stay internal, and an
/// oversize file is refused without writing anything.
pub async fn attachments_are_shared_limited_and_private(store: TestStore) {
    let (desk, _) = desk(store.clone());
    let ws = desk.execute(&server_admin(), &CreateWorkspace { name: "Aquatics".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let staff = user(&desk, &admin, "Sam", "sam@aquatics.example", Role::Agent).await;
    let store_manager = user(&desk, &admin, "Kim", "kim@store-calgary.example", Role::Customer).await;
    let types: Vec<ItemType> = desk.directory(&admin, &RecordQuery::all()).await.unwrap();
    let item =
        desk.execute(&store_manager, &CreateItem::new(types[0].id, "Till printer offline")).await.unwrap();
    let file = |name: &str, bytes: &[u8]| NewFile {
        filename: name.into(),
        content_type: "image/png".into(),
        bytes: Arc::from(bytes),
    };
    let a = desk
        .execute(
            &store_manager,
            &AddAttachment { item: item.id.into(), file: file("photo.png", b"same bytes") },
        )
        .await
        .unwrap();
    let b = desk
        .execute(&staff, &AddAttachment { item: item.id.into(), file: file("../copy.png", b"same bytes") })
        .await
        .unwrap();
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(b.filename, "copy.png");
    let mut note = PostMessage::new(item.id, Visibility::Internal, text("supplier invoice attached"));
    note.files = vec![file("invoice.pdf", b"%PDF-1.7 internal")];
    desk.execute(&staff, &note).await.unwrap();
    assert_eq!(desk.attachments(&staff, item.id.into()).await.unwrap().len(), 3);
    let visible = desk.attachments(&store_manager, item.id.into()).await.unwrap();
    assert_eq!(visible.len(), 2, "the invoice on the internal note is hidden");
    let invoice = desk
        .attachments(&staff, item.id.into())
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.filename == "invoice.pdf")
        .unwrap();
    assert_eq!(kind_of(&desk.attachment(&store_manager, invoice.id).await.unwrap_err()), "not_found");
    let (_, bytes) = desk.attachment(&staff, invoice.id).await.unwrap();
    assert_eq!(bytes, b"%PDF-1.7 internal");

    let before = desk.history(&staff, item.id.into()).await.unwrap().len();
    let huge = vec![0u8; 64 * 1024 + 1];
    let err = desk
        .execute(&staff, &AddAttachment { item: item.id.into(), file: file("huge.bin", &huge) })
        .await
        .unwrap_err();
    assert_eq!(kind_of(&err), "too_large");
    assert_eq!(desk.history(&staff, item.id.into()).await.unwrap().len(), before, "nothing was written");
    assert_eq!(desk.attachments(&staff, item.id.into()).await.unwrap().len(), 3);
}

/// Two tenants on one store: nothing of one is reachable through the other's actors.
pub async fn tenants_are_isolated_through_desk(store: TestStore) {
    let (desk, _) = desk(store);
    let a = desk.execute(&server_admin(), &CreateWorkspace { name: "Retailer".into() }).await.unwrap();
    let b = desk.execute(&server_admin(), &CreateWorkspace { name: "Charity".into() }).await.unwrap();
    let admin_a = Actor::server_admin(a.id);
    let types_a: Vec<ItemType> = desk.directory(&admin_a, &RecordQuery::all()).await.unwrap();
    desk.execute(&admin_a, &CreateItem::new(types_a[0].id, "Quarterly stock count")).await.unwrap();
    let agent_b = user(&desk, &Actor::server_admin(b.id), "Bo", "bo@charity.example", Role::Admin).await;
    assert_eq!(kind_of(&desk.item(&agent_b, ItemRef::Number(1)).await.unwrap_err()), "not_found");
    assert!(desk.search(&agent_b, "stock", 10).await.unwrap().is_empty());
    assert!(desk.items(&agent_b, ItemQuery::new(ItemScope::All)).await.unwrap().items.is_empty());
    // Using workspace A's item type from B fails as an unknown type.
    let err = desk.execute(&agent_b, &CreateItem::new(types_a[0].id, "sneaky")).await.unwrap_err();
    assert!(matches!(&err, DeskError::Invalid(i) if i.field == "item_type"), "{err:?}");
    assert_eq!(desk.workspaces(&agent_b).await.unwrap().len(), 1);
}

/// Stamps out every scenario for one backend (see [`conformance_suite!`](crate::conformance_suite)).
#[macro_export]
macro_rules! scenario_suite {
    ($harness:path) => {
        $crate::stamp!($harness; scenarios;
            federation_request_becomes_a_project_task,
            workflow_edits_move_items_in_flight,
            concurrent_edits_retry_and_stale_clients_conflict,
            attachments_are_shared_limited_and_private,
            tenants_are_isolated_through_desk,
        );
    };
}
