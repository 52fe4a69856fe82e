//! The read side of time tracking: entries, and tracked time rolled up to items (with their
//! sub-items), projects and portfolios.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::access::{Action, Actor, Target, can, item_scope};
use crate::desk::{Desk, ItemRef, load};
use crate::error::DeskError;
use crate::hierarchy::{Portfolio, Project};
use crate::ids::{ItemId, PortfolioId, ProjectId, TimeEntryId};
use crate::item::Item;
use crate::store::{self, ItemFilter, ItemQuery, RecordQuery, TimeEntryQuery};

use super::{EntryStatus, TimeEntry};

/// Tracked minutes by status. `total` counts everything but rejected time; a running timer counts
/// up to now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimeTotals {
    pub total: i64,
    pub draft: i64,
    pub submitted: i64,
    pub approved: i64,
    pub rejected: i64,
    pub entries: usize,
}

impl TimeTotals {
    pub fn add(&mut self, e: &TimeEntry, now: DateTime<Utc>) {
        let m = e.minutes_at(now);
        match e.status {
            EntryStatus::Draft => self.draft += m,
            EntryStatus::Submitted => self.submitted += m,
            EntryStatus::Approved => self.approved += m,
            EntryStatus::Rejected => self.rejected += m,
        }
        if e.status != EntryStatus::Rejected {
            self.total += m;
        }
        self.entries += 1;
    }

    pub fn of(entries: &[TimeEntry], now: DateTime<Utc>) -> Self {
        let mut t = Self::default();
        for e in entries {
            t.add(e, now);
        }
        t
    }

    fn plus(mut self, o: &TimeTotals) -> Self {
        self.total += o.total;
        self.draft += o.draft;
        self.submitted += o.submitted;
        self.approved += o.approved;
        self.rejected += o.rejected;
        self.entries += o.entries;
        self
    }
}

/// Tracked time of an item, project or portfolio: its own total and a breakdown by the parts it
/// rolls up (sub-items, items, projects), keyed by their id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeReport {
    pub totals: TimeTotals,
    pub parts: BTreeMap<String, TimeTotals>,
}

/// How many item ids one store read names.
const CHUNK: usize = 500;

impl Desk {
    fn check_time_reader(&self, actor: &Actor) -> Result<(), DeskError> {
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("only staff read timesheets".into()));
        }
        can(actor, Action::ViewItem, Target::Workspace).into_result()
    }

    /// Time entries matching `query` (staff). The limit is clamped to 1–10 000.
    pub async fn time_entries(
        &self,
        actor: &Actor,
        mut query: TimeEntryQuery,
    ) -> Result<Vec<TimeEntry>, DeskError> {
        self.check_time_reader(actor)?;
        query.limit = query.limit.clamp(1, 10_000);
        Ok(self.store().time_entries(actor.workspace_id, &query).await?)
    }

    pub async fn time_entry(&self, actor: &Actor, id: TimeEntryId) -> Result<TimeEntry, DeskError> {
        self.check_time_reader(actor)?;
        load::<TimeEntry>(self.store().as_ref(), actor.workspace_id, id).await
    }

    /// Entries on any of `items`, read in chunks.
    async fn entries_on(&self, actor: &Actor, items: &[ItemId]) -> Result<Vec<TimeEntry>, DeskError> {
        let mut out = Vec::new();
        for chunk in items.chunks(CHUNK) {
            let q = TimeEntryQuery { items: Some(chunk.to_vec()), limit: 1_000_000, ..TimeEntryQuery::all() };
            out.extend(self.store().time_entries(actor.workspace_id, &q).await?);
        }
        Ok(out)
    }

    async fn items_where(&self, actor: &Actor, filter: ItemFilter) -> Result<Vec<Item>, DeskError> {
        let mut query = ItemQuery::new(item_scope(actor));
        query.filter = filter;
        query.limit = 500;
        let mut out = Vec::new();
        loop {
            let page = self.store().items(actor.workspace_id, &query).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Tracked time on an item and every item below it; `parts` holds the item's own time and
    /// each sub-item's (with its own sub-items), by item id.
    pub async fn item_time(
        &self,
        actor: &Actor,
        item: ItemRef,
    ) -> Result<(Vec<TimeEntry>, TimeReport), DeskError> {
        let actor = &self.resolve(actor).await?;
        self.check_time_reader(actor)?;
        let item = self.item(actor, item).await?;
        let now = self.now();
        let own = self.entries_on(actor, &[item.id]).await?;
        let mut report = TimeReport { totals: TimeTotals::of(&own, now), parts: BTreeMap::new() };
        report.parts.insert(item.id.to_string(), report.totals);
        let children =
            self.items_where(actor, ItemFilter { parent: Some(item.id), ..Default::default() }).await?;
        for child in children {
            let ids = self.descendants(actor, child.id).await?;
            let t = TimeTotals::of(&self.entries_on(actor, &ids).await?, now);
            report.totals = report.totals.plus(&t);
            report.parts.insert(child.id.to_string(), t);
        }
        Ok((own, report))
    }

    /// `root` and every item below it.
    async fn descendants(&self, actor: &Actor, root: ItemId) -> Result<Vec<ItemId>, DeskError> {
        let mut out = vec![root];
        let mut seen: HashSet<ItemId> = out.iter().copied().collect();
        let mut i = 0;
        while i < out.len() {
            let children =
                self.items_where(actor, ItemFilter { parent: Some(out[i]), ..Default::default() }).await?;
            for c in children {
                if seen.insert(c.id) {
                    out.push(c.id);
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// Tracked time on a project's items, by item.
    pub async fn project_time(&self, actor: &Actor, project: ProjectId) -> Result<TimeReport, DeskError> {
        let actor = &self.resolve(actor).await?;
        self.check_time_reader(actor)?;
        can(actor, Action::ViewDirectory, Target::Workspace).into_result()?;
        let project = load::<Project>(self.store().as_ref(), actor.workspace_id, project).await?;
        let now = self.now();
        let items =
            self.items_where(actor, ItemFilter { project: Some(project.id), ..Default::default() }).await?;
        let ids: Vec<ItemId> = items.iter().map(|i| i.id).collect();
        let mut report = TimeReport { totals: TimeTotals::default(), parts: BTreeMap::new() };
        for e in self.entries_on(actor, &ids).await? {
            report.totals.add(&e, now);
            report.parts.entry(e.item.to_string()).or_default().add(&e, now);
        }
        Ok(report)
    }

    /// Tracked time on every project of a portfolio and of the portfolios nested in it, by
    /// project.
    pub async fn portfolio_time(
        &self,
        actor: &Actor,
        portfolio: PortfolioId,
    ) -> Result<TimeReport, DeskError> {
        let actor = &self.resolve(actor).await?;
        self.check_time_reader(actor)?;
        can(actor, Action::ViewDirectory, Target::Workspace).into_result()?;
        let ws = actor.workspace_id;
        let root = load::<Portfolio>(self.store().as_ref(), ws, portfolio).await?;
        let portfolios: Vec<Portfolio> = store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        let mut inside: HashSet<PortfolioId> = HashSet::from([root.id]);
        // Nesting is shallow and acyclic (commands refuse loops): grow until nothing is added.
        loop {
            let before = inside.len();
            for p in &portfolios {
                if p.parent.is_some_and(|parent| inside.contains(&parent)) {
                    inside.insert(p.id);
                }
            }
            if inside.len() == before {
                break;
            }
        }
        let projects: Vec<Project> = store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        let mut report = TimeReport { totals: TimeTotals::default(), parts: BTreeMap::new() };
        for project in projects.iter().filter(|p| p.portfolio.is_some_and(|p| inside.contains(&p))) {
            let t = self.project_time(actor, project.id).await?.totals;
            report.totals = report.totals.plus(&t);
            report.parts.insert(project.id.to_string(), t);
        }
        Ok(report)
    }
}
