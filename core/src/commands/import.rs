//! `ImportItems`: rows from a CSV file or an MS Project document become items of one project.
//!
//! Every row goes through `CreateItem`'s own decision (type, status, people, custom fields,
//! access), plus the planning fields' validation, so an import accepts exactly what the API
//! would. Policy:
//! - A row with a problem is never written, nor is a row whose parent or predecessor is such a
//!   row (its problem says which row it waits for); rows that depend on each other in a loop are
//!   all refused.
//! - By default every valid row is written, in one commit, and the bad ones are reported.
//!   `all_or_nothing` writes nothing when any row has a problem.
//! - A dry run decides everything the same way and writes nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::Value;

use crate::access::{Action, Actor, Target, can, check_item};
use crate::change::{ChangeSet, CommitReceipt, Record, Write};
use crate::desk::{Command, Decided, Env, load};
use crate::error::DeskError;
use crate::event::EventData;
use crate::fields::FieldKind;
use crate::hierarchy::{Folder, Project};
use crate::ids::ProjectId;
use crate::import::{ImportReport, ImportRow, ImportedItem, Problem};
use crate::item::{Assignee, Channel, Item, ItemKind, ItemLink, ItemType, LinkKind, Priority};
use crate::people::{Team, User};
use crate::planning::TaskPlan;
use crate::store::{self, RecordQuery, Store};

use super::items::{CreateItem, References, load_ancestors};

#[derive(Debug, Clone)]
pub struct ImportItems {
    pub project: ProjectId,
    /// The type of rows that name none: a type's name or id.
    pub item_type: Option<String>,
    pub rows: Vec<ImportRow>,
    /// Reported back as they came (columns the mapping left out).
    pub ignored_columns: Vec<String>,
    pub dry_run: bool,
    pub all_or_nothing: bool,
}

/// What an import reads: the project, its folders, the workspace's types and teams, the people
/// the rows name (by email) and the existing items they name (`#12`, with their ancestors).
#[derive(Debug, Clone)]
pub struct ImportState {
    project: Project,
    folders: Vec<Folder>,
    types: Vec<ItemType>,
    teams: Vec<Team>,
    users: Vec<User>,
    existing: HashMap<i64, (Item, Vec<Item>)>,
}

fn item_number(reference: &str) -> Option<i64> {
    reference.strip_prefix('#').and_then(|n| n.trim().parse().ok()).filter(|n| *n > 0)
}

impl ImportItems {
    fn emails(&self, types: &[ItemType]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for row in &self.rows {
            let people = row.assignees.iter().chain(&row.followers).chain(&row.requester);
            out.extend(people.filter(|p| p.contains('@')).map(|p| p.to_lowercase()));
            for (key, value) in &row.custom {
                if types.iter().any(|t| t.field(key).is_some_and(|f| f.kind == FieldKind::User)) {
                    out.push(value.trim().to_lowercase());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn numbers(&self) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .rows
            .iter()
            .flat_map(|r| r.parent.iter().chain(r.predecessors.iter().map(|p| &p.key)))
            .filter_map(|r| item_number(r))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// How a row stands while the import is decided.
// One per row, held for one decision; boxing the large variant would add an allocation per row
// and buy nothing.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Created { item: Item, ancestors: Vec<Item>, changes: ChangeSet, links: usize },
    Refused,
}

impl Command for ImportItems {
    type State = ImportState;
    type Output = ImportReport;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ImportState, DeskError> {
        let ws = actor.workspace_id;
        let project = load::<Project>(store, ws, self.project).await?;
        let folders = store::list(store, ws, &RecordQuery::children_of(project.id.0)).await?;
        let types: Vec<ItemType> = store::list(store, ws, &RecordQuery::all()).await?;
        let teams = store::list(store, ws, &RecordQuery::all()).await?;
        let mut users = Vec::new();
        for email in self.emails(&types) {
            if let Some(u) = store.user_by_email(ws, &email).await? {
                users.push(u);
            }
        }
        let mut existing = HashMap::new();
        for n in self.numbers() {
            if let Some(item) = store.item_by_number(ws, n).await? {
                let ancestors = load_ancestors(store, actor, item.parent).await.unwrap_or_default();
                existing.insert(n, (item, ancestors));
            }
        }
        Ok(ImportState { project, folders, types, teams, users, existing })
    }

    fn decide(
        &self,
        actor: &Actor,
        state: ImportState,
        env: &Env<'_>,
    ) -> Result<Decided<ImportReport>, DeskError> {
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("only staff import items".into()));
        }
        can(actor, Action::CreateItem, Target::Workspace).into_result()?;
        let default_type = match &self.item_type {
            Some(t) => Some(
                find_type(&state.types, t)
                    .ok_or_else(|| DeskError::invalid("item_type", format!("no item type '{t}'")))?,
            ),
            None => None,
        };
        let rows = &self.rows;
        let mut problems: Vec<Problem> = Vec::new();
        let mut keys: HashMap<&str, usize> = HashMap::new();
        let mut refused = vec![false; rows.len()];
        for (i, row) in rows.iter().enumerate() {
            problems.extend(row.problems.iter().cloned());
            refused[i] |= !row.problems.is_empty();
            if let Some(k) = &row.key {
                if let Some(&first) = keys.get(k.as_str()) {
                    problems
                        .push(row.problem("key", format!("row {} has the same key '{k}'", rows[first].row)));
                    refused[i] = true;
                } else {
                    keys.insert(k.as_str(), i);
                }
            }
        }
        // Rows this row needs decided first: its parent and predecessors among the rows.
        let deps: Vec<Vec<usize>> = rows
            .iter()
            .map(|r| {
                r.parent
                    .iter()
                    .chain(r.predecessors.iter().map(|p| &p.key))
                    .filter(|k| item_number(k).is_none())
                    .filter_map(|k| keys.get(k.as_str()).copied())
                    .collect()
            })
            .collect();
        let order = topological(&deps);
        let mut outcomes: Vec<Option<Outcome>> = (0..rows.len()).map(|_| None).collect();
        for &i in &order {
            let row = &rows[i];
            let outcome = if refused[i] {
                Outcome::Refused
            } else {
                match self.decide_row(actor, &state, default_type, row, &keys, &outcomes, env)? {
                    Ok(created) => created,
                    Err(p) => {
                        problems.extend(p);
                        Outcome::Refused
                    }
                }
            };
            outcomes[i] = Some(outcome);
        }
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            if outcome.is_none() {
                let row = &rows[i];
                problems.push(row.problem(
                    if row.parent.is_some() { "parent" } else { "predecessors" },
                    "depends on itself through its parent or predecessors",
                ));
                *outcome = Some(Outcome::Refused);
            }
        }
        problems.sort_by_key(|p| p.row);
        let mut changes = env.changes(actor);
        let mut items = Vec::new();
        let mut links = 0;
        for (row, outcome) in rows.iter().zip(outcomes) {
            if let Some(Outcome::Created { item, changes: c, links: l, .. }) = outcome {
                items.push(ImportedItem { row: row.row, key: row.key.clone(), id: item.id, number: 0 });
                links += l;
                changes.writes.extend(c.writes);
                changes.events.extend(c.events);
                changes.jobs.extend(c.jobs);
            }
        }
        let write = !self.dry_run && (!self.all_or_nothing || problems.is_empty());
        if !write {
            changes = env.changes(actor);
        }
        let report = ImportReport {
            dry_run: self.dry_run,
            committed: write && !items.is_empty(),
            rows: rows.len(),
            valid: items.len(),
            items: if write || self.dry_run { items } else { Vec::new() },
            links: if write || self.dry_run { links } else { 0 },
            problems,
            ignored_columns: self.ignored_columns.clone(),
        };
        Ok(Decided { changes, output: report })
    }

    fn finish(mut report: ImportReport, receipt: &CommitReceipt) -> ImportReport {
        for item in &mut report.items {
            item.number = receipt.number_of(item.id).unwrap_or_default();
        }
        report
    }
}

fn find_type<'a>(types: &'a [ItemType], name: &str) -> Option<&'a ItemType> {
    let name = name.trim();
    types
        .iter()
        .find(|t| t.id.to_string() == name)
        .or_else(|| types.iter().find(|t| t.name.eq_ignore_ascii_case(name)))
}

/// Rows in an order where each comes after the rows it depends on; rows in a loop are left out.
fn topological(deps: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            dependents[j].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..deps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::new();
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push_back(d);
            }
        }
    }
    order
}

type RowResult = Result<Outcome, Vec<Problem>>;

impl ImportItems {
    #[allow(clippy::too_many_arguments)]
    fn decide_row(
        &self,
        actor: &Actor,
        state: &ImportState,
        default_type: Option<&ItemType>,
        row: &ImportRow,
        keys: &HashMap<&str, usize>,
        outcomes: &[Option<Outcome>],
        env: &Env<'_>,
    ) -> Result<RowResult, DeskError> {
        let mut problems = Vec::new();
        let rows = &self.rows;
        // A reference to another row or to an existing item.
        let resolve =
            |reference: &str, field: &str, problems: &mut Vec<Problem>| -> Option<(Item, Vec<Item>)> {
                if let Some(n) = item_number(reference) {
                    return match state.existing.get(&n) {
                        Some((item, ancestors)) => Some((item.clone(), ancestors.clone())),
                        None => {
                            problems.push(row.problem(field, format!("no item #{n}")));
                            None
                        }
                    };
                }
                match keys.get(reference).map(|&j| (j, &outcomes[j])) {
                    Some((_, Some(Outcome::Created { item, ancestors, .. }))) => {
                        Some((item.clone(), ancestors.clone()))
                    }
                    Some((j, _)) => {
                        problems.push(row.problem(
                            field,
                            format!("row {} ('{reference}') has problems and is not imported", rows[j].row),
                        ));
                        None
                    }
                    None => {
                        problems.push(row.problem(
                            field,
                            format!("no row with key '{reference}' (existing items are written #12)"),
                        ));
                        None
                    }
                }
            };
        let parent = row.parent.as_deref().and_then(|p| resolve(p, "parent", &mut problems));
        let predecessors: Vec<(Item, crate::planning::DependencyTiming)> = row
            .predecessors
            .iter()
            .filter_map(|p| resolve(&p.key, "predecessors", &mut problems).map(|(item, _)| (item, p.timing)))
            .collect();
        let t = match row.item_type.as_deref() {
            Some(name) => find_type(&state.types, name).or_else(|| {
                problems.push(row.problem("type", format!("no item type '{name}'")));
                None
            }),
            None => default_type.or_else(|| {
                problems.push(row.problem("type", "names no item type and the import has no default type"));
                None
            }),
        };
        let user = |email: &str| {
            state.users.iter().find(|u| u.email.as_deref() == Some(email.trim().to_lowercase().as_str()))
        };
        let person = |email: &str, field: &str, problems: &mut Vec<Problem>| match user(email) {
            Some(u) => Some(u.id),
            None => {
                problems.push(row.problem(field, format!("no user with email {email}")));
                None
            }
        };
        let requester = row.requester.as_deref().and_then(|e| person(e, "requester", &mut problems));
        let followers: Vec<_> =
            row.followers.iter().filter_map(|e| person(e, "followers", &mut problems)).collect();
        let mut assignees = Vec::new();
        for a in &row.assignees {
            if a.contains('@') {
                assignees.extend(person(a, "assignees", &mut problems).map(Assignee::User));
            } else if let Some(team) = state.teams.iter().find(|t| t.name.eq_ignore_ascii_case(a.trim())) {
                assignees.push(Assignee::Team(team.id));
            } else {
                problems
                    .push(row.problem("assignees", format!("'{a}' is neither an email address nor a team")));
            }
        }
        let priority = row.priority.as_deref().and_then(|p| {
            Priority::parse(p).or_else(|| {
                problems.push(row.problem("priority", format!("'{p}' is not low, normal, high or urgent")));
                None
            })
        });
        let folder = row.folder.as_deref().and_then(|name| {
            state.folders.iter().find(|f| f.name.eq_ignore_ascii_case(name.trim())).or_else(|| {
                problems.push(
                    row.problem("folder", format!("project '{}' has no folder '{name}'", state.project.name)),
                );
                None
            })
        });
        let mut custom = BTreeMap::new();
        if let Some(t) = t {
            let status = row.status.as_deref().and_then(|s| {
                let found = t
                    .workflow
                    .status(s.trim())
                    .or_else(|| t.workflow.statuses.iter().find(|x| x.name.eq_ignore_ascii_case(s.trim())));
                found.map(|x| x.key.clone()).or_else(|| {
                    problems.push(row.problem("status", format!("'{s}' is no status of '{}'", t.name)));
                    None
                })
            });
            for (key, text) in &row.custom {
                let value = match t.field(key).map(|f| f.kind) {
                    Some(FieldKind::MultiChoice) => {
                        Value::Array(text.split(';').map(|s| Value::String(s.trim().to_string())).collect())
                    }
                    Some(FieldKind::User) => match user(text) {
                        Some(u) => Value::String(u.id.to_string()),
                        None => {
                            problems.push(
                                row.problem(&format!("custom.{key}"), format!("no user with email {text}")),
                            );
                            continue;
                        }
                    },
                    Some(FieldKind::Checkbox) => Value::String(text.trim().to_lowercase()),
                    _ => Value::String(text.clone()),
                };
                custom.insert(key.clone(), value);
            }
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            let (parent_item, ancestors) = match parent {
                Some((p, a)) => (Some(p.id), std::iter::once(p).chain(a).collect::<Vec<_>>()),
                None => (None, Vec::new()),
            };
            let cmd = CreateItem {
                item_type: t.id,
                title: row.title.clone(),
                description: row.description.clone(),
                project: Some(state.project.id),
                folder: folder.map(|f| f.id),
                parent: parent_item,
                requester,
                assignees,
                followers,
                priority,
                status,
                custom,
                channel: Channel::Api,
            };
            let refs = References {
                users: state.users.clone(),
                teams: state.teams.clone(),
                project: Some(state.project.clone()),
                folder: folder.cloned(),
                ancestors: ancestors.clone(),
            };
            let Decided { mut changes, output: mut item } = match cmd.decide(actor, (t.clone(), refs), env) {
                Ok(d) => d,
                Err(DeskError::Invalid(e)) => return Ok(Err(vec![row.problem(&e.field, e.reason)])),
                Err(DeskError::Forbidden(m)) => return Ok(Err(vec![row.problem("", m)])),
                Err(other) => return Err(other),
            };
            if !row.plan.is_empty() {
                if item.kind != ItemKind::Task {
                    return Ok(Err(vec![row.problem(
                        "plan",
                        format!("'{}' is a ticket type; only tasks are planned", t.name),
                    )]));
                }
                match row.plan.apply(&TaskPlan::default()) {
                    Ok(plan) => item.plan = plan,
                    Err(e) => return Ok(Err(vec![row.problem(&e.field, e.reason)])),
                }
                for w in &mut changes.writes {
                    if let Write::Put { record: Record::Item(i), .. } = w
                        && i.id == item.id
                    {
                        i.plan = item.plan.clone();
                    }
                }
            }
            let mut links = 0;
            for (from, timing) in predecessors {
                if !can(actor, Action::LinkItems, Target::Item(&from)).allowed {
                    return Ok(Err(vec![row.problem("predecessors", format!("no item #{}", from.number))]));
                }
                if let Err(e) =
                    check_item(actor, Action::LinkItems, &item).and(timing.validate().map_err(Into::into))
                {
                    return Ok(Err(vec![row.problem("predecessors", e.to_string())]));
                }
                let link = ItemLink {
                    id: env.new_id(),
                    workspace_id: actor.workspace_id,
                    from: from.id,
                    to: item.id,
                    kind: LinkKind::Blocks,
                    dependency: Some(timing),
                    created_at: env.now,
                    version: 1,
                };
                let data =
                    EventData::ItemLinked { link: link.id, kind: link.kind, from: from.id, to: item.id };
                changes.event(Some(from.id), data.clone());
                changes.event(Some(item.id), data);
                changes.insert(Record::Link(link));
                links += 1;
            }
            return Ok(Ok(Outcome::Created { item, ancestors, changes, links }));
        }
        Ok(Err(problems))
    }
}
