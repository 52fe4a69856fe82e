//! Saved views: a filter expression ([`filter`]) + sort + group-by + columns + layout, personal
//! or shared with teams (or everybody). [`Desk::run_view`](crate::Desk) reads the items the
//! reader may see — the filter pushed into storage where [`ItemFilter`](crate::ItemFilter) can
//! express it, the rest checked on each item — and returns the layout's data: a flat list, a
//! tree (portfolio → project → folder → item → sub-items), a status board, a month calendar
//! (planned vs actual) or a Gantt schedule.

pub mod filter;
mod layout;
mod queries;

pub use filter::{Context, Field, Filter, Val};
pub use layout::{BoardColumn, CalendarEntry, Card, Cell, Group, Row, TreeNode, ViewData, list};
pub use queries::{ViewRequest, ViewResult};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{TeamId, UserId, ViewId, WorkspaceId};
use crate::people::Team;

/// How a view shows its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    #[default]
    List,
    Tree,
    Board,
    Calendar,
    Gantt,
}

/// Who besides its owner sees a view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "with", content = "teams", rename_all = "snake_case")]
pub enum Sharing {
    #[default]
    Personal,
    Teams(Vec<TeamId>),
    Everyone,
}

/// One sort key: a field, ascending unless `descending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortSpec {
    pub field: String,
    #[serde(default)]
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedView {
    pub id: ViewId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Who made it (`None`: the server administrator or Tandem itself).
    pub owner: Option<UserId>,
    #[serde(default)]
    pub sharing: Sharing,
    /// A filter expression (see [`filter`]); empty matches every item.
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub sort: Vec<SortSpec>,
    #[serde(default)]
    pub group_by: Option<String>,
    /// Columns of the list (and of exports), in order.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub layout: Layout,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The columns a view without chosen columns shows.
pub const DEFAULT_COLUMNS: [&str; 6] = ["number", "title", "status", "priority", "assignee", "updated"];

impl SavedView {
    /// The columns to show: the chosen ones, else [`DEFAULT_COLUMNS`].
    pub fn columns(&self) -> Vec<Field> {
        let names: Vec<&str> = if self.columns.is_empty() {
            DEFAULT_COLUMNS.to_vec()
        } else {
            self.columns.iter().map(String::as_str).collect()
        };
        names.into_iter().filter_map(Field::parse).collect()
    }

    /// Whether `user` (with `teams`) may see this view.
    pub fn visible_to(&self, user: Option<UserId>, teams: &[Team]) -> bool {
        if user.is_some() && self.owner == user {
            return true;
        }
        match &self.sharing {
            Sharing::Personal => false,
            Sharing::Everyone => true,
            Sharing::Teams(shared) => {
                user.is_some_and(|u| teams.iter().any(|t| shared.contains(&t.id) && t.members.contains(&u)))
            }
        }
    }
}

fn field(name: &str, at: String) -> Result<Field, Invalid> {
    Field::parse(name)
        .ok_or_else(|| Invalid::new(at, format!("unknown field '{name}'; known: {}", Field::known())))
}

/// Checks everything a view names: the filter parses, sort/group/column fields exist, shared
/// teams exist (`teams` are the workspace's).
pub fn validate(view: &SavedView, teams: &[Team]) -> Result<(), Invalid> {
    Filter::parse(&view.filter)?;
    if view.sort.len() > 5 {
        return Err(Invalid::new("sort", "at most 5 sort keys"));
    }
    for (i, s) in view.sort.iter().enumerate() {
        field(&s.field, format!("sort[{i}].field"))?;
    }
    if let Some(g) = &view.group_by {
        field(g, "group_by".into())?;
    }
    if view.columns.len() > 50 {
        return Err(Invalid::new("columns", "at most 50 columns"));
    }
    for (i, c) in view.columns.iter().enumerate() {
        field(c, format!("columns[{i}]"))?;
    }
    if let Sharing::Teams(shared) = &view.sharing {
        if shared.is_empty() {
            return Err(Invalid::new("sharing.teams", "name at least one team (or share with everyone)"));
        }
        for (i, t) in shared.iter().enumerate() {
            if !teams.iter().any(|x| x.id == *t) {
                return Err(Invalid::new(format!("sharing.teams[{i}]"), format!("no team {t}")));
            }
        }
    }
    Ok(())
}
