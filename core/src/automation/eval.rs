//! Pure evaluation: trigger ↔ event, conditions over an item, templates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BusinessHours, By, Condition, Rule, Trigger};
use crate::conversation::Message;
use crate::event::EventData;
use crate::item::{ActorRef, Assignee, Item, ItemType};
use crate::people::User;

/// A field a condition reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldRef {
    Title,
    Description,
    Priority,
    Status,
    Category,
    ItemType,
    Kind,
    Channel,
    Project,
    Folder,
    Requester,
    RequesterEmail,
    RequesterDomain,
    RequesterOrganization,
    RequesterRole,
    Assignees,
    Followers,
    /// The text of the message that set the rule off (empty for other triggers).
    MessageText,
    Custom(String),
    /// A path into a flow's data (`trigger.item.title`, `steps.0.output.id`): flow filters only.
    Path(String),
}

impl FieldRef {
    pub const NAMES: [&'static str; 18] = [
        "title",
        "description",
        "priority",
        "status",
        "category",
        "item_type",
        "kind",
        "channel",
        "project",
        "folder",
        "requester",
        "requester.email",
        "requester.domain",
        "requester.organization",
        "requester.role",
        "assignees",
        "followers",
        "message.text",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "title" => FieldRef::Title,
            "description" => FieldRef::Description,
            "priority" => FieldRef::Priority,
            "status" => FieldRef::Status,
            "category" => FieldRef::Category,
            "item_type" => FieldRef::ItemType,
            "kind" => FieldRef::Kind,
            "channel" => FieldRef::Channel,
            "project" => FieldRef::Project,
            "folder" => FieldRef::Folder,
            "requester" => FieldRef::Requester,
            "requester.email" => FieldRef::RequesterEmail,
            "requester.domain" => FieldRef::RequesterDomain,
            "requester.organization" => FieldRef::RequesterOrganization,
            "requester.role" => FieldRef::RequesterRole,
            "assignees" => FieldRef::Assignees,
            "followers" => FieldRef::Followers,
            "message.text" => FieldRef::MessageText,
            path if path.starts_with("trigger.") || path.starts_with("steps.") => {
                FieldRef::Path(path.to_string())
            }
            _ => {
                let key = s.strip_prefix("custom.")?;
                if key.is_empty() {
                    return None;
                }
                FieldRef::Custom(key.to_string())
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            FieldRef::Custom(k) => format!("custom.{k}"),
            FieldRef::Path(p) => p.clone(),
            other => {
                let i = [
                    FieldRef::Title,
                    FieldRef::Description,
                    FieldRef::Priority,
                    FieldRef::Status,
                    FieldRef::Category,
                    FieldRef::ItemType,
                    FieldRef::Kind,
                    FieldRef::Channel,
                    FieldRef::Project,
                    FieldRef::Folder,
                    FieldRef::Requester,
                    FieldRef::RequesterEmail,
                    FieldRef::RequesterDomain,
                    FieldRef::RequesterOrganization,
                    FieldRef::RequesterRole,
                    FieldRef::Assignees,
                    FieldRef::Followers,
                    FieldRef::MessageText,
                ]
                .iter()
                .position(|f| f == other)
                .unwrap_or(0);
                Self::NAMES[i].to_string()
            }
        }
    }
}

impl Serialize for FieldRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for FieldRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FieldRef::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown field '{s}'; expected custom.<key> or one of {}",
                FieldRef::NAMES.join(", ")
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    /// Case-insensitive substring (text) or membership (lists).
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    /// A regular expression.
    Matches,
    Gt,
    Gte,
    Lt,
    Lte,
    IsSet,
    IsEmpty,
}

/// What a condition may read besides the item.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub item: &'a Item,
    pub item_type: Option<&'a ItemType>,
    pub requester: Option<&'a User>,
    pub message: Option<&'a Message>,
    pub now: DateTime<Utc>,
}

/// Compiled regular expressions by pattern (rules are validated on save, so a pattern that does
/// not compile here never matches).
#[derive(Debug, Default, Clone)]
pub struct Regexes(Arc<Mutex<HashMap<String, Option<regex::Regex>>>>);

impl Regexes {
    fn is_match(&self, pattern: &str, text: &str) -> bool {
        let Ok(mut cache) = self.0.lock() else { return false };
        let re = cache.entry(pattern.to_string()).or_insert_with(|| regex::Regex::new(pattern).ok());
        re.as_ref().is_some_and(|re| re.is_match(text))
    }
}

fn id_value(id: impl ToString) -> Value {
    Value::String(id.to_string())
}

fn assignee_value(a: &Assignee) -> Value {
    match a {
        Assignee::User(u) => id_value(u),
        Assignee::Team(t) => id_value(t),
    }
}

/// The requester's organization, when they belong to one.
fn requester_organization(user: &User) -> Value {
    user.organization.map_or(Value::Null, id_value)
}

/// The value of a field, as JSON (null when unset).
pub fn field_value(field: &FieldRef, f: &Facts<'_>) -> Value {
    let item = f.item;
    let email = || f.requester.and_then(|u| u.email.clone());
    match field {
        FieldRef::Title => Value::String(item.title.clone()),
        FieldRef::Description => Value::String(item.description.clone()),
        FieldRef::Priority => Value::String(item.priority.as_str().into()),
        FieldRef::Status => Value::String(item.status.clone()),
        FieldRef::Category => Value::String(item.category.as_str().into()),
        FieldRef::ItemType => id_value(item.item_type),
        FieldRef::Kind => Value::String(item.kind.as_str().into()),
        FieldRef::Channel => serde_json::to_value(item.channel).unwrap_or(Value::Null),
        FieldRef::Project => item.project.map_or(Value::Null, id_value),
        FieldRef::Folder => item.folder.map_or(Value::Null, id_value),
        FieldRef::Requester => item.requester.map_or(Value::Null, id_value),
        FieldRef::RequesterEmail => email().map_or(Value::Null, Value::String),
        FieldRef::RequesterDomain => email()
            .and_then(|e| e.rsplit_once('@').map(|(_, d)| d.to_string()))
            .map_or(Value::Null, Value::String),
        FieldRef::RequesterOrganization => f.requester.map_or(Value::Null, requester_organization),
        FieldRef::RequesterRole => {
            f.requester.map_or(Value::Null, |u| serde_json::to_value(u.role).unwrap_or(Value::Null))
        }
        FieldRef::Assignees => Value::Array(item.assignees.iter().map(assignee_value).collect()),
        FieldRef::Followers => Value::Array(item.followers.iter().map(id_value).collect()),
        FieldRef::MessageText => f.message.map_or(Value::Null, |m| Value::String(m.text.clone())),
        FieldRef::Custom(key) => item.custom.get(key).cloned().unwrap_or(Value::Null),
        // Rules have no flow data; validation refuses paths in rules.
        FieldRef::Path(_) => Value::Null,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Equality that forgives case for text (emails, domains, choice values typed by hand).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn ordering(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // Dates and datetimes are ISO 8601 text, which sorts chronologically.
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Applies an operator to a field's value.
pub fn compare(actual: &Value, op: crate::automation::Op, expected: &Value, regexes: &Regexes) -> bool {
    use crate::automation::Op::*;
    let list = match actual {
        Value::Array(a) => Some(a),
        _ => None,
    };
    let contains = || match (list, text_of(actual), text_of(expected)) {
        (Some(list), _, _) => list.iter().any(|v| same(v, expected)),
        (None, Some(a), Some(e)) => a.to_lowercase().contains(&e.to_lowercase()),
        _ => false,
    };
    let is_in = || match expected {
        Value::Array(options) => match list {
            Some(list) => list.iter().any(|v| options.iter().any(|o| same(v, o))),
            None => options.iter().any(|o| same(actual, o)),
        },
        _ => false,
    };
    match op {
        Eq => match list {
            Some(list) => list.iter().any(|v| same(v, expected)),
            None => same(actual, expected),
        },
        Ne => !compare(actual, Eq, expected, regexes),
        In => is_in(),
        NotIn => !is_in(),
        Contains => contains(),
        NotContains => !contains(),
        StartsWith | EndsWith => match (text_of(actual), text_of(expected)) {
            (Some(a), Some(e)) => {
                let (a, e) = (a.to_lowercase(), e.to_lowercase());
                if op == StartsWith { a.starts_with(&e) } else { a.ends_with(&e) }
            }
            _ => false,
        },
        Matches => match (text_of(actual), expected) {
            (Some(a), Value::String(p)) => regexes.is_match(p, &a),
            _ => false,
        },
        Gt | Gte | Lt | Lte => match ordering(actual, expected) {
            Some(o) => match op {
                Gt => o.is_gt(),
                Gte => o.is_ge(),
                Lt => o.is_lt(),
                _ => o.is_le(),
            },
            None => false,
        },
        IsSet => !is_empty(actual),
        IsEmpty => is_empty(actual),
    }
}

pub fn weekday_key(d: chrono::Weekday) -> &'static str {
    match d {
        chrono::Weekday::Mon => "mon",
        chrono::Weekday::Tue => "tue",
        chrono::Weekday::Wed => "wed",
        chrono::Weekday::Thu => "thu",
        chrono::Weekday::Fri => "fri",
        chrono::Weekday::Sat => "sat",
        chrono::Weekday::Sun => "sun",
    }
}

/// `HH:MM` as minutes after midnight.
pub fn minutes_of(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

pub fn within_business_hours(b: &BusinessHours, now: DateTime<Utc>) -> bool {
    let local = now + Duration::minutes(i64::from(b.utc_offset_minutes));
    let day = weekday_key(local.weekday());
    let minute = local.hour() * 60 + local.minute();
    let open = b.days.iter().any(|d| d.eq_ignore_ascii_case(day))
        && match (minutes_of(&b.start), minutes_of(&b.end)) {
            (Some(s), Some(e)) => minute >= s && minute < e,
            _ => false,
        };
    open == b.inside
}

pub fn holds(c: &Condition, f: &Facts<'_>, regexes: &Regexes) -> bool {
    holds_with(c, &|field| field_value(field, f), f.now, regexes)
}

/// The condition tree over any source of field values (rules read an item, flows their data).
pub fn holds_with(
    c: &Condition,
    value_of: &dyn Fn(&FieldRef) -> Value,
    now: DateTime<Utc>,
    regexes: &Regexes,
) -> bool {
    match c {
        Condition::All(cs) => cs.iter().all(|c| holds_with(c, value_of, now, regexes)),
        Condition::Any(cs) => cs.iter().any(|c| holds_with(c, value_of, now, regexes)),
        Condition::Not(c) => !holds_with(c, value_of, now, regexes),
        Condition::Field { field, op, value } => compare(&value_of(field), *op, value, regexes),
        Condition::BusinessHours(b) => within_business_hours(b, now),
    }
}

/// Whether the rule's item-type and project limits admit the item.
pub fn in_scope(rule: &Rule, item: &Item) -> bool {
    (rule.item_types.is_empty() || rule.item_types.contains(&item.item_type))
        && (rule.projects.is_empty() || item.project.is_some_and(|p| rule.projects.contains(&p)))
}

/// Who an actor is relative to an item.
pub fn who(actor: ActorRef, item: &Item, author: Option<&User>) -> By {
    match actor {
        ActorRef::System => By::Automation,
        ActorRef::ServerAdmin => By::Agent,
        ActorRef::User(u) if Some(u) == item.requester => By::Requester,
        ActorRef::User(_) => match author {
            Some(user) if !user.role.is_staff() => By::Customer,
            // An unknown author acting through the API is staff: customers act only on items they
            // requested or follow, and those are loaded.
            _ => By::Agent,
        },
    }
}

fn by_matches(wanted: By, actual: By) -> bool {
    wanted == By::Anyone || wanted == actual
}

/// Whether `trigger` reacts to `event` on `item`. `actor` is who caused the event (a message's
/// author for messages), `author` their user record when known.
pub fn trigger_matches(
    trigger: &Trigger,
    event: &EventData,
    item: &Item,
    actor: ActorRef,
    author: Option<&User>,
    message: Option<&Message>,
) -> bool {
    match (trigger, event) {
        (Trigger::ItemCreated, EventData::ItemCreated { .. }) => true,
        (Trigger::ItemUpdated { fields }, EventData::ItemUpdated { changes }) => {
            fields.is_empty() || changes.iter().any(|c| fields.contains(&c.field))
        }
        (
            Trigger::StatusChanged { to, to_category, from_category },
            EventData::StatusChanged { to: new, to_category: new_cat, from_category: old_cat, .. },
        ) => {
            to.as_ref().is_none_or(|t| t == new)
                && to_category.is_none_or(|c| c == *new_cat)
                && from_category.is_none_or(|c| c == *old_cat)
        }
        (Trigger::MessagePosted { by, visibility }, EventData::MessagePosted { visibility: v, .. }) => {
            let author_ref = message.map_or(actor, |m| m.author);
            visibility.is_none_or(|want| want == *v) && by_matches(*by, who(author_ref, item, author))
        }
        (Trigger::AttachmentAdded { by }, EventData::AttachmentAdded { .. }) => {
            by_matches(*by, who(actor, item, author))
        }
        (Trigger::AssigneeChanged, EventData::AssigneesChanged { .. }) => true,
        _ => false,
    }
}

/// Every placeholder a template may use besides `custom.<key>`.
pub const PLACEHOLDERS: [&str; 12] = [
    "item.number",
    "item.title",
    "item.status",
    "item.priority",
    "item.description",
    "requester.name",
    "requester.email",
    "assignee.name",
    "rule.name",
    "message.text",
    "item.type",
    "item.id",
];

/// What a template's placeholders are filled from.
#[derive(Debug, Clone, Copy)]
pub struct TemplateData<'a> {
    pub item: &'a Item,
    pub item_type: Option<&'a ItemType>,
    pub requester: Option<&'a User>,
    pub assignee: Option<&'a User>,
    pub message: Option<&'a Message>,
    pub rule: &'a str,
}

fn placeholder(name: &str, d: &TemplateData<'_>) -> String {
    let custom = |key: &str| match d.item.custom.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().filter_map(text_of).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
    };
    match name {
        "item.number" => d.item.number.to_string(),
        "item.title" => d.item.title.clone(),
        "item.status" => d
            .item_type
            .and_then(|t| t.workflow.status(&d.item.status))
            .map_or_else(|| d.item.status.clone(), |s| s.name.clone()),
        "item.priority" => d.item.priority.as_str().to_string(),
        "item.description" => d.item.description.clone(),
        "item.type" => d.item_type.map(|t| t.name.clone()).unwrap_or_default(),
        "item.id" => d.item.id.to_string(),
        "requester.name" => d.requester.map(|u| u.name.clone()).unwrap_or_default(),
        "requester.email" => d.requester.and_then(|u| u.email.clone()).unwrap_or_default(),
        "assignee.name" => d.assignee.map(|u| u.name.clone()).unwrap_or_default(),
        "rule.name" => d.rule.to_string(),
        "message.text" => d.message.map(|m| m.text.clone()).unwrap_or_default(),
        other => other.strip_prefix("custom.").map(custom).unwrap_or_default(),
    }
}

/// The placeholders a template uses, in order (for validation).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

pub fn is_known_placeholder(name: &str) -> bool {
    PLACEHOLDERS.contains(&name) || name.strip_prefix("custom.").is_some_and(|k| !k.is_empty())
}

/// Fills a template's `{{placeholders}}`.
pub fn render(template: &str, d: &TemplateData<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&placeholder(after[..end].trim(), d));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}
