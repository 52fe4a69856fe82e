//! Messages, attachments and notifications.

use std::sync::Arc;

use super::fixture::{Who::*, *};
use crate::access::Actor;
use crate::change::{Record, Write};
use crate::commands::*;
use crate::conversation::{Attachment, Body, Visibility, extract_mentions, render_body, sha256_hex};
use crate::item::{ActorRef, Channel, Item, ItemType};
use crate::people::{Notification, NotificationKind, User};
use crate::workflow::StatusCategory;
use crate::{AttachmentId, MessageId};

/// What `PostMessage::load` reads: the item, its type, and — for staff authors — the users whose
/// handles the body mentions.
fn post_state(w: &World, actor: &Actor, c: &PostMessage) -> (Item, ItemType, Vec<User>) {
    let item = w.item(c.item);
    let t = w.item_type_of(&item);
    let handles = match render_body(&c.body) {
        Ok((text, _)) if actor.is_staff() => extract_mentions(&text),
        _ => Vec::new(),
    };
    let mentioned = handles
        .iter()
        .filter_map(|h| w.users().into_iter().find(|u| u.handle.as_deref() == Some(h.as_str())))
        .collect();
    (item, t, mentioned)
}

fn post(item: &Item, visibility: Visibility, text: &str) -> PostMessage {
    PostMessage::new(item.id, visibility, Body::Text(text.into()))
}

fn file(name: &str, content_type: &str, size: u64) -> NewFile {
    let bytes: Vec<u8> = (0..size).map(|n| (n % 251) as u8).collect();
    NewFile { filename: name.into(), content_type: content_type.into(), bytes: Arc::from(bytes) }
}

fn with_files(mut cmd: PostMessage, files: Vec<NewFile>) -> PostMessage {
    cmd.files = files;
    cmd
}

fn new_id<T: From<uuid::Uuid>>(n: u128) -> T {
    T::from(uuid::Uuid::from_u128(n))
}

#[test]
fn post_message() {
    let w = World::new();
    use Visibility::{Internal, Public};
    let posted = || ok::<Posted>(&["+message:new1", "item:ticket_a@3"], &["item.message_posted@ticket_a"]);
    table_as(
        &w,
        post_state,
        vec![
            (
                Agent,
                post(&w.ticket_a, Public, " We're on it.\n\nHang on "),
                posted().then(|w, p| {
                    let m = &p.message;
                    assert_eq!(
                        (m.id, m.item, m.author),
                        (new_id(1), w.ticket_a.id, ActorRef::User(w.agent.id))
                    );
                    assert_eq!(
                        (m.visibility, m.channel, m.created_at),
                        (Visibility::Public, Channel::Api, now())
                    );
                    assert_eq!(m.text, "We're on it.\n\nHang on");
                    assert_eq!(m.html, "<p>We&#39;re on it.</p><p>Hang on</p>");
                    assert!(m.mentions.is_empty() && m.attachments.is_empty() && p.attachments.is_empty());
                    assert_eq!(
                        (p.item.version, p.item.updated_at, p.item.status.as_str()),
                        (4, now(), "triage")
                    );
                    assert_eq!(p.item.followers, w.ticket_a.followers);
                }),
            ),
            (Agent, post(&w.ticket_a, Internal, "Toner again"), posted()),
            (
                ServerAdmin,
                PostMessage { channel: Channel::System, ..post(&w.ticket_a, Public, "Auto-reply") },
                posted().then(|_, p| {
                    assert_eq!(
                        (p.message.author, p.message.channel),
                        (ActorRef::ServerAdmin, Channel::System)
                    )
                }),
            ),
            // Collaborators work inside their projects only: ticket_a is filed in none.
            (Collaborator, post(&w.ticket_a, Internal, "Noted"), not_found("item #1")),
            (
                Collaborator,
                post(&w.plan, Internal, "Noted"),
                ok(&["+message:new1", "item:plan@2"], &["item.message_posted@plan"]),
            ),
            (Collaborator, post(&w.plan, Public, "Hello"), forbidden("collaborators write internal notes")),
            // Customers write publicly, on their own items only.
            (CustomerA, post(&w.ticket_a, Public, "Still broken"), posted()),
            (CustomerA, post(&w.ticket_a, Internal, "Psst"), forbidden("customers cannot")),
            // Somebody else's request does not exist as far as a customer can tell.
            (CustomerA, post(&w.ticket_b, Public, "Me too"), not_found("item #")),
            (
                CustomerB,
                post(&w.ticket_b, Public, "Any news?"),
                ok(&["+message:new1", "item:ticket_b@1"], &["item.message_posted@ticket_b"]),
            ),
            (AgentRead, post(&w.ticket_a, Public, "Hi"), forbidden("scope")),
            (Disabled, post(&w.ticket_a, Internal, "Hi"), forbidden("disabled")),
            (Agent, post(&w.ticket_a, Public, "  \n "), invalid("body", "empty")),
            (
                Agent,
                PostMessage::new(w.ticket_a.id, Public, Body::Html("<p> </p>".into())),
                invalid("body", "empty"),
            ),
            (
                Agent,
                PostMessage::new(
                    w.ticket_a.id,
                    Public,
                    Body::Html("<p onclick=\"x()\">Fixed <b>now</b></p><script>alert(1)</script>".into()),
                ),
                posted().then(|_, p| {
                    assert_eq!(p.message.text, "Fixed now");
                    assert!(!p.message.html.contains("script") && !p.message.html.contains("onclick"));
                }),
            ),
            // @mentions: active staff other than the author follow and get a notification;
            // customers, disabled users, the author and unknown handles are ignored.
            (
                Agent,
                post(&w.ticket_a, Internal, "@max and @Cole, see @carla's note; cc @dora @ana @nobody"),
                ok(
                    &["+message:new1", "+notification:new2", "+notification:new3", "item:ticket_a@3"],
                    &["item.message_posted@ticket_a", "item.followers_changed@ticket_a"],
                )
                .then(|w, p| {
                    assert_eq!(p.message.mentions, [w.manager.id, w.collaborator.id]);
                    assert_eq!(p.item.followers, [w.customer_a.id, w.manager.id, w.collaborator.id]);
                }),
            ),
            // Someone already following is notified but not added again.
            (
                Agent,
                post(&w.purchase_item, Internal, "@max can you approve?"),
                ok(
                    &["+message:new1", "+notification:new2", "item:purchase_item@1"],
                    &["item.message_posted@purchase_item"],
                ),
            ),
            (
                Collaborator,
                post(&w.plan, Internal, "@ana done?"),
                ok(&["+message:new1", "+notification:new2", "item:plan@2"], &["item.message_posted@plan"]),
            ),
            // Customers cannot pull staff into a conversation.
            (
                CustomerA,
                post(&w.ticket_a, Public, "@ana @max help"),
                posted().then(|_, p| assert!(p.message.mentions.is_empty())),
            ),
        ],
    );
}

/// Every mention produces one unread notification for the mentioned user about the message.
#[test]
fn mentions_notify() {
    let w = World::new();
    let cmd = post(&w.ticket_a, Visibility::Internal, "@max @cole look");
    let actor = w.actor(Agent);
    let decided = run(&cmd, &actor, post_state(&w, &actor, &cmd)).unwrap();
    let notified: Vec<Notification> = decided
        .changes
        .writes
        .iter()
        .filter_map(|write| match write {
            Write::Put { record: Record::Notification(n), .. } => Some(n.clone()),
            _ => None,
        })
        .collect();
    let message = decided.output.message.id;
    assert_eq!(notified.iter().map(|n| n.user).collect::<Vec<_>>(), [w.manager.id, w.collaborator.id]);
    for n in notified {
        assert_eq!(
            (n.item, n.kind, n.read_at, n.created_at),
            (w.ticket_a.id, NotificationKind::Mention { message }, None, now())
        );
    }
    assert_eq!(
        decided.changes.events[1].data,
        crate::EventData::FollowersChanged { added: vec![w.manager.id, w.collaborator.id], removed: vec![] }
    );
}

/// The requester's public reply to a waiting or resolved item moves it to the workflow's
/// `customer_reply` status; other replies and other states leave the status alone.
#[test]
fn customer_replies_reopen() {
    use Visibility::{Internal, Public};
    let reopened = || {
        ok::<Posted>(
            &["+message:new1", "item:ticket_a@3"],
            &["item.message_posted@ticket_a", "item.status_changed@ticket_a"],
        )
        .then(|_, p| {
            assert_eq!((p.item.status.as_str(), p.item.category), ("execution", StatusCategory::InProgress));
            assert_eq!(p.item.done_at, None);
        })
    };
    let stays = || ok::<Posted>(&["+message:new1", "item:ticket_a@3"], &["item.message_posted@ticket_a"]);
    let in_status = |status: &str| {
        let mut w = World::new();
        let ticket = w.ticket.clone();
        set_status(&mut w.ticket_a, &ticket, status);
        w
    };

    let w = in_status("waiting");
    table_as(
        &w,
        post_state,
        vec![
            (CustomerA, post(&w.ticket_a, Public, "Any news?"), reopened()),
            (Agent, post(&w.ticket_a, Public, "Waiting on you"), stays()),
            (Agent, post(&w.ticket_a, Internal, "Still waiting"), stays()),
        ],
    );
    let w = in_status("delivery");
    table_as(&w, post_state, vec![(CustomerA, post(&w.ticket_a, Public, "It broke again"), reopened())]);
    for status in ["triage", "execution", "closed"] {
        let w = in_status(status);
        table_as(
            &w,
            post_state,
            vec![(
                CustomerA,
                post(&w.ticket_a, Public, "Hello?"),
                stays().then(|w, p| assert_eq!(p.item.status, w.ticket_a.status)),
            )],
        );
    }
    // Staff who requested an item reopen it too; a follower who is not the requester does not.
    let mut w = in_status("waiting");
    w.ticket_a.requester = Some(w.agent.id);
    table_as(&w, post_state, vec![(Agent, post(&w.ticket_a, Public, "Back to it"), reopened())]);
    let mut w = in_status("waiting");
    w.ticket_a.followers.push(w.customer_b.id);
    table_as(&w, post_state, vec![(CustomerB, post(&w.ticket_a, Public, "Me too"), stays())]);
    // A workflow whose customer_reply status is the current one has nothing to move.
    let mut w = in_status("waiting");
    w.ticket.workflow.defaults.customer_reply = "waiting".into();
    table_as(&w, post_state, vec![(CustomerA, post(&w.ticket_a, Public, "Hello?"), stays())]);
}

#[test]
fn post_message_with_files() {
    let w = World::new();
    use Visibility::Public;
    let one_file = || {
        ok::<Posted>(
            &["blob", "+attachment:new2", "+message:new1", "item:ticket_a@3"],
            &["item.attachment_added@ticket_a", "item.message_posted@ticket_a"],
        )
    };
    table_as(
        &w,
        post_state,
        vec![
            (
                Agent,
                with_files(
                    post(&w.ticket_a, Public, "Log attached"),
                    vec![file("../../etc/passwd", "Text/Plain; charset=utf-8", 5)],
                ),
                one_file().then(|w, p| {
                    let a = &p.attachments[0];
                    assert_eq!((a.id, a.item, a.message), (new_id(2), w.ticket_a.id, Some(p.message.id)));
                    assert_eq!(
                        (a.filename.as_str(), a.content_type.as_str(), a.size),
                        ("passwd", "text/plain", 5)
                    );
                    assert_eq!(a.sha256, sha256_hex(&[0, 1, 2, 3, 4]));
                    assert_eq!((a.uploaded_by, a.version), (ActorRef::User(w.agent.id), 1));
                    assert_eq!(p.message.attachments, [a.id]);
                }),
            ),
            (
                Agent,
                with_files(post(&w.ticket_a, Public, "Big"), vec![file("max.bin", "", LIMIT)]),
                one_file(),
            ),
            (
                Agent,
                with_files(post(&w.ticket_a, Public, "Too big"), vec![file("huge.bin", "", LIMIT + 1)]),
                too_large(LIMIT + 1),
            ),
            (
                Agent,
                with_files(
                    post(&w.ticket_a, Public, "Two"),
                    vec![file("a.txt", "text/plain", 1), file("b.txt", "text/plain", 2)],
                ),
                ok(
                    &[
                        "blob",
                        "+attachment:new2",
                        "blob",
                        "+attachment:new3",
                        "+message:new1",
                        "item:ticket_a@3",
                    ],
                    &[
                        "item.attachment_added@ticket_a",
                        "item.attachment_added@ticket_a",
                        "item.message_posted@ticket_a",
                    ],
                ),
            ),
            (
                Agent,
                with_files(
                    post(&w.ticket_a, Public, "Two"),
                    vec![file("a.txt", "text/plain", 1), file("..", "text/plain", 1)],
                ),
                invalid("files[1].filename", "must name a file"),
            ),
            (
                Agent,
                with_files(post(&w.ticket_a, Public, "One"), vec![file(" / ", "", 1)]),
                invalid("filename", "must name a file"),
            ),
            (
                CustomerA,
                with_files(post(&w.ticket_a, Public, "Photo"), vec![file("photo.jpg", "image/jpeg", 3)]),
                one_file(),
            ),
            (
                CustomerB,
                with_files(post(&w.ticket_a, Public, "Photo"), vec![file("photo.jpg", "image/jpeg", 3)]),
                not_found("item #"),
            ),
        ],
    );
}

#[test]
fn add_attachment() {
    let w = World::new();
    let attach = |item: &Item, file| AddAttachment { item: item.id.into(), file };
    let added = || {
        ok::<Attachment>(
            &["blob", "+attachment:new1", "item:ticket_a@3"],
            &["item.attachment_added@ticket_a"],
        )
    };
    table(
        &w,
        |w, c: &AddAttachment| w.item(c.item),
        vec![
            (
                Agent,
                attach(&w.ticket_a, file("report.pdf", "application/pdf", 10)),
                added().then(|w, a| {
                    assert_eq!(
                        (a.id, a.item, a.message),
                        (new_id::<AttachmentId>(1), w.ticket_a.id, None::<MessageId>)
                    );
                    assert_eq!(
                        (a.filename.as_str(), a.content_type.as_str(), a.size),
                        ("report.pdf", "application/pdf", 10)
                    );
                    assert_eq!((a.created_at, a.uploaded_by), (now(), ActorRef::User(w.agent.id)));
                }),
            ),
            (
                Agent,
                attach(&w.ticket_a, file("C:\\Users\\ana\\a<b>.txt", "garbage", 1)),
                added().then(|_, a| {
                    assert_eq!(
                        (a.filename.as_str(), a.content_type.as_str()),
                        ("ab.txt", "application/octet-stream")
                    );
                }),
            ),
            (Agent, attach(&w.ticket_a, file("full.bin", "", LIMIT)), added()),
            (Agent, attach(&w.ticket_a, file("over.bin", "", LIMIT + 1)), too_large(LIMIT + 1)),
            (Agent, attach(&w.ticket_a, file("...", "", 1)), invalid("filename", "must name a file")),
            (Collaborator, attach(&w.ticket_a, file("notes.txt", "text/plain", 1)), not_found("item #1")),
            (CustomerA, attach(&w.ticket_a, file("photo.jpg", "image/jpeg", 1)), added()),
            (CustomerB, attach(&w.ticket_a, file("photo.jpg", "image/jpeg", 1)), not_found("item #")),
            (AgentRead, attach(&w.ticket_a, file("a.txt", "text/plain", 1)), forbidden("scope")),
        ],
    );
}

#[test]
fn mark_notification_read() {
    let w = World::new();
    let cmd = MarkNotificationRead { id: w.notification.id };
    table(
        &w,
        |w, _: &MarkNotificationRead| w.notification.clone(),
        vec![
            (
                Agent,
                cmd.clone(),
                ok(&["notification:notification@1"], &[])
                    .then(|_, n: &Notification| assert_eq!((n.read_at, n.version), (Some(now()), 2))),
            ),
            (AgentWrite, cmd.clone(), ok(&["notification:notification@1"], &[])),
            (Manager, cmd.clone(), not_found("notification")),
            (Admin, cmd.clone(), not_found("notification")),
            (ServerAdmin, cmd.clone(), not_found("notification")),
        ],
    );
    let mut w = World::new();
    w.notification.read_at = Some(t0());
    table(
        &w,
        |w, _: &MarkNotificationRead| w.notification.clone(),
        vec![(Agent, cmd, unchanged().then(|_, n: &Notification| assert_eq!(n.read_at, Some(t0()))))],
    );
}
