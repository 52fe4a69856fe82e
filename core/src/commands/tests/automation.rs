//! Automations: the rule engine on the change sets of real commands (the situations teams ask
//! for), condition tables, the loop guards, validation paths and the dry run.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::super::items::References;
use super::fixture::{Who::*, *};
use crate::automation::eval::{Facts, Regexes, holds};
use crate::automation::{
    self, AUTOMATION_DELIVER_JOB, Action, AutomationRun, AutomationState, Condition, Engine, Rule, RuleRefs,
    RunOutcome, Trigger,
};
use crate::change::{ChangeSet, Record, Write};
use crate::commands::*;
use crate::conversation::{Body, Visibility};
use crate::desk::{Command, Decided, Env};
use crate::event::EventData;
use crate::ids::{ItemId, RuleId, SequentialIds};
use crate::item::{Assignee, Channel, Item, Priority};
use crate::mail::{MAIL_SEND_JOB, MailJob};
use crate::people::NotificationKind;
use crate::workflow::StatusCategory;

fn rule_id(n: u128) -> RuleId {
    RuleId(Uuid::from_u128(0xA000 + n))
}

fn rule(n: u128, name: &str, trigger: Value, conditions: Value, actions: Value) -> Rule {
    Rule {
        id: rule_id(n),
        workspace_id: World::new().ws.id,
        name: name.into(),
        enabled: true,
        position: n as i64,
        item_types: vec![],
        projects: vec![],
        trigger: serde_json::from_value(trigger).unwrap(),
        conditions: serde_json::from_value(conditions).unwrap(),
        actions: serde_json::from_value(actions).unwrap(),
        created_at: t0(),
        updated_at: t0(),
        version: 1,
    }
}

/// What the engine may read: the fixture's records plus the rules.
fn world_of(w: &World, rules: Vec<Rule>) -> automation::World {
    let mut aw = automation::World { rules, ..Default::default() };
    for t in [&w.ticket, &w.task, &w.purchase] {
        aw.item_types.insert(t.id, t.clone());
    }
    for u in w.users() {
        aw.users.insert(u.id, u);
    }
    aw.teams.insert(w.team.id, w.team.clone());
    for p in [&w.project, &w.other_project, &w.archived_project] {
        aw.projects.insert(p.id, p.clone());
    }
    for f in w.folders() {
        aw.folders.insert(f.id, f);
    }
    for i in w.items() {
        aw.items.insert(i.id, i);
    }
    aw
}

/// Decides a command, then runs the rules on its change set as `Desk` does.
fn run_with<C: Command>(
    aw: &automation::World,
    cmd: &C,
    actor: &crate::access::Actor,
    state: C::State,
) -> (ChangeSet, Vec<AutomationRun>) {
    let ids = SequentialIds::default();
    let limits = limits();
    let env = Env { now: now(), ids: &ids, limits: &limits };
    let Decided { mut changes, .. } = cmd.decide(actor, state, &env).unwrap();
    let runs = Engine::new(aw, &env, limits.automations, &changes).run(&mut changes);
    (changes, runs)
}

fn item_after(changes: &ChangeSet, id: ItemId) -> Item {
    changes
        .writes
        .iter()
        .rev()
        .find_map(|w| match w {
            Write::Put { record: Record::Item(i), .. } if i.id == id => Some(i.clone()),
            _ => None,
        })
        .expect("the item is written")
}

fn created_item(changes: &ChangeSet) -> Item {
    changes
        .writes
        .iter()
        .find_map(|w| match w {
            Write::Put { record: Record::Item(i), expected_version: None } => Some(i.clone()),
            _ => None,
        })
        .expect("an item is created")
}

fn stored_runs(changes: &ChangeSet) -> Vec<AutomationRun> {
    changes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { record: Record::AutomationRun(r), .. } => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn stored_state(changes: &ChangeSet) -> Option<AutomationState> {
    changes.writes.iter().find_map(|w| match w {
        Write::Put { record: Record::AutomationState(s), .. } => Some(s.clone()),
        _ => None,
    })
}

fn event_names(changes: &ChangeSet) -> Vec<&'static str> {
    changes.events.iter().map(|e| e.data.name()).collect()
}

fn create_by_customer(
    w: &World,
    title: &str,
    custom: Value,
    channel: Channel,
) -> (CreateItem, crate::access::Actor) {
    let mut c = CreateItem::new(w.purchase.id, title);
    c.custom = serde_json::from_value(custom).unwrap();
    c.channel = channel;
    (c, w.actor(CustomerA))
}

#[test]
fn auto_acknowledges_new_external_requests() {
    let w = World::new();
    let ack = rule(
        1,
        "Acknowledge external requests",
        json!({"type": "item_created"}),
        json!({"all": [
            {"field": "requester.role", "op": "eq", "value": "customer"},
            {"field": "channel", "op": "in", "value": ["email", "portal"]},
        ]}),
        json!([{"type": "reply", "visibility": "public",
                "template": "Hello {{requester.name}}, we received request #{{item.number}} ({{item.title}})."}]),
    );
    let aw = world_of(&w, vec![ack.clone()]);

    // A customer's email: acknowledged. The number is only known at commit, so the reply is a
    // job in the same change set, posted right after it.
    let (c, actor) = create_by_customer(&w, "New laptop", json!({"budget": 900}), Channel::Email);
    let (changes, runs) = run_with(&aw, &c, &actor, (w.purchase.clone(), References::default()));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Fired);
    assert_eq!(runs[0].reason, "item.created by the requester; conditions held");
    assert_eq!(runs[0].changes, ["public reply queued for after the commit"]);
    assert_eq!(stored_runs(&changes), runs);
    let job = changes.jobs.iter().find(|j| j.kind == AUTOMATION_DELIVER_JOB).expect("a deliver job");
    let deliver: DeliverAutomation = serde_json::from_value(job.payload.clone()).unwrap();
    assert_eq!(deliver.rule, ack.id);
    assert!(matches!(deliver.action, Action::Reply { visibility: Visibility::Public, .. }));

    // Delivered after the commit, the reply names the number the store gave.
    let mut numbered = created_item(&changes);
    numbered.number = 42;
    let mut aw2 = world_of(&w, vec![ack.clone()]);
    aw2.items.insert(numbered.id, numbered.clone());
    let Decided { changes: posted, .. } = {
        let ids = SequentialIds::default();
        let limits = limits();
        let env = Env { now: now(), ids: &ids, limits: &limits };
        deliver.decide(&w.actor(System), (numbered.clone(), aw2), &env).unwrap()
    };
    let message = posted
        .writes
        .iter()
        .find_map(|w| match w {
            Write::Put { record: Record::Message(m), .. } => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(message.text, "Hello Carla Customer, we received request #42 (New laptop).");
    assert_eq!(message.visibility, Visibility::Public);
    assert_eq!(message.author, crate::item::ActorRef::System);
    assert_eq!(event_names(&posted), ["item.message_posted"]);

    // Staff creating an item through the API: no acknowledgement.
    let mut c = CreateItem::new(w.ticket.id, "Internal chore");
    c.requester = Some(w.agent.id);
    let refs = References { users: vec![w.agent.clone()], ..References::default() };
    let (changes, runs) = run_with(&aw, &c, &w.actor(Agent), (w.ticket.clone(), refs));
    assert!(runs.is_empty());
    assert!(changes.jobs.is_empty());
    assert!(stored_state(&changes).is_none(), "nothing fired, nothing counted");
}

#[test]
fn assigns_hardware_tickets_round_robin() {
    let w = World::new();
    let hw = rule(
        1,
        "Hardware to the service desk",
        json!({"type": "item_created"}),
        json!({"field": "custom.category", "op": "eq", "value": "hardware"}),
        json!([{"type": "assign", "to": {"strategy": "round_robin", "team": w.team.id}}]),
    );
    let mut aw = world_of(&w, vec![hw]);
    let mut picked = Vec::new();
    for title in ["Printer", "Monitor", "Docking station"] {
        let (c, actor) =
            create_by_customer(&w, title, json!({"budget": 10, "category": "Hardware"}), Channel::Portal);
        let (changes, runs) = run_with(&aw, &c, &actor, (w.purchase.clone(), References::default()));
        assert_eq!(runs.len(), 1, "{title}");
        let item = created_item(&changes);
        picked.push(item.assignees.clone());
        assert!(event_names(&changes).contains(&"item.assignees_changed"));
        // The next command reads the state this one committed.
        let mut state = stored_state(&changes).unwrap();
        state.version = aw.state.as_ref().map_or(1, |s| s.version + 1);
        aw.state = Some(state);
    }
    assert_eq!(
        picked,
        [
            vec![Assignee::User(w.agent.id)],
            vec![Assignee::User(w.collaborator.id)],
            vec![Assignee::User(w.agent.id)]
        ]
    );

    // Software requests are left alone.
    let (c, actor) =
        create_by_customer(&w, "Licence", json!({"budget": 10, "category": "Software"}), Channel::Portal);
    let (changes, runs) = run_with(&aw, &c, &actor, (w.purchase.clone(), References::default()));
    assert!(runs.is_empty());
    assert!(created_item(&changes).assignees.is_empty());
}

#[test]
fn least_open_items_picks_the_quieter_member() {
    let w = World::new();
    let r = rule(
        1,
        "Balance",
        json!({"type": "item_created"}),
        json!({"all": []}),
        json!([{"type": "assign", "to": {"strategy": "least_open", "team": w.team.id}}]),
    );
    let mut aw = world_of(&w, vec![r]);
    aw.open_items.insert(w.agent.id, 7);
    aw.open_items.insert(w.collaborator.id, 2);
    let (c, actor) = create_by_customer(&w, "Anything", json!({"budget": 1}), Channel::Portal);
    let (changes, _) = run_with(&aw, &c, &actor, (w.purchase.clone(), References::default()));
    assert_eq!(created_item(&changes).assignees, [Assignee::User(w.collaborator.id)]);
}

#[test]
fn files_items_into_a_project_by_requester_domain() {
    let w = World::new();
    let clinics = rule(
        1,
        "Clinic requests to Rollout",
        json!({"type": "item_created"}),
        json!({"any": [
            {"field": "requester.domain", "op": "eq", "value": "clinic.example"},
            {"field": "requester.email", "op": "ends_with", "value": ".clinic.example"},
        ]}),
        json!([{"type": "move_to", "project": w.project.id, "folder": w.folder.id},
               {"type": "set_priority", "priority": "high"}]),
    );
    let aw = world_of(&w, vec![clinics]);
    let (c, actor) = create_by_customer(&w, "Hearing aid order", json!({"budget": 5}), Channel::Email);
    let (changes, runs) = run_with(&aw, &c, &actor, (w.purchase.clone(), References::default()));
    let item = created_item(&changes);
    assert_eq!(
        (item.project, item.folder, item.priority),
        (Some(w.project.id), Some(w.folder.id), Priority::High)
    );
    assert_eq!(runs[0].changes, ["moved to project 'Rollout'", "priority = high"]);
    // Still one insert of the item: the rule's effects are folded into it.
    let puts =
        changes.writes.iter().filter(|w| matches!(w, Write::Put { record: Record::Item(_), .. })).count();
    assert_eq!(puts, 1);
    assert_eq!(event_names(&changes), ["item.created", "item.updated"]);

    // Customer B has no address: no domain, no move.
    let mut c = CreateItem::new(w.ticket.id, "VPN");
    c.channel = Channel::Email;
    let (changes, runs) = run_with(&aw, &c, &w.actor(CustomerB), (w.ticket.clone(), References::default()));
    assert!(runs.is_empty());
    assert_eq!(created_item(&changes).project, None);
}

fn with_status(w: &World, item: &Item, status: &str) -> Item {
    let t = w.item_type_of(item);
    let s = t.workflow.status(status).unwrap();
    Item { status: s.key.clone(), category: s.category, ..item.clone() }
}

#[test]
fn a_requester_reply_reopens_a_waiting_resolved_or_closed_ticket() {
    let w = World::new();
    let reopen = rule(
        1,
        "Requester answered",
        json!({"type": "message_posted", "by": "requester", "visibility": "public"}),
        json!({"field": "category", "op": "in", "value": ["waiting", "resolved", "closed"]}),
        json!([{"type": "set_status", "status": "execution"},
               {"type": "notify", "assignees": true, "template": "#{{item.number}}: {{requester.name}} answered"}]),
    );
    let reply =
        |item: &Item| PostMessage::new(item.id, Visibility::Public, Body::Text("Still broken".into()));
    for (from, rule_fires) in [("waiting", false), ("delivery", false), ("closed", true)] {
        let item = Item { assignees: vec![Assignee::User(w.agent.id)], ..with_status(&w, &w.ticket_a, from) };
        let mut aw = world_of(&w, vec![reopen.clone()]);
        aw.items.insert(item.id, item.clone());
        let (changes, runs) =
            run_with(&aw, &reply(&item), &w.actor(CustomerA), (item.clone(), w.ticket.clone(), vec![]));
        // Waiting and resolved items are reopened by the workflow's customer-reply default
        // already; the rule covers closed ones.
        assert_eq!(item_after(&changes, item.id).status, "execution", "{from}");
        assert_eq!(runs.len(), usize::from(rule_fires), "{from}");
        if rule_fires {
            assert_eq!(runs[0].changes, ["status = execution", "notified Ana Agent"]);
            let note = changes.writes.iter().find_map(|w| match w {
                Write::Put { record: Record::Notification(n), .. } => Some(n.clone()),
                _ => None,
            });
            let note = note.expect("the assignee is notified");
            assert_eq!(note.user, w.agent.id);
            assert_eq!(
                note.kind,
                NotificationKind::Automation { rule: reopen.id, text: "#1: Carla Customer answered".into() }
            );
            // One item write: the message's and the rule's changes share it.
            let puts: Vec<_> = changes
                .writes
                .iter()
                .filter_map(|w| match w {
                    Write::Put { record: Record::Item(_), expected_version } => Some(*expected_version),
                    _ => None,
                })
                .collect();
            assert_eq!(puts, [Some(item.version)]);
        }
    }
    // The agent's own reply does not count.
    let item = with_status(&w, &w.ticket_a, "closed");
    let mut aw = world_of(&w, vec![reopen]);
    aw.items.insert(item.id, item.clone());
    let (changes, runs) =
        run_with(&aw, &reply(&item), &w.actor(Agent), (item.clone(), w.ticket.clone(), vec![]));
    assert!(runs.is_empty());
    assert_eq!(item_after(&changes, item.id).status, "closed");
}

#[test]
fn an_agent_attaching_a_file_notifies_the_requester() {
    let w = World::new();
    let tell = rule(
        1,
        "Tell the requester about files",
        json!({"type": "attachment_added", "by": "agent"}),
        json!({"all": []}),
        json!([{"type": "notify", "requester": true, "template": "A file was added to #{{item.number}} {{item.title}}"}]),
    );
    let aw = world_of(&w, vec![tell.clone()]);
    let file = NewFile {
        filename: "driver.zip".into(),
        content_type: "application/zip".into(),
        bytes: Arc::from(&b"PK"[..]),
    };
    let cmd = AddAttachment { item: w.ticket_a.id.into(), file: file.clone() };
    let (changes, runs) = run_with(&aw, &cmd, &w.actor(Agent), w.ticket_a.clone());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].reason, "item.attachment_added by an agent; conditions held");
    let mail = changes.jobs.iter().find(|j| j.kind == MAIL_SEND_JOB).expect("a mail job");
    let mail: MailJob = serde_json::from_value(mail.payload.clone()).unwrap();
    assert_eq!(mail.to, "carla@clinic.example");
    assert!(mail.automatic);
    assert_eq!(mail.item, Some(w.ticket_a.id));
    assert_eq!(mail.vars["body"], "A file was added to #1 Printer down");
    assert_eq!(mail.template, "automation_notify");

    // The requester's own upload notifies nobody.
    let (changes, runs) = run_with(&aw, &cmd, &w.actor(CustomerA), w.ticket_a.clone());
    assert!(runs.is_empty());
    assert!(changes.jobs.is_empty());
}

#[test]
fn a_rule_loop_is_stopped_at_the_depth_bound_and_logged() {
    let w = World::new();
    let ping = rule(
        1,
        "Ping",
        json!({"type": "status_changed", "to": "execution"}),
        json!({"all": []}),
        json!([{"type": "set_status", "status": "waiting"}]),
    );
    let pong = rule(
        2,
        "Pong",
        json!({"type": "status_changed", "to": "waiting"}),
        json!({"all": []}),
        json!([{"type": "set_status", "status": "execution"}]),
    );
    let aw = world_of(&w, vec![ping.clone(), pong.clone()]);
    let cmd = TransitionItem {
        item: w.ticket_a.id.into(),
        to: TransitionTo::Status("execution".into()),
        version: None,
    };
    let (changes, runs) = run_with(&aw, &cmd, &w.actor(Agent), (w.ticket_a.clone(), w.ticket.clone()));
    let limits = limits().automations;
    let fired = runs.iter().filter(|r| r.outcome == RunOutcome::Fired).count();
    assert_eq!(fired, limits.max_depth);
    let stopped: Vec<_> = runs.iter().filter(|r| r.outcome == RunOutcome::Stopped).collect();
    assert_eq!(stopped.len(), 1);
    assert!(
        stopped[0].reason.starts_with("stopped: rules set off rules 5 levels deep (at most 5); a loop?"),
        "{}",
        stopped[0].reason
    );
    assert_eq!(stored_runs(&changes).len(), runs.len(), "every firing and the stop are in the run log");
    // 1 + 5 status changes, one item write.
    assert_eq!(event_names(&changes).iter().filter(|n| **n == "item.status_changed").count(), 6);
    assert_eq!(stored_state(&changes).unwrap().item_firings[&w.ticket_a.id], 5);
}

#[test]
fn firing_budgets_stop_runaway_rules_across_change_sets() {
    let w = World::new();
    let note = rule(
        1,
        "Note every update",
        json!({"type": "item_updated"}),
        json!({"all": []}),
        json!([{"type": "reply", "visibility": "internal", "template": "updated"}]),
    );
    let mut aw = world_of(&w, vec![note]);
    let limits = limits().automations;
    let mut state = AutomationState::new(w.ws.id, now() - Duration::minutes(10));
    state.item_firings.insert(w.ticket_a.id, limits.per_item);
    state.workspace_firings = limits.per_item;
    state.version = 4;
    aw.state = Some(state.clone());
    let cmd = UpdateItem {
        item: w.ticket_a.id.into(),
        patch: ItemPatch { title: Some("Printer on fire".into()), ..Default::default() },
    };
    let (changes, runs) =
        run_with(&aw, &cmd, &w.actor(Agent), (w.ticket_a.clone(), w.ticket.clone(), References::default()));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Stopped);
    assert!(
        runs[0].reason.starts_with("stopped: 50 firings on this item within 60 min"),
        "{}",
        runs[0].reason
    );
    assert!(!event_names(&changes).contains(&"item.message_posted"));

    // A new window starts the count again.
    state.window_start = now() - Duration::hours(2);
    aw.state = Some(state);
    let (changes, runs) =
        run_with(&aw, &cmd, &w.actor(Agent), (w.ticket_a.clone(), w.ticket.clone(), References::default()));
    assert_eq!(runs[0].outcome, RunOutcome::Fired);
    let state = stored_state(&changes).unwrap();
    assert_eq!((state.workspace_firings, state.version, state.window_start), (1, 5, now()));
    assert!(
        changes.writes.iter().any(|w| matches!(
            w,
            Write::Put { record: Record::AutomationState(_), expected_version: Some(4) }
        ))
    );
}

#[test]
fn conditions() {
    let w = World::new();
    let monday_10 = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let item = Item { description: "Error E-4711 on boot".into(), ..w.purchase_item.clone() };
    let check = |c: Value, now, expected: bool| {
        let cond: Condition = serde_json::from_value(c.clone()).unwrap();
        let facts = Facts {
            item: &item,
            item_type: Some(&w.purchase),
            requester: Some(&w.customer_a),
            message: None,
            now,
        };
        assert_eq!(holds(&cond, &facts, &Regexes::default()), expected, "{c}");
    };
    let hours = |inside: bool| json!({"business_hours": {"days": ["mon", "tue"], "start": "09:00", "end": "17:00", "inside": inside}});
    for (c, expected) in [
        (json!({"field": "custom.budget", "op": "gt", "value": 100}), true),
        (json!({"field": "custom.budget", "op": "lte", "value": 100}), false),
        (json!({"field": "custom.vendor", "op": "eq", "value": "ACME"}), true),
        (json!({"field": "custom.vendor", "op": "in", "value": ["Initech", "Acme"]}), true),
        (json!({"field": "custom.needed_by", "op": "is_empty"}), true),
        (json!({"field": "custom.needed_by", "op": "is_set"}), false),
        (json!({"field": "description", "op": "contains", "value": "e-4711"}), true),
        (json!({"field": "description", "op": "matches", "value": "E-[0-9]{4}"}), true),
        (json!({"field": "description", "op": "matches", "value": "^boot"}), false),
        (json!({"field": "requester.domain", "op": "eq", "value": "clinic.example"}), true),
        (json!({"field": "requester.organization", "op": "is_set"}), false),
        (json!({"field": "followers", "op": "contains", "value": w.manager.id}), true),
        (json!({"field": "assignees", "op": "is_empty"}), true),
        (json!({"field": "item_type", "op": "eq", "value": w.purchase.id}), true),
        (json!({"field": "channel", "op": "ne", "value": "email"}), true),
        (json!({"not": {"field": "priority", "op": "eq", "value": "normal"}}), false),
        (
            json!({"any": [{"field": "title", "op": "starts_with", "value": "x"}, {"all": [
            {"field": "kind", "op": "eq", "value": "ticket"},
            {"not": {"field": "status", "op": "eq", "value": "closed"}}]}]}),
            true,
        ),
        (json!({"all": []}), true),
        (json!({"any": []}), false),
    ] {
        check(c, monday_10, expected);
    }
    check(hours(true), monday_10, true);
    check(hours(false), monday_10, false);
    check(hours(true), monday_10 + Duration::hours(8), false);
    check(hours(true), monday_10 + Duration::days(2), false);
}

#[test]
fn conditions_round_trip_and_reject_bad_shapes() {
    let c: Condition =
        serde_json::from_value(json!({"any": [{"field": "custom.x", "op": "is_set"}]})).unwrap();
    assert_eq!(serde_json::to_value(&c).unwrap(), json!({"any": [{"field": "custom.x", "op": "is_set"}]}));
    for bad in [
        json!({"all": [], "any": []}),
        json!({"field": "title"}),
        json!({"field": "nonsense", "op": "eq", "value": 1}),
        json!({"field": "title", "op": "resembles", "value": 1}),
        json!({"everything": true}),
    ] {
        assert!(serde_json::from_value::<Condition>(bad.clone()).is_err(), "{bad}");
    }
}

fn refs(w: &World) -> RuleRefs {
    let mut r = RuleRefs {
        item_types: vec![w.ticket.clone(), w.task.clone(), w.purchase.clone()],
        ..Default::default()
    };
    for u in w.users() {
        r.users.insert(u.id, u);
    }
    r.teams.insert(w.team.id, w.team.clone());
    for p in [&w.project, &w.other_project, &w.archived_project] {
        r.projects.insert(p.id, p.clone());
    }
    for f in w.folders() {
        r.folders.insert(f.id, f);
    }
    r
}

/// A change to a rule under validation.
type Edit<'a> = Box<dyn Fn(&mut Rule) + 'a>;

#[test]
fn validation_names_the_bad_part() {
    let w = World::new();
    let base = || {
        rule(
            1,
            "r",
            json!({"type": "item_created"}),
            json!({"all": []}),
            json!([{"type": "set_priority", "priority": "high"}]),
        )
    };
    let with = |f: &dyn Fn(&mut Rule)| {
        let mut r = base();
        f(&mut r);
        automation::validate_rule(&r, &refs(&w)).map_err(|e| (e.field, e.reason))
    };
    assert_eq!(with(&|_| {}), Ok(()));
    let cases: Vec<(Edit<'_>, &str)> = vec![
        (Box::new(|r| r.name = " ".into()), "name"),
        (
            Box::new(|r| {
                r.conditions = serde_json::from_value(json!({"any": [
                    {"field": "title", "op": "contains", "value": "a"},
                    {"field": "title", "op": "contains", "value": "b"},
                    {"field": "custom.colour", "op": "eq", "value": "red"}]}))
                .unwrap()
            }),
            "conditions.any[2].field",
        ),
        (
            Box::new(|r| {
                r.conditions = serde_json::from_value(
                    json!({"all": [{"not": {"field": "title", "op": "matches", "value": "("}}]}),
                )
                .unwrap()
            }),
            "conditions.all[0].not.value",
        ),
        (
            Box::new(|r| {
                r.conditions =
                    serde_json::from_value(json!({"field": "title", "op": "in", "value": "x"})).unwrap()
            }),
            "conditions.value",
        ),
        (
            Box::new(|r| {
                r.conditions = serde_json::from_value(
                    json!({"business_hours": {"days": ["mon"], "start": "18:00", "end": "09:00"}}),
                )
                .unwrap()
            }),
            "conditions.business_hours.end",
        ),
        (Box::new(|r| r.actions.clear()), "actions"),
        (Box::new(|r| r.actions.push(Action::SetStatus { status: "limbo".into() })), "actions[1].status"),
        (
            Box::new(|r| {
                r.actions.push(
                    serde_json::from_value(
                        json!({"type": "assign", "to": {"strategy": "round_robin", "team": w.ws.id}}),
                    )
                    .unwrap(),
                )
            }),
            "actions[1].to.team",
        ),
        (
            Box::new(|r| {
                r.actions.push(
                    serde_json::from_value(
                        json!({"type": "assign", "to": {"strategy": "user", "user": w.customer_a.id}}),
                    )
                    .unwrap(),
                )
            }),
            "actions[1].to.user",
        ),
        (
            Box::new(|r| {
                r.actions.push(
                    serde_json::from_value(json!({"type": "set_field", "field": "budget", "value": -5}))
                        .unwrap(),
                )
            }),
            "actions[1].value",
        ),
        (
            Box::new(|r| {
                r.actions.push(
                    serde_json::from_value(json!({"type": "move_to", "project": w.archived_project.id}))
                        .unwrap(),
                )
            }),
            "actions[1].project",
        ),
        (
            Box::new(|r| {
                r.actions.push(
                    serde_json::from_value(
                        json!({"type": "move_to", "project": w.project.id, "folder": w.other_folder.id}),
                    )
                    .unwrap(),
                )
            }),
            "actions[1].folder",
        ),
        (
            Box::new(|r| {
                r.actions.push(
                    serde_json::from_value(
                        json!({"type": "reply", "visibility": "public", "template": "{{item.colour}}"}),
                    )
                    .unwrap(),
                )
            }),
            "actions[1].template",
        ),
        (
            Box::new(|r| {
                r.actions.push(serde_json::from_value(json!({"type": "notify", "template": "x"})).unwrap())
            }),
            "actions[1].users",
        ),
        (Box::new(|r| r.trigger = Trigger::Idle { hours: 0 }), "trigger.hours"),
        (Box::new(|r| r.trigger = Trigger::DuePassed { field: "vendor".into() }), "trigger.field"),
        (Box::new(|r| r.trigger = Trigger::InStatus { status: "limbo".into(), hours: 4 }), "trigger.status"),
    ];
    for (i, (f, field)) in cases.iter().enumerate() {
        let got = with(f.as_ref());
        assert_eq!(got.as_ref().map_err(|e| e.0.as_str()), Err(*field), "case {i}: {got:?}");
    }
    // A field condition limited to a type that has the field is fine.
    assert_eq!(
        with(&|r| {
            r.item_types = vec![w.purchase.id];
            r.trigger = Trigger::DueApproaching { field: "needed_by".into(), hours: 24 };
        }),
        Ok(())
    );
}

#[test]
fn timed_rules_fire_once_per_occurrence() {
    let w = World::new();
    let nudge = rule(
        1,
        "Nudge idle tickets",
        json!({"type": "idle", "hours": 1}),
        json!({"field": "kind", "op": "eq", "value": "ticket"}),
        json!([{"type": "set_priority", "priority": "high"}, {"type": "reply", "visibility": "internal", "template": "Idle: {{item.title}}"}]),
    );
    let aw = world_of(&w, vec![nudge.clone()]);
    let cmd = FireTimedRule {
        rule: nudge.id,
        item: w.ticket_b.id,
        occurrence: "idle:1".into(),
        reason: "idle for 1 h".into(),
    };
    let state =
        |runs: Vec<AutomationRun>| TimedState::for_tests(nudge.clone(), w.ticket_b.clone(), runs, aw.clone());
    let Decided { changes, output } = run(&cmd, &w.actor(System), state(vec![])).unwrap();
    assert!(output);
    let runs = stored_runs(&changes);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].reason.as_str(), runs[0].occurrence.as_deref()), ("idle for 1 h", Some("idle:1")));
    assert_eq!(item_after(&changes, w.ticket_b.id).priority, Priority::High);
    assert!(event_names(&changes).contains(&"item.message_posted"));

    // The same occurrence again: nothing.
    let Decided { changes, output } = run(&cmd, &w.actor(System), state(runs)).unwrap();
    assert!(!output);
    assert!(changes.is_empty());
    // Only Tandem fires them.
    assert!(matches!(run(&cmd, &w.actor(Admin), state(vec![])), Err(crate::error::DeskError::Forbidden(_))));
}

#[test]
fn dry_run_says_which_rules_would_fire_and_what_they_would_change() {
    let w = World::new();
    let hw = rule(
        1,
        "Hardware",
        json!({"type": "item_created"}),
        json!({"field": "custom.category", "op": "eq", "value": "Hardware"}),
        json!([{"type": "assign", "to": {"strategy": "team", "team": w.team.id}}, {"type": "set_priority", "priority": "urgent"}]),
    );
    let sw = rule(
        2,
        "Software",
        json!({"type": "item_created"}),
        json!({"field": "custom.category", "op": "eq", "value": "Software"}),
        json!([{"type": "set_priority", "priority": "low"}]),
    );
    let off = Rule {
        enabled: false,
        ..rule(
            3,
            "Off",
            json!({"type": "item_created"}),
            json!({"all": []}),
            json!([{"type": "set_priority", "priority": "low"}]),
        )
    };
    let aw = world_of(&w, vec![]);
    let ids = SequentialIds::default();
    let limits = limits();
    let env = Env { now: now(), ids: &ids, limits: &limits };
    let report = automation::dry_run(&aw, &w.purchase_item, &[hw, sw, off], &env);
    let summary: Vec<_> = report
        .iter()
        .map(|f| (f.rule_name.as_str(), f.outcome, f.reason.as_str(), f.changes.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Hardware",
                RunOutcome::Fired,
                "conditions hold; fires on item_created",
                vec!["assigned to team Service desk".to_string(), "priority = urgent".to_string()]
            ),
            ("Software", RunOutcome::Stopped, "the conditions do not hold", vec![]),
            ("Off", RunOutcome::Stopped, "the rule is disabled", vec![]),
        ]
    );
}

#[test]
fn rule_commands() {
    let w = World::new();
    let create: CreateRule = serde_json::from_value(json!({
        "name": " Hardware ",
        "trigger": {"type": "item_created"},
        "conditions": {"field": "custom.category", "op": "eq", "value": "Hardware"},
        "actions": [{"type": "assign", "to": {"strategy": "round_robin", "team": w.team.id}}],
    }))
    .unwrap();
    let existing = rule(
        7,
        "Old",
        json!({"type": "item_created"}),
        json!({"all": []}),
        json!([{"type": "set_priority", "priority": "low"}]),
    );
    let Decided { changes, output } =
        run(&create, &w.actor(Manager), (vec![existing.clone()], refs(&w))).unwrap();
    assert_eq!((output.name.as_str(), output.position, output.enabled), ("Hardware", 8, true));
    assert_eq!(event_names(&changes), ["record.created"]);
    assert!(matches!(
        run(&create, &w.actor(Agent), (vec![], refs(&w))),
        Err(crate::error::DeskError::Forbidden(_))
    ));

    let reorder = ReorderRules { order: vec![output.id] };
    let Decided { output: ordered, .. } =
        run(&reorder, &w.actor(Admin), vec![existing.clone(), output.clone()]).unwrap();
    let names: Vec<_> = ordered.iter().map(|r| (r.name.as_str(), r.position)).collect();
    assert_eq!(names, [("Hardware", 1), ("Old", 2)]);
    let bad = ReorderRules { order: vec![output.id, output.id] };
    let err = run(&bad, &w.actor(Admin), vec![existing.clone(), output.clone()]).unwrap_err();
    assert!(matches!(err, crate::error::DeskError::Invalid(ref e) if e.field == "order[1]"), "{err:?}");

    let disable = UpdateRule {
        id: existing.id,
        patch: RulePatch { enabled: Some(false), version: Some(1), ..Default::default() },
    };
    let Decided { changes, output } = run(&disable, &w.actor(Admin), (existing.clone(), refs(&w))).unwrap();
    assert!(!output.enabled);
    assert_eq!(output.version, 2);
    assert!(
        matches!(&changes.events[0].data, EventData::RecordUpdated { changes, .. } if changes[0].field == "enabled")
    );
    let stale = UpdateRule {
        id: existing.id,
        patch: RulePatch { enabled: Some(false), version: Some(9), ..Default::default() },
    };
    assert!(matches!(
        run(&stale, &w.actor(Admin), (existing, refs(&w))),
        Err(crate::error::DeskError::Conflict(_))
    ));
}

#[test]
fn category_names_match_their_wire_form() {
    // Conditions compare `category` as text; keep it equal to the serialised form.
    for c in [StatusCategory::New, StatusCategory::InProgress, StatusCategory::Waiting] {
        assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
    }
}
