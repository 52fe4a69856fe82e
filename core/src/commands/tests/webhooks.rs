//! Webhooks and the event relay.

use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::desk::{Command, Env, Limits};
use crate::event::{Event, EventData};
use crate::ids::{SequentialIds, WebhookId};
use crate::item::{ActorRef, Channel, ItemKind};
use crate::webhook::{DELIVER_WEBHOOK, EventCursor, WEBHOOK_RELAY, Webhook};
use crate::{Record, Write};

const SECRET: &str = "whsec_0123456789abcdef";

fn hook(w: &World, n: u128, events: &[&str], active: bool) -> Webhook {
    Webhook {
        id: WebhookId(Uuid::from_u128(0xF000_1000 + n)),
        workspace_id: w.ws.id,
        url: format!("https://hooks.example.org/{n}?token=t{n}"),
        secret: SECRET.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        active,
        rest_hook: false,
        created_at: t0(),
        version: 1,
    }
}

/// How a webhook is named in write summaries (it is not part of the fixture world).
fn named(h: &Webhook) -> String {
    h.id.to_string()
}

fn create(url: &str, events: &[&str]) -> CreateWebhook {
    CreateWebhook {
        url: url.into(),
        secret: SECRET.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        active: true,
        rest_hook: false,
    }
}

#[test]
fn create_webhook() {
    let w = World::new();
    table(
        &w,
        |_, _| (),
        vec![
            (
                Manager,
                create(" https://Hooks.Example.org/in?token=abc#x ", &["item.created", "item.*"]),
                ok(&["+webhook:new1"], &["record.created"]).then(|w, h: &Webhook| {
                    assert_eq!(h.url, "https://hooks.example.org/in?token=abc");
                    assert_eq!(h.events, ["item.created", "item.*"]);
                    assert_eq!(
                        (h.workspace_id, h.active, h.version, h.created_at),
                        (w.ws.id, true, 1, now())
                    );
                }),
            ),
            (
                Admin,
                create("https://hooks.example.org/all", &[]),
                ok(&["+webhook:new1"], &["record.created"]),
            ),
            (Manager, create("ftp://hooks.example.org/", &[]), invalid("url", "http or https")),
            (Manager, create("http://10.0.0.7/hook", &[]), invalid("url", "private")),
            (Manager, create("http://localhost:3000/hook", &[]), invalid("url", "localhost")),
            (
                Manager,
                create("https://hooks.example.org/", &["item.created", "ticket.made"]),
                invalid("events[1]", "not an event name"),
            ),
            (
                Manager,
                CreateWebhook { secret: "short".into(), ..create("https://hooks.example.org/", &[]) },
                invalid("secret", "16 to 256"),
            ),
            (Agent, create("https://hooks.example.org/", &[]), forbidden("agents")),
            (Collaborator, create("https://hooks.example.org/", &[]), forbidden("collaborators")),
            (CustomerA, create("https://hooks.example.org/", &[]), forbidden("customers")),
            (AgentWrite, create("https://hooks.example.org/", &[]), forbidden("scope")),
        ],
    );
}

/// The audit event names the destination by origin only: the path and query may hold the
/// receiver's credentials, and agents read the event log.
#[test]
fn webhook_events_do_not_reveal_urls_or_secrets() {
    let w = World::new();
    let decided = run(&create("https://hooks.example.org/in?token=abc", &[]), &w.actor(Admin), ()).unwrap();
    let text =
        serde_json::to_string(&decided.changes.events.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap();
    assert!(text.contains("https://hooks.example.org"), "{text}");
    assert!(!text.contains("token=abc") && !text.contains(SECRET), "{text}");

    let old = decided.output;
    let patch = WebhookPatch {
        url: Some("https://other.example.org/x?token=def".into()),
        secret: Some("whsec_fedcba9876543210".into()),
        ..Default::default()
    };
    let decided = run(&UpdateWebhook { id: old.id, patch }, &w.actor(Admin), old).unwrap();
    let text =
        serde_json::to_string(&decided.changes.events.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap();
    assert!(text.contains("https://other.example.org") && text.contains("\"secret\""), "{text}");
    assert!(!text.contains("token=") && !text.contains("whsec_"), "{text}");
}

#[test]
fn private_destinations_when_the_operator_allows_them() {
    let w = World::new();
    let ids = SequentialIds::default();
    let limits = Limits { allow_private_webhooks: true, ..limits() };
    let env = Env { now: now(), ids: &ids, limits: &limits };
    let decided = create("http://127.0.0.1:9000/hook", &[]).decide(&w.actor(Admin), (), &env).unwrap();
    assert_eq!(decided.output.url, "http://127.0.0.1:9000/hook");
}

#[test]
fn update_webhook() {
    let w = World::new();
    let h = hook(&w, 1, &[], true);
    let cmd = |patch| UpdateWebhook { id: h.id, patch };
    let at = |v| vec![format!("webhook:{}@{v}", named(&h))];
    let at1: Vec<String> = at(1);
    let at1: Vec<&str> = at1.iter().map(String::as_str).collect();
    table(
        &w,
        |_, _| h.clone(),
        vec![
            (
                Manager,
                cmd(WebhookPatch {
                    active: Some(false),
                    events: Some(vec!["item.*".into()]),
                    ..Default::default()
                }),
                ok(&at1, &["record.updated"]).then(|_, h: &Webhook| {
                    assert_eq!(
                        (h.active, h.events.as_slice(), h.version),
                        (false, &["item.*".to_string()][..], 2)
                    );
                }),
            ),
            (
                Admin,
                cmd(WebhookPatch {
                    url: Some("https://new.example.org/in".into()),
                    version: Some(1),
                    ..Default::default()
                }),
                ok(&at1, &["record.updated"]).then(|_, h| assert_eq!(h.url, "https://new.example.org/in")),
            ),
            (Manager, cmd(WebhookPatch { active: Some(true), ..Default::default() }), unchanged()),
            (
                Manager,
                cmd(WebhookPatch { version: Some(7), ..Default::default() }),
                conflict("version 1, not 7"),
            ),
            (
                Manager,
                cmd(WebhookPatch { url: Some("http://192.168.0.10/".into()), ..Default::default() }),
                invalid("url", "private"),
            ),
            (
                Manager,
                cmd(WebhookPatch { events: Some(vec!["nope".into()]), ..Default::default() }),
                invalid("events[0]", "not an event name"),
            ),
            (
                Manager,
                cmd(WebhookPatch { secret: Some("a b".into()), ..Default::default() }),
                invalid("secret", "16 to 256"),
            ),
            (Agent, cmd(WebhookPatch { active: Some(false), ..Default::default() }), forbidden("agents")),
            (CustomerB, cmd(WebhookPatch::default()), forbidden("customers")),
        ],
    );
}

#[test]
fn delete_webhook() {
    let w = World::new();
    let h = hook(&w, 1, &[], true);
    let deleted = format!("-webhook:{}@1", named(&h));
    table(
        &w,
        |_, _| h.clone(),
        vec![
            (Admin, DeleteWebhook { id: h.id }, ok(&[&deleted], &["record.deleted"])),
            (Agent, DeleteWebhook { id: h.id }, forbidden("agents")),
            (AdminRead, DeleteWebhook { id: h.id }, forbidden("scope")),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// The relay

fn event(w: &World, seq: i64, minutes: i64, data: EventData) -> Event {
    Event {
        workspace_id: w.ws.id,
        seq,
        at: t0() + Duration::minutes(minutes),
        actor: ActorRef::System,
        item: Some(w.ticket_a.id),
        data,
    }
}

fn created(w: &World, seq: i64, minutes: i64) -> Event {
    event(
        w,
        seq,
        minutes,
        EventData::ItemCreated {
            item_type: w.ticket.id,
            kind: ItemKind::Ticket,
            title: "Printer down".into(),
            status: "triage".into(),
            requester: None,
            channel: Channel::Portal,
        },
    )
}

fn updated(w: &World, seq: i64, minutes: i64) -> Event {
    event(w, seq, minutes, EventData::ItemUpdated { changes: vec![] })
}

fn cursor(w: &World, seq: i64, version: i64) -> EventCursor {
    EventCursor {
        id: EventCursor::id_for(w.ws.id, WEBHOOK_RELAY),
        workspace_id: w.ws.id,
        consumer: WEBHOOK_RELAY.into(),
        seq,
        updated_at: t0(),
        version,
    }
}

/// The (job key, delivered event seq) pairs a relay decision enqueues.
fn deliveries(decided: &crate::Decided<Relayed>) -> Vec<(String, i64)> {
    decided
        .changes
        .jobs
        .iter()
        .map(|j| {
            assert_eq!((j.kind.as_str(), j.max_attempts, j.run_at), (DELIVER_WEBHOOK, 5, now()));
            (j.idempotency_key.clone(), j.payload["event"]["seq"].as_i64().unwrap())
        })
        .collect()
}

fn relay() -> RelayEvents {
    RelayEvents { batch: 3, max_attempts: 5 }
}

#[test]
fn relay_enqueues_one_delivery_per_event_and_interested_webhook() {
    let w = World::new();
    let all = hook(&w, 1, &[], true);
    let created_only = hook(&w, 2, &["item.created"], true);
    let paused = hook(&w, 3, &[], false);
    // Created after the first two events happened: it gets only what came later.
    let late = Webhook { created_at: t0() + Duration::minutes(5), ..hook(&w, 4, &["item.*"], true) };
    // Created within the millisecond of event 13, which is stored to the millisecond and so reads
    // as a little earlier: it still gets that event.
    let same_ms = Webhook {
        created_at: t0() + Duration::minutes(6) + Duration::microseconds(400),
        ..hook(&w, 5, &["item.created"], true)
    };
    let state = RelayState {
        cursor: Some(cursor(&w, 10, 4)),
        events: vec![created(&w, 11, 1), updated(&w, 12, 2), created(&w, 13, 6)],
        webhooks: vec![all.clone(), created_only.clone(), paused, late.clone(), same_ms.clone()],
    };
    let decided = run(&relay(), &w.actor(System), state).unwrap();
    let key = |h: &Webhook, seq| (delivery_key(h.id, seq), seq);
    assert_eq!(
        deliveries(&decided),
        [
            key(&all, 11),
            key(&created_only, 11),
            key(&all, 12),
            key(&all, 13),
            key(&created_only, 13),
            key(&late, 13),
            key(&same_ms, 13)
        ]
    );
    assert_eq!(decided.output, Relayed { events: 3, deliveries: 7, cursor: 13, more: true });
    assert!(decided.changes.events.is_empty(), "relaying writes no event, so it never feeds itself");
    let job = &decided.changes.jobs[0];
    assert_eq!(job.payload["webhook"], json!(all.id));
    assert_eq!(job.payload["event"]["data"]["type"], "item_created");
    assert_eq!(job.payload["event"]["item"], json!(w.ticket_a.id));
    match decided.changes.writes.as_slice() {
        [Write::Put { record: Record::EventCursor(c), expected_version: Some(4) }] => {
            assert_eq!((c.seq, c.version, c.updated_at), (13, 5, now()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_first_relay_creates_the_cursor() {
    let w = World::new();
    let state = RelayState { cursor: None, events: vec![created(&w, 1, 0)], webhooks: vec![] };
    let decided = run(&relay(), &w.actor(System), state).unwrap();
    assert_eq!(decided.output, Relayed { events: 1, deliveries: 0, cursor: 1, more: false });
    match decided.changes.writes.as_slice() {
        [Write::Put { record: Record::EventCursor(c), expected_version: None }] => {
            assert_eq!((c.id, c.seq, c.version), (EventCursor::id_for(w.ws.id, WEBHOOK_RELAY), 1, 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn relay_without_new_events_changes_nothing() {
    let w = World::new();
    let state =
        RelayState { cursor: Some(cursor(&w, 7, 2)), events: vec![], webhooks: vec![hook(&w, 1, &[], true)] };
    let decided = run(&relay(), &w.actor(System), state).unwrap();
    assert!(decided.changes.is_empty());
    assert_eq!(decided.output, Relayed { events: 0, deliveries: 0, cursor: 7, more: false });
}

#[test]
fn only_tandem_relays() {
    let w = World::new();
    for who in [ServerAdmin, Admin, Agent] {
        let state = RelayState { cursor: None, events: vec![created(&w, 1, 0)], webhooks: vec![] };
        let err = run(&relay(), &w.actor(who), state).unwrap_err();
        assert!(
            matches!(err, crate::DeskError::Forbidden(ref r) if r.contains("Tandem itself")),
            "{who:?}: {err:?}"
        );
    }
}
