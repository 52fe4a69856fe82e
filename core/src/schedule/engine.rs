//! The critical-path engine: a forward pass for early dates, a backward pass for late dates,
//! as-late-as-possible placement and slack, over an index-based graph.
//!
//! Every task `t` has a node `t`; a summary task also has a second node `n + t`. Node `t` of a
//! summary ("open") gathers what the summary's dependencies and constraint demand of its
//! children; node `n + t` ("close") rolls the children's dates up. Forward edges: a predecessor's
//! last node → the successor's node `t`; a summary's open node → its children; a child's last node
//! → its parent's close node. A topological order of these nodes lets both passes run once, and an
//! incremental reschedule revisit only nodes whose inputs changed, in the same order.
//!
//! Dates live on the minute timeline (`time.rs`); durations and slack are counted in working
//! minutes of the task's calendar through its [`WorkTable`], as *ordinals* (working minutes before
//! an instant). Dependencies between tasks on different calendars meet in instants.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use super::calendar::{Calendars, WorkTable};
use super::error::{Impossible, Requirement, ScheduleError};
use super::plan::{Baseline, Constraint, DependencyKind, Lag, Mode, Plan, Task, TaskRef};
use super::result::{Because, Driver, Explanation, Schedule, TaskSchedule, Warning};
use super::time::{self, IdBuild, MAX_SPAN, Minute, from_minute, to_minute};
use crate::error::Invalid;
use crate::ids::ItemId;

const NONE: u32 = u32::MAX;
const NO_BOUND: Minute = Minute::MAX;

/// Compressed adjacency lists: the items of row `i` are `items[start[i]..start[i + 1]]`.
#[derive(Debug, Clone, Default)]
struct Rows {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Rows {
    fn build(n: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> Self {
        let mut start = vec![0u32; n + 1];
        for (row, _) in pairs.clone() {
            start[row as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; start[n] as usize];
        for (row, item) in pairs {
            items[fill[row as usize] as usize] = item;
            fill[row as usize] += 1;
        }
        Self { start, items }
    }

    fn get(&self, row: usize) -> &[u32] {
        &self.items[self.start[row] as usize..self.start[row + 1] as usize]
    }
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    pred: u32,
    succ: u32,
    kind: DependencyKind,
    lag: Lag,
}

#[derive(Debug, Clone)]
struct Graph {
    n: usize,
    ids: Vec<ItemId>,
    index: HashMap<ItemId, u32, IdBuild>,
    parent: Vec<u32>,
    summary: Vec<bool>,
    children: Rows,
    in_edges: Rows,
    out_edges: Rows,
    edges: Vec<Edge>,
    /// Topological order of nodes, and each node's position in it (`NONE` for unused close nodes).
    order: Vec<u32>,
    rank: Vec<u32>,
}

impl Graph {
    fn last_node(&self, t: usize) -> usize {
        if self.summary[t] { self.n + t } else { t }
    }

    /// Nodes that read what `node` computes in the forward pass.
    fn forward_successors(&self, node: usize, mut f: impl FnMut(usize)) {
        let n = self.n;
        if node < n && self.summary[node] {
            for &c in self.children.get(node) {
                f(c as usize);
            }
            return;
        }
        let t = if node < n { node } else { node - n };
        for &e in self.out_edges.get(t) {
            f(self.edges[e as usize].succ as usize);
        }
        if self.parent[t] != NONE {
            f(n + self.parent[t] as usize);
        }
    }

    /// Nodes whose forward values `node` reads (and so, in the backward pass, read `node`).
    fn forward_predecessors(&self, node: usize, mut f: impl FnMut(usize)) {
        let n = self.n;
        if node >= n {
            for &c in self.children.get(node - n) {
                f(self.last_node(c as usize));
            }
            return;
        }
        for &e in self.in_edges.get(node) {
            f(self.last_node(self.edges[e as usize].pred as usize));
        }
        if self.parent[node] != NONE {
            f(self.parent[node] as usize);
        }
    }
}

/// Dates a task keeps: entered by hand, or what really happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pin {
    Manual,
    Actual,
}

/// What the passes need of a task, compiled once. The passes visit tasks in dependency order,
/// not memory order, so everything they touch per task is kept small.
#[derive(Debug, Clone, Copy)]
struct Spec {
    cal: u32,
    automatic: bool,
    percent: u8,
    duration: i64,
    constraint: Constraint,
    pinned_start: Option<(Minute, Pin)>,
    pinned_finish: Option<(Minute, Pin)>,
}

/// A [`Driver`] with tasks and dependencies by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    ProjectStart,
    /// A dependency, inherited through summary `via` (`NONE` when it is the task's own).
    Edge {
        edge: u32,
        via: u32,
    },
    Constraint,
    SummaryConstraint(u32),
    Pinned(Pin),
    Duration,
    /// As late as possible, held by this task (`NONE`: by the project's finish).
    Alap(u32),
    Child(u32),
}

/// A [`Because`] by index: the reason, the instant it asked for and, for a dependency, the
/// predecessor's date it counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reason {
    why: Why,
    at: Minute,
    from: Minute,
}

impl Reason {
    fn new(why: Why, at: Minute) -> Self {
        Self { why, at, from: at }
    }
}

/// Forward values of a leaf task, or of a summary's close node.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fwd {
    es: Minute,
    ef: Minute,
    es_o: i64,
    ef_o: i64,
    dur: i64,
    start_by: Reason,
    finish_by: Reason,
    /// A dependency a manual or started task breaks, at its start and at its finish: the
    /// dependency and the earliest date it allows.
    broken: [Option<(u32, Minute)>; 2],
    /// Working minutes by which a no-later-than date is missed (0: met).
    missed: i64,
}

impl Default for Fwd {
    fn default() -> Self {
        let r = Reason::new(Why::ProjectStart, 0);
        Self {
            es: 0,
            ef: 0,
            es_o: 0,
            ef_o: 0,
            dur: 0,
            start_by: r,
            finish_by: r,
            broken: [None; 2],
            missed: 0,
        }
    }
}

/// What a summary's open node demands of its children: the latest start bound and finish bound.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Open {
    start: Option<Reason>,
    finish: Option<Reason>,
}

/// Latest instants allowed by a task's successors: `late` from their late dates, `sched` from
/// their scheduled dates (for as-late-as-possible tasks and free slack), with the successor that
/// holds the scheduled ones.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    start: Minute,
    finish: Minute,
    sched_start: Minute,
    sched_finish: Minute,
    sched_start_by: u32,
    sched_finish_by: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            start: NO_BOUND,
            finish: NO_BOUND,
            sched_start: NO_BOUND,
            sched_finish: NO_BOUND,
            sched_start_by: NONE,
            sched_finish_by: NONE,
        }
    }
}

impl Limits {
    fn start(&mut self, late: Minute, sched: Minute, by: u32) {
        self.start = self.start.min(late);
        if sched < self.sched_start {
            self.sched_start = sched;
            self.sched_start_by = by;
        }
    }

    fn finish(&mut self, late: Minute, sched: Minute, by: u32) {
        self.finish = self.finish.min(late);
        if sched < self.sched_finish {
            self.sched_finish = sched;
            self.sched_finish_by = by;
        }
    }
}

/// What a leaf or a summary's open node tells its predecessors: the latest instant a start bound
/// (`*_s`) or finish bound (`*_f`) on it may have without moving it past its late (`y_`) or
/// scheduled (`ys_`) position.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Rev {
    y_s: Minute,
    y_f: Minute,
    ys_s: Minute,
    ys_f: Minute,
}

/// A task's scheduled and late position, slack and roll-ups, from the backward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Out {
    ss: Minute,
    sf: Minute,
    ls: Minute,
    lf: Minute,
    dur: i64,
    total: i64,
    free: i64,
    start_by: Reason,
    finish_by: Reason,
    /// Σ percent × duration, Σ duration, Σ percent, number of leaves.
    progress: [i64; 4],
    points: Option<f64>,
    effort: Option<i64>,
    baseline: Option<(Minute, Minute)>,
}

impl Default for Out {
    fn default() -> Self {
        let r = Reason::new(Why::ProjectStart, 0);
        Self {
            ss: 0,
            sf: 0,
            ls: 0,
            lf: 0,
            dur: 0,
            total: 0,
            free: 0,
            start_by: r,
            finish_by: r,
            progress: [0; 4],
            points: None,
            effort: None,
            baseline: None,
        }
    }
}

/// The lower bounds gathered for one date: the largest ordinal, its reason, and the largest
/// instant offered (where a milestone goes). Among bounds with the same ordinal the later instant
/// is the reason (a predecessor finishing Friday 17:00 does not explain a start after a project
/// that starts Monday 08:00), then the first offered: dependencies before constraints before the
/// project start.
#[derive(Debug, Clone, Copy)]
struct Acc {
    o: i64,
    max_at: Minute,
    by: Option<Reason>,
}

impl Acc {
    fn new() -> Self {
        Self { o: i64::MIN, max_at: Minute::MIN, by: None }
    }

    fn offer(&mut self, o: i64, r: Reason) {
        if o > self.o || (o == self.o && self.by.is_some_and(|b| r.at > b.at)) {
            self.o = o;
            self.by = Some(r);
        }
        self.max_at = self.max_at.max(r.at);
    }
}

fn percent_of(p: i32, duration: i64) -> i64 {
    let v = i64::from(p) * duration;
    (2 * v + 100 * v.signum()) / 200
}

/// The bound a dependency puts on its successor, from the predecessor's date `x`.
pub(super) fn lag_forward(
    table: &mut WorkTable,
    x: Minute,
    lag: Lag,
    pred_duration: i64,
) -> Result<Minute, ScheduleError> {
    let working = |table: &mut WorkTable, l: i64| {
        if l == 0 {
            return Ok(x);
        }
        let o = table.ord(x)? + l;
        table.end_of(o)
    };
    match lag {
        Lag::Working(l) => working(table, l),
        Lag::Percent(p) => working(table, percent_of(p, pred_duration)),
        Lag::Elapsed(l) => Ok(x + l),
    }
}

/// The latest predecessor date `x` whose [`lag_forward`] bound stays at or before `y`.
fn lag_backward(
    table: &mut WorkTable,
    y: Minute,
    lag: Lag,
    pred_duration: i64,
) -> Result<Minute, ScheduleError> {
    if y == NO_BOUND {
        return Ok(NO_BOUND);
    }
    let working = |table: &mut WorkTable, l: i64| {
        if l == 0 {
            return Ok(y);
        }
        let o = table.ord(y)? - l;
        table.start_of(o)
    };
    match lag {
        Lag::Working(l) => working(table, l),
        Lag::Percent(p) => working(table, percent_of(p, pred_duration)),
        Lag::Elapsed(l) => Ok(y - l),
    }
}

/// The latest position of a task of `d` working minutes that starts by `s_ub` and finishes by
/// `f_ub`: (start ordinal, finish ordinal, start, finish).
fn latest(
    table: &mut WorkTable,
    d: i64,
    s_ub: Minute,
    f_ub: Minute,
) -> Result<(i64, i64, Minute, Minute), ScheduleError> {
    if d == 0 {
        let lim = s_ub.min(f_ub);
        let o = table.ord(lim)?;
        let at = table.milestone_at_or_before(lim)?;
        return Ok((o, o, at, at));
    }
    let by_start = if s_ub == NO_BOUND { i64::MAX } else { table.ord_after(s_ub)? - 1 };
    let o = by_start.min(table.ord(f_ub)? - d);
    Ok((o, o + d, table.start_of(o)?, table.end_of(o + d)?))
}

/// How far a task at ordinals `(s_o, f_o)` may slip before reaching `s_ub` / `f_ub`.
fn room(
    table: &mut WorkTable,
    d: i64,
    s_o: i64,
    f_o: i64,
    s_ub: Minute,
    f_ub: Minute,
) -> Result<i64, ScheduleError> {
    let by_finish = if f_ub == NO_BOUND { i64::MAX } else { table.ord(f_ub)? - f_o };
    let by_start = match (s_ub == NO_BOUND, d) {
        (true, _) => i64::MAX,
        (false, 0) => table.ord(s_ub)? - s_o,
        (false, _) => table.ord_after(s_ub)? - 1 - s_o,
    };
    Ok(by_start.min(by_finish))
}

/// `table.start_of(o)` for an instant `x` known to lie at ordinal `o`: `x` itself when a working
/// minute starts there, which saves a search for most dates.
fn start_at(table: &mut WorkTable, x: Minute, o: i64) -> Result<Minute, ScheduleError> {
    if table.works_at(x)? { Ok(x) } else { table.start_of(o) }
}

/// A plan being scheduled: the compiled graph, calendar tables, every pass's values and the
/// resulting [`Schedule`]. [`Scheduler::update_task`] reschedules after one task changes,
/// revisiting only what that change can reach, with the same result as scheduling from scratch.
#[derive(Debug, Clone)]
pub struct Scheduler {
    plan: Plan,
    calendars: Calendars,
    g: Graph,
    tables: Vec<WorkTable>,
    specs: Vec<Spec>,
    fwd: Vec<Fwd>,
    open: Vec<Open>,
    close: Vec<Limits>,
    rev: Vec<Rev>,
    out: Vec<Out>,
    project_start: Minute,
    project_finish: Minute,
    late_origin: Minute,
    schedule: Schedule,
    /// Per node: the update that last queued it (saves clearing a visited set per update).
    stamp: Vec<u32>,
    generation: u32,
}

/// What an update overwrote, to put back if it fails.
#[derive(Debug)]
enum Undo {
    Fwd(usize, Fwd),
    Open(usize, Open),
    Close(usize, Limits),
    Rev(usize, Rev, Out),
    Task(usize, Box<TaskSchedule>),
}

impl Scheduler {
    /// Validates and schedules `plan` from scratch.
    pub fn new(plan: Plan, calendars: Calendars) -> Result<Self, ScheduleError> {
        calendars.validate()?;
        let g = compile(&plan)?;
        let n = g.n;
        let mut s = Scheduler {
            project_start: to_minute(plan.start),
            plan,
            calendars,
            g,
            tables: Vec::new(),
            specs: Vec::with_capacity(n),
            fwd: vec![Fwd::default(); n],
            open: vec![Open::default(); n],
            close: vec![Limits::default(); n],
            rev: vec![Rev::default(); n],
            out: vec![Out::default(); n],
            project_finish: 0,
            late_origin: 0,
            schedule: Schedule {
                tasks: Vec::new(),
                index: HashMap::default(),
                start: from_minute(0),
                finish: from_minute(0),
                deadline_warning: None,
                critical_path: Vec::new(),
            },
            stamp: vec![0; 2 * n],
            generation: 0,
        };
        for t in 0..n {
            let spec = s.spec(t);
            s.specs.push(spec);
        }
        for i in 0..s.g.order.len() {
            let node = s.g.order[i] as usize;
            s.forward_node(node, None)?;
        }
        s.set_finish();
        for i in (0..s.g.order.len()).rev() {
            let node = s.g.order[i] as usize;
            s.backward_node(node, None)?;
        }
        let mut tasks = Vec::with_capacity(n);
        for t in 0..n {
            tasks.push(s.materialize(t)?);
        }
        s.schedule.tasks = tasks;
        s.schedule.index = s.g.index.clone();
        s.finish_up();
        Ok(s)
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn calendars(&self) -> &Calendars {
        &self.calendars
    }

    pub fn into_parts(self) -> (Plan, Schedule) {
        (self.plan, self.schedule)
    }

    /// Replaces the task with `task.id` and reschedules what the change reaches. Moving a task
    /// under another parent recompiles the plan. On error the scheduler is left as it was.
    pub fn update_task(&mut self, task: Task) -> Result<&Schedule, ScheduleError> {
        let Some(&t) = self.g.index.get(&task.id) else {
            return Err(Invalid::new("task.id", format!("the plan has no task {}", task.id)).into());
        };
        let t = t as usize;
        if task.parent != self.plan.tasks[t].parent {
            let mut plan = self.plan.clone();
            plan.tasks[t] = task;
            *self = Scheduler::new(plan, self.calendars.clone())?;
            return Ok(&self.schedule);
        }
        validate_task(t, &task, self.g.summary[t])?;
        let old_task = std::mem::replace(&mut self.plan.tasks[t], task);
        let old_spec = self.specs[t];
        self.specs[t] = self.spec(t);
        let mut undo = Vec::new();
        if let Err(e) = self.propagate(t, &mut undo) {
            for u in undo.into_iter().rev() {
                match u {
                    Undo::Fwd(i, v) => self.fwd[i] = v,
                    Undo::Open(i, v) => self.open[i] = v,
                    Undo::Close(i, v) => self.close[i] = v,
                    Undo::Rev(i, r, o) => (self.rev[i], self.out[i]) = (r, o),
                    Undo::Task(i, v) => self.schedule.tasks[i] = *v,
                }
            }
            self.plan.tasks[t] = old_task;
            self.specs[t] = old_spec;
            self.set_finish();
            self.finish_up();
            return Err(e);
        }
        Ok(&self.schedule)
    }

    fn next_generation(&mut self) -> u32 {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.generation
    }

    fn propagate(&mut self, t: usize, undo: &mut Vec<Undo>) -> Result<(), ScheduleError> {
        let n = self.g.n;
        let mut seeds = vec![t];
        if self.g.summary[t] {
            seeds.push(n + t);
        }
        // Forward, in topological order from the changed task, as far as values change.
        let gen_fwd = self.next_generation();
        let mut heap: BinaryHeap<Reverse<(u32, u32)>> = BinaryHeap::new();
        for &s in &seeds {
            self.stamp[s] = gen_fwd;
            heap.push(Reverse((self.g.rank[s], s as u32)));
        }
        let mut touched: Vec<usize> = vec![t];
        let mut changed_fwd = Vec::new();
        while let Some(Reverse((_, node))) = heap.pop() {
            let node = node as usize;
            if self.forward_node(node, Some(undo))? {
                changed_fwd.push(node);
                touched.push(node % n);
                let (g, stamp) = (&self.g, &mut self.stamp);
                g.forward_successors(node, |s| {
                    if stamp[s] != gen_fwd {
                        stamp[s] = gen_fwd;
                        heap.push(Reverse((g.rank[s], s as u32)));
                    }
                });
            }
        }
        // Backward, from everything that changed, in reverse order. A new project finish moves
        // every late date: then the whole backward pass runs.
        let before = (self.project_finish, self.late_origin);
        self.set_finish();
        if before != (self.project_finish, self.late_origin) {
            for i in (0..self.g.order.len()).rev() {
                let node = self.g.order[i] as usize;
                if self.backward_node(node, Some(undo))? {
                    touched.push(node % n);
                }
            }
        } else {
            let gen_back = self.next_generation();
            let mut seeded: HashSet<usize, IdBuild> = changed_fwd.into_iter().collect();
            seeded.extend(seeds);
            let mut heap: BinaryHeap<(u32, u32)> = BinaryHeap::new();
            for &s in &seeded {
                self.stamp[s] = gen_back;
                heap.push((self.g.rank[s], s as u32));
            }
            while let Some((_, node)) = heap.pop() {
                let node = node as usize;
                let changed = self.backward_node(node, Some(undo))?;
                if changed {
                    touched.push(node % n);
                }
                if changed || seeded.contains(&node) {
                    let (g, stamp) = (&self.g, &mut self.stamp);
                    let mut push = |p: usize| {
                        if stamp[p] != gen_back {
                            stamp[p] = gen_back;
                            heap.push((g.rank[p], p as u32));
                        }
                    };
                    g.forward_predecessors(node, &mut push);
                    // A summary's own figures (free slack, early dates) are read off its close node.
                    if node >= n {
                        push(node - n);
                    }
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for t in touched {
            let task = self.materialize(t)?;
            if task != self.schedule.tasks[t] {
                let old = std::mem::replace(&mut self.schedule.tasks[t], task);
                undo.push(Undo::Task(t, Box::new(old)));
            }
        }
        self.finish_up();
        Ok(())
    }

    fn spec(&mut self, t: usize) -> Spec {
        let task = &self.plan.tasks[t];
        let cal_ref = self.calendars.calendar_of(task.resource);
        let cal = match self.tables.iter().position(|w| w.calendar() == cal_ref) {
            Some(i) => i,
            None => {
                self.tables.push(WorkTable::new(&self.calendars, cal_ref));
                self.tables.len() - 1
            }
        };
        let summary = self.g.summary[t];
        let manual = task.mode == Mode::Manual && !summary;
        let actual_start = task.actual_start.filter(|_| !summary);
        let pinned_start = match (actual_start, manual.then_some(task.start).flatten()) {
            (Some(a), _) => Some((to_minute(a), Pin::Actual)),
            (None, Some(s)) => Some((to_minute(s), Pin::Manual)),
            (None, None) => None,
        };
        let actual_finish = task.actual_finish.filter(|_| !summary);
        let pinned_finish = match (actual_finish, actual_start, manual.then_some(task.finish).flatten()) {
            (Some(f), _, _) => Some((to_minute(f), Pin::Actual)),
            (None, None, Some(f)) => Some((to_minute(f), Pin::Manual)),
            _ => None,
        };
        Spec {
            cal: cal as u32,
            // A summary's dates always come from its subtasks, whatever mode it was given.
            automatic: task.mode == Mode::Automatic || summary,
            percent: task.percent_complete,
            duration: task.duration,
            constraint: task.constraint,
            pinned_start,
            pinned_finish,
        }
    }

    fn task_ref(&self, t: usize) -> TaskRef {
        TaskRef::from(&self.plan.tasks[t])
    }

    /// The public form of a reason given for task `t`.
    fn because(&self, r: Reason, t: usize) -> Because {
        let ids = &self.g.ids;
        let driver = match r.why {
            Why::ProjectStart => Driver::ProjectStart,
            Why::Edge { edge, via } => {
                let e = self.g.edges[edge as usize];
                Driver::Dependency {
                    predecessor: ids[e.pred as usize],
                    kind: e.kind,
                    lag: e.lag,
                    via: (via != NONE).then(|| ids[via as usize]),
                    predecessor_date: from_minute(r.from),
                }
            }
            Why::Constraint => Driver::Constraint(self.specs[t].constraint),
            Why::SummaryConstraint(s) => Driver::SummaryConstraint {
                summary: ids[s as usize],
                constraint: self.specs[s as usize].constraint,
            },
            Why::Pinned(Pin::Manual) => Driver::Manual,
            Why::Pinned(Pin::Actual) => Driver::Actual,
            Why::Duration => Driver::Duration,
            Why::Alap(by) => Driver::AsLateAsPossible { successor: (by != NONE).then(|| ids[by as usize]) },
            Why::Child(c) => Driver::Child(ids[c as usize]),
        };
        Because { driver, requested: from_minute(r.at) }
    }

    /// Recomputes a node's forward values; true when they changed. A full pass (no undo log)
    /// stores without comparing.
    fn forward_node(&mut self, node: usize, undo: Option<&mut Vec<Undo>>) -> Result<bool, ScheduleError> {
        let n = self.g.n;
        if node < n && self.g.summary[node] {
            let v = self.forward_open(node)?;
            if undo.is_some() && v == self.open[node] {
                return Ok(false);
            }
            let old = std::mem::replace(&mut self.open[node], v);
            if let Some(u) = undo {
                u.push(Undo::Open(node, old));
            }
            return Ok(true);
        }
        let (t, v) = if node >= n {
            (node - n, self.forward_close(node - n)?)
        } else {
            (node, self.forward_leaf(node)?)
        };
        if undo.is_some() && v == self.fwd[t] {
            return Ok(false);
        }
        let old = std::mem::replace(&mut self.fwd[t], v);
        if let Some(u) = undo {
            u.push(Undo::Fwd(t, old));
        }
        Ok(true)
    }

    /// Offers the bounds of `t`'s dependencies (measured in calendar `cal`) to `s` and `f`, keyed
    /// by ordinal, or by instant for a summary (whose children key them in their own calendars).
    fn dependency_bounds(
        &mut self,
        t: usize,
        cal: usize,
        via: u32,
        s: &mut Acc,
        f: &mut Acc,
        key_by_instant: bool,
    ) -> Result<(), ScheduleError> {
        let g = &self.g;
        for &e in g.in_edges.get(t) {
            let edge = g.edges[e as usize];
            let pv = &self.fwd[edge.pred as usize];
            let x = if edge.kind.from_start() { pv.es } else { pv.ef };
            let table = &mut self.tables[cal];
            let b = lag_forward(table, x, edge.lag, pv.dur)?;
            let key = if key_by_instant { b } else { table.ord(b)? };
            let r = Reason { why: Why::Edge { edge: e, via }, at: b, from: x };
            if edge.kind.to_start() { s.offer(key, r) } else { f.offer(key, r) }
        }
        Ok(())
    }

    fn forward_open(&mut self, t: usize) -> Result<Open, ScheduleError> {
        let (mut s, mut f) = (Acc::new(), Acc::new());
        let cal = self.specs[t].cal as usize;
        self.dependency_bounds(t, cal, t as u32, &mut s, &mut f, true)?;
        let parent = self.g.parent[t];
        if parent != NONE {
            let up = self.open[parent as usize];
            if let Some(r) = up.start {
                s.offer(r.at, r);
            }
            if let Some(r) = up.finish {
                f.offer(r.at, r);
            }
        }
        let r = |d| Reason::new(Why::SummaryConstraint(t as u32), to_minute(d));
        match self.specs[t].constraint {
            Constraint::StartNoEarlierThan(d) => s.offer(to_minute(d), r(d)),
            Constraint::FinishNoEarlierThan(d) => f.offer(to_minute(d), r(d)),
            _ => {}
        }
        Ok(Open { start: s.by, finish: f.by })
    }

    fn forward_close(&mut self, t: usize) -> Result<Fwd, ScheduleError> {
        let (mut es, mut ef) = ((Minute::MAX, 0u32), (Minute::MIN, 0u32));
        for &c in self.g.children.get(t) {
            let v = &self.fwd[c as usize];
            if v.es < es.0 {
                es = (v.es, c);
            }
            if v.ef > ef.0 {
                ef = (v.ef, c);
            }
        }
        let table = &mut self.tables[self.specs[t].cal as usize];
        let (es_o, ef_o) = (table.ord(es.0)?, table.ord(ef.0)?);
        Ok(Fwd {
            es: es.0,
            ef: ef.0,
            es_o,
            ef_o,
            dur: ef_o - es_o,
            start_by: Reason::new(Why::Child(es.1), es.0),
            finish_by: Reason::new(Why::Child(ef.1), ef.0),
            broken: [None; 2],
            missed: self.missed(t, es.0, ef.0)?,
        })
    }

    /// Working minutes by which a start-no-later-than or finish-no-later-than date is missed.
    fn missed(&mut self, t: usize, es: Minute, ef: Minute) -> Result<i64, ScheduleError> {
        let spec = self.specs[t];
        if spec.pinned_start.is_some() || !spec.automatic {
            return Ok(0);
        }
        let table = &mut self.tables[spec.cal as usize];
        Ok(match spec.constraint {
            Constraint::StartNoLaterThan(d) if es > to_minute(d) => {
                (table.ord(es)? - table.ord(to_minute(d))?).max(1)
            }
            Constraint::FinishNoLaterThan(d) => (table.ord(ef)? - table.ord(to_minute(d))?).max(0),
            _ => 0,
        })
    }

    fn forward_leaf(&mut self, t: usize) -> Result<Fwd, ScheduleError> {
        let spec = self.specs[t];
        let cal = spec.cal as usize;
        let (mut s, mut f) = (Acc::new(), Acc::new());
        self.dependency_bounds(t, cal, NONE, &mut s, &mut f, false)?;
        let parent = self.g.parent[t];
        if parent != NONE {
            let up = self.open[parent as usize];
            let table = &mut self.tables[cal];
            if let Some(r) = up.start {
                s.offer(table.ord(r.at)?, r);
            }
            if let Some(r) = up.finish {
                f.offer(table.ord(r.at)?, r);
            }
        }
        let d = spec.duration;
        if let Some((start, pin)) = spec.pinned_start {
            return self.forward_pinned(t, start, pin, &s, &f);
        }
        if spec.automatic {
            match spec.constraint {
                c @ (Constraint::MustStartOn(_) | Constraint::MustFinishOn(_)) => {
                    return self.forward_must(t, c, &s, &f);
                }
                Constraint::StartNoEarlierThan(date) => {
                    let at = to_minute(date);
                    s.offer(self.tables[cal].ord(at)?, Reason::new(Why::Constraint, at));
                }
                Constraint::FinishNoEarlierThan(date) => {
                    let at = to_minute(date);
                    f.offer(self.tables[cal].ord(at)?, Reason::new(Why::Constraint, at));
                }
                _ => {}
            }
        }
        let table = &mut self.tables[cal];
        let ps = self.project_start;
        s.offer(table.ord(ps)?, Reason::new(Why::ProjectStart, ps));
        let finish_driven = f.o != i64::MIN && f.o - d > s.o;
        let es_o = if finish_driven { f.o - d } else { s.o };
        let (es, ef) = if d > 0 {
            (table.start_of(es_o)?, table.end_of(es_o + d)?)
        } else if finish_driven {
            let at = table.end_of(f.o)?;
            (at, at)
        } else {
            let at = table.milestone_at_or_after(s.max_at)?;
            (at, at)
        };
        let duration = Reason::new(Why::Duration, ef);
        let (start_by, finish_by) = match (finish_driven, s.by, f.by) {
            (true, _, Some(fb)) => (fb, fb),
            (_, Some(sb), _) => (sb, duration),
            _ => (duration, duration),
        };
        let missed = self.missed(t, es, ef)?;
        Ok(Fwd { es, ef, es_o, ef_o: es_o + d, dur: d, start_by, finish_by, broken: [None; 2], missed })
    }

    /// A task whose start is fixed by actual or manual dates: it keeps them, and a dependency it
    /// breaks becomes a warning.
    fn forward_pinned(
        &mut self,
        t: usize,
        start: Minute,
        pin: Pin,
        s: &Acc,
        f: &Acc,
    ) -> Result<Fwd, ScheduleError> {
        let spec = self.specs[t];
        let table = &mut self.tables[spec.cal as usize];
        let es_o = table.ord(start)?;
        let (ef, ef_o, finish_by) = match spec.pinned_finish {
            Some((finish, fpin)) => (finish, table.ord(finish)?, Reason::new(Why::Pinned(fpin), finish)),
            None => {
                let ef_o = es_o + spec.duration;
                let ef = if spec.duration == 0 { start } else { table.end_of(ef_o)? };
                // A manual task's finish is manual whether it was entered or derived from its
                // duration, so storing it back does not change the explanation.
                let why = if pin == Pin::Manual { Why::Pinned(Pin::Manual) } else { Why::Duration };
                (ef, ef_o, Reason::new(why, ef))
            }
        };
        let mut broken = [None; 2];
        for (slot, acc, late) in [(0, s, s.o > es_o), (1, f, f.o > ef_o)] {
            if let (true, Some(Reason { why: Why::Edge { edge, .. }, .. })) = (late, acc.by) {
                let earliest = if slot == 0 { table.start_of(acc.o)? } else { table.end_of(acc.o)? };
                broken[slot] = Some((edge, earliest));
            }
        }
        Ok(Fwd {
            es: start,
            ef,
            es_o,
            ef_o,
            dur: (ef_o - es_o).max(0),
            start_by: Reason::new(Why::Pinned(pin), start),
            finish_by,
            broken,
            missed: 0,
        })
    }

    /// Must-start-on / must-finish-on: the date holds, and a dependency that would push the task
    /// later is an error.
    fn forward_must(&mut self, t: usize, c: Constraint, s: &Acc, f: &Acc) -> Result<Fwd, ScheduleError> {
        let spec = self.specs[t];
        let d = spec.duration;
        let table = &mut self.tables[spec.cal as usize];
        let at = to_minute(c.date().unwrap_or(self.plan.start));
        let must_start = matches!(c, Constraint::MustStartOn(_));
        let (es_o, es, ef) = if must_start {
            let es_o = table.ord(at)?;
            if d == 0 {
                let m = table.milestone_at_or_after(at)?;
                (es_o, m, m)
            } else {
                (es_o, table.start_of(es_o)?, table.end_of(es_o + d)?)
            }
        } else {
            let ef_o = table.ord(at)?;
            if d == 0 {
                let m = table.milestone_at_or_before(at)?;
                (ef_o, m, m)
            } else {
                (ef_o - d, table.start_of(ef_o - d)?, table.end_of(ef_o)?)
            }
        };
        let start_needed = s.o.max(f.o.saturating_sub(d));
        // A milestone is one instant: a start bound later than it in non-working time (same
        // working-time position) still comes after it.
        let milestone_late = d == 0 && s.max_at > es;
        if start_needed > es_o || milestone_late {
            let binding = if s.o >= f.o.saturating_sub(d) { s } else { f };
            let earliest = if milestone_late && start_needed <= es_o {
                table.milestone_at_or_after(s.max_at)?
            } else if must_start {
                table.start_of(start_needed)?
            } else {
                table.end_of(start_needed + d)?
            };
            let required_by = match binding.by.map(|r| r.why) {
                Some(Why::Edge { edge, via }) => {
                    let e = self.g.edges[edge as usize];
                    Requirement::Dependency {
                        predecessor: self.task_ref(e.pred as usize),
                        kind: e.kind,
                        lag: e.lag,
                        via: (via != NONE).then(|| self.task_ref(via as usize)),
                    }
                }
                Some(Why::SummaryConstraint(summary)) => Requirement::SummaryConstraint {
                    summary: self.task_ref(summary as usize),
                    constraint: self.specs[summary as usize].constraint,
                },
                _ => Requirement::SummaryConstraint { summary: self.task_ref(t), constraint: c },
            };
            return Err(ScheduleError::ImpossibleConstraint(Box::new(Impossible {
                task: self.task_ref(t),
                constraint: c,
                required_by,
                earliest: from_minute(earliest),
            })));
        }
        let pinned = Reason::new(Why::Constraint, at);
        let finish_by = if must_start { Reason::new(Why::Duration, ef) } else { pinned };
        Ok(Fwd {
            es,
            ef,
            es_o,
            ef_o: es_o + d,
            dur: d,
            start_by: pinned,
            finish_by,
            broken: [None; 2],
            missed: 0,
        })
    }

    /// Project finish (latest early finish) and where late dates count back from.
    fn set_finish(&mut self) {
        let mut finish = self.project_start;
        for t in 0..self.g.n {
            if !self.g.summary[t] {
                finish = finish.max(self.fwd[t].ef);
            }
        }
        self.project_finish = finish;
        self.late_origin = self.plan.deadline.map_or(finish, to_minute);
    }

    /// Recomputes a node's backward values; true when they changed.
    fn backward_node(&mut self, node: usize, undo: Option<&mut Vec<Undo>>) -> Result<bool, ScheduleError> {
        let n = self.g.n;
        if node >= n {
            let v = self.backward_close(node - n)?;
            if undo.is_some() && v == self.close[node - n] {
                return Ok(false);
            }
            let old = std::mem::replace(&mut self.close[node - n], v);
            if let Some(u) = undo {
                u.push(Undo::Close(node - n, old));
            }
            return Ok(true);
        }
        let (rev, out) =
            if self.g.summary[node] { self.backward_open(node)? } else { self.backward_leaf(node)? };
        if undo.is_some() && rev == self.rev[node] && out == self.out[node] {
            return Ok(false);
        }
        let old = (std::mem::replace(&mut self.rev[node], rev), std::mem::replace(&mut self.out[node], out));
        if let Some(u) = undo {
            u.push(Undo::Rev(node, old.0, old.1));
        }
        Ok(true)
    }

    /// Limits from `t`'s successors, its own no-later-than or pinned date, and its parent's
    /// limits, for a task of `dur` working minutes.
    fn successor_limits(&mut self, t: usize, dur: i64) -> Result<Limits, ScheduleError> {
        let mut lim = Limits::default();
        let g = &self.g;
        for &e in g.out_edges.get(t) {
            let edge = g.edges[e as usize];
            let succ = edge.succ as usize;
            let r = self.rev[succ];
            let (y, ys) = if edge.kind.to_start() { (r.y_s, r.ys_s) } else { (r.y_f, r.ys_f) };
            let table = &mut self.tables[self.specs[succ].cal as usize];
            let late = lag_backward(table, y, edge.lag, dur)?;
            let sched = lag_backward(table, ys, edge.lag, dur)?;
            if edge.kind.from_start() {
                lim.start(late, sched, edge.succ);
            } else {
                lim.finish(late, sched, edge.succ);
            }
        }
        let parent = g.parent[t];
        if parent != NONE {
            let up = self.close[parent as usize];
            lim.finish(up.finish, up.sched_finish, up.sched_finish_by);
            // A summary's start is its earliest child's: its start limits bind the children that
            // start with it.
            if self.fwd[t].es == self.fwd[parent as usize].es {
                lim.start(up.start, up.sched_start, up.sched_start_by);
            }
        }
        if self.project_finish < lim.sched_finish {
            lim.sched_finish = self.project_finish;
            lim.sched_finish_by = NONE;
        }
        let spec = self.specs[t];
        if spec.automatic && spec.pinned_start.is_none() {
            match spec.constraint {
                Constraint::StartNoLaterThan(d) => lim.start = lim.start.min(to_minute(d)),
                Constraint::FinishNoLaterThan(d) => lim.finish = lim.finish.min(to_minute(d)),
                Constraint::MustStartOn(_) if !g.summary[t] => lim.start = lim.start.min(self.fwd[t].es),
                Constraint::MustFinishOn(_) if !g.summary[t] => lim.finish = lim.finish.min(self.fwd[t].ef),
                _ => {}
            }
        }
        Ok(lim)
    }

    fn backward_close(&mut self, t: usize) -> Result<Limits, ScheduleError> {
        let dur = self.fwd[t].dur;
        self.successor_limits(t, dur)
    }

    fn backward_leaf(&mut self, t: usize) -> Result<(Rev, Out), ScheduleError> {
        let fv = self.fwd[t];
        let spec = self.specs[t];
        let d = fv.dur;
        let mut lim = self.successor_limits(t, d)?;
        lim.finish = lim.finish.min(self.late_origin);
        let table = &mut self.tables[spec.cal as usize];
        let (ls_o, lf_o, ls, lf) = latest(table, d, lim.start, lim.finish)?;
        let alap = spec.automatic
            && spec.pinned_start.is_none()
            && matches!(spec.constraint, Constraint::AsLateAsPossible);
        let (mut ss_o, mut sf_o, mut ss, mut sf) = (fv.es_o, fv.ef_o, fv.es, fv.ef);
        let (mut start_by, mut finish_by) = (fv.start_by, fv.finish_by);
        if alap {
            let (o, fo, s, f) = latest(table, d, lim.sched_start, lim.sched_finish)?;
            if o > fv.es_o {
                (ss_o, sf_o, ss, sf) = (o, fo, s, f);
                let by_start = lim.sched_start != NO_BOUND && {
                    let start_limit = if d == 0 {
                        table.ord(lim.sched_start)?
                    } else {
                        table.ord_after(lim.sched_start)? - 1
                    };
                    start_limit < table.ord(lim.sched_finish)? - d
                };
                start_by = if by_start {
                    Reason::new(Why::Alap(lim.sched_start_by), lim.sched_start)
                } else {
                    Reason::new(Why::Alap(lim.sched_finish_by), lim.sched_finish)
                };
                finish_by = Reason::new(Why::Duration, sf);
            }
        }
        let total = (ls_o - ss_o).min(lf_o - sf_o);
        let room = room(table, d, ss_o, sf_o, lim.sched_start, lim.sched_finish)?;
        let rev = Rev {
            y_s: if d > 0 { ls } else { table.start_of(ls_o)? },
            y_f: start_at(table, lf, lf_o)?,
            // A milestone sits at one instant of its working-time position (Friday 17:00 rather
            // than Monday 08:00); a start bound on it must not pass that instant.
            ys_s: if d == 0 { ss } else { start_at(table, ss, ss_o)? },
            ys_f: start_at(table, sf, sf_o)?,
        };
        let task = &self.plan.tasks[t];
        let p = i64::from(spec.percent);
        let out = Out {
            ss,
            sf,
            ls,
            lf,
            dur: d,
            total,
            free: room.min(total).max(0),
            start_by,
            finish_by,
            progress: [p * d, d, p, 1],
            points: task.points,
            effort: task.effort,
            baseline: task.baseline.map(|b| (to_minute(b.start), to_minute(b.finish))),
        };
        Ok((rev, out))
    }

    fn backward_open(&mut self, t: usize) -> Result<(Rev, Out), ScheduleError> {
        let mut rev = Rev { y_s: NO_BOUND, y_f: NO_BOUND, ys_s: NO_BOUND, ys_f: NO_BOUND };
        let mut out = Out {
            ss: Minute::MAX,
            sf: Minute::MIN,
            ls: Minute::MAX,
            lf: Minute::MIN,
            total: i64::MAX,
            ..Out::default()
        };
        let (mut first, mut last) = (0u32, 0u32);
        for &c in self.g.children.get(t) {
            let (r, o) = (self.rev[c as usize], &self.out[c as usize]);
            rev.y_s = rev.y_s.min(r.y_s);
            rev.y_f = rev.y_f.min(r.y_f);
            rev.ys_s = rev.ys_s.min(r.ys_s);
            rev.ys_f = rev.ys_f.min(r.ys_f);
            for k in 0..4 {
                out.progress[k] += o.progress[k];
            }
            if o.ss < out.ss {
                (out.ss, first) = (o.ss, c);
            }
            if o.sf > out.sf {
                (out.sf, last) = (o.sf, c);
            }
            out.ls = out.ls.min(o.ls);
            out.lf = out.lf.max(o.lf);
            out.total = out.total.min(o.total);
            if let Some(x) = o.points {
                out.points = Some(out.points.unwrap_or(0.0) + x);
            }
            if let Some(x) = o.effort {
                out.effort = Some(out.effort.unwrap_or(0) + x);
            }
            if let Some((bs, bf)) = o.baseline {
                out.baseline = Some(out.baseline.map_or((bs, bf), |(s, f)| (s.min(bs), f.max(bf))));
            }
        }
        if let Some(b) = self.plan.tasks[t].baseline {
            out.baseline = Some((to_minute(b.start), to_minute(b.finish)));
        }
        out.start_by = Reason::new(Why::Child(first), out.ss);
        out.finish_by = Reason::new(Why::Child(last), out.sf);
        let lim = self.close[t];
        let table = &mut self.tables[self.specs[t].cal as usize];
        let (ss_o, sf_o) = (table.ord(out.ss)?, table.ord(out.sf)?);
        out.dur = sf_o - ss_o;
        let room =
            room(table, out.dur, ss_o, sf_o, lim.sched_start, lim.sched_finish.min(self.project_finish))?;
        out.free = room.min(out.total).max(0);
        Ok((rev, out))
    }

    /// The public schedule of task `t`, from the passes' values.
    fn materialize(&mut self, t: usize) -> Result<TaskSchedule, ScheduleError> {
        let (spec, fv, o) = (self.specs[t], self.fwd[t], self.out[t]);
        let summary = self.g.summary[t];
        let table = &mut self.tables[spec.cal as usize];
        let variance = match o.baseline {
            Some((bs, bf)) => {
                (Some(table.ord(o.ss)? - table.ord(bs)?), Some(table.ord(o.sf)? - table.ord(bf)?))
            }
            None => (None, None),
        };
        let calendar = table.calendar();
        let percent = if summary {
            let [sum_pd, sum_d, sum_p, count] = o.progress;
            let p = if sum_d > 0 {
                (2 * sum_pd + sum_d) / (2 * sum_d)
            } else if count > 0 {
                (2 * sum_p + count) / (2 * count)
            } else {
                0
            };
            p.clamp(0, 100) as u8
        } else {
            spec.percent
        };
        let id = self.g.ids[t];
        let mut warnings = Vec::new();
        for (edge, earliest) in fv.broken.iter().flatten() {
            let e = self.g.edges[*edge as usize];
            warnings.push(Warning::DependencyNotMet {
                task: id,
                predecessor: self.g.ids[e.pred as usize],
                kind: e.kind,
                earliest: from_minute(*earliest),
            });
        }
        if fv.missed > 0 {
            warnings.push(Warning::ConstraintMissed {
                task: id,
                constraint: spec.constraint,
                by_minutes: fv.missed,
            });
        }
        Ok(TaskSchedule {
            id,
            summary,
            milestone: !summary && fv.dur == 0,
            start: from_minute(o.ss),
            finish: from_minute(o.sf),
            early_start: from_minute(fv.es),
            early_finish: from_minute(fv.ef),
            late_start: from_minute(o.ls),
            late_finish: from_minute(o.lf),
            duration: o.dur,
            total_slack: o.total,
            free_slack: o.free,
            critical: o.total <= 0,
            percent_complete: percent,
            points: o.points,
            effort: o.effort,
            baseline: o.baseline.map(|(s, f)| Baseline { start: from_minute(s), finish: from_minute(f) }),
            start_variance: variance.0,
            finish_variance: variance.1,
            explanation: Explanation {
                calendar,
                start: self.because(o.start_by, t),
                finish: self.because(o.finish_by, t),
            },
            warnings,
        })
    }

    fn finish_up(&mut self) {
        let (mut start, mut finish) = (Minute::MAX, self.project_start);
        for t in 0..self.g.n {
            if !self.g.summary[t] {
                start = start.min(self.out[t].ss);
                finish = finish.max(self.out[t].sf);
            }
        }
        self.schedule.start = from_minute(if start == Minute::MAX { self.project_start } else { start });
        self.schedule.finish = from_minute(finish);
        self.schedule.deadline_warning = match self.plan.deadline {
            Some(d) if self.project_finish > to_minute(d) => {
                Some(Warning::DeadlineMissed { deadline: d, finish: from_minute(self.project_finish) })
            }
            _ => None,
        };
        self.schedule.critical_path = self.critical_path();
    }

    /// From the leaf that finishes last, follow what set each start back to the beginning.
    fn critical_path(&self) -> Vec<ItemId> {
        let g = &self.g;
        let mut last: Option<usize> = None;
        for t in 0..g.n {
            if !g.summary[t] && last.is_none_or(|l| self.fwd[t].ef > self.fwd[l].ef) {
                last = Some(t);
            }
        }
        let mut path = Vec::new();
        let mut cur = last;
        while let Some(t) = cur {
            if path.len() > g.n {
                break;
            }
            path.push(g.ids[t]);
            cur = match self.fwd[t].start_by.why {
                Why::Edge { edge, .. } => {
                    let e = g.edges[edge as usize];
                    let mut p = e.pred as usize;
                    let mut depth = 0;
                    while g.summary[p] && depth <= g.n {
                        let by =
                            if e.kind.from_start() { self.fwd[p].start_by } else { self.fwd[p].finish_by };
                        let Why::Child(c) = by.why else { break };
                        p = c as usize;
                        depth += 1;
                    }
                    (!g.summary[p]).then_some(p)
                }
                _ => None,
            };
        }
        path.reverse();
        path
    }
}

/// Checks one task's own fields.
pub(crate) fn validate_task(i: usize, task: &Task, summary: bool) -> Result<(), Invalid> {
    let field = |f: &str| format!("tasks[{i}].{f}");
    let named = |reason: String| format!("{reason} (task \"{}\")", task.name);
    if !(0..=MAX_SPAN).contains(&task.duration) {
        return Err(Invalid::new(
            field("duration"),
            named(format!("must be 0 to {MAX_SPAN} working minutes")),
        ));
    }
    if task.effort.is_some_and(|e| !(0..=MAX_SPAN * 100).contains(&e)) {
        return Err(Invalid::new(field("effort"), named("must not be negative".into())));
    }
    if task.percent_complete > 100 {
        return Err(Invalid::new(field("percent_complete"), named("must be 0 to 100".into())));
    }
    if task.points.is_some_and(|p| !p.is_finite() || p < 0.0) {
        return Err(Invalid::new(field("points"), named("must be a number of at least 0".into())));
    }
    let dates = [
        ("start", task.start),
        ("finish", task.finish),
        ("actual_start", task.actual_start),
        ("actual_finish", task.actual_finish),
        ("constraint", task.constraint.date()),
        ("baseline.start", task.baseline.map(|b| b.start)),
        ("baseline.finish", task.baseline.map(|b| b.finish)),
    ];
    for (name, date) in dates {
        if date.is_some_and(|d| !time::in_range(d)) {
            return Err(Invalid::new(field(name), named("must lie between 1900 and 2199".into())));
        }
    }
    if let Some(b) = task.baseline
        && b.finish < b.start
    {
        return Err(Invalid::new(field("baseline.finish"), named("is before the baseline start".into())));
    }
    match (task.actual_start, task.actual_finish) {
        (None, Some(_)) => {
            return Err(Invalid::new(field("actual_finish"), named("needs an actual start".into())));
        }
        (Some(s), Some(f)) if f < s => {
            return Err(Invalid::new(field("actual_finish"), named("is before the actual start".into())));
        }
        _ => {}
    }
    if summary {
        if matches!(
            task.constraint,
            Constraint::AsLateAsPossible | Constraint::MustStartOn(_) | Constraint::MustFinishOn(_)
        ) {
            return Err(Invalid::new(
                field("constraint"),
                named(format!(
                    "{} does not apply to a summary task, whose dates come from its subtasks",
                    task.constraint.code()
                )),
            ));
        }
        return Ok(());
    }
    if task.mode == Mode::Manual && task.actual_start.is_none() {
        let Some(start) = task.start else {
            return Err(Invalid::new(
                field("start"),
                named("a manually scheduled task needs a start".into()),
            ));
        };
        if task.finish.is_some_and(|f| f < start) {
            return Err(Invalid::new(field("finish"), named("is before the start".into())));
        }
    }
    Ok(())
}

/// Checks the plan and builds its graph, ordered, or says what is wrong.
fn compile(plan: &Plan) -> Result<Graph, ScheduleError> {
    if !time::in_range(plan.start) {
        return Err(Invalid::new("start", "must lie between 1900 and 2199").into());
    }
    if plan.deadline.is_some_and(|d| !time::in_range(d)) {
        return Err(Invalid::new("deadline", "must lie between 1900 and 2199").into());
    }
    let n = plan.tasks.len();
    if n >= (NONE / 2) as usize {
        return Err(Invalid::new("tasks", "too many tasks").into());
    }
    let mut index: HashMap<ItemId, u32, IdBuild> = HashMap::with_capacity_and_hasher(n, IdBuild::default());
    for (i, t) in plan.tasks.iter().enumerate() {
        if let Some(j) = index.insert(t.id, i as u32) {
            return Err(Invalid::new(
                format!("tasks[{i}].id"),
                format!("\"{}\" has the same id as tasks[{j}] (\"{}\")", t.name, plan.tasks[j as usize].name),
            )
            .into());
        }
    }
    let mut parent = vec![NONE; n];
    let mut summary = vec![false; n];
    for (i, t) in plan.tasks.iter().enumerate() {
        if let Some(p) = t.parent {
            let Some(&pi) = index.get(&p) else {
                return Err(Invalid::new(
                    format!("tasks[{i}].parent"),
                    format!("\"{}\" names a parent {p} that is not in the plan", t.name),
                )
                .into());
            };
            parent[i] = pi;
            summary[pi as usize] = true;
        }
    }
    for i in 0..n {
        let (mut cur, mut steps) = (parent[i], 0);
        while cur != NONE {
            steps += 1;
            if cur as usize == i || steps > n {
                let mut names = vec![plan.tasks[i].name.clone()];
                let mut c = parent[i];
                while c as usize != i && names.len() <= n {
                    names.push(plan.tasks[c as usize].name.clone());
                    c = parent[c as usize];
                }
                names.push(plan.tasks[i].name.clone());
                return Err(Invalid::new(
                    format!("tasks[{i}].parent"),
                    format!("parents loop: {}", names.join(" → ")),
                )
                .into());
            }
            cur = parent[cur as usize];
        }
    }
    for (i, t) in plan.tasks.iter().enumerate() {
        validate_task(i, t, summary[i])?;
    }
    let is_ancestor = |a: u32, mut b: u32| {
        while b != NONE {
            b = parent[b as usize];
            if b == a {
                return true;
            }
        }
        false
    };
    let mut edges = Vec::with_capacity(plan.dependencies.len());
    let mut seen: HashSet<(u32, u32), IdBuild> =
        HashSet::with_capacity_and_hasher(plan.dependencies.len(), IdBuild::default());
    for (k, d) in plan.dependencies.iter().enumerate() {
        let field = |f: &str| format!("dependencies[{k}].{f}");
        let look = |id: ItemId, f: &str| {
            index.get(&id).copied().ok_or_else(|| Invalid::new(field(f), format!("no task {id} in the plan")))
        };
        let (p, s) = (look(d.predecessor, "predecessor")?, look(d.successor, "successor")?);
        let (pn, sn) = (&plan.tasks[p as usize].name, &plan.tasks[s as usize].name);
        if p == s {
            return Err(Invalid::new(field("successor"), format!("\"{pn}\" cannot depend on itself")).into());
        }
        if !seen.insert((p, s)) {
            return Err(Invalid::new(
                field("successor"),
                format!("\"{sn}\" already depends on \"{pn}\"; one dependency per pair of tasks"),
            )
            .into());
        }
        if is_ancestor(p, s) || is_ancestor(s, p) {
            let (sum, sub) = if is_ancestor(p, s) { (pn, sn) } else { (sn, pn) };
            return Err(Invalid::new(
                field("successor"),
                format!("links summary task \"{sum}\" with its own subtask \"{sub}\""),
            )
            .into());
        }
        let bad_lag = match d.lag {
            Lag::Working(l) | Lag::Elapsed(l) => !(-MAX_SPAN..=MAX_SPAN).contains(&l),
            Lag::Percent(p) => !(-1000..=1000).contains(&p),
        };
        if bad_lag {
            return Err(Invalid::new(
                field("lag"),
                format!("{} between \"{pn}\" and \"{sn}\" is out of range", d.lag),
            )
            .into());
        }
        edges.push(Edge { pred: p, succ: s, kind: d.kind, lag: d.lag });
    }
    let children = Rows::build(
        n,
        (0..n as u32).filter(|&i| parent[i as usize] != NONE).map(|i| (parent[i as usize], i)),
    );
    let in_edges = Rows::build(n, edges.iter().enumerate().map(|(e, x)| (x.succ, e as u32)));
    let out_edges = Rows::build(n, edges.iter().enumerate().map(|(e, x)| (x.pred, e as u32)));
    let mut g = Graph {
        n,
        ids: plan.tasks.iter().map(|t| t.id).collect(),
        index,
        parent,
        summary,
        children,
        in_edges,
        out_edges,
        edges,
        order: Vec::new(),
        rank: vec![NONE; 2 * n],
    };
    order(&mut g, plan)?;
    Ok(g)
}

/// Kahn's algorithm over the nodes; a leftover node lies on or behind a cycle, which is then
/// traced backwards and reported by task.
fn order(g: &mut Graph, plan: &Plan) -> Result<(), ScheduleError> {
    let n = g.n;
    let exists = |node: usize, g: &Graph| node < n || g.summary[node - n];
    let mut indegree = vec![0u32; 2 * n];
    for node in 0..2 * n {
        if exists(node, g) {
            g.forward_successors(node, |s| indegree[s] += 1);
        }
    }
    let mut queue: Vec<u32> =
        (0..2 * n).filter(|&v| exists(v, g) && indegree[v] == 0).map(|v| v as u32).collect();
    let mut head = 0;
    while head < queue.len() {
        let node = queue[head] as usize;
        head += 1;
        g.forward_successors(node, |s| {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                queue.push(s as u32);
            }
        });
    }
    let total = n + g.summary.iter().filter(|&&s| s).count();
    if queue.len() < total {
        let Some(start) = (0..2 * n).find(|&v| exists(v, g) && indegree[v] > 0) else {
            return Err(ScheduleError::OutOfRange("dependency graph could not be ordered".into()));
        };
        // Every leftover node has a leftover predecessor: walk back until a node repeats.
        let mut path = vec![start];
        let mut at: HashMap<usize, usize> = HashMap::from([(start, 0)]);
        loop {
            let cur = path[path.len() - 1];
            let mut next = None;
            g.forward_predecessors(cur, |p| {
                if next.is_none() && indegree[p] > 0 {
                    next = Some(p);
                }
            });
            let Some(p) = next else { break };
            if let Some(&i) = at.get(&p) {
                let mut cycle: Vec<usize> = path[i..].iter().rev().map(|&v| v % n).collect();
                cycle.dedup();
                if cycle.len() > 1 && cycle[0] == cycle[cycle.len() - 1] {
                    cycle.pop();
                }
                let first = cycle[0];
                cycle.push(first);
                let tasks = cycle.into_iter().map(|t| TaskRef::from(&plan.tasks[t])).collect();
                return Err(ScheduleError::Cycle { tasks });
            }
            at.insert(p, path.len());
            path.push(p);
        }
        return Err(ScheduleError::OutOfRange("dependency graph could not be ordered".into()));
    }
    for (i, &node) in queue.iter().enumerate() {
        g.rank[node as usize] = i as u32;
    }
    g.order = queue;
    Ok(())
}
