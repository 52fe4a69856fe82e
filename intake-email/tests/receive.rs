//! Mail through the intake pipeline into `Desk` and a real store, on every backend: items and
//! messages, contacts and followers, threading, closed items, bounces, auto-replies, dedupe,
//! quarantine and rejection.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tandem_core::commands::*;
use tandem_core::mail::{
    InboundAddress, InboundStatus, MailClass, MailOutcome, MailTransport, ReplyToClosed,
};
use tandem_core::store::{RecordQuery, get, list};
use tandem_core::*;
use tandem_intake_email::{Delivery, Envelope, Intake, IntakeLimits, ReplyKey};
use tandem_tests::TestStore;

struct Fx {
    desk: Desk,
    intake: Intake,
    ws: WorkspaceId,
    it: ItemTypeId,
    marketing: ItemTypeId,
    general: ItemTypeId,
    admin: Actor,
    agent: User,
}

async fn setup(store: TestStore) -> Fx {
    let (desk, _clock) = tandem_tests::fixture::desk(store);
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Federation".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let mut types = Vec::new();
    for name in ["IT support", "Marketing request", "General"] {
        let t = CreateItemType {
            name: name.into(),
            kind: ItemKind::Ticket,
            description: String::new(),
            workflow: None,
            fields: vec![],
        };
        types.push(desk.execute(&admin, &t).await.unwrap().id);
    }
    let agent = desk
        .execute(
            &admin,
            &CreateUser {
                name: "Ana Agent".into(),
                email: Some("ana@federation.example".into()),
                handle: Some("ana".into()),
                role: Role::Agent,
            },
        )
        .await
        .unwrap();
    desk.execute(
        &admin,
        &ConfigureMail {
            addresses: Some(vec![
                InboundAddress { address: "it@desk.example".into(), item_type: types[0] },
                InboundAddress { address: "marketing@desk.example".into(), item_type: types[1] },
            ]),
            default_type: Some(Some(types[2])),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let intake = Intake::new(
        desk.clone(),
        ReplyKey::new([9; 32]),
        "loop-1",
        IntakeLimits { max_message_bytes: 512 * 1024, ..IntakeLimits::default() },
    );
    Fx { desk, intake, ws: ws.id, it: types[0], marketing: types[1], general: types[2], admin, agent }
}

fn env(recipients: &[&str]) -> Envelope {
    Envelope {
        transport: MailTransport::Smtp,
        mail_from: Some("sender@example.org".into()),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
    }
}

fn mail(from: &str, to: &str, id: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn deliver(fx: &Fx, raw: Vec<u8>, to: &[&str]) -> Received {
    let results = fx.intake.deliver(raw, &env(to)).await;
    match &results[0].1 {
        Delivery::Stored(r) => r.clone(),
        other => panic!("not stored: {other:?}"),
    }
}

async fn item(fx: &Fx, number: i64) -> Item {
    fx.desk.store().item_by_number(fx.ws, number).await.unwrap().unwrap()
}

async fn user(fx: &Fx, email: &str) -> User {
    fx.desk.store().user_by_email(fx.ws, email).await.unwrap().unwrap_or_else(|| panic!("no user {email}"))
}

/// A new request makes an item of the address's type, requested and followed by a new contact;
/// the raw message is stored under its hash; the same message again changes nothing.
pub async fn new_mail_makes_an_item_once(store: TestStore) {
    let fx = setup(store).await;
    let raw = mail(
        "Maria Silva <Maria.Silva@club-lisbon.example>",
        "it@desk.example",
        "m1@club-lisbon.example",
        "Printer jams",
        "",
        "The printer jams.\r\n\r\nOn Mon, Ana <ana@federation.example> wrote:\r\n> old quote",
    );
    let r = deliver(&fx, raw.clone(), &["IT@desk.example"]).await;
    assert_eq!(
        (r.mail.status, r.mail.class, r.duplicate),
        (InboundStatus::Accepted, MailClass::Personal, false)
    );
    let number = r.item_number.unwrap();
    let created = item(&fx, number).await;
    let maria = user(&fx, "maria.silva@club-lisbon.example").await;
    assert_eq!((maria.role, maria.name.as_str()), (Role::Customer, "Maria Silva"));
    assert_eq!(created.item_type, fx.it);
    assert_eq!(created.title, "Printer jams");
    assert_eq!(created.description, "The printer jams.");
    assert_eq!((created.requester, created.followers.clone()), (Some(maria.id), vec![maria.id]));
    assert_eq!(created.channel, Channel::Email);
    assert_eq!(created.created_by, ActorRef::User(maria.id));
    assert_eq!(r.mail.outcome, Some(MailOutcome::CreatedItem { item: created.id }));
    assert_eq!(fx.desk.store().blob(fx.ws, &r.mail.sha256).await.unwrap().as_deref(), Some(&raw[..]));

    let again = deliver(&fx, raw.clone(), &["it@desk.example"]).await;
    assert!(again.duplicate);
    assert_eq!(again.mail.id, r.mail.id);
    // The same message to two of our addresses, as one more delivery: still one item.
    let both = fx.intake.deliver(raw, &env(&["it@desk.example", "marketing@desk.example"])).await;
    assert!(both.iter().all(|(_, d)| matches!(d, Delivery::Stored(r) if r.duplicate)));
    let all = fx.desk.store().items(fx.ws, &ItemQuery::new(ItemScope::All)).await.unwrap();
    assert_eq!(all.items.len(), 1);
    let events = fx
        .desk
        .store()
        .events(fx.ws, &tandem_core::store::EventQuery { after: 0, item: Some(created.id), limit: 50 })
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.data, EventData::EmailReceived { status: InboundStatus::Accepted, .. }))
    );
}

/// Replies thread by token, by References and by a subject tag from the requester; a stranger's
/// subject tag opens a new item. Copied people follow; our own addresses do not.
pub async fn replies_thread_and_copied_people_follow(store: TestStore) {
    let fx = setup(store).await;
    let first = deliver(
        &fx,
        mail("maria@club.example", "it@desk.example", "a1@club.example", "VPN down", "", "VPN is down"),
        &["it@desk.example"],
    )
    .await;
    let n = first.item_number.unwrap();
    let by_refs = deliver(
        &fx,
        mail(
            "maria@club.example",
            "it@desk.example",
            "a2@club.example",
            "Re: VPN down",
            "In-Reply-To: <a1@club.example>\r\nReferences: <a1@club.example>\r\nCc: Pedro <pedro@club.example>, marketing@desk.example\r\n",
            "Still down.\r\n\r\n> VPN is down",
        ),
        &["it@desk.example"],
    )
    .await;
    assert!(matches!(by_refs.mail.outcome, Some(MailOutcome::PostedMessage { .. })));
    assert_eq!(by_refs.item_number, Some(n));
    let it = item(&fx, n).await;
    let pedro = user(&fx, "pedro@club.example").await;
    assert!(it.followers.contains(&pedro.id));
    assert!(fx.desk.store().user_by_email(fx.ws, "marketing@desk.example").await.unwrap().is_none());
    let messages = fx.desk.store().messages(fx.ws, it.id, false).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, "Still down.");
    assert_eq!(messages[0].visibility, Visibility::Public);
    assert_eq!(messages[0].email.as_ref().unwrap().message_id.as_deref(), Some("a2@club.example"));

    // Our reply token, from someone else entirely (a forwarded notification): threads, and the
    // sender now follows.
    let token_to = fx.intake.key().reply_address("it@desk.example", fx.ws, n);
    let by_token = deliver(
        &fx,
        mail("boss@club.example", &token_to, "a3@club.example", "Re: something else", "", "Please hurry"),
        &[&token_to],
    )
    .await;
    assert_eq!(by_token.item_number, Some(n));
    assert!(item(&fx, n).await.followers.contains(&user(&fx, "boss@club.example").await.id));
    // A token with a bad signature is just an address of ours.
    let forged = token_to.replace(&token_to[token_to.len() - 20..token_to.len() - 16], "0000");
    let by_forged = deliver(
        &fx,
        mail("eve@evil.example", &forged, "a4@evil.example", "hello", "", "let me in"),
        &[&forged],
    )
    .await;
    assert_ne!(by_forged.item_number, Some(n));

    let by_tag = deliver(
        &fx,
        mail(
            "maria@club.example",
            "it@desk.example",
            "a5@club.example",
            &format!("Re: [#{n}] VPN"),
            "",
            "Any news?",
        ),
        &["it@desk.example"],
    )
    .await;
    assert_eq!(by_tag.item_number, Some(n));
    let stranger = deliver(
        &fx,
        mail(
            "eve@evil.example",
            "it@desk.example",
            "a6@evil.example",
            &format!("[#{n}] add me"),
            "",
            "Add me",
        ),
        &["it@desk.example"],
    )
    .await;
    assert_ne!(stranger.item_number, Some(n));
    assert!(matches!(stranger.mail.outcome, Some(MailOutcome::CreatedItem { .. })));

    // Routing: plus-addressing and the default type.
    let plus = deliver(
        &fx,
        mail(
            "clara@clinic.example",
            "marketing+spring@desk.example",
            "b1@clinic.example",
            "Banner",
            "",
            "Sizes?",
        ),
        &["marketing+spring@desk.example"],
    )
    .await;
    assert_eq!(item(&fx, plus.item_number.unwrap()).await.item_type, fx.marketing);
    let _ = fx.general;
    // The workspace may switch copied-follow off.
    fx.desk
        .execute(&fx.admin, &ConfigureMail { copied_follow: Some(false), ..Default::default() })
        .await
        .unwrap();
    let quiet = deliver(
        &fx,
        mail(
            "kim@union.example",
            "it@desk.example",
            "c1@union.example",
            "Wifi",
            "Cc: lee@union.example\r\n",
            "Down",
        ),
        &["it@desk.example"],
    )
    .await;
    assert_eq!(item(&fx, quiet.item_number.unwrap()).await.followers.len(), 1);
    assert!(fx.desk.store().user_by_email(fx.ws, "lee@union.example").await.unwrap().is_none());
}

/// A reply to a closed item reopens it by default, or opens a new linked item when its type
/// says so; a reply to a waiting item brings it back.
pub async fn replies_to_closed_items_follow_the_type_policy(store: TestStore) {
    let fx = setup(store).await;
    let agent = Actor::user(fx.agent.clone(), TokenScope::Write);
    let first = deliver(
        &fx,
        mail("maria@club.example", "it@desk.example", "d1@club.example", "Export", "", "Need export"),
        &["it@desk.example"],
    )
    .await;
    let n = first.item_number.unwrap();
    fx.desk
        .execute(&agent, &TransitionItem { item: ItemRef::Number(n), to: TransitionTo::Close, version: None })
        .await
        .unwrap();
    let reply = |id: &str| {
        mail(
            "maria@club.example",
            "it@desk.example",
            id,
            "Re: Export",
            "In-Reply-To: <d1@club.example>\r\n",
            "One more thing",
        )
    };
    let reopened = deliver(&fx, reply("d2@club.example"), &["it@desk.example"]).await;
    assert_eq!(reopened.item_number, Some(n));
    assert_eq!(item(&fx, n).await.status, "execution");

    fx.desk
        .execute(&agent, &TransitionItem { item: ItemRef::Number(n), to: TransitionTo::Close, version: None })
        .await
        .unwrap();
    fx.desk
        .execute(
            &fx.admin,
            &ConfigureMail {
                reply_to_closed: Some([(fx.it, ReplyToClosed::NewLinkedItem)].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let linked = deliver(&fx, reply("d3@club.example"), &["it@desk.example"]).await;
    let closed = item(&fx, n).await;
    assert_eq!(closed.status, "closed");
    let Some(MailOutcome::CreatedLinkedItem { item: new, closed: old }) = linked.mail.outcome else {
        panic!("{linked:?}")
    };
    assert_eq!(old, closed.id);
    let links = fx.desk.store().links(fx.ws, closed.id).await.unwrap();
    assert!(links.iter().any(|l| l.from == new && l.to == closed.id && l.kind == LinkKind::Relates));
    assert_eq!(get::<Item>(fx.desk.store().as_ref(), fx.ws, new.0).await.unwrap().unwrap().item_type, fx.it);
}

/// Bounces mark the contact's address; auto-replies and our own mail make nothing; what cannot
/// be processed is quarantined with its raw bytes; too large is rejected; unknown recipients are
/// refused.
pub async fn bounces_auto_replies_quarantine_and_rejection(store: TestStore) {
    let fx = setup(store).await;
    deliver(
        &fx,
        mail("Old Member <old.member@club-lisbon.example>", "it@desk.example", "e1@x", "Hi", "", "Hello"),
        &["it@desk.example"],
    )
    .await;
    let corpus = |f: &str| std::fs::read(format!("{}/tests/corpus/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let bounce = deliver(&fx, corpus("dsn-postfix.eml"), &["it@desk.example"]).await;
    assert_eq!(bounce.mail.class, MailClass::Bounce);
    assert_eq!(
        bounce.mail.outcome,
        Some(MailOutcome::Bounce { addresses: vec!["old.member@club-lisbon.example".into()] })
    );
    let bounced = user(&fx, "old.member@club-lisbon.example").await;
    assert_eq!(bounced.email_bounce.as_ref().and_then(|b| b.status.as_deref()), Some("5.1.1"));
    // Mail from the address again clears the mark.
    deliver(
        &fx,
        mail("old.member@club-lisbon.example", "it@desk.example", "e2@x", "Back", "", "I am back"),
        &["it@desk.example"],
    )
    .await;
    assert_eq!(user(&fx, "old.member@club-lisbon.example").await.email_bounce, None);

    let before = fx.desk.store().items(fx.ws, &ItemQuery::new(ItemScope::All)).await.unwrap().items.len();
    for (file, class) in
        [("outlook-oof.eml", MailClass::AutoReply), ("oof-abwesenheit.eml", MailClass::AutoReply)]
    {
        let r = deliver(&fx, corpus(file), &["it@desk.example"]).await;
        assert_eq!(
            (r.mail.class, r.mail.status, r.mail.outcome),
            (class, InboundStatus::Accepted, Some(MailOutcome::Dropped)),
            "{file}"
        );
    }
    let mut own = corpus("own-loop.eml");
    own = String::from_utf8(own).unwrap().replace("test-loop-id", "loop-1").into_bytes();
    let r = deliver(&fx, own, &["it@desk.example"]).await;
    assert_eq!((r.mail.class, r.mail.outcome), (MailClass::Loop, Some(MailOutcome::Dropped)));
    assert_eq!(
        fx.desk.store().items(fx.ws, &ItemQuery::new(ItemScope::All)).await.unwrap().items.len(),
        before
    );

    for (file, why) in [("garbage.eml", "not an email message"), ("no-from.eml", "names no sender")] {
        let raw = corpus(file);
        let r = deliver(&fx, raw.clone(), &["it@desk.example"]).await;
        assert_eq!(r.mail.status, InboundStatus::Quarantined, "{file}");
        assert!(r.mail.reason.as_deref().unwrap_or("").contains(why), "{file}: {:?}", r.mail.reason);
        assert_eq!(
            fx.desk.store().blob(fx.ws, &r.mail.sha256).await.unwrap().as_deref(),
            Some(&raw[..]),
            "{file}"
        );
    }
    // A disabled account's mail is kept, not processed.
    let dis = fx
        .desk
        .execute(
            &fx.admin,
            &CreateUser {
                name: "Gone".into(),
                email: Some("gone@club.example".into()),
                handle: None,
                role: Role::Customer,
            },
        )
        .await
        .unwrap();
    fx.desk
        .execute(
            &fx.admin,
            &UpdateUser { id: dis.id, patch: UserPatch { active: Some(false), ..Default::default() } },
        )
        .await
        .unwrap();
    let r = deliver(
        &fx,
        mail("gone@club.example", "it@desk.example", "g1@x", "Hi", "", "Hello"),
        &["it@desk.example"],
    )
    .await;
    assert_eq!(r.mail.status, InboundStatus::Quarantined);
    assert!(r.mail.reason.unwrap().contains("disabled"));

    let huge = mail("big@club.example", "it@desk.example", "h1@x", "Big", "", &"x".repeat(600 * 1024));
    let results = fx.intake.deliver(huge, &env(&["it@desk.example"])).await;
    assert!(matches!(&results[0].1, Delivery::Rejected(why) if why.contains("limit")), "{results:?}");
    let records: Vec<InboundMail> = list(fx.desk.store().as_ref(), fx.ws, &RecordQuery::all()).await.unwrap();
    let rejected = records.iter().find(|m| m.status == InboundStatus::Rejected).unwrap();
    assert!(!rejected.raw_stored);

    let spoofed = deliver(
        &fx,
        mail("IT@desk.example", "it@desk.example", "s1@x", "Hi", "", "Hello"),
        &["it@desk.example"],
    )
    .await;
    assert_eq!(spoofed.mail.status, InboundStatus::Quarantined);
    assert!(spoofed.mail.reason.unwrap().contains("own addresses"));

    let unknown = fx.intake.deliver(corpus("gmail-new.eml"), &env(&["nobody@desk.example"])).await;
    assert_eq!(unknown[0].1, Delivery::UnknownRecipient);
}

/// Many deliveries of one new sender's message at once: one item, one contact.
pub async fn concurrent_deliveries_make_one_item(store: TestStore) {
    let fx = Arc::new(setup(store).await);
    let raw =
        mail("new.person@club.example", "it@desk.example", "race@club.example", "Race", "", "Same message");
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (fx, raw) = (fx.clone(), raw.clone());
        tasks.push(tokio::spawn(async move { fx.intake.deliver(raw, &env(&["it@desk.example"])).await }));
    }
    for t in tasks {
        let results = t.await.unwrap();
        assert!(results[0].1.is_stored(), "{results:?}");
    }
    // Different messages from the same new sender at once: one contact.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let fx = fx.clone();
        let raw = mail(
            "another.new@club.example",
            "it@desk.example",
            &format!("m{i}@club.example"),
            "Hi",
            "",
            "Body",
        );
        tasks.push(tokio::spawn(async move { fx.intake.deliver(raw, &env(&["it@desk.example"])).await }));
    }
    for t in tasks {
        let results = t.await.unwrap();
        assert!(results[0].1.is_stored(), "{results:?}");
    }
    let items = fx.desk.store().items(fx.ws, &ItemQuery::new(ItemScope::All)).await.unwrap().items;
    assert_eq!(items.len(), 7);
    let users: Vec<User> = list(fx.desk.store().as_ref(), fx.ws, &RecordQuery::all()).await.unwrap();
    assert_eq!(users.iter().filter(|u| u.email.as_deref() == Some("another.new@club.example")).count(), 1);
}

/// Configuring mail: only staff managers; addresses checked and owned by one workspace.
pub async fn configuring_mail_is_checked(store: TestStore) {
    let fx = setup(store).await;
    let agent = Actor::user(fx.agent.clone(), TokenScope::Admin);
    let err = fx
        .desk
        .execute(&agent, &ConfigureMail { copied_follow: Some(false), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, DeskError::Forbidden(_)), "{err:?}");
    for (addresses, field) in [
        (vec![("it+x@desk.example", fx.it)], "addresses[0].address"),
        (vec![("not-an-address", fx.it)], "addresses[0].address"),
        (vec![("a@desk.example", fx.it), ("A@desk.example", fx.it)], "addresses[1].address"),
        (vec![("a@desk.example", ItemTypeId(uuid::Uuid::from_u128(99)))], "addresses[0].item_type"),
    ] {
        let cmd = ConfigureMail {
            addresses: Some(
                addresses
                    .iter()
                    .map(|(a, t)| InboundAddress { address: a.to_string(), item_type: *t })
                    .collect(),
            ),
            ..Default::default()
        };
        match fx.desk.execute(&fx.admin, &cmd).await {
            Err(DeskError::Invalid(e)) => assert_eq!(e.field, field, "{addresses:?}: {e}"),
            other => panic!("{addresses:?}: {other:?}"),
        }
    }
    // Another workspace cannot take our address.
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let other = fx.desk.execute(&boot, &CreateWorkspace { name: "Other".into() }).await.unwrap();
    let other_admin = Actor::server_admin(other.id);
    let types: Vec<ItemType> = list(fx.desk.store().as_ref(), other.id, &RecordQuery::all()).await.unwrap();
    let err = fx
        .desk
        .execute(
            &other_admin,
            &ConfigureMail {
                addresses: Some(vec![InboundAddress {
                    address: "it@desk.example".into(),
                    item_type: types[0].id,
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeskError::Conflict(_)), "{err:?}");
    // The system actor alone records received mail.
    let raw = mail("x@y.example", "it@desk.example", "z@y", "s", "", "b");
    let cmd = ReceiveEmail {
        mail: tandem_core::mail::InboundEmail::unreadable(&raw, MailTransport::Pipe, vec![], "x".into()),
        raw: Some(raw.into()),
    };
    assert!(matches!(fx.desk.execute(&fx.admin, &cmd).await, Err(DeskError::Forbidden(_))));
}

/// New contacts join the organization owning their email's domain: the sender and the people
/// they copied; addresses at other domains (or subdomains) join none.
pub async fn new_contacts_join_their_organization(store: TestStore) {
    let fx = setup(store).await;
    let club = fx
        .desk
        .execute(
            &fx.admin,
            &CreateOrganization { name: "Club Lisbon".into(), domains: vec!["club-lisbon.example".into()] },
        )
        .await
        .unwrap();
    let raw = mail(
        "Maria <maria@club-lisbon.example>",
        "it@desk.example",
        "org1@club-lisbon.example",
        "Membership cards",
        "Cc: Joao <joao@club-lisbon.example>, Lee <lee@youth.club-lisbon.example>\r\n",
        "Our cards did not arrive.",
    );
    deliver(&fx, raw, &["it@desk.example"]).await;
    assert_eq!(user(&fx, "maria@club-lisbon.example").await.organization, Some(club.id));
    assert_eq!(user(&fx, "joao@club-lisbon.example").await.organization, Some(club.id));
    assert_eq!(user(&fx, "lee@youth.club-lisbon.example").await.organization, None);
}

macro_rules! receive_suite {
    ($module:ident, $harness:path) => {
        mod $module {
            crate_cases!($harness;
                new_mail_makes_an_item_once,
                new_contacts_join_their_organization,
                replies_thread_and_copied_people_follow,
                replies_to_closed_items_follow_the_type_policy,
                bounces_auto_replies_quarantine_and_rejection,
                concurrent_deliveries_make_one_item,
                configuring_mail_is_checked,
            );
        }
    };
}

macro_rules! crate_cases {
    ($harness:path; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let Some(harness) = $harness().await else { return };
            super::$case(harness.store.clone()).await;
        }
    )*};
}

receive_suite!(sqlite, tandem_tests::backends::sqlite);
receive_suite!(postgres, tandem_tests::backends::postgres);
