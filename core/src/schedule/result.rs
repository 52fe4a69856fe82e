//! What the scheduler answers: dates, slack, the critical path, warnings, and per task an
//! explanation of why its dates are where they are.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::NaiveDateTime;

use super::calendar::CalendarRef;
use super::plan::{Baseline, Constraint, DependencyKind, Lag, Plan};
use super::time::{IdBuild, show};
use crate::ids::ItemId;

/// What put a date where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Nothing else holds the task back: it starts when the project starts.
    ProjectStart,
    /// A dependency; `via` is the summary task whose dependency it is when the task inherits it.
    Dependency {
        predecessor: ItemId,
        kind: DependencyKind,
        lag: Lag,
        via: Option<ItemId>,
        /// The predecessor's start or finish the dependency counts from.
        predecessor_date: NaiveDateTime,
    },
    /// The task's own constraint.
    Constraint(Constraint),
    /// A constraint on a summary task above this one.
    SummaryConstraint { summary: ItemId, constraint: Constraint },
    /// Dates entered by hand (manual mode).
    Manual,
    /// Work really started / finished then.
    Actual,
    /// The finish is the start plus the duration.
    Duration,
    /// As late as possible: held by this successor's scheduled date, or by the project's finish
    /// when `None`.
    AsLateAsPossible { successor: Option<ItemId> },
    /// A summary's start is its earliest child's, its finish its latest child's.
    Child(ItemId),
}

/// One date's reason: the driver and the instant it asked for. When the date differs from
/// `requested`, the task's calendar moved it to working time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Because {
    pub driver: Driver,
    pub requested: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    pub calendar: CalendarRef,
    pub start: Because,
    pub finish: Because,
}

/// Something the schedule honours only partly: it is still produced, and the affected dates show
/// negative slack or a broken dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A manually scheduled task, or one with actual dates, sits earlier than a dependency allows.
    DependencyNotMet {
        task: ItemId,
        predecessor: ItemId,
        kind: DependencyKind,
        /// The earliest start (or finish) the dependency allows.
        earliest: NaiveDateTime,
    },
    /// A start-no-later-than or finish-no-later-than date missed because dependencies push the task
    /// later (dependencies win).
    ConstraintMissed { task: ItemId, constraint: Constraint, by_minutes: i64 },
    /// The project finishes after its deadline.
    DeadlineMissed { deadline: NaiveDateTime, finish: NaiveDateTime },
}

/// The schedule of one task. Slack is in working minutes of the task's calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSchedule {
    pub id: ItemId,
    pub summary: bool,
    pub milestone: bool,
    /// Where the task is scheduled (the early dates, except for as-late-as-possible tasks).
    pub start: NaiveDateTime,
    pub finish: NaiveDateTime,
    pub early_start: NaiveDateTime,
    pub early_finish: NaiveDateTime,
    pub late_start: NaiveDateTime,
    pub late_finish: NaiveDateTime,
    /// Working minutes from start to finish.
    pub duration: i64,
    /// How far the task can slip without delaying the project (or its deadline); negative when a
    /// deadline or a no-later-than date is already missed.
    pub total_slack: i64,
    /// How far the task can slip without delaying any successor.
    pub free_slack: i64,
    /// Total slack of zero or less.
    pub critical: bool,
    pub percent_complete: u8,
    pub points: Option<f64>,
    pub effort: Option<i64>,
    pub baseline: Option<Baseline>,
    /// Start minus baseline start in working minutes (positive: late).
    pub start_variance: Option<i64>,
    pub finish_variance: Option<i64>,
    pub explanation: Explanation,
    pub warnings: Vec<Warning>,
}

/// A scheduled plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub(crate) tasks: Vec<TaskSchedule>,
    pub(crate) index: HashMap<ItemId, u32, IdBuild>,
    pub start: NaiveDateTime,
    pub finish: NaiveDateTime,
    pub deadline_warning: Option<Warning>,
    pub(crate) critical_path: Vec<ItemId>,
}

impl Schedule {
    /// Every task, in plan order.
    pub fn tasks(&self) -> &[TaskSchedule] {
        &self.tasks
    }

    pub fn task(&self, id: ItemId) -> Option<&TaskSchedule> {
        self.index.get(&id).map(|&i| &self.tasks[i as usize])
    }

    /// The chain of tasks that drives the project's finish, first to last: from the task that
    /// finishes last, back through whatever dependency set each one's start, to a task held only
    /// by the project start (or a constraint, manual dates or actuals).
    pub fn critical_path(&self) -> &[ItemId] {
        &self.critical_path
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Warning> {
        self.tasks.iter().flat_map(|t| t.warnings.iter()).chain(self.deadline_warning.iter())
    }

    /// Writes the scheduled dates back into the plan (`start`/`finish` of every task), as storing
    /// them on the items does. Scheduling the result again gives the same schedule.
    pub fn apply_to(&self, plan: &mut Plan) {
        for task in &mut plan.tasks {
            if let Some(s) = self.task(task.id) {
                task.start = Some(s.start);
                task.finish = Some(s.finish);
            }
        }
    }

    /// The explanation of one task as a sentence, e.g. `starts Mon 2024-03-04 08:00 because "Build"
    /// finishes Fri 2024-03-01 17:00 (FS +0min), moved to working time by the workspace calendar;
    /// finishes Tue 2024-03-05 17:00 after 2d of work`.
    pub fn describe(&self, plan: &Plan, id: ItemId) -> Option<String> {
        let t = self.task(id)?;
        let names: HashMap<ItemId, &str> = plan.tasks.iter().map(|t| (t.id, t.name.as_str())).collect();
        let name = |id: ItemId| names.get(&id).map_or_else(|| id.to_string(), |n| format!("\"{n}\""));
        let mut out = String::new();
        let e = &t.explanation;
        for (word, date, because, is_start) in
            [("starts", t.start, &e.start, true), ("finishes", t.finish, &e.finish, false)]
        {
            if !is_start {
                out.push_str("; ");
            }
            let _ = write!(out, "{word} {}", show(date));
            let reason = match because.driver {
                Driver::ProjectStart => format!("because the project starts {}", show(because.requested)),
                Driver::Dependency { predecessor, kind, lag, via, predecessor_date } => {
                    let verb = if kind.from_start() { "starts" } else { "finishes" };
                    let through =
                        via.map(|s| format!(", a dependency of summary {}", name(s))).unwrap_or_default();
                    format!(
                        "because {} {verb} {} ({} {lag}{through})",
                        name(predecessor),
                        show(predecessor_date),
                        kind.code()
                    )
                }
                Driver::Constraint(c) => format!("because of its constraint: {c}"),
                Driver::SummaryConstraint { summary, constraint } => {
                    format!("because summary {} has the constraint: {constraint}", name(summary))
                }
                Driver::Manual => "as scheduled by hand".to_string(),
                Driver::Actual => "as it actually happened".to_string(),
                Driver::Duration => {
                    format!("after {} of work", super::time::show_span(t.duration).trim_start_matches('+'))
                }
                Driver::AsLateAsPossible { successor: Some(s) } => {
                    format!("as late as possible without delaying {}", name(s))
                }
                Driver::AsLateAsPossible { successor: None } => {
                    "as late as possible without delaying the project's finish".to_string()
                }
                Driver::Child(c) => {
                    format!("with its {} subtask {}", if is_start { "earliest" } else { "latest" }, name(c))
                }
            };
            let _ = write!(out, " {reason}");
            // The calendar moved the date only if the driver asked for this very date.
            if because.requested != date && bounds_start(&because.driver) == Some(is_start) {
                let _ = write!(out, ", moved to working time by {}", e.calendar);
            }
        }
        Some(out)
    }
}

/// Whether a driver asks for a start (`Some(true)`) or a finish (`Some(false)`) date.
fn bounds_start(driver: &Driver) -> Option<bool> {
    let constraint = match driver {
        Driver::ProjectStart => return Some(true),
        Driver::Dependency { kind, .. } => return Some(kind.to_start()),
        Driver::Constraint(c) | Driver::SummaryConstraint { constraint: c, .. } => c,
        _ => return None,
    };
    match constraint {
        Constraint::StartNoEarlierThan(_) | Constraint::StartNoLaterThan(_) | Constraint::MustStartOn(_) => {
            Some(true)
        }
        Constraint::FinishNoEarlierThan(_)
        | Constraint::FinishNoLaterThan(_)
        | Constraint::MustFinishOn(_) => Some(false),
        Constraint::AsSoonAsPossible | Constraint::AsLateAsPossible => None,
    }
}
