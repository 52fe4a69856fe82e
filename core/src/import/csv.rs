//! CSV → [`ImportRow`]s: a header row, a column mapping (header → item field) and one row per
//! item. Headers the mapping does not name are mapped when they are a field's name or a common
//! alias (`Summary` → `title`, `Assignee` → `assignees`); a column mapped to `ignore` is dropped.
//!
//! Item fields a column can map to: `key` (the row's own id, for `parent` and `predecessors`),
//! `type`, `title`, `description`, `status`, `priority`, `assignees`, `requester`, `followers`
//! (people by email, several separated by `;` or `,`; teams by name), `parent`, `folder`,
//! `start`, `finish`, `actual_start`, `actual_finish` (dates), `duration`, `work` (`4h`, `3d`),
//! `percent_complete`, `points`, `mode` (`manual`/`automatic`), `predecessors`
//! (`3;4SS+2d;#12FF`), `custom.<key>` and `ignore`. Tandem has no tags: a tags column maps to a
//! custom field or is ignored.

use std::collections::BTreeMap;

use crate::error::Invalid;
use crate::planning::DependencyTiming;
use crate::schedule::{DependencyKind, Lag, Mode};

use super::{ImportRow, MAX_IMPORT_ROWS, Predecessor, Problem, parse_datetime, parse_minutes};

/// Every field a column can map to, besides `custom.<key>`.
pub const TARGETS: [&str; 23] = [
    "key",
    "type",
    "title",
    "description",
    "status",
    "priority",
    "assignees",
    "requester",
    "followers",
    "parent",
    "folder",
    "start",
    "finish",
    "actual_start",
    "actual_finish",
    "duration",
    "work",
    "percent_complete",
    "points",
    "mode",
    "predecessors",
    "ignore",
    "custom.<key>",
];

/// The field a header means when the mapping does not say.
fn guess(header: &str) -> Option<String> {
    let h = header.trim().to_lowercase().replace([' ', '-'], "_");
    let target = match h.as_str() {
        "id" | "key" | "external_id" | "uid" => "key",
        "type" | "item_type" => "type",
        "title" | "summary" | "subject" | "name" | "task" | "task_name" => "title",
        "description" | "details" | "body" | "notes" => "description",
        "status" | "state" => "status",
        "priority" => "priority",
        "assignee" | "assignees" | "assigned_to" | "owner" => "assignees",
        "requester" | "reporter" | "requested_by" => "requester",
        "followers" | "watchers" => "followers",
        "parent" | "parent_id" => "parent",
        "folder" => "folder",
        "start" | "start_date" => "start",
        "finish" | "finish_date" | "end" | "end_date" => "finish",
        "actual_start" => "actual_start",
        "actual_finish" => "actual_finish",
        "duration" => "duration",
        "work" | "effort" => "work",
        "percent_complete" | "%_complete" | "progress" => "percent_complete",
        "points" | "story_points" => "points",
        "mode" => "mode",
        "predecessors" | "depends_on" => "predecessors",
        other => return other.strip_prefix("custom.").map(|k| format!("custom.{k}")),
    };
    Some(target.to_string())
}

fn known(target: &str) -> bool {
    TARGETS[..TARGETS.len() - 1].contains(&target)
        || target.strip_prefix("custom.").is_some_and(|k| !k.is_empty())
}

/// The rows of a CSV file and the columns left out.
#[derive(Debug, Clone, Default)]
pub struct CsvRows {
    pub rows: Vec<ImportRow>,
    pub ignored_columns: Vec<String>,
}

/// Reads `text` (UTF-8 CSV with a header row) through `mapping` (header → field). A mapping
/// that names a missing column or an unknown field, or two columns for one field, is an error
/// for the whole file; what is wrong with a single row is one of that row's problems.
pub fn read(text: &str, mapping: &BTreeMap<String, String>) -> Result<CsvRows, Invalid> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Invalid::new("csv", format!("the header row cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(Invalid::new("csv", "the file has no header row"));
    }
    for header in mapping.keys() {
        if !headers.contains(header) {
            return Err(Invalid::new(
                format!("mapping.{header}"),
                format!("there is no column '{header}'; the columns are: {}", headers.join(", ")),
            ));
        }
    }
    let mut targets: Vec<Option<String>> = Vec::new();
    let mut ignored = Vec::new();
    for header in &headers {
        let target = match mapping.get(header) {
            Some(t) => {
                let t = t.trim().to_string();
                if !known(&t) {
                    return Err(Invalid::new(
                        format!("mapping.{header}"),
                        format!("unknown field '{t}'; known: {}", TARGETS.join(", ")),
                    ));
                }
                Some(t)
            }
            None => guess(header),
        };
        match target {
            Some(t) if t != "ignore" => {
                if let Some(i) = targets.iter().position(|x| x.as_deref() == Some(t.as_str())) {
                    return Err(Invalid::new(
                        format!("mapping.{header}"),
                        format!("columns '{}' and '{header}' both map to {t}", headers[i]),
                    ));
                }
                targets.push(Some(t));
            }
            _ => {
                if !header.is_empty() {
                    ignored.push(header.clone());
                }
                targets.push(None);
            }
        }
    }
    if !targets.iter().any(|t| t.as_deref() == Some("title")) {
        return Err(Invalid::new(
            "mapping",
            format!("no column maps to title; the columns are: {}", headers.join(", ")),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or_default();
            Invalid::new("csv", format!("line {line}: {e}"))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or_default();
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() >= MAX_IMPORT_ROWS {
            return Err(Invalid::new("csv", format!("more than {MAX_IMPORT_ROWS} rows; split the file")));
        }
        let mut row = ImportRow { row: line, ..Default::default() };
        for (header, target) in headers.iter().zip(&targets) {
            if let Some(t) = target {
                row.sources.insert(t.clone(), header.clone());
            }
        }
        if record.len() != headers.len() {
            row.problems.push(Problem {
                row: line,
                column: None,
                field: String::new(),
                message: format!("has {} fields; the header has {}", record.len(), headers.len()),
            });
        }
        for (cell, target) in record.iter().zip(&targets) {
            let (Some(target), cell) = (target, cell.trim()) else { continue };
            if cell.is_empty() {
                continue;
            }
            if let Err(message) = set(&mut row, target, cell) {
                let p = row.problem(target, message);
                row.problems.push(p);
            }
        }
        rows.push(row);
    }
    Ok(CsvRows { rows, ignored_columns: ignored })
}

fn list(cell: &str) -> Vec<String> {
    cell.split([';', ',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn set(row: &mut ImportRow, target: &str, cell: &str) -> Result<(), String> {
    let text = Some(cell.to_string());
    let plan = &mut row.plan;
    match target {
        "key" => row.key = text,
        "type" => row.item_type = text,
        "title" => row.title = cell.to_string(),
        "description" => row.description = cell.to_string(),
        "status" => row.status = text,
        "priority" => row.priority = Some(cell.to_lowercase()),
        "assignees" => row.assignees = list(cell),
        "requester" => row.requester = text,
        "followers" => row.followers = list(cell),
        "parent" => row.parent = text,
        "folder" => row.folder = text,
        "start" => plan.start = Some(Some(parse_datetime(cell, false)?)),
        "finish" => plan.finish = Some(Some(parse_datetime(cell, true)?)),
        "actual_start" => plan.actual_start = Some(Some(parse_datetime(cell, false)?)),
        "actual_finish" => plan.actual_finish = Some(Some(parse_datetime(cell, true)?)),
        "duration" => plan.duration = Some(Some(parse_minutes(cell)?)),
        "work" => plan.work = Some(Some(parse_minutes(cell)?)),
        "percent_complete" => {
            let n: f64 = cell
                .trim_end_matches('%')
                .trim()
                .parse()
                .map_err(|_| format!("'{cell}' is not a percentage like 40 or 40%"))?;
            if !(0.0..=100.0).contains(&n) {
                return Err(format!("{cell} is not between 0 and 100"));
            }
            plan.percent_complete = Some(n.round() as u8);
        }
        "points" => {
            let n: f64 = cell.replace(',', ".").parse().map_err(|_| format!("'{cell}' is not a number"))?;
            plan.points = Some(Some(n));
        }
        "mode" => {
            plan.mode = Some(match cell.to_lowercase().as_str() {
                "manual" | "manually scheduled" => Mode::Manual,
                "auto" | "automatic" | "auto scheduled" => Mode::Automatic,
                _ => return Err(format!("'{cell}' is not manual or automatic")),
            })
        }
        "predecessors" => {
            row.predecessors = list(cell).iter().map(|p| predecessor(p)).collect::<Result<_, _>>()?;
        }
        custom => {
            let key = custom.strip_prefix("custom.").unwrap_or(custom);
            row.custom.insert(key.to_string(), cell.to_string());
        }
    }
    Ok(())
}

/// `3`, `3SS`, `3FS+2d`, `task-7FF-4h`, `#12SF+50%`: a key, an optional type (finish-to-start
/// when absent) and an optional lag.
pub fn predecessor(text: &str) -> Result<Predecessor, String> {
    let t = text.trim();
    let (head, lag) = match t.rfind(['+', '-']) {
        Some(i) if i > 0 && t[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => (&t[..i], Some(&t[i..])),
        _ => (t, None),
    };
    // The type is the last two characters, compared as ASCII: uppercasing first could change the
    // text's length (`ß` → `SS`) and cut inside a character.
    let suffix = head.len().checked_sub(2).filter(|&at| at > 0 && head.is_char_boundary(at));
    let code = suffix.and_then(|at| {
        ["FS", "SS", "FF", "SF"].into_iter().find(|k| head[at..].eq_ignore_ascii_case(k)).map(|k| (at, k))
    });
    let (key, kind) = match code {
        Some((at, code)) => (
            &head[..at],
            match code {
                "SS" => DependencyKind::StartToStart,
                "FF" => DependencyKind::FinishToFinish,
                "SF" => DependencyKind::StartToFinish,
                _ => DependencyKind::FinishToStart,
            },
        ),
        None => (head, DependencyKind::FinishToStart),
    };
    let lag = match lag {
        None => Lag::default(),
        Some(l) => {
            let (sign, rest) = l.split_at(1);
            let sign: i32 = if sign == "-" { -1 } else { 1 };
            if let Some(p) = rest.strip_suffix('%') {
                Lag::Percent(
                    sign * p.parse::<i32>().map_err(|_| format!("'{l}' is not a lag like +2d or +50%"))?,
                )
            } else {
                Lag::Working(i64::from(sign) * parse_minutes(rest)?)
            }
        }
    };
    if key.is_empty() {
        return Err(format!("'{text}' names no predecessor"));
    }
    Ok(Predecessor { key: key.to_string(), timing: DependencyTiming { kind, lag } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(text: &str, mapping: &[(&str, &str)]) -> CsvRows {
        let m = mapping.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        read(text, &m).unwrap()
    }

    #[test]
    fn headers_map_by_name_alias_or_mapping() {
        let csv = "ID,Summary,Owner,Start,Duration,Ticket size,Colour\n\
                   1,Order printers,ana@clinic.example;bo@clinic.example,2026-03-02,3d,large,red\n";
        let r = read_ok(csv, &[("Ticket size", "custom.size"), ("Colour", "ignore")]);
        assert_eq!(r.ignored_columns, vec!["Colour".to_string()]);
        let row = &r.rows[0];
        assert_eq!(row.row, 2);
        assert_eq!(row.key.as_deref(), Some("1"));
        assert_eq!(row.title, "Order printers");
        assert_eq!(row.assignees, vec!["ana@clinic.example", "bo@clinic.example"]);
        assert_eq!(row.plan.duration, Some(Some(1440)));
        assert_eq!(row.custom.get("size").map(String::as_str), Some("large"));
        assert!(row.problems.is_empty(), "{:?}", row.problems);
        assert_eq!(row.problem("custom.size", "x").column.as_deref(), Some("Ticket size"));
        assert_eq!(row.problem("plan.duration", "x").column.as_deref(), Some("Duration"));
    }

    #[test]
    fn bad_cells_are_problems_of_their_row_naming_the_column() {
        let csv = "title,start,percent_complete\nA,2026-13-45,50\nB,2026-03-02,150\nC\n";
        let r = read_ok(csv, &[]);
        let p: Vec<(u64, Option<&str>)> =
            r.rows.iter().flat_map(|row| row.problems.iter().map(|p| (p.row, p.column.as_deref()))).collect();
        assert_eq!(p, vec![(2, Some("start")), (3, Some("percent_complete")), (4, None)]);
    }

    #[test]
    fn mapping_errors_name_the_column() {
        let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let e = read("title,x\nA,1\n", &m(&[("y", "title")])).unwrap_err();
        assert_eq!(e.field, "mapping.y");
        let e = read("title,x\nA,1\n", &m(&[("x", "colour")])).unwrap_err();
        assert_eq!(e.field, "mapping.x");
        let e = read("title,x\nA,1\n", &m(&[("x", "title")])).unwrap_err();
        assert!(e.reason.contains("both map to title"), "{e}");
        let e = read("x\n1\n", &m(&[])).unwrap_err();
        assert!(e.reason.contains("no column maps to title"), "{e}");
    }

    #[test]
    fn predecessors_with_types_and_lags() {
        let p = predecessor("3").unwrap();
        assert_eq!(
            (p.key.as_str(), p.timing.kind, p.timing.lag),
            ("3", DependencyKind::FinishToStart, Lag::Working(0))
        );
        let p = predecessor("3SS+2d").unwrap();
        assert_eq!(
            (p.key.as_str(), p.timing.kind, p.timing.lag),
            ("3", DependencyKind::StartToStart, Lag::Working(960))
        );
        let p = predecessor("task-7FF-4h").unwrap();
        assert_eq!(
            (p.key.as_str(), p.timing.kind, p.timing.lag),
            ("task-7", DependencyKind::FinishToFinish, Lag::Working(-240))
        );
        let p = predecessor("#12SF+50%").unwrap();
        assert_eq!(
            (p.key.as_str(), p.timing.kind, p.timing.lag),
            ("#12", DependencyKind::StartToFinish, Lag::Percent(50))
        );
        // A key that looks like a type alone is a key.
        assert_eq!(predecessor("FS").unwrap().key, "FS");
        assert!(predecessor("3FS+2x").is_err());
        // Text whose uppercase is longer or shorter than itself is a key, never cut inside a
        // character.
        assert_eq!(predecessor("x\u{FB00}").unwrap().key, "x\u{FB00}");
        assert_eq!(predecessor("stra\u{DF}e").unwrap().key, "stra\u{DF}e");
        assert_eq!(predecessor("7ss").unwrap().timing.kind, DependencyKind::StartToStart);
    }
}
