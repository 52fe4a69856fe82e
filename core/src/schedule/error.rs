//! Why a plan cannot be scheduled. Each error names the tasks involved.

use chrono::NaiveDateTime;

use super::plan::{Constraint, DependencyKind, Lag, TaskRef};
use super::time::show;
use crate::error::{DeskError, Invalid};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// Malformed input: `field` says where (`tasks[3].duration`, `dependencies[0].successor`,
    /// `calendars.workspace.week`), `reason` says what, naming the task.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The dependencies (possibly through summary tasks) loop; `tasks` is the loop in dependency
    /// order, its first task repeated at the end.
    #[error("dependency cycle: {}", .tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" → "))]
    Cycle { tasks: Vec<TaskRef> },
    /// A must-start-on or must-finish-on date that a predecessor makes impossible: Tandem never
    /// breaks a dependency of an automatic task to keep a pinned date.
    #[error(transparent)]
    ImpossibleConstraint(Box<Impossible>),
    /// A date computation left the supported span (1900–2199), or a calendar has no working time
    /// where it would be needed.
    #[error("{0}")]
    OutOfRange(String),
}

/// A pinned date and what rules it out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{task} cannot keep its constraint \"{constraint}\": {required_by} requires it to {} no earlier than {}",
    if matches!(constraint, Constraint::MustFinishOn(_)) { "finish" } else { "start" },
    show(*earliest)
)]
pub struct Impossible {
    pub task: TaskRef,
    pub constraint: Constraint,
    pub required_by: Requirement,
    /// The earliest start (or finish, for must-finish-on) that `required_by` allows.
    pub earliest: NaiveDateTime,
}

/// What makes a pinned date impossible.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// A dependency of the task, or of a summary above it (`via`).
    Dependency { predecessor: TaskRef, kind: DependencyKind, lag: Lag, via: Option<TaskRef> },
    /// A start- or finish-no-earlier-than date on a summary above the task.
    SummaryConstraint { summary: TaskRef, constraint: Constraint },
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requirement::Dependency { predecessor, kind, lag, via } => {
                write!(f, "predecessor {predecessor} ({} {lag}", kind.code())?;
                if let Some(s) = via {
                    write!(f, ", a dependency of summary {s}")?;
                }
                f.write_str(")")
            }
            Requirement::SummaryConstraint { summary, constraint } => {
                write!(f, "summary {summary} ({constraint})")
            }
        }
    }
}

/// Scheduling errors reach `Desk` callers as invalid input about the schedule.
impl From<ScheduleError> for DeskError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Invalid(i) => DeskError::Invalid(i.within("schedule")),
            other => DeskError::invalid("schedule", other.to_string()),
        }
    }
}
