//! Planning: a project's schedule (dates, slack, critical path, explanations, warnings) and its
//! Gantt chart as SVG, and the working calendars of the workspace and of people.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use tandem_core::commands::{CalendarBody, SetCalendar};
use tandem_core::planning::{ProjectSchedule, ScheduleRequest};
use tandem_core::schedule::gantt::{GanttOptions, render};
use tandem_core::schedule::{Baseline, CalendarRef, Plan, Schedule, Warning};
use tandem_core::{CalendarOwner, ItemId, ProjectId, UserId, WorkCalendar};

use super::Param;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;

/// `2026-03-02T08:00`, `2026-03-02T08:00:00` or `2026-03-02` (midnight).
fn wall_clock(s: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
}

fn request(q: &QueryPairs, extra: &[&str]) -> ApiResult<ScheduleRequest> {
    let mut known = vec!["start", "deadline"];
    known.extend_from_slice(extra);
    q.only(&known)?;
    let expected = "a date like 2026-03-02 or 2026-03-02T08:00";
    let start = q.parse("start", wall_clock, expected)?;
    let deadline = q.parse("deadline", wall_clock, expected)?;
    if let (Some(s), Some(d)) = (start, deadline)
        && d < s
    {
        return Err(ApiError::invalid("deadline", "is before start"));
    }
    // Workspaces keep wall-clock time; without a workspace time zone, that is UTC. A project
    // whose tasks name no date starts at the beginning of today.
    let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    Ok(ScheduleRequest { start, deadline, today })
}

#[derive(Debug, Serialize)]
pub struct TaskOut {
    id: ItemId,
    name: String,
    parent: Option<ItemId>,
    summary: bool,
    milestone: bool,
    start: NaiveDateTime,
    finish: NaiveDateTime,
    early_start: NaiveDateTime,
    early_finish: NaiveDateTime,
    late_start: NaiveDateTime,
    late_finish: NaiveDateTime,
    /// Working minutes.
    duration: i64,
    total_slack: i64,
    free_slack: i64,
    critical: bool,
    percent_complete: u8,
    points: Option<f64>,
    work: Option<i64>,
    baseline: Option<Baseline>,
    start_variance: Option<i64>,
    finish_variance: Option<i64>,
    actual_start: Option<NaiveDateTime>,
    actual_finish: Option<NaiveDateTime>,
    calendar: CalendarRef,
    /// Why the dates are where they are, as a sentence.
    explanation: String,
    warnings: Vec<WarningOut>,
}

#[derive(Debug, Serialize)]
pub struct WarningOut {
    kind: &'static str,
    task: Option<ItemId>,
    message: String,
}

#[derive(Debug, Serialize)]
pub struct DependencyOut {
    predecessor: ItemId,
    successor: ItemId,
    #[serde(rename = "type")]
    kind: &'static str,
    lag: tandem_core::schedule::Lag,
}

#[derive(Debug, Serialize)]
pub struct ScheduleOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<ProjectId>,
    start: NaiveDateTime,
    finish: NaiveDateTime,
    deadline: Option<NaiveDateTime>,
    critical_path: Vec<ItemId>,
    tasks: Vec<TaskOut>,
    dependencies: Vec<DependencyOut>,
    warnings: Vec<WarningOut>,
}

fn warning(names: &HashMap<ItemId, &str>, w: &Warning) -> WarningOut {
    let name = |id: &ItemId| names.get(id).map_or_else(|| id.to_string(), |n| format!("\"{n}\""));
    match w {
        Warning::DependencyNotMet { task, predecessor, kind, earliest } => WarningOut {
            kind: "dependency_not_met",
            task: Some(*task),
            message: format!(
                "{} is scheduled earlier than its {} dependency on {} allows (earliest {earliest})",
                name(task),
                kind.code(),
                name(predecessor)
            ),
        },
        Warning::ConstraintMissed { task, constraint, by_minutes } => WarningOut {
            kind: "constraint_missed",
            task: Some(*task),
            message: format!(
                "{} misses its constraint \"{constraint}\" by {by_minutes} working minutes: its dependencies push it later",
                name(task)
            ),
        },
        Warning::DeadlineMissed { deadline, finish } => WarningOut {
            kind: "deadline_missed",
            task: None,
            message: format!("the project finishes {finish}, after its deadline {deadline}"),
        },
    }
}

fn schedule_out(p: &ProjectSchedule) -> ScheduleOut {
    schedule_json(Some(p.project.id), &p.plan, &p.schedule)
}

/// A schedule as the API returns it.
pub fn schedule_json(project: Option<ProjectId>, plan: &Plan, schedule: &Schedule) -> ScheduleOut {
    let names: HashMap<ItemId, &str> = plan.tasks.iter().map(|t| (t.id, t.name.as_str())).collect();
    let tasks = schedule
        .tasks()
        .iter()
        .map(|t| {
            let planned = plan.task(t.id);
            TaskOut {
                id: t.id,
                name: names.get(&t.id).map(|n| n.to_string()).unwrap_or_default(),
                parent: planned.and_then(|x| x.parent),
                summary: t.summary,
                milestone: t.milestone,
                start: t.start,
                finish: t.finish,
                early_start: t.early_start,
                early_finish: t.early_finish,
                late_start: t.late_start,
                late_finish: t.late_finish,
                duration: t.duration,
                total_slack: t.total_slack,
                free_slack: t.free_slack,
                critical: t.critical,
                percent_complete: t.percent_complete,
                points: t.points,
                work: t.effort,
                baseline: t.baseline,
                start_variance: t.start_variance,
                finish_variance: t.finish_variance,
                actual_start: planned.and_then(|x| x.actual_start),
                actual_finish: planned.and_then(|x| x.actual_finish),
                calendar: t.explanation.calendar,
                explanation: schedule.describe(plan, t.id).unwrap_or_default(),
                warnings: t.warnings.iter().map(|w| warning(&names, w)).collect(),
            }
        })
        .collect();
    ScheduleOut {
        project,
        start: schedule.start,
        finish: schedule.finish,
        deadline: plan.deadline,
        critical_path: schedule.critical_path().to_vec(),
        tasks,
        dependencies: plan
            .dependencies
            .iter()
            .map(|d| DependencyOut {
                predecessor: d.predecessor,
                successor: d.successor,
                kind: d.kind.code(),
                lag: d.lag,
            })
            .collect(),
        warnings: schedule.warnings().map(|w| warning(&names, w)).collect(),
    }
}

/// `GET /projects/{id}/schedule?start=&deadline=`
pub async fn project_schedule(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Json<ScheduleOut>> {
    let request = request(&q, &[])?;
    let scheduled = s.desk().project_schedule(&actor, id.id("project")?, request).await?;
    Ok(Json(schedule_out(&scheduled)))
}

/// `GET /projects/{id}/gantt.svg?start=&deadline=&baseline=&dependencies=&day_width=`
pub async fn project_gantt(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Response> {
    let request = request(&q, &["baseline", "dependencies", "day_width"])?;
    let flag = |v: &str| match v {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    };
    let mut options = GanttOptions::default();
    if let Some(b) = q.parse("baseline", flag, "true or false")? {
        options.show_baseline = b;
    }
    if let Some(d) = q.parse("dependencies", flag, "true or false")? {
        options.show_dependencies = d;
    }
    if let Some(w) = q.parse(
        "day_width",
        |v| v.parse::<f64>().ok().filter(|w| (2.0..=200.0).contains(w)),
        "a width from 2 to 200 pixels",
    )? {
        options.day_width = w;
    }
    let p = s.desk().project_schedule(&actor, id.id("project")?, request).await?;
    let svg = render(&p.plan, &p.schedule, &p.calendars, &options);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}

/// `GET /calendars`: the workspace's and every person's stored calendar.
pub async fn list_calendars(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<Vec<WorkCalendar>>> {
    Ok(Json(s.desk().calendars(&actor).await?))
}

async fn get_calendar(
    s: &AppState,
    actor: &tandem_core::Actor,
    owner: CalendarOwner,
) -> ApiResult<Json<WorkCalendar>> {
    match s.desk().calendar(actor, owner).await? {
        Some(c) => Ok(Json(c)),
        None => Err(ApiError::not_found(match owner {
            CalendarOwner::Workspace => {
                "workspace calendar (none stored: the standard week applies)".to_string()
            }
            CalendarOwner::User(u) => {
                format!("calendar of user {u} (none stored: the workspace calendar applies)")
            }
        })),
    }
}

/// `GET /calendars/workspace`
pub async fn get_workspace_calendar(
    State(s): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<Json<WorkCalendar>> {
    get_calendar(&s, &actor, CalendarOwner::Workspace).await
}

/// `PUT /calendars/workspace`
pub async fn put_workspace_calendar(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody<CalendarBody>,
) -> ApiResult<Json<WorkCalendar>> {
    let cmd = SetCalendar { owner: CalendarOwner::Workspace, body };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

/// `GET /users/{id}/calendar`
pub async fn get_user_calendar(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<WorkCalendar>> {
    let user: UserId = id.id("user")?;
    get_calendar(&s, &actor, CalendarOwner::User(user)).await
}

/// `PUT /users/{id}/calendar`
pub async fn put_user_calendar(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(body): JsonBody<CalendarBody>,
) -> ApiResult<Json<WorkCalendar>> {
    let cmd = SetCalendar { owner: CalendarOwner::User(id.id("user")?), body };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_dates_parse() {
        let d = |s| wall_clock(s).map(|t| t.to_string());
        assert_eq!(d("2026-03-02").as_deref(), Some("2026-03-02 00:00:00"));
        assert_eq!(d("2026-03-02T08:30").as_deref(), Some("2026-03-02 08:30:00"));
        assert_eq!(d("2026-03-02T08:30:15").as_deref(), Some("2026-03-02 08:30:15"));
        assert_eq!(d("next monday"), None);
        assert_eq!(d("2026-02-30"), None);
    }
}
