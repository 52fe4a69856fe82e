//! The append-only event log: every change Tandem makes is recorded as an event with a gap-free
//! per-workspace sequence number. History, notifications, automations, webhooks and live streams
//! all read from it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::change::RecordKind;
use crate::conversation::Visibility;
use crate::ids::{
    AttachmentId, InboundMailId, ItemId, ItemTypeId, LinkId, MessageId, OutboundMailId, UserId, WorkspaceId,
};
use crate::item::{ActorRef, Assignee, Channel, ItemKind, LinkKind};
use crate::mail::{InboundStatus, MailClass, OutboundStatus};
use crate::workflow::StatusCategory;

/// One field's old and new value, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventData {
    /// A configuration record (portfolio, project, folder, item type, user, team, token) was created.
    RecordCreated {
        record: RecordKind,
        id: Uuid,
        name: String,
    },
    RecordUpdated {
        record: RecordKind,
        id: Uuid,
        changes: Vec<FieldChange>,
    },
    RecordDeleted {
        record: RecordKind,
        id: Uuid,
    },
    ItemCreated {
        item_type: ItemTypeId,
        kind: ItemKind,
        title: String,
        status: String,
        requester: Option<UserId>,
        channel: Channel,
    },
    ItemUpdated {
        changes: Vec<FieldChange>,
    },
    StatusChanged {
        from: String,
        to: String,
        from_category: StatusCategory,
        to_category: StatusCategory,
    },
    AssigneesChanged {
        added: Vec<Assignee>,
        removed: Vec<Assignee>,
    },
    FollowersChanged {
        added: Vec<UserId>,
        removed: Vec<UserId>,
    },
    ItemConverted {
        from_type: ItemTypeId,
        to_type: ItemTypeId,
        from_kind: ItemKind,
        to_kind: ItemKind,
        from_status: String,
        to_status: String,
    },
    MessagePosted {
        message: MessageId,
        visibility: Visibility,
        channel: Channel,
        mentions: Vec<UserId>,
    },
    AttachmentAdded {
        attachment: AttachmentId,
        filename: String,
        size: u64,
        message: Option<MessageId>,
    },
    ItemLinked {
        link: LinkId,
        kind: LinkKind,
        from: ItemId,
        to: ItemId,
    },
    ItemUnlinked {
        link: LinkId,
        kind: LinkKind,
        from: ItemId,
        to: ItemId,
    },
    /// A message arrived by email and was recorded (whatever became of it).
    EmailReceived {
        mail: InboundMailId,
        class: MailClass,
        status: InboundStatus,
        reason: Option<String>,
    },
    /// Tandem mailed someone (or deliberately did not: withheld, failed), recorded as an
    /// [`OutboundMail`](crate::mail::OutboundMail).
    EmailSent {
        mail: OutboundMailId,
        template: String,
        status: OutboundStatus,
        reason: Option<String>,
    },
}

impl EventData {
    /// Every name [`EventData::name`] gives, for validating subscriptions (webhook filters).
    pub const NAMES: [&'static str; 13] = [
        "record.created",
        "record.updated",
        "record.deleted",
        "item.created",
        "item.updated",
        "item.status_changed",
        "item.assignees_changed",
        "item.followers_changed",
        "item.converted",
        "item.message_posted",
        "item.attachment_added",
        "item.linked",
        "item.unlinked",
    ];

    /// The stable name stored beside the payload and used by filters (`item.status_changed`).
    pub fn name(&self) -> &'static str {
        match self {
            EventData::RecordCreated { .. } => "record.created",
            EventData::RecordUpdated { .. } => "record.updated",
            EventData::RecordDeleted { .. } => "record.deleted",
            EventData::ItemCreated { .. } => "item.created",
            EventData::ItemUpdated { .. } => "item.updated",
            EventData::StatusChanged { .. } => "item.status_changed",
            EventData::AssigneesChanged { .. } => "item.assignees_changed",
            EventData::FollowersChanged { .. } => "item.followers_changed",
            EventData::ItemConverted { .. } => "item.converted",
            EventData::MessagePosted { .. } => "item.message_posted",
            EventData::AttachmentAdded { .. } => "item.attachment_added",
            EventData::ItemLinked { .. } => "item.linked",
            EventData::ItemUnlinked { .. } => "item.unlinked",
            EventData::EmailReceived { .. } => "email.received",
            EventData::EmailSent { .. } => "email.sent",
        }
    }
}

/// An event as a decision produces it; the store adds the sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub item: Option<ItemId>,
    pub data: EventData,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub workspace_id: WorkspaceId,
    /// Gap-free, strictly increasing within a workspace, starting at 1.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: ActorRef,
    pub item: Option<ItemId>,
    pub data: EventData,
}

impl Event {
    /// Whether the event happened at or after `since` (when a webhook or flow was created).
    /// Event times are stored to the millisecond, so the comparison is too: an event of the same
    /// millisecond as `since` counts, even though its stored time may read a little earlier.
    pub fn happened_since(&self, since: DateTime<Utc>) -> bool {
        self.at.timestamp_millis() >= since.timestamp_millis()
    }
}
