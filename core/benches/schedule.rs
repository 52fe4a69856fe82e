//! Scheduling speed on a large plan: 10,000 tasks (40 work streams of 5 phases each) and 20,000
//! dependencies (FS chains inside phases, phase-to-phase links, cross-stream dependencies of every
//! kind with lags), a workspace calendar with holidays and 20 people, half with their own calendar.
//! Prints p50/p99 of a full schedule and of rescheduling after moving one task. Asserts nothing.
//!
//! `cargo bench -p tandem-core --bench schedule`

#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta, Weekday};
use tandem_core::ItemId;
use tandem_core::UserId;
use tandem_core::schedule::*;

/// xorshift64*: the same plan every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const STREAMS: usize = 40;
const PHASES: usize = 5;
/// Leaves in each phase; the last phase of a stream has one fewer, for 250 tasks a stream.
const LEAVES_PER_PHASE: usize = 49;
const DEPENDENCIES: usize = 20_000;

fn id(n: usize) -> ItemId {
    ItemId(uuid::Uuid::from_u128(n as u128 + 1))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn start() -> NaiveDateTime {
    date(2025, 1, 6).and_hms_opt(8, 0, 0).expect("time")
}

fn calendars(rng: &mut Rng) -> Calendars {
    let mut ws = Calendar::default();
    for year in 2025..=2030 {
        for (m, d) in [
            (1, 1),
            (4, 18),
            (4, 21),
            (5, 1),
            (5, 29),
            (6, 9),
            (7, 14),
            (8, 15),
            (11, 1),
            (11, 11),
            (12, 25),
            (12, 26),
        ] {
            ws.exceptions.push(Exception::holiday("Public holiday", date(year, m, d)));
        }
    }
    let mut cals = Calendars::new(ws);
    for u in 0..10u128 {
        let hours =
            WorkingHours::parse(["09:00-13:00", "07:00-12:00 12:30-15:30", "10:00-18:00"][u as usize % 3])
                .expect("hours");
        let days: &[Weekday] = if u % 2 == 0 {
            &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu]
        } else {
            &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
        };
        let mut exceptions = Vec::new();
        for year in 2025..=2030 {
            let from = date(year, 7, 1) + TimeDelta::days(rng.below(40) as i64);
            exceptions.push(Exception::days_off("Vacation", from, from + TimeDelta::days(13)));
        }
        cals = cals.with_user(
            UserId(uuid::Uuid::from_u128(1000 + u)),
            UserCalendar { week: Some(WeekPattern::on(days, &hours)), exceptions },
        );
    }
    cals
}

fn plan(rng: &mut Rng) -> Plan {
    let mut p = Plan::new(start());
    // Leaves by (stream, position along the stream); positions order every dependency forwards.
    let mut leaves: Vec<Vec<usize>> = vec![Vec::new(); STREAMS];
    let mut phases: Vec<Vec<usize>> = vec![Vec::new(); STREAMS];
    let mut deps: Vec<Dependency> = Vec::new();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut add = |deps: &mut Vec<Dependency>, a: usize, b: usize, kind: DependencyKind, lag: Lag| {
        if seen.insert((a, b)) {
            deps.push(Dependency::new(id(a), id(b), kind, lag));
        }
    };
    for s in 0..STREAMS {
        let stream = p.tasks.len();
        p.tasks.push(Task::new(id(stream), format!("Stream {s}"), 0));
        for ph in 0..PHASES {
            let phase = p.tasks.len();
            let mut t = Task::new(id(phase), format!("Stream {s} phase {ph}"), 0);
            t.parent = Some(id(stream));
            p.tasks.push(t);
            phases[s].push(phase);
            let count = if ph == PHASES - 1 { LEAVES_PER_PHASE - 1 } else { LEAVES_PER_PHASE };
            for k in 0..count {
                let i = p.tasks.len();
                let duration = if rng.chance(5) { 0 } else { 60 * (1 + rng.below(40) as i64) };
                let mut t = Task::new(id(i), format!("S{s} P{ph} task {k}"), duration);
                t.parent = Some(id(phase));
                t.effort = Some(duration);
                t.points = Some(rng.below(8) as f64);
                t.percent_complete = if ph == 0 { rng.below(101) as u8 } else { 0 };
                if rng.chance(60) {
                    t.resource = Some(UserId(uuid::Uuid::from_u128(1000 + rng.below(20) as u128)));
                }
                let day = start() + TimeDelta::days(7 * (ph as i64) + rng.below(60) as i64);
                t.constraint = match rng.below(100) {
                    0 | 1 => Constraint::StartNoEarlierThan(day),
                    2 => Constraint::FinishNoLaterThan(day + TimeDelta::days(1500)),
                    3 => Constraint::AsLateAsPossible,
                    _ => Constraint::AsSoonAsPossible,
                };
                t.baseline = Some(Baseline { start: day, finish: day + TimeDelta::days(2) });
                p.tasks.push(t);
                if k > 0 {
                    let kind = match rng.below(100) {
                        0..=89 => DependencyKind::FinishToStart,
                        90..=95 => DependencyKind::StartToStart,
                        _ => DependencyKind::FinishToFinish,
                    };
                    add(&mut deps, i - 1, i, kind, Lag::Working(0));
                }
                leaves[s].push(i);
            }
            if ph > 0 {
                add(
                    &mut deps,
                    phase - LEAVES_PER_PHASE - 1,
                    phase,
                    DependencyKind::FinishToStart,
                    Lag::Working(0),
                );
            }
        }
    }
    let per_stream = PHASES * LEAVES_PER_PHASE - 1;
    while deps.len() < DEPENDENCIES {
        let (a, b) = (rng.below(STREAMS as u64) as usize, rng.below(STREAMS as u64) as usize);
        let i = rng.below(per_stream as u64 - 31) as usize;
        let j = i + 1 + rng.below(30) as usize;
        let kind = match rng.below(100) {
            0..=84 => DependencyKind::FinishToStart,
            85..=91 => DependencyKind::StartToStart,
            92..=97 => DependencyKind::FinishToFinish,
            _ => DependencyKind::StartToFinish,
        };
        let lag = match rng.below(100) {
            0..=79 => Lag::Working(0),
            80..=89 => Lag::Working(60 * (rng.below(33) as i64 - 16)),
            90..=94 => Lag::Elapsed(60 * rng.below(72) as i64),
            _ => Lag::Percent(rng.below(100) as i32 - 25),
        };
        add(&mut deps, leaves[a][i], leaves[b][j], kind, lag);
    }
    p.dependencies = deps;
    p
}

/// Time this thread has spent on a CPU, so figures stay meaningful on a busy machine where
/// wall-clock time includes waiting for a core.
fn cpu_time() -> Option<Duration> {
    cpu_time::ThreadTime::try_now().ok().map(|t| t.as_duration())
}

/// Runs `f`, returning (wall-clock, on-CPU) time.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<Duration>) {
    let (cpu, wall) = (cpu_time(), Instant::now());
    let out = f();
    let wall = wall.elapsed();
    (out, wall, cpu.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a)))
}

fn report(what: &str, wall: Vec<Duration>, cpu: Vec<Duration>) {
    let runs = wall.len();
    let (p50, p99) = percentiles(wall);
    let digits = if p50 < 1.0 { 3 } else { 2 };
    print!("{what}: wall p50 {p50:.digits$} ms, p99 {p99:.digits$} ms");
    if cpu.len() == runs {
        let (c50, c99) = percentiles(cpu);
        print!("; on-CPU p50 {c50:.digits$} ms, p99 {c99:.digits$} ms");
    }
    println!(" ({runs} runs)");
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

fn main() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let cals = calendars(&mut rng);
    let plan = plan(&mut rng);
    let parents: HashSet<ItemId> = plan.tasks.iter().filter_map(|t| t.parent).collect();
    let leaves = plan.tasks.len() - parents.len();
    println!(
        "plan: {} tasks ({} leaves, {} summaries), {} dependencies, {} personal calendars",
        plan.tasks.len(),
        leaves,
        plan.tasks.len() - leaves,
        plan.dependencies.len(),
        cals.users.len()
    );

    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut scheduler = None;
    for _ in 0..40 {
        let (p, c) = (plan.clone(), cals.clone());
        let (s, w, c) = timed(|| Scheduler::new(p, c).expect("schedule"));
        wall.push(w);
        cpu.extend(c);
        scheduler = Some(s);
    }
    let mut scheduler = scheduler.expect("scheduler");
    let s = scheduler.schedule();
    let leaves: Vec<_> = s.tasks().iter().filter(|t| !t.summary).collect();
    let slack = |f: &dyn Fn(i64) -> bool| leaves.iter().filter(|t| f(t.total_slack)).count();
    println!(
        "schedule: {} to {}; leaf slack: {} negative, {} zero, {} up to a week, {} more; critical path of {} tasks; {} warnings",
        s.start,
        s.finish,
        slack(&|x| x < 0),
        slack(&|x| x == 0),
        slack(&|x| x > 0 && x <= 5 * 480),
        slack(&|x| x > 5 * 480),
        s.critical_path().len(),
        s.warnings().count()
    );
    report("full reschedule (validate + compile + schedule)", wall, cpu);

    // Move one task a day later and back again, as dragging a bar in the Gantt chart does.
    // One with slack to spare, and one on the critical path, which moves the project's finish and
    // so every late date.
    let s = scheduler.schedule();
    let with_slack = s.tasks().iter().filter(|t| !t.summary && !t.milestone && t.total_slack > 960).nth(300);
    let path = s.critical_path();
    let on_path = path.iter().skip(path.len() / 2).filter_map(|id| s.task(*id)).find(|t| !t.milestone);
    let victims = [("a task with slack", with_slack), ("a task on the critical path", on_path)]
        .map(|(label, t)| (label, t.map(|t| (t.id, t.start)).expect("a task to move")));
    for (label, victim) in victims {
        let original = scheduler.plan().task(victim.0).expect("task").clone();
        let mut moved = original.clone();
        moved.constraint = Constraint::StartNoEarlierThan(victim.1 + TimeDelta::days(1));
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for round in 0..100 {
            let next = if round % 2 == 0 { moved.clone() } else { original.clone() };
            let (_, w, c) = timed(|| scheduler.update_task(next).map(|_| ()).expect("update"));
            wall.push(w);
            cpu.extend(c);
        }
        report(&format!("incremental reschedule after moving {label} by a day"), wall, cpu);
    }
}
