//! Planning: a task's planning fields through `UpdateItem`, dependency timing through
//! `LinkItems`, calendars through `SetCalendar`, and `build_plan` from stored items.

use chrono::{NaiveDate, NaiveDateTime, Weekday};
use serde_json::json;

use super::super::items::References;
use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::desk::ItemRef;
use crate::item::{Assignee, Item, ItemKind, ItemLink, ItemType, LinkKind};
use crate::people::User;
use crate::planning::{CalendarOwner, DependencyTiming, PlanPatch, TaskPlan, WorkCalendar, build_plan};
use crate::schedule::{
    Constraint, DependencyKind, Exception, Lag, Mode, ScheduleError, WeekPattern, WorkingHours, schedule,
};

fn at(d: u32, h: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 3, d).and_then(|d| d.and_hms_opt(h, 0, 0)).unwrap()
}

fn plan_patch(json: serde_json::Value) -> ItemPatch {
    ItemPatch { plan: Some(serde_json::from_value::<PlanPatch>(json).unwrap()), ..Default::default() }
}

fn plan_state(w: &World, c: &UpdateItem) -> (Item, ItemType, References) {
    let item = w.item(c.item);
    let mut refs = References::default();
    if let Some(Some(u)) = c.patch.plan.as_ref().and_then(|p| p.resource)
        && let Some(user) = w.get::<User>(u)
    {
        refs.users.push(user);
    }
    let t = w.item_type_of(&item);
    (item, t, refs)
}

#[test]
fn planning_fields_change_through_item_updates() {
    let w = World::new();
    let update = |item: &Item, patch| UpdateItem { item: ItemRef::Id(item.id), patch };
    let planned = || ok::<Item>(&["item:plan@2"], &["item.updated@plan"]);
    table(
        &w,
        plan_state,
        vec![
            (
                Agent,
                update(
                    &w.plan,
                    plan_patch(json!({
                        "duration": 960, "work": 1200, "points": 5, "percent_complete": 25,
                        "constraint": {"type": "start_no_earlier_than", "date": "2026-03-02T08:00:00"},
                        "resource": w.agent.id,
                    })),
                ),
                planned().then(|w, i| {
                    assert_eq!(i.plan.duration, Some(960));
                    assert_eq!(i.plan.work, Some(1200));
                    assert_eq!(i.plan.points, Some(5.0));
                    assert_eq!(i.plan.percent_complete, 25);
                    assert_eq!(i.plan.constraint, Constraint::StartNoEarlierThan(at(2, 8)));
                    assert_eq!(i.plan.resource, Some(w.agent.id));
                }),
            ),
            (
                Collaborator,
                update(&w.plan, plan_patch(json!({"mode": "manual", "start": "2026-03-02T08:00:00"}))),
                planned()
                    .then(|_, i| assert_eq!((i.plan.mode, i.plan.start), (Mode::Manual, Some(at(2, 8))))),
            ),
            // Clearing what is not set changes no field: the item is saved, no event is emitted.
            (Agent, update(&w.plan, plan_patch(json!({"points": null}))), ok(&["item:plan@2"], &[])),
            (
                Agent,
                update(&w.ticket_a, plan_patch(json!({"duration": 60}))),
                invalid("plan", "only tasks are planned"),
            ),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"duration": -60}))),
                invalid("plan.duration", "negative"),
            ),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"duration": 100_000_000}))),
                invalid("plan.duration", "more than ten years"),
            ),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"percent_complete": 120}))),
                invalid("plan.percent_complete", "0–100"),
            ),
            (Agent, update(&w.plan, plan_patch(json!({"points": -2}))), invalid("plan.points", "between")),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"mode": "manual"}))),
                invalid("plan.start", "manually scheduled"),
            ),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"actual_finish": "2026-03-02T08:00:00"}))),
                invalid("plan.actual_finish", "needs plan.actual_start"),
            ),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"resource": w.disabled.id}))),
                invalid("plan.resource", "disabled"),
            ),
            (
                Agent,
                update(&w.plan, plan_patch(json!({"resource": uuid::Uuid::from_u128(0xDEAD)}))),
                invalid("plan.resource", "no user"),
            ),
            (CustomerA, update(&w.plan, plan_patch(json!({"duration": 60}))), not_found("item")),
            (AgentRead, update(&w.plan, plan_patch(json!({"duration": 60}))), forbidden("scope")),
        ],
    );
}

fn link_state(w: &World, c: &LinkItems) -> (Item, Item, Vec<ItemLink>) {
    let (from, to) = (w.item(c.from), w.item(c.to));
    let timed = ItemLink {
        id: crate::ids::LinkId(uuid::Uuid::from_u128(0xF00D)),
        from: w.plan.id,
        to: w.subtask.id,
        kind: LinkKind::Blocks,
        dependency: Some(DependencyTiming { kind: DependencyKind::StartToStart, lag: Lag::Working(60) }),
        ..w.link.clone()
    };
    let links =
        [w.link.clone(), timed].into_iter().filter(|l| l.from == from.id || l.to == from.id).collect();
    (from, to, links)
}

#[test]
fn dependencies_are_blocks_links_with_timing() {
    let w = World::new();
    let link = |from: &Item, to: &Item, kind, dependency| LinkItems {
        from: ItemRef::Id(from.id),
        to: ItemRef::Id(to.id),
        kind,
        dependency,
    };
    let ss = |lag| Some(DependencyTiming { kind: DependencyKind::StartToStart, lag: Lag::Working(lag) });
    let ff = Some(DependencyTiming { kind: DependencyKind::FinishToFinish, lag: Lag::Elapsed(-120) });
    table(
        &w,
        link_state,
        vec![
            (
                Agent,
                link(&w.subtask, &w.ticket_a, LinkKind::Blocks, ff),
                ok(&["+link:new1"], &["item.linked@subtask", "item.linked@ticket_a"]).then(|_, l| {
                    assert_eq!(l.dependency.map(|d| d.kind), Some(DependencyKind::FinishToFinish))
                }),
            ),
            // The same timing again changes nothing; other timing updates the link.
            (Agent, link(&w.plan, &w.subtask, LinkKind::Blocks, ss(60)), unchanged()),
            (Agent, link(&w.plan, &w.subtask, LinkKind::Blocks, None), unchanged()),
            (
                Agent,
                link(&w.plan, &w.subtask, LinkKind::Blocks, ss(120)),
                ok(&["link:new61453@1"], &["record.updated@plan"]).then(|_, l| {
                    assert_eq!((l.dependency.map(|d| d.lag), l.version), (Some(Lag::Working(120)), 2))
                }),
            ),
            (
                Agent,
                link(&w.plan, &w.subtask, LinkKind::Relates, ss(0)),
                invalid("dependency", "only blocks links"),
            ),
            (
                Agent,
                link(&w.plan, &w.subtask, LinkKind::Blocks, ss(100_000_000)),
                invalid("dependency.lag", "out of range"),
            ),
        ],
    );
}

fn calendar_state(w: &World, c: &SetCalendar) -> (Option<WorkCalendar>, Option<User>) {
    let existing = match c.owner {
        CalendarOwner::Workspace if c.body.version.is_some() => Some(WorkCalendar {
            id: WorkCalendar::id_for(w.ws.id, CalendarOwner::Workspace),
            workspace_id: w.ws.id,
            owner: CalendarOwner::Workspace,
            week: Some(WeekPattern::standard()),
            exceptions: vec![],
            updated_at: t0(),
            version: 1,
        }),
        _ => None,
    };
    let user = match c.owner {
        CalendarOwner::User(u) => w.get::<User>(u),
        CalendarOwner::Workspace => None,
    };
    (existing, user)
}

#[test]
fn calendars_are_set_by_managers_and_their_owners() {
    let w = World::new();
    let week = |days: &[Weekday]| Some(WeekPattern::on(days, &WorkingHours::parse("09:00-17:00").unwrap()));
    let four_days = week(&[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu]);
    let set = |owner, week: Option<WeekPattern>, exceptions: Vec<Exception>, version| SetCalendar {
        owner,
        body: CalendarBody { week, exceptions, version },
    };
    let ws = CalendarOwner::Workspace;
    let agent = CalendarOwner::User(w.agent.id);
    let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    let holidays = vec![Exception::holiday("Christmas", day(25)), Exception::holiday("Boxing day", day(26))];
    let overlapping =
        vec![Exception::days_off("Break", day(20), day(31)), Exception::holiday("Christmas", day(25))];
    let backwards = vec![Exception::days_off("Break", day(31), day(20))];
    // The ids of the stored calendars are the workspace's and the agent's: names from the fixture.
    let created = |name: &'static str| match name {
        "ws" => ok::<WorkCalendar>(&["+calendar:ws"], &["record.created"]),
        _ => ok::<WorkCalendar>(&["+calendar:agent"], &["record.created"]),
    };
    table(
        &w,
        calendar_state,
        vec![
            (Manager, set(ws, four_days.clone(), holidays.clone(), None), created("ws")),
            (
                Admin,
                set(ws, four_days.clone(), vec![], Some(1)),
                ok(&["calendar:ws@1"], &["record.updated"]).then(|_, c| assert_eq!(c.version, 2)),
            ),
            (Admin, set(ws, four_days.clone(), vec![], Some(3)), conflict("version 1, not 3")),
            (Agent, set(ws, four_days.clone(), vec![], None), forbidden("agents cannot")),
            (Manager, set(ws, None, vec![], None), invalid("week", "needs a week pattern")),
            (Manager, set(ws, week(&[]), vec![], None), invalid("week", "no working hours")),
            (Manager, set(ws, four_days.clone(), overlapping, None), invalid("exceptions[1]", "overlaps")),
            (
                Manager,
                set(ws, four_days.clone(), backwards, None),
                invalid("exceptions[0]", "before it starts"),
            ),
            // People keep their own calendar; managers keep anyone's.
            (Agent, set(agent, None, holidays.clone(), None), created("agent")),
            (Manager, set(agent, four_days.clone(), vec![], None), created("agent")),
            (Collaborator, set(agent, None, vec![], None), forbidden("collaborators cannot")),
            (
                CustomerA,
                set(CalendarOwner::User(w.customer_a.id), None, vec![], None),
                forbidden("customers"),
            ),
            (AgentRead, set(agent, None, vec![], None), forbidden("scope")),
        ],
    );
}

fn task(w: &World, number: i64, title: &str, plan: TaskPlan) -> Item {
    Item {
        id: crate::ids::ItemId(uuid::Uuid::from_u128(0xA000 + number as u128)),
        number,
        title: title.into(),
        kind: ItemKind::Task,
        item_type: w.task.id,
        parent: None,
        assignees: vec![],
        plan,
        ..w.plan.clone()
    }
}

fn blocks(from: &Item, to: &Item, dependency: Option<DependencyTiming>) -> ItemLink {
    ItemLink {
        id: crate::ids::LinkId(uuid::Uuid::from_u128(from.id.0.as_u128() * 0x1_0000 + to.id.0.as_u128())),
        workspace_id: from.workspace_id,
        from: from.id,
        to: to.id,
        kind: LinkKind::Blocks,
        dependency,
        created_at: t0(),
        version: 1,
    }
}

#[test]
fn stored_items_become_a_plan() {
    let w = World::new();
    let days = |n: i64| TaskPlan { duration: Some(n * 480), ..Default::default() };
    let design = task(&w, 10, "Design", days(2));
    let build = Item { assignees: vec![Assignee::User(w.agent.id)], ..task(&w, 11, "Build", days(3)) };
    let epic = task(&w, 12, "Epic", TaskPlan::default());
    let under = Item { parent: Some(epic.id), ..task(&w, 13, "Under the epic", days(1)) };
    let ticket = Item { kind: ItemKind::Ticket, ..task(&w, 14, "A ticket", days(1)) };
    let pinned = task(
        &w,
        15,
        "Pinned",
        TaskPlan {
            constraint: Constraint::StartNoEarlierThan(at(2, 8)),
            duration: Some(60),
            ..Default::default()
        },
    );
    let items =
        vec![build.clone(), design.clone(), epic.clone(), under.clone(), ticket.clone(), pinned.clone()];
    let links = vec![
        blocks(&design, &build, None),
        // Read from both ends: kept once.
        blocks(&design, &build, None),
        blocks(
            &build,
            &under,
            Some(DependencyTiming { kind: DependencyKind::StartToStart, lag: Lag::Working(60) }),
        ),
        // A link to a ticket, and a relates link, do not schedule anything.
        blocks(&build, &ticket, None),
        ItemLink { kind: LinkKind::Relates, ..blocks(&pinned, &design, None) },
    ];
    let plan = build_plan(&items, &links, None, None, at(20, 0));
    let names: Vec<&str> = plan.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["#10 Design", "#11 Build", "#12 Epic", "#13 Under the epic", "#15 Pinned"]);
    assert_eq!(plan.start, at(2, 8), "the earliest date a task names");
    assert_eq!(plan.task(under.id).and_then(|t| t.parent), Some(epic.id));
    assert_eq!(plan.task(build.id).and_then(|t| t.resource), Some(w.agent.id));
    assert_eq!(plan.dependencies.len(), 2);
    assert_eq!(plan.dependencies[1].kind, DependencyKind::StartToStart);

    let s = schedule(&plan, &Default::default()).unwrap();
    // Mon 2 March: Design two days, Build three days after it, the subtask an hour after Build starts.
    assert_eq!(s.task(design.id).map(|t| (t.start, t.finish)), Some((at(2, 8), at(3, 17))));
    assert_eq!(s.task(build.id).map(|t| (t.start, t.finish)), Some((at(4, 8), at(6, 17))));
    assert_eq!(s.task(under.id).map(|t| t.start), Some(at(4, 9)));
    assert_eq!(s.critical_path(), [design.id, build.id]);

    let nothing_named = build_plan(std::slice::from_ref(&design), &[], None, None, at(20, 0));
    assert_eq!(nothing_named.start, at(20, 0), "today when no task names a date");
    let given = build_plan(std::slice::from_ref(&design), &[], Some(at(9, 8)), Some(at(31, 17)), at(20, 0));
    assert_eq!((given.start, given.deadline), (at(9, 8), Some(at(31, 17))));

    // A loop through stored links is the scheduler's cycle error, naming the tasks.
    let looped = vec![blocks(&design, &build, None), blocks(&build, &design, None)];
    let e = schedule(&build_plan(&items, &looped, None, None, at(20, 0)), &Default::default()).unwrap_err();
    assert!(matches!(e, ScheduleError::Cycle { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("#10 Design") && message.contains("#11 Build"), "{message}");
}
