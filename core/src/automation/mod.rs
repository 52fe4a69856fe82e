//! Workflow automations: rules of trigger + conditions + ordered actions, evaluated inside `Desk`
//! on the events of every change set (and by the server's scheduler for time-based triggers).
//!
//! Everything here is pure. The shape:
//! - [`Rule`] (a stored record): trigger, an optional limit to item types / projects, a
//!   [`Condition`] tree, ordered [`Action`]s, a position and an `enabled` switch.
//! - [`eval`]: does a trigger match an event, does a condition hold for an item (custom fields,
//!   requester email/domain/organization, channel, text contains/matches, business hours).
//! - [`engine`]: given the change set a command decided and a [`World`] of what the rules need to
//!   read, applies the matching rules' actions as further writes and events **in the same change
//!   set**, then evaluates the rules again on the events those actions produced — at most
//!   [`AutomationLimits::max_depth`] levels deep and within the per-item and per-workspace firing
//!   budgets kept in [`AutomationState`]. Every firing, and every firing that was stopped, leaves
//!   an [`AutomationRun`] in the run log with its reason.
//!
//! Replies and notifications on an item created in the same change set cannot name the item's
//! number yet (the store assigns it at commit), so they are enqueued in that change set as an
//! [`AUTOMATION_DELIVER_JOB`] and posted right after the commit by
//! [`DeliverAutomation`](crate::commands::DeliverAutomation).

pub mod engine;
pub mod eval;
pub(crate) mod load;
mod validate;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conversation::Visibility;
use crate::ids::{
    AutomationRunId, AutomationStateId, FolderId, ItemId, ItemTypeId, ProjectId, RuleId, TeamId, UserId,
    WorkspaceId,
};
use crate::item::Priority;
use crate::workflow::StatusCategory;

pub use engine::{Engine, Firing, World, dry_run};
pub use eval::{FieldRef, Op};
pub use load::load_world;
pub use validate::{RuleRefs, validate_condition_with, validate_rule};

/// The job kind that posts a deferred reply or notification of a firing (see the module docs).
pub const AUTOMATION_DELIVER_JOB: &str = "automation.deliver";
/// The job kind a "run plugin action" action enqueues; the plugin host registers its handler.
pub const PLUGIN_ACTION_JOB: &str = "plugin.action";

/// How far automations may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomationLimits {
    /// Levels of rules triggering rules within one change set (the command's own events are
    /// level 0).
    pub max_depth: usize,
    /// Firings per item within one window.
    pub per_item: u32,
    /// Firings per workspace within one window.
    pub per_workspace: u32,
    /// The counting window, in seconds.
    pub window_secs: i64,
}

impl Default for AutomationLimits {
    fn default() -> Self {
        Self { max_depth: 5, per_item: 50, per_workspace: 10_000, window_secs: 3_600 }
    }
}

/// A rule: when `trigger` happens to an item within `item_types`/`projects` (empty: all) and
/// `conditions` hold, run `actions` in order. Rules run in `position` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: RuleId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub enabled: bool,
    pub position: i64,
    #[serde(default)]
    pub item_types: Vec<ItemTypeId>,
    #[serde(default)]
    pub projects: Vec<ProjectId>,
    pub trigger: Trigger,
    #[serde(default)]
    pub conditions: Condition,
    pub actions: Vec<Action>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Who did what a trigger reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    #[default]
    Anyone,
    /// The item's requester.
    Requester,
    /// A staff member (admin, manager, agent, collaborator) or the server administrator.
    Agent,
    /// A customer other than the requester (e.g. a copied colleague).
    Customer,
    /// Tandem itself: an automation, mail intake bookkeeping.
    Automation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    ItemCreated,
    /// Any field (`fields` empty) or one of the named ones (`title`, `priority`, `custom.due`...).
    ItemUpdated {
        #[serde(default)]
        fields: Vec<String>,
    },
    StatusChanged {
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        to_category: Option<StatusCategory>,
        #[serde(default)]
        from_category: Option<StatusCategory>,
    },
    MessagePosted {
        #[serde(default)]
        by: By,
        #[serde(default)]
        visibility: Option<Visibility>,
    },
    AttachmentAdded {
        #[serde(default)]
        by: By,
    },
    AssigneeChanged,
    /// Nothing changed on an open item for `hours`.
    Idle {
        hours: u32,
    },
    /// The date in custom field `field` is at most `hours` away (and not yet passed).
    DueApproaching {
        field: String,
        hours: u32,
    },
    /// The date in custom field `field` has passed on an open item.
    DuePassed {
        field: String,
    },
    /// The item has been in status `status` for `hours`.
    InStatus {
        status: String,
        hours: u32,
    },
}

impl Trigger {
    /// Time-based triggers are evaluated by the scheduler, not on events.
    pub fn is_timed(&self) -> bool {
        matches!(
            self,
            Trigger::Idle { .. }
                | Trigger::DueApproaching { .. }
                | Trigger::DuePassed { .. }
                | Trigger::InStatus { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Trigger::ItemCreated => "item_created",
            Trigger::ItemUpdated { .. } => "item_updated",
            Trigger::StatusChanged { .. } => "status_changed",
            Trigger::MessagePosted { .. } => "message_posted",
            Trigger::AttachmentAdded { .. } => "attachment_added",
            Trigger::AssigneeChanged => "assignee_changed",
            Trigger::Idle { .. } => "idle",
            Trigger::DueApproaching { .. } => "due_approaching",
            Trigger::DuePassed { .. } => "due_passed",
            Trigger::InStatus { .. } => "in_status",
        }
    }
}

/// A condition tree. On the wire: `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}`,
/// `{"field": "custom.category", "op": "eq", "value": "Hardware"}` or
/// `{"business_hours": {...}}`; nestable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionWire", into = "ConditionWire")]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field { field: FieldRef, op: Op, value: Value },
    BusinessHours(BusinessHours),
}

impl Default for Condition {
    fn default() -> Self {
        Condition::All(Vec::new())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not: Option<Box<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<FieldRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    business_hours: Option<BusinessHours>,
}

impl TryFrom<ConditionWire> for Condition {
    type Error = String;

    fn try_from(w: ConditionWire) -> Result<Self, String> {
        let kinds = [
            w.all.is_some(),
            w.any.is_some(),
            w.not.is_some(),
            w.field.is_some() || w.op.is_some(),
            w.business_hours.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(
                "a condition is exactly one of {\"all\": [...]}, {\"any\": [...]}, {\"not\": {...}}, \
                 {\"field\", \"op\", \"value\"} or {\"business_hours\": {...}}"
                    .into(),
            );
        }
        Ok(match w {
            ConditionWire { all: Some(c), .. } => Condition::All(c),
            ConditionWire { any: Some(c), .. } => Condition::Any(c),
            ConditionWire { not: Some(c), .. } => Condition::Not(c),
            ConditionWire { business_hours: Some(b), .. } => Condition::BusinessHours(b),
            ConditionWire { field, op, value, .. } => Condition::Field {
                field: field.ok_or("a field condition needs \"field\"")?,
                op: op.ok_or("a field condition needs \"op\"")?,
                value: value.unwrap_or(Value::Null),
            },
        })
    }
}

impl From<Condition> for ConditionWire {
    fn from(c: Condition) -> Self {
        match c {
            Condition::All(c) => ConditionWire { all: Some(c), ..Default::default() },
            Condition::Any(c) => ConditionWire { any: Some(c), ..Default::default() },
            Condition::Not(c) => ConditionWire { not: Some(c), ..Default::default() },
            Condition::BusinessHours(b) => ConditionWire { business_hours: Some(b), ..Default::default() },
            Condition::Field { field, op, value } => ConditionWire {
                field: Some(field),
                op: Some(op),
                value: (!value.is_null()).then_some(value),
                ..Default::default()
            },
        }
    }
}

/// Opening hours in a fixed UTC offset: `inside` (default) holds during them, `false` outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`, inclusive.
    pub start: String,
    /// `HH:MM`, exclusive.
    pub end: String,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    #[serde(default = "yes")]
    pub inside: bool,
}

fn yes() -> bool {
    true
}

/// Whom an `assign` action picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum AssignTo {
    User {
        user: UserId,
    },
    Team {
        team: TeamId,
    },
    /// The team's active staff members in turn.
    RoundRobin {
        team: TeamId,
    },
    /// The team's active staff member with the fewest open items.
    LeastOpen {
        team: TeamId,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Sets custom field `field` (validated against the item type's definition); `null` clears it.
    SetField {
        field: String,
        value: Value,
    },
    SetPriority {
        priority: Priority,
    },
    /// Moves the item to a status of its workflow (allowed transitions apply).
    SetStatus {
        status: String,
    },
    /// Replaces the item's assignees.
    Assign {
        to: AssignTo,
    },
    AddFollowers {
        #[serde(default)]
        users: Vec<UserId>,
        /// Also the item's assigned users.
        #[serde(default)]
        assignees: bool,
    },
    RemoveFollowers {
        users: Vec<UserId>,
    },
    /// Files the item into a project (and optionally one of its folders).
    MoveTo {
        project: ProjectId,
        #[serde(default)]
        folder: Option<FolderId>,
    },
    /// Posts a message from a template with `{{item.number}}`, `{{requester.name}}`,
    /// `{{custom.<key>}}`... placeholders.
    Reply {
        visibility: Visibility,
        template: String,
    },
    /// An in-app notification and a `mail.send` job to each recipient with an address.
    Notify {
        #[serde(default)]
        users: Vec<UserId>,
        #[serde(default)]
        requester: bool,
        #[serde(default)]
        assignees: bool,
        template: String,
    },
    /// Converts the item to another type (ticket → task).
    ConvertTo {
        item_type: ItemTypeId,
    },
    /// Enqueues a `plugin.action` job for the plugin host. Every string in `input` is a template
    /// (`{{item.title}}`, `{{requester.email}}`, `{{custom.site}}`…), filled when the rule fires.
    RunPlugin {
        plugin: String,
        action: String,
        #[serde(default)]
        input: Value,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::SetField { .. } => "set_field",
            Action::SetPriority { .. } => "set_priority",
            Action::SetStatus { .. } => "set_status",
            Action::Assign { .. } => "assign",
            Action::AddFollowers { .. } => "add_followers",
            Action::RemoveFollowers { .. } => "remove_followers",
            Action::MoveTo { .. } => "move_to",
            Action::Reply { .. } => "reply",
            Action::Notify { .. } => "notify",
            Action::ConvertTo { .. } => "convert_to",
            Action::RunPlugin { .. } => "run_plugin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The rule's actions ran.
    Fired,
    /// The rule matched but was not run: depth or firing limit reached.
    Stopped,
}

/// One entry of the run log: a rule fired (or was stopped) on an item, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationRun {
    pub id: AutomationRunId,
    pub workspace_id: WorkspaceId,
    pub rule: RuleId,
    pub rule_name: String,
    pub item: ItemId,
    pub at: DateTime<Utc>,
    pub outcome: RunOutcome,
    /// What set it off (`item.created by a customer via email`, `idle for 48 h`) or why it was
    /// stopped.
    pub reason: String,
    /// Levels of rules triggering rules before this one (0: the command's own event).
    pub depth: u32,
    /// What the actions changed, one line each.
    #[serde(default)]
    pub changes: Vec<String>,
    /// For time-based firings: which occurrence (at most one firing per rule, item and occurrence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<String>,
    pub version: i64,
}

/// A workspace's automation bookkeeping (one record, id = workspace id): firing counters of the
/// current window and round-robin positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomationState {
    pub id: AutomationStateId,
    pub workspace_id: WorkspaceId,
    pub window_start: DateTime<Utc>,
    pub workspace_firings: u32,
    #[serde(default)]
    pub item_firings: BTreeMap<ItemId, u32>,
    /// `"{rule}:{action index}"` → how many members were picked so far.
    #[serde(default)]
    pub round_robin: BTreeMap<String, u64>,
    pub version: i64,
}

impl AutomationState {
    pub fn new(ws: WorkspaceId, now: DateTime<Utc>) -> Self {
        Self {
            id: AutomationStateId(ws.0),
            workspace_id: ws,
            window_start: now,
            workspace_firings: 0,
            item_firings: BTreeMap::new(),
            round_robin: BTreeMap::new(),
            version: 0,
        }
    }
}
