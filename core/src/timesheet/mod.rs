//! Time tracking: timesheet entries on items, entered by hand or measured by a running timer
//! (start, pause, resume, stop — one running timer per person), submitted by their owner and
//! approved or rejected (with a reason) by a manager; tracked time rolled up to items (with their
//! sub-items), projects and portfolios.
//!
//! Rules (pure, checked in the commands):
//! - An entry is 1 minute to 24 hours of work ([`MAX_ENTRY_MINUTES`]) that has already started;
//!   a person's entries do not overlap (rejected ones excepted).
//! - Only drafts and rejected entries can be changed or deleted; a change makes a rejected entry a
//!   draft again. Submitted and approved entries are frozen.
//! - Nobody approves or rejects their own time; a rejection needs a reason.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{ItemId, TimeEntryId, UserId, WorkspaceId};

mod queries;

pub use queries::{TimeReport, TimeTotals};

/// The longest entry Tandem accepts: a day. A timer left running over a weekend is a mistake to
/// correct, not 60 hours of work.
pub const MAX_ENTRY_MINUTES: i64 = 24 * 60;

/// How far in the future a manual entry may start (clocks differ a little).
pub const FUTURE_TOLERANCE_MINUTES: i64 = 5;

/// Where an entry stands in the approval flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Being recorded or recorded, not yet submitted (also while its timer runs or is paused).
    Draft,
    Submitted,
    Approved,
    /// Sent back with a reason; editing it makes it a draft again.
    Rejected,
}

impl EntryStatus {
    pub const ALL: [EntryStatus; 4] =
        [EntryStatus::Draft, EntryStatus::Submitted, EntryStatus::Approved, EntryStatus::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Draft => "draft",
            EntryStatus::Submitted => "submitted",
            EntryStatus::Approved => "approved",
            EntryStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Drafts and rejected entries belong to their owner still; the others are frozen.
    pub fn editable(self) -> bool {
        matches!(self, EntryStatus::Draft | EntryStatus::Rejected)
    }
}

/// The timer of an entry being measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Timer {
    /// Counting since `since`; `minutes` of the entry were measured before.
    Running {
        since: DateTime<Utc>,
    },
    Paused,
}

/// One stretch of work by one person on one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeEntry {
    pub id: TimeEntryId,
    pub workspace_id: WorkspaceId,
    pub item: ItemId,
    pub user: UserId,
    /// When the work started (a timer: when it was first started).
    pub started_at: DateTime<Utc>,
    /// Minutes worked; while a timer runs, the minutes measured before its current run.
    pub minutes: i64,
    #[serde(default)]
    pub note: String,
    /// Present while the entry is measured by a timer.
    #[serde(default)]
    pub timer: Option<Timer>,
    pub status: EntryStatus,
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it, and when.
    #[serde(default)]
    pub reviewed_by: Option<UserId>,
    #[serde(default)]
    pub reviewed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl TimeEntry {
    pub fn running(&self) -> bool {
        matches!(self.timer, Some(Timer::Running { .. }))
    }

    /// Minutes worked as of `now`, counting a running timer's current run.
    pub fn minutes_at(&self, now: DateTime<Utc>) -> i64 {
        match self.timer {
            Some(Timer::Running { since }) => self.minutes + (now - since).num_minutes().max(0),
            _ => self.minutes,
        }
    }

    /// The span the entry covers as of `now`: `[started_at, started_at + minutes)`. For a timer,
    /// from its first start to now (or to the end of what it measured when paused).
    pub fn span_at(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        match self.timer {
            Some(Timer::Running { .. }) => (self.started_at, now.max(self.started_at)),
            _ => (self.started_at, self.started_at + Duration::minutes(self.minutes)),
        }
    }
}

/// Checks a manually entered stretch of work: its length and that it has started.
pub fn validate_manual(started_at: DateTime<Utc>, minutes: i64, now: DateTime<Utc>) -> Result<(), Invalid> {
    if minutes <= 0 {
        return Err(Invalid::new("minutes", format!("must be at least 1 (got {minutes})")));
    }
    if minutes > MAX_ENTRY_MINUTES {
        return Err(Invalid::new(
            "minutes",
            format!("{minutes} minutes is more than a day; record at most {MAX_ENTRY_MINUTES} per entry"),
        ));
    }
    if started_at > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
        return Err(Invalid::new("started_at", "lies in the future; record work that has started"));
    }
    Ok(())
}

pub fn validate_note(note: &str) -> Result<String, Invalid> {
    let note = note.trim();
    if note.chars().count() > 2000 {
        return Err(Invalid::new("note", "must be at most 2000 characters"));
    }
    if note.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid::new("note", "must not contain control characters"));
    }
    Ok(note.to_string())
}

/// The first of `others` (the same person's entries) that overlaps `[start, end)`, ignoring
/// rejected entries and the entry itself.
pub fn overlapping(
    others: &[TimeEntry],
    own: Option<TimeEntryId>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<&TimeEntry> {
    others.iter().filter(|e| Some(e.id) != own && e.status != EntryStatus::Rejected).find(|e| {
        let (a, b) = e.span_at(now);
        a < end && start < b
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    fn entry(n: u128, start: DateTime<Utc>, minutes: i64, status: EntryStatus) -> TimeEntry {
        TimeEntry {
            id: TimeEntryId(uuid::Uuid::from_u128(n)),
            workspace_id: WorkspaceId(uuid::Uuid::from_u128(1)),
            item: ItemId(uuid::Uuid::from_u128(2)),
            user: UserId(uuid::Uuid::from_u128(3)),
            started_at: start,
            minutes,
            note: String::new(),
            timer: None,
            status,
            submitted_at: None,
            reviewed_by: None,
            reviewed_at: None,
            rejection_reason: None,
            created_at: start,
            updated_at: start,
            version: 1,
        }
    }

    #[test]
    fn manual_entries_are_checked() {
        let now = t(18, 0);
        for (start, minutes, field) in [
            (t(9, 0), 0, Some("minutes")),
            (t(9, 0), -30, Some("minutes")),
            (t(9, 0), MAX_ENTRY_MINUTES + 1, Some("minutes")),
            (t(18, 30), 30, Some("started_at")),
            (t(18, 4), 30, None),
            (t(9, 0), MAX_ENTRY_MINUTES, None),
        ] {
            assert_eq!(validate_manual(start, minutes, now).err().map(|e| e.field), field.map(String::from));
        }
        assert_eq!(validate_note(" fixed it \n").unwrap(), "fixed it");
        assert_eq!(validate_note("a\u{7}b").unwrap_err().field, "note");
    }

    #[test]
    fn overlaps_ignore_rejected_entries_and_touching_ones() {
        let now = t(18, 0);
        let morning = entry(10, t(9, 0), 120, EntryStatus::Draft);
        let rejected = entry(11, t(13, 0), 60, EntryStatus::Rejected);
        let mut running = entry(12, t(15, 0), 30, EntryStatus::Draft);
        running.timer = Some(Timer::Running { since: t(16, 0) });
        let all = [morning.clone(), rejected, running.clone()];
        assert_eq!(overlapping(&all, None, t(10, 0), t(10, 30), now).map(|e| e.id), Some(morning.id));
        assert_eq!(overlapping(&all, None, t(11, 0), t(12, 0), now), None, "touching is fine");
        assert_eq!(overlapping(&all, None, t(13, 0), t(14, 0), now), None, "rejected time is free");
        assert_eq!(overlapping(&all, Some(morning.id), t(9, 0), t(10, 0), now), None, "itself");
        assert_eq!(overlapping(&all, None, t(17, 0), t(17, 30), now).map(|e| e.id), Some(running.id));
        assert_eq!(running.minutes_at(t(16, 45)), 75);
    }
}
