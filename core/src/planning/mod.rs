//! Planning on stored items: the planning fields of a task ([`TaskPlan`], kept on the item),
//! scheduling dependencies (item links of kind `blocks`, with a [`DependencyTiming`]), working
//! calendars stored per workspace and per user ([`WorkCalendar`]), and [`build_plan`], which turns
//! a project's items, links and calendars into the scheduler's [`Plan`] and [`Calendars`].
//!
//! Pure except for `queries.rs`, the `Desk` queries that load the records and call [`build_plan`].

mod queries;

pub use queries::{ProjectSchedule, ScheduleRequest};

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{ItemId, UserId, WorkspaceId};
use crate::item::{Item, ItemKind, ItemLink, LinkKind};
use crate::schedule::{
    Baseline, Calendar, Calendars, Constraint, Dependency, DependencyKind, Exception, Lag, Mode, Plan, Task,
    UserCalendar, WeekPattern,
};

/// The longest duration, effort or lag Tandem accepts: ten years of round-the-clock minutes. More
/// is a typo, and the scheduler's date span would not hold it anyway.
pub const MAX_MINUTES: i64 = 10 * 366 * 24 * 60;

/// The planning fields of a task. Durations and efforts are working minutes; dates are the
/// workspace's wall-clock time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskPlan {
    /// Working minutes; 0 is a milestone. `None`: not estimated (scheduled as a milestone).
    #[serde(default)]
    pub duration: Option<i64>,
    /// Planned work in minutes (effort), rolled up into summaries.
    #[serde(default)]
    pub work: Option<i64>,
    #[serde(default)]
    pub constraint: Constraint,
    #[serde(default)]
    pub mode: Mode,
    /// The dates a manually scheduled task keeps.
    #[serde(default)]
    pub start: Option<NaiveDateTime>,
    #[serde(default)]
    pub finish: Option<NaiveDateTime>,
    #[serde(default)]
    pub actual_start: Option<NaiveDateTime>,
    #[serde(default)]
    pub actual_finish: Option<NaiveDateTime>,
    #[serde(default)]
    pub percent_complete: u8,
    /// Agile story points.
    #[serde(default)]
    pub points: Option<f64>,
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// Whose calendar the task follows; the first assigned user when absent.
    #[serde(default)]
    pub resource: Option<UserId>,
}

impl TaskPlan {
    pub fn is_empty(&self) -> bool {
        *self == TaskPlan::default()
    }

    /// Checks every field; errors name it (`plan.duration`).
    pub fn validate(&self) -> Result<(), Invalid> {
        let minutes = |field: &str, v: Option<i64>| match v {
            Some(m) if m < 0 => Err(Invalid::new(field, format!("must not be negative (got {m})"))),
            Some(m) if m > MAX_MINUTES => {
                Err(Invalid::new(field, format!("{m} minutes is more than ten years; at most {MAX_MINUTES}")))
            }
            _ => Ok(()),
        };
        minutes("plan.duration", self.duration)?;
        minutes("plan.work", self.work)?;
        if self.percent_complete > 100 {
            return Err(Invalid::new(
                "plan.percent_complete",
                format!("must be 0–100 (got {})", self.percent_complete),
            ));
        }
        if let Some(p) = self.points
            && (!p.is_finite() || !(0.0..=10_000.0).contains(&p))
        {
            return Err(Invalid::new("plan.points", format!("must be between 0 and 10000 (got {p})")));
        }
        if let (Some(s), Some(f)) = (self.start, self.finish)
            && f < s
        {
            return Err(Invalid::new("plan.finish", "is before plan.start"));
        }
        if self.actual_finish.is_some() && self.actual_start.is_none() {
            return Err(Invalid::new("plan.actual_finish", "needs plan.actual_start"));
        }
        if let (Some(s), Some(f)) = (self.actual_start, self.actual_finish)
            && f < s
        {
            return Err(Invalid::new("plan.actual_finish", "is before plan.actual_start"));
        }
        if let Some(b) = self.baseline
            && b.finish < b.start
        {
            return Err(Invalid::new("plan.baseline", "finishes before it starts"));
        }
        if self.mode == Mode::Manual && self.start.is_none() {
            return Err(Invalid::new("plan.start", "a manually scheduled task needs a start"));
        }
        Ok(())
    }
}

/// A change to a task's planning fields: absent fields stay, `null` clears one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub duration: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub work: Option<Option<i64>>,
    #[serde(default)]
    pub constraint: Option<Constraint>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub start: Option<Option<NaiveDateTime>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub finish: Option<Option<NaiveDateTime>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub actual_start: Option<Option<NaiveDateTime>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub actual_finish: Option<Option<NaiveDateTime>>,
    #[serde(default)]
    pub percent_complete: Option<u8>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub points: Option<Option<f64>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub baseline: Option<Option<Baseline>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub resource: Option<Option<UserId>>,
}

impl PlanPatch {
    pub fn is_empty(&self) -> bool {
        self.duration.is_none()
            && self.work.is_none()
            && self.constraint.is_none()
            && self.mode.is_none()
            && self.start.is_none()
            && self.finish.is_none()
            && self.actual_start.is_none()
            && self.actual_finish.is_none()
            && self.percent_complete.is_none()
            && self.points.is_none()
            && self.baseline.is_none()
            && self.resource.is_none()
    }

    /// The plan after this patch, validated.
    pub fn apply(&self, old: &TaskPlan) -> Result<TaskPlan, Invalid> {
        let mut p = old.clone();
        if let Some(v) = self.duration {
            p.duration = v;
        }
        if let Some(v) = self.work {
            p.work = v;
        }
        if let Some(v) = self.constraint {
            p.constraint = v;
        }
        if let Some(v) = self.mode {
            p.mode = v;
        }
        if let Some(v) = self.start {
            p.start = v;
        }
        if let Some(v) = self.finish {
            p.finish = v;
        }
        if let Some(v) = self.actual_start {
            p.actual_start = v;
        }
        if let Some(v) = self.actual_finish {
            p.actual_finish = v;
        }
        if let Some(v) = self.percent_complete {
            p.percent_complete = v;
        }
        if let Some(v) = self.points {
            p.points = v;
        }
        if let Some(v) = self.baseline {
            p.baseline = v;
        }
        if let Some(v) = self.resource {
            p.resource = v;
        }
        p.validate()?;
        Ok(p)
    }
}

/// How a `blocks` link schedules its items: `from` is the predecessor, `to` the successor.
/// A `blocks` link without timing is finish-to-start with no lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DependencyTiming {
    #[serde(rename = "type")]
    pub kind: DependencyKind,
    #[serde(default)]
    pub lag: Lag,
}

impl Default for DependencyTiming {
    fn default() -> Self {
        Self { kind: DependencyKind::FinishToStart, lag: Lag::default() }
    }
}

impl DependencyTiming {
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = match self.lag {
            Lag::Working(m) | Lag::Elapsed(m) => m.abs() > MAX_MINUTES,
            Lag::Percent(p) => !(-1000..=1000).contains(&p),
        };
        if bad {
            return Err(Invalid::new("dependency.lag", format!("{} is out of range", self.lag)));
        }
        Ok(())
    }
}

/// Whose calendar a [`WorkCalendar`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum CalendarOwner {
    Workspace,
    User(UserId),
}

/// A stored working calendar: the workspace's (its id is the workspace's id) or one person's (its
/// id is the user's id), so there is at most one of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCalendar {
    pub id: crate::ids::CalendarId,
    pub workspace_id: WorkspaceId,
    pub owner: CalendarOwner,
    /// Required for the workspace calendar; a person without one works the workspace's week.
    #[serde(default)]
    pub week: Option<WeekPattern>,
    #[serde(default)]
    pub exceptions: Vec<Exception>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl WorkCalendar {
    /// The id a calendar of `owner` has in workspace `ws`.
    pub fn id_for(ws: WorkspaceId, owner: CalendarOwner) -> crate::ids::CalendarId {
        match owner {
            CalendarOwner::Workspace => crate::ids::CalendarId(ws.0),
            CalendarOwner::User(u) => crate::ids::CalendarId(u.0),
        }
    }

    /// The user this calendar belongs to, if it is a person's.
    pub fn user(&self) -> Option<UserId> {
        match self.owner {
            CalendarOwner::Workspace => None,
            CalendarOwner::User(u) => Some(u),
        }
    }
}

/// The calendars to schedule with: the stored workspace calendar (the standard week when there is
/// none) and every stored personal calendar. Checked with [`Calendars::validate`].
pub fn calendars_from(records: &[WorkCalendar]) -> Result<Calendars, Invalid> {
    let mut calendars = Calendars::default();
    for r in records {
        match r.owner {
            CalendarOwner::Workspace => {
                calendars.workspace = Calendar {
                    week: r.week.clone().unwrap_or_else(WeekPattern::standard),
                    exceptions: r.exceptions.clone(),
                };
            }
            CalendarOwner::User(u) => {
                calendars
                    .users
                    .insert(u, UserCalendar { week: r.week.clone(), exceptions: r.exceptions.clone() });
            }
        }
    }
    calendars.validate()?;
    Ok(calendars)
}

/// How a task is named in schedules, errors and the Gantt chart: `#42 Replace the printer`.
pub fn task_name(item: &Item) -> String {
    format!("#{} {}", item.number, item.title)
}

/// The scheduler's plan for a project's tasks.
///
/// - Every task of `items` is a task of the plan; tickets are left out.
/// - An item whose parent is another task of the plan is under it (the parent becomes a summary).
/// - `blocks` links between two tasks of the plan are its dependencies (`from` → `to`); links
///   reaching outside the plan are ignored.
/// - A task follows its plan's resource's calendar, else its first assigned user's.
/// - `start` is the project's start when given; otherwise the earliest date any task names
///   (manual start, actual start, constraint date, baseline start), else `today`.
pub fn build_plan(
    items: &[Item],
    links: &[ItemLink],
    start: Option<NaiveDateTime>,
    deadline: Option<NaiveDateTime>,
    today: NaiveDateTime,
) -> Plan {
    let mut tasks: Vec<&Item> = items.iter().filter(|i| i.kind == ItemKind::Task).collect();
    tasks.sort_by_key(|i| i.number);
    let ids: HashSet<ItemId> = tasks.iter().map(|i| i.id).collect();
    let named = tasks.iter().flat_map(|i| {
        let p = &i.plan;
        [p.start, p.actual_start, p.constraint.date(), p.baseline.map(|b| b.start)].into_iter().flatten()
    });
    let start = start.or_else(|| named.min()).unwrap_or(today);
    let mut plan = Plan::new(start);
    plan.deadline = deadline;
    for item in &tasks {
        let p = &item.plan;
        plan.tasks.push(Task {
            id: item.id,
            name: task_name(item),
            parent: item.parent.filter(|parent| ids.contains(parent)),
            duration: p.duration.unwrap_or(0),
            effort: p.work,
            mode: p.mode,
            constraint: p.constraint,
            resource: p.resource.or_else(|| item.assigned_users().next()),
            start: p.start,
            finish: p.finish,
            actual_start: p.actual_start,
            actual_finish: p.actual_finish,
            percent_complete: p.percent_complete,
            points: p.points,
            baseline: p.baseline,
        });
    }
    let mut seen = HashSet::new();
    let mut links: Vec<&ItemLink> = links
        .iter()
        .filter(|l| l.kind == LinkKind::Blocks && ids.contains(&l.from) && ids.contains(&l.to))
        .filter(|l| seen.insert(l.id))
        .collect();
    let numbers: HashMap<ItemId, i64> = tasks.iter().map(|i| (i.id, i.number)).collect();
    links.sort_by_key(|l| (numbers.get(&l.from), numbers.get(&l.to), l.id));
    for l in links {
        let timing = l.dependency.unwrap_or_default();
        plan.dependencies.push(Dependency::new(l.from, l.to, timing.kind, timing.lag));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, d).and_then(|d| d.and_hms_opt(h, 0, 0)).unwrap()
    }

    #[test]
    fn plan_validation_names_the_field() {
        let cases: Vec<(TaskPlan, &str)> = vec![
            (TaskPlan { duration: Some(-5), ..Default::default() }, "plan.duration"),
            (TaskPlan { work: Some(MAX_MINUTES + 1), ..Default::default() }, "plan.work"),
            (TaskPlan { percent_complete: 101, ..Default::default() }, "plan.percent_complete"),
            (TaskPlan { points: Some(f64::NAN), ..Default::default() }, "plan.points"),
            (TaskPlan { points: Some(-1.0), ..Default::default() }, "plan.points"),
            (TaskPlan { start: Some(at(3, 9)), finish: Some(at(2, 9)), ..Default::default() }, "plan.finish"),
            (TaskPlan { actual_finish: Some(at(2, 9)), ..Default::default() }, "plan.actual_finish"),
            (
                TaskPlan {
                    actual_start: Some(at(3, 9)),
                    actual_finish: Some(at(2, 9)),
                    ..Default::default()
                },
                "plan.actual_finish",
            ),
            (
                TaskPlan {
                    baseline: Some(Baseline { start: at(3, 9), finish: at(2, 9) }),
                    ..Default::default()
                },
                "plan.baseline",
            ),
            (TaskPlan { mode: Mode::Manual, ..Default::default() }, "plan.start"),
        ];
        for (plan, field) in cases {
            let e = plan.validate().expect_err(field);
            assert_eq!(e.field, field, "{plan:?}: {e}");
        }
        let fine = TaskPlan {
            duration: Some(960),
            work: Some(960),
            percent_complete: 100,
            points: Some(3.0),
            mode: Mode::Manual,
            start: Some(at(2, 8)),
            ..Default::default()
        };
        assert_eq!(fine.validate(), Ok(()));
    }

    #[test]
    fn patches_set_keep_and_clear() {
        let old = TaskPlan { duration: Some(480), points: Some(2.0), ..Default::default() };
        let patch: PlanPatch =
            serde_json::from_str(r#"{"points": null, "percent_complete": 50, "constraint": {"type": "must_start_on", "date": "2026-03-02T08:00:00"}}"#)
                .unwrap();
        let new = patch.apply(&old).unwrap();
        assert_eq!(new.duration, Some(480));
        assert_eq!(new.points, None);
        assert_eq!(new.percent_complete, 50);
        assert_eq!(new.constraint, Constraint::MustStartOn(at(2, 8)));
        let bad: PlanPatch = serde_json::from_str(r#"{"duration": -1}"#).unwrap();
        assert_eq!(bad.apply(&old).unwrap_err().field, "plan.duration");
        assert!(serde_json::from_str::<PlanPatch>(r#"{"durration": 1}"#).is_err());
    }

    #[test]
    fn lags_out_of_range_are_refused() {
        let t = DependencyTiming { kind: DependencyKind::StartToStart, lag: Lag::Working(MAX_MINUTES + 1) };
        assert_eq!(t.validate().unwrap_err().field, "dependency.lag");
        let t = DependencyTiming { kind: DependencyKind::FinishToFinish, lag: Lag::Percent(-50) };
        assert_eq!(t.validate(), Ok(()));
    }
}
