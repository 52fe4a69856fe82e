//! The email transports against real peers on loopback: lettre and a raw LMTP client delivering
//! to our listener, Python's aiosmtpd capturing what our sender sends (STARTTLS and implicit
//! TLS), and Dovecot as the IMAP server the poller reads (TLS, MOVE, keywords, IDLE).
//!
//! The peers are started by the tests from temporary configurations on free ports. Without
//! `dovecot`, `openssl` or Python's aiosmtpd a test is skipped with a printed reason — except
//! under `CI=true`, where that is a failure (`.ci/run` installs them).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mail_parser::MessageParser;
use tandem_core::commands::{ConfigureMail, CreateWorkspace};
use tandem_core::mail::{InboundAddress, InboundStatus, MailClass};
use tandem_core::store::{RecordQuery, list};
use tandem_core::*;
use tandem_intake_email::imap::{ImapConfig, Poller, Processed};
use tandem_intake_email::outbound::{self, OutboundMail};
use tandem_intake_email::send::{Relay, Security, Sender};
use tandem_intake_email::smtp::{ListenerConfig, Protocol};
use tandem_intake_email::{Intake, IntakeLimits, ReplyKey};
use tandem_tests::peers::{Certs, Peer, certificates};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Skips (or fails under CI) when a peer program is missing.
fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not installed; under CI=true that is a failure (.ci/run installs it)");
    }
    eprintln!("skipping: {what} is not installed");
    false
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` until it holds or the deadline passes.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

/// A desk on a real SQLite file with one workspace receiving at it@ and marketing@.
async fn desk_with_mail(dir: &Path) -> (Intake, WorkspaceId) {
    let store = tandem_storage_sqlite::SqliteStore::open(dir.join("tandem.db"), Default::default()).unwrap();
    let (desk, _) = tandem_tests::fixture::desk(std::sync::Arc::new(store));
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Desk".into() }).await.unwrap();
    let admin = Actor::server_admin(ws.id);
    let types: Vec<ItemType> = list(desk.store().as_ref(), ws.id, &RecordQuery::all()).await.unwrap();
    desk.execute(
        &admin,
        &ConfigureMail {
            addresses: Some(vec![
                InboundAddress { address: "it@desk.example".into(), item_type: types[0].id },
                InboundAddress { address: "marketing@desk.example".into(), item_type: types[1].id },
            ]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let limits = IntakeLimits { max_message_bytes: 200_000, ..IntakeLimits::default() };
    (Intake::new(desk, ReplyKey::new([3; 32]), "peers-loop", limits), ws.id)
}

async fn items(intake: &Intake, ws: WorkspaceId) -> Vec<Item> {
    let mut q = ItemQuery::new(ItemScope::All);
    q.limit = 1000;
    intake.desk().store().items(ws, &q).await.unwrap().items
}

async fn start_listener(intake: Intake, protocol: Protocol) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ListenerConfig {
        protocol,
        hostname: "desk.example".into(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    tokio::spawn(tandem_intake_email::smtp::serve(listener, intake, config, async move {
        let _ = stopped.await;
    }));
    (port, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lettre_delivers_to_the_smtp_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (intake, ws) = desk_with_mail(dir.path()).await;
    let (port, _stop) = start_listener(intake.clone(), Protocol::Smtp).await;
    let client = Sender::new(&Relay {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        credentials: None,
        root_certificate_pem: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let raw = b"From: Maria <maria@club.example>\r\nTo: it@desk.example\r\nSubject: Printer\r\nMessage-ID: <p1@club.example>\r\n\r\nThe printer jams.\r\n.dot line\r\n";
    client.send("maria@club.example", &["it@desk.example".into()], raw).await.unwrap();
    let made = items(&intake, ws).await;
    assert_eq!(made.len(), 1, "the reply came after the item was stored");
    assert_eq!(made[0].title, "Printer");
    assert_eq!(made[0].description, "The printer jams.\n.dot line");
    // Unknown recipients are refused at RCPT, so the sender's MTA bounces them.
    let err = client.send("maria@club.example", &["nobody@desk.example".into()], raw).await.unwrap_err();
    assert!(!err.retryable && err.message.contains("550"), "{err:?}");
    // Too large for the announced SIZE: refused after DATA with 552, nothing stored.
    let big = [&raw[..], &vec![b'x'; 300_000][..]].concat();
    let err = client.send("maria@club.example", &["it@desk.example".into()], &big).await.unwrap_err();
    assert!(err.message.contains("552"), "{err:?}");
    assert_eq!(items(&intake, ws).await.len(), 1);
}

async fn lmtp_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> String {
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lmtp_answers_each_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let (intake, ws) = desk_with_mail(dir.path()).await;
    let (port, _stop) = start_listener(intake.clone(), Protocol::Lmtp).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    assert!(lmtp_line(&mut read).await.starts_with("220 "));
    // Pipelined, as MTAs do.
    write
        .write_all(
            b"LHLO mx.example\r\nMAIL FROM:<maria@club.example>\r\nRCPT TO:<it@desk.example>\r\nRCPT TO:<ghost@desk.example>\r\nRCPT TO:<marketing@desk.example>\r\nDATA\r\n",
        )
        .await
        .unwrap();
    let mut replies = Vec::new();
    while replies.len() < 10 {
        let l = lmtp_line(&mut read).await;
        let done = l.starts_with("354");
        replies.push(l);
        if done {
            break;
        }
    }
    let codes: Vec<&str> = replies.iter().map(|l| &l[..4]).collect();
    assert_eq!(codes, vec!["250-", "250-", "250-", "250-", "250 ", "250 ", "250 ", "550 ", "250 ", "354 "]);
    write
        .write_all(b"From: maria@club.example\r\nTo: it@desk.example, marketing@desk.example\r\nSubject: Both\r\nMessage-ID: <l1@club.example>\r\n\r\nTo both desks\r\n.\r\n")
        .await
        .unwrap();
    let first = lmtp_line(&mut read).await;
    let second = lmtp_line(&mut read).await;
    assert!(first.starts_with("250 ") && second.starts_with("250 "), "{first}{second}");
    write.write_all(b"QUIT\r\n").await.unwrap();
    assert!(lmtp_line(&mut read).await.starts_with("221"));
    // Both recipients are in one workspace: one message, one item.
    assert_eq!(items(&intake, ws).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_client_is_disconnected_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (intake, _) = desk_with_mail(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ListenerConfig { timeout: Duration::from_millis(300), ..Default::default() };
    tokio::spawn(tandem_intake_email::smtp::serve(listener, intake, config, std::future::pending()));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut read = BufReader::new(stream);
    assert!(lmtp_line(&mut read).await.starts_with("220 "));
    // Say nothing: the server gives up on its own and says so.
    let bye = tokio::time::timeout(Duration::from_secs(10), lmtp_line(&mut read)).await.unwrap();
    assert!(bye.starts_with("421 "), "{bye}");
    assert_eq!(lmtp_line(&mut read).await, "", "and closes the connection");
}

fn aiosmtpd_available() -> bool {
    runs("python3", &["-c", "import aiosmtpd"])
}

/// aiosmtpd writing what it receives into a maildir.
fn start_aiosmtpd(dir: &Path, port: u16, certs: &Certs, implicit_tls: bool) -> Peer {
    let maildir = dir.join("maildir");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"]);
    let (cert, key) = (certs.cert.to_str().unwrap(), certs.key.to_str().unwrap());
    if implicit_tls {
        cmd.args(["--smtpscert", cert, "--smtpskey", key]);
    } else {
        cmd.args(["--tlscert", cert, "--tlskey", key]);
    }
    cmd.arg(maildir.to_str().unwrap());
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::File::create(dir.join("aiosmtpd.log")).unwrap();
    Peer(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

fn maildir_messages(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join("maildir").join(sub)) {
            for e in entries.flatten() {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbound_mail_reaches_a_real_smtp_server_and_threads_back() {
    if !require("openssl", runs("openssl", &["version"]))
        || !require("Python's aiosmtpd", aiosmtpd_available())
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(dir.path());
    let (intake, ws) = desk_with_mail(dir.path()).await;
    let key = intake.key().clone();
    let reply_to = key.reply_address("it@desk.example", ws, 1);
    for (security, implicit) in [(Security::StartTls, false), (Security::Tls, true)] {
        let sub = dir.path().join(if implicit { "tls" } else { "starttls" });
        std::fs::create_dir_all(&sub).unwrap();
        let port = free_port();
        let _server = start_aiosmtpd(&sub, port, &certs, implicit);
        eventually("aiosmtpd to listen", Duration::from_secs(20), || port_open(port)).await;
        let sender = Sender::new(&Relay {
            host: "localhost".into(),
            port,
            security,
            credentials: None,
            root_certificate_pem: Some(std::fs::read(&certs.ca).unwrap()),
            timeout: Duration::from_secs(10),
        })
        .unwrap();
        let mail = OutboundMail {
            from_name: Some("IT desk".into()),
            from_address: "it@desk.example".into(),
            to_name: Some("Maria Silva".into()),
            to_address: "maria@club.example".into(),
            reply_to: Some(reply_to.clone()),
            subject: outbound::tagged_subject("Printer jams", 1),
            text: "Ana wrote:\n\nWe replaced the roller.".into(),
            html: "<p><b>Ana</b> wrote:</p><p>We replaced the roller.</p>".into(),
            message_id: outbound::message_id(uuid::Uuid::from_u128(77), "desk.example"),
            references: vec!["p1@club.example".into()],
            loop_id: "peers-loop".into(),
            date: std::time::SystemTime::now(),
            attachments: Vec::new(),
        };
        let raw = outbound::build(&mail).unwrap();
        sender.send("bounces@desk.example", &["maria@club.example".into()], &raw).await.unwrap();
        eventually("the captured mail", Duration::from_secs(10), || async {
            !maildir_messages(&sub).is_empty()
        })
        .await;
        let captured = maildir_messages(&sub).remove(0);
        let parsed = MessageParser::default().parse(&captured).unwrap();
        assert_eq!(parsed.subject(), Some("[#1] Printer jams"));
        assert_eq!(parsed.message_id(), Some(mail.message_id.as_str()));
        assert_eq!(parsed.header_raw("Auto-Submitted").map(str::trim), Some("auto-generated"));
        assert_eq!(parsed.header_raw("X-Auto-Response-Suppress").map(str::trim), Some("All"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("p1@club.example"));
        let reply_addr =
            parsed.reply_to().and_then(|r| r.first()).and_then(|a| a.address()).unwrap().to_string();
        assert_eq!(key.verify_address(ws, &reply_addr), Some(1));
        assert_eq!(parsed.body_text(0).unwrap().trim(), "Ana wrote:\n\nWe replaced the roller.");
        assert!(parsed.body_html(0).unwrap().contains("<b>Ana</b>"));
        // Our own mail coming back (a forwarding loop) is recognised and dropped.
        let results = intake
            .deliver(
                captured.clone(),
                &tandem_intake_email::Envelope {
                    transport: mail::MailTransport::Smtp,
                    mail_from: None,
                    recipients: vec!["it@desk.example".into()],
                },
            )
            .await;
        let tandem_intake_email::Delivery::Stored(r) = &results[0].1 else { panic!("{results:?}") };
        assert_eq!(r.mail.class, MailClass::Loop);
    }
    // A relay that refuses TLS verification fails permanently, not silently in plain text.
    let port = free_port();
    let sub = dir.path().join("untrusted");
    let _server = start_aiosmtpd(&sub, port, &certs, false);
    eventually("aiosmtpd to listen", Duration::from_secs(20), || port_open(port)).await;
    let untrusting = Sender::new(&Relay {
        host: "localhost".into(),
        port,
        security: Security::StartTls,
        credentials: None,
        root_certificate_pem: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    assert!(
        untrusting
            .send("a@desk.example", &["b@club.example".into()], b"Subject: x\r\n\r\nx\r\n")
            .await
            .is_err()
    );
    assert!(maildir_messages(&sub).is_empty());
}

/// Dovecot on a free port with TLS, one user, maildirs under `dir`.
fn start_dovecot(dir: &Path, port: u16, certs: &Certs) -> Peer {
    use std::os::unix::fs::PermissionsExt;
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "dovecot"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    for sub in ["run", "state", "mail"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    // Dovecot's mail processes run as the dovecot user: they must reach and own the maildirs.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(dir.join("mail"), uid.parse().ok(), gid.parse().ok()).unwrap();
    std::fs::write(dir.join("passwd"), "desk:{PLAIN}s3cret\n").unwrap();
    let d = dir.display();
    let conf = format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\ninstance_name = tandem-test-{port}\nlisten = 127.0.0.1\n\
         protocols = imap\nssl = required\nssl_cert = <{cert}\nssl_key = <{key}\nssl_min_protocol = TLSv1.2\n\
         log_path = {d}/dovecot.log\nauth_mechanisms = plain login\nmail_location = maildir:{d}/mail/%u\n\
         first_valid_uid = 1\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/mail/%u\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
         service anvil {{\n  chroot =\n}}\n",
        cert = certs.cert.display(),
        key = certs.key.display(),
    );
    let path = dir.join("dovecot.conf");
    std::fs::write(&path, conf).unwrap();
    Peer(
        Command::new("dovecot")
            .args(["-F", "-c", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A test-side IMAP client (async-imap over rustls) that puts messages into the mailbox.
async fn append(port: u16, ca: &Path, mailbox: &str, messages: &[Vec<u8>]) -> Vec<String> {
    let poller = Poller::new(intake_for_client(), imap_config(port, ca, "INBOX", Processed::Flag)).unwrap();
    let mut session = match poller.connect().await {
        Ok(s) => s,
        Err(e) => {
            std::thread::sleep(Duration::from_secs(1));
            let log =
                std::fs::read_to_string(ca.parent().unwrap().join("dovecot/dovecot.log")).unwrap_or_default();
            panic!("{e}; Dovecot's log:\n{log}")
        }
    };
    if mailbox != "INBOX" {
        // Already there on later calls.
        let _ = session.create(mailbox).await;
    }
    for m in messages {
        session.append(mailbox, None, None, m).await.unwrap();
    }
    let names: Vec<_> = session.list(None, Some("*")).await.unwrap().try_collect().await.unwrap();
    let _ = session.logout().await;
    names.iter().map(|n| n.name().to_string()).collect()
}

/// The poller type doubles as the test's IMAP client; its intake is never used for that.
fn intake_for_client() -> Intake {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let store = tandem_storage_sqlite::SqliteStore::open(
        dir.path().join(format!("{}.db", uuid::Uuid::now_v7())),
        Default::default(),
    )
    .unwrap();
    let (desk, _) = tandem_tests::fixture::desk(std::sync::Arc::new(store));
    Intake::new(desk, ReplyKey::new([0; 32]), "client", IntakeLimits::default())
}

fn imap_config(port: u16, ca: &Path, mailbox: &str, processed: Processed) -> ImapConfig {
    ImapConfig {
        host: "localhost".into(),
        port,
        root_certificate_pem: Some(std::fs::read(ca).unwrap()),
        user: "desk".into(),
        password: "s3cret".into(),
        mailbox: mailbox.into(),
        processed,
        recipient: "it@desk.example".into(),
        interval: Duration::from_secs(2),
        use_idle: true,
    }
}

async fn count_in(port: u16, ca: &Path, mailbox: &str, query: &str) -> usize {
    let poller = Poller::new(intake_for_client(), imap_config(port, ca, "INBOX", Processed::Flag)).unwrap();
    let mut session = poller.connect().await.unwrap();
    session.select(mailbox).await.unwrap();
    let n = session.uid_search(query).await.unwrap().len();
    let _ = session.logout().await;
    n
}

fn message(n: usize, to: &str) -> Vec<u8> {
    format!(
        "From: Kim <kim@union.example>\r\nTo: {to}\r\nSubject: Request {n}\r\nMessage-ID: <imap-{n}@union.example>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nPlease help with thing {n}.\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_imap_poller_reads_dovecot() {
    if !require("openssl", runs("openssl", &["version"]))
        || !require("Dovecot (dovecot-imapd)", runs("dovecot", &["--version"]))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = certificates(dir.path());
    // Dovecot's mail processes (the dovecot user) must reach the maildirs inside.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dovecot_dir = dir.path().join("dovecot");
    std::fs::create_dir_all(&dovecot_dir).unwrap();
    let port = free_port();
    let _dovecot = start_dovecot(&dovecot_dir, port, &certs);
    eventually("Dovecot to listen", Duration::from_secs(20), || port_open(port)).await;
    let (intake, ws) = desk_with_mail(dir.path()).await;

    // Move mode: three messages, one addressed to marketing (routes by the header), one not mail.
    append(
        port,
        &certs.ca,
        "INBOX",
        &[message(1, "it@desk.example"), message(2, "marketing@desk.example"), b"\x00\x01 not mail".to_vec()],
    )
    .await;
    let poller = Poller::new(
        intake.clone(),
        imap_config(port, &certs.ca, "INBOX", Processed::MoveTo("Tandem".into())),
    )
    .unwrap();
    let mut session = poller.connect().await.unwrap();
    let round = poller.round(&mut session).await.unwrap();
    assert_eq!((round.stored, round.deferred), (3, 0), "{round:?}");
    assert_eq!(poller.round(&mut session).await.unwrap(), Default::default(), "nothing is read twice");
    let _ = session.logout().await;
    assert_eq!(count_in(port, &certs.ca, "INBOX", "ALL").await, 0);
    assert_eq!(count_in(port, &certs.ca, "Tandem", "ALL").await, 3);
    let made = items(&intake, ws).await;
    assert_eq!(made.len(), 2);
    let types: Vec<ItemType> = list(intake.desk().store().as_ref(), ws, &RecordQuery::all()).await.unwrap();
    assert_eq!(made.iter().find(|i| i.title == "Request 2").unwrap().item_type, types[1].id);
    let records: Vec<InboundMail> =
        list(intake.desk().store().as_ref(), ws, &RecordQuery::all()).await.unwrap();
    assert_eq!(
        records.iter().filter(|r| r.status == InboundStatus::Quarantined).count(),
        1,
        "the non-mail is kept, quarantined"
    );
    assert!(records.iter().all(|r| r.transport == mail::MailTransport::Imap));

    // Flag mode in another folder, with IDLE: the running poller picks up a new message.
    append(port, &certs.ca, "Requests", &[]).await;
    let poller =
        Poller::new(intake.clone(), imap_config(port, &certs.ca, "Requests", Processed::Flag)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(poller.run(async move {
        let _ = stopped.await;
    }));
    append(port, &certs.ca, "Requests", &[message(4, "it@desk.example")]).await;
    eventually("the poller to deliver request 4", Duration::from_secs(20), || {
        let intake = intake.clone();
        async move { items(&intake, ws).await.iter().any(|i| i.title == "Request 4") }
    })
    .await;
    eventually("request 4 to be flagged", Duration::from_secs(10), || {
        let ca = certs.ca.clone();
        async move { count_in(port, &ca, "Requests", "KEYWORD $TandemProcessed SEEN").await == 1 }
    })
    .await;
    let _ = stop.send(());
    running.await.unwrap();
    assert_eq!(count_in(port, &certs.ca, "Requests", "ALL").await, 1, "flagged, not moved");
}
