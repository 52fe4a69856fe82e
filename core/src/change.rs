//! `ChangeSet` — what one decision wants written: records, events and jobs, committed atomically.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::automation::{AutomationRun, AutomationState, Rule};
use crate::chat::{Chat, ChatMessage};
use crate::conversation::{Attachment, Message};
use crate::credentials::{Credential, Session, SignInLink};
use crate::event::{EventData, NewEvent};
use crate::flows::{Flow, FlowPollState, FlowRun, HookEndpoint};
use crate::hierarchy::{Folder, Portfolio, Project, Workspace};
use crate::ids::{ItemId, JobId, WorkspaceId};
use crate::item::{ActorRef, Item, ItemLink, ItemType};
use crate::kb::{KbArticle, KbCategory};
use crate::mail::{InboundMail, MailSettings, OutboundMail};
use crate::membership::{JoinRequest, PortalSettings, ProjectMember};
use crate::people::{ApiToken, Notification, Organization, Team, User};
use crate::planning::WorkCalendar;
use crate::plugins::{PluginInstallation, PluginState};
use crate::reports::ScheduledReport;
use crate::timesheet::TimeEntry;
use crate::views::SavedView;
use crate::webhook::{EventCursor, Webhook};

/// Every kind of stored record. Each has a table of its own in every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Workspace,
    Portfolio,
    Project,
    Folder,
    ItemType,
    User,
    Team,
    Item,
    Message,
    Attachment,
    Link,
    Notification,
    Token,
    Webhook,
    EventCursor,
    MailSettings,
    InboundMail,
    AutomationRule,
    AutomationRun,
    AutomationState,
    Organization,
    ProjectMember,
    JoinRequest,
    PortalSettings,
    OutboundMail,
    Credential,
    Session,
    SignInLink,
    Calendar,
    TimeEntry,
    View,
    Flow,
    FlowRun,
    FlowPollState,
    HookEndpoint,
    Report,
    PluginInstallation,
    PluginState,
    KbCategory,
    KbArticle,
    Chat,
    ChatMessage,
}

impl RecordKind {
    pub const ALL: [RecordKind; 42] = [
        RecordKind::Workspace,
        RecordKind::Portfolio,
        RecordKind::Project,
        RecordKind::Folder,
        RecordKind::ItemType,
        RecordKind::User,
        RecordKind::Team,
        RecordKind::Item,
        RecordKind::Message,
        RecordKind::Attachment,
        RecordKind::Link,
        RecordKind::Notification,
        RecordKind::Token,
        RecordKind::Webhook,
        RecordKind::EventCursor,
        RecordKind::MailSettings,
        RecordKind::InboundMail,
        RecordKind::AutomationRule,
        RecordKind::AutomationRun,
        RecordKind::AutomationState,
        RecordKind::Organization,
        RecordKind::ProjectMember,
        RecordKind::JoinRequest,
        RecordKind::PortalSettings,
        RecordKind::OutboundMail,
        RecordKind::Credential,
        RecordKind::Session,
        RecordKind::SignInLink,
        RecordKind::Calendar,
        RecordKind::TimeEntry,
        RecordKind::View,
        RecordKind::Flow,
        RecordKind::FlowRun,
        RecordKind::FlowPollState,
        RecordKind::HookEndpoint,
        RecordKind::Report,
        RecordKind::PluginInstallation,
        RecordKind::PluginState,
        RecordKind::KbCategory,
        RecordKind::KbArticle,
        RecordKind::Chat,
        RecordKind::ChatMessage,
    ];

    /// The table holding this kind in both backends.
    pub fn table(self) -> &'static str {
        match self {
            RecordKind::Workspace => "workspaces",
            RecordKind::Portfolio => "portfolios",
            RecordKind::Project => "projects",
            RecordKind::Folder => "folders",
            RecordKind::ItemType => "item_types",
            RecordKind::User => "users",
            RecordKind::Team => "teams",
            RecordKind::Item => "items",
            RecordKind::Message => "messages",
            RecordKind::Attachment => "attachments",
            RecordKind::Link => "item_links",
            RecordKind::Notification => "notifications",
            RecordKind::Token => "api_tokens",
            RecordKind::Webhook => "webhooks",
            RecordKind::EventCursor => "event_cursors",
            RecordKind::MailSettings => "mail_settings",
            RecordKind::InboundMail => "inbound_mails",
            RecordKind::AutomationRule => "automation_rules",
            RecordKind::AutomationRun => "automation_runs",
            RecordKind::AutomationState => "automation_state",
            RecordKind::Organization => "organizations",
            RecordKind::ProjectMember => "project_members",
            RecordKind::JoinRequest => "join_requests",
            RecordKind::PortalSettings => "portal_settings",
            RecordKind::OutboundMail => "outbound_mails",
            RecordKind::Credential => "credentials",
            RecordKind::Session => "sessions",
            RecordKind::SignInLink => "sign_in_links",
            RecordKind::Calendar => "work_calendars",
            RecordKind::TimeEntry => "time_entries",
            RecordKind::View => "saved_views",
            RecordKind::Flow => "flows",
            RecordKind::FlowRun => "flow_runs",
            RecordKind::FlowPollState => "flow_poll_states",
            RecordKind::HookEndpoint => "hook_endpoints",
            RecordKind::Report => "scheduled_reports",
            RecordKind::PluginInstallation => "plugin_installations",
            RecordKind::PluginState => "plugin_state",
            RecordKind::KbCategory => "kb_categories",
            RecordKind::KbArticle => "kb_articles",
            RecordKind::Chat => "chats",
            RecordKind::ChatMessage => "chat_messages",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordKind::Workspace => "workspace",
            RecordKind::Portfolio => "portfolio",
            RecordKind::Project => "project",
            RecordKind::Folder => "folder",
            RecordKind::ItemType => "item type",
            RecordKind::User => "user",
            RecordKind::Team => "team",
            RecordKind::Item => "item",
            RecordKind::Message => "message",
            RecordKind::Attachment => "attachment",
            RecordKind::Link => "link",
            RecordKind::Notification => "notification",
            RecordKind::Token => "token",
            RecordKind::Webhook => "webhook",
            RecordKind::EventCursor => "event cursor",
            RecordKind::MailSettings => "mail settings",
            RecordKind::InboundMail => "inbound mail",
            RecordKind::AutomationRule => "automation rule",
            RecordKind::AutomationRun => "automation run",
            RecordKind::AutomationState => "automation state",
            RecordKind::Organization => "organization",
            RecordKind::ProjectMember => "project member",
            RecordKind::JoinRequest => "join request",
            RecordKind::PortalSettings => "portal settings",
            RecordKind::OutboundMail => "outbound mail",
            RecordKind::Credential => "credential",
            RecordKind::Session => "session",
            RecordKind::SignInLink => "sign-in link",
            RecordKind::Calendar => "calendar",
            RecordKind::TimeEntry => "time entry",
            RecordKind::View => "view",
            RecordKind::Flow => "flow",
            RecordKind::FlowRun => "flow run",
            RecordKind::FlowPollState => "flow poll state",
            RecordKind::HookEndpoint => "incoming webhook",
            RecordKind::Report => "scheduled report",
            RecordKind::PluginInstallation => "plugin installation",
            RecordKind::PluginState => "plugin state entry",
            RecordKind::KbCategory => "knowledge base category",
            RecordKind::KbArticle => "article",
            RecordKind::Chat => "chat",
            RecordKind::ChatMessage => "chat message",
        }
    }
}

/// A stored record of any kind. Records are stored whole (as JSON) beside the columns each
/// backend indexes for queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Workspace(Workspace),
    Portfolio(Portfolio),
    Project(Project),
    Folder(Folder),
    ItemType(ItemType),
    User(User),
    Team(Team),
    Item(Item),
    Message(Message),
    Attachment(Attachment),
    Link(ItemLink),
    Notification(Notification),
    Token(ApiToken),
    Webhook(Webhook),
    EventCursor(EventCursor),
    MailSettings(MailSettings),
    InboundMail(InboundMail),
    AutomationRule(Rule),
    AutomationRun(AutomationRun),
    AutomationState(AutomationState),
    Organization(Organization),
    ProjectMember(ProjectMember),
    JoinRequest(JoinRequest),
    PortalSettings(PortalSettings),
    OutboundMail(OutboundMail),
    Credential(Credential),
    Session(Session),
    SignInLink(SignInLink),
    Calendar(WorkCalendar),
    TimeEntry(TimeEntry),
    View(SavedView),
    Flow(Flow),
    FlowRun(FlowRun),
    FlowPollState(FlowPollState),
    HookEndpoint(HookEndpoint),
    Report(ScheduledReport),
    PluginInstallation(PluginInstallation),
    PluginState(PluginState),
    KbCategory(KbCategory),
    KbArticle(KbArticle),
    Chat(Chat),
    ChatMessage(ChatMessage),
}

macro_rules! record_accessors {
    ($($variant:ident),* $(,)?) => {
        impl Record {
            pub fn kind(&self) -> RecordKind {
                match self {
                    Record::Workspace(_) => RecordKind::Workspace,
                    $(Record::$variant(_) => RecordKind::$variant,)*
                }
            }

            pub fn id(&self) -> Uuid {
                match self {
                    Record::Workspace(r) => r.id.as_uuid(),
                    $(Record::$variant(r) => r.id.as_uuid(),)*
                }
            }

            pub fn version(&self) -> i64 {
                match self {
                    Record::Workspace(r) => r.version,
                    $(Record::$variant(r) => r.version,)*
                }
            }

            /// `Workspace` is its own tenant; every other record names its workspace.
            pub fn workspace_id(&self) -> WorkspaceId {
                match self {
                    Record::Workspace(r) => r.id,
                    $(Record::$variant(r) => r.workspace_id,)*
                }
            }
        }
    };
}

record_accessors!(
    Portfolio,
    Project,
    Folder,
    ItemType,
    User,
    Team,
    Item,
    Message,
    Attachment,
    Link,
    Notification,
    Token,
    Webhook,
    EventCursor,
    MailSettings,
    InboundMail,
    AutomationRule,
    AutomationRun,
    AutomationState,
    Organization,
    ProjectMember,
    JoinRequest,
    PortalSettings,
    OutboundMail,
    Credential,
    Session,
    SignInLink,
    Calendar,
    TimeEntry,
    View,
    Flow,
    FlowRun,
    FlowPollState,
    HookEndpoint,
    Report,
    PluginInstallation,
    PluginState,
    KbCategory,
    KbArticle,
    Chat,
    ChatMessage
);

impl Record {
    /// The record this one belongs to, indexed as `parent_id`: a portfolio's parent portfolio, a
    /// project's portfolio, a folder's project, an item's parent item, a message's/attachment's
    /// item, a link's `from` item, a notification's, token's, credential's, session's or sign-in
    /// link's user, an inbound or outbound mail's item, a project membership's user, a join
    /// request's project, an automation run's item.
    /// item, a link's `from` item, a notification's or token's user, an inbound or outbound mail's
    /// item, a project membership's user, a join request's project.
    /// item, a link's `from` item, a notification's or token's user, an inbound mail's item, a
    /// project membership's user, a join request's project, a personal calendar's user, a time
    /// entry's item, a saved view's owner, a plugin state entry's installation.
    /// entry's item, a saved view's owner, an article's category, a chat's signed-in requester, a
    /// chat message's chat.
    pub fn parent(&self) -> Option<Uuid> {
        match self {
            Record::Workspace(_)
            | Record::ItemType(_)
            | Record::User(_)
            | Record::Team(_)
            | Record::Webhook(_)
            | Record::EventCursor(_)
            | Record::MailSettings(_)
            | Record::AutomationRule(_)
            | Record::AutomationState(_)
            | Record::Organization(_)
            | Record::PortalSettings(_)
            | Record::Flow(_)
            | Record::HookEndpoint(_) => None,
            // A flow's runs and poll state are listed by flow.
            Record::FlowRun(r) => Some(r.flow.as_uuid()),
            Record::FlowPollState(s) => Some(s.flow.as_uuid()),
            Record::PluginInstallation(_) => None,
            Record::KbCategory(_) => None,
            Record::Portfolio(p) => p.parent.map(|p| p.as_uuid()),
            Record::Project(p) => p.portfolio.map(|p| p.as_uuid()),
            Record::Folder(f) => Some(f.project.as_uuid()),
            Record::Item(i) => i.parent.map(|p| p.as_uuid()),
            Record::Message(m) => Some(m.item.as_uuid()),
            Record::Attachment(a) => Some(a.item.as_uuid()),
            Record::Link(l) => Some(l.from.as_uuid()),
            Record::Notification(n) => Some(n.user.as_uuid()),
            Record::Token(t) => Some(t.user.as_uuid()),
            Record::InboundMail(m) => m.item.map(|i| i.as_uuid()),
            Record::AutomationRun(r) => Some(r.item.as_uuid()),
            // Read on every request of a collaborator or customer: listed by user.
            Record::ProjectMember(m) => Some(m.user.as_uuid()),
            Record::JoinRequest(r) => Some(r.project.as_uuid()),
            Record::OutboundMail(m) => m.item.map(|i| i.as_uuid()),
            Record::Credential(c) => Some(c.user.as_uuid()),
            Record::Session(s) => Some(s.user.as_uuid()),
            Record::SignInLink(l) => Some(l.user.as_uuid()),
            Record::Calendar(c) => c.user().map(|u| u.as_uuid()),
            Record::TimeEntry(e) => Some(e.item.as_uuid()),
            Record::View(v) => v.owner.map(|u| u.as_uuid()),
            Record::Report(r) => Some(r.owner.as_uuid()),
            // Listed and removed with their installation.
            Record::PluginState(s) => Some(s.installation.as_uuid()),
            Record::KbArticle(a) => a.category.map(|c| c.as_uuid()),
            Record::Chat(c) => c.requester.map(|u| u.as_uuid()),
            Record::ChatMessage(m) => Some(m.chat.as_uuid()),
        }
    }
}

/// One write of a change set.
// A `Write` is built once, moved into its change set and consumed by the store; boxing the large
// `Put` variant would add an allocation per write and buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Write {
    /// Insert a record that must not exist yet (`expected_version: None`, the record's version is
    /// 1), or replace one whose stored version is exactly `expected_version` (the record carries
    /// the next version). Anything else is [`StoreError::Conflict`](crate::StoreError::Conflict).
    ///
    /// A new `Item` gets its per-workspace number from the store here: whatever `number` it carries
    /// is replaced by the next one, gap-free, inside the commit's transaction.
    Put { record: Record, expected_version: Option<i64> },
    /// Delete a record whose stored version is exactly `expected_version`.
    Delete { kind: RecordKind, id: Uuid, expected_version: i64 },
    /// Store blob bytes under their SHA-256 unless already there (content addressing).
    Blob { sha256: String, bytes: Arc<[u8]> },
}

/// A side effect to run after commit (transactional outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    /// A second job with the same key in the same workspace is dropped at commit.
    pub idempotency_key: String,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
}

/// Everything one decision writes: committed in one transaction or not at all.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub workspace_id: WorkspaceId,
    pub actor: ActorRef,
    pub at: DateTime<Utc>,
    pub writes: Vec<Write>,
    pub events: Vec<NewEvent>,
    pub jobs: Vec<NewJob>,
}

impl ChangeSet {
    pub fn new(workspace_id: WorkspaceId, actor: ActorRef, at: DateTime<Utc>) -> Self {
        Self { workspace_id, actor, at, writes: Vec::new(), events: Vec::new(), jobs: Vec::new() }
    }

    pub fn insert(&mut self, record: Record) -> &mut Self {
        self.writes.push(Write::Put { record, expected_version: None });
        self
    }

    /// Replaces a record read at `expected_version`; the stored copy gets `expected_version + 1`.
    pub fn update(&mut self, record: Record, expected_version: i64) -> &mut Self {
        self.writes.push(Write::Put { record, expected_version: Some(expected_version) });
        self
    }

    pub fn delete(&mut self, kind: RecordKind, id: Uuid, expected_version: i64) -> &mut Self {
        self.writes.push(Write::Delete { kind, id, expected_version });
        self
    }

    pub fn blob(&mut self, sha256: String, bytes: Arc<[u8]>) -> &mut Self {
        self.writes.push(Write::Blob { sha256, bytes });
        self
    }

    pub fn event(&mut self, item: Option<ItemId>, data: EventData) -> &mut Self {
        self.events.push(NewEvent { item, data });
        self
    }

    pub fn job(&mut self, job: NewJob) -> &mut Self {
        self.jobs.push(job);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty() && self.jobs.is_empty()
    }

    /// The record a write touches (`None` for a blob: content-addressed, so writing it twice is
    /// harmless).
    fn target(write: &Write) -> Option<(RecordKind, Uuid)> {
        match write {
            Write::Put { record, .. } => Some((record.kind(), record.id())),
            Write::Delete { kind, id, .. } => Some((*kind, *id)),
            Write::Blob { .. } => None,
        }
    }

    /// Appends `later`'s writes, events and jobs after this set's, for one commit. Both must be
    /// the same workspace's, by the same actor at the same time. They must not write the same
    /// record: `later` was decided on the store as it was before this set, so its version checks
    /// would fail on every try — refused as a mistake instead of retried forever. Events keep
    /// their order (this set's sequence numbers come first); jobs with one idempotency key are
    /// deduplicated by the commit as always.
    pub fn merge(&mut self, later: ChangeSet) -> Result<(), crate::error::Invalid> {
        if later.workspace_id != self.workspace_id || later.actor != self.actor || later.at != self.at {
            return Err(crate::error::Invalid::new(
                "changes",
                "only change sets of one workspace, actor and time are committed together",
            ));
        }
        let mine: std::collections::HashSet<(RecordKind, Uuid)> =
            self.writes.iter().filter_map(Self::target).collect();
        if let Some((kind, id)) = later.writes.iter().filter_map(Self::target).find(|t| mine.contains(t)) {
            return Err(crate::error::Invalid::new(
                "changes",
                format!("both change sets write {} {id}; they cannot be committed together", kind.label()),
            ));
        }
        self.writes.extend(later.writes);
        self.events.extend(later.events);
        self.jobs.extend(later.jobs);
        Ok(())
    }
}

/// What a commit assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// Sequence numbers of the change set's events, in order (empty when it had none).
    pub seqs: Vec<i64>,
    /// Numbers given to the items the change set created.
    pub item_numbers: Vec<(ItemId, i64)>,
}

impl CommitReceipt {
    pub fn number_of(&self, item: ItemId) -> Option<i64> {
        self.item_numbers.iter().find(|(id, _)| *id == item).map(|(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventData;

    fn set(at: DateTime<Utc>) -> ChangeSet {
        ChangeSet::new(WorkspaceId(Uuid::from_u128(1)), ActorRef::System, at)
    }

    fn cursor(id: u128, version: i64) -> Record {
        Record::EventCursor(EventCursor {
            id: crate::ids::EventCursorId(Uuid::from_u128(id)),
            workspace_id: WorkspaceId(Uuid::from_u128(1)),
            consumer: "c".into(),
            seq: 0,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            version,
        })
    }

    #[test]
    fn merged_change_sets_keep_their_order_and_refuse_writing_one_record_twice() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let mut first = set(at);
        first.insert(cursor(10, 1));
        first.event(None, EventData::RecordDeleted { record: RecordKind::Flow, id: Uuid::from_u128(10) });
        let mut later = set(at);
        later.update(cursor(11, 2), 1);
        later.event(None, EventData::RecordDeleted { record: RecordKind::Flow, id: Uuid::from_u128(11) });
        first.merge(later).unwrap();
        let ids: Vec<Uuid> = first.writes.iter().filter_map(ChangeSet::target).map(|(_, id)| id).collect();
        assert_eq!(ids, vec![Uuid::from_u128(10), Uuid::from_u128(11)]);
        assert!(matches!(
            first.events[1].data,
            EventData::RecordDeleted { id, .. } if id == Uuid::from_u128(11)
        ));

        let mut again = set(at);
        again.delete(RecordKind::EventCursor, Uuid::from_u128(10), 1);
        assert!(first.merge(again).is_err(), "the same record twice");
        assert!(set(at).merge(set(at + chrono::Duration::seconds(1))).is_err(), "another moment");
    }
}
