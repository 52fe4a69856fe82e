//! Invariants of the scheduler over generated plans: random hierarchies, every dependency kind and
//! lag, constraints, manual tasks, actuals, odd week patterns, holidays and personal calendars.

use chrono::{Datelike, NaiveDate, TimeDelta};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::*;
use crate::schedule::calendar::WorkTable;
use crate::schedule::engine::lag_forward;
use crate::schedule::time::to_minute;

/// Which features a generated plan may use.
#[derive(Debug, Clone, Copy)]
struct Features {
    constraints: bool,
    manual: bool,
    elapsed_lags: bool,
    calendars: bool,
}

const ALL: Features = Features { constraints: true, manual: true, elapsed_lags: true, calendars: true };

#[derive(Debug, Clone)]
struct GenTask {
    /// How many open summaries to keep before this task (its parent is the last one kept).
    depth: u8,
    duration: i64,
    constraint: u8,
    date: i64,
    manual: Option<i64>,
    actual: Option<(i64, Option<i64>)>,
    resource: u8,
    percent: u8,
    points: Option<u8>,
}

#[derive(Debug, Clone)]
struct GenDep {
    from: u8,
    to: u16,
    kind: u8,
    lag_unit: u8,
    lag: i64,
}

#[derive(Debug, Clone)]
struct GenCal {
    week: [u8; 7],
    holidays: Vec<u8>,
    user_week: [u8; 7],
    vacation: (u8, u8),
}

#[derive(Debug, Clone)]
struct Gen {
    tasks: Vec<GenTask>,
    deps: Vec<GenDep>,
    cal: GenCal,
    deadline: Option<i64>,
}

fn gen_task() -> impl Strategy<Value = GenTask> {
    (
        (0u8..4, prop_oneof![Just(0i64), 1i64..3 * D], 0u8..16, 0i64..20 * 1440),
        (
            proptest::option::weighted(0.1, 0i64..15 * 1440),
            proptest::option::weighted(0.08, (0i64..10 * 1440, proptest::option::of(0i64..4 * 1440))),
            0u8..4,
            0u8..=100,
            proptest::option::of(0u8..13),
        ),
    )
        .prop_map(
            |((depth, duration, constraint, date), (manual, actual, resource, percent, points))| GenTask {
                depth,
                duration,
                constraint,
                date,
                manual,
                actual,
                resource,
                percent,
                points,
            },
        )
}

fn gen_dep() -> impl Strategy<Value = GenDep> {
    (any::<u8>(), any::<u16>(), 0u8..4, 0u8..4, -2 * D..=2 * D)
        .prop_map(|(from, to, kind, lag_unit, lag)| GenDep { from, to, kind, lag_unit, lag })
}

fn gen_cal() -> impl Strategy<Value = GenCal> {
    (
        proptest::array::uniform7(0u8..6),
        proptest::collection::vec(0u8..60, 0..4),
        proptest::array::uniform7(0u8..6),
        (0u8..40, 0u8..5),
    )
        .prop_map(|(week, holidays, user_week, vacation)| GenCal { week, holidays, user_week, vacation })
}

fn gen_plan(max_tasks: usize) -> impl Strategy<Value = Gen> {
    (
        proptest::collection::vec(gen_task(), 1..max_tasks),
        proptest::collection::vec(gen_dep(), 0..max_tasks * 2),
        gen_cal(),
        proptest::option::weighted(0.2, 0i64..25 * 1440),
    )
        .prop_map(|(tasks, deps, cal, deadline)| Gen { tasks, deps, cal, deadline })
}

fn hours(template: u8) -> WorkingHours {
    let text = ["", "08:00-12:00 13:00-17:00", "09:00-17:00", "06:00-10:00", "22:00-24:00", "00:00-24:00"];
    WorkingHours::parse(text[template as usize % text.len()]).unwrap()
}

fn week(templates: [u8; 7]) -> WeekPattern {
    let mut w = WeekPattern { days: templates.map(hours) };
    if w.days.iter().all(|d| !d.is_working()) {
        w.days[0] = hours(1);
    }
    w
}

fn base() -> NaiveDateTime {
    at("2024-03-04 08:00")
}

fn date_at(minutes: i64) -> NaiveDateTime {
    base() + TimeDelta::minutes(minutes)
}

/// Turns generated numbers into a valid, acyclic plan and its calendars. Hierarchies are built in
/// depth-first order, so a task's subtree is the run of tasks after it; dependencies only point
/// past the predecessor's whole subtree, which keeps every plan free of cycles.
fn build(g: &Gen, f: Features) -> (Plan, Calendars) {
    let n = g.tasks.len();
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in g.tasks.iter().enumerate() {
        stack.truncate(t.depth as usize);
        parent[i] = stack.last().copied();
        stack.push(i);
    }
    let mut end: Vec<usize> = (1..=n).collect();
    for i in (0..n).rev() {
        if let Some(p) = parent[i] {
            end[p] = end[p].max(end[i]);
        }
    }
    let summary: Vec<bool> = (0..n).map(|i| end[i] > i + 1).collect();
    let mut tasks = Vec::new();
    for (i, gt) in g.tasks.iter().enumerate() {
        let mut t = task(i as u128 + 1, &format!("T{}", i + 1), gt.duration);
        t.parent = parent[i].map(|p| id(p as u128 + 1));
        t.percent_complete = gt.percent;
        t.points = gt.points.map(f64::from);
        t.effort = Some(gt.duration * 2);
        if f.calendars {
            t.resource = [None, Some(user(1)), Some(user(2)), Some(user(3))][gt.resource as usize];
        }
        if f.constraints {
            let d = date_at(gt.date);
            let options = [
                Constraint::StartNoEarlierThan(d),
                Constraint::FinishNoEarlierThan(d),
                Constraint::StartNoLaterThan(d),
                Constraint::FinishNoLaterThan(d),
                Constraint::AsLateAsPossible,
                Constraint::MustStartOn(d),
                Constraint::MustFinishOn(d),
            ];
            let pick = (gt.constraint as usize).checked_sub(9).and_then(|k| options.get(k).copied());
            t.constraint = match pick {
                Some(c)
                    if summary[i]
                        && !matches!(
                            c,
                            Constraint::AsLateAsPossible
                                | Constraint::MustStartOn(_)
                                | Constraint::MustFinishOn(_)
                        ) =>
                {
                    c
                }
                Some(c) if !summary[i] => c,
                _ => Constraint::AsSoonAsPossible,
            };
        } else if gt.constraint >= 12 && !summary[i] {
            t.constraint = [Constraint::StartNoEarlierThan(date_at(gt.date)), Constraint::AsLateAsPossible]
                [gt.constraint as usize % 2];
        }
        if f.manual {
            if let Some(start) = gt.manual {
                t.mode = Mode::Manual;
                t.start = Some(date_at(start));
            }
            if let Some((start, finish)) = gt.actual {
                t.actual_start = Some(date_at(start));
                t.actual_finish = finish.map(|f| date_at(start + f));
            }
        }
        tasks.push(t);
    }
    let mut deps = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in &g.deps {
        let from = d.from as usize % n;
        if end[from] >= n {
            continue;
        }
        let to = end[from] + d.to as usize % (n - end[from]);
        if !seen.insert((from, to)) {
            continue;
        }
        let lag = match d.lag_unit {
            1 if f.elapsed_lags => Lag::Elapsed(d.lag * 3),
            2 => Lag::Percent((d.lag / 8) as i32),
            _ => Lag::Working(d.lag),
        };
        deps.push(Dependency::new(
            id(from as u128 + 1),
            id(to as u128 + 1),
            DependencyKind::ALL[d.kind as usize],
            lag,
        ));
    }
    let mut cals = Calendars::default();
    if f.calendars {
        let day = |k: u8| NaiveDate::from_ymd_opt(2024, 3, 1).unwrap() + TimeDelta::days(i64::from(k));
        cals.workspace.week = week(g.cal.week);
        let mut holidays: Vec<u8> = g.cal.holidays.clone();
        holidays.sort_unstable();
        holidays.dedup();
        cals.workspace.exceptions = holidays.iter().map(|&k| Exception::holiday("Holiday", day(k))).collect();
        let (from, len) = g.cal.vacation;
        cals = cals
            .with_user(user(1), UserCalendar { week: Some(week(g.cal.user_week)), exceptions: vec![] })
            .with_user(
                user(2),
                UserCalendar {
                    week: None,
                    exceptions: vec![Exception::days_off("Vacation", day(from), day(from + len))],
                },
            );
    }
    let mut p = plan(tasks, deps);
    p.deadline = g.deadline.map(date_at);
    (p, cals)
}

fn tables(cals: &Calendars, plan: &Plan) -> Vec<WorkTable> {
    plan.tasks.iter().map(|t| WorkTable::new(cals, cals.calendar_of(t.resource))).collect()
}

fn leaves_under(plan: &Plan, i: usize) -> Vec<usize> {
    let id = plan.tasks[i].id;
    let children: Vec<usize> = (0..plan.tasks.len()).filter(|&c| plan.tasks[c].parent == Some(id)).collect();
    if children.is_empty() {
        return vec![i];
    }
    children.into_iter().flat_map(|c| leaves_under(plan, c)).collect()
}

/// Every dependency holds for every automatic task it reaches (manual tasks and tasks with actual
/// dates may break them, with a warning).
fn dependencies_hold(plan: &Plan, cals: &Calendars, s: &Schedule) -> Result<(), TestCaseError> {
    let mut tables = tables(cals, plan);
    let index = |id: ItemId| plan.tasks.iter().position(|t| t.id == id).unwrap();
    for d in &plan.dependencies {
        let (p, q) = (index(d.predecessor), index(d.successor));
        let pred = s.task(d.predecessor).unwrap();
        let x = to_minute(if d.kind.from_start() { pred.start } else { pred.finish });
        // Percentage lags count the predecessor's duration as the forward pass saw it (a summary's
        // early span; as-late-as-possible subtasks may stretch its scheduled span later).
        let pred_duration = if pred.summary {
            let table = &mut tables[p];
            table.ord(to_minute(pred.early_finish)).unwrap() - table.ord(to_minute(pred.early_start)).unwrap()
        } else {
            pred.duration
        };
        let bound = lag_forward(&mut tables[q], x, d.lag, pred_duration).unwrap();
        for leaf in leaves_under(plan, q) {
            let t = &plan.tasks[leaf];
            if t.mode == Mode::Manual || t.actual_start.is_some() {
                continue;
            }
            let got = s.task(t.id).unwrap();
            let table = &mut tables[leaf];
            if d.kind.to_start() {
                prop_assert!(
                    to_minute(got.start) >= bound,
                    "{} {} {} → {}: starts {} before {}",
                    d.kind.code(),
                    d.lag,
                    plan.tasks[p].name,
                    t.name,
                    got.start,
                    time::from_minute(bound)
                );
            } else {
                prop_assert!(
                    table.ord(to_minute(got.finish)).unwrap() >= table.ord(bound).unwrap(),
                    "{} {} {} → {}: finishes {} before {}",
                    d.kind.code(),
                    d.lag,
                    plan.tasks[p].name,
                    t.name,
                    got.finish,
                    time::from_minute(bound)
                );
            }
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 400, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_successor_starts_before_its_predecessor_allows(g in gen_plan(14)) {
        let (plan, cals) = build(&g, ALL);
        match schedule(&plan, &cals) {
            Ok(s) => dependencies_hold(&plan, &cals, &s)?,
            // Pinned dates may be impossible; the error names a pinned task.
            Err(ScheduleError::ImpossibleConstraint(i)) => {
                prop_assert!(matches!(i.constraint, Constraint::MustStartOn(_) | Constraint::MustFinishOn(_)));
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn rescheduling_a_scheduled_plan_changes_nothing(g in gen_plan(14)) {
        let (mut plan, cals) = build(&g, ALL);
        let Ok(first) = schedule(&plan, &cals) else { return Ok(()) };
        first.apply_to(&mut plan);
        let again = schedule(&plan, &cals).unwrap();
        prop_assert_eq!(&first, &again);
        let mut twice = plan.clone();
        again.apply_to(&mut twice);
        prop_assert_eq!(plan, twice);
    }

    #[test]
    fn updating_one_task_equals_scheduling_from_scratch(
        g in gen_plan(14),
        edits in proptest::collection::vec((any::<u16>(), 0u8..8, gen_task()), 1..5),
    ) {
        let (plan, cals) = build(&g, ALL);
        let Ok(mut scheduler) = Scheduler::new(plan.clone(), cals.clone()) else { return Ok(()) };
        let mut current = plan;
        for (pick, what, gt) in edits {
            let i = pick as usize % current.tasks.len();
            let mut t = current.tasks[i].clone();
            let date = date_at(gt.date);
            match what {
                0 => t.duration = gt.duration,
                1 => t.constraint = [
                    Constraint::AsSoonAsPossible,
                    Constraint::StartNoEarlierThan(date),
                    Constraint::FinishNoEarlierThan(date),
                    Constraint::StartNoLaterThan(date),
                    Constraint::FinishNoLaterThan(date),
                    Constraint::AsLateAsPossible,
                    Constraint::MustStartOn(date),
                    Constraint::MustFinishOn(date),
                ][gt.constraint as usize % 8],
                2 => { t.mode = Mode::Manual; t.start = Some(date); t.finish = None; }
                3 => t.mode = Mode::Automatic,
                4 => { t.percent_complete = gt.percent; t.points = gt.points.map(f64::from); }
                5 => t.resource = [None, Some(user(1)), Some(user(2))][gt.resource as usize % 3],
                6 => { t.actual_start = gt.actual.map(|a| date_at(a.0)); t.actual_finish = None; }
                _ => t.parent = None,
            }
            let mut next = current.clone();
            next.tasks[i] = t.clone();
            let before = scheduler.schedule().clone();
            let full = schedule(&next, &cals);
            match (scheduler.update_task(t), full) {
                (Ok(inc), Ok(full)) => {
                    prop_assert_eq!(inc, &full);
                    current = next;
                }
                (Err(_), Err(_)) => prop_assert_eq!(scheduler.schedule(), &before),
                (inc, full) => prop_assert!(false, "incremental {:?} but full {:?}", inc.map(|_| ()), full.map(|_| ())),
            }
        }
    }

    #[test]
    fn slack_is_never_negative_unless_a_date_forces_it(g in gen_plan(14)) {
        let (mut plan, cals) = build(&g, Features { constraints: false, manual: false, ..ALL });
        plan.deadline = None;
        let s = schedule(&plan, &cals).unwrap();
        for t in s.tasks() {
            prop_assert!(t.total_slack >= 0 && t.free_slack >= 0, "{:#?}", t);
            prop_assert!(t.late_start >= t.start || t.milestone, "{:#?}", t);
            prop_assert!(t.free_slack <= t.total_slack);
        }
        prop_assert_eq!(s.warnings().count(), 0);
    }

    #[test]
    fn the_critical_path_is_a_chain_from_the_project_start_to_its_finish(g in gen_plan(14)) {
        // One calendar and working-time lags: then a predecessor that sets its successor's start has
        // no more slack than the successor (elapsed lags and mixed calendars can leave it some).
        let features = Features { constraints: false, manual: false, elapsed_lags: false, calendars: false };
        let (mut plan, cals) = build(&g, features);
        plan.deadline = None;
        for t in &mut plan.tasks {
            t.constraint = Constraint::AsSoonAsPossible;
        }
        let s = schedule(&plan, &cals).unwrap();
        let path = s.critical_path();
        prop_assert!(!path.is_empty());
        let first = s.task(path[0]).unwrap();
        prop_assert_eq!(first.explanation.start.driver, Driver::ProjectStart);
        prop_assert_eq!(first.start, plan.start.max(first.start));
        prop_assert_eq!(s.task(path[path.len() - 1]).unwrap().finish, s.finish);
        let ancestors = |id: ItemId| {
            let mut out = vec![id];
            let mut cur = plan.task(id).unwrap().parent;
            while let Some(p) = cur {
                out.push(p);
                cur = plan.task(p).unwrap().parent;
            }
            out
        };
        for pair in path.windows(2) {
            let (a, b) = (ancestors(pair[0]), ancestors(pair[1]));
            prop_assert!(
                plan.dependencies.iter().any(|d| a.contains(&d.predecessor) && b.contains(&d.successor)),
                "no dependency links {:?} to {:?}", pair[0], pair[1]
            );
        }
        for id in path {
            let t = s.task(*id).unwrap();
            prop_assert!(t.critical && !t.summary, "{:#?}", t);
        }
    }

    #[test]
    fn cycles_are_reported_along_real_links(g in gen_plan(10), back in (any::<u8>(), any::<u8>())) {
        let (mut plan, cals) = build(&g, ALL);
        let n = plan.tasks.len();
        let (a, b) = (back.0 as usize % n, back.1 as usize % n);
        plan.dependencies.push(Dependency::finish_to_start(id(a as u128 + 1), id(b as u128 + 1)));
        if let Err(ScheduleError::Cycle { tasks }) = schedule(&plan, &cals) {
            prop_assert!(tasks.len() >= 3 && tasks[0] == tasks[tasks.len() - 1], "{:?}", tasks);
            let parent = |id: ItemId| plan.task(id).unwrap().parent;
            for w in tasks.windows(2) {
                let (x, y) = (w[0].id, w[1].id);
                let linked = plan.dependencies.iter().any(|d| d.predecessor == x && d.successor == y)
                    || parent(y) == Some(x)
                    || parent(x) == Some(y);
                prop_assert!(linked, "{} → {} in {:?}", w[0], w[1], tasks);
            }
        }
    }
}

#[test]
fn generated_plans_cover_what_the_properties_claim() {
    // Guards the generator: the properties above must see summaries, milestones, every dependency
    // kind, calendars with holidays and weekends, manual tasks and constraints.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut summaries, mut milestones, mut kinds, mut manual, mut pinned) = (0, 0, [0; 4], 0, 0);
    for _ in 0..200 {
        let g = gen_plan(14).new_tree(&mut runner).unwrap().current();
        let (plan, _) = build(&g, ALL);
        summaries += plan.tasks.iter().filter(|t| plan.tasks.iter().any(|c| c.parent == Some(t.id))).count();
        milestones += plan.tasks.iter().filter(|t| t.duration == 0).count();
        manual += plan.tasks.iter().filter(|t| t.mode == Mode::Manual).count();
        pinned += plan.tasks.iter().filter(|t| matches!(t.constraint, Constraint::MustStartOn(_))).count();
        for d in &plan.dependencies {
            kinds[DependencyKind::ALL.iter().position(|k| *k == d.kind).unwrap()] += 1;
        }
    }
    assert!(
        summaries > 100 && milestones > 100 && manual > 50 && pinned > 20,
        "{summaries} {milestones} {manual} {pinned}"
    );
    assert!(kinds.iter().all(|&k| k > 100), "{kinds:?}");
    assert_eq!(NaiveDate::from_ymd_opt(2024, 3, 4).unwrap().weekday(), chrono::Weekday::Mon);
}
