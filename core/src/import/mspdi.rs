//! MS Project XML (MSPDI): reading a document into a [`Document`] (and then [`ImportRow`]s) and
//! writing one from a project's tasks.
//!
//! What travels: tasks (name, notes, outline level → hierarchy, summary), durations and work,
//! manual/automatic mode, constraints, percent complete, actual and baseline dates, predecessor
//! links (FS/SS/FF/SF with lag in working time, elapsed time or percent) and the project's base
//! calendar (week pattern and exceptions). Everything else in a document (resources,
//! assignments, other calendars, extended attributes) is ignored on import.
//!
//! Durations are written as MS Project does (`PT16H0M0S`, working time); lags in tenths of a
//! minute (`LinkLag`) with a `LagFormat` (7 days, 8 elapsed days, 5 hours, 19 percent...).

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDateTime, Weekday};
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::Invalid;
use crate::planning::{DependencyTiming, PlanPatch, TaskPlan};
use crate::schedule::{
    Baseline, Calendar, Constraint, DependencyKind, Exception, Lag, Mode, WeekPattern, WorkingHours,
};

use super::{ImportRow, MAX_IMPORT_ROWS, Predecessor};

/// A project as MSPDI describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub name: String,
    pub start: Option<NaiveDateTime>,
    pub calendar: Calendar,
    pub tasks: Vec<MspTask>,
}

/// One task of a document, in outline order.
#[derive(Debug, Clone, PartialEq)]
pub struct MspTask {
    pub uid: i64,
    pub name: String,
    pub notes: String,
    /// 1 for top-level tasks; a task is under the nearest earlier task one level up.
    pub outline_level: u32,
    pub summary: bool,
    pub plan: TaskPlan,
    /// Scheduled dates, written for every task (MS Project expects them) and read for manual
    /// tasks only: automatic tasks are rescheduled by Tandem.
    pub start: Option<NaiveDateTime>,
    pub finish: Option<NaiveDateTime>,
    /// Predecessors by UID.
    pub predecessors: Vec<(i64, DependencyTiming)>,
}

// ---------------------------------------------------------------------------------------------
// A small element tree: MSPDI is data, not mixed content.

#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }
}

/// Line and column (1-based) of a byte offset, for errors.
fn position(text: &str, offset: usize) -> String {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    format!("line {line}, column {column}")
}

fn parse_tree(xml: &str) -> Result<Element, Invalid> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    let err = |reader: &Reader<&[u8]>, what: String| {
        Invalid::new("xml", format!("{} (at {})", what, position(xml, reader.buffer_position() as usize)))
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if stack.len() > 64 {
                    return Err(err(&reader, "elements nest more than 64 deep".into()));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Element { name, ..Default::default() });
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if let Some(top) = stack.last_mut() {
                    top.children.push(Element { name, ..Default::default() });
                }
            }
            Ok(Event::End(_)) => {
                let done = stack.pop().unwrap_or_default();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Err(err(&reader, "an end tag closes nothing".into())),
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|e| err(&reader, format!("bad text: {e}")))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Ok(Event::CData(t)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(err(&reader, format!("not well-formed XML: {e}"))),
        }
    }
    if stack.len() != 1 {
        return Err(Invalid::new(
            "xml",
            format!("the document ends inside <{}>", stack.last().map_or("", |e| &e.name)),
        ));
    }
    let mut root = stack.pop().unwrap_or_default();
    match root.children.pop() {
        Some(project) if project.name == "Project" => Ok(project),
        Some(other) => {
            Err(Invalid::new("xml", format!("the root element is <{}>, not <Project>", other.name)))
        }
        None => Err(Invalid::new("xml", "the document is empty")),
    }
}

// ---------------------------------------------------------------------------------------------
// Values.

fn datetime(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M"))
        .ok()
}

fn show(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `PT16H30M0S`, `P2DT4H0M0S` (a day is 24 hours), `PT0H0M0S` → minutes.
pub fn duration_minutes(s: &str) -> Option<i64> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    if days.is_empty() && time.is_empty() {
        return None;
    }
    let mut minutes = 0f64;
    if !days.is_empty() {
        minutes += days.strip_suffix('D')?.parse::<f64>().ok()? * 1440.0;
    }
    let mut number = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = number.parse().ok()?;
                minutes += match c {
                    'H' => n * 60.0,
                    'M' => n,
                    _ => n / 60.0,
                };
                number.clear();
            }
            _ => return None,
        }
    }
    if !number.is_empty() || !minutes.is_finite() || minutes < 0.0 {
        return None;
    }
    Some(minutes.round() as i64)
}

fn show_duration(minutes: i64) -> String {
    format!("PT{}H{}M0S", minutes / 60, minutes % 60)
}

fn constraint(kind: i64, date: Option<NaiveDateTime>) -> Result<Constraint, String> {
    let need = || date.ok_or_else(|| format!("constraint type {kind} needs a ConstraintDate"));
    Ok(match kind {
        0 => Constraint::AsSoonAsPossible,
        1 => Constraint::AsLateAsPossible,
        2 => Constraint::MustStartOn(need()?),
        3 => Constraint::MustFinishOn(need()?),
        4 => Constraint::StartNoEarlierThan(need()?),
        5 => Constraint::StartNoLaterThan(need()?),
        6 => Constraint::FinishNoEarlierThan(need()?),
        7 => Constraint::FinishNoLaterThan(need()?),
        other => return Err(format!("{other} is not a constraint type (0–7)")),
    })
}

fn constraint_code(c: Constraint) -> i64 {
    match c {
        Constraint::AsSoonAsPossible => 0,
        Constraint::AsLateAsPossible => 1,
        Constraint::MustStartOn(_) => 2,
        Constraint::MustFinishOn(_) => 3,
        Constraint::StartNoEarlierThan(_) => 4,
        Constraint::StartNoLaterThan(_) => 5,
        Constraint::FinishNoEarlierThan(_) => 6,
        Constraint::FinishNoLaterThan(_) => 7,
    }
}

fn link_kind(code: i64) -> Option<DependencyKind> {
    Some(match code {
        0 => DependencyKind::FinishToFinish,
        1 => DependencyKind::FinishToStart,
        2 => DependencyKind::StartToFinish,
        3 => DependencyKind::StartToStart,
        _ => return None,
    })
}

fn link_code(kind: DependencyKind) -> i64 {
    match kind {
        DependencyKind::FinishToFinish => 0,
        DependencyKind::FinishToStart => 1,
        DependencyKind::StartToFinish => 2,
        DependencyKind::StartToStart => 3,
    }
}

/// `LinkLag` (tenths of a minute; tenths of a percent for percent formats) and `LagFormat`.
fn lag(value: i64, format: i64) -> Lag {
    match format {
        // Elapsed minutes, hours, days, weeks, months.
        4 | 6 | 8 | 10 | 12 => Lag::Elapsed(value / 10),
        19 | 20 => Lag::Percent((value / 10) as i32),
        _ => Lag::Working(value / 10),
    }
}

/// The lag as MS Project writes it: days when whole days, else hours, else minutes.
fn show_lag(lag: Lag) -> (i64, i64) {
    let pick = |m: i64, elapsed: bool| {
        let day = if elapsed { 1440 } else { super::MINUTES_PER_DAY };
        let format = if m % day == 0 {
            7
        } else if m % 60 == 0 {
            5
        } else {
            3
        };
        (m * 10, if elapsed { format + 1 } else { format })
    };
    match lag {
        Lag::Working(m) => pick(m, false),
        Lag::Elapsed(m) => pick(m, true),
        Lag::Percent(p) => (i64::from(p) * 10, 19),
    }
}

const WEEKDAYS: [Weekday; 7] =
    [Weekday::Sun, Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat];

fn hours_of(e: &Element) -> Result<WorkingHours, String> {
    if e.text_of("DayWorking") != Some("1") {
        return Ok(WorkingHours::none());
    }
    let mut spans = Vec::new();
    for t in e.child("WorkingTimes").into_iter().flat_map(|w| w.all("WorkingTime")) {
        let (Some(from), Some(to)) = (t.text_of("FromTime"), t.text_of("ToTime")) else { continue };
        let to = if to.starts_with("00:00") { "24:00" } else { to };
        spans.push(format!("{}-{}", &from[..from.len().min(5)], &to[..to.len().min(5)]));
    }
    WorkingHours::parse(&spans.join(" ")).map_err(|e| e.reason)
}

fn read_calendar(c: &Element) -> Result<Calendar, String> {
    let mut week = WeekPattern { days: Default::default() };
    let mut exceptions = Vec::new();
    for d in c.child("WeekDays").into_iter().flat_map(|w| w.all("WeekDay")) {
        let day_type: i64 = d.text_of("DayType").and_then(|t| t.parse().ok()).unwrap_or(-1);
        let hours = hours_of(d)?;
        match day_type {
            1..=7 => week.days[WEEKDAYS[(day_type - 1) as usize].num_days_from_monday() as usize] = hours,
            0 => {
                let period = d.child("TimePeriod").ok_or("an exception day needs a TimePeriod")?;
                exceptions.push(exception(period, "", hours)?);
            }
            other => return Err(format!("{other} is not a DayType (0–7)")),
        }
    }
    for x in c.child("Exceptions").into_iter().flat_map(|w| w.all("Exception")) {
        let period = x.child("TimePeriod").ok_or("an exception needs a TimePeriod")?;
        exceptions.push(exception(period, x.text_of("Name").unwrap_or(""), hours_of(x)?)?);
    }
    Ok(Calendar { week, exceptions })
}

fn exception(period: &Element, name: &str, hours: WorkingHours) -> Result<Exception, String> {
    let date = |tag: &str| {
        period.text_of(tag).and_then(datetime).map(|t| t.date()).ok_or(format!("the exception has no {tag}"))
    };
    Ok(Exception { name: name.to_string(), from: date("FromDate")?, to: date("ToDate")?, hours })
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Reads an MSPDI document. Malformed XML is an error naming the line and column; a bad value
/// names the task (`Tasks/Task[UID=7]/Duration`).
pub fn read(xml: &str) -> Result<Document, Invalid> {
    let project = parse_tree(xml)?;
    let name = project.text_of("Name").or(project.text_of("Title")).unwrap_or("").to_string();
    let calendars: Vec<&Element> =
        project.child("Calendars").into_iter().flat_map(|c| c.all("Calendar")).collect();
    let base = project.text_of("CalendarUID");
    let chosen = calendars
        .iter()
        .find(|c| base.is_some() && c.text_of("UID") == base)
        .or_else(|| calendars.iter().find(|c| c.text_of("IsBaseCalendar") == Some("1")));
    let calendar = match chosen {
        Some(c) => read_calendar(c).map_err(|e| Invalid::new("Calendars", e))?,
        None => Calendar { week: WeekPattern::standard(), exceptions: Vec::new() },
    };
    let mut tasks = Vec::new();
    for t in project.child("Tasks").into_iter().flat_map(|t| t.all("Task")) {
        if tasks.len() >= MAX_IMPORT_ROWS {
            return Err(Invalid::new("Tasks", format!("more than {MAX_IMPORT_ROWS} tasks")));
        }
        let uid: i64 = t.text_of("UID").and_then(|u| u.parse().ok()).ok_or_else(|| {
            Invalid::new(format!("Tasks/Task[{}]/UID", tasks.len() + 1), "every task needs a numeric UID")
        })?;
        let level: u32 = t.text_of("OutlineLevel").and_then(|l| l.parse().ok()).unwrap_or(1);
        // The project summary task (UID 0, level 0) is the project itself; null tasks are blank rows.
        if level == 0 || t.text_of("IsNull") == Some("1") {
            continue;
        }
        let at = |field: &str| format!("Tasks/Task[UID={uid}]/{field}");
        let bad = |field: &str, value: &str, what: &str| {
            Invalid::new(at(field), format!("'{value}' is not {what}"))
        };
        let date = |field: &str| -> Result<Option<NaiveDateTime>, Invalid> {
            match t.text_of(field) {
                None => Ok(None),
                Some(v) => {
                    datetime(v).map(Some).ok_or_else(|| bad(field, v, "a date like 2026-03-02T08:00:00"))
                }
            }
        };
        let span = |field: &str| -> Result<Option<i64>, Invalid> {
            match t.text_of(field) {
                None => Ok(None),
                Some(v) => {
                    duration_minutes(v).map(Some).ok_or_else(|| bad(field, v, "a duration like PT16H0M0S"))
                }
            }
        };
        let number = |field: &str| -> Result<Option<i64>, Invalid> {
            match t.text_of(field) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| bad(field, v, "a whole number")),
            }
        };
        let manual = t.text_of("Manual") == Some("1");
        let kind = number("ConstraintType")?.unwrap_or(0);
        let constraint =
            constraint(kind, date("ConstraintDate")?).map_err(|e| Invalid::new(at("ConstraintType"), e))?;
        let percent = number("PercentComplete")?.unwrap_or(0);
        if !(0..=100).contains(&percent) {
            return Err(Invalid::new(at("PercentComplete"), format!("{percent} is not between 0 and 100")));
        }
        let baseline =
            t.all("Baseline").find(|b| b.text_of("Number").is_none_or(|n| n == "0")).and_then(|b| {
                Some(Baseline {
                    start: datetime(b.text_of("Start")?)?,
                    finish: datetime(b.text_of("Finish")?)?,
                })
            });
        let (start, finish) = (date("Start")?, date("Finish")?);
        let summary = t.text_of("Summary") == Some("1");
        let plan = TaskPlan {
            duration: if summary { None } else { span("Duration")? },
            work: span("Work")?.filter(|w| *w > 0),
            constraint,
            mode: if manual { Mode::Manual } else { Mode::Automatic },
            start: if manual { start } else { None },
            finish: if manual { finish } else { None },
            actual_start: date("ActualStart")?,
            actual_finish: date("ActualFinish")?,
            percent_complete: percent as u8,
            points: None,
            baseline,
            resource: None,
        };
        let mut predecessors = Vec::new();
        for link in t.all("PredecessorLink") {
            let Some(p) = link.text_of("PredecessorUID").and_then(|u| u.parse::<i64>().ok()) else {
                return Err(Invalid::new(at("PredecessorLink"), "names no PredecessorUID"));
            };
            let code = link.text_of("Type").and_then(|c| c.parse().ok()).unwrap_or(1);
            let kind = link_kind(code).ok_or_else(|| {
                Invalid::new(at("PredecessorLink/Type"), format!("{code} is not a link type (0–3)"))
            })?;
            let value = link.text_of("LinkLag").and_then(|l| l.parse().ok()).unwrap_or(0);
            let format = link.text_of("LagFormat").and_then(|l| l.parse().ok()).unwrap_or(7);
            predecessors.push((p, DependencyTiming { kind, lag: lag(value, format) }));
        }
        tasks.push(MspTask {
            uid,
            name: t.text_of("Name").unwrap_or("").to_string(),
            notes: t.text_of("Notes").unwrap_or("").to_string(),
            outline_level: level,
            summary,
            plan,
            start,
            finish,
            predecessors,
        });
    }
    Ok(Document { name, start: project.text_of("StartDate").and_then(datetime), calendar, tasks })
}

impl Document {
    /// The tasks as import rows: the UID is the key, the parent is the nearest earlier task one
    /// outline level up, `row` is the task's position (1-based).
    pub fn rows(&self) -> Vec<ImportRow> {
        let mut stack: Vec<(u32, i64)> = Vec::new();
        let mut rows = Vec::new();
        for (i, t) in self.tasks.iter().enumerate() {
            while stack.last().is_some_and(|(level, _)| *level >= t.outline_level) {
                stack.pop();
            }
            let parent = stack.last().map(|(_, uid)| uid.to_string());
            stack.push((t.outline_level, t.uid));
            let p = &t.plan;
            let plan = PlanPatch {
                duration: p.duration.map(Some),
                work: p.work.map(Some),
                constraint: (p.constraint != Constraint::AsSoonAsPossible).then_some(p.constraint),
                mode: (p.mode != Mode::Automatic).then_some(p.mode),
                start: p.start.map(Some),
                finish: p.finish.map(Some),
                actual_start: p.actual_start.map(Some),
                actual_finish: p.actual_finish.map(Some),
                percent_complete: (p.percent_complete > 0).then_some(p.percent_complete),
                points: None,
                baseline: p.baseline.map(Some),
                resource: None,
            };
            let mut sources = BTreeMap::new();
            for f in ["title", "description", "parent", "predecessors", "plan"] {
                sources.insert(f.to_string(), format!("Task[UID={}]", t.uid));
            }
            rows.push(ImportRow {
                row: i as u64 + 1,
                key: Some(t.uid.to_string()),
                title: if t.name.is_empty() { format!("Task {}", t.uid) } else { t.name.clone() },
                description: t.notes.clone(),
                parent,
                plan,
                predecessors: t
                    .predecessors
                    .iter()
                    .map(|(uid, timing)| Predecessor { key: uid.to_string(), timing: *timing })
                    .collect(),
                sources,
                ..Default::default()
            });
        }
        rows
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn tag(out: &mut String, indent: usize, name: &str, value: impl std::fmt::Display) {
    let value = escape(&value.to_string());
    out.push_str(&format!("{:indent$}<{name}>{value}</{name}>\n", ""));
}

fn write_hours(out: &mut String, indent: usize, hours: &WorkingHours) {
    tag(out, indent, "DayWorking", u8::from(hours.is_working()));
    if hours.is_working() {
        out.push_str(&format!("{:indent$}<WorkingTimes>\n", ""));
        for &(a, b) in hours.spans() {
            out.push_str(&format!("{:w$}<WorkingTime>\n", "", w = indent + 2));
            tag(out, indent + 4, "FromTime", format!("{:02}:{:02}:00", a / 60, a % 60));
            let to =
                if b == 1440 { "00:00:00".to_string() } else { format!("{:02}:{:02}:00", b / 60, b % 60) };
            tag(out, indent + 4, "ToTime", to);
            out.push_str(&format!("{:w$}</WorkingTime>\n", "", w = indent + 2));
        }
        out.push_str(&format!("{:indent$}</WorkingTimes>\n", ""));
    }
}

/// Writes a document as MS Project 2010+ reads it.
pub fn write(doc: &Document) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
    out.push_str("<Project xmlns=\"http://schemas.microsoft.com/project\">\n");
    tag(&mut out, 2, "SaveVersion", 14);
    tag(&mut out, 2, "Name", &doc.name);
    tag(&mut out, 2, "Title", &doc.name);
    if let Some(s) = doc.start {
        tag(&mut out, 2, "StartDate", show(s));
    }
    tag(&mut out, 2, "ScheduleFromStart", 1);
    tag(&mut out, 2, "CalendarUID", 1);
    tag(&mut out, 2, "MinutesPerDay", super::MINUTES_PER_DAY);
    tag(&mut out, 2, "MinutesPerWeek", super::MINUTES_PER_WEEK);
    out.push_str("  <Calendars>\n    <Calendar>\n");
    tag(&mut out, 6, "UID", 1);
    tag(&mut out, 6, "Name", "Standard");
    tag(&mut out, 6, "IsBaseCalendar", 1);
    out.push_str("      <WeekDays>\n");
    for (i, day) in WEEKDAYS.iter().enumerate() {
        out.push_str("        <WeekDay>\n");
        tag(&mut out, 10, "DayType", i + 1);
        write_hours(&mut out, 10, &doc.calendar.week.days[day.num_days_from_monday() as usize]);
        out.push_str("        </WeekDay>\n");
    }
    out.push_str("      </WeekDays>\n");
    if !doc.calendar.exceptions.is_empty() {
        out.push_str("      <Exceptions>\n");
        for x in &doc.calendar.exceptions {
            out.push_str("        <Exception>\n          <TimePeriod>\n");
            tag(&mut out, 12, "FromDate", format!("{}T00:00:00", x.from));
            tag(&mut out, 12, "ToDate", format!("{}T23:59:00", x.to));
            out.push_str("          </TimePeriod>\n");
            tag(&mut out, 10, "Name", &x.name);
            write_hours(&mut out, 10, &x.hours);
            out.push_str("        </Exception>\n");
        }
        out.push_str("      </Exceptions>\n");
    }
    out.push_str("    </Calendar>\n  </Calendars>\n  <Tasks>\n");
    let mut outline: Vec<u32> = Vec::new();
    for (i, t) in doc.tasks.iter().enumerate() {
        let level = t.outline_level.max(1) as usize;
        outline.truncate(level);
        while outline.len() < level {
            outline.push(0);
        }
        if let Some(last) = outline.last_mut() {
            *last += 1;
        }
        let number = outline.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        let p = &t.plan;
        out.push_str("    <Task>\n");
        tag(&mut out, 6, "UID", t.uid);
        tag(&mut out, 6, "ID", i + 1);
        tag(&mut out, 6, "Name", &t.name);
        if !t.notes.is_empty() {
            tag(&mut out, 6, "Notes", &t.notes);
        }
        tag(&mut out, 6, "Manual", u8::from(p.mode == Mode::Manual));
        tag(&mut out, 6, "WBS", &number);
        tag(&mut out, 6, "OutlineNumber", &number);
        tag(&mut out, 6, "OutlineLevel", level);
        tag(&mut out, 6, "Summary", u8::from(t.summary));
        tag(&mut out, 6, "Milestone", u8::from(!t.summary && p.duration.unwrap_or(0) == 0));
        if let Some(s) = t.start {
            tag(&mut out, 6, "Start", show(s));
        }
        if let Some(f) = t.finish {
            tag(&mut out, 6, "Finish", show(f));
        }
        if let Some(d) = p.duration {
            tag(&mut out, 6, "Duration", show_duration(d));
            tag(&mut out, 6, "DurationFormat", 7);
        }
        if let Some(w) = p.work {
            tag(&mut out, 6, "Work", show_duration(w));
        }
        tag(&mut out, 6, "PercentComplete", p.percent_complete);
        tag(&mut out, 6, "ConstraintType", constraint_code(p.constraint));
        if let Some(d) = p.constraint.date() {
            tag(&mut out, 6, "ConstraintDate", show(d));
        }
        if let Some(s) = p.actual_start {
            tag(&mut out, 6, "ActualStart", show(s));
        }
        if let Some(f) = p.actual_finish {
            tag(&mut out, 6, "ActualFinish", show(f));
        }
        for (uid, timing) in &t.predecessors {
            let (value, format) = show_lag(timing.lag);
            out.push_str("      <PredecessorLink>\n");
            tag(&mut out, 8, "PredecessorUID", uid);
            tag(&mut out, 8, "Type", link_code(timing.kind));
            tag(&mut out, 8, "LinkLag", value);
            tag(&mut out, 8, "LagFormat", format);
            out.push_str("      </PredecessorLink>\n");
        }
        if let Some(b) = p.baseline {
            out.push_str("      <Baseline>\n");
            tag(&mut out, 8, "Number", 0);
            tag(&mut out, 8, "Start", show(b.start));
            tag(&mut out, 8, "Finish", show(b.finish));
            out.push_str("      </Baseline>\n");
        }
        out.push_str("    </Task>\n");
    }
    out.push_str("  </Tasks>\n</Project>\n");
    out
}

/// A project's tasks as a document: `tasks` are items with their plan, `parent` among them and
/// `dates` from the schedule; UIDs are positions in outline order (1, 2, ...), so exporting
/// the same plan twice gives the same document whatever the item numbers.
#[derive(Debug, Clone)]
pub struct ExportTask {
    pub id: crate::ids::ItemId,
    pub number: i64,
    pub title: String,
    pub description: String,
    pub parent: Option<crate::ids::ItemId>,
    pub plan: TaskPlan,
    pub dates: Option<(NaiveDateTime, NaiveDateTime)>,
}

pub fn document(
    name: &str,
    start: Option<NaiveDateTime>,
    calendar: Calendar,
    tasks: &[ExportTask],
    dependencies: &[(crate::ids::ItemId, crate::ids::ItemId, DependencyTiming)],
) -> Document {
    let ids: HashMap<_, _> = tasks.iter().map(|t| (t.id, t)).collect();
    let mut children: HashMap<Option<crate::ids::ItemId>, Vec<&ExportTask>> = HashMap::new();
    for t in tasks {
        let parent = t.parent.filter(|p| ids.contains_key(p));
        children.entry(parent).or_default().push(t);
    }
    for list in children.values_mut() {
        list.sort_by_key(|t| t.number);
    }
    // Depth-first, siblings by number.
    let mut order: Vec<(&ExportTask, u32)> = Vec::new();
    let mut stack: Vec<(&ExportTask, u32)> =
        children.get(&None).into_iter().flatten().rev().map(|t| (*t, 1)).collect();
    while let Some((t, level)) = stack.pop() {
        order.push((t, level));
        if let Some(kids) = children.get(&Some(t.id)) {
            stack.extend(kids.iter().rev().map(|k| (*k, level + 1)));
        }
    }
    let uid: HashMap<_, i64> = order.iter().enumerate().map(|(i, (t, _))| (t.id, i as i64 + 1)).collect();
    let tasks = order
        .iter()
        .map(|(t, level)| {
            let summary = children.get(&Some(t.id)).is_some_and(|k| !k.is_empty());
            let mut predecessors: Vec<(i64, DependencyTiming)> = dependencies
                .iter()
                .filter(|(_, to, _)| *to == t.id)
                .filter_map(|(from, _, timing)| uid.get(from).map(|u| (*u, *timing)))
                .collect();
            predecessors.sort_by_key(|(u, _)| *u);
            let mut plan = t.plan.clone();
            plan.resource = None;
            plan.points = None;
            if summary {
                plan.duration = None;
            }
            MspTask {
                uid: uid[&t.id],
                name: t.title.clone(),
                notes: t.description.clone(),
                outline_level: *level,
                summary,
                plan,
                start: t.dates.map(|d| d.0),
                finish: t.dates.map(|d| d.1),
                predecessors,
            }
        })
        .collect();
    Document { name: name.to_string(), start, calendar, tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 3, d).and_then(|d| d.and_hms_opt(h, 0, 0)).unwrap()
    }

    #[test]
    fn durations() {
        for (text, minutes) in [("PT16H0M0S", 960), ("PT0H30M0S", 30), ("P1DT2H", 1560), ("PT7H59M60S", 480)]
        {
            assert_eq!(duration_minutes(text), Some(minutes), "{text}");
        }
        for bad in ["16H", "PT16X", "PT-1H", "P", "PT5"] {
            assert_eq!(duration_minutes(bad), None, "{bad}");
        }
        assert_eq!(show_duration(960), "PT16H0M0S");
    }

    #[test]
    fn a_written_document_reads_back_the_same() {
        let mut calendar = Calendar { week: WeekPattern::standard(), exceptions: Vec::new() };
        calendar
            .exceptions
            .push(Exception::holiday("Easter Monday", chrono::NaiveDate::from_ymd_opt(2026, 4, 6).unwrap()));
        let task = |uid: i64, name: &str, level: u32, summary: bool, plan: TaskPlan| MspTask {
            uid,
            name: name.into(),
            notes: String::new(),
            outline_level: level,
            summary,
            plan,
            start: Some(at(2, 8)),
            finish: Some(at(3, 17)),
            predecessors: Vec::new(),
        };
        let mut doc = Document {
            name: "Leiden <clinic> & co".into(),
            start: Some(at(2, 8)),
            calendar,
            tasks: vec![
                task(1, "Fit-out", 1, true, TaskPlan::default()),
                task(
                    2,
                    "Order",
                    2,
                    false,
                    TaskPlan {
                        duration: Some(960),
                        work: Some(1200),
                        constraint: Constraint::MustFinishOn(at(4, 17)),
                        percent_complete: 30,
                        actual_start: Some(at(2, 8)),
                        baseline: Some(Baseline { start: at(2, 8), finish: at(3, 17) }),
                        ..Default::default()
                    },
                ),
                task(
                    3,
                    "Press",
                    1,
                    false,
                    TaskPlan {
                        duration: Some(240),
                        mode: Mode::Manual,
                        start: Some(at(2, 8)),
                        finish: Some(at(3, 17)),
                        ..Default::default()
                    },
                ),
            ],
        };
        doc.tasks[2].predecessors = vec![
            (2, DependencyTiming { kind: DependencyKind::StartToStart, lag: Lag::Working(960) }),
            (1, DependencyTiming { kind: DependencyKind::FinishToFinish, lag: Lag::Elapsed(-90) }),
        ];
        doc.tasks[1].predecessors =
            vec![(1, DependencyTiming { kind: DependencyKind::StartToFinish, lag: Lag::Percent(25) })];
        let xml = write(&doc);
        let back = read(&xml).unwrap();
        assert_eq!(back, doc, "{xml}");
        assert_eq!(write(&back), xml);
        let rows = back.rows();
        assert_eq!(rows[1].parent.as_deref(), Some("1"));
        assert_eq!(rows[2].parent, None);
        assert_eq!(rows[2].predecessors.len(), 2);
    }

    #[test]
    fn errors_name_the_position_or_the_task() {
        let e = read("<Project><Tasks><Task><UID>1</UID></Tasks></Project>").unwrap_err();
        assert_eq!(e.field, "xml");
        assert!(e.reason.contains("line 1, column"), "{e}");
        let e =
            read("<Project>\n<Tasks>\n<Task><UID>4</UID><Duration>soon</Duration></Task></Tasks></Project>")
                .unwrap_err();
        assert_eq!(e.field, "Tasks/Task[UID=4]/Duration");
        let e = read("<Calendar/>").unwrap_err();
        assert!(e.reason.contains("not <Project>"), "{e}");
        let e = read("<Project><Tasks><Task><UID>4</UID><PredecessorLink><PredecessorUID>1</PredecessorUID><Type>9</Type></PredecessorLink></Task></Tasks></Project>").unwrap_err();
        assert_eq!(e.field, "Tasks/Task[UID=4]/PredecessorLink/Type");
        let e = read(
            "<Project><Tasks><Task><UID>4</UID><ConstraintType>2</ConstraintType></Task></Tasks></Project>",
        )
        .unwrap_err();
        assert!(e.reason.contains("ConstraintDate"), "{e}");
    }
}
