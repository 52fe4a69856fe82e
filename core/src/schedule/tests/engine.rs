//! Plans and the dates they must give, on the standard calendar (Mon–Fri 08:00–12:00, 13:00–17:00)
//! from Monday 2024-03-04 08:00 unless a case says otherwise.

use chrono::NaiveDate;

use super::*;
use DependencyKind::*;

fn run(plan: &Plan) -> Schedule {
    run_with(plan, &Calendars::default())
}

fn run_with(plan: &Plan, cals: &Calendars) -> Schedule {
    schedule(plan, cals).unwrap_or_else(|e| panic!("{e}"))
}

/// `check(plan, calendars, [(task number, "start", "finish")])` in `fmt` form (`Mon 03-04 08:00`).
fn check(plan: &Plan, cals: &Calendars, expected: &[(u128, &str, &str)]) {
    let s = run_with(plan, cals);
    for &(n, start, finish) in expected {
        let t = s.task(id(n)).unwrap();
        assert_eq!((fmt(t.start).as_str(), fmt(t.finish).as_str()), (start, finish), "task {n} in {plan:#?}");
    }
}

#[test]
fn every_dependency_kind_with_every_kind_of_lag() {
    // (kind, lag, predecessor days, successor duration, successor start, successor finish)
    let cases: &[(DependencyKind, Lag, i64, i64, &str, &str)] = &[
        (FinishToStart, Lag::Working(0), 3, D * 2, "Thu 03-07 08:00", "Fri 03-08 17:00"),
        (FinishToStart, Lag::Working(0), 5, D, "Mon 03-11 08:00", "Mon 03-11 17:00"),
        (FinishToStart, Lag::Working(2 * H), 3, D, "Thu 03-07 10:00", "Fri 03-08 10:00"),
        (FinishToStart, Lag::Working(-D), 3, D * 2, "Wed 03-06 08:00", "Thu 03-07 17:00"),
        (StartToStart, Lag::Working(0), 3, D, "Mon 03-04 08:00", "Mon 03-04 17:00"),
        (StartToStart, Lag::Working(D), 3, D, "Tue 03-05 08:00", "Tue 03-05 17:00"),
        (FinishToFinish, Lag::Working(0), 3, D, "Wed 03-06 08:00", "Wed 03-06 17:00"),
        (FinishToFinish, Lag::Working(4 * H), 3, D, "Wed 03-06 13:00", "Thu 03-07 12:00"),
        (StartToFinish, Lag::Working(0), 3, D, "Mon 03-04 08:00", "Mon 03-04 17:00"),
        (StartToFinish, Lag::Working(2 * D), 1, D, "Tue 03-05 08:00", "Tue 03-05 17:00"),
        (FinishToStart, Lag::Elapsed(24 * H), 3, D, "Fri 03-08 08:00", "Fri 03-08 17:00"),
        (FinishToStart, Lag::Elapsed(48 * H), 5, D, "Mon 03-11 08:00", "Mon 03-11 17:00"),
        (FinishToStart, Lag::Percent(50), 4, D, "Tue 03-12 08:00", "Tue 03-12 17:00"),
        (FinishToStart, Lag::Percent(-50), 4, D, "Wed 03-06 08:00", "Wed 03-06 17:00"),
        // A milestone stays where its predecessor finishes; a task after a milestone starts there.
        (FinishToStart, Lag::Working(0), 3, 0, "Wed 03-06 17:00", "Wed 03-06 17:00"),
        (FinishToStart, Lag::Working(0), 0, D, "Mon 03-04 08:00", "Mon 03-04 17:00"),
    ];
    for &(kind, lag, days, duration, start, finish) in cases {
        let p = plan(vec![task(1, "A", days * D), task(2, "B", duration)], vec![dep(1, 2, kind, lag)]);
        let s = run(&p);
        let b = s.task(id(2)).unwrap();
        assert_eq!(
            (fmt(b.start).as_str(), fmt(b.finish).as_str()),
            (start, finish),
            "{} {lag} after {days}d",
            kind.code()
        );
    }
}

#[test]
fn constraints_place_a_task() {
    use Constraint::*;
    // (constraint, start, finish) of a one-day task with nothing else in the plan
    let cases = [
        (StartNoEarlierThan(at("2024-03-06 10:00")), "Wed 03-06 10:00", "Thu 03-07 10:00"),
        (StartNoEarlierThan(at("2024-03-09 10:00")), "Mon 03-11 08:00", "Mon 03-11 17:00"),
        (FinishNoEarlierThan(at("2024-03-06 12:00")), "Tue 03-05 13:00", "Wed 03-06 12:00"),
        (MustStartOn(at("2024-03-05 13:00")), "Tue 03-05 13:00", "Wed 03-06 12:00"),
        (MustFinishOn(at("2024-03-07 17:00")), "Thu 03-07 08:00", "Thu 03-07 17:00"),
        (MustFinishOn(at("2024-03-09 10:00")), "Fri 03-08 08:00", "Fri 03-08 17:00"),
        (MustStartOn(at("2024-03-01 08:00")), "Fri 03-01 08:00", "Fri 03-01 17:00"),
        (StartNoLaterThan(at("2024-03-06 08:00")), "Mon 03-04 08:00", "Mon 03-04 17:00"),
        (FinishNoLaterThan(at("2024-03-06 08:00")), "Mon 03-04 08:00", "Mon 03-04 17:00"),
        (AsLateAsPossible, "Mon 03-04 08:00", "Mon 03-04 17:00"),
    ];
    for (constraint, start, finish) in cases {
        let mut t = task(1, "T", D);
        t.constraint = constraint;
        let s = run(&plan(vec![t], vec![]));
        let t = s.task(id(1)).unwrap();
        assert_eq!((fmt(t.start).as_str(), fmt(t.finish).as_str()), (start, finish), "{constraint}");
        assert_eq!(
            t.explanation.start.driver == Driver::Constraint(constraint),
            constraint.date().is_some() && !matches!(constraint, StartNoLaterThan(_) | FinishNoLaterThan(_)),
            "{constraint}"
        );
    }
}

#[test]
fn as_late_as_possible_waits_for_its_successor_or_the_project_finish() {
    let mut alap = task(1, "Order cake", D);
    alap.constraint = Constraint::AsLateAsPossible;
    let mut loose = task(4, "Send invitations", D);
    loose.constraint = Constraint::AsLateAsPossible;
    let p =
        plan(vec![alap, task(2, "Book hall", 3 * D), task(3, "Party", D), loose], vec![fs(1, 3), fs(2, 3)]);
    check(
        &p,
        &Calendars::default(),
        &[
            (1, "Wed 03-06 08:00", "Wed 03-06 17:00"),
            (2, "Mon 03-04 08:00", "Wed 03-06 17:00"),
            (3, "Thu 03-07 08:00", "Thu 03-07 17:00"),
            (4, "Thu 03-07 08:00", "Thu 03-07 17:00"),
        ],
    );
    let s = run(&p);
    let cake = s.task(id(1)).unwrap();
    assert_eq!(cake.explanation.start.driver, Driver::AsLateAsPossible { successor: Some(id(3)) });
    assert_eq!((fmt(cake.early_start), cake.total_slack, cake.free_slack), ("Mon 03-04 08:00".into(), 0, 0));
    let invitations = s.task(id(4)).unwrap();
    assert_eq!(invitations.explanation.start.driver, Driver::AsLateAsPossible { successor: None });
}

#[test]
fn calendars_holidays_and_personal_calendars_shape_dates() {
    let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let mut ws = Calendar::default();
    ws.exceptions.push(Exception::holiday("Spring holiday", date("2024-03-07")));
    let part_time = WeekPattern::on(
        &[chrono::Weekday::Mon, chrono::Weekday::Tue, chrono::Weekday::Wed],
        &WorkingHours::parse("09:00-13:00").unwrap(),
    );
    let vacation = Exception::holiday("Dentist", date("2024-03-05"));
    let cals = Calendars::new(ws)
        .with_user(user(9), UserCalendar { week: Some(part_time), exceptions: vec![vacation] });
    let mut shared = task(2, "Write copy (part-time)", 8 * H);
    shared.resource = Some(user(9));
    let mut nobody = task(4, "Someone without a calendar", D);
    nobody.resource = Some(user(10));
    let p = plan(vec![task(1, "Four days", 4 * D), shared, task(3, "Review", D), nobody], vec![fs(2, 3)]);
    check(
        &p,
        &cals,
        &[
            (1, "Mon 03-04 08:00", "Fri 03-08 17:00"),
            (2, "Mon 03-04 09:00", "Wed 03-06 13:00"),
            (3, "Wed 03-06 13:00", "Fri 03-08 12:00"),
            (4, "Mon 03-04 08:00", "Mon 03-04 17:00"),
        ],
    );
    let s = run_with(&p, &cals);
    assert_eq!(s.task(id(2)).unwrap().explanation.calendar, CalendarRef::User(user(9)));
    assert_eq!(s.task(id(4)).unwrap().explanation.calendar, CalendarRef::Workspace);
}

#[test]
fn manual_tasks_and_actuals_keep_their_dates_and_warn_about_broken_dependencies() {
    let mut manual = task(1, "Workshop", D);
    manual.mode = Mode::Manual;
    manual.start = Some(at("2024-03-06 10:00"));
    let mut started = task(4, "Started early", 2 * D);
    started.actual_start = Some(at("2024-03-05 09:00"));
    let mut done = task(5, "Done", D);
    done.actual_start = Some(at("2024-03-04 10:00"));
    done.actual_finish = Some(at("2024-03-04 11:00"));
    let p = plan(
        vec![manual, task(2, "Follow-up", D), task(3, "Prepare", 3 * D), started, done],
        vec![fs(1, 2), fs(3, 1), fs(3, 4)],
    );
    check(
        &p,
        &Calendars::default(),
        &[
            (1, "Wed 03-06 10:00", "Thu 03-07 10:00"),
            (2, "Thu 03-07 10:00", "Fri 03-08 10:00"),
            (4, "Tue 03-05 09:00", "Thu 03-07 09:00"),
            (5, "Mon 03-04 10:00", "Mon 03-04 11:00"),
        ],
    );
    let s = run(&p);
    let warnings: Vec<_> = s.warnings().cloned().collect();
    let broken = |task| Warning::DependencyNotMet {
        task: id(task),
        predecessor: id(3),
        kind: FinishToStart,
        earliest: at("2024-03-07 08:00"),
    };
    assert_eq!(warnings, vec![broken(1), broken(4)]);
    assert_eq!(s.task(id(5)).unwrap().duration, 60);
    assert_eq!(s.task(id(1)).unwrap().explanation.start.driver, Driver::Manual);
    assert_eq!(s.task(id(4)).unwrap().explanation.start.driver, Driver::Actual);
}

#[test]
fn slack_free_slack_and_the_critical_path() {
    // A → B (2d) → D and A → C (1d) → D: C can slip a day.
    let p = plan(
        vec![task(1, "A", D), task(2, "B", 2 * D), task(3, "C", D), task(4, "D", D)],
        vec![fs(1, 2), fs(1, 3), fs(2, 4), fs(3, 4)],
    );
    let s = run(&p);
    // (task, total slack, free slack, critical, late start)
    for (n, total, free, critical, late_start) in [
        (1, 0, 0, true, "Mon 03-04 08:00"),
        (2, 0, 0, true, "Tue 03-05 08:00"),
        (3, D, D, false, "Wed 03-06 08:00"),
        (4, 0, 0, true, "Thu 03-07 08:00"),
    ] {
        let t = s.task(id(n)).unwrap();
        assert_eq!(
            (t.total_slack, t.free_slack, t.critical, fmt(t.late_start)),
            (total, free, critical, late_start.into()),
            "task {n}"
        );
    }
    assert_eq!(s.critical_path(), &[id(1), id(2), id(4)]);
    assert_eq!(fmt(s.finish), "Thu 03-07 17:00");

    // Free slack is less than total slack when the successor itself has slack.
    let p = plan(vec![task(1, "A", D), task(2, "B", D), task(3, "Long", 4 * D)], vec![fs(1, 2)]);
    let s = run(&p);
    let (a, b) = (s.task(id(1)).unwrap(), s.task(id(2)).unwrap());
    assert_eq!((a.total_slack, a.free_slack, b.total_slack, b.free_slack), (2 * D, 0, 2 * D, 2 * D));
}

#[test]
fn deadlines_and_no_later_than_dates_lose_to_dependencies_with_negative_slack() {
    let mut b = task(2, "B", D);
    b.constraint = Constraint::StartNoLaterThan(at("2024-03-05 08:00"));
    let mut p = plan(vec![task(1, "A", 3 * D), b, task(3, "C", D)], vec![fs(1, 2), fs(2, 3)]);
    p.deadline = Some(at("2024-03-07 17:00"));
    let s = run(&p);
    check(&p, &Calendars::default(), &[(2, "Thu 03-07 08:00", "Thu 03-07 17:00")]);
    let b = s.task(id(2)).unwrap();
    assert_eq!((b.total_slack, b.critical), (-2 * D, true));
    assert_eq!(s.task(id(1)).unwrap().total_slack, -2 * D);
    assert_eq!(s.task(id(3)).unwrap().total_slack, -D);
    let warnings: Vec<_> = s.warnings().cloned().collect();
    assert_eq!(
        warnings,
        vec![
            Warning::ConstraintMissed {
                task: id(2),
                constraint: Constraint::StartNoLaterThan(at("2024-03-05 08:00")),
                by_minutes: 2 * D
            },
            Warning::DeadlineMissed { deadline: at("2024-03-07 17:00"), finish: at("2024-03-08 17:00") },
        ]
    );
    // A later deadline gives everything that much slack.
    p.tasks[1].constraint = Constraint::AsSoonAsPossible;
    p.deadline = Some(at("2024-03-12 17:00"));
    let s = run(&p);
    assert!(s.tasks().iter().all(|t| t.total_slack == 2 * D), "{:?}", s.tasks());
    assert_eq!(s.warnings().count(), 0);
}

#[test]
fn summaries_roll_up_and_pass_their_dependencies_to_their_subtasks() {
    let mut s1 = task(1, "Phase 1", 0);
    s1.percent_complete = 90; // ignored: a summary's progress comes from its subtasks
    let mut c1 = task(2, "Design", 2 * D);
    c1.parent = Some(id(1));
    c1.percent_complete = 50;
    c1.points = Some(3.0);
    c1.effort = Some(2 * D);
    c1.baseline = Some(Baseline { start: at("2024-03-04 08:00"), finish: at("2024-03-05 17:00") });
    let mut c2 = task(3, "Build", 3 * D);
    c2.parent = Some(id(1));
    c2.points = Some(5.0);
    c2.effort = Some(6 * D);
    c2.baseline = Some(Baseline { start: at("2024-03-06 08:00"), finish: at("2024-03-08 17:00") });
    let p = plan(
        vec![s1, c1, c2, task(4, "Kick-off", D), task(5, "Launch", D)],
        vec![fs(2, 3), fs(4, 1), fs(1, 5)],
    );
    check(
        &p,
        &Calendars::default(),
        &[
            (4, "Mon 03-04 08:00", "Mon 03-04 17:00"),
            (2, "Tue 03-05 08:00", "Wed 03-06 17:00"),
            (3, "Thu 03-07 08:00", "Mon 03-11 17:00"),
            (1, "Tue 03-05 08:00", "Mon 03-11 17:00"),
            (5, "Tue 03-12 08:00", "Tue 03-12 17:00"),
        ],
    );
    let s = run(&p);
    let phase = s.task(id(1)).unwrap();
    assert!(phase.summary);
    assert_eq!(phase.duration, 5 * D);
    assert_eq!(phase.percent_complete, 20, "50% of 2 days and 0% of 3 days");
    assert_eq!((phase.points, phase.effort), (Some(8.0), Some(8 * D)));
    assert_eq!(
        phase.baseline,
        Some(Baseline { start: at("2024-03-04 08:00"), finish: at("2024-03-08 17:00") })
    );
    assert_eq!((phase.start_variance, phase.finish_variance), (Some(D), Some(D)));
    assert_eq!(s.task(id(2)).unwrap().start_variance, Some(D));
    let design = s.task(id(2)).unwrap();
    assert_eq!(
        design.explanation.start.driver,
        Driver::Dependency {
            predecessor: id(4),
            kind: FinishToStart,
            lag: Lag::Working(0),
            via: Some(id(1)),
            predecessor_date: at("2024-03-04 17:00")
        }
    );
    assert_eq!(s.critical_path(), &[id(4), id(2), id(3), id(5)]);
    assert!(phase.critical);
}

#[test]
fn summary_constraints_hold_every_subtask() {
    let mut s1 = task(1, "Phase", 0);
    s1.constraint = Constraint::StartNoEarlierThan(at("2024-03-06 08:00"));
    let mut c1 = task(2, "One", D);
    c1.parent = Some(id(1));
    let mut c2 = task(3, "Two", D);
    c2.parent = Some(id(1));
    let mut nested = task(4, "Nested", 0);
    nested.parent = Some(id(1));
    let mut c3 = task(5, "Deep", D);
    c3.parent = Some(id(4));
    let p = plan(vec![s1, c1, c2, nested, c3], vec![]);
    check(
        &p,
        &Calendars::default(),
        &[(2, "Wed 03-06 08:00", "Wed 03-06 17:00"), (5, "Wed 03-06 08:00", "Wed 03-06 17:00")],
    );
}

#[test]
fn explanations_say_why_in_words() {
    let mut x = task(3, "Cure concrete", D);
    x.constraint = Constraint::StartNoEarlierThan(at("2024-03-09 10:00"));
    let mut y = task(4, "Report", D);
    y.constraint = Constraint::FinishNoEarlierThan(at("2024-03-09 12:00"));
    let p = plan(vec![task(1, "Pour", 3 * D), task(2, "Paint", 2 * D), x, y], vec![fs(1, 2)]);
    let s = run(&p);
    let cases = [
        (
            1,
            "starts Mon 2024-03-04 08:00 because the project starts Mon 2024-03-04 08:00; \
             finishes Wed 2024-03-06 17:00 after 3d of work",
        ),
        (
            2,
            "starts Thu 2024-03-07 08:00 because \"Pour\" finishes Wed 2024-03-06 17:00 (FS +0min), \
             moved to working time by the workspace calendar; finishes Fri 2024-03-08 17:00 after 2d of work",
        ),
        (
            3,
            "starts Mon 2024-03-11 08:00 because of its constraint: start no earlier than \
             Sat 2024-03-09 10:00, moved to working time by the workspace calendar; \
             finishes Mon 2024-03-11 17:00 after 1d of work",
        ),
        (
            4,
            "starts Fri 2024-03-08 08:00 because of its constraint: finish no earlier than \
             Sat 2024-03-09 12:00; finishes Fri 2024-03-08 17:00 because of its constraint: finish no \
             earlier than Sat 2024-03-09 12:00, moved to working time by the workspace calendar",
        ),
    ];
    for (n, text) in cases {
        assert_eq!(s.describe(&p, id(n)).unwrap(), text);
    }
}

/// `check_err(plan, field or fragment)`: the plan is refused and the error mentions it.
fn check_err(plan: &Plan, fragments: &[&str]) {
    let err = match schedule(plan, &Calendars::default()) {
        Ok(s) => panic!("expected an error mentioning {fragments:?}, got {s:#?}"),
        Err(e) => e,
    };
    let text = match &err {
        ScheduleError::Invalid(i) => format!("{} | {}", i.field, i.reason),
        other => other.to_string(),
    };
    for f in fragments {
        assert!(text.contains(f), "{text:?} should mention {f:?}");
    }
}

#[test]
fn bad_plans_are_refused_with_the_place_named() {
    let three = || vec![task(1, "A", D), task(2, "B", D), task(3, "C", D)];
    let with = |f: &dyn Fn(&mut Vec<Task>)| {
        let mut tasks = three();
        f(&mut tasks);
        tasks
    };
    check_err(
        &plan(three(), vec![fs(1, 2), fs(2, 3), fs(3, 1)]),
        &["dependency cycle", "\"A\"", "\"B\"", "\"C\""],
    );
    check_err(
        &plan(three(), vec![fs(1, 1)]),
        &["dependencies[0].successor", "\"A\" cannot depend on itself"],
    );
    check_err(&plan(three(), vec![fs(1, 2), fs(1, 2)]), &["dependencies[1].successor", "already depends"]);
    check_err(&plan(three(), vec![fs(1, 9)]), &["dependencies[0].successor", "no task"]);
    check_err(
        &plan(three(), vec![dep(1, 2, FinishToStart, Lag::Working(time::MAX_SPAN + 1))]),
        &["dependencies[0].lag", "out of range"],
    );
    check_err(
        &plan(with(&|t| t[1].id = id(1)), vec![]),
        &["tasks[1].id", "\"B\" has the same id as tasks[0] (\"A\")"],
    );
    check_err(&plan(with(&|t| t[0].duration = -1), vec![]), &["tasks[0].duration", "task \"A\""]);
    check_err(&plan(with(&|t| t[2].percent_complete = 101), vec![]), &["tasks[2].percent_complete"]);
    check_err(&plan(with(&|t| t[2].points = Some(f64::NAN)), vec![]), &["tasks[2].points"]);
    check_err(&plan(with(&|t| t[0].mode = Mode::Manual), vec![]), &["tasks[0].start", "needs a start"]);
    check_err(
        &plan(with(&|t| t[0].actual_finish = Some(at("2024-03-04 09:00"))), vec![]),
        &["tasks[0].actual_finish", "actual start"],
    );
    check_err(
        &plan(with(&|t| t[0].constraint = Constraint::MustStartOn(at("1850-01-01 08:00"))), vec![]),
        &["tasks[0].constraint", "1900"],
    );
    check_err(&plan(with(&|t| t[0].parent = Some(id(7))), vec![]), &["tasks[0].parent", "not in the plan"]);
    check_err(
        &plan(
            with(&|t| {
                t[0].parent = Some(id(2));
                t[1].parent = Some(id(1));
            }),
            vec![],
        ),
        &["tasks[0].parent", "parents loop: A → B → A"],
    );
    check_err(
        &plan(
            with(&|t| {
                t[1].parent = Some(id(1));
                t[0].constraint = Constraint::MustStartOn(at("2024-03-05 08:00"));
            }),
            vec![],
        ),
        &["tasks[0].constraint", "MSO does not apply to a summary task"],
    );
    check_err(
        &plan(with(&|t| t[1].parent = Some(id(1))), vec![fs(1, 2)]),
        &["dependencies[0].successor", "links summary task \"A\" with its own subtask \"B\""],
    );
    check_err(
        &plan(
            with(&|t| {
                t[1].parent = Some(id(1));
                t[2].parent = Some(id(2));
            }),
            vec![fs(3, 1)],
        ),
        &["links summary task \"A\" with its own subtask \"C\""],
    );
    let mut early = plan(three(), vec![]);
    early.start = at("1899-12-31 08:00");
    check_err(&early, &["start", "1900"]);
}

#[test]
fn cycles_through_summaries_name_the_summary() {
    // Phase → Review → Draft, but Draft belongs to Phase: Phase can only finish after Review.
    let mut draft = task(2, "Draft", D);
    draft.parent = Some(id(1));
    let p = plan(vec![task(1, "Phase", 0), draft, task(3, "Review", D)], vec![fs(1, 3), fs(3, 2)]);
    let err = schedule(&p, &Calendars::default()).unwrap_err();
    let ScheduleError::Cycle { tasks } = &err else { panic!("{err}") };
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.first(), names.last());
    let mut distinct = names[1..].to_vec();
    distinct.sort();
    assert_eq!(distinct, ["Draft", "Phase", "Review"], "{err}");
}

#[test]
fn pinned_dates_that_a_predecessor_makes_impossible_are_errors() {
    let mut launch = task(2, "Launch", D);
    launch.constraint = Constraint::MustStartOn(at("2024-03-05 08:00"));
    let p = plan(vec![task(1, "Build", 3 * D), launch], vec![fs(1, 2)]);
    let err = schedule(&p, &Calendars::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "\"Launch\" ({}) cannot keep its constraint \"must start on Tue 2024-03-05 08:00\": predecessor \
             \"Build\" ({}) (FS +0min) requires it to start no earlier than Thu 2024-03-07 08:00",
            id(2),
            id(1)
        )
    );
    // Must-finish-on, held back by a summary's start-no-earlier-than date.
    let mut phase = task(1, "Phase", 0);
    phase.constraint = Constraint::StartNoEarlierThan(at("2024-03-06 08:00"));
    let mut report = task(2, "Report", D);
    report.parent = Some(id(1));
    report.constraint = Constraint::MustFinishOn(at("2024-03-05 17:00"));
    let err = schedule(&plan(vec![phase, report], vec![]), &Calendars::default()).unwrap_err();
    let ScheduleError::ImpossibleConstraint(impossible) = &err else { panic!("{err}") };
    let Impossible { task: who, required_by, earliest, .. } = impossible.as_ref();
    assert_eq!((who.name.as_str(), fmt(*earliest)), ("Report", "Wed 03-06 17:00".to_string()));
    assert!(matches!(required_by, Requirement::SummaryConstraint { summary, .. } if summary.name == "Phase"));
    // With room to spare, the pinned date holds and the predecessor gets the slack.
    let mut launch = task(2, "Launch", D);
    launch.constraint = Constraint::MustStartOn(at("2024-03-08 08:00"));
    let s = run(&plan(vec![task(1, "Build", 3 * D), launch], vec![fs(1, 2)]));
    assert_eq!(
        (fmt(s.task(id(2)).unwrap().start), s.task(id(1)).unwrap().total_slack),
        ("Fri 03-08 08:00".into(), D)
    );
    assert_eq!(s.task(id(2)).unwrap().total_slack, 0);
}

#[test]
fn updating_one_task_matches_a_full_reschedule_and_failures_change_nothing() {
    let p = plan(
        vec![task(1, "A", D), task(2, "B", 2 * D), task(3, "C", D), task(4, "D", D)],
        vec![fs(1, 2), fs(1, 3), fs(2, 4), fs(3, 4)],
    );
    let mut scheduler = Scheduler::new(p.clone(), Calendars::default()).unwrap();
    let mut moved = p.tasks[2].clone();
    moved.constraint = Constraint::StartNoEarlierThan(at("2024-03-07 08:00"));
    let incremental = scheduler.update_task(moved.clone()).unwrap().clone();
    let mut changed = p.clone();
    changed.tasks[2] = moved;
    assert_eq!(incremental, run(&changed));
    assert_eq!(fmt(incremental.task(id(4)).unwrap().start), "Fri 03-08 08:00");

    let before = scheduler.schedule().clone();
    let mut pinned = p.tasks[3].clone();
    pinned.constraint = Constraint::MustStartOn(at("2024-03-04 08:00"));
    assert!(matches!(scheduler.update_task(pinned), Err(ScheduleError::ImpossibleConstraint(_))));
    assert_eq!(scheduler.schedule(), &before);
    assert_eq!(scheduler.plan(), &changed);
    let mut bad = p.tasks[0].clone();
    bad.duration = -5;
    assert!(scheduler.update_task(bad).is_err());
    assert!(scheduler.update_task(task(99, "Unknown", D)).is_err());
    assert_eq!(scheduler.schedule(), &before);
}

#[test]
fn an_empty_plan_schedules_and_renders() {
    let p = plan(vec![], vec![]);
    let s = run(&p);
    assert_eq!((s.tasks().len(), s.start, s.finish), (0, p.start, p.start));
    assert!(s.critical_path().is_empty() && s.warnings().next().is_none());
    let svg = crate::schedule::gantt::render(&p, &s, &Calendars::default(), &Default::default());
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}
