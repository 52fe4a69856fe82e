//! Records and change sets built by hand, for tests that talk to a `Store` directly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use tandem_core::store::TypedRecord;
use tandem_core::*;
use uuid::Uuid;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh, time-ordered id (UUIDv7 layout: later calls sort after earlier ones).
pub fn id<T: From<Uuid>>() -> T {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_700_000_000 + n, 0);
    let mut bytes = *Uuid::new_v7(ts).as_bytes();
    bytes[8..16].copy_from_slice(&n.to_be_bytes());
    T::from(Uuid::from_bytes(bytes))
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap_or_default()
}

/// A workspace and the helpers to fill it.
#[derive(Debug, Clone)]
pub struct Ws {
    pub id: WorkspaceId,
    pub ticket_type: ItemTypeId,
    pub task_type: ItemTypeId,
    pub now: DateTime<Utc>,
}

impl Ws {
    pub fn changes(&self) -> ChangeSet {
        ChangeSet::new(self.id, ActorRef::System, self.now)
    }

    pub fn at(&self, minutes: i64) -> DateTime<Utc> {
        self.now + Duration::minutes(minutes)
    }

    pub fn user(&self, name: &str, role: Role) -> User {
        User {
            id: id(),
            workspace_id: self.id,
            name: name.to_string(),
            email: Some(format!("{}@example.org", name.to_lowercase())),
            handle: Some(name.to_lowercase()),
            role,
            active: true,
            email_bounce: None,
            organization: None,
            created_at: self.now,
            version: 1,
        }
    }

    pub fn item(&self, title: &str) -> Item {
        Item {
            id: id(),
            workspace_id: self.id,
            number: 0,
            item_type: self.ticket_type,
            kind: ItemKind::Ticket,
            title: title.to_string(),
            description: String::new(),
            project: None,
            folder: None,
            parent: None,
            requester: None,
            assignees: vec![],
            followers: vec![],
            priority: Priority::Normal,
            status: "triage".into(),
            category: StatusCategory::New,
            custom: BTreeMap::new(),
            channel: Channel::Api,
            created_by: ActorRef::System,
            created_at: self.now,
            updated_at: self.now,
            done_at: None,
            plan: Default::default(),
            version: 1,
        }
    }

    pub fn message(&self, item: &Item, text: &str, visibility: Visibility) -> Message {
        Message {
            id: id(),
            workspace_id: self.id,
            item: item.id,
            author: ActorRef::System,
            visibility,
            channel: Channel::Api,
            text: text.to_string(),
            html: format!("<p>{text}</p>"),
            attachments: vec![],
            mentions: vec![],
            email: None,
            created_at: self.now,
            version: 1,
        }
    }

    /// A received mail recorded under `key`, made into `item` when given.
    pub fn inbound_mail(&self, key: &str, message_id: Option<&str>, item: Option<ItemId>) -> InboundMail {
        use tandem_core::mail::{InboundStatus, MailClass, MailTransport};
        InboundMail {
            id: id(),
            workspace_id: self.id,
            dedupe_key: key.to_string(),
            message_id: message_id.map(String::from),
            sha256: "0".repeat(64),
            size: 10,
            raw_stored: true,
            transport: MailTransport::Smtp,
            envelope_from: None,
            recipients: vec!["it@desk.example".into()],
            from: Some("maria@club.example".into()),
            subject: "Printer".into(),
            class: MailClass::Personal,
            status: InboundStatus::Accepted,
            reason: None,
            outcome: None,
            item,
            received_at: self.now,
            version: 1,
        }
    }

    /// An outbound mail to `recipient` about `item`, recorded `minutes` after `now`.
    pub fn outbound_mail(
        &self,
        key: &str,
        recipient: &str,
        item: Option<ItemId>,
        status: tandem_core::mail::OutboundStatus,
        minutes: i64,
    ) -> tandem_core::mail::OutboundMail {
        tandem_core::mail::OutboundMail {
            id: tandem_core::mail::OutboundMail::id_for(self.id, key),
            workspace_id: self.id,
            key: key.to_string(),
            recipient: recipient.to_string(),
            item,
            template: "message_posted".into(),
            message_id: (status == tandem_core::mail::OutboundStatus::Sent)
                .then(|| format!("tandem.{}@desk.example", key.replace(':', "."))),
            subject: "[#1] Printer".into(),
            automatic: true,
            status,
            reason: None,
            at: self.at(minutes),
            version: 1,
        }
    }

    /// Mail settings routing `addresses` to the ticket type.
    pub fn mail_settings(&self, addresses: &[&str]) -> MailSettings {
        let mut s = MailSettings::empty(self.id);
        s.addresses = addresses
            .iter()
            .map(|a| tandem_core::mail::InboundAddress {
                address: a.to_string(),
                item_type: self.ticket_type,
            })
            .collect();
        s.version = 1;
        s
    }

    pub fn job(&self, kind: &str, key: &str) -> NewJob {
        NewJob {
            id: id(),
            kind: kind.to_string(),
            payload: serde_json::json!({"key": key}),
            idempotency_key: key.to_string(),
            run_at: self.now,
            max_attempts: 3,
        }
    }
}

/// Creates a workspace with a ticket and a task type.
pub async fn workspace(store: &dyn Store, name: &str) -> Ws {
    let ws_id: WorkspaceId = id();
    let mut changes = ChangeSet::new(ws_id, ActorRef::ServerAdmin, t0());
    changes.insert(Record::Workspace(Workspace {
        id: ws_id,
        name: name.into(),
        created_at: t0(),
        version: 1,
    }));
    let mut type_ids = Vec::new();
    for (name, kind) in [("Ticket", ItemKind::Ticket), ("Task", ItemKind::Task)] {
        let t = ItemType {
            id: id(),
            workspace_id: ws_id,
            name: name.into(),
            kind,
            description: String::new(),
            workflow: Workflow::default_workflow(),
            fields: vec![],
            created_at: t0(),
            version: 1,
        };
        type_ids.push(t.id);
        changes.insert(Record::ItemType(t));
    }
    store.commit(changes).await.expect("creating a workspace commits");
    Ws { id: ws_id, ticket_type: type_ids[0], task_type: type_ids[1], now: t0() }
}

/// Commits one record insert and returns it with what the store assigned (item numbers).
pub async fn insert<T: TypedRecord + Clone>(store: &dyn Store, ws: &Ws, record: T) -> T {
    let mut changes = ws.changes();
    changes.insert(record.clone().into_record());
    let receipt = store.commit(changes).await.expect("insert commits");
    match record.into_record() {
        Record::Item(mut item) => {
            item.number = receipt.number_of(item.id).expect("a new item gets a number");
            T::from_record(Record::Item(item)).expect("same kind")
        }
        other => T::from_record(other).expect("same kind"),
    }
}

/// Commits an update of a record read at `version - 1`.
pub async fn update<T: TypedRecord + Clone>(
    store: &dyn Store,
    ws: &Ws,
    record: T,
) -> Result<CommitReceipt, StoreError> {
    let record = record.into_record();
    let expected = record.version() - 1;
    let mut changes = ws.changes();
    changes.update(record, expected);
    store.commit(changes).await
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(at))
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_else(|e| *e.into_inner())
    }
}

/// Ids for a `Desk` in tests: time-ordered like production's UUIDv7, unique across the process.
#[derive(Debug, Default)]
pub struct TestIds;

impl IdSource for TestIds {
    fn new_id(&self) -> Uuid {
        id()
    }
}

/// A `Desk` over `store` with a manual clock starting at [`t0`].
pub fn desk(store: std::sync::Arc<dyn Store>) -> (Desk, std::sync::Arc<ManualClock>) {
    let clock = std::sync::Arc::new(ManualClock::new(t0()));
    let desk = Desk::new(
        store,
        clock.clone(),
        std::sync::Arc::new(TestIds),
        Limits { max_attachment_bytes: 64 * 1024, ..Limits::default() },
    );
    (desk, clock)
}
