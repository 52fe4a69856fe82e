//! Scheduling: working calendars, dependencies, constraints, summary tasks, the critical path
//! method, baselines, progress, explanations, and the Gantt chart as SVG.
//!
//! Pure: [`schedule`] and [`Scheduler`] take a [`Plan`] and [`Calendars`] and return a
//! [`Schedule`]; no clock, no I/O. Tasks are identified by [`ItemId`](crate::ItemId) so stored
//! items plug in directly.
//!
//! # Semantics
//!
//! - **Time**: wall-clock time of the workspace (`NaiveDateTime`), to the minute; durations, lags
//!   and slack in working minutes of the task's calendar (its resource's calendar when that person
//!   has one, else the workspace's). A start that falls in non-working time moves to the next
//!   working minute; a finish is the end of its last working minute (Friday 17:00, not Monday
//!   08:00). A milestone stays where its predecessor finishes.
//! - **Dependencies** (MS Project): FS, SS, FF, SF with a lag in working minutes of the successor's
//!   calendar, in elapsed minutes, or as a percentage of the predecessor's duration; negative lag
//!   overlaps. A dependency *to* a summary holds every task under it; a dependency *from* a summary
//!   counts from its rolled-up start or finish.
//! - **Constraints**: SNET/FNET are lower bounds; ALAP places the task as late as its successors'
//!   scheduled dates and the project finish allow. **Dependencies win over deadlines**: a task pushed
//!   past its SNLT/FNLT date, or a project past its `deadline`, is scheduled anyway with negative
//!   slack and a [`Warning`]. MSO/MFO **pin** the date; a predecessor that would push a pinned task
//!   later is an [`ScheduleError::ImpossibleConstraint`] naming the task, the constraint and the
//!   predecessor, because Tandem never silently breaks a dependency of an automatic task.
//! - **Manual tasks and actuals** keep their dates (MS Project's manual mode); successors follow
//!   them, and a dependency they break is a [`Warning::DependencyNotMet`], not an error. A manual
//!   task's constraint is kept but not applied, so switching back to automatic restores it.
//! - **Summary tasks** roll up: earliest start, latest finish, duration-weighted percent complete,
//!   summed points and effort, and baseline span. Their own SNET/FNET/FNLT apply to all their
//!   subtasks; ALAP/MSO/MFO on a summary are rejected. A summary's start is its earliest subtask's,
//!   so late limits on that start (its SNLT, SS/SF successors) bind the subtasks that start with it.
//! - **Late dates** count back from the deadline (or the computed finish); total slack is late
//!   minus scheduled, free slack is how far a task can slip without moving any successor's
//!   scheduled date; critical means total slack ≤ 0. A summary's total slack is its subtasks'
//!   smallest.
//! - **Errors** ([`ScheduleError`]): malformed input names the field and the task; cycles name the
//!   tasks in the loop; impossible pinned dates name the task, the constraint and the predecessor.

mod calendar;
mod engine;
mod error;
pub mod gantt;
mod plan;
mod result;
mod time;

#[cfg(test)]
mod tests;

pub use calendar::{Calendar, CalendarRef, Calendars, Exception, UserCalendar, WeekPattern, WorkingHours};
pub use engine::Scheduler;
pub use error::{Impossible, Requirement, ScheduleError};
pub use plan::{Baseline, Constraint, Dependency, DependencyKind, Lag, Mode, Plan, Task, TaskRef};
pub use result::{Because, Driver, Explanation, Schedule, TaskSchedule, Warning};

/// Schedules `plan` from scratch.
pub fn schedule(plan: &Plan, calendars: &Calendars) -> Result<Schedule, ScheduleError> {
    Scheduler::new(plan.clone(), calendars.clone()).map(|s| s.into_parts().1)
}
