use std::sync::Arc;
use tandem_core::commands::*;
use tandem_core::*;

#[tokio::test]
async fn desk_on_sqlite_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(tandem_storage_sqlite::SqliteStore::open(dir.path().join("t.db"), Default::default()).unwrap());
    let clock = Arc::new(tandem_core::ids::FixedClock(chrono::Utc::now()));
    let desk = Desk::new(store.clone(), clock, Arc::new(SequentialIds::default()), Limits::default());
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Federation".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let types: Vec<ItemType> = desk.directory(&admin, &tandem_core::store::RecordQuery::all()).await.unwrap();
    assert_eq!(types.len(), 2);
    let ticket = types.iter().find(|t| t.kind == ItemKind::Ticket).unwrap();
    let a = desk.execute(&admin, &CreateItem::new(ticket.id, "Printer down")).await.unwrap();
    let b = desk.execute(&admin, &CreateItem::new(ticket.id, "VPN broken")).await.unwrap();
    assert_eq!((a.number, b.number), (1, 2));
    let posted = desk
        .execute(&admin, &PostMessage::new(a.id, Visibility::Public, Body::Text("Have you tried turning it off?".into())))
        .await
        .unwrap();
    assert_eq!(posted.item.version, 2);
    let hits = desk.search(&admin, "turning", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].item.number, 1);
    let history = desk.history(&admin, ItemRef::Number(1)).await.unwrap();
    assert_eq!(history.iter().map(|e| e.data.name()).collect::<Vec<_>>(), ["item.created", "item.message_posted"]);
    let page = desk.items(&admin, ItemQuery::new(ItemScope::All)).await.unwrap();
    assert_eq!(page.items.len(), 2);
}
