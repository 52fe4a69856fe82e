//! Importing items from other tools: rows of a CSV file ([`csv`]) or the tasks of an MS Project
//! XML document become [`ImportRow`]s, which the `ImportItems` command validates and writes with
//! the same rules as `POST /items` (it runs `CreateItem`'s decision for every row).
//!
//! Pure: parsing, mapping and the problem report. What a bad row does to the rest is the
//! command's policy (see `commands/import.rs`).

pub mod csv;
pub mod mspdi;
mod queries;

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

use crate::ids::ItemId;
use crate::planning::{DependencyTiming, PlanPatch};

/// The most rows one import takes; more is a request to split the file.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// Working minutes in a day and a week when a duration is written in days or weeks (`3d`, `2w`):
/// the standard calendar's 8-hour day and 5-day week.
pub const MINUTES_PER_DAY: i64 = 8 * 60;
pub const MINUTES_PER_WEEK: i64 = 5 * MINUTES_PER_DAY;

/// One item to create, as the source described it. Names (types, statuses, folders) and people
/// (by email) are resolved by the command against the workspace.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    /// Where the row came from, for the problem report: the CSV line (the header is line 1) or the
    /// task's position in the document.
    pub row: u64,
    /// The source's own id for the row, which `parent` and `predecessors` of other rows name.
    pub key: Option<String>,
    /// Item type by name or id; the import's default type when absent.
    pub item_type: Option<String>,
    pub title: String,
    pub description: String,
    /// Status key or name; the workflow's create default when absent.
    pub status: Option<String>,
    pub priority: Option<String>,
    /// Users by email, or teams by name.
    pub assignees: Vec<String>,
    pub requester: Option<String>,
    pub followers: Vec<String>,
    /// Another row's key, or an existing item (`#12`).
    pub parent: Option<String>,
    /// A folder of the project, by name.
    pub folder: Option<String>,
    /// Custom field values as text, by field key (multi-choice options separated by `;`, users
    /// by email).
    pub custom: BTreeMap<String, String>,
    /// Planning fields (tasks only).
    pub plan: PlanPatch,
    /// Rows (by key) or existing items (`#12`) this one depends on.
    pub predecessors: Vec<Predecessor>,
    /// Which source column each target came from (`title` → `Summary`), so a problem found
    /// later names the column the person wrote.
    pub sources: BTreeMap<String, String>,
    /// What was already wrong while reading the row; such a row is never written.
    pub problems: Vec<Problem>,
}

impl ImportRow {
    /// A problem with this row about `target` (a field such as `title` or `custom.due`), naming
    /// the source column it came from.
    pub fn problem(&self, target: &str, message: impl Into<String>) -> Problem {
        let base = target.split(['.', '[']).next().unwrap_or(target);
        let column = self
            .sources
            .get(target)
            .or_else(|| self.sources.get(base))
            .or_else(|| target.strip_prefix("plan.").and_then(|t| self.sources.get(t)))
            .cloned();
        Problem { row: self.row, column, field: target.to_string(), message: message.into() }
    }
}

/// A scheduling dependency named by an import row.
#[derive(Debug, Clone, PartialEq)]
pub struct Predecessor {
    pub key: String,
    pub timing: DependencyTiming,
}

/// One thing wrong with one row: where (row, source column, item field) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub row: u64,
    /// The source column, when the problem is about one.
    pub column: Option<String>,
    /// The item field it maps to (`title`, `custom.due`, `plan.start`, `parent`).
    pub field: String,
    pub message: String,
}

/// An item an import created (or, in a dry run, would create).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedItem {
    pub row: u64,
    pub key: Option<String>,
    pub id: ItemId,
    /// The item's number; 0 in a dry run (numbers are given at commit).
    pub number: i64,
}

/// What an import did (or would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Whether anything was written (false for a dry run, and for an all-or-nothing import with
    /// problems).
    pub committed: bool,
    pub rows: usize,
    /// Rows without problems: created, or to be created.
    pub valid: usize,
    pub items: Vec<ImportedItem>,
    /// Dependencies created between the imported items (and existing ones).
    pub links: usize,
    pub problems: Vec<Problem>,
    /// Source columns the mapping left out.
    pub ignored_columns: Vec<String>,
}

/// A date (`2026-03-02`, the standard day's start or end) or a date and time (`2026-03-02 09:30`,
/// `2026-03-02T09:30:00`) in the workspace's wall-clock time.
pub fn parse_datetime(s: &str, end_of_day: bool) -> Result<NaiveDateTime, String> {
    let s = s.trim();
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t);
        }
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a date like 2026-03-02 or 2026-03-02 09:30"))?;
    let (h, m) = if end_of_day { (17, 0) } else { (8, 0) };
    Ok(date.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()))
}

/// A span of working time: `90m`, `4h`, `1.5h`, `3d` (8-hour days), `2w` (5-day weeks), `0`.
pub fn parse_minutes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_lowercase().replace(' ', "");
    if t == "0" {
        return Ok(0);
    }
    let unit_at = t.find(|c: char| c.is_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(unit_at);
    let per = match unit {
        "m" | "min" | "mins" | "minutes" => 1,
        "h" | "hr" | "hrs" | "hours" => 60,
        "d" | "day" | "days" => MINUTES_PER_DAY,
        "w" | "wk" | "wks" | "weeks" => MINUTES_PER_WEEK,
        _ => return Err(format!("'{s}' is not a duration like 90m, 4h, 3d or 2w")),
    };
    let n: f64 = number
        .replace(',', ".")
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("'{s}' is not a duration like 90m, 4h, 3d or 2w"))?;
    Ok((n * per as f64).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates() {
        for (text, minutes) in [("90m", 90), ("4h", 240), ("1.5h", 90), ("3d", 1440), ("2w", 4800), ("0", 0)]
        {
            assert_eq!(parse_minutes(text), Ok(minutes), "{text}");
        }
        for bad in ["3", "-1d", "3 parsecs", "", "d"] {
            assert!(parse_minutes(bad).is_err(), "{bad}");
        }
        let start = parse_datetime("2026-03-02", false).unwrap();
        assert_eq!(start.to_string(), "2026-03-02 08:00:00");
        assert_eq!(parse_datetime("2026-03-02", true).unwrap().to_string(), "2026-03-02 17:00:00");
        assert_eq!(parse_datetime("2026-03-02 09:30", true).unwrap().to_string(), "2026-03-02 09:30:00");
        assert!(parse_datetime("02/03/2026", false).unwrap_err().contains("02/03/2026"));
    }
}
