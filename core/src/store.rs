//! The storage port. Both backends implement [`Store`] and pass the same conformance suite
//! (`tests/`); a behaviour that differs between them is a bug.
//!
//! Contract, for every method:
//! - **Tenancy is total.** Every read names its workspace and returns nothing of another one.
//!   The only reads that cross workspaces are [`Store::workspaces`], the token, session and
//!   sign-in link lookups used for authentication and the job queue, which workers drain for all
//!   tenants.
//! - **Visibility is pushed down.** List and search reads take an [`ItemScope`] computed by the
//!   access rules and apply it in the query itself; callers never fetch and then filter.
//! - **Commits are atomic.** [`Store::commit`] writes all of a [`ChangeSet`] or none of it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::automation::{AutomationRun, AutomationState, Rule};
use crate::change::{ChangeSet, CommitReceipt, Record, RecordKind};
use crate::conversation::Attachment;
use crate::conversation::Message;
use crate::credentials::{Credential, Session, SignInLink, Throttle, ThrottlePolicy};
use crate::error::StoreError;
use crate::event::Event;
use crate::hierarchy::{Folder, Portfolio, Project, Workspace};
use crate::ids::{
    FolderId, ItemId, ItemTypeId, JobId, OrganizationId, ProjectId, TokenId, UserId, WorkspaceId,
};
use crate::item::{Assignee, Item, ItemKind, ItemLink, ItemType, Priority};
use crate::mail::{InboundMail, MailSettings, OutboundMail, OutboundStatus};
use crate::membership::{JoinRequest, PortalSettings, ProjectMember};
use crate::people::{ApiToken, Notification, Organization, Team, User};
use crate::planning::WorkCalendar;
use crate::reports::ScheduledReport;
use crate::timesheet::{EntryStatus, TimeEntry};
use crate::views::SavedView;
use crate::webhook::{EventCursor, Webhook};
use crate::workflow::StatusCategory;

/// Which items a reader may see, enforced inside the storage query. [`ItemScope::admits`] is the
/// same rule for one item in memory; the conformance suite checks that both agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemScope {
    /// Every item of the workspace (admins, managers, agents).
    All,
    /// Items the user requested or follows.
    Involving(UserId),
    /// A customer in the portal (see [`PortalScope`]).
    Portal(PortalScope),
    /// A collaborator: the items filed in these projects, nothing else.
    Projects(Vec<ProjectId>),
}

/// What a customer sees: items they requested or follow; items of `organization_types` requested
/// by anyone of their organization; every item of `public_types`; every item of `projects`
/// (granted to them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalScope {
    pub user: UserId,
    pub organization: Option<OrganizationId>,
    pub organization_types: Vec<ItemTypeId>,
    pub public_types: Vec<ItemTypeId>,
    pub projects: Vec<ProjectId>,
}

impl ItemScope {
    /// Whether the scope admits `item`, whose requester belongs to `requester_organization`.
    /// Storage applies exactly this rule in SQL.
    pub fn admits(&self, item: &Item, requester_organization: Option<OrganizationId>) -> bool {
        let involves = |u: UserId| item.requester == Some(u) || item.followers.contains(&u);
        match self {
            ItemScope::All => true,
            ItemScope::Involving(u) => involves(*u),
            ItemScope::Projects(projects) => item.project.is_some_and(|p| projects.contains(&p)),
            ItemScope::Portal(p) => {
                involves(p.user)
                    || p.public_types.contains(&item.item_type)
                    || item.project.is_some_and(|id| p.projects.contains(&id))
                    || (p.organization.is_some()
                        && requester_organization == p.organization
                        && p.organization_types.contains(&item.item_type))
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemFilter {
    pub item_types: Vec<ItemTypeId>,
    pub kind: Option<ItemKind>,
    pub project: Option<ProjectId>,
    pub folder: Option<FolderId>,
    pub parent: Option<ItemId>,
    pub statuses: Vec<String>,
    pub categories: Vec<StatusCategory>,
    pub priorities: Vec<Priority>,
    pub assignee: Option<Assignee>,
    pub requester: Option<UserId>,
    pub follower: Option<UserId>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
}

/// Which users [`Store::users`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFilter {
    /// Email address at exactly this domain (lowercase: `clinic.example` does not match
    /// `north.clinic.example`).
    pub email_domain: Option<String>,
    pub organization: Option<OrganizationId>,
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    #[default]
    Number,
    CreatedAt,
    UpdatedAt,
    Priority,
}

impl SortKey {
    /// The integer the store sorts by: the number itself, milliseconds since the epoch, or the
    /// priority rank. Ties are broken by item number, which is unique.
    pub fn value(self, item: &Item) -> i64 {
        match self {
            SortKey::Number => item.number,
            SortKey::CreatedAt => item.created_at.timestamp_millis(),
            SortKey::UpdatedAt => item.updated_at.timestamp_millis(),
            SortKey::Priority => item.priority.rank(),
        }
    }
}

/// Keyset position: the last row's sort value and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub value: i64,
    pub number: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemQuery {
    pub scope: ItemScope,
    pub filter: ItemFilter,
    pub sort: SortKey,
    pub descending: bool,
    /// Rows strictly after this position in the chosen order.
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl ItemQuery {
    pub fn new(scope: ItemScope) -> Self {
        Self {
            scope,
            filter: ItemFilter::default(),
            sort: SortKey::Number,
            descending: false,
            after: None,
            limit: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Generic listing of records of one kind, ordered by id (time-ordered UUIDs: creation order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    pub parent: Option<Uuid>,
    pub after: Option<Uuid>,
    pub limit: usize,
}

impl RecordQuery {
    pub fn all() -> Self {
        Self { parent: None, after: None, limit: 10_000 }
    }

    pub fn children_of(parent: Uuid) -> Self {
        Self { parent: Some(parent), after: None, limit: 10_000 }
    }
}

/// A filter over the log of outbound mail; results are newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundQuery {
    pub item: Option<ItemId>,
    /// Lowercased address.
    pub recipient: Option<String>,
    pub status: Option<OutboundStatus>,
    /// Only mail recorded at or after this instant (the rate limits' window).
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl OutboundQuery {
    pub fn all(limit: usize) -> Self {
        Self { item: None, recipient: None, status: None, since: None, limit }
    }
}

/// Which time entries to read ([`Store::time_entries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeEntryQuery {
    pub user: Option<UserId>,
    /// Entries on these items only; `None`: on any item.
    pub items: Option<Vec<ItemId>>,
    /// Any status when empty.
    pub statuses: Vec<EntryStatus>,
    /// Only entries whose timer is running (`Some(true)`) or not (`Some(false)`).
    pub running: Option<bool>,
    /// Entries that started at or after this instant.
    pub started_from: Option<DateTime<Utc>>,
    /// Entries that started before this instant.
    pub started_before: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl TimeEntryQuery {
    pub fn all() -> Self {
        Self {
            user: None,
            items: None,
            statuses: Vec::new(),
            running: None,
            started_from: None,
            started_before: None,
            limit: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Events with `seq > after`.
    pub after: i64,
    pub item: Option<ItemId>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: String,
    pub scope: ItemScope,
    /// Whether internal messages may match (never for customers).
    pub include_internal: bool,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub item: Item,
    /// A short excerpt around the match.
    pub snippet: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Dead]
            .into_iter()
            .find(|j| j.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub workspace_id: WorkspaceId,
    pub kind: String,
    pub payload: Value,
    pub idempotency_key: String,
    pub state: JobState,
    /// Claims so far; the current claim's number while running.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobFilter {
    pub workspace: Option<WorkspaceId>,
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub limit: usize,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// All workspaces, oldest first.
    async fn workspaces(&self) -> Result<Vec<Workspace>, StoreError>;

    /// One record by id, of the given kind and workspace.
    async fn record(&self, ws: WorkspaceId, kind: RecordKind, id: Uuid)
    -> Result<Option<Record>, StoreError>;

    /// Records of one kind, in id order, optionally only the children of `parent` (see
    /// [`Record::parent`]), starting after `after`, at most `limit`.
    async fn records(
        &self,
        ws: WorkspaceId,
        kind: RecordKind,
        query: &RecordQuery,
    ) -> Result<Vec<Record>, StoreError>;

    async fn user_by_email(&self, ws: WorkspaceId, email: &str) -> Result<Option<User>, StoreError>;

    /// Users matching every condition of the filter, in id order, at most `filter.limit`.
    async fn users(&self, ws: WorkspaceId, filter: &UserFilter) -> Result<Vec<User>, StoreError>;

    /// The organization holding `domain` (lowercase) among its domains. A domain belongs to at
    /// most one organization of a workspace: a commit giving it to a second one is `Duplicate`.
    async fn organization_by_domain(
        &self,
        ws: WorkspaceId,
        domain: &str,
    ) -> Result<Option<Organization>, StoreError>;

    /// Users whose handle is one of `handles` (lowercase).
    async fn users_by_handles(&self, ws: WorkspaceId, handles: &[String]) -> Result<Vec<User>, StoreError>;

    async fn item_by_number(&self, ws: WorkspaceId, number: i64) -> Result<Option<Item>, StoreError>;

    /// A page of items matching the filter within the scope, in the requested order.
    async fn items(&self, ws: WorkspaceId, query: &ItemQuery) -> Result<Page<Item>, StoreError>;

    /// An item's messages in posting order; internal ones only when `include_internal`.
    async fn messages(
        &self,
        ws: WorkspaceId,
        item: ItemId,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError>;

    /// Links where the item is either end.
    async fn links(&self, ws: WorkspaceId, item: ItemId) -> Result<Vec<ItemLink>, StoreError>;

    /// Full-text search over item titles, descriptions and messages; best matches first, one hit
    /// per item.
    async fn search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError>;

    /// Events in sequence order.
    async fn events(&self, ws: WorkspaceId, query: &EventQuery) -> Result<Vec<Event>, StoreError>;

    async fn blob(&self, ws: WorkspaceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Commits a change set atomically: every write's version check passes and everything is
    /// written, events get the next gap-free sequence numbers of the workspace and new items the
    /// next numbers — or nothing is written and the error says why (`Conflict` on a stale version
    /// or a record that already exists, `Duplicate` on a unique key, `TooLarge` on a blob over the
    /// store's limit).
    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt, StoreError>;

    /// An API token by the SHA-256 of its secret, whatever its workspace (authentication).
    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<ApiToken>, StoreError>;

    /// A record holding a secret — a [`Session`] or a [`SignInLink`] — by the SHA-256 of that
    /// secret, whatever its workspace (authentication). Other kinds hold no such secret: `None`.
    async fn record_by_secret(
        &self,
        kind: RecordKind,
        secret_sha256: &str,
    ) -> Result<Option<Record>, StoreError>;

    /// Records that a token authenticated a request at `now` — unless a use less than `every`
    /// before `now` is already recorded, so a busy token costs one write per interval, not one
    /// per request. The token's `last_used_at` and `version` change as in a commit (a racing
    /// writer gets `Conflict`), but no event is written: this is operational state. Returns
    /// whether it wrote.
    async fn touch_token(
        &self,
        ws: WorkspaceId,
        id: TokenId,
        now: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<bool, StoreError>;

    /// The failed sign-ins counted for `key` in the workspace, if any.
    async fn login_throttle(&self, ws: WorkspaceId, key: &str) -> Result<Option<Throttle>, StoreError>;

    /// Counts one failed sign-in for `key` at `now`, atomically (several servers may count for
    /// the same key at once), exactly as [`Throttle::after_failure`] says, and returns the count.
    async fn record_login_failure(
        &self,
        ws: WorkspaceId,
        key: &str,
        now: DateTime<Utc>,
        policy: &ThrottlePolicy,
    ) -> Result<Throttle, StoreError>;

    /// Forgets the failures counted for `key` (after a successful sign-in).
    async fn clear_login_failures(&self, ws: WorkspaceId, key: &str) -> Result<(), StoreError>;

    /// Server-level settings outside any workspace (the bootstrap admin token's hash).
    async fn server_setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn set_server_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Claims up to `limit` due jobs of the given kinds (all kinds when empty): queued jobs with
    /// `run_at <= now` and running jobs whose lease expired. Each claimed job becomes `Running`
    /// with `attempts + 1` and `lease_until`; no job is handed to two claimants at once.
    async fn claim_jobs(
        &self,
        kinds: &[String],
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError>;

    /// Marks a claimed job done. Only the current claim (same `attempts`) may complete it;
    /// returns false when the lease was lost to another claimant.
    async fn complete_job(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Records a failed attempt: back to `Queued` at `retry_at`, or `Dead` when `retry_at` is
    /// `None`. Same claim rule as [`Store::complete_job`].
    async fn fail_job(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Puts a dead or done job back in the queue to run at `now` with its attempts reset.
    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// The workspace whose [`MailSettings`] list `address` (lowercase, without `+tag`) among its
    /// inbound addresses. Crosses workspaces: mail arrives before anyone knows its tenant. An
    /// address belongs to at most one workspace (a commit claiming a taken one is `Duplicate`).
    async fn mail_workspace(&self, address: &str) -> Result<Option<WorkspaceId>, StoreError>;

    /// The inbound mail recorded under a dedupe key (`mid:…` or `sha256:…`), if any. At most one
    /// exists per key and workspace: inserting a second is `Duplicate`.
    async fn inbound_mail_by_key(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> Result<Option<InboundMail>, StoreError>;

    /// Which items the given Message-IDs belong to, as `(message_id, item)` pairs in no particular
    /// order; ids nobody stored are left out. The index is kept from [`InboundMail`] records that
    /// name an item and from messages carrying email headers (inbound, and the ids of outbound
    /// mail recorded on them); the first item a Message-ID was stored for keeps it.
    async fn items_by_message_ids(
        &self,
        ws: WorkspaceId,
        message_ids: &[String],
    ) -> Result<Vec<(String, ItemId)>, StoreError>;

    /// The workspace's [`OutboundMail`] records matching every given filter, newest first (by
    /// `at`, then id). An outbound mail that names an item and carries a Message-ID is also in the
    /// index [`Store::items_by_message_ids`] reads, so replies that lost our reply token still
    /// thread.
    async fn outbound_mails(
        &self,
        ws: WorkspaceId,
        query: &OutboundQuery,
    ) -> Result<Vec<OutboundMail>, StoreError>;

    /// Time entries matching `query`, by start then id. A person has at most one entry whose
    /// timer is running: committing a second is `Duplicate`.
    async fn time_entries(
        &self,
        ws: WorkspaceId,
        query: &TimeEntryQuery,
    ) -> Result<Vec<TimeEntry>, StoreError>;
}

/// Conversion between [`Record`] and the concrete record types, so callers can write
/// `get::<Project>(store, ws, id)`.
pub trait TypedRecord: Sized {
    const KIND: RecordKind;
    fn from_record(record: Record) -> Option<Self>;
    fn into_record(self) -> Record;
}

macro_rules! typed_records {
    ($($ty:ident => $variant:ident),* $(,)?) => {$(
        impl TypedRecord for $ty {
            const KIND: RecordKind = RecordKind::$variant;
            fn from_record(record: Record) -> Option<Self> {
                match record { Record::$variant(r) => Some(r), _ => None }
            }
            fn into_record(self) -> Record {
                Record::$variant(self)
            }
        }
    )*};
}

typed_records! {
    Workspace => Workspace,
    Portfolio => Portfolio,
    Project => Project,
    Folder => Folder,
    ItemType => ItemType,
    User => User,
    Team => Team,
    Item => Item,
    Message => Message,
    Attachment => Attachment,
    ItemLink => Link,
    Notification => Notification,
    ApiToken => Token,
    Webhook => Webhook,
    EventCursor => EventCursor,
    MailSettings => MailSettings,
    InboundMail => InboundMail,
    Rule => AutomationRule,
    AutomationRun => AutomationRun,
    AutomationState => AutomationState,
    Organization => Organization,
    ProjectMember => ProjectMember,
    JoinRequest => JoinRequest,
    PortalSettings => PortalSettings,
    OutboundMail => OutboundMail,
    Credential => Credential,
    Session => Session,
    SignInLink => SignInLink,
    WorkCalendar => Calendar,
    TimeEntry => TimeEntry,
    SavedView => View,
    ScheduledReport => Report,
}

fn wrong_kind(kind: RecordKind) -> StoreError {
    StoreError::Corrupt(format!("a {} row holds another kind of record", kind.label()))
}

/// One typed record.
pub async fn get<T: TypedRecord>(
    store: &dyn Store,
    ws: WorkspaceId,
    id: Uuid,
) -> Result<Option<T>, StoreError> {
    match store.record(ws, T::KIND, id).await? {
        Some(r) => T::from_record(r).map(Some).ok_or_else(|| wrong_kind(T::KIND)),
        None => Ok(None),
    }
}

/// Typed records.
pub async fn list<T: TypedRecord>(
    store: &dyn Store,
    ws: WorkspaceId,
    query: &RecordQuery,
) -> Result<Vec<T>, StoreError> {
    store
        .records(ws, T::KIND, query)
        .await?
        .into_iter()
        .map(|r| T::from_record(r).ok_or_else(|| wrong_kind(T::KIND)))
        .collect()
}
