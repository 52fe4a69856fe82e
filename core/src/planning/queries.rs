//! The read side of planning: a project's schedule from its stored tasks, links and calendars.

use chrono::NaiveDateTime;

use crate::access::{Action, Actor, Target, can, item_scope};
use crate::desk::{Desk, load};
use crate::error::DeskError;
use crate::hierarchy::Project;
use crate::ids::ProjectId;
use crate::item::{Item, ItemKind, ItemLink};
use crate::schedule::{Calendars, Plan, Schedule, schedule};
use crate::store::{self, ItemFilter, ItemQuery, RecordQuery};

use super::{CalendarOwner, WorkCalendar, build_plan, calendars_from};

/// What to schedule a project from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleRequest {
    /// The project's start; the earliest date a task names, else `today`, when absent.
    pub start: Option<NaiveDateTime>,
    pub deadline: Option<NaiveDateTime>,
    /// The caller's "now" in the workspace's wall-clock time (the core reads no clock).
    pub today: NaiveDateTime,
}

/// A scheduled project: the plan as built from the stored items, the calendars used, and the
/// scheduler's answer.
#[derive(Debug, Clone)]
pub struct ProjectSchedule {
    pub project: Project,
    pub plan: Plan,
    pub calendars: Calendars,
    pub schedule: Schedule,
}

impl Desk {
    /// Every task of a project (any depth of folders), oldest number first.
    async fn project_tasks(&self, actor: &Actor, project: ProjectId) -> Result<Vec<Item>, DeskError> {
        // The reader's scope: a collaborator plans only the projects they belong to.
        let mut query = ItemQuery::new(item_scope(actor));
        query.filter =
            ItemFilter { project: Some(project), kind: Some(ItemKind::Task), ..Default::default() };
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

    /// The stored calendars: the workspace's and every person's.
    pub async fn calendars(&self, actor: &Actor) -> Result<Vec<WorkCalendar>, DeskError> {
        staff_reading(actor)?;
        Ok(store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?)
    }

    /// One calendar; the workspace's is the standard week when none was stored.
    pub async fn calendar(
        &self,
        actor: &Actor,
        owner: CalendarOwner,
    ) -> Result<Option<WorkCalendar>, DeskError> {
        staff_reading(actor)?;
        let id = WorkCalendar::id_for(actor.workspace_id, owner);
        Ok(store::get::<WorkCalendar>(self.store().as_ref(), actor.workspace_id, id.0).await?)
    }

    /// Schedules a project's tasks: their planning fields, the `blocks` links between them, the
    /// workspace's and their people's calendars. Staff only. A cycle or an impossible pinned date
    /// is `Invalid` on `schedule`, naming the tasks.
    pub async fn project_schedule(
        &self,
        actor: &Actor,
        project: ProjectId,
        request: ScheduleRequest,
    ) -> Result<ProjectSchedule, DeskError> {
        let actor = &self.resolve(actor).await?;
        staff_reading(actor)?;
        let ws = actor.workspace_id;
        let project = load::<Project>(self.store().as_ref(), ws, project).await?;
        let tasks = self.project_tasks(actor, project.id).await?;
        let mut links: Vec<ItemLink> = Vec::new();
        for task in &tasks {
            // Each link is read from both ends; `build_plan` keeps one copy.
            links.extend(self.store().links(ws, task.id).await?);
        }
        let records: Vec<WorkCalendar> = store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        let calendars = calendars_from(&records)?;
        let plan = build_plan(&tasks, &links, request.start, request.deadline, request.today);
        let schedule = schedule(&plan, &calendars)?;
        Ok(ProjectSchedule { project, plan, calendars, schedule })
    }
}

fn staff_reading(actor: &Actor) -> Result<(), DeskError> {
    if !actor.is_staff() {
        return Err(DeskError::Forbidden("only staff read plans and calendars".into()));
    }
    can(actor, Action::ViewDirectory, Target::Workspace).into_result()
}
