//! The read side of import/export: a project's tasks as an MS Project document.

use std::collections::HashSet;

use chrono::NaiveDateTime;

use crate::access::{Action, Actor, Target, can};
use crate::desk::{Desk, load};
use crate::error::DeskError;
use crate::hierarchy::Project;
use crate::ids::ProjectId;
use crate::item::{ItemKind, ItemLink, LinkKind};
use crate::planning::{WorkCalendar, build_plan, calendars_from};
use crate::schedule::schedule;
use crate::store::{self, ItemFilter, ItemQuery, RecordQuery};

use super::mspdi::{Document, ExportTask, document};

impl Desk {
    /// A project's tasks (those the reader may see), their dependencies, the workspace calendar
    /// and the scheduled dates as an MSPDI document. Staff only. When the plan cannot be
    /// scheduled (a dependency loop), tasks are written without dates rather than not at all.
    pub async fn project_document(
        &self,
        actor: &Actor,
        project: ProjectId,
        today: NaiveDateTime,
    ) -> Result<Document, DeskError> {
        let actor = &self.resolve(actor).await?;
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("only staff export plans".into()));
        }
        can(actor, Action::ViewDirectory, Target::Workspace).into_result()?;
        let ws = actor.workspace_id;
        let project = load::<Project>(self.store().as_ref(), ws, project).await?;
        let mut query = ItemQuery::new(crate::access::item_scope(actor));
        query.filter =
            ItemFilter { project: Some(project.id), kind: Some(ItemKind::Task), ..Default::default() };
        query.limit = 500;
        let mut tasks = Vec::new();
        loop {
            let page = self.store().items(ws, &query).await?;
            tasks.extend(page.items);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let ids: HashSet<_> = tasks.iter().map(|t| t.id).collect();
        let mut links: Vec<ItemLink> = Vec::new();
        let mut seen = HashSet::new();
        for t in &tasks {
            for l in self.store().links(ws, t.id).await? {
                if l.kind == LinkKind::Blocks
                    && ids.contains(&l.from)
                    && ids.contains(&l.to)
                    && seen.insert(l.id)
                {
                    links.push(l);
                }
            }
        }
        let records: Vec<WorkCalendar> = store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        let calendars = calendars_from(&records)?;
        let plan = build_plan(&tasks, &links, None, None, today);
        let scheduled = schedule(&plan, &calendars).ok();
        let export: Vec<ExportTask> = tasks
            .iter()
            .map(|t| ExportTask {
                id: t.id,
                number: t.number,
                title: t.title.clone(),
                description: t.description.clone(),
                parent: t.parent,
                plan: t.plan.clone(),
                dates: scheduled.as_ref().and_then(|s| s.task(t.id)).map(|s| (s.start, s.finish)),
            })
            .collect();
        let deps: Vec<_> = links.iter().map(|l| (l.from, l.to, l.dependency.unwrap_or_default())).collect();
        Ok(document(&project.name, Some(plan.start), calendars.workspace.clone(), &export, &deps))
    }
}
