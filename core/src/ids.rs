//! Typed identifiers. Every id is a UUID chosen by the caller (the core never generates one itself:
//! see [`IdSource`]), wrapped in its own type so an `ItemId` can never be passed where a `UserId` is
//! expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

ids! {
    /// A tenant. Every stored row carries one.
    WorkspaceId,
    PortfolioId,
    ProjectId,
    FolderId,
    ItemTypeId,
    ItemId,
    MessageId,
    AttachmentId,
    LinkId,
    UserId,
    TeamId,
    NotificationId,
    TokenId,
    JobId,
    WebhookId,
    /// A consumer's position in a workspace's event log (see `EventCursor`).
    EventCursorId,
    /// A workspace's mail settings: always equal to the workspace's id (one per workspace).
    MailSettingsId,
    InboundMailId,
    /// An automation rule.
    RuleId,
    /// One entry of the automation run log.
    AutomationRunId,
    /// A workspace's automation bookkeeping: always equal to the workspace's id (one per workspace).
    AutomationStateId,
    OrganizationId,
    /// A person's membership of (or grant on) a project: derived from the pair, so a person holds
    /// at most one per project (see `ProjectMember::id_for`).
    ProjectMemberId,
    JoinRequestId,
    /// A workspace's portal settings: always equal to the workspace's id (one per workspace).
    PortalSettingsId,
    /// One mail sent (or withheld) to one recipient; derived from the `mail.send` job's key.
    OutboundMailId,
    /// A user's password credential: always equal to the user's id (one per user).
    CredentialId,
    SessionId,
    SignInLinkId,
    /// A working calendar: the workspace's id for the workspace calendar, a user's id for theirs.
    CalendarId,
    TimeEntryId,
    /// A saved view.
    ViewId,
    /// A flow: trigger → filters → steps.
    FlowId,
    /// One run of a flow.
    FlowRunId,
    /// A poll-triggered flow's cursor and recently seen ids: always equal to the flow's id.
    FlowPollStateId,
    /// An incoming webhook endpoint.
    HookEndpointId,
    /// A scheduled report.
    ReportId,
    /// A plugin installed in a workspace: derived from the workspace and the plugin id.
    PluginInstallationId,
    /// One key of a plugin installation's state: derived from the installation and the key.
    PluginStateId,
    KbCategoryId,
    KbArticleId,
    /// A live chat from the widget.
    ChatId,
    ChatMessageId,
}

/// Where new ids come from. The server uses time-ordered UUIDv7; tests use a counter so that
/// decisions are reproducible.
pub trait IdSource: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// Where "now" comes from. The core never reads a clock itself.
pub trait Clock: Send + Sync {
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

/// Deterministic ids for tests and reproducible decisions: 1, 2, 3, ... as UUIDs.
#[derive(Debug, Default)]
pub struct SequentialIds(std::sync::atomic::AtomicU64);

impl IdSource for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        Uuid::from_u128(u128::from(n))
    }
}

/// A clock that always answers the same instant (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub chrono::DateTime<chrono::Utc>);

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}
