//! The corpus: one row per message under `tests/corpus/` — what it is classified as, where it
//! routes, how it threads (against a fixed set of stored items and Message-IDs), what its
//! trimmed text says and which attachments are kept.

use std::collections::HashMap;

use tandem_core::mail::{
    InboundAddress, MailClass, MailSettings, MailTransport, ThreadCandidates, ThreadDecision, ThreadVia,
    decide_thread,
};
use tandem_core::*;
use tandem_intake_email::{Envelope, IntakeLimits, ReadContext, ReplyKey, read_message};
use uuid::Uuid;

const LOOP_ID: &str = "test-loop-id";

fn ws() -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(1))
}

fn key() -> ReplyKey {
    ReplyKey::new([42; 32])
}

fn type_id(name: &str) -> ItemTypeId {
    ItemTypeId(Uuid::from_u128(match name {
        "it" => 10,
        "marketing" => 11,
        _ => 12,
    }))
}

fn type_name(id: ItemTypeId) -> &'static str {
    match id.0.as_u128() {
        10 => "it",
        11 => "marketing",
        _ => "general",
    }
}

fn settings() -> MailSettings {
    let mut s = MailSettings::empty(ws());
    s.addresses = vec![
        InboundAddress { address: "it@desk.example".into(), item_type: type_id("it") },
        InboundAddress { address: "marketing@desk.example".into(), item_type: type_id("marketing") },
    ];
    s.default_type = Some(type_id("general"));
    s
}

/// The people and items the workspace already has.
struct World {
    users: HashMap<&'static str, UserId>,
    items: HashMap<i64, Item>,
    message_ids: HashMap<&'static str, i64>,
}

fn world() -> World {
    let users: HashMap<&str, UserId> = [
        ("maria.silva@gmail.example", 1),
        ("jens.muller@clinic-north.example", 2),
        ("lea@hearing-lyon.example", 3),
        ("juergen.weiss@federation.example", 4),
    ]
    .into_iter()
    .map(|(a, n)| (a, UserId(Uuid::from_u128(n))))
    .collect();
    let item = |number: i64, requester: &str| {
        let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        (
            number,
            Item {
                id: ItemId(Uuid::from_u128(1000 + number as u128)),
                workspace_id: ws(),
                number,
                item_type: type_id("it"),
                kind: ItemKind::Ticket,
                title: format!("item {number}"),
                description: String::new(),
                project: None,
                folder: None,
                parent: None,
                requester: users.get(requester).copied(),
                assignees: vec![],
                followers: users.get(requester).copied().into_iter().collect(),
                priority: Priority::Normal,
                status: "triage".into(),
                category: StatusCategory::New,
                custom: Default::default(),
                channel: Channel::Email,
                created_by: ActorRef::System,
                created_at: t,
                updated_at: t,
                done_at: None,
                plan: Default::default(),
                version: 1,
            },
        )
    };
    let items = [
        item(7, "maria.silva@gmail.example"),
        item(12, "lea@hearing-lyon.example"),
        item(15, "juergen.weiss@federation.example"),
        item(42, "jens.muller@clinic-north.example"),
    ]
    .into_iter()
    .collect();
    let message_ids = [
        ("CAFk3m9u2xQ+ZpR8=gmail.new.1@mail.gmail.example", 7),
        ("tandem.0190f1c2a7e84b1d8c3e5f6a7b8c9d0e@desk.example", 7),
        ("5E1F2A3B-4C5D-6E7F-8091-A2B3C4D5E6F7@hearing-lyon.example", 12),
        ("8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b@federation.example", 15),
    ]
    .into_iter()
    .collect();
    World { users, items, message_ids }
}

fn load(file: &str) -> Vec<u8> {
    let path = format!("{}/tests/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Reply tokens depend on the key: the corpus names them as placeholders.
    let text = String::from_utf8_lossy(&raw);
    if !text.contains("+TOKEN") {
        return raw;
    }
    let mut out = text.into_owned();
    for n in [7, 42] {
        out = out.replace(&format!("+TOKEN{n}@"), &format!("+{}@", key().token(ws(), n)));
    }
    out.into_bytes()
}

/// What the test expects of one message.
struct Expect {
    class: MailClass,
    /// `"it"`, `"marketing"`, `"general"` (the default type), or `""` when no route is needed.
    route: &'static str,
    /// `"new"`, `"token #n"`, `"refs #n"`, `"tag #n"`.
    thread: &'static str,
    text_has: &'static [&'static str],
    text_lacks: &'static [&'static str],
    /// (filename, content type)
    files: &'static [(&'static str, &'static str)],
}

const NONE: &[&str] = &[];

fn text_of(mail: &tandem_core::mail::InboundEmail) -> String {
    match &mail.body {
        Some(Body::Text(t)) => t.clone(),
        Some(b @ Body::Html(_)) => {
            tandem_core::conversation::render_body(b).map(|(t, _)| t).unwrap_or_default()
        }
        None => String::new(),
    }
}

fn thread_of(mail: &tandem_core::mail::InboundEmail, w: &World) -> String {
    let sender = mail.from.as_ref().and_then(|f| w.users.get(f.address.as_str()).copied());
    let referenced = mail
        .thread
        .references
        .iter()
        .find_map(|r| w.message_ids.get(r.as_str()))
        .and_then(|n| w.items.get(n));
    let candidates = ThreadCandidates {
        token: mail.thread.token_item.and_then(|n| w.items.get(&n)),
        referenced,
        tagged: mail.thread.subject_number.and_then(|n| w.items.get(&n)),
        sender,
        sender_is_staff: false,
    };
    match decide_thread(&candidates) {
        ThreadDecision::New => "new".into(),
        ThreadDecision::Reply { item, via } => {
            let number = w.items.values().find(|i| i.id == item).map(|i| i.number).unwrap_or(0);
            let via = match via {
                ThreadVia::ReplyToken => "token",
                ThreadVia::References => "refs",
                ThreadVia::SubjectTag => "tag",
            };
            format!("{via} #{number}")
        }
    }
}

fn check(file: &str, recipients: &[&str], e: Expect) {
    let raw = load(file);
    let envelope = Envelope {
        transport: MailTransport::Smtp,
        mail_from: None,
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
    };
    let k = key();
    let cx = ReadContext { workspace: ws(), key: &k, loop_id: LOOP_ID, limits: IntakeLimits::default() };
    let mail = read_message(&raw, &envelope, &cx);
    assert_eq!(mail.problem, None, "{file}: unexpected problem");
    assert_eq!(mail.class, e.class, "{file}: class");
    if !e.route.is_empty() {
        let route = settings()
            .item_type_for(mail.recipients.iter().map(String::as_str))
            .map(type_name)
            .unwrap_or("none");
        assert_eq!(route, e.route, "{file}: route");
    }
    let w = world();
    assert_eq!(thread_of(&mail, &w), e.thread, "{file}: thread (hints {:?})", mail.thread);
    let text = text_of(&mail);
    for needle in e.text_has {
        assert!(text.contains(needle), "{file}: the text lacks {needle:?}:\n{text}");
    }
    for needle in e.text_lacks {
        assert!(!text.contains(needle), "{file}: the text still has {needle:?}:\n{text}");
    }
    let files: Vec<(String, String)> =
        mail.files.iter().map(|f| (f.filename.clone(), f.content_type.clone())).collect();
    let expected: Vec<(String, String)> =
        e.files.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    assert_eq!(files, expected, "{file}: attachments");
    assert!(mail.dedupe_key.starts_with("mid:") || mail.dedupe_key.starts_with("sha256:"));
    assert_eq!(mail.size, raw.len() as u64);
}

fn personal(route: &'static str, thread: &'static str, text_has: &'static [&'static str]) -> Expect {
    Expect { class: MailClass::Personal, route, thread, text_has, text_lacks: NONE, files: &[] }
}

#[test]
fn gmail() {
    check(
        "gmail-new.eml",
        &["it@desk.example"],
        personal("it", "new", &["next to the café", "Thanks,\nMaria"]),
    );
    check(
        "gmail-reply.eml",
        &["it@desk.example"],
        Expect {
            text_lacks: &["wrote:", "replaced the roller"],
            ..personal("it", "refs #7", &["It works again, thank you!"])
        },
    );
    check(
        "gmail-html-only.eml",
        &["it@desk.example"],
        Expect {
            text_lacks: &["wrote", "the printer on floor 2"],
            ..personal("it", "refs #7", &["Jammed again this morning, sorry."])
        },
    );
}

#[test]
fn outlook() {
    check(
        "outlook-new.eml",
        &["it@desk.example"],
        personal(
            "it",
            "new",
            &["last night’s Windows update", "“INACCESSIBLE_BOOT_DEVICE”", "€", "Jens Müller"],
        ),
    );
    check(
        "outlook-reply-token.eml",
        &["it+TOKEN42@desk.example"],
        Expect {
            text_lacks: &["Original Message", "Please bring"],
            ..personal("it", "token #42", &["Thanks, I will bring it to room 4.\n\nJens"])
        },
    );
    check(
        "outlook-winmail.eml",
        &["it@desk.example"],
        Expect {
            files: &[("winmail.dat", "application/ms-tnef")],
            ..personal("it", "new", &["floor plan attached"])
        },
    );
    check(
        "outlook-oof.eml",
        &["it@desk.example"],
        Expect { class: MailClass::AutoReply, ..personal("", "refs #7", NONE) },
    );
    check(
        "outlook-inline-images.eml",
        &["it@desk.example"],
        Expect {
            files: &[("image001.png", "image/png"), ("image002.png", "image/png")],
            ..personal("it", "new", &["Two screenshots of the error:"])
        },
    );
}

#[test]
fn apple_mail_and_thunderbird() {
    check(
        "apple-mail-inline-image.eml",
        &["it@desk.example"],
        Expect {
            files: &[("IMG_0412.png", "image/png")],
            ..personal("it", "new", &["flickers, see the photo"])
        },
    );
    check(
        "apple-mail-reply.eml",
        &["it@desk.example"],
        Expect {
            text_lacks: &["iPhone", "replaced the cable"],
            ..personal("it", "refs #12", &["Merci, ça marche."])
        },
    );
    check(
        "thunderbird-pdf.eml",
        &["it@desk.example"],
        Expect {
            files: &[("Rechnung 2026-03.pdf", "application/pdf")],
            ..personal("it", "new", &["anbei die Rechnung für die Lizenzen", "Grüße"])
        },
    );
    check(
        "thunderbird-reply-de.eml",
        &["it@desk.example"],
        Expect {
            text_lacks: &["schrieb", "Föderation"],
            ..personal("it", "refs #15", &["Danke, die Rechnung ist bezahlt."])
        },
    );
}

#[test]
fn charsets_and_encodings() {
    let subject = |file: &str| {
        let k = key();
        let cx = ReadContext { workspace: ws(), key: &k, loop_id: LOOP_ID, limits: IntakeLimits::default() };
        let envelope = Envelope { transport: MailTransport::Pipe, mail_from: None, recipients: vec![] };
        let m = read_message(&load(file), &envelope, &cx);
        (m.subject.clone(), m.from.and_then(|f| f.name).unwrap_or_default())
    };
    check(
        "iso-8859-1-subject.eml",
        &["it@desk.example"],
        personal("it", "new", &["je n'arrive plus à me connecter"]),
    );
    assert_eq!(
        subject("iso-8859-1-subject.eml"),
        ("Problème d'accès à l'extranet".into(), "Renée Faure".into())
    );
    check(
        "windows-1252-subject.eml",
        &["it@desk.example"],
        personal("it", "new", &["“pump kit”", "120 €", "– can you"]),
    );
    assert_eq!(subject("windows-1252-subject.eml").0, "Quote for “pump kit” – 120 €");
    check(
        "shift-jis.eml",
        &["it@desk.example"],
        personal("it", "new", &["会議室のプロジェクターが映りません。", "田中"]),
    );
    assert_eq!(subject("shift-jis.eml"), ("プロジェクターが映らない".into(), "田中 太郎".into()));
    check("iso-2022-jp.eml", &["it@desk.example"], personal("it", "new", &["VPNに接続できません。"]));
    assert_eq!(subject("iso-2022-jp.eml"), ("VPN接続エラー".into(), "鈴木".into()));
    check("utf8-b-subject.eml", &["it@desk.example"], personal("it", "new", &["the quiz starts at 8 😬"]));
    assert_eq!(subject("utf8-b-subject.eml").0, "Wi-Fi in the bar is down again 😩");
    check(
        "qp-soft-breaks.eml",
        &["it@desk.example"],
        personal("it", "new", &["São João club, including all members"]),
    );
    check(
        "base64-body.eml",
        &["it@desk.example"],
        personal("it", "new", &["Please reset the club portal password for club 4711.\n\nBen"]),
    );
    check("thunderbird-reply-de.eml", &["it@desk.example"], personal("it", "refs #15", &["bezahlt"]));
    assert_eq!(subject("thunderbird-reply-de.eml").0, "Re: [#15] Rechnung für Lizenzen");
}

#[test]
fn structures() {
    check(
        "nested-multipart.eml",
        &["marketing@desk.example"],
        Expect {
            files: &[
                ("image-1.png", "image/png"),
                (
                    "flyer-text.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                ),
            ],
            ..personal("marketing", "new", &["text for the open-day flyer"])
        },
    );
    check(
        "forwarded-rfc822.eml",
        &["it@desk.example"],
        Expect {
            files: &[("Strange invoice.eml", "message/rfc822")],
            ..personal("it", "new", &["looks like phishing"])
        },
    );
    check(
        "attachment-only.eml",
        &["it@desk.example"],
        Expect { files: &[("scan_0001.pdf", "application/pdf")], ..personal("it", "new", NONE) },
    );
    check(
        "calendar-invite.eml",
        &["it@desk.example"],
        Expect {
            files: &[("invite.ics", "text/calendar")],
            ..personal("it", "new", &["invited to the IT review"])
        },
    );
    check(
        "default-route.eml",
        &["desk-inbox@imap.example"],
        personal("general", "new", &["error 500", "Forwarded message"]),
    );
}

#[test]
fn bounces_auto_replies_loops_and_lists() {
    let bounce = |file: &str, recipients: &[&str], status: Option<&str>| {
        check(file, &["it@desk.example"], Expect { class: MailClass::Bounce, ..personal("", "new", NONE) });
        let k = key();
        let cx = ReadContext { workspace: ws(), key: &k, loop_id: LOOP_ID, limits: IntakeLimits::default() };
        let env =
            Envelope { transport: MailTransport::Smtp, mail_from: Some(String::new()), recipients: vec![] };
        let m = read_message(&load(file), &env, &cx);
        assert_eq!(m.bounced, recipients, "{file}");
        assert_eq!(m.bounce_status.as_deref(), status, "{file}");
        assert!(m.files.is_empty(), "{file}: a bounce keeps no attachments");
    };
    bounce("dsn-postfix.eml", &["old.member@club-lisbon.example"], Some("5.1.1"));
    bounce("dsn-exchange.eml", &["jens.old@clinic-north.example"], Some("5.1.10"));
    bounce("exim-bounce.eml", &["otto.old@club-graz.example"], None);
    let auto = |file: &str, thread: &'static str| {
        check(
            file,
            &["it@desk.example"],
            Expect { class: MailClass::AutoReply, ..personal("", thread, NONE) },
        );
    };
    auto("dsn-delayed.eml", "new");
    auto("oof-gmail-vacation.eml", "refs #7");
    auto("oof-abwesenheit.eml", "new");
    auto("autoresponder-header.eml", "new");
    check(
        "own-loop.eml",
        &["it@desk.example"],
        Expect { class: MailClass::Loop, ..personal("", "new", NONE) },
    );
    check(
        "mailing-list.eml",
        &["it@desk.example"],
        Expect { class: MailClass::List, ..personal("it", "new", &["eduroam certificate changes"]) },
    );
    check(
        "newsletter-bulk.eml",
        &["it@desk.example"],
        Expect { class: MailClass::Automated, ..personal("it", "new", &["Save 20% this month."]) },
    );
    check(
        "monitoring-alert.eml",
        &["it@desk.example"],
        Expect {
            class: MailClass::Automated,
            ..personal("it", "new", &["Free disk space is less than 10%"])
        },
    );
}

#[test]
fn threading_and_routing() {
    check(
        "subject-tag-requester.eml",
        &["it@desk.example"],
        personal("it", "tag #42", &["Any news on my laptop?"]),
    );
    check("subject-tag-stranger.eml", &["it@desk.example"], personal("it", "new", &["Please add me"]));
    check(
        "plus-address-route.eml",
        &["marketing+spring-campaign@desk.example"],
        personal("marketing", "new", &["banner sizes"]),
    );
    check(
        "reply-token-cc-ours.eml",
        &["it+TOKEN7@desk.example", "marketing@desk.example"],
        personal("it", "token #7", &["flyers"]),
    );
    check("cc-followers.eml", &["it@desk.example"], personal("it", "new", &["give Pedro"]));
    let k = key();
    let cx = ReadContext { workspace: ws(), key: &k, loop_id: LOOP_ID, limits: IntakeLimits::default() };
    let env = Envelope {
        transport: MailTransport::Smtp,
        mail_from: None,
        recipients: vec!["it@desk.example".into()],
    };
    let m = read_message(&load("cc-followers.eml"), &env, &cx);
    let copied: Vec<&str> = m.copied.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(copied, vec!["it@desk.example", "pedro@club-lisbon.example", "ana@federation.example"]);
    assert_eq!(m.copied[2].name.as_deref(), Some("Ana (federation)"));
    // A token signed for another workspace does not thread.
    let other = ReadContext { workspace: WorkspaceId(Uuid::from_u128(2)), ..cx };
    let m = read_message(&load("outlook-reply-token.eml"), &env, &other);
    assert_eq!(m.thread.token_item, None);
    assert_eq!(m.thread.subject_number, Some(42));
}

#[test]
fn malformed_mail_never_panics_and_says_why() {
    let k = key();
    let cx = ReadContext { workspace: ws(), key: &k, loop_id: LOOP_ID, limits: IntakeLimits::default() };
    let env = Envelope {
        transport: MailTransport::Pipe,
        mail_from: None,
        recipients: vec!["it@desk.example".into()],
    };
    let garbage = read_message(&load("garbage.eml"), &env, &cx);
    assert!(garbage.problem.is_some(), "{:?}", garbage.problem);
    assert!(garbage.dedupe_key.starts_with("sha256:"));
    let empty = read_message(b"", &env, &cx);
    assert!(empty.problem.is_some());
    check(
        "malformed-headers.eml",
        &["it@desk.example"],
        Expect { text_has: &["the scanner in room 3 is offline"], ..personal("it", "new", NONE) },
    );
    check("no-from.eml", &["it@desk.example"], personal("it", "new", &["without a sender"]));
    assert_eq!(read_message(&load("no-from.eml"), &env, &cx).from, None);
    check("no-message-id.eml", &["it@desk.example"], personal("it", "new", &["rejected by the federation"]));
    let m = read_message(&load("no-message-id.eml"), &env, &cx);
    assert_eq!(m.message_id, None);
    assert_eq!(m.dedupe_key, format!("sha256:{}", m.sha256));
    let xss = read_message(&load("html-xss.eml"), &env, &cx);
    let (text, html) = tandem_core::conversation::render_body(xss.body.as_ref().unwrap()).unwrap();
    assert_eq!(text, "Hello desk\nlink");
    for bad in ["script", "onclick", "onerror", "javascript", "iframe", "cookie"] {
        assert!(!html.contains(bad), "{bad} survived: {html}");
    }
    check(
        "control-chars.eml",
        &["it@desk.example"],
        personal("it", "new", &["[31mERROR[0m and a NUL  byte."]),
    );
    // Truncated or cut-off messages still read without panicking.
    for file in ["gmail-new.eml", "nested-multipart.eml", "dsn-postfix.eml", "shift-jis.eml"] {
        let raw = load(file);
        for cut in (0..raw.len()).step_by(37) {
            let m = read_message(&raw[..cut], &env, &cx);
            assert!(m.size == cut as u64);
        }
    }
}

fn big_message(attachment_bytes: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut raw = load("big-attachment.eml.head");
    // Incompressible-looking but deterministic content.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..attachment_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    for chunk in encoded.as_bytes().chunks(76) {
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n--big-47--\r\n");
    raw
}

#[test]
fn twenty_megabyte_attachments_are_kept_or_refused_by_the_limits() {
    let raw = big_message(20 * 1024 * 1024);
    let k = key();
    let env = Envelope {
        transport: MailTransport::Smtp,
        mail_from: None,
        recipients: vec!["marketing@desk.example".into()],
    };
    let cx = ReadContext { workspace: ws(), key: &k, loop_id: LOOP_ID, limits: IntakeLimits::default() };
    let m = read_message(&raw, &env, &cx);
    assert_eq!(m.files.len(), 1);
    assert_eq!((m.files[0].filename.as_str(), m.files[0].bytes.len()), ("campaign.mp4", 20 * 1024 * 1024));
    let small = IntakeLimits { max_attachment_bytes: 10 * 1024 * 1024, ..IntakeLimits::default() };
    let m = read_message(&raw, &env, &ReadContext { limits: small, ..cx });
    assert!(m.files.is_empty());
    let text = text_of(&m);
    assert!(text.contains("The raw campaign video is attached."), "{text}");
    assert!(text.contains("'campaign.mp4' (20.0 MB) was not kept: files may be at most 10.0 MB"), "{text}");
}

#[test]
fn every_corpus_file_has_a_row() {
    let source = include_str!("corpus.rs");
    let dir = format!("{}/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert!(files.iter().filter(|f| f.ends_with(".eml")).count() >= 40);
    for f in files {
        assert!(source.contains(&format!("\"{f}\"")), "{f} has no row in the table");
    }
}
