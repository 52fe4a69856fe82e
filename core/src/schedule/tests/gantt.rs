//! The Gantt chart: a snapshot of a small plan, and the SVG parsed as XML to prove it well-formed
//! and its text escaped.

use quick_xml::events::Event;

use super::*;
use crate::schedule::gantt::{GanttOptions, escape, render};

fn sample() -> (Plan, Calendars) {
    let mut phase = task(1, "Phase 1 <design & build>", 0);
    phase.baseline = None;
    let mut design = task(2, "Design \"v2\"", 2 * D);
    design.parent = Some(id(1));
    design.percent_complete = 60;
    design.baseline = Some(Baseline { start: at("2024-03-04 08:00"), finish: at("2024-03-05 17:00") });
    let mut build = task(3, "Build <script>alert('x')</script>", 3 * D);
    build.parent = Some(id(1));
    build.baseline = Some(Baseline { start: at("2024-03-06 08:00"), finish: at("2024-03-08 17:00") });
    let docs = task(4, "Docs", D);
    let launch = task(5, "Launch", 0);
    let mut tasks = vec![phase, design, build, docs, launch];
    tasks.push(task(6, "Kick-off", D));
    let deps = vec![fs(6, 1), fs(2, 3), fs(1, 5), dep(4, 5, DependencyKind::FinishToFinish, Lag::Working(0))];
    let mut cal = Calendar::default();
    cal.exceptions.push(Exception::holiday("Holiday", chrono::NaiveDate::from_ymd_opt(2024, 3, 8).unwrap()));
    (plan(tasks, deps), Calendars::new(cal))
}

/// Parses the document, returning every element name and every text node (unescaped).
fn parse(svg: &str) -> (Vec<String>, Vec<String>) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut elements, mut texts) = (Vec::new(), Vec::new());
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                elements.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap());
                for a in e.attributes() {
                    a.expect("well-formed attribute").unescape_value().expect("escaped attribute");
                }
            }
            Ok(Event::Text(t)) => texts.push(t.unescape().expect("escaped text").into_owned()),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}\n{svg}", reader.error_position()),
        }
    }
    (elements, texts)
}

#[test]
fn the_gantt_chart_matches_its_snapshot() {
    let (p, cals) = sample();
    let s = schedule(&p, &cals).unwrap();
    let svg = render(&p, &s, &cals, &GanttOptions::default());
    insta::assert_snapshot!("gantt_small_plan", svg);
}

#[test]
fn the_gantt_chart_is_well_formed_xml_with_every_name_intact() {
    let (p, cals) = sample();
    let s = schedule(&p, &cals).unwrap();
    let svg = render(&p, &s, &cals, &GanttOptions::default());
    let (elements, texts) = parse(&svg);
    assert_eq!(elements[0], "svg");
    for t in &p.tasks {
        assert!(texts.contains(&t.name), "label {:?} missing from {texts:?}", t.name);
    }
    assert!(!svg.contains("<script"), "task names must not become markup");
    let count = |needle: &str| svg.matches(needle).count();
    // Leaves with duration get bars (critical or not), milestones diamonds, summaries brackets.
    assert_eq!(count("<rect class=\"bar"), 4);
    assert_eq!(count("class=\"milestone"), 1);
    assert_eq!(count("class=\"summary"), 1);
    assert_eq!(count("class=\"baseline\""), 3, "two baselines and the summary's rolled-up one");
    assert_eq!(count("class=\"progress\""), 1, "the design task is 60% done");
    assert_eq!(count("<path class=\"dep"), p.dependencies.len());
    assert!(count("class=\"dep critical\"") >= 2, "the critical chain is highlighted");
    assert_eq!(count("class=\"off\""), 5, "one holiday and two weekends");

    // Without dependencies or baselines, and on a narrow scale, it is still well-formed.
    let narrow =
        GanttOptions { day_width: 4.0, show_baseline: false, show_dependencies: false, ..Default::default() };
    let svg = render(&p, &s, &cals, &narrow);
    parse(&svg);
    assert!(!svg.contains("class=\"baseline\"") && !svg.contains("class=\"dep"));
}

#[test]
fn escaping_covers_markup_and_characters_xml_cannot_carry() {
    for (input, expected) in [
        ("plain", "plain"),
        ("a & b < c > d", "a &amp; b &lt; c &gt; d"),
        ("\"quoted\" 'single'", "&quot;quoted&quot; &apos;single&apos;"),
        ("tab\tand\nnewline", "tab and newline"),
        ("nul\u{0}bell\u{7}", "nul\u{FFFD}bell\u{FFFD}"),
        ("ünïcödé ✓", "ünïcödé ✓"),
    ] {
        assert_eq!(escape(input), expected);
    }
    let (mut p, cals) = sample();
    p.tasks[4].name = "bad\u{0}name & <more>".into();
    let s = schedule(&p, &cals).unwrap();
    let (_, texts) = parse(&render(&p, &s, &cals, &GanttOptions::default()));
    assert!(texts.contains(&"bad\u{FFFD}name & <more>".to_string()));
}
