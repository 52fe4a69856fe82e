use chrono::TimeZone;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::access::Actor;
use crate::change::Write;
use crate::commands::{CreateFlow, RecordFlowStep, RecordPoll, ReplayFlowRun, SeenItem, TriggerFlow};
use crate::desk::{Command, Env, Limits};
use crate::error::DeskError;
use crate::ids::SequentialIds;
use crate::people::{Role, User};
use crate::{TokenScope, UserId};

fn ws() -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(7))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn user(role: Role) -> Actor {
    Actor::user(
        User {
            id: UserId(Uuid::from_u128(99)),
            workspace_id: ws(),
            name: "Mia".into(),
            email: Some("mia@northwind.example".into()),
            handle: None,
            role,
            active: true,
            email_bounce: None,
            organization: None,
            created_at: now(),
            version: 1,
        },
        TokenScope::Admin,
    )
}

fn spec(v: Value) -> Result<FlowSpec, Invalid> {
    let s = FlowSpec::from_json(&v)?;
    s.validate()?;
    Ok(s)
}

fn good() -> Value {
    json!({
        "name": "Escalations to chat",
        "trigger": {"type": "event", "on": {"type": "status_changed", "to": "escalated"}},
        "filters": {"field": "trigger.item.priority", "op": "eq", "value": "urgent"},
        "steps": [
            {"type": "plugin_action", "plugin": "chat", "action": "post",
             "input": {"text": "#{{trigger.item.number}} {{trigger.item.title}}"}},
            {"type": "add_message", "item": "{{trigger.item.number}}", "body": "Posted as {{steps.0.output.id}}"}
        ]
    })
}

fn invalid_at(v: Value) -> String {
    match spec(v) {
        Err(e) => format!("{}: {}", e.field, e.reason),
        Ok(s) => panic!("accepted {s:?}"),
    }
}

#[test]
fn specs_validate_and_errors_name_the_path() {
    assert!(spec(good()).is_ok());
    let with = |path: &str, v: Value| {
        let mut g = good();
        let mut at = &mut g;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*p],
            };
        }
        at[parts[parts.len() - 1]] = v;
        g
    };
    let table: &[(Value, &str)] = &[
        (with("name", json!("  ")), "name: must not be empty"),
        (
            with("steps.1.body", json!("{{steps.1.output.id}}")),
            "steps[1].input.body: '{{steps.1.output.id}}'",
        ),
        (
            with("steps.0.input", json!({"t": "{{nope.x}}"})),
            "steps[0].input.t: '{{nope.x}}': unknown placeholder",
        ),
        (with("steps.0.type", json!("teleport")), "steps[0]: unknown variant `teleport`"),
        (with("steps.0.plugin", json!("bad plugin!")), "steps[0].plugin:"),
        (
            with("filters", json!({"field": "title", "op": "eq", "value": "x"})),
            "filters.field: flow filters read",
        ),
        (
            with("filters", json!({"field": "trigger.x", "op": "in", "value": "x"})),
            "filters.value: in and not_in",
        ),
        (
            with("trigger", json!({"type": "event", "on": {"type": "idle", "hours": 3}})),
            "trigger.on: 'idle' is time-based",
        ),
        (
            with(
                "trigger",
                json!({"type": "plugin_poll", "plugin": "gh", "trigger": "issues", "interval_secs": 1}),
            ),
            "trigger.interval_secs: at least 10",
        ),
        (with("steps", json!([])), "steps: a flow needs at least one step"),
        (with("pause_after", json!(0)), "pause_after: must be 1 to 1000"),
    ];
    for (v, expected) in table {
        let got = invalid_at(v.clone());
        assert!(got.starts_with(expected), "expected '{expected}…', got '{got}'");
    }
    let got =
        invalid_at(json!({"name": "x", "trigger": {"type": "incoming_webhook"}, "steps": [], "colour": 1}));
    assert!(got.starts_with("colour: unknown field"), "{got}");
}

#[test]
fn templates_render_values_and_text() {
    let ctx = json!({
        "trigger": {"item": {"number": 42, "title": "Printer on fire", "tags": ["a", "b"]}},
        "steps": [{"output": {"id": "m-1", "n": 3}}]
    });
    let t = json!({
        "number": "{{trigger.item.number}}",
        "text": "#{{ trigger.item.number }}: {{trigger.item.title}} ({{steps.0.output.id}})",
        "tags": "{{trigger.item.tags}}",
        "first_tag": "{{trigger.item.tags.0}}",
        "missing": "{{trigger.nope}}",
        "missing_in_text": "[{{trigger.nope}}]",
        "list": ["{{steps.0.output.n}}", 5],
        "unclosed": "a {{b"
    });
    assert_eq!(
        render(&t, &ctx),
        json!({
            "number": 42,
            "text": "#42: Printer on fire (m-1)",
            "tags": ["a", "b"],
            "first_tag": "a",
            "missing": null,
            "missing_in_text": "[]",
            "list": [3, 5],
            "unclosed": "a {{b"
        })
    );
}

#[test]
fn filters_use_the_automation_condition_tree() {
    let filters: Condition = serde_json::from_value(json!({"all": [
        {"field": "trigger.item.priority", "op": "in", "value": ["high", "urgent"]},
        {"not": {"field": "trigger.item.title", "op": "contains", "value": "test"}}
    ]}))
    .unwrap();
    let check = |priority: &str, title: &str| {
        passes(&filters, &json!({"item": {"priority": priority, "title": title}}), now())
    };
    assert!(check("urgent", "Printer on fire"));
    assert!(!check("low", "Printer on fire"));
    assert!(!check("high", "A TEST item"));
}

fn env(ids: &SequentialIds) -> Env<'_> {
    static LIMITS: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();
    Env { now: now(), ids, limits: LIMITS.get_or_init(Limits::default) }
}

fn poll_flow() -> Flow {
    let s = spec(json!({
        "name": "New issues",
        "trigger": {"type": "plugin_poll", "plugin": "gh", "trigger": "issues", "interval_secs": 60},
        "filters": {"field": "trigger.state", "op": "eq", "value": "open"},
        "steps": [{"type": "plugin_action", "plugin": "chat", "action": "post", "input": {"t": "{{trigger.title}}"}}],
        "pause_after": 2
    }))
    .unwrap();
    let ids = SequentialIds::default();
    let d = CreateFlow { spec: s, enabled: true }.decide(&user(Role::Manager), (), &env(&ids)).unwrap();
    assert_eq!(d.changes.jobs.len(), 1, "enabling a poll flow enqueues the seeding poll");
    assert_eq!(d.changes.jobs[0].kind, FLOW_POLL_JOB);
    d.output
}

fn state(flow: &Flow, seeded: bool, seen: &[&str]) -> FlowPollState {
    FlowPollState {
        id: FlowPollStateId(flow.id.0),
        workspace_id: ws(),
        flow: flow.id,
        cursor: Some("c1".into()),
        seeded,
        seen: seen.iter().map(|s| s.to_string()).collect(),
        next_poll_at: now(),
        last_polled_at: None,
        last_error: None,
        version: 3,
    }
}

fn seen(id: &str, open: bool) -> SeenItem {
    SeenItem {
        id: id.into(),
        data: json!({"id": id, "title": format!("Issue {id}"), "state": if open {"open"} else {"closed"}}),
    }
}

fn written_state(changes: &crate::ChangeSet) -> FlowPollState {
    changes
        .writes
        .iter()
        .find_map(|w| match w {
            Write::Put { record: crate::Record::FlowPollState(s), expected_version } => {
                assert_eq!(*expected_version, Some(3));
                Some(s.clone())
            }
            _ => None,
        })
        .expect("the poll state is written")
}

#[test]
fn only_managers_and_admins_manage_flows() {
    let ids = SequentialIds::default();
    let s = spec(good()).unwrap();
    for (role, ok) in
        [(Role::Admin, true), (Role::Manager, true), (Role::Agent, false), (Role::Customer, false)]
    {
        let got = CreateFlow { spec: s.clone(), enabled: true }.decide(&user(role), (), &env(&ids));
        assert_eq!(got.is_ok(), ok, "{role:?}");
        if !ok {
            assert!(matches!(got, Err(DeskError::Forbidden(_))));
        }
    }
}

#[test]
fn the_first_poll_seeds_without_firing_and_later_polls_dedupe() {
    let flow = poll_flow();
    let ids = SequentialIds::default();
    let system = Actor::system(ws());
    let first = RecordPoll {
        flow: flow.id,
        outcome: Ok((vec![seen("1", true), seen("2", true)], Some("c2".into()))),
    };
    let d = first.decide(&system, (flow.clone(), Some(state(&flow, false, &[]))), &env(&ids)).unwrap();
    assert!(d.output.seeded && d.output.runs.is_empty());
    assert!(d.changes.jobs.is_empty(), "seeding fires nothing");
    let s = written_state(&d.changes);
    assert_eq!((s.cursor.as_deref(), s.seen.clone()), (Some("c2"), vec!["1".to_string(), "2".to_string()]));

    // Later: "2" again (seen), "3" new and open, "4" new but closed (filtered out, still seen),
    // "3" twice in one page.
    let later = RecordPoll {
        flow: flow.id,
        outcome: Ok((vec![seen("2", true), seen("3", true), seen("4", false), seen("3", true)], None)),
    };
    let d = later.decide(&system, (flow.clone(), Some(state(&flow, true, &["1", "2"]))), &env(&ids)).unwrap();
    assert_eq!(d.output.runs.len(), 1);
    assert_eq!(d.changes.jobs.len(), 1);
    assert_eq!(d.changes.jobs[0].kind, FLOW_RUN_JOB);
    let s = written_state(&d.changes);
    assert_eq!(s.cursor.as_deref(), Some("c1"), "no new cursor keeps the old one");
    assert_eq!(s.seen, vec!["1", "2", "3", "4"]);
    let runs: Vec<&FlowRun> = d
        .changes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { record: crate::Record::FlowRun(r), .. } => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger_id.as_deref(), Some("3"));
    // Nobody but Tandem records polls.
    assert!(matches!(
        later.decide(&user(Role::Admin), (flow.clone(), Some(state(&flow, true, &[]))), &env(&ids)),
        Err(DeskError::Forbidden(_))
    ));
}

#[test]
fn seen_ids_are_bounded() {
    let flow = poll_flow();
    let mut s = state(&flow, true, &[]);
    s.remember((0..MAX_SEEN_IDS + 10).map(|i| i.to_string()));
    assert_eq!(s.seen.len(), MAX_SEEN_IDS);
    assert_eq!(s.seen[0], "10", "the oldest are forgotten");
}

fn run_of(flow: &Flow) -> FlowRun {
    FlowRun {
        id: FlowRunId(Uuid::from_u128(500)),
        workspace_id: ws(),
        flow: flow.id,
        flow_name: flow.name.clone(),
        trigger: json!({"title": "x"}),
        trigger_id: Some("3".into()),
        status: RunStatus::Running,
        steps: Vec::new(),
        attempt: 1,
        started_at: now(),
        finished_at: None,
        error: None,
        version: 1,
    }
}

fn failed_step(class: ErrorClass) -> StepRecord {
    StepRecord {
        index: 0,
        kind: "plugin_action".into(),
        input: json!({"t": "x"}),
        output: None,
        error: Some(StepError { class, message: "nope".into() }),
        attempts: 1,
        log: vec![],
        at: now(),
    }
}

fn record(flow: &Flow, run: &FlowRun, class: ErrorClass, final_attempt: bool) -> (FlowRun, Option<Flow>) {
    let ids = SequentialIds::default();
    let cmd = RecordFlowStep {
        run: run.id,
        attempt: run.attempt,
        step: failed_step(class),
        final_attempt,
        counts: true,
    };
    let state = crate::commands::StepState { run: run.clone(), flow: Some(flow.clone()) };
    let d = cmd.decide(&Actor::system(ws()), state, &env(&ids)).unwrap();
    let flow = d.changes.writes.iter().find_map(|w| match w {
        Write::Put { record: crate::Record::Flow(f), .. } => Some(f.clone()),
        _ => None,
    });
    (d.output, flow)
}

#[test]
fn failures_retry_then_fail_and_pause_the_flow() {
    let flow = poll_flow();
    let run = run_of(&flow);
    let (r, f) = record(&flow, &run, ErrorClass::Retryable, false);
    assert_eq!(r.status, RunStatus::WaitingRetry);
    assert!(f.is_none(), "a retry does not count as a failed run");
    let (r, f) = record(&flow, &run, ErrorClass::Retryable, true);
    assert_eq!(r.status, RunStatus::Failed);
    let f = f.unwrap();
    assert_eq!((f.consecutive_failures, f.enabled), (1, true));
    // The second failure in a row reaches pause_after = 2.
    let (_, f) = record(&f, &run, ErrorClass::Fatal, false);
    let f = f.unwrap();
    assert!(!f.enabled);
    assert!(f.paused_reason.as_deref().unwrap().starts_with("paused after 2 failed runs in a row"), "{f:?}");
    // An authentication error pauses at once.
    let (_, f) = record(&flow, &run, ErrorClass::Auth, false);
    let f = f.unwrap();
    assert!(!f.enabled && f.paused_reason.as_deref().unwrap().contains("authentication failed"));
}

#[test]
fn replay_resumes_a_failed_run_from_its_failed_step() {
    let flow = poll_flow();
    let mut run = run_of(&flow);
    let ids = SequentialIds::default();
    let manager = user(Role::Manager);
    assert!(matches!(
        ReplayFlowRun { run: run.id }.decide(&manager, (run.clone(), flow.clone()), &env(&ids)),
        Err(DeskError::Conflict(_))
    ));
    run.status = RunStatus::Failed;
    run.steps = vec![failed_step(ErrorClass::Fatal)];
    let d = ReplayFlowRun { run: run.id }.decide(&manager, (run.clone(), flow.clone()), &env(&ids)).unwrap();
    assert_eq!((d.output.status, d.output.attempt, d.output.next_step()), (RunStatus::Running, 2, 0));
    assert_eq!(d.changes.jobs[0].idempotency_key, format!("flow.run:{}:2", run.id));
    assert!(matches!(
        ReplayFlowRun { run: run.id }.decide(&user(Role::Agent), (run, flow), &env(&ids)),
        Err(DeskError::Forbidden(_))
    ));
}

#[test]
fn tokens_round_trip_and_refuse_garbage() {
    let id = HookEndpointId(Uuid::from_u128(5));
    let secret = "s".repeat(40);
    let token = make_token(ws(), id, &secret);
    assert_eq!(parse_token(&token), Some((ws(), id, secret.as_str())));
    for bad in ["", "hk_", "hk_x_y_z", &format!("hk_{}_{}_short", ws().0.simple(), id.0.simple())] {
        assert_eq!(parse_token(bad), None, "{bad}");
    }
}

fn webhook_flow() -> Flow {
    let s = spec(json!({
        "name": "Deliveries",
        "trigger": {"type": "incoming_webhook"},
        "filters": {"field": "trigger.state", "op": "eq", "value": "open"},
        "steps": [{"type": "plugin_action", "plugin": "chat", "action": "post", "input": {"t": "{{trigger.title}}"}}]
    }))
    .unwrap();
    let ids = SequentialIds::default();
    CreateFlow { spec: s, enabled: true }.decide(&user(Role::Manager), (), &env(&ids)).unwrap().output
}

#[test]
fn webhook_deliveries_are_deduplicated_by_the_senders_id() {
    let flow = webhook_flow();
    let ids = SequentialIds::default();
    let system = Actor::system(ws());
    let trigger = |items: Vec<SeenItem>, remember_ids| TriggerFlow { flow: flow.id, items, remember_ids };
    // check(seen before, items, remember) → (runs started, duplicates, seen ids written)
    let check = |seen_before: Option<&[&str]>, items: &[(&str, bool)], remember: bool| {
        let items = items.iter().map(|(id, open)| seen(id, *open)).collect();
        let before = seen_before.map(|ids| state(&flow, false, ids));
        let d = trigger(items, remember).decide(&system, (flow.clone(), before), &env(&ids)).unwrap();
        let written = d.changes.writes.iter().find_map(|w| match w {
            Write::Put { record: crate::Record::FlowPollState(s), expected_version } => {
                Some((s.seen.clone(), *expected_version))
            }
            _ => None,
        });
        assert_eq!(d.output.runs.len(), d.changes.jobs.len(), "a job per run");
        (d.output.runs.len(), d.output.duplicates, written)
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // The first delivery of an id: a run, and the id remembered in a new state.
    assert_eq!(check(None, &[("a", true)], true), (1, vec![], Some((strings(&["a"]), None))));
    // The same id again: no run, nothing written.
    assert_eq!(check(Some(&["a"]), &[("a", true)], true), (0, strings(&["a"]), None));
    // A new id beside a seen one, and a repeat within one delivery.
    assert_eq!(
        check(Some(&["a"]), &[("a", true), ("b", true), ("b", true)], true),
        (1, strings(&["a", "b"]), Some((strings(&["a", "b"]), Some(3))))
    );
    // Filtered out: no run, but the id is seen.
    assert_eq!(check(None, &[("c", false)], true), (0, vec![], Some((strings(&["c"]), None))));
    // Ids Tandem made up are neither checked nor remembered.
    assert_eq!(check(None, &[("x", true)], false), (1, vec![], None));
}
