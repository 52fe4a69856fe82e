//! Running a saved view: which items, in what order, in which layout.

use chrono::{DateTime, Datelike, Utc};

use super::filter::{Context, Filter};
use super::layout::{self, Structure, ViewData};
use super::{Layout, SavedView};
use crate::access::{Actor, item_scope};
use crate::desk::{Desk, load};
use crate::error::DeskError;
use crate::ids::{ItemId, ViewId};
use crate::item::{Item, ItemKind, ItemType};
use crate::people::Team;
use crate::planning::{WorkCalendar, build_plan, calendars_from};
use crate::schedule::{Calendars, Plan, Schedule, schedule};
use crate::store::{self, ItemQuery, RecordQuery};

/// The most items one view reads; more is an error asking for a narrower filter.
pub const MAX_VIEW_ITEMS: usize = 20_000;

/// Per-run parameters of a view.
#[derive(Debug, Clone, Default)]
pub struct ViewRequest {
    /// Another layout than the view's own (a list saved view opened as a board).
    pub layout: Option<Layout>,
    /// Calendar: `(year, month)`; the reader's current month when absent.
    pub month: Option<(i32, u32)>,
    /// Calendar: the custom date field holding due dates (`due` when absent).
    pub due_field: Option<String>,
}

/// A view's result: its items in order (visible to the reader, redacted for customers), the
/// layout's data, and for the Gantt layout the schedule of its tasks.
#[derive(Debug, Clone)]
pub struct ViewResult {
    pub view: SavedView,
    pub items: Vec<Item>,
    pub data: ViewData,
    pub gantt: Option<(Plan, Calendars, Schedule)>,
}

impl Desk {
    async fn teams(&self, actor: &Actor) -> Result<Vec<Team>, DeskError> {
        Ok(store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?)
    }

    /// The saved views the reader may see: their own, shared with everyone or with a team of
    /// theirs. Administrators see every view.
    pub async fn views(&self, actor: &Actor) -> Result<Vec<SavedView>, DeskError> {
        staff_only(actor)?;
        let teams = self.teams(actor).await?;
        let all: Vec<SavedView> =
            store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?;
        let admin = super::super::commands::views_admin(actor);
        Ok(all.into_iter().filter(|v| admin || v.visible_to(actor.user_id(), &teams)).collect())
    }

    pub async fn view(&self, actor: &Actor, id: ViewId) -> Result<SavedView, DeskError> {
        staff_only(actor)?;
        let view = load::<SavedView>(self.store().as_ref(), actor.workspace_id, id).await?;
        let teams = self.teams(actor).await?;
        if !super::super::commands::views_admin(actor) && !view.visible_to(actor.user_id(), &teams) {
            return Err(DeskError::not_found(format!("view {id}")));
        }
        Ok(view)
    }

    /// Every item the filter selects that the reader may see, sorted. The filter's pushable part
    /// goes to storage with the reader's scope; the whole filter is checked on each item.
    pub async fn view_items(
        &self,
        actor: &Actor,
        view: &SavedView,
        now: DateTime<Utc>,
    ) -> Result<Vec<Item>, DeskError> {
        let filter = Filter::parse(&view.filter)?;
        let cx = Context { now, me: actor.user_id() };
        let mut query = ItemQuery::new(item_scope(actor));
        query.filter = filter.pushdown(&cx);
        query.limit = 500;
        let mut out = Vec::new();
        loop {
            // Through the access-checked query: scope and redaction as for any item list.
            let page = self.items(actor, query.clone()).await?;
            out.extend(page.items.into_iter().filter(|i| filter.matches(i, &cx)));
            if out.len() > MAX_VIEW_ITEMS {
                return Err(DeskError::invalid(
                    "filter",
                    format!("selects more than {MAX_VIEW_ITEMS} items; narrow it down"),
                ));
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        layout::sort(&mut out, &view.sort);
        Ok(out)
    }

    /// Runs a view as the reader, at the reader's `now` (relative dates, the calendar's month).
    pub async fn run_view(
        &self,
        actor: &Actor,
        view: SavedView,
        request: &ViewRequest,
        now: DateTime<Utc>,
    ) -> Result<ViewResult, DeskError> {
        let items = self.view_items(actor, &view, now).await?;
        let ws = actor.workspace_id;
        let layout = request.layout.unwrap_or(view.layout);
        let mut gantt = None;
        let data = match layout {
            Layout::List => layout::list(&view, &items),
            Layout::Board => {
                let types: Vec<ItemType> =
                    store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
                layout::board(&items, &types)
            }
            Layout::Calendar => {
                let month = request.month.unwrap_or((now.year(), now.month()));
                let due = request.due_field.as_deref().unwrap_or("due");
                layout::calendar(&items, month, now.naive_utc(), due)
            }
            Layout::Tree => {
                self.check_directory_reader(actor)?;
                let structure = Structure {
                    portfolios: store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?,
                    projects: store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?,
                    folders: store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?,
                };
                let context = self.ancestors_of(actor, &items).await?;
                layout::tree(&items, &context, &structure)
            }
            Layout::Gantt => {
                self.check_directory_reader(actor)?;
                let tasks: Vec<Item> = items.iter().filter(|i| i.kind == ItemKind::Task).cloned().collect();
                let mut links = Vec::new();
                for t in &tasks {
                    links.extend(self.store().links(ws, t.id).await?);
                }
                let records: Vec<WorkCalendar> =
                    store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
                let calendars = calendars_from(&records)?;
                let today = now.date_naive().and_time(chrono::NaiveTime::MIN);
                let plan = build_plan(&tasks, &links, None, None, today);
                let scheduled = schedule(&plan, &calendars)?;
                let ids = plan.tasks.iter().map(|t| t.id).collect();
                gantt = Some((plan, calendars, scheduled));
                ViewData::Gantt { tasks: ids }
            }
        };
        Ok(ViewResult { view, items, data, gantt })
    }

    fn check_directory_reader(&self, actor: &Actor) -> Result<(), DeskError> {
        if !actor.is_staff() {
            return Err(DeskError::Forbidden(
                "this layout shows the workspace's structure; staff only".into(),
            ));
        }
        crate::access::can(actor, crate::access::Action::ViewDirectory, crate::access::Target::Workspace)
            .into_result()
    }

    /// The parent items of `items` that are not among them, up to their roots.
    async fn ancestors_of(&self, actor: &Actor, items: &[Item]) -> Result<Vec<Item>, DeskError> {
        let mut known: std::collections::HashSet<ItemId> = items.iter().map(|i| i.id).collect();
        let mut wanted: Vec<ItemId> =
            items.iter().filter_map(|i| i.parent).filter(|p| !known.contains(p)).collect();
        let mut out = Vec::new();
        while let Some(id) = wanted.pop() {
            if !known.insert(id) {
                continue;
            }
            // Parents the reader cannot see stay out of the tree.
            if let Ok(parent) = self.item(actor, crate::desk::ItemRef::Id(id)).await {
                if let Some(p) = parent.parent.filter(|p| !known.contains(p)) {
                    wanted.push(p);
                }
                out.push(parent);
            }
        }
        Ok(out)
    }
}

/// Saved views are a staff tool: a customer neither keeps nor reads them, not even shared ones.
fn staff_only(actor: &Actor) -> Result<(), DeskError> {
    if actor.is_staff() {
        Ok(())
    } else {
        Err(DeskError::Forbidden("customers do not use saved views".into()))
    }
}
