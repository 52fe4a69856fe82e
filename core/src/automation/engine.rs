//! Runs rules on a change set: matching rules' actions become further writes, events and jobs of
//! the same change set, evaluated again up to a depth bound and within the firing budgets.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value, json};

use super::eval::{Facts, Regexes, TemplateData, holds, in_scope, render, trigger_matches, who};
use super::{
    AUTOMATION_DELIVER_JOB, Action, AssignTo, AutomationLimits, AutomationRun, AutomationState,
    PLUGIN_ACTION_JOB, Rule, RunOutcome,
};
use crate::change::{ChangeSet, NewJob, Record, Write};
use crate::commands::move_to_status;
use crate::conversation::{Message, Visibility, text_to_html};
use crate::desk::Env;
use crate::diff::diff;
use crate::event::{EventData, NewEvent};
use crate::fields::validate_value;
use crate::hierarchy::{Folder, Project};
use crate::ids::{
    AutomationRunId, FolderId, ItemId, ItemTypeId, MessageId, ProjectId, RuleId, TeamId, UserId,
};
use crate::item::{ActorRef, Assignee, Item, ItemType};
use crate::mail::{MAIL_SEND_JOB, MailJob};
use crate::people::{Notification, NotificationKind, Team, User};

/// What the rules may read: loaded by [`load_world`](super::load_world) before evaluation.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Enabled rules, in position order.
    pub rules: Vec<Rule>,
    pub item_types: HashMap<ItemTypeId, ItemType>,
    pub users: HashMap<UserId, User>,
    pub teams: HashMap<TeamId, Team>,
    pub projects: HashMap<ProjectId, Project>,
    pub folders: HashMap<FolderId, Folder>,
    /// Open items assigned to each member of a team a "least open items" rule uses.
    pub open_items: HashMap<UserId, u64>,
    /// Stored items the change set's events name but does not write.
    pub items: HashMap<ItemId, Item>,
    pub state: Option<AutomationState>,
    pub regexes: Regexes,
}

/// A rule that fired, or would fire (dry run), and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    pub rule: RuleId,
    pub rule_name: String,
    pub item: ItemId,
    pub outcome: RunOutcome,
    pub reason: String,
    pub changes: Vec<String>,
    pub depth: u32,
}

/// The newest state of an item within a change set: its last `Put`, else the stored copy.
fn current(changes: &ChangeSet, world: &World, id: ItemId) -> Option<Item> {
    changes
        .writes
        .iter()
        .rev()
        .find_map(|w| match w {
            Write::Put { record: Record::Item(i), .. } if i.id == id => Some(i.clone()),
            _ => None,
        })
        .or_else(|| world.items.get(&id).cloned())
}

/// Writes an item back: into the change set's existing `Put` of it, or as a new update of the
/// stored copy.
fn put_item(changes: &mut ChangeSet, world: &World, mut item: Item, env: &Env<'_>) {
    item.updated_at = env.now;
    for w in changes.writes.iter_mut() {
        if let Write::Put { record: Record::Item(existing), .. } = w
            && existing.id == item.id
        {
            item.version = existing.version;
            *existing = item;
            return;
        }
    }
    if let Some(stored) = world.items.get(&item.id) {
        item.version = stored.version + 1;
        changes.update(Record::Item(item), stored.version);
    }
}

fn message_in(changes: &ChangeSet, id: MessageId) -> Option<&Message> {
    changes.writes.iter().find_map(|w| match w {
        Write::Put { record: Record::Message(m), .. } if m.id == id => Some(m),
        _ => None,
    })
}

fn user_name(world: &World, id: UserId) -> String {
    world.users.get(&id).map_or_else(|| id.to_string(), |u| u.name.clone())
}

fn assignee_name(world: &World, a: &Assignee) -> String {
    match a {
        Assignee::User(u) => user_name(world, *u),
        Assignee::Team(t) => world.teams.get(t).map_or_else(|| t.to_string(), |t| format!("team {}", t.name)),
    }
}

/// Evaluates rules on a change set. One engine per decision.
#[derive(Debug)]
pub struct Engine<'a> {
    world: &'a World,
    env: &'a Env<'a>,
    limits: AutomationLimits,
    state: AutomationState,
    state_dirty: bool,
    /// The depth of each event of the change set (0: the command's own).
    depths: Vec<u32>,
    runs: Vec<AutomationRun>,
    /// Dry run: no counters, no run log.
    dry: bool,
}

impl<'a> Engine<'a> {
    pub fn new(world: &'a World, env: &'a Env<'a>, limits: AutomationLimits, changes: &ChangeSet) -> Self {
        let mut state =
            world.state.clone().unwrap_or_else(|| AutomationState::new(changes.workspace_id, env.now));
        // A new window is only written with the firing that opens it: evaluating rules that do
        // not fire writes nothing.
        if env.now >= state.window_start + chrono::Duration::seconds(limits.window_secs) {
            state.window_start = env.now;
            state.workspace_firings = 0;
            state.item_firings.clear();
        }
        Self {
            world,
            env,
            limits,
            state,
            state_dirty: false,
            depths: vec![0; changes.events.len()],
            runs: Vec::new(),
            dry: false,
        }
    }

    /// Runs the rules on every event of the change set, and on the events their actions add.
    pub fn run(mut self, changes: &mut ChangeSet) -> Vec<AutomationRun> {
        self.process(changes, 0);
        self.finish(changes)
    }

    /// Fires a time-based rule on an item (the scheduler found it due), then the rules its
    /// actions set off.
    pub fn run_timed(
        mut self,
        changes: &mut ChangeSet,
        rule: &Rule,
        item: ItemId,
        reason: String,
        occurrence: String,
    ) -> Vec<AutomationRun> {
        let start = changes.events.len();
        self.fire(changes, rule, item, 0, reason, Some(occurrence));
        self.process(changes, start);
        self.finish(changes)
    }

    fn process(&mut self, changes: &mut ChangeSet, mut i: usize) {
        let world = self.world;
        while i < changes.events.len() {
            let depth = self.depths.get(i).copied().unwrap_or(0);
            let NewEvent { item, data } = changes.events[i].clone();
            i += 1;
            let Some(item_id) = item else { continue };
            if world.rules.is_empty() {
                continue;
            }
            let Some(item) = current(changes, world, item_id) else { continue };
            let message = match &data {
                EventData::MessagePosted { message, .. } => message_in(changes, *message).cloned(),
                _ => None,
            };
            let actor = message.as_ref().map_or(changes.actor, |m| m.author);
            let author = match actor {
                ActorRef::User(u) => world.users.get(&u),
                _ => None,
            };
            let facts = Facts {
                item: &item,
                item_type: world.item_types.get(&item.item_type),
                requester: item.requester.and_then(|r| world.users.get(&r)),
                message: message.as_ref(),
                now: self.env.now,
            };
            let mut stopped_here = Vec::new();
            for rule in &world.rules {
                if rule.trigger.is_timed()
                    || !trigger_matches(&rule.trigger, &data, &item, actor, author, message.as_ref())
                    || !in_scope(rule, &item)
                    || !holds(&rule.conditions, &facts, &world.regexes)
                {
                    continue;
                }
                let by = match &data {
                    EventData::MessagePosted { .. }
                    | EventData::AttachmentAdded { .. }
                    | EventData::ItemCreated { .. } => {
                        format!(" by {}", describe_by(who(actor, &item, author)))
                    }
                    _ => String::new(),
                };
                let reason = format!("{}{by}; conditions held", data.name());
                if stopped_here.contains(&rule.id) {
                    continue;
                }
                if !self.fire(changes, rule, item_id, depth, reason, None) {
                    stopped_here.push(rule.id);
                }
            }
        }
    }

    fn stop(&mut self, rule: &Rule, item: ItemId, depth: u32, reason: String, occurrence: Option<String>) {
        if self.dry {
            return;
        }
        // One stop entry per rule and item in a change set says enough.
        if self.runs.iter().any(|r| r.rule == rule.id && r.item == item && r.outcome == RunOutcome::Stopped) {
            return;
        }
        self.runs.push(AutomationRun {
            id: self.env.new_id(),
            workspace_id: rule.workspace_id,
            rule: rule.id,
            rule_name: rule.name.clone(),
            item,
            at: self.env.now,
            outcome: RunOutcome::Stopped,
            reason,
            depth,
            changes: Vec::new(),
            occurrence,
            version: 1,
        });
    }

    /// Fires one rule on one item unless a bound says no; returns whether it fired.
    fn fire(
        &mut self,
        changes: &mut ChangeSet,
        rule: &Rule,
        item: ItemId,
        depth: u32,
        reason: String,
        occurrence: Option<String>,
    ) -> bool {
        let l = self.limits;
        if !self.dry {
            if depth as usize >= l.max_depth {
                self.stop(
                    rule,
                    item,
                    depth,
                    format!(
                        "stopped: rules set off rules {depth} levels deep (at most {}); a loop? ({reason})",
                        l.max_depth
                    ),
                    occurrence,
                );
                return false;
            }
            let on_item = self.state.item_firings.get(&item).copied().unwrap_or(0);
            if on_item >= l.per_item {
                let reason = format!(
                    "stopped: {on_item} firings on this item within {} min (at most {}); a loop? ({reason})",
                    l.window_secs / 60,
                    l.per_item
                );
                self.stop(rule, item, depth, reason, occurrence);
                return false;
            }
            if self.state.workspace_firings >= l.per_workspace {
                let reason = format!(
                    "stopped: {} firings in this workspace within {} min (at most {}) ({reason})",
                    self.state.workspace_firings,
                    l.window_secs / 60,
                    l.per_workspace
                );
                self.stop(rule, item, depth, reason, occurrence);
                return false;
            }
            *self.state.item_firings.entry(item).or_insert(0) += 1;
            self.state.workspace_firings += 1;
            self.state_dirty = true;
        }
        let run_id: AutomationRunId = self.env.new_id();
        let before = changes.events.len();
        self.depths.resize(before, 0);
        let summary = self.apply(changes, rule, item, run_id);
        self.depths.resize(changes.events.len(), depth + 1);
        self.runs.push(AutomationRun {
            id: run_id,
            workspace_id: rule.workspace_id,
            rule: rule.id,
            rule_name: rule.name.clone(),
            item,
            at: self.env.now,
            outcome: RunOutcome::Fired,
            reason,
            depth,
            changes: summary,
            occurrence,
            version: 1,
        });
        true
    }

    /// Applies a rule's actions to an item, in order; returns one line per change.
    fn apply(
        &mut self,
        changes: &mut ChangeSet,
        rule: &Rule,
        item_id: ItemId,
        run: AutomationRunId,
    ) -> Vec<String> {
        let world = self.world;
        let env = self.env;
        let Some(before) = current(changes, world, item_id) else { return vec![] };
        let mut item = before.clone();
        let mut out = Vec::new();
        for (index, action) in rule.actions.iter().enumerate() {
            let t = world.item_types.get(&item.item_type);
            match action {
                Action::SetField { field, value } => {
                    let Some(def) = t.and_then(|t| t.field(field)) else {
                        out.push(format!("skipped set_field: the item's type has no field '{field}'"));
                        continue;
                    };
                    let value = if value.is_null() { Ok(Value::Null) } else { validate_value(def, value) };
                    match value {
                        Ok(Value::Null) => {
                            if item.custom.remove(field).is_some() {
                                out.push(format!("custom.{field} cleared"));
                            }
                        }
                        Ok(v) => {
                            if item.custom.get(field) != Some(&v) {
                                out.push(format!("custom.{field} = {v}"));
                                item.custom.insert(field.clone(), v);
                            }
                        }
                        Err(e) => out.push(format!("skipped set_field: {}", e.reason)),
                    }
                }
                Action::SetPriority { priority } => {
                    if item.priority != *priority {
                        item.priority = *priority;
                        out.push(format!("priority = {}", priority.as_str()));
                    }
                }
                Action::SetStatus { status } => {
                    let Some(t) = t else { continue };
                    if item.status == *status {
                        continue;
                    }
                    match t.workflow.can_transition(&item.status, status) {
                        Ok(()) => {
                            move_to_status(changes, &mut item, &t.workflow, status, env);
                            out.push(format!("status = {status}"));
                        }
                        Err(e) => out.push(format!("skipped set_status: {}", e.reason)),
                    }
                }
                Action::Assign { to } => match self.pick_assignee(rule, index, to) {
                    Some(a) => {
                        let next = vec![a];
                        if item.assignees != next {
                            let added =
                                next.iter().filter(|x| !item.assignees.contains(x)).copied().collect();
                            let removed =
                                item.assignees.iter().filter(|x| !next.contains(x)).copied().collect();
                            changes.event(Some(item.id), EventData::AssigneesChanged { added, removed });
                            out.push(format!("assigned to {}", assignee_name(world, &a)));
                            item.assignees = next;
                        }
                    }
                    None => out.push("skipped assign: nobody active to assign".to_string()),
                },
                Action::AddFollowers { users, assignees } => {
                    let mut wanted: Vec<UserId> = users.clone();
                    if *assignees {
                        wanted.extend(item.assigned_users());
                    }
                    let added: Vec<UserId> = wanted
                        .into_iter()
                        .filter(|u| world.users.get(u).is_some_and(|u| u.active))
                        .fold(Vec::new(), |mut acc, u| {
                            if !item.followers.contains(&u) && !acc.contains(&u) {
                                acc.push(u);
                            }
                            acc
                        });
                    if !added.is_empty() {
                        item.followers.extend(added.iter().copied());
                        let names: Vec<String> = added.iter().map(|u| user_name(world, *u)).collect();
                        out.push(format!("followers + {}", names.join(", ")));
                        changes.event(Some(item.id), EventData::FollowersChanged { added, removed: vec![] });
                    }
                }
                Action::RemoveFollowers { users } => {
                    let removed: Vec<UserId> =
                        item.followers.iter().filter(|f| users.contains(f)).copied().collect();
                    if !removed.is_empty() {
                        item.followers.retain(|f| !users.contains(f));
                        let names: Vec<String> = removed.iter().map(|u| user_name(world, *u)).collect();
                        out.push(format!("followers − {}", names.join(", ")));
                        changes.event(Some(item.id), EventData::FollowersChanged { added: vec![], removed });
                    }
                }
                Action::MoveTo { project, folder } => {
                    let Some(p) = world.projects.get(project).filter(|p| !p.archived) else {
                        out.push(format!("skipped move_to: project {project} is missing or archived"));
                        continue;
                    };
                    let folder = match folder {
                        Some(f) => match world.folders.get(f).filter(|f| f.project == p.id) {
                            Some(f) => Some(f.id),
                            None => {
                                out.push(format!(
                                    "skipped move_to: folder {f} is not in project '{}'",
                                    p.name
                                ));
                                continue;
                            }
                        },
                        None => None,
                    };
                    if item.project != Some(p.id) || item.folder != folder {
                        item.project = Some(p.id);
                        item.folder = folder;
                        out.push(format!("moved to project '{}'", p.name));
                    }
                }
                Action::Reply { visibility, template } => {
                    if item.number == 0 {
                        self.defer(changes, rule, &item, run, index, action);
                        out.push(format!(
                            "{} reply queued for after the commit",
                            visibility_name(*visibility)
                        ));
                    } else {
                        let text = self.render(rule, &item, changes, template);
                        post_reply(changes, &item, *visibility, text, env);
                        out.push(format!("{} reply posted", visibility_name(*visibility)));
                    }
                }
                Action::Notify { .. } => {
                    if item.number == 0 {
                        self.defer(changes, rule, &item, run, index, action);
                        out.push("notification queued for after the commit".to_string());
                    } else {
                        let text = match action {
                            Action::Notify { template, .. } => self.render(rule, &item, changes, template),
                            _ => String::new(),
                        };
                        let names = notify(changes, world, rule, &item, action, &text, run, env);
                        out.push(format!("notified {}", names.join(", ")));
                    }
                }
                Action::ConvertTo { item_type } => {
                    let (Some(from), Some(to)) = (t, world.item_types.get(item_type)) else {
                        out.push(format!("skipped convert_to: no item type {item_type}"));
                        continue;
                    };
                    if from.id == to.id {
                        continue;
                    }
                    let target = to.workflow.map_category(item.category);
                    changes.event(
                        Some(item.id),
                        EventData::ItemConverted {
                            from_type: from.id,
                            to_type: to.id,
                            from_kind: from.kind,
                            to_kind: to.kind,
                            from_status: item.status.clone(),
                            to_status: target.key.clone(),
                        },
                    );
                    item.item_type = to.id;
                    item.kind = to.kind;
                    item.status = target.key.clone();
                    item.category = target.category;
                    item.done_at =
                        if target.category.is_done() { item.done_at.or(Some(env.now)) } else { None };
                    out.push(format!("converted to '{}'", to.name));
                }
                Action::RunPlugin { plugin, action: name, input } => {
                    let input = fill_strings(input, &mut |t| self.render(rule, &item, changes, t));
                    changes.job(NewJob {
                        id: env.new_id(),
                        kind: PLUGIN_ACTION_JOB.to_string(),
                        payload: json!({
                            "plugin": plugin, "action": name, "input": input,
                            "item": item.id, "rule": rule.id, "run": run,
                        }),
                        idempotency_key: format!("automation:{run}:{index}"),
                        run_at: env.now,
                        max_attempts: 10,
                    });
                    out.push(format!("plugin action {plugin}/{name} queued"));
                }
            }
        }
        if item != before {
            let mut field_changes = diff(&before, &item);
            field_changes.retain(|c| {
                !matches!(
                    c.field.as_str(),
                    "status" | "category" | "done_at" | "assignees" | "followers" | "item_type" | "kind"
                )
            });
            if !field_changes.is_empty() {
                changes.event(Some(item.id), EventData::ItemUpdated { changes: field_changes });
            }
            put_item(changes, world, item, env);
        }
        out
    }

    fn render(&self, rule: &Rule, item: &Item, changes: &ChangeSet, template: &str) -> String {
        render_template(self.world, &rule.name, item, changes, template)
    }

    fn defer(
        &self,
        changes: &mut ChangeSet,
        rule: &Rule,
        item: &Item,
        run: AutomationRunId,
        index: usize,
        action: &Action,
    ) {
        changes.job(NewJob {
            id: self.env.new_id(),
            kind: AUTOMATION_DELIVER_JOB.to_string(),
            payload: json!({ "rule": rule.id, "rule_name": rule.name, "item": item.id, "run": run, "action": action }),
            idempotency_key: format!("automation:{run}:{index}"),
            run_at: self.env.now,
            max_attempts: 10,
        });
    }

    fn pick_assignee(&mut self, rule: &Rule, index: usize, to: &AssignTo) -> Option<Assignee> {
        let world = self.world;
        let members = |team: &TeamId| -> Vec<UserId> {
            world.teams.get(team).map_or_else(Vec::new, |t| {
                t.members
                    .iter()
                    .filter(|m| world.users.get(m).is_some_and(|u| u.active && u.role.is_staff()))
                    .copied()
                    .collect()
            })
        };
        match to {
            AssignTo::User { user } => {
                world.users.get(user).filter(|u| u.active && u.role.is_staff()).map(|u| Assignee::User(u.id))
            }
            AssignTo::Team { team } => world.teams.get(team).map(|t| Assignee::Team(t.id)),
            AssignTo::RoundRobin { team } => {
                let members = members(team);
                if members.is_empty() {
                    return None;
                }
                let key = format!("{}:{index}", rule.id);
                let turn = self.state.round_robin.get(&key).copied().unwrap_or(0);
                if !self.dry {
                    self.state.round_robin.insert(key, turn + 1);
                    self.state_dirty = true;
                }
                let pick = usize::try_from(turn % members.len() as u64).unwrap_or(0);
                Some(Assignee::User(members[pick]))
            }
            AssignTo::LeastOpen { team } => members(team)
                .into_iter()
                .enumerate()
                .min_by_key(|(i, m)| (world.open_items.get(m).copied().unwrap_or(0), *i))
                .map(|(_, m)| Assignee::User(m)),
        }
    }

    /// Adds the run log and the bookkeeping to the change set.
    fn finish(self, changes: &mut ChangeSet) -> Vec<AutomationRun> {
        if self.dry {
            return self.runs;
        }
        for run in &self.runs {
            changes.insert(Record::AutomationRun(run.clone()));
        }
        if self.state_dirty {
            let stored = self.world.state.as_ref().map(|s| s.version);
            let mut state = self.state;
            match stored {
                Some(v) => {
                    state.version = v + 1;
                    changes.update(Record::AutomationState(state), v);
                }
                None => {
                    state.version = 1;
                    changes.insert(Record::AutomationState(state));
                }
            }
        }
        self.runs
    }
}

fn describe_by(by: super::By) -> &'static str {
    match by {
        super::By::Anyone => "anyone",
        super::By::Requester => "the requester",
        super::By::Agent => "an agent",
        super::By::Customer => "a customer",
        super::By::Automation => "an automation",
    }
}

fn visibility_name(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Internal => "internal",
    }
}

/// Posts a message as Tandem itself.
pub(crate) fn post_reply(
    changes: &mut ChangeSet,
    item: &Item,
    visibility: Visibility,
    text: String,
    env: &Env<'_>,
) {
    let message = Message {
        id: env.new_id(),
        workspace_id: item.workspace_id,
        item: item.id,
        author: ActorRef::System,
        visibility,
        channel: crate::item::Channel::System,
        html: text_to_html(&text),
        text,
        attachments: Vec::new(),
        mentions: Vec::new(),
        email: None,
        created_at: env.now,
        version: 1,
    };
    changes.event(
        Some(item.id),
        EventData::MessagePosted {
            message: message.id,
            visibility,
            channel: message.channel,
            mentions: Vec::new(),
        },
    );
    changes.insert(Record::Message(message));
}

/// The recipients of a notify action: named users, the requester, assigned users.
fn recipients(world: &World, item: &Item, action: &Action) -> Vec<UserId> {
    let Action::Notify { users, requester, assignees, .. } = action else { return vec![] };
    let mut out: Vec<UserId> = users.clone();
    if *requester {
        out.extend(item.requester);
    }
    if *assignees {
        out.extend(item.assigned_users());
    }
    let mut seen = Vec::new();
    out.retain(|u| {
        world.users.get(u).is_some_and(|u| u.active) && !seen.contains(u) && {
            seen.push(*u);
            true
        }
    });
    out
}

/// An in-app notification per recipient and a `mail.send` job for each with a working address.
#[allow(clippy::too_many_arguments)]
pub(crate) fn notify(
    changes: &mut ChangeSet,
    world: &World,
    rule: &Rule,
    item: &Item,
    action: &Action,
    text: &str,
    run: AutomationRunId,
    env: &Env<'_>,
) -> Vec<String> {
    let mut names = Vec::new();
    for user in recipients(world, item, action) {
        let Some(u) = world.users.get(&user) else { continue };
        names.push(u.name.clone());
        changes.insert(Record::Notification(Notification {
            id: env.new_id(),
            workspace_id: item.workspace_id,
            user,
            item: item.id,
            kind: NotificationKind::Automation { rule: rule.id, text: text.to_string() },
            created_at: env.now,
            read_at: None,
            version: 1,
        }));
        if let Some(email) = u.email.as_ref().filter(|_| u.email_bounce.is_none()) {
            let mut vars = BTreeMap::new();
            // Mail placeholders (`mail::TEMPLATE_VARS`); the sender adds title, number and url.
            vars.insert("body".to_string(), text.to_string());
            vars.insert("event".to_string(), rule.name.clone());
            let mail = MailJob {
                template: "automation_notify".into(),
                to: email.clone(),
                to_name: Some(u.name.clone()),
                item: Some(item.id),
                vars,
                automatic: true,
                attachments: Vec::new(),
                html_appendix: None,
            };
            changes.job(NewJob {
                id: env.new_id(),
                kind: MAIL_SEND_JOB.to_string(),
                payload: serde_json::to_value(&mail).unwrap_or(Value::Null),
                idempotency_key: format!("automation:{run}:notify:{user}"),
                run_at: env.now,
                max_attempts: 8,
            });
        }
    }
    names
}

/// Which rules would fire on an item now and what they would change, without writing anything.
/// Triggers are not checked (there is no event); scope and conditions are, against the item as
/// stored. Each rule is tried on its own, so the changes do not cascade.
pub fn dry_run(world: &World, item: &Item, rules: &[Rule], env: &Env<'_>) -> Vec<Firing> {
    let mut world = world.clone();
    world.items.insert(item.id, item.clone());
    let facts = Facts {
        item,
        item_type: world.item_types.get(&item.item_type),
        requester: item.requester.and_then(|r| world.users.get(&r)),
        message: None,
        now: env.now,
    };
    let mut out = Vec::new();
    for rule in rules {
        let (fires, reason) = if !rule.enabled {
            (false, "the rule is disabled".to_string())
        } else if !in_scope(rule, item) {
            (false, "the item is outside the rule's item types or projects".to_string())
        } else if !holds(&rule.conditions, &facts, &world.regexes) {
            (false, "the conditions do not hold".to_string())
        } else {
            (true, format!("conditions hold; fires on {}", rule.trigger.name()))
        };
        let mut changes_summary = Vec::new();
        if fires {
            let mut scratch = ChangeSet::new(item.workspace_id, ActorRef::System, env.now);
            let mut engine = Engine::new(&world, env, AutomationLimits::default(), &scratch);
            engine.dry = true;
            changes_summary = engine.apply(&mut scratch, rule, item.id, env.new_id());
        }
        out.push(Firing {
            rule: rule.id,
            rule_name: rule.name.clone(),
            item: item.id,
            outcome: if fires { RunOutcome::Fired } else { RunOutcome::Stopped },
            reason,
            changes: changes_summary,
            depth: 0,
        });
    }
    out
}

/// Every string in a JSON value, filled as a template; numbers, booleans and the shape stay.
fn fill_strings(value: &Value, fill: &mut dyn FnMut(&str) -> String) -> Value {
    match value {
        Value::String(t) if t.contains("{{") => Value::String(fill(t)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_strings(v, fill)).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), fill_strings(v, fill))).collect())
        }
        other => other.clone(),
    }
}

/// Fills a template for an item: the newest message of the change set on the item is
/// `{{message.text}}`.
pub(crate) fn render_template(
    world: &World,
    rule: &str,
    item: &Item,
    changes: &ChangeSet,
    template: &str,
) -> String {
    let message = changes.writes.iter().rev().find_map(|w| match w {
        Write::Put { record: Record::Message(m), .. } if m.item == item.id => Some(m),
        _ => None,
    });
    render(
        template,
        &TemplateData {
            item,
            item_type: world.item_types.get(&item.item_type),
            requester: item.requester.and_then(|r| world.users.get(&r)),
            assignee: item.assigned_users().next().and_then(|u| world.users.get(&u)),
            message,
            rule,
        },
    )
}
