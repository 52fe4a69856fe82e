//! Per-item-type workflows: ordered statuses, each mapped to a fixed [`StatusCategory`], optional
//! allowed transitions, and the default statuses used on create, on a customer's reply and on close.
//!
//! Every operation is a pure function that either returns a valid workflow or says what was wrong;
//! a workflow that fails [`Workflow::validate`] is never produced by them (see the proptests).

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// The fixed lifecycle categories that automations, portals and reports reason about, whatever the
/// statuses of a workflow are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCategory {
    New,
    Open,
    InProgress,
    Waiting,
    Resolved,
    Closed,
}

impl StatusCategory {
    pub const ALL: [StatusCategory; 6] = [
        StatusCategory::New,
        StatusCategory::Open,
        StatusCategory::InProgress,
        StatusCategory::Waiting,
        StatusCategory::Resolved,
        StatusCategory::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusCategory::New => "new",
            StatusCategory::Open => "open",
            StatusCategory::InProgress => "in_progress",
            StatusCategory::Waiting => "waiting",
            StatusCategory::Resolved => "resolved",
            StatusCategory::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Resolved and closed items are "done": replies to them follow the reopen policy.
    pub fn is_done(self) -> bool {
        matches!(self, StatusCategory::Resolved | StatusCategory::Closed)
    }

    fn rank(self) -> i32 {
        self as i32
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Stable identifier used by items and the API; renaming a status keeps its key.
    pub key: String,
    pub name: String,
    pub category: StatusCategory,
    /// What requesters see in the portal and in mail; the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowDefaults {
    /// Status of a newly created item.
    pub create: String,
    /// Status a waiting or done item moves to when its requester replies.
    pub customer_reply: String,
    /// Status used when an item is closed without naming one.
    pub close: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub statuses: Vec<Status>,
    /// `None`: any status may follow any other. `Some`: only these moves are allowed.
    #[serde(default)]
    pub transitions: Option<Vec<Transition>>,
    pub defaults: WorkflowDefaults,
}

const MAX_STATUSES: usize = 50;
const MAX_NAME: usize = 80;

/// Turns a display name into a key: lowercase ASCII letters, digits and `_`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    let mut pending_sep = false;
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(ch);
        } else {
            pending_sep = true;
        }
        if out.len() >= 40 {
            break;
        }
    }
    out
}

/// A key is 1–40 characters of `[a-z0-9_]` starting with a letter.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 40 {
        return Err("must be 1 to 40 characters".into());
    }
    if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err("may contain only a-z, 0-9 and _".into());
    }
    Ok(())
}

pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().count() > MAX_NAME {
        return Err(format!("must be at most {MAX_NAME} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

impl Workflow {
    /// Triage → execution → delivery: the workflow every new workspace and item type starts with.
    pub fn default_workflow() -> Workflow {
        let s = |key: &str, name: &str, category| Status {
            key: key.into(),
            name: name.into(),
            category,
            public_label: None,
        };
        Workflow {
            statuses: vec![
                s("triage", "Triage", StatusCategory::New),
                s("execution", "Execution", StatusCategory::InProgress),
                s("waiting", "Waiting", StatusCategory::Waiting),
                s("delivery", "Delivery", StatusCategory::Resolved),
                s("closed", "Closed", StatusCategory::Closed),
            ],
            transitions: None,
            defaults: WorkflowDefaults {
                create: "triage".into(),
                customer_reply: "execution".into(),
                close: "closed".into(),
            },
        }
    }

    pub fn status(&self, key: &str) -> Option<&Status> {
        self.statuses.iter().find(|s| s.key == key)
    }

    fn position(&self, key: &str) -> Result<usize, Invalid> {
        self.statuses
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| Invalid::new("status", format!("no status with key '{key}'")))
    }

    /// Checks every rule a workflow must satisfy, naming the first broken one.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.statuses.is_empty() {
            return Err(Invalid::new("statuses", "a workflow needs at least one status"));
        }
        if self.statuses.len() > MAX_STATUSES {
            return Err(Invalid::new("statuses", format!("at most {MAX_STATUSES} statuses")));
        }
        for (i, status) in self.statuses.iter().enumerate() {
            let at = |f: &str| format!("statuses[{i}].{f}");
            validate_key(&status.key).map_err(|r| Invalid::new(at("key"), r))?;
            validate_name(&status.name).map_err(|r| Invalid::new(at("name"), r))?;
            if let Some(label) = &status.public_label {
                validate_name(label).map_err(|r| Invalid::new(at("public_label"), r))?;
            }
            for other in &self.statuses[..i] {
                if other.key == status.key {
                    return Err(Invalid::new(at("key"), format!("'{}' is used twice", status.key)));
                }
                if other.name.trim().eq_ignore_ascii_case(status.name.trim()) {
                    return Err(Invalid::new(at("name"), format!("'{}' is used twice", status.name)));
                }
            }
        }
        let d = &self.defaults;
        for (field, key) in [
            ("defaults.create", &d.create),
            ("defaults.customer_reply", &d.customer_reply),
            ("defaults.close", &d.close),
        ] {
            if self.status(key).is_none() {
                return Err(Invalid::new(field, format!("no status with key '{key}'")));
            }
        }
        if self.status(&d.close).is_some_and(|s| !s.category.is_done()) {
            return Err(Invalid::new("defaults.close", "the close status must be resolved or closed"));
        }
        if let Some(transitions) = &self.transitions {
            for (i, t) in transitions.iter().enumerate() {
                for (end, key) in [("from", &t.from), ("to", &t.to)] {
                    if self.status(key).is_none() {
                        return Err(Invalid::new(
                            format!("transitions[{i}].{end}"),
                            format!("no status with key '{key}'"),
                        ));
                    }
                }
                if t.from == t.to {
                    return Err(Invalid::new(format!("transitions[{i}]"), "a status cannot move to itself"));
                }
                if transitions[..i].contains(t) {
                    return Err(Invalid::new(format!("transitions[{i}]"), "listed twice"));
                }
            }
        }
        Ok(())
    }

    /// Whether an item may move from `from` to `to`.
    pub fn can_transition(&self, from: &str, to: &str) -> Result<(), Invalid> {
        if self.status(to).is_none() {
            return Err(Invalid::new("status", format!("no status with key '{to}' in this workflow")));
        }
        if from == to {
            return Err(Invalid::new("status", format!("the item is already in '{to}'")));
        }
        match &self.transitions {
            Some(allowed) if !allowed.iter().any(|t| t.from == from && t.to == to) => Err(Invalid::new(
                "status",
                format!("the workflow does not allow moving from '{from}' to '{to}'"),
            )),
            _ => Ok(()),
        }
    }

    /// The status an item lands in when it moves into this workflow from a status of `category`:
    /// the first status of the same category, otherwise the nearest category (earlier on a tie).
    pub fn map_category(&self, category: StatusCategory) -> &Status {
        let mut best = &self.statuses[0];
        let mut best_distance = i32::MAX;
        for status in &self.statuses {
            let distance = (status.category.rank() - category.rank()).abs() * 2
                + i32::from(status.category.rank() > category.rank());
            if distance < best_distance {
                best = status;
                best_distance = distance;
            }
        }
        best
    }

    fn unique_key(&self, name: &str) -> String {
        let mut base = slug(name);
        if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
            base = format!("s_{base}");
        }
        base.truncate(36);
        let mut key = base.clone();
        let mut n = 2;
        while self.status(&key).is_some() {
            key = format!("{base}_{n}");
            n += 1;
        }
        key
    }

    /// Adds a status at `position` (end when `None`), returning the new workflow and the new key.
    pub fn add_status(
        &self,
        name: &str,
        category: StatusCategory,
        position: Option<usize>,
    ) -> Result<(Workflow, String), Invalid> {
        validate_name(name).map_err(|r| Invalid::new("name", r))?;
        let mut next = self.clone();
        let key = self.unique_key(name);
        let at = position.unwrap_or(next.statuses.len());
        if at > next.statuses.len() {
            return Err(Invalid::new("position", format!("must be at most {}", next.statuses.len())));
        }
        next.statuses.insert(
            at,
            Status { key: key.clone(), name: name.trim().to_string(), category, public_label: None },
        );
        next.validate()?;
        Ok((next, key))
    }

    /// Renames and/or recategorises a status; its key stays the same.
    pub fn update_status(
        &self,
        key: &str,
        name: Option<&str>,
        category: Option<StatusCategory>,
        public_label: Option<Option<&str>>,
    ) -> Result<Workflow, Invalid> {
        let mut next = self.clone();
        let i = next.position(key)?;
        if let Some(name) = name {
            validate_name(name).map_err(|r| Invalid::new("name", r))?;
            next.statuses[i].name = name.trim().to_string();
        }
        if let Some(category) = category {
            next.statuses[i].category = category;
        }
        if let Some(label) = public_label {
            next.statuses[i].public_label = label.map(|l| l.trim().to_string());
        }
        next.validate()?;
        Ok(next)
    }

    /// Moves a status to `position` in the order.
    pub fn move_status(&self, key: &str, position: usize) -> Result<Workflow, Invalid> {
        let mut next = self.clone();
        let i = next.position(key)?;
        if position >= next.statuses.len() {
            return Err(Invalid::new("position", format!("must be below {}", next.statuses.len())));
        }
        let status = next.statuses.remove(i);
        next.statuses.insert(position, status);
        Ok(next)
    }

    /// Removes a status; items in it, defaults pointing at it and its transitions move to
    /// `replace_with`.
    pub fn remove_status(&self, key: &str, replace_with: &str) -> Result<Workflow, Invalid> {
        let i = self.position(key)?;
        if self.statuses.len() == 1 {
            return Err(Invalid::new("status", "the last status of a workflow cannot be removed"));
        }
        if key == replace_with {
            return Err(Invalid::new("replace_with", "must be another status"));
        }
        if self.status(replace_with).is_none() {
            return Err(Invalid::new("replace_with", format!("no status with key '{replace_with}'")));
        }
        let mut next = self.clone();
        next.statuses.remove(i);
        for default in
            [&mut next.defaults.create, &mut next.defaults.customer_reply, &mut next.defaults.close]
        {
            if default == key {
                *default = replace_with.to_string();
            }
        }
        if next.status(&next.defaults.close).is_some_and(|s| !s.category.is_done()) {
            return Err(Invalid::new(
                "replace_with",
                "the removed status is the close default; replace it with a resolved or closed status",
            ));
        }
        if let Some(transitions) = &mut next.transitions {
            transitions.retain(|t| t.from != key && t.to != key);
        }
        next.validate()?;
        Ok(next)
    }

    pub fn set_transitions(&self, transitions: Option<Vec<Transition>>) -> Result<Workflow, Invalid> {
        let next = Workflow { transitions, ..self.clone() };
        next.validate()?;
        Ok(next)
    }

    pub fn set_defaults(&self, defaults: WorkflowDefaults) -> Result<Workflow, Invalid> {
        let next = Workflow { defaults, ..self.clone() };
        next.validate()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_workflow_is_valid_and_ordered() {
        let w = Workflow::default_workflow();
        w.validate().unwrap();
        let keys: Vec<_> = w.statuses.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["triage", "execution", "waiting", "delivery", "closed"]);
    }

    #[test]
    fn slugs() {
        for (name, expected) in [
            ("In review", "in_review"),
            ("  Waiting -- on customer ", "waiting_on_customer"),
            ("Ölprüfung", "lpr_fung"),
            ("!!!", ""),
        ] {
            assert_eq!(slug(name), expected, "{name}");
        }
    }

    #[test]
    fn transitions_are_checked() {
        let w = Workflow::default_workflow()
            .set_transitions(Some(vec![Transition { from: "triage".into(), to: "execution".into() }]))
            .unwrap();
        assert!(w.can_transition("triage", "execution").is_ok());
        let err = w.can_transition("triage", "closed").unwrap_err();
        assert!(err.reason.contains("does not allow"), "{err}");
        assert!(w.can_transition("triage", "triage").is_err());
        assert!(w.can_transition("triage", "nope").is_err());
        let bad = Workflow::default_workflow()
            .set_transitions(Some(vec![Transition { from: "triage".into(), to: "ghost".into() }]))
            .unwrap_err();
        assert_eq!(bad.field, "transitions[0].to");
    }

    #[test]
    fn remove_status_moves_defaults_and_rejects_bad_targets() {
        let w = Workflow::default_workflow();
        let next = w.remove_status("triage", "execution").unwrap();
        assert_eq!(next.defaults.create, "execution");
        assert_eq!(w.remove_status("triage", "triage").unwrap_err().field, "replace_with");
        assert_eq!(w.remove_status("closed", "execution").unwrap_err().field, "replace_with");
        assert!(w.remove_status("closed", "delivery").is_ok());
    }

    #[test]
    fn category_mapping_prefers_same_then_nearest_then_earlier() {
        let w = Workflow::default_workflow();
        let cases = [
            (StatusCategory::New, "triage"),
            (StatusCategory::Open, "triage"),
            (StatusCategory::InProgress, "execution"),
            (StatusCategory::Waiting, "waiting"),
            (StatusCategory::Resolved, "delivery"),
            (StatusCategory::Closed, "closed"),
        ];
        for (category, expected) in cases {
            assert_eq!(w.map_category(category).key, expected, "{category:?}");
        }
    }

    #[test]
    fn rename_keeps_key_and_rejects_duplicates() {
        let w = Workflow::default_workflow();
        let next = w.update_status("triage", Some("Inbox"), None, None).unwrap();
        assert_eq!(next.status("triage").unwrap().name, "Inbox");
        assert_eq!(
            w.update_status("triage", Some("execution"), None, None).unwrap_err().field,
            "statuses[1].name"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(String, StatusCategory, Option<usize>),
        Rename(usize, String),
        Recategorise(usize, StatusCategory),
        Move(usize, usize),
        Remove(usize, usize),
        Restrict(Vec<(usize, usize)>),
    }

    fn category() -> impl Strategy<Value = StatusCategory> {
        proptest::sample::select(StatusCategory::ALL.to_vec())
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            ("[A-Za-z ]{0,12}", category(), proptest::option::of(0usize..8))
                .prop_map(|(n, c, p)| Op::Add(n, c, p)),
            (0usize..8, "[A-Za-z ]{0,12}").prop_map(|(i, n)| Op::Rename(i, n)),
            (0usize..8, category()).prop_map(|(i, c)| Op::Recategorise(i, c)),
            (0usize..8, 0usize..8).prop_map(|(i, p)| Op::Move(i, p)),
            (0usize..8, 0usize..8).prop_map(|(i, r)| Op::Remove(i, r)),
            proptest::collection::vec((0usize..8, 0usize..8), 0..6).prop_map(Op::Restrict),
        ]
    }

    proptest! {
        /// Whatever sequence of edits an admin makes, each edit either fails with a reason and
        /// leaves the workflow as it was, or yields a workflow that validates, and statuses that
        /// survive keep their keys.
        #[test]
        fn edits_keep_workflows_valid(ops in proptest::collection::vec(op(), 1..30)) {
            let mut w = Workflow::default_workflow();
            for op in ops {
                let key = |i: usize| w.statuses[i % w.statuses.len()].key.clone();
                let result = match &op {
                    Op::Add(n, c, p) => w.add_status(n, *c, *p).map(|(next, key)| {
                        assert!(next.status(&key).is_some());
                        next
                    }),
                    Op::Rename(i, n) => w.update_status(&key(*i), Some(n), None, None),
                    Op::Recategorise(i, c) => w.update_status(&key(*i), None, Some(*c), None),
                    Op::Move(i, p) => w.move_status(&key(*i), *p),
                    Op::Remove(i, r) => w.remove_status(&key(*i), &key(*r)),
                    Op::Restrict(pairs) => w.set_transitions(Some(
                        pairs.iter().map(|(a, b)| Transition { from: key(*a), to: key(*b) }).collect(),
                    )),
                };
                match result {
                    Ok(next) => {
                        prop_assert!(next.validate().is_ok(), "{:?} produced an invalid workflow", op);
                        if let Op::Remove(i, _) = &op {
                            prop_assert!(next.status(&key(*i)).is_none());
                            prop_assert_eq!(next.statuses.len() + 1, w.statuses.len());
                        }
                        w = next;
                    }
                    Err(e) => prop_assert!(!e.reason.is_empty()),
                }
            }
        }

        /// Moving between workflows by category always lands on an existing status, and on one
        /// of the same category whenever the target has it.
        #[test]
        fn category_mapping_lands_on_a_status(c in category(), remove in proptest::collection::vec(0usize..5, 0..4)) {
            let mut w = Workflow::default_workflow();
            for i in remove {
                let keys: Vec<_> = w.statuses.iter().map(|s| s.key.clone()).collect();
                if keys.len() > 1 {
                    let victim = &keys[i % keys.len()];
                    let target = keys.iter().find(|k| *k != victim).unwrap();
                    if let Ok(next) = w.remove_status(victim, target) { w = next; }
                }
            }
            let mapped = w.map_category(c);
            prop_assert!(w.status(&mapped.key).is_some());
            if w.statuses.iter().any(|s| s.category == c) {
                prop_assert_eq!(mapped.category, c);
            }
        }
    }
}
