//! Mail notifications: who is mailed about which change, and recording sent mail.

use std::collections::BTreeMap;

use chrono::Duration;

use super::fixture::{Who::*, *};
use crate::commands::*;
use crate::conversation::{EmailMeta, Message, Visibility};
use crate::event::{Event, EventData};
use crate::ids::{MessageId, UserId};
use crate::item::{ActorRef, Assignee, Channel, Item};
use crate::mail::{
    InboundAddress, MAIL_SEND_JOB, MailClass, MailJob, MailSettings, OutboundMail, OutboundStatus,
};
use crate::people::{EmailBounce, Role, User};
use crate::webhook::EventCursor;
use crate::{Record, Write};

fn settings(w: &World) -> MailSettings {
    let mut s = MailSettings::empty(w.ws.id);
    s.addresses = vec![InboundAddress { address: "it@fed.example".into(), item_type: w.ticket.id }];
    s
}

fn event(w: &World, seq: i64, actor: ActorRef, item: &Item, data: EventData) -> Event {
    Event { workspace_id: w.ws.id, seq, at: t0() + Duration::minutes(seq), actor, item: Some(item.id), data }
}

fn message(w: &World, n: u128, item: &Item, author: ActorRef, visibility: Visibility, text: &str) -> Message {
    Message {
        id: MessageId(uuid::Uuid::from_u128(0xF000_5000 + n)),
        workspace_id: w.ws.id,
        item: item.id,
        author,
        visibility,
        channel: Channel::Api,
        text: text.into(),
        html: format!("<p>{text}</p>"),
        attachments: vec![],
        mentions: vec![],
        email: None,
        created_at: t0(),
        version: 1,
    }
}

fn posted(m: &Message) -> EventData {
    EventData::MessagePosted { message: m.id, visibility: m.visibility, channel: m.channel, mentions: vec![] }
}

/// A ticket the customer asked, an agent is assigned to and a manager and a contact follow.
fn ticket(w: &World, contact: &User) -> Item {
    Item {
        assignees: vec![Assignee::User(w.agent.id)],
        followers: vec![w.customer_a.id, w.manager.id, contact.id, w.disabled.id],
        ..w.ticket_a.clone()
    }
}

fn contact() -> User {
    User {
        id: UserId(uuid::Uuid::from_u128(0xF000_4001)),
        name: "Chris Contact".into(),
        email: Some("chris@partner.example".into()),
        role: Role::Customer,
        handle: None,
        ..World::new().customer_a.clone()
    }
}

fn state(w: &World, item: &Item, events: Vec<Event>, messages: Vec<Message>) -> NotifyState {
    let bouncing = User {
        id: UserId(uuid::Uuid::from_u128(0xF000_4002)),
        email: Some("gone@partner.example".into()),
        email_bounce: Some(EmailBounce { at: t0(), status: Some("5.1.1".into()) }),
        ..contact()
    };
    let mut item = item.clone();
    item.followers.push(bouncing.id);
    let users = [
        w.customer_a.clone(),
        w.manager.clone(),
        w.agent.clone(),
        w.disabled.clone(),
        contact(),
        bouncing,
        w.collaborator.clone(),
    ];
    NotifyState {
        cursor: Some(cursor(w, 0, 1)),
        events,
        settings: Some(settings(w)),
        items: BTreeMap::from([(item.id, item)]),
        types: vec![w.ticket.clone()],
        users: users.into_iter().map(|u| (u.id, u)).collect(),
        teams: vec![w.team.clone()],
        messages,
        attachments: vec![],
        mail_classes: BTreeMap::new(),
        collaborator_projects: BTreeMap::new(),
    }
}

fn cursor(w: &World, seq: i64, version: i64) -> EventCursor {
    EventCursor {
        id: EventCursor::id_for(w.ws.id, MAIL_NOTIFICATIONS),
        workspace_id: w.ws.id,
        consumer: MAIL_NOTIFICATIONS.into(),
        seq,
        updated_at: t0(),
        version,
    }
}

fn notify() -> NotifyFollowers {
    NotifyFollowers { batch: 10, max_attempts: 4 }
}

/// (seq, address, template) of every mail enqueued.
fn mails(decided: &crate::Decided<Notified>) -> Vec<(i64, String, String)> {
    decided
        .changes
        .jobs
        .iter()
        .map(|j| {
            assert_eq!((j.kind.as_str(), j.max_attempts, j.run_at), (MAIL_SEND_JOB, 4, now()));
            let job: MailJob = serde_json::from_value(j.payload.clone()).unwrap();
            assert!(job.automatic);
            let seq: i64 = j.idempotency_key.split(':').nth(2).unwrap().parse().unwrap();
            assert_eq!(j.idempotency_key, notification_key(World::new().ws.id, seq, &job.to));
            (seq, job.to, job.template)
        })
        .collect()
}

fn to(seq: i64, address: &str, template: &str) -> (i64, String, String) {
    (seq, address.to_string(), template.to_string())
}

#[test]
fn followers_hear_of_what_they_may_see() {
    let w = World::new();
    let c = contact();
    let item = ticket(&w, &c);
    let agent = ActorRef::User(w.agent.id);
    let reply = message(&w, 1, &item, agent, Visibility::Public, "We replaced the roller.");
    let note = message(&w, 2, &item, agent, Visibility::Internal, "Roller was worn; order spares.");
    let from_customer = message(&w, 3, &item, ActorRef::User(w.customer_a.id), Visibility::Public, "Thanks!");
    let events = vec![
        event(&w, 1, agent, &item, posted(&reply)),
        event(&w, 2, agent, &item, posted(&note)),
        event(
            &w,
            3,
            agent,
            &item,
            EventData::StatusChanged {
                from: "triage".into(),
                to: "waiting".into(),
                from_category: crate::StatusCategory::New,
                to_category: crate::StatusCategory::Waiting,
            },
        ),
        event(
            &w,
            4,
            ActorRef::User(w.manager.id),
            &item,
            EventData::AssigneesChanged { added: vec![Assignee::Team(w.team.id)], removed: vec![] },
        ),
        event(&w, 5, ActorRef::User(w.customer_a.id), &item, posted(&from_customer)),
        event(
            &w,
            6,
            agent,
            &item,
            EventData::AttachmentAdded {
                attachment: crate::ids::AttachmentId(uuid::Uuid::from_u128(1)),
                filename: "invoice.pdf".into(),
                size: 10,
                message: None,
            },
        ),
        // Not mailed: a follower change, and a file posted with a message.
        event(&w, 7, agent, &item, EventData::FollowersChanged { added: vec![w.agent.id], removed: vec![] }),
        event(
            &w,
            8,
            agent,
            &item,
            EventData::AttachmentAdded {
                attachment: crate::ids::AttachmentId(uuid::Uuid::from_u128(2)),
                filename: "photo.jpg".into(),
                size: 10,
                message: Some(reply.id),
            },
        ),
    ];
    let decided =
        run(&notify(), &w.actor(System), state(&w, &item, events, vec![reply, note, from_customer])).unwrap();
    // Never the actor, the disabled agent or the bouncing address; internal notes to staff only.
    assert_eq!(
        mails(&decided),
        [
            to(1, "carla@clinic.example", "message_posted"),
            to(1, "max@fed.example", "message_posted"),
            to(1, "chris@partner.example", "message_posted"),
            to(2, "max@fed.example", "internal_note"),
            to(3, "carla@clinic.example", "status_changed"),
            to(3, "max@fed.example", "status_changed"),
            to(3, "chris@partner.example", "status_changed"),
            to(4, "carla@clinic.example", "assigned"),
            to(4, "chris@partner.example", "assigned"),
            to(4, "ana@fed.example", "assigned"),
            to(5, "max@fed.example", "message_posted"),
            to(5, "chris@partner.example", "message_posted"),
            to(5, "ana@fed.example", "message_posted"),
            to(6, "carla@clinic.example", "attachment_added"),
            to(6, "max@fed.example", "attachment_added"),
            to(6, "chris@partner.example", "attachment_added"),
        ]
    );
    let job = |i: usize| serde_json::from_value::<MailJob>(decided.changes.jobs[i].payload.clone()).unwrap();
    assert_eq!(job(0).vars["body"], "We replaced the roller.");
    assert_eq!(job(0).vars["author"], "Ana Agent");
    assert_eq!(job(0).item, Some(item.id));
    assert_eq!(job(4).vars["status"], "Waiting");
    assert_eq!(job(7).vars["assignee"], "Service desk");
    assert_eq!(job(13).vars["filename"], "invoice.pdf");
    assert_eq!(decided.output, Notified { events: 8, mails: 16, cursor: 8, more: false });
    assert!(decided.changes.events.is_empty(), "notifying writes no event, so it never feeds itself");
    match decided.changes.writes.as_slice() {
        [Write::Put { record: Record::EventCursor(c), expected_version: Some(1) }] => {
            assert_eq!((c.seq, c.version, c.consumer.as_str()), (8, 2, MAIL_NOTIFICATIONS));
            assert_eq!(c.id, EventCursor::id_for(w.ws.id, MAIL_NOTIFICATIONS));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_first_run_mails_only_recent_events() {
    let w = World::new();
    let item = ticket(&w, &contact());
    let agent = ActorRef::User(w.agent.id);
    let old = message(&w, 1, &item, agent, Visibility::Public, "Long ago");
    let new = message(&w, 2, &item, agent, Visibility::Public, "Just now");
    let events = vec![
        event(&w, 1, agent, &item, posted(&old)),
        Event {
            at: now() - Duration::minutes(FIRST_RUN_HORIZON_MINUTES - 1),
            ..event(&w, 2, agent, &item, posted(&new))
        },
    ];
    let mut s = state(&w, &item, events, vec![old, new]);
    s.cursor = None;
    let decided = run(&notify(), &w.actor(System), s).unwrap();
    assert_eq!(decided.output.mails, 3);
    assert!(mails(&decided).iter().all(|(seq, _, _)| *seq == 2));
    match decided.changes.writes.as_slice() {
        [Write::Put { record: Record::EventCursor(c), expected_version: None }] => {
            assert_eq!((c.seq, c.version, c.consumer.as_str()), (2, 1, MAIL_NOTIFICATIONS));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn automatic_mail_is_never_answered_automatically() {
    let w = World::new();
    let c = contact();
    let item = ticket(&w, &c);
    let alert = ActorRef::User(c.id);
    let mut posted_alert = message(&w, 1, &item, alert, Visibility::Public, "CPU at 99%");
    posted_alert.channel = Channel::Email;
    posted_alert.email =
        Some(EmailMeta { message_id: Some("alert-1@monitor.example".into()), ..Default::default() });
    let reopened = Event {
        at: t0() + Duration::minutes(1),
        ..event(
            &w,
            2,
            alert,
            &item,
            EventData::StatusChanged {
                from: "waiting".into(),
                to: "execution".into(),
                from_category: crate::StatusCategory::Waiting,
                to_category: crate::StatusCategory::InProgress,
            },
        )
    };
    let events = vec![event(&w, 1, alert, &item, posted(&posted_alert)), reopened];
    let mut s = state(&w, &item, events, vec![posted_alert]);
    s.mail_classes.insert("alert-1@monitor.example".into(), MailClass::Automated);
    let decided = run(&notify(), &w.actor(System), s.clone()).unwrap();
    // Staff still hear of it; the customer is not mailed because of a robot's mail.
    assert_eq!(
        mails(&decided),
        [
            to(1, "max@fed.example", "message_posted"),
            to(1, "ana@fed.example", "message_posted"),
            to(2, "max@fed.example", "status_changed"),
            to(2, "ana@fed.example", "status_changed"),
        ]
    );
    s.mail_classes.insert("alert-1@monitor.example".into(), MailClass::Personal);
    let decided = run(&notify(), &w.actor(System), s).unwrap();
    assert_eq!(decided.output.mails, 6, "a person's mail notifies customers as well");
}

#[test]
fn a_workspace_without_an_address_moves_on_without_mail() {
    let w = World::new();
    let item = ticket(&w, &contact());
    let reply = message(&w, 1, &item, ActorRef::User(w.agent.id), Visibility::Public, "Hi");
    let mut s =
        state(&w, &item, vec![event(&w, 5, ActorRef::User(w.agent.id), &item, posted(&reply))], vec![reply]);
    s.settings = None;
    s.cursor = Some(cursor(&w, 4, 3));
    let decided = run(&notify(), &w.actor(System), s).unwrap();
    assert!(decided.changes.jobs.is_empty());
    assert_eq!(decided.output, Notified { events: 1, mails: 0, cursor: 5, more: false });
    assert!(matches!(
        decided.changes.writes.as_slice(),
        [Write::Put { record: Record::EventCursor(c), expected_version: Some(3) }] if c.seq == 5 && c.version == 4
    ));
}

#[test]
fn only_tandem_notifies_and_records_mail() {
    let w = World::new();
    for who in [ServerAdmin, Admin, Agent] {
        let err = run(&notify(), &w.actor(who), NotifyState::default()).unwrap_err();
        assert!(matches!(err, crate::DeskError::Forbidden(_)), "{who:?}: {err:?}");
        let record = RecordOutboundMail { mail: sent(&w, "k"), bounce_status: None };
        let err = run(&record, &w.actor(who), (None, None)).unwrap_err();
        assert!(matches!(err, crate::DeskError::Forbidden(_)), "{who:?}: {err:?}");
    }
}

fn sent(w: &World, key: &str) -> OutboundMail {
    OutboundMail {
        id: OutboundMail::id_for(w.ws.id, key),
        workspace_id: w.ws.id,
        key: key.into(),
        recipient: "Carla@Clinic.example".into(),
        item: Some(w.ticket_a.id),
        template: "message_posted".into(),
        message_id: Some("tandem.1@fed.example".into()),
        subject: "[#1] Printer down".into(),
        automatic: true,
        status: OutboundStatus::Sent,
        reason: None,
        at: now(),
        version: 0,
    }
}

#[test]
fn recording_mail_is_idempotent_and_marks_bounces() {
    let w = World::new();
    let record = RecordOutboundMail { mail: sent(&w, "mail:k"), bounce_status: None };
    let decided = run(&record, &w.actor(System), (None, None)).unwrap();
    assert!(!decided.output.existed);
    assert_eq!(decided.output.mail.recipient, "carla@clinic.example");
    assert_eq!(decided.output.mail.version, 1);
    assert_eq!(decided.changes.events.len(), 1);
    assert_eq!(decided.changes.events[0].data.name(), "email.sent");
    assert_eq!(decided.changes.events[0].item, Some(w.ticket_a.id));

    // A job that runs again finds its record and writes nothing.
    let again = run(&record, &w.actor(System), (Some(decided.output.mail.clone()), None)).unwrap();
    assert!(again.output.existed && again.changes.is_empty());

    // A 5.1.1 refusal marks the address bouncing, in the same commit as the record.
    let failed = RecordOutboundMail {
        mail: OutboundMail {
            status: OutboundStatus::Failed,
            reason: Some("550 5.1.1 no such user".into()),
            ..sent(&w, "mail:x")
        },
        bounce_status: Some("5.1.1".into()),
    };
    let decided = run(&failed, &w.actor(System), (None, Some(w.customer_a.clone()))).unwrap();
    let bounced = decided.changes.writes.iter().find_map(|wr| match wr {
        Write::Put { record: Record::User(u), expected_version } => Some((u.clone(), *expected_version)),
        _ => None,
    });
    let (user, expected) = bounced.unwrap();
    assert_eq!(expected, Some(w.customer_a.version));
    assert_eq!(user.email_bounce.unwrap().status.as_deref(), Some("5.1.1"));
    assert_eq!(decided.changes.events.len(), 2);
}

#[test]
fn collaborators_hear_only_of_items_in_their_projects() {
    let w = World::new();
    let agent = ActorRef::User(w.agent.id);
    let run_for = |item: &Item, projects: Vec<crate::ids::ProjectId>| {
        let reply = message(&w, 1, item, agent, Visibility::Public, "Done.");
        let events = vec![event(&w, 1, agent, item, posted(&reply))];
        let mut s = state(&w, item, events, vec![reply]);
        s.collaborator_projects.insert(w.collaborator.id, projects);
        mails(&run(&notify(), &w.actor(System), s).unwrap())
    };
    let unfiled = Item { followers: vec![w.collaborator.id], ..w.ticket_a.clone() };
    let filed = Item { project: Some(w.project.id), ..unfiled.clone() };
    let cole = to(1, "cole@fed.example", "message_posted");
    // A collaborator follows an item they cannot see (unfiled, or in a project they left): no mail.
    assert!(!run_for(&unfiled, vec![w.project.id]).contains(&cole));
    assert!(!run_for(&filed, vec![w.other_project.id]).contains(&cole));
    assert!(run_for(&filed, vec![w.project.id]).contains(&cole));
}
