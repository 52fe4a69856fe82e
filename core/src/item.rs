//! Item types and items: one record for tickets and tasks.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fields::FieldDef;
use crate::ids::{FolderId, ItemId, ItemTypeId, LinkId, ProjectId, TeamId, UserId, WorkspaceId};
use crate::planning::{DependencyTiming, TaskPlan};
use crate::workflow::{StatusCategory, Workflow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Ticket,
    Task,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Ticket => "ticket",
            ItemKind::Task => "task",
        }
    }
}

/// A user-defined kind of item ("IT support", "Marketing request", "Bug") with its own workflow
/// and custom fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemType {
    pub id: ItemTypeId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub kind: ItemKind,
    #[serde(default)]
    pub description: String,
    pub workflow: Workflow,
    pub fields: Vec<FieldDef>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl ItemType {
    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// Sort rank, low to urgent.
    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Items are assigned to users and/or teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Assignee {
    User(UserId),
    Team(TeamId),
}

/// Who did something: a user, the server administrator (bootstrap token), or Tandem itself
/// (automations, mail intake, timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum ActorRef {
    User(UserId),
    ServerAdmin,
    System,
}

/// How something reached Tandem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Api,
    Email,
    Portal,
    Widget,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub workspace_id: WorkspaceId,
    /// Per-workspace human number (`#1042`), assigned by the store when the item is first
    /// committed; it never changes afterwards, not even when the item is converted.
    pub number: i64,
    pub item_type: ItemTypeId,
    pub kind: ItemKind,
    pub title: String,
    pub description: String,
    pub project: Option<ProjectId>,
    pub folder: Option<FolderId>,
    pub parent: Option<ItemId>,
    pub requester: Option<UserId>,
    pub assignees: Vec<Assignee>,
    pub followers: Vec<UserId>,
    pub priority: Priority,
    pub status: String,
    pub category: StatusCategory,
    pub custom: BTreeMap<String, Value>,
    pub channel: Channel,
    pub created_by: ActorRef,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the item last entered a resolved or closed status; `None` while it is open.
    pub done_at: Option<DateTime<Utc>>,
    /// Planning fields (tasks; kept through conversions but only scheduled while a task).
    #[serde(default)]
    pub plan: TaskPlan,
    pub version: i64,
}

impl Item {
    pub fn assigned_users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.assignees.iter().filter_map(|a| match a {
            Assignee::User(u) => Some(*u),
            Assignee::Team(_) => None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    Relates,
    Blocks,
    Duplicates,
}

/// A typed link between two items of one workspace (`from` blocks `to`, `from` duplicates `to`).
/// A `blocks` link is also a scheduling dependency: `from` is the predecessor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemLink {
    pub id: LinkId,
    pub workspace_id: WorkspaceId,
    pub from: ItemId,
    pub to: ItemId,
    pub kind: LinkKind,
    /// For `blocks` links: how `from` (the predecessor) schedules `to`; finish-to-start without
    /// lag when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<DependencyTiming>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}
