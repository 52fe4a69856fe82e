//! The Gantt chart of a scheduled plan as a standalone SVG document: a time axis of weeks and
//! days with non-working days shaded, one row per task in outline order, scheduled bars with
//! progress, baseline bars beneath them, summary brackets, milestone diamonds, dependency arrows,
//! and the critical path in red. Pure: the same plan and schedule give the same bytes.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::Datelike;

use super::calendar::{CalendarRef, Calendars};
use super::plan::Plan;
use super::result::{Schedule, TaskSchedule};
use super::time::{self, MINUTES_PER_DAY, Minute, to_minute};
use crate::ids::ItemId;

/// Sizes in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanttOptions {
    /// Width of one calendar day.
    pub day_width: f64,
    pub row_height: f64,
    /// Width of the task-name column.
    pub label_width: f64,
    pub show_baseline: bool,
    pub show_dependencies: bool,
}

impl Default for GanttOptions {
    fn default() -> Self {
        Self {
            day_width: 24.0,
            row_height: 24.0,
            label_width: 240.0,
            show_baseline: true,
            show_dependencies: true,
        }
    }
}

const HEADER: f64 = 40.0;

const STYLE: &str = "text{font-family:sans-serif;font-size:12px;fill:#222}\
.axis text{font-size:10px;fill:#555}.off{fill:#f1f1f1}.week{stroke:#ccc}\
.bar{fill:#4a7bd0}.bar.critical{fill:#d0453f}.progress{fill:#000;fill-opacity:.3}\
.baseline{fill:#b8b8b8}.summary{fill:#333}.summary.critical{fill:#8e1c17}\
.milestone{fill:#333}.milestone.critical{fill:#d0453f}\
.dep{stroke:#666;fill:none}.dep.critical{stroke:#d0453f}";

/// Text for XML content and attribute values: markup characters escaped, characters XML cannot
/// carry replaced.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Renders `schedule` (of `plan`) as SVG.
pub fn render(plan: &Plan, schedule: &Schedule, calendars: &Calendars, options: &GanttOptions) -> String {
    let rows = outline(plan, schedule);
    let index: HashMap<ItemId, usize> = rows.iter().enumerate().map(|(i, r)| (r.task.id, i)).collect();

    // The axis runs from the Monday before the earliest date to the Monday after the latest.
    let mut first = to_minute(schedule.start);
    let mut last = to_minute(schedule.finish);
    for r in &rows {
        first = first.min(to_minute(r.task.start));
        last = last.max(to_minute(r.task.finish));
        if let (true, Some(b)) = (options.show_baseline, r.task.baseline) {
            first = first.min(to_minute(b.start));
            last = last.max(to_minute(b.finish));
        }
    }
    let monday = |m: Minute| {
        let day = time::day_of(m);
        day - i64::from(time::day_to_date(day).weekday().num_days_from_monday())
    };
    let first_day = monday(first);
    let end_day = monday(last) + 7;
    let days = end_day - first_day;
    let o = options;
    let x = |m: Minute| {
        o.label_width + (m - first_day * MINUTES_PER_DAY) as f64 / MINUTES_PER_DAY as f64 * o.day_width
    };
    let width = o.label_width + days as f64 * o.day_width;
    let height = HEADER + rows.len() as f64 * o.row_height;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.1}\" height=\"{height:.1}\" \
         viewBox=\"0 0 {width:.1} {height:.1}\">\n<title>Gantt chart, {} to {}</title>\n<style>{STYLE}</style>\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#666\"/></marker>\
         <marker id=\"arrow-critical\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" \
         markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#d0453f\"/></marker></defs>\n",
        escape(&time::show(schedule.start)),
        escape(&time::show(schedule.finish)),
    );

    // Axis: shaded days off, week lines and labels, day numbers when there is room.
    svg.push_str("<g class=\"axis\">\n");
    for day in first_day..end_day {
        let date = time::day_to_date(day);
        let left = x(day * MINUTES_PER_DAY);
        if !calendars.hours_on(CalendarRef::Workspace, date).is_working() {
            let _ = writeln!(
                svg,
                "<rect class=\"off\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                HEADER / 2.0,
                o.day_width,
                height - HEADER / 2.0
            );
        }
        if date.weekday().num_days_from_monday() == 0 {
            let _ = writeln!(
                svg,
                "<line class=\"week\" x1=\"{left:.1}\" y1=\"0\" x2=\"{left:.1}\" y2=\"{height:.1}\"/>\
                 <text x=\"{:.1}\" y=\"14\">W{:02} · {}</text>",
                left + 3.0,
                date.iso_week().week(),
                escape(&date.format("%-d %b %Y").to_string())
            );
        }
        if o.day_width >= 14.0 {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"34\" text-anchor=\"middle\">{}</text>",
                left + o.day_width / 2.0,
                date.day()
            );
        }
    }
    svg.push_str("</g>\n<g class=\"rows\">\n");

    for (i, row) in rows.iter().enumerate() {
        let t = row.task;
        let top = HEADER + i as f64 * o.row_height;
        let mid = top + o.row_height / 2.0;
        let critical = if t.critical { " critical" } else { "" };
        let name = escape(&row.name);
        let _ = writeln!(
            svg,
            "<g class=\"task\" id=\"task-{}\"><title>{name}: {} – {}, total slack {} min</title>",
            t.id,
            escape(&time::show(t.start)),
            escape(&time::show(t.finish)),
            t.total_slack
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\"{}>{name}</text>",
            8.0 + 14.0 * row.depth as f64,
            mid + 4.0,
            if t.summary { " font-weight=\"bold\"" } else { "" }
        );
        let (left, right) = (x(to_minute(t.start)), x(to_minute(t.finish)));
        if let (true, Some(b)) = (o.show_baseline, t.baseline) {
            let (bl, br) = (x(to_minute(b.start)), x(to_minute(b.finish)));
            let _ = writeln!(
                svg,
                "<rect class=\"baseline\" x=\"{bl:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"4\"/>",
                top + o.row_height * 0.72,
                (br - bl).max(1.0)
            );
        }
        if t.summary {
            let y = top + o.row_height * 0.3;
            let _ = writeln!(
                svg,
                "<path class=\"summary{critical}\" d=\"M{left:.1},{y:.1} H{right:.1} V{:.1} L{:.1},{:.1} \
                 H{:.1} L{left:.1},{:.1} Z\"/>",
                y + 9.0,
                right - 5.0,
                y + 5.0,
                left + 5.0,
                y + 9.0
            );
        } else if t.milestone {
            let r = o.row_height * 0.3;
            let _ = writeln!(
                svg,
                "<path class=\"milestone{critical}\" d=\"M{left:.1},{:.1} L{:.1},{mid:.1} L{left:.1},{:.1} \
                 L{:.1},{mid:.1} Z\"/>",
                mid - r,
                left + r,
                mid + r,
                left - r
            );
        } else {
            let (y, h) = (top + o.row_height * 0.2, o.row_height * 0.5);
            let w = (right - left).max(1.0);
            let _ = writeln!(
                svg,
                "<rect class=\"bar{critical}\" x=\"{left:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"/>"
            );
            if t.percent_complete > 0 {
                let _ = writeln!(
                    svg,
                    "<rect class=\"progress\" x=\"{left:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>",
                    w * f64::from(t.percent_complete) / 100.0
                );
            }
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</g>\n");

    if o.show_dependencies {
        svg.push_str("<g class=\"dependencies\">\n");
        for d in &plan.dependencies {
            let (Some(&a), Some(&b)) = (index.get(&d.predecessor), index.get(&d.successor)) else { continue };
            let (p, s) = (rows[a].task, rows[b].task);
            let from = x(to_minute(if d.kind.from_start() { p.start } else { p.finish }));
            let to = x(to_minute(if d.kind.to_start() { s.start } else { s.finish }));
            let (y1, y2) =
                (HEADER + (a as f64 + 0.5) * o.row_height, HEADER + (b as f64 + 0.5) * o.row_height);
            // Leave the predecessor sideways, travel vertically, enter the successor from the side
            // the dependency points at.
            let out = if d.kind.from_start() { from - 6.0 } else { from + 6.0 };
            let into = if d.kind.to_start() { to - 6.0 } else { to + 6.0 };
            let critical = p.critical && s.critical;
            let _ = writeln!(
                svg,
                "<path class=\"dep{}\" d=\"M{from:.1},{y1:.1} H{out:.1} V{y2:.1} H{into:.1} L{to:.1},{y2:.1}\" \
                 marker-end=\"url(#arrow{})\"><title>{} {} {}</title></path>",
                if critical { " critical" } else { "" },
                if critical { "-critical" } else { "" },
                escape(&rows[a].name),
                d.kind.code(),
                escape(&format!("{} {}", d.lag, rows[b].name)),
            );
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

struct Row<'a> {
    task: &'a TaskSchedule,
    name: String,
    depth: usize,
}

/// Tasks in outline order: each task followed by its subtasks, in plan order.
fn outline<'a>(plan: &Plan, schedule: &'a Schedule) -> Vec<Row<'a>> {
    let known: HashMap<ItemId, usize> = plan.tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    let mut children: HashMap<Option<ItemId>, Vec<usize>> = HashMap::new();
    for (i, t) in plan.tasks.iter().enumerate() {
        let parent = t.parent.filter(|p| known.contains_key(p));
        children.entry(parent).or_default().push(i);
    }
    let mut rows = Vec::with_capacity(plan.tasks.len());
    let mut stack: Vec<(usize, usize)> =
        children.get(&None).map(|c| c.iter().rev().map(|&i| (i, 0)).collect()).unwrap_or_default();
    while let Some((i, depth)) = stack.pop() {
        let task = &plan.tasks[i];
        if let Some(s) = schedule.task(task.id) {
            rows.push(Row { task: s, name: task.name.clone(), depth });
        }
        if depth < plan.tasks.len()
            && let Some(c) = children.get(&Some(task.id))
        {
            stack.extend(c.iter().rev().map(|&c| (c, depth + 1)));
        }
    }
    rows
}
