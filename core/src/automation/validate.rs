//! Checks a rule before it is stored. Errors name the JSON path of the bad part
//! (`conditions.any[2].value`, `actions[1].to.team`).

use std::collections::HashMap;

use serde_json::Value;

use super::eval::{FieldRef, Op, is_known_placeholder, minutes_of, placeholders};
use super::{Action, AssignTo, Condition, Rule, Trigger};
use crate::error::Invalid;
use crate::fields::{FieldKind, validate_value};
use crate::hierarchy::{Folder, Project};
use crate::ids::{FolderId, ProjectId, TeamId, UserId};
use crate::item::ItemType;
use crate::people::{Team, User};

pub const MAX_ACTIONS: usize = 20;
pub const MAX_CONDITION_DEPTH: usize = 8;
pub const MAX_CONDITIONS: usize = 100;
pub const MAX_TEMPLATE_CHARS: usize = 20_000;
pub const MAX_HOURS: u32 = 24 * 366;

/// The records a rule refers to, loaded by the command that stores it.
#[derive(Debug, Clone, Default)]
pub struct RuleRefs {
    pub item_types: Vec<ItemType>,
    pub users: HashMap<UserId, User>,
    pub teams: HashMap<TeamId, Team>,
    pub projects: HashMap<ProjectId, Project>,
    pub folders: HashMap<FolderId, Folder>,
}

impl RuleRefs {
    /// The types the rule may act on: its limit, or every type.
    fn types<'a>(&'a self, rule: &'a Rule) -> impl Iterator<Item = &'a ItemType> + 'a {
        self.item_types.iter().filter(|t| rule.item_types.is_empty() || rule.item_types.contains(&t.id))
    }
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid::new(path, reason)
}

pub fn validate_rule(rule: &Rule, refs: &RuleRefs) -> Result<(), Invalid> {
    let name = rule.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(err("name", "must be 1 to 200 characters"));
    }
    for (i, t) in rule.item_types.iter().enumerate() {
        if !refs.item_types.iter().any(|x| x.id == *t) {
            return Err(err(format!("item_types[{i}]"), format!("no item type {t}")));
        }
    }
    for (i, p) in rule.projects.iter().enumerate() {
        if !refs.projects.contains_key(p) {
            return Err(err(format!("projects[{i}]"), format!("no project {p}")));
        }
    }
    validate_trigger(rule, refs)?;
    let mut count = 0;
    validate_condition(&rule.conditions, "conditions", 0, &mut count, rule, refs)?;
    if rule.actions.is_empty() {
        return Err(err("actions", "a rule needs at least one action"));
    }
    if rule.actions.len() > MAX_ACTIONS {
        return Err(err("actions", format!("at most {MAX_ACTIONS} actions")));
    }
    for (i, a) in rule.actions.iter().enumerate() {
        validate_action(a, &format!("actions[{i}]"), rule, refs)?;
    }
    Ok(())
}

fn hours(path: &str, h: u32) -> Result<(), Invalid> {
    if h == 0 || h > MAX_HOURS {
        return Err(err(format!("{path}.hours"), format!("must be 1 to {MAX_HOURS}")));
    }
    Ok(())
}

fn status_exists(rule: &Rule, refs: &RuleRefs, status: &str) -> bool {
    refs.types(rule).any(|t| t.workflow.status(status).is_some())
}

fn date_field(rule: &Rule, refs: &RuleRefs, field: &str) -> Result<(), Invalid> {
    let found = refs.types(rule).filter_map(|t| t.field(field)).next();
    match found {
        Some(def) if matches!(def.kind, FieldKind::Date | FieldKind::Datetime) => Ok(()),
        Some(_) => Err(err("trigger.field", format!("'{field}' is not a date or datetime field"))),
        None => Err(err("trigger.field", format!("no item type of this rule has a field '{field}'"))),
    }
}

fn validate_trigger(rule: &Rule, refs: &RuleRefs) -> Result<(), Invalid> {
    match &rule.trigger {
        Trigger::ItemUpdated { fields } => {
            for (i, f) in fields.iter().enumerate() {
                if f.trim().is_empty() {
                    return Err(err(format!("trigger.fields[{i}]"), "must not be empty"));
                }
            }
        }
        Trigger::StatusChanged { to: Some(s), .. } if !status_exists(rule, refs, s) => {
            return Err(err(
                "trigger.to",
                format!("no workflow of this rule's item types has a status '{s}'"),
            ));
        }
        Trigger::Idle { hours: h } => hours("trigger", *h)?,
        Trigger::DueApproaching { field, hours: h } => {
            hours("trigger", *h)?;
            date_field(rule, refs, field)?;
        }
        Trigger::DuePassed { field } => date_field(rule, refs, field)?,
        Trigger::InStatus { status, hours: h } => {
            hours("trigger", *h)?;
            if !status_exists(rule, refs, status) {
                return Err(err(
                    "trigger.status",
                    format!("no workflow of this rule's item types has a status '{status}'"),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn validate_condition(
    c: &Condition,
    path: &str,
    depth: usize,
    count: &mut usize,
    rule: &Rule,
    refs: &RuleRefs,
) -> Result<(), Invalid> {
    let field_ok = |field: &FieldRef, fpath: &str| match field {
        FieldRef::Custom(key) if !refs.types(rule).any(|t| t.field(key).is_some()) => {
            Err(err(fpath, format!("no item type of this rule has a custom field '{key}'")))
        }
        FieldRef::Path(p) => Err(err(fpath, format!("'{p}' is flow data; rules read item fields"))),
        _ => Ok(()),
    };
    validate_condition_with(c, path, depth, count, &field_ok)
}

/// Checks a condition tree's shape, operators and values; `field_ok` says whether a field may be
/// read where the tree is used (rules: item fields; flows: their data paths).
pub fn validate_condition_with(
    c: &Condition,
    path: &str,
    depth: usize,
    count: &mut usize,
    field_ok: &dyn Fn(&FieldRef, &str) -> Result<(), Invalid>,
) -> Result<(), Invalid> {
    *count += 1;
    if *count > MAX_CONDITIONS {
        return Err(err(path, format!("a rule has at most {MAX_CONDITIONS} conditions")));
    }
    if depth > MAX_CONDITION_DEPTH {
        return Err(err(path, format!("conditions nest at most {MAX_CONDITION_DEPTH} levels deep")));
    }
    match c {
        Condition::All(cs) | Condition::Any(cs) => {
            let key = if matches!(c, Condition::All(_)) { "all" } else { "any" };
            for (i, c) in cs.iter().enumerate() {
                validate_condition_with(c, &format!("{path}.{key}[{i}]"), depth + 1, count, field_ok)?;
            }
        }
        Condition::Not(c) => validate_condition_with(c, &format!("{path}.not"), depth + 1, count, field_ok)?,
        Condition::BusinessHours(b) => {
            let p = format!("{path}.business_hours");
            if b.days.is_empty() {
                return Err(err(format!("{p}.days"), "name at least one day"));
            }
            for (i, d) in b.days.iter().enumerate() {
                if !["mon", "tue", "wed", "thu", "fri", "sat", "sun"].contains(&d.to_lowercase().as_str()) {
                    return Err(err(format!("{p}.days[{i}]"), format!("'{d}' is not one of mon … sun")));
                }
            }
            let start = minutes_of(&b.start).ok_or_else(|| err(format!("{p}.start"), "expected HH:MM"))?;
            let end = minutes_of(&b.end).ok_or_else(|| err(format!("{p}.end"), "expected HH:MM"))?;
            if end <= start {
                return Err(err(format!("{p}.end"), "must be after start"));
            }
            if b.utc_offset_minutes.abs() > 14 * 60 {
                return Err(err(format!("{p}.utc_offset_minutes"), "must be within ±14 hours"));
            }
        }
        Condition::Field { field, op, value } => {
            field_ok(field, &format!("{path}.field"))?;
            let vpath = format!("{path}.value");
            match op {
                Op::IsSet | Op::IsEmpty => {
                    if !value.is_null() {
                        return Err(err(vpath, "is_set and is_empty take no value"));
                    }
                }
                Op::In | Op::NotIn => {
                    if !value.is_array() {
                        return Err(err(vpath, "in and not_in take a list"));
                    }
                }
                Op::Matches => match value {
                    Value::String(p) => {
                        regex::RegexBuilder::new(p)
                            .size_limit(1 << 20)
                            .build()
                            .map_err(|e| err(vpath, format!("not a valid regular expression: {e}")))?;
                    }
                    _ => return Err(err(vpath, "matches takes a regular expression as text")),
                },
                Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                    if !(value.is_number() || value.is_string()) {
                        return Err(err(vpath, "comparisons take a number or a date"));
                    }
                }
                _ => {
                    if value.is_null() || value.is_object() {
                        return Err(err(vpath, "expected a value to compare with"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn template(path: String, t: &str) -> Result<(), Invalid> {
    if t.trim().is_empty() {
        return Err(err(path, "must not be empty"));
    }
    if t.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(err(path, format!("at most {MAX_TEMPLATE_CHARS} characters")));
    }
    for p in placeholders(t) {
        if !is_known_placeholder(p) {
            return Err(err(path, format!("unknown placeholder '{{{{{p}}}}}'")));
        }
    }
    Ok(())
}

/// Every string of a plugin action's input is a template: its placeholders must be known.
fn input_templates(path: String, input: &Value) -> Result<(), Invalid> {
    match input {
        Value::String(t) => {
            for p in placeholders(t) {
                if !is_known_placeholder(p) {
                    return Err(err(path, format!("unknown placeholder '{{{{{p}}}}}'")));
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, v)| input_templates(format!("{path}[{i}]"), v))
        }
        Value::Object(fields) => {
            fields.iter().try_for_each(|(k, v)| input_templates(format!("{path}.{k}"), v))
        }
        _ => Ok(()),
    }
}

fn user(refs: &RuleRefs, path: String, id: UserId) -> Result<&User, Invalid> {
    match refs.users.get(&id) {
        Some(u) if u.active => Ok(u),
        Some(u) => Err(err(path, format!("{} is disabled", u.name))),
        None => Err(err(path, format!("no user {id}"))),
    }
}

fn team(refs: &RuleRefs, path: String, id: TeamId) -> Result<&Team, Invalid> {
    refs.teams.get(&id).ok_or_else(|| err(path, format!("no team {id}")))
}

fn validate_action(a: &Action, path: &str, rule: &Rule, refs: &RuleRefs) -> Result<(), Invalid> {
    match a {
        Action::SetField { field, value } => {
            let defs: Vec<_> = refs.types(rule).filter_map(|t| t.field(field)).collect();
            if defs.is_empty() {
                return Err(err(
                    format!("{path}.field"),
                    format!("no item type of this rule has a field '{field}'"),
                ));
            }
            if !value.is_null() {
                for def in defs {
                    validate_value(def, value).map_err(|e| err(format!("{path}.value"), e.reason))?;
                }
            }
        }
        Action::SetStatus { status } => {
            if !status_exists(rule, refs, status) {
                return Err(err(
                    format!("{path}.status"),
                    format!("no workflow of this rule's item types has a status '{status}'"),
                ));
            }
        }
        Action::Assign { to } => match to {
            AssignTo::User { user: u } => {
                let found = user(refs, format!("{path}.to.user"), *u)?;
                if !found.role.is_staff() {
                    return Err(err(format!("{path}.to.user"), "customers cannot be assigned"));
                }
            }
            AssignTo::Team { team: t } => {
                team(refs, format!("{path}.to.team"), *t)?;
            }
            AssignTo::RoundRobin { team: t } | AssignTo::LeastOpen { team: t } => {
                let found = team(refs, format!("{path}.to.team"), *t)?;
                if found.members.is_empty() {
                    return Err(err(
                        format!("{path}.to.team"),
                        format!("team '{}' has no members", found.name),
                    ));
                }
            }
        },
        Action::AddFollowers { users, .. } | Action::RemoveFollowers { users } => {
            for (i, u) in users.iter().enumerate() {
                if matches!(a, Action::AddFollowers { .. }) {
                    user(refs, format!("{path}.users[{i}]"), *u)?;
                }
            }
            if let Action::AddFollowers { users, assignees: false } = a
                && users.is_empty()
            {
                return Err(err(format!("{path}.users"), "name someone to add"));
            }
        }
        Action::MoveTo { project, folder } => {
            let p = refs
                .projects
                .get(project)
                .ok_or_else(|| err(format!("{path}.project"), format!("no project {project}")))?;
            if p.archived {
                return Err(err(format!("{path}.project"), format!("project '{}' is archived", p.name)));
            }
            if let Some(f) = folder {
                match refs.folders.get(f) {
                    Some(found) if found.project == *project => {}
                    Some(_) => {
                        return Err(err(format!("{path}.folder"), "the folder belongs to another project"));
                    }
                    None => return Err(err(format!("{path}.folder"), format!("no folder {f}"))),
                }
            }
        }
        Action::Reply { template: t, .. } => template(format!("{path}.template"), t)?,
        Action::Notify { users, requester, assignees, template: t } => {
            for (i, u) in users.iter().enumerate() {
                user(refs, format!("{path}.users[{i}]"), *u)?;
            }
            if users.is_empty() && !requester && !assignees {
                return Err(err(
                    format!("{path}.users"),
                    "name whom to notify (users, requester or assignees)",
                ));
            }
            template(format!("{path}.template"), t)?;
        }
        Action::ConvertTo { item_type } => {
            if !refs.item_types.iter().any(|t| t.id == *item_type) {
                return Err(err(format!("{path}.item_type"), format!("no item type {item_type}")));
            }
        }
        Action::RunPlugin { plugin, action, input } => {
            if plugin.trim().is_empty() {
                return Err(err(format!("{path}.plugin"), "must not be empty"));
            }
            if action.trim().is_empty() {
                return Err(err(format!("{path}.action"), "must not be empty"));
            }
            input_templates(format!("{path}.input"), input)?;
        }
        Action::SetPriority { .. } => {}
    }
    Ok(())
}
