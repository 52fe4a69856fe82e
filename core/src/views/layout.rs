//! Each layout's data, built from the items a view selected. Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::filter::{Field, Val};
use super::{SavedView, SortSpec};
use crate::hierarchy::{Folder, Portfolio, Project};
use crate::ids::ItemId;
use crate::item::{Assignee, Item, ItemType, Priority};
use crate::workflow::StatusCategory;

/// A cell of a list row: the field's value as JSON (times as RFC 3339, lists as arrays).
pub type Cell = Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: ItemId,
    pub number: i64,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group-by field's value as text (empty for items without one); `""` when not grouped.
    pub key: String,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode {
    /// `portfolio`, `project`, `folder`, `item`, or `none` (items outside any project).
    pub kind: &'static str,
    pub id: Option<Uuid>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    /// Whether the item itself matched the filter (an ancestor item shown for context did not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<bool>,
    pub children: Vec<TreeNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub id: ItemId,
    pub number: i64,
    pub title: String,
    pub priority: Priority,
    pub assignees: Vec<Assignee>,
    pub percent_complete: u8,
    /// What a move sends back, so a stale board cannot overwrite a newer change.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardColumn {
    pub status: String,
    pub name: String,
    pub category: StatusCategory,
    pub cards: Vec<Card>,
}

/// An item on the month calendar: its planned span (manual dates, else the baseline), its actual
/// span (an unfinished one runs to today) and its due date, each when it has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalendarEntry {
    pub id: ItemId,
    pub number: i64,
    pub title: String,
    pub planned: Option<(NaiveDateTime, NaiveDateTime)>,
    pub actual: Option<(NaiveDateTime, NaiveDateTime)>,
    pub due: Option<NaiveDate>,
}

/// What a view returns, by layout.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
pub enum ViewData {
    List {
        columns: Vec<String>,
        groups: Vec<Group>,
    },
    Tree {
        roots: Vec<TreeNode>,
    },
    Board {
        columns: Vec<BoardColumn>,
    },
    Calendar {
        month: String,
        first_day: NaiveDate,
        last_day: NaiveDate,
        entries: Vec<CalendarEntry>,
    },
    /// The tasks scheduled; the schedule itself travels beside the data (see `ViewResult`).
    Gantt {
        tasks: Vec<ItemId>,
    },
}

impl Val {
    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => json!(b),
            Val::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => json!(*n as i64),
            Val::Num(n) => json!(n),
            Val::Text(s) => json!(s),
            Val::Time(t) => json!(t.to_rfc3339()),
            Val::Priority(p) => json!(p.as_str()),
            Val::List(l) => Value::Array(l.iter().map(Val::to_json).collect()),
        }
    }
}

/// Sorts by the view's keys, then by number.
pub fn sort(items: &mut [Item], keys: &[SortSpec]) {
    let fields: Vec<(Field, bool)> =
        keys.iter().filter_map(|k| Field::parse(&k.field).map(|f| (f, k.descending))).collect();
    items.sort_by(|a, b| {
        for (f, desc) in &fields {
            let o = f.value(a).sort_cmp(&f.value(b));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        a.number.cmp(&b.number)
    });
}

/// The rows of a list (and of exports): one cell per column.
pub fn rows(items: &[Item], columns: &[Field]) -> Vec<Row> {
    items
        .iter()
        .map(|i| Row {
            id: i.id,
            number: i.number,
            cells: columns.iter().map(|c| c.value(i).to_json()).collect(),
        })
        .collect()
}

/// The flat list, grouped when the view has a group-by field (groups in the order of their first
/// item, which follows the sort; items without a value last).
pub fn list(view: &SavedView, items: &[Item]) -> ViewData {
    let columns = view.columns();
    let names = columns.iter().map(|c| c.to_string()).collect();
    let Some(group) = view.group_by.as_deref().and_then(Field::parse) else {
        return ViewData::List {
            columns: names,
            groups: vec![Group { key: String::new(), rows: rows(items, &columns) }],
        };
    };
    let mut order: Vec<(Val, String)> = Vec::new();
    let mut members: HashMap<String, Vec<Item>> = HashMap::new();
    for item in items {
        let v = group.value(item);
        let key = v.display();
        if !members.contains_key(&key) {
            order.push((v, key.clone()));
        }
        members.entry(key).or_default().push(item.clone());
    }
    order.sort_by(|a, b| a.0.sort_cmp(&b.0));
    let groups = order
        .into_iter()
        .map(|(_, key)| {
            let rows = rows(members.get(&key).map_or(&[][..], Vec::as_slice), &columns);
            Group { key, rows }
        })
        .collect();
    ViewData::List { columns: names, groups }
}

/// Columns by status: the workflow's statuses in order when every item (or the only type given)
/// shares one item type; otherwise the statuses of every type in `types` that items use, in
/// workflow order, type by type. Cards keep the view's sort.
pub fn board(items: &[Item], types: &[ItemType]) -> ViewData {
    let used: HashSet<_> = items.iter().map(|i| i.item_type).collect();
    let relevant: Vec<&ItemType> = if used.is_empty() {
        types.iter().take(1).collect()
    } else {
        types.iter().filter(|t| used.contains(&t.id)).collect()
    };
    let mut columns: Vec<BoardColumn> = Vec::new();
    for t in relevant {
        for s in &t.workflow.statuses {
            if !columns.iter().any(|c| c.status == s.key) {
                columns.push(BoardColumn {
                    status: s.key.clone(),
                    name: s.name.clone(),
                    category: s.category,
                    cards: Vec::new(),
                });
            }
        }
    }
    for i in items {
        let card = Card {
            id: i.id,
            number: i.number,
            title: i.title.clone(),
            priority: i.priority,
            assignees: i.assignees.clone(),
            percent_complete: i.plan.percent_complete,
            version: i.version,
        };
        match columns.iter_mut().find(|c| c.status == i.status) {
            Some(c) => c.cards.push(card),
            None => columns.push(BoardColumn {
                status: i.status.clone(),
                name: i.status.clone(),
                category: i.category,
                cards: vec![card],
            }),
        }
    }
    ViewData::Board { columns }
}

/// The month calendar: items whose planned or actual span, or due date (`due_field`, a custom
/// date field), falls in `month` (`(year, month)`).
pub fn calendar(items: &[Item], month: (i32, u32), today: NaiveDateTime, due_field: &str) -> ViewData {
    let first = NaiveDate::from_ymd_opt(month.0, month.1, 1).unwrap_or(today.date());
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    let last = next.pred_opt().unwrap_or(first);
    let overlaps = |(a, b): (NaiveDateTime, NaiveDateTime)| a.date() <= last && b.date() >= first;
    let mut entries = Vec::new();
    for i in items {
        let p = &i.plan;
        let planned = match (p.start, p.finish, p.baseline) {
            (Some(s), Some(f), _) => Some((s, f)),
            (Some(s), None, _) => Some((s, s)),
            (None, _, Some(b)) => Some((b.start, b.finish)),
            _ => None,
        };
        let actual = p.actual_start.map(|s| (s, p.actual_finish.unwrap_or(today.max(s))));
        let due = i
            .custom
            .get(due_field)
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok());
        let shown = planned.is_some_and(overlaps)
            || actual.is_some_and(overlaps)
            || due.is_some_and(|d| first <= d && d <= last);
        if shown {
            entries.push(CalendarEntry {
                id: i.id,
                number: i.number,
                title: i.title.clone(),
                planned,
                actual,
                due,
            });
        }
    }
    ViewData::Calendar { month: first.format("%Y-%m").to_string(), first_day: first, last_day: last, entries }
}

/// The structure the tree hangs items on.
#[derive(Debug, Clone, Default)]
pub struct Structure {
    pub portfolios: Vec<Portfolio>,
    pub projects: Vec<Project>,
    pub folders: Vec<Folder>,
}

/// Portfolio → project → folder → item → sub-items, holding only branches with matching items.
/// `items` are the matching items; `context` their ancestor items that did not match (shown so a
/// matching sub-item keeps its place).
pub fn tree(items: &[Item], context: &[Item], s: &Structure) -> ViewData {
    let matched: HashSet<ItemId> = items.iter().map(|i| i.id).collect();
    let all: Vec<&Item> = items.iter().chain(context.iter().filter(|c| !matched.contains(&c.id))).collect();
    let ids: HashSet<ItemId> = all.iter().map(|i| i.id).collect();
    // Items under their parent item when it is shown, else under their folder or project.
    let mut under_item: BTreeMap<ItemId, Vec<&Item>> = BTreeMap::new();
    let mut under_folder: HashMap<Uuid, Vec<&Item>> = HashMap::new();
    let mut under_project: HashMap<Uuid, Vec<&Item>> = HashMap::new();
    let mut loose: Vec<&Item> = Vec::new();
    for i in &all {
        match (i.parent.filter(|p| ids.contains(p)), i.folder, i.project) {
            (Some(p), _, _) => under_item.entry(p).or_default().push(i),
            (None, Some(f), _) => under_folder.entry(f.0).or_default().push(i),
            (None, None, Some(p)) => under_project.entry(p.0).or_default().push(i),
            _ => loose.push(i),
        }
    }
    fn item_node(
        i: &Item,
        matched: &HashSet<ItemId>,
        under: &BTreeMap<ItemId, Vec<&Item>>,
        depth: usize,
    ) -> TreeNode {
        let mut kids: Vec<&Item> = under.get(&i.id).cloned().unwrap_or_default();
        kids.sort_by_key(|k| k.number);
        TreeNode {
            kind: "item",
            id: Some(i.id.0),
            name: i.title.clone(),
            number: Some(i.number),
            matched: Some(matched.contains(&i.id)),
            children: if depth > 50 {
                Vec::new()
            } else {
                kids.iter().map(|k| item_node(k, matched, under, depth + 1)).collect()
            },
        }
    }
    let items_of = |list: Option<&Vec<&Item>>| -> Vec<TreeNode> {
        let mut list: Vec<&Item> = list.cloned().unwrap_or_default();
        list.sort_by_key(|i| i.number);
        list.iter().map(|i| item_node(i, &matched, &under_item, 0)).collect()
    };
    fn folder_nodes(
        parent: Option<Uuid>,
        project: Uuid,
        s: &Structure,
        items_of: &dyn Fn(Option<&Vec<&Item>>) -> Vec<TreeNode>,
        under_folder: &HashMap<Uuid, Vec<&Item>>,
        depth: usize,
    ) -> Vec<TreeNode> {
        if depth > 50 {
            return Vec::new();
        }
        s.folders
            .iter()
            .filter(|f| f.project.0 == project && f.parent.map(|p| p.0) == parent)
            .map(|f| {
                let mut children = folder_nodes(Some(f.id.0), project, s, items_of, under_folder, depth + 1);
                children.extend(items_of(under_folder.get(&f.id.0)));
                TreeNode {
                    kind: "folder",
                    id: Some(f.id.0),
                    name: f.name.clone(),
                    number: None,
                    matched: None,
                    children,
                }
            })
            .filter(|n| !n.children.is_empty())
            .collect()
    }
    let project_node = |p: &Project| {
        let mut children = folder_nodes(None, p.id.0, s, &items_of, &under_folder, 0);
        children.extend(items_of(under_project.get(&p.id.0)));
        TreeNode {
            kind: "project",
            id: Some(p.id.0),
            name: p.name.clone(),
            number: None,
            matched: None,
            children,
        }
    };
    fn portfolio_nodes(
        parent: Option<Uuid>,
        s: &Structure,
        project_node: &dyn Fn(&Project) -> TreeNode,
        depth: usize,
    ) -> Vec<TreeNode> {
        if depth > 50 {
            return Vec::new();
        }
        s.portfolios
            .iter()
            .filter(|p| p.parent.map(|x| x.0) == parent)
            .map(|p| {
                let mut children = portfolio_nodes(Some(p.id.0), s, project_node, depth + 1);
                children.extend(
                    s.projects
                        .iter()
                        .filter(|x| x.portfolio == Some(p.id))
                        .map(project_node)
                        .filter(|n| !n.children.is_empty()),
                );
                TreeNode {
                    kind: "portfolio",
                    id: Some(p.id.0),
                    name: p.name.clone(),
                    number: None,
                    matched: None,
                    children,
                }
            })
            .filter(|n| !n.children.is_empty())
            .collect()
    }
    let mut roots = portfolio_nodes(None, s, &project_node, 0);
    roots.extend(
        s.projects
            .iter()
            .filter(|p| p.portfolio.is_none())
            .map(project_node)
            .filter(|n| !n.children.is_empty()),
    );
    // Items in projects the structure does not list (or outside any project).
    let known: HashSet<Uuid> = s.projects.iter().map(|p| p.id.0).collect();
    for (p, list) in &under_project {
        if !known.contains(p) {
            loose.extend(list.iter().copied());
        }
    }
    if !loose.is_empty() {
        let list: Vec<&Item> = loose;
        roots.push(TreeNode {
            kind: "none",
            id: None,
            name: "Not in a project".into(),
            number: None,
            matched: None,
            children: items_of(Some(&list)),
        });
    }
    ViewData::Tree { roots }
}
