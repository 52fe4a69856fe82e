//! What the scheduler is given: a [`Plan`] of tasks and dependencies. Durations, efforts and lags
//! are in working minutes of the task's calendar; dates are wall-clock time (see `time.rs`).

use std::fmt;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::time::{show, show_span};
use crate::ids::{ItemId, UserId};

/// How a predecessor's date constrains its successor (MS Project semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// The successor starts no earlier than the predecessor finishes.
    #[serde(alias = "FS")]
    FinishToStart,
    /// The successor starts no earlier than the predecessor starts.
    #[serde(alias = "SS")]
    StartToStart,
    /// The successor finishes no earlier than the predecessor finishes.
    #[serde(alias = "FF")]
    FinishToFinish,
    /// The successor finishes no earlier than the predecessor starts.
    #[serde(alias = "SF")]
    StartToFinish,
}

impl DependencyKind {
    pub const ALL: [DependencyKind; 4] = [
        DependencyKind::FinishToStart,
        DependencyKind::StartToStart,
        DependencyKind::FinishToFinish,
        DependencyKind::StartToFinish,
    ];

    /// `FS`, `SS`, `FF`, `SF`.
    pub fn code(self) -> &'static str {
        match self {
            DependencyKind::FinishToStart => "FS",
            DependencyKind::StartToStart => "SS",
            DependencyKind::FinishToFinish => "FF",
            DependencyKind::StartToFinish => "SF",
        }
    }

    /// Whether the predecessor's start (rather than its finish) is what counts.
    pub fn from_start(self) -> bool {
        matches!(self, DependencyKind::StartToStart | DependencyKind::StartToFinish)
    }

    /// Whether it bounds the successor's start (rather than its finish).
    pub fn to_start(self) -> bool {
        matches!(self, DependencyKind::FinishToStart | DependencyKind::StartToStart)
    }
}

/// Delay (positive) or overlap (negative) between the predecessor's date and the successor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Lag {
    /// Working minutes of the successor's calendar.
    Working(i64),
    /// Calendar minutes, working or not (concrete curing over a weekend).
    Elapsed(i64),
    /// A percentage of the predecessor's duration, counted as working minutes of the successor's
    /// calendar (MS Project's `FS+50%`). For a summary predecessor, the span of its early dates.
    Percent(i32),
}

impl Default for Lag {
    fn default() -> Self {
        Lag::Working(0)
    }
}

impl fmt::Display for Lag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Lag::Working(m) => f.write_str(&show_span(m)),
            Lag::Elapsed(m) => write!(f, "{} elapsed", show_span(m)),
            Lag::Percent(p) => write!(f, "{p:+}%"),
        }
    }
}

/// `predecessor` → `successor`. A dependency on or from a summary task applies to the summary as
/// a whole: every task under it waits for a summary's predecessors, and a summary's successors wait
/// for its rolled-up dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dependency {
    pub predecessor: ItemId,
    pub successor: ItemId,
    pub kind: DependencyKind,
    #[serde(default)]
    pub lag: Lag,
}

impl Dependency {
    pub fn new(predecessor: ItemId, successor: ItemId, kind: DependencyKind, lag: Lag) -> Self {
        Self { predecessor, successor, kind, lag }
    }

    /// The common case: finish-to-start, no lag.
    pub fn finish_to_start(predecessor: ItemId, successor: ItemId) -> Self {
        Self::new(predecessor, successor, DependencyKind::FinishToStart, Lag::default())
    }
}

/// One date rule per task, as in MS Project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(tag = "type", content = "date", rename_all = "snake_case")]
pub enum Constraint {
    #[default]
    AsSoonAsPossible,
    /// As late as possible without delaying any successor or the project's finish.
    AsLateAsPossible,
    StartNoEarlierThan(NaiveDateTime),
    /// A deadline for the start: dependencies still win; a miss is a warning and negative slack.
    StartNoLaterThan(NaiveDateTime),
    FinishNoEarlierThan(NaiveDateTime),
    /// A deadline for the finish: dependencies still win; a miss is a warning and negative slack.
    FinishNoLaterThan(NaiveDateTime),
    /// Pins the start; a predecessor that would push it later is an error.
    MustStartOn(NaiveDateTime),
    /// Pins the finish; a predecessor that would push it later is an error.
    MustFinishOn(NaiveDateTime),
}

impl Constraint {
    pub fn date(self) -> Option<NaiveDateTime> {
        match self {
            Constraint::AsSoonAsPossible | Constraint::AsLateAsPossible => None,
            Constraint::StartNoEarlierThan(d)
            | Constraint::StartNoLaterThan(d)
            | Constraint::FinishNoEarlierThan(d)
            | Constraint::FinishNoLaterThan(d)
            | Constraint::MustStartOn(d)
            | Constraint::MustFinishOn(d) => Some(d),
        }
    }

    /// `SNET`, `MFO`, ... (MS Project's abbreviations).
    pub fn code(self) -> &'static str {
        match self {
            Constraint::AsSoonAsPossible => "ASAP",
            Constraint::AsLateAsPossible => "ALAP",
            Constraint::StartNoEarlierThan(_) => "SNET",
            Constraint::StartNoLaterThan(_) => "SNLT",
            Constraint::FinishNoEarlierThan(_) => "FNET",
            Constraint::FinishNoLaterThan(_) => "FNLT",
            Constraint::MustStartOn(_) => "MSO",
            Constraint::MustFinishOn(_) => "MFO",
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, date) = match *self {
            Constraint::AsSoonAsPossible => return f.write_str("as soon as possible"),
            Constraint::AsLateAsPossible => return f.write_str("as late as possible"),
            Constraint::StartNoEarlierThan(d) => ("start no earlier than", d),
            Constraint::StartNoLaterThan(d) => ("start no later than", d),
            Constraint::FinishNoEarlierThan(d) => ("finish no earlier than", d),
            Constraint::FinishNoLaterThan(d) => ("finish no later than", d),
            Constraint::MustStartOn(d) => ("must start on", d),
            Constraint::MustFinishOn(d) => ("must finish on", d),
        };
        write!(f, "{what} {}", show(date))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Dates follow from dependencies, constraints and calendars.
    #[default]
    Automatic,
    /// Dates are what the person entered; successors still follow them.
    Manual,
}

/// The dates a plan was agreed on, to measure slippage against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Baseline {
    pub start: NaiveDateTime,
    pub finish: NaiveDateTime,
}

/// One task. A task that another task names as `parent` is a summary task: its dates, duration,
/// effort, points and progress roll up from its children, and what was given for them here is
/// ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: ItemId,
    /// What people call it (`#1042 Replace the printer`); used in explanations, errors and the
    /// Gantt chart.
    pub name: String,
    #[serde(default)]
    pub parent: Option<ItemId>,
    /// Working minutes; 0 makes a milestone.
    pub duration: i64,
    /// Planned work in minutes, rolled up into summaries.
    #[serde(default)]
    pub effort: Option<i64>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub constraint: Constraint,
    /// Whose calendar the task follows; the workspace calendar when absent or when that person
    /// has no calendar of their own.
    #[serde(default)]
    pub resource: Option<UserId>,
    /// The current start: what a manually scheduled task keeps. Ignored for automatic tasks.
    #[serde(default)]
    pub start: Option<NaiveDateTime>,
    /// The current finish of a manually scheduled task; when absent it is start + duration.
    #[serde(default)]
    pub finish: Option<NaiveDateTime>,
    /// When work really started: the task's start from then on, whatever its mode.
    #[serde(default)]
    pub actual_start: Option<NaiveDateTime>,
    /// When work really finished (needs `actual_start`).
    #[serde(default)]
    pub actual_finish: Option<NaiveDateTime>,
    #[serde(default)]
    pub percent_complete: u8,
    /// Agile story points.
    #[serde(default)]
    pub points: Option<f64>,
    #[serde(default)]
    pub baseline: Option<Baseline>,
}

impl Task {
    /// An automatic, as-soon-as-possible task of `duration` working minutes.
    pub fn new(id: ItemId, name: impl Into<String>, duration: i64) -> Self {
        Self {
            id,
            name: name.into(),
            parent: None,
            duration,
            effort: None,
            mode: Mode::Automatic,
            constraint: Constraint::AsSoonAsPossible,
            resource: None,
            start: None,
            finish: None,
            actual_start: None,
            actual_finish: None,
            percent_complete: 0,
            points: None,
            baseline: None,
        }
    }
}

/// Tasks and dependencies to schedule from `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// No automatic task starts earlier (unless it must start on an earlier date).
    pub start: NaiveDateTime,
    /// When the project must be finished. Late dates count back from it (from the computed finish
    /// when absent); finishing later is a warning and shows as negative slack.
    #[serde(default)]
    pub deadline: Option<NaiveDateTime>,
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

impl Plan {
    pub fn new(start: NaiveDateTime) -> Self {
        Self { start, deadline: None, tasks: Vec::new(), dependencies: Vec::new() }
    }

    pub fn task(&self, id: ItemId) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// A task as errors name it: its name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    pub id: ItemId,
    pub name: String,
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" ({})", self.name, self.id)
    }
}

impl From<&Task> for TaskRef {
    fn from(t: &Task) -> Self {
        Self { id: t.id, name: t.name.clone() }
    }
}
