//! Automation rules: create, change, reorder, delete; fire a time-based rule; deliver a deferred
//! reply or notification; and the read side (list, run log, dry run, due time-based firings).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{Action as Act, Actor, ActorKind, Target, can};
use crate::automation::eval::{Facts, holds, in_scope};
use crate::automation::{self, Action, AutomationRun, Condition, Engine, Firing, Rule, RuleRefs, Trigger};
use crate::change::{ChangeSet, Record, RecordKind};
use crate::desk::{Command, Decided, Desk, Env, ItemRef, load, load_item};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::fields::FieldKind;
use crate::hierarchy::{Folder, Project};
use crate::ids::{AutomationRunId, ItemId, ItemTypeId, ProjectId, RuleId, SequentialIds, TeamId, UserId};
use crate::item::{Item, ItemType};
use crate::people::{Team, User};
use crate::store::{self, EventQuery, ItemFilter, ItemQuery, ItemScope, RecordQuery, SortKey, Store};
use crate::workflow::StatusCategory;

fn yes() -> bool {
    true
}

/// A new rule, as the API takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where it runs among the workspace's rules; after the last one when absent.
    #[serde(default)]
    pub position: Option<i64>,
    #[serde(default)]
    pub item_types: Vec<ItemTypeId>,
    #[serde(default)]
    pub projects: Vec<ProjectId>,
    pub trigger: Trigger,
    #[serde(default)]
    pub conditions: Condition,
    pub actions: Vec<Action>,
}

/// Changes to a rule; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub item_types: Option<Vec<ItemTypeId>>,
    #[serde(default)]
    pub projects: Option<Vec<ProjectId>>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub conditions: Option<Condition>,
    #[serde(default)]
    pub actions: Option<Vec<Action>>,
    /// The version the client last read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i64>,
}

fn check_manage(actor: &Actor) -> Result<(), DeskError> {
    can(actor, Act::ManageStructure, Target::Workspace).into_result()
}

/// Loads what a rule refers to, so `validate_rule` can check it without the store.
async fn load_refs(store: &dyn Store, actor: &Actor, rule: &Rule) -> Result<RuleRefs, DeskError> {
    let ws = actor.workspace_id;
    let mut refs = RuleRefs {
        item_types: store::list::<ItemType>(store, ws, &RecordQuery::all()).await?,
        ..Default::default()
    };
    let mut users: BTreeSet<UserId> = BTreeSet::new();
    let mut teams: BTreeSet<TeamId> = BTreeSet::new();
    let mut projects: BTreeSet<ProjectId> = rule.projects.iter().copied().collect();
    let mut folders = BTreeSet::new();
    for a in &rule.actions {
        match a {
            Action::Assign { to } => match to {
                automation::AssignTo::User { user } => {
                    users.insert(*user);
                }
                automation::AssignTo::Team { team }
                | automation::AssignTo::RoundRobin { team }
                | automation::AssignTo::LeastOpen { team } => {
                    teams.insert(*team);
                }
            },
            Action::AddFollowers { users: u, .. }
            | Action::RemoveFollowers { users: u }
            | Action::Notify { users: u, .. } => users.extend(u.iter().copied()),
            Action::MoveTo { project, folder } => {
                projects.insert(*project);
                folders.extend(*folder);
            }
            _ => {}
        }
    }
    for u in users {
        if let Some(u) = store::get::<User>(store, ws, u.0).await? {
            refs.users.insert(u.id, u);
        }
    }
    for t in teams {
        if let Some(t) = store::get::<Team>(store, ws, t.0).await? {
            refs.teams.insert(t.id, t);
        }
    }
    for p in projects {
        if let Some(p) = store::get::<Project>(store, ws, p.0).await? {
            refs.projects.insert(p.id, p);
        }
    }
    for f in folders {
        if let Some(f) = store::get::<Folder>(store, ws, f.0).await? {
            refs.folders.insert(f.id, f);
        }
    }
    Ok(refs)
}

fn draft(actor: &Actor, c: &CreateRule, env: &Env<'_>, position: i64) -> Rule {
    Rule {
        id: env.new_id(),
        workspace_id: actor.workspace_id,
        name: c.name.trim().to_string(),
        enabled: c.enabled,
        position,
        item_types: c.item_types.clone(),
        projects: c.projects.clone(),
        trigger: c.trigger.clone(),
        conditions: c.conditions.clone(),
        actions: c.actions.clone(),
        created_at: env.now,
        updated_at: env.now,
        version: 1,
    }
}

impl Command for CreateRule {
    /// The rules so far and what the new one refers to.
    type State = (Vec<Rule>, RuleRefs);
    type Output = Rule;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let rules = store::list::<Rule>(store, actor.workspace_id, &RecordQuery::all()).await?;
        let ids = SequentialIds::default();
        let env = Env { now: DateTime::<Utc>::MIN_UTC, ids: &ids, limits: &Default::default() };
        let refs = load_refs(store, actor, &draft(actor, self, &env, 0)).await?;
        Ok((rules, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (rules, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Rule>, DeskError> {
        check_manage(actor)?;
        let position =
            self.position.unwrap_or_else(|| rules.iter().map(|r| r.position).max().unwrap_or(0) + 1);
        let rule = draft(actor, self, env, position);
        automation::validate_rule(&rule, &refs)?;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::AutomationRule,
                id: rule.id.0,
                name: rule.name.clone(),
            },
        );
        changes.insert(Record::AutomationRule(rule.clone()));
        Ok(Decided { changes, output: rule })
    }
}

fn check_version(rule: &Rule, expected: Option<i64>) -> Result<(), DeskError> {
    match expected {
        Some(v) if v != rule.version => Err(DeskError::Conflict(format!(
            "rule '{}' is at version {}, not {v}; reload it and try again",
            rule.name, rule.version
        ))),
        _ => Ok(()),
    }
}

fn save_rule(changes: &mut ChangeSet, old: &Rule, next: Rule) {
    let field_changes = diff(old, &next);
    if !field_changes.is_empty() {
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::AutomationRule,
                id: old.id.0,
                changes: field_changes,
            },
        );
    }
    changes.update(Record::AutomationRule(next), old.version);
}

#[derive(Debug, Clone)]
pub struct UpdateRule {
    pub id: RuleId,
    pub patch: RulePatch,
}

impl UpdateRule {
    fn apply(&self, old: &Rule, env: &Env<'_>) -> Rule {
        let p = &self.patch;
        let mut next = Rule { updated_at: env.now, version: old.version + 1, ..old.clone() };
        if let Some(n) = &p.name {
            next.name = n.trim().to_string();
        }
        if let Some(e) = p.enabled {
            next.enabled = e;
        }
        if let Some(t) = &p.item_types {
            next.item_types = t.clone();
        }
        if let Some(pr) = &p.projects {
            next.projects = pr.clone();
        }
        if let Some(t) = &p.trigger {
            next.trigger = t.clone();
        }
        if let Some(c) = &p.conditions {
            next.conditions = c.clone();
        }
        if let Some(a) = &p.actions {
            next.actions = a.clone();
        }
        next
    }
}

impl Command for UpdateRule {
    type State = (Rule, RuleRefs);
    type Output = Rule;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let old = load::<Rule>(store, actor.workspace_id, self.id).await?;
        let ids = SequentialIds::default();
        let env = Env { now: old.updated_at, ids: &ids, limits: &Default::default() };
        let refs = load_refs(store, actor, &self.apply(&old, &env)).await?;
        Ok((old, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Rule>, DeskError> {
        check_manage(actor)?;
        check_version(&old, self.patch.version)?;
        let next = self.apply(&old, env);
        automation::validate_rule(&next, &refs)?;
        let mut changes = env.changes(actor);
        save_rule(&mut changes, &old, next.clone());
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct DeleteRule {
    pub id: RuleId,
}

impl Command for DeleteRule {
    type State = Rule;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Rule, DeskError> {
        load::<Rule>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, rule: Rule, env: &Env<'_>) -> Result<Decided<()>, DeskError> {
        check_manage(actor)?;
        let mut changes = env.changes(actor);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::AutomationRule, id: rule.id.0 });
        changes.delete(RecordKind::AutomationRule, rule.id.0, rule.version);
        Ok(Decided { changes, output: () })
    }
}

/// Puts the named rules first, in this order; the others keep their order after them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReorderRules {
    pub order: Vec<RuleId>,
}

impl Command for ReorderRules {
    type State = Vec<Rule>;
    type Output = Vec<Rule>;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Vec<Rule>, DeskError> {
        Ok(store::list::<Rule>(store, actor.workspace_id, &RecordQuery::all()).await?)
    }

    fn decide(
        &self,
        actor: &Actor,
        mut rules: Vec<Rule>,
        env: &Env<'_>,
    ) -> Result<Decided<Vec<Rule>>, DeskError> {
        check_manage(actor)?;
        for (i, id) in self.order.iter().enumerate() {
            if !rules.iter().any(|r| r.id == *id) {
                return Err(Invalid::new(format!("order[{i}]"), format!("no rule {id}")).into());
            }
            if self.order[..i].contains(id) {
                return Err(Invalid::new(format!("order[{i}]"), "named twice").into());
            }
        }
        rules.sort_by_key(|r| (r.position, r.id));
        let rank = |r: &Rule| self.order.iter().position(|id| *id == r.id).unwrap_or(usize::MAX);
        let mut ordered = rules.clone();
        ordered.sort_by_key(|r| rank(r));
        let mut changes = env.changes(actor);
        let mut out = Vec::new();
        for (i, r) in ordered.into_iter().enumerate() {
            let position = i as i64 + 1;
            if r.position == position {
                out.push(r);
                continue;
            }
            let next = Rule { position, updated_at: env.now, version: r.version + 1, ..r.clone() };
            save_rule(&mut changes, &r, next.clone());
            out.push(next);
        }
        Ok(Decided { changes, output: out })
    }
}

/// Fires a time-based rule on an item, once per occurrence (the scheduler's command; Tandem only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireTimedRule {
    pub rule: RuleId,
    pub item: ItemId,
    /// Identifies this occurrence (`idle:<updated_at>`): a rule fires once per rule, item and
    /// occurrence, however often the scheduler finds it due.
    pub occurrence: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct TimedState {
    rule: Rule,
    item: Item,
    runs: Vec<AutomationRun>,
    world: automation::World,
}

#[cfg(test)]
impl TimedState {
    pub(crate) fn for_tests(
        rule: Rule,
        item: Item,
        runs: Vec<AutomationRun>,
        world: automation::World,
    ) -> Self {
        Self { rule, item, runs, world }
    }
}

impl Command for FireTimedRule {
    type State = TimedState;
    /// Whether the rule fired.
    type Output = bool;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<TimedState, DeskError> {
        let ws = actor.workspace_id;
        let rule = load::<Rule>(store, ws, self.rule).await?;
        let item = load_item(store, ws, ItemRef::Id(self.item)).await?;
        let runs = store::list::<AutomationRun>(store, ws, &RecordQuery::children_of(item.id.0)).await?;
        let rules = automation::load::enabled_rules(store, ws).await?;
        let scratch = ChangeSet::new(ws, actor.reference(), item.updated_at);
        let world =
            automation::load::load_world_for(store, ws, rules, &scratch, &BTreeSet::from([item.id])).await?;
        Ok(TimedState { rule, item, runs, world })
    }

    fn decide(&self, actor: &Actor, s: TimedState, env: &Env<'_>) -> Result<Decided<bool>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem's scheduler fires time-based rules".into()));
        }
        let mut changes = env.changes(actor);
        let already =
            s.runs.iter().any(|r| r.rule == s.rule.id && r.occurrence.as_deref() == Some(&self.occurrence));
        let facts = Facts {
            item: &s.item,
            item_type: s.world.item_types.get(&s.item.item_type),
            requester: s.item.requester.and_then(|r| s.world.users.get(&r)),
            message: None,
            now: env.now,
        };
        if already
            || !s.rule.enabled
            || !s.rule.trigger.is_timed()
            || !in_scope(&s.rule, &s.item)
            || !holds(&s.rule.conditions, &facts, &s.world.regexes)
        {
            return Ok(Decided { changes, output: false });
        }
        let runs = Engine::new(&s.world, env, env.limits.automations, &changes).run_timed(
            &mut changes,
            &s.rule,
            s.item.id,
            self.reason.clone(),
            self.occurrence.clone(),
        );
        let fired = runs.iter().any(|r| r.rule == s.rule.id && r.outcome == automation::RunOutcome::Fired);
        Ok(Decided { changes, output: fired })
    }

    fn runs_automations() -> bool {
        false
    }
}

/// The payload of an `automation.deliver` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliverAutomation {
    pub rule: RuleId,
    pub rule_name: String,
    pub item: ItemId,
    pub run: AutomationRunId,
    /// A `reply` or `notify` action.
    pub action: Action,
}

impl Command for DeliverAutomation {
    type State = (Item, automation::World);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let item = load_item(store, ws, ItemRef::Id(self.item)).await?;
        let carrier = Rule {
            id: self.rule,
            workspace_id: ws,
            name: self.rule_name.clone(),
            enabled: true,
            position: 0,
            item_types: vec![],
            projects: vec![],
            trigger: Trigger::ItemCreated,
            conditions: Condition::default(),
            actions: vec![self.action.clone()],
            created_at: item.created_at,
            updated_at: item.created_at,
            version: 1,
        };
        let scratch = ChangeSet::new(ws, actor.reference(), item.updated_at);
        let world =
            automation::load::load_world_for(store, ws, vec![carrier], &scratch, &BTreeSet::from([item.id]))
                .await?;
        Ok((item, world))
    }

    fn decide(
        &self,
        actor: &Actor,
        (item, world): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem delivers automation replies".into()));
        }
        let mut changes = env.changes(actor);
        let Some(rule) = world.rules.first() else { return Ok(Decided { changes, output: () }) };
        match &self.action {
            Action::Reply { visibility, template } => {
                let text = automation::engine::render_template(&world, &rule.name, &item, &changes, template);
                automation::engine::post_reply(&mut changes, &item, *visibility, text, env);
            }
            Action::Notify { template, .. } => {
                let text = automation::engine::render_template(&world, &rule.name, &item, &changes, template);
                automation::engine::notify(
                    &mut changes,
                    &world,
                    rule,
                    &item,
                    &self.action,
                    &text,
                    self.run,
                    env,
                );
            }
            other => {
                return Err(Invalid::new(
                    "action",
                    format!("{} is not delivered after commit", other.name()),
                )
                .into());
            }
        }
        Ok(Decided { changes, output: () })
    }
}

/// What a dry run reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    pub item: ItemId,
    pub number: i64,
    pub rules: Vec<Firing>,
}

/// Filters for the run log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub rule: Option<RuleId>,
    pub item: Option<ItemRef>,
    pub limit: usize,
}

const OPEN: [StatusCategory; 4] =
    [StatusCategory::New, StatusCategory::Open, StatusCategory::InProgress, StatusCategory::Waiting];

/// Most candidate items one rule looks at per scheduler pass.
const TIMED_SCAN: usize = 500;

fn parse_due(value: &serde_json::Value, kind: FieldKind) -> Option<DateTime<Utc>> {
    let s = value.as_str()?;
    match kind {
        FieldKind::Date => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0).map(|d| d.and_utc())
        }
        _ => DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc)),
    }
}

impl Desk {
    /// The workspace's rules in position order.
    pub async fn automation_rules(&self, actor: &Actor) -> Result<Vec<Rule>, DeskError> {
        can(actor, Act::ViewAudit, Target::Workspace).into_result()?;
        let mut rules =
            store::list::<Rule>(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?;
        rules.sort_by_key(|r| (r.position, r.id));
        Ok(rules)
    }

    pub async fn automation_rule(&self, actor: &Actor, id: RuleId) -> Result<Rule, DeskError> {
        can(actor, Act::ViewAudit, Target::Workspace).into_result()?;
        load::<Rule>(self.store().as_ref(), actor.workspace_id, id).await
    }

    /// The run log, newest first.
    pub async fn automation_runs(
        &self,
        actor: &Actor,
        filter: &RunFilter,
    ) -> Result<Vec<AutomationRun>, DeskError> {
        can(actor, Act::ViewAudit, Target::Workspace).into_result()?;
        let store = self.store().as_ref();
        let ws = actor.workspace_id;
        let query = match filter.item {
            Some(item) => RecordQuery::children_of(load_item(store, ws, item).await?.id.0),
            None => RecordQuery::all(),
        };
        let mut runs = store::list::<AutomationRun>(store, ws, &query).await?;
        runs.retain(|r| filter.rule.is_none_or(|rule| r.rule == rule));
        runs.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        runs.truncate(filter.limit.max(1));
        Ok(runs)
    }

    /// Which rules (all, or the one named) would fire on an item now, and what they would change.
    pub async fn automation_dry_run(
        &self,
        actor: &Actor,
        item: ItemRef,
        rule: Option<RuleId>,
    ) -> Result<DryRun, DeskError> {
        can(actor, Act::ViewAudit, Target::Workspace).into_result()?;
        let store = self.store().as_ref();
        let ws = actor.workspace_id;
        let item = load_item(store, ws, item).await?;
        let rules = match rule {
            Some(id) => vec![load::<Rule>(store, ws, id).await?],
            None => self.automation_rules(actor).await?,
        };
        let scratch = ChangeSet::new(ws, actor.reference(), self.now());
        let world =
            automation::load::load_world_for(store, ws, rules.clone(), &scratch, &BTreeSet::from([item.id]))
                .await?;
        let ids = SequentialIds::default();
        let env = Env { now: self.now(), ids: &ids, limits: self.limits() };
        let firings = automation::dry_run(&world, &item, &rules, &env);
        Ok(DryRun { item: item.id, number: item.number, rules: firings })
    }

    /// The time-based firings due in a workspace now, minus those already in the run log.
    pub async fn due_timed_firings(&self, actor: &Actor) -> Result<Vec<FireTimedRule>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem's scheduler looks for due rules".into()));
        }
        let store = self.store().as_ref();
        let ws = actor.workspace_id;
        let now = self.now();
        let rules: Vec<Rule> = automation::load::enabled_rules(store, ws)
            .await?
            .into_iter()
            .filter(|r| r.trigger.is_timed())
            .collect();
        let types = store::list::<ItemType>(store, ws, &RecordQuery::all()).await?;
        let mut out = Vec::new();
        for rule in &rules {
            let mut query = ItemQuery::new(ItemScope::All);
            query.filter = ItemFilter {
                item_types: rule.item_types.clone(),
                categories: OPEN.to_vec(),
                ..Default::default()
            };
            if let [project] = rule.projects.as_slice() {
                query.filter.project = Some(*project);
            }
            query.sort = SortKey::UpdatedAt;
            query.limit = TIMED_SCAN;
            let mut candidates: Vec<(Item, String, String)> = Vec::new();
            match &rule.trigger {
                Trigger::Idle { hours } => {
                    let threshold = now - Duration::hours(i64::from(*hours));
                    for item in store.items(ws, &query).await?.items {
                        if item.updated_at > threshold {
                            break;
                        }
                        let occurrence = format!("idle:{}", item.updated_at.timestamp_millis());
                        candidates.push((item, occurrence, format!("idle for {hours} h")));
                    }
                }
                Trigger::InStatus { status, hours } => {
                    query.filter.categories.clear();
                    query.filter.statuses = vec![status.clone()];
                    let threshold = now - Duration::hours(i64::from(*hours));
                    for item in store.items(ws, &query).await?.items {
                        let entered = entered_status(store, &item).await?;
                        if entered <= threshold {
                            let occurrence = format!("in_status:{status}:{}", entered.timestamp_millis());
                            candidates.push((
                                item,
                                occurrence,
                                format!("in status '{status}' for {hours} h"),
                            ));
                        }
                    }
                }
                Trigger::DueApproaching { field, .. } | Trigger::DuePassed { field } => {
                    let approaching = match &rule.trigger {
                        Trigger::DueApproaching { hours, .. } => Some(Duration::hours(i64::from(*hours))),
                        _ => None,
                    };
                    query.sort = SortKey::Number;
                    for item in store.items(ws, &query).await?.items {
                        let Some(def) =
                            types.iter().find(|t| t.id == item.item_type).and_then(|t| t.field(field))
                        else {
                            continue;
                        };
                        let Some(due) = item.custom.get(field).and_then(|v| parse_due(v, def.kind)) else {
                            continue;
                        };
                        let value = item.custom.get(field).map(|v| v.to_string()).unwrap_or_default();
                        let (fires, kind) = match approaching {
                            Some(window) => (now < due && due <= now + window, "due_approaching"),
                            None => (due <= now, "due_passed"),
                        };
                        if fires {
                            let reason = match approaching {
                                Some(_) => format!("{field} is due at {due}"),
                                None => format!("{field} was due at {due}"),
                            };
                            candidates.push((item, format!("{kind}:{field}:{value}"), reason));
                        }
                    }
                }
                _ => {}
            }
            for (item, occurrence, reason) in candidates {
                let runs =
                    store::list::<AutomationRun>(store, ws, &RecordQuery::children_of(item.id.0)).await?;
                if runs.iter().any(|r| r.rule == rule.id && r.occurrence.as_deref() == Some(&occurrence)) {
                    continue;
                }
                out.push(FireTimedRule { rule: rule.id, item: item.id, occurrence, reason });
            }
        }
        Ok(out)
    }
}

/// When the item entered its current status: its last status change or conversion, else its
/// creation.
async fn entered_status(store: &dyn Store, item: &Item) -> Result<DateTime<Utc>, DeskError> {
    let mut entered = item.created_at;
    let mut after = 0;
    loop {
        let events =
            store.events(item.workspace_id, &EventQuery { after, item: Some(item.id), limit: 500 }).await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        for e in &events {
            if matches!(e.data, EventData::StatusChanged { .. } | EventData::ItemConverted { .. }) {
                entered = e.at;
            }
        }
        if events.len() < 500 {
            break;
        }
    }
    Ok(entered)
}
