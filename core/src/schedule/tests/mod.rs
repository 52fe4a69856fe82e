//! Tests of the scheduler: tables of plans and the dates they must give, errors, explanations,
//! property tests of the invariants, and Gantt snapshots.

mod engine;
mod gantt;
mod props;

use chrono::NaiveDateTime;

use super::*;
use crate::ids::{ItemId, UserId};

/// A working day of the standard calendar, in minutes.
pub(super) const D: i64 = 480;
pub(super) const H: i64 = 60;

pub(super) fn id(n: u128) -> ItemId {
    ItemId(uuid::Uuid::from_u128(n))
}

pub(super) fn user(n: u128) -> UserId {
    UserId(uuid::Uuid::from_u128(n))
}

/// `"2024-03-04 08:00"`.
pub(super) fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

pub(super) fn fmt(t: NaiveDateTime) -> String {
    t.format("%a %m-%d %H:%M").to_string()
}

/// A plan starting Monday 2024-03-04 08:00 whose tasks are numbered from 1 in the order given.
pub(super) fn plan(tasks: Vec<Task>, dependencies: Vec<Dependency>) -> Plan {
    Plan { start: at("2024-03-04 08:00"), deadline: None, tasks, dependencies }
}

pub(super) fn task(n: u128, name: &str, duration: i64) -> Task {
    Task::new(id(n), name, duration)
}

pub(super) fn dep(from: u128, to: u128, kind: DependencyKind, lag: Lag) -> Dependency {
    Dependency::new(id(from), id(to), kind, lag)
}

pub(super) fn fs(from: u128, to: u128) -> Dependency {
    Dependency::finish_to_start(id(from), id(to))
}
