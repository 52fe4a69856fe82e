#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! Outbound mail end to end, in process but with every real part: the REST API on loopback, the
//! SMTP listener customers' mail arrives at, the event relay mailing followers, the job runner
//! with the `mail.send` handler, and Python's aiosmtpd as the relay, spoken to with STARTTLS
//! and a private CA. The capture peer refuses `gone*@` addresses with `550 5.1.1` and answers
//! `busy*@` addresses with `451 4.3.0` twice before accepting.
//!
//! Without `openssl` or Python's aiosmtpd a test is skipped with a printed reason, except under
//! `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use serde_json::{Value, json};
use tandem_core::commands::{
    ConfigureMail, CreateUser, CreateWorkspace, IssueToken, MAIL_NOTIFICATIONS, PostMessage,
};
use tandem_core::mail::{InboundAddress, MAIL_SEND_JOB, OutboundMail, OutboundStatus};
use tandem_core::store::{JobFilter, JobState, RecordQuery, get, list};
use tandem_core::*;
use tandem_intake_email::outbound::RateLimits;
use tandem_intake_email::send::{Relay, Security, Sender};
use tandem_intake_email::smtp::{ListenerConfig, Protocol};
use tandem_intake_email::{DeliveryConfig, IntakeLimits, ReplyKey};
use tandem_server::jobs::relay::{self, RelayConfig};
use tandem_server::jobs::{Backoff, KindPolicy, Registry, Runner, RunnerConfig};
use tandem_server::mail::OutboundConfig;
use tandem_server::{AdminToken, AppState, SystemClock, UuidV7Ids, router};
use tandem_tests::peers::{Certs, Peer, certificates};
use tokio::sync::watch;

const ANA_TOKEN: &str = "tdm_ana_outbound_test_token";
const MAX_TOKEN: &str = "tdm_max_outbound_test_token";

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

fn peers_available() -> bool {
    require("openssl", runs("openssl", &["version"]))
        && require("Python's aiosmtpd", runs("python3", &["-c", "import aiosmtpd"]))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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

/// aiosmtpd's Mailbox handler, refusing some recipients the way a real relay would.
const CAPTURE: &str = r#"
import os
from aiosmtpd.handlers import Mailbox

class Capture(Mailbox):
    def __init__(self, mail_dir, message_class=None):
        super().__init__(mail_dir, message_class)
        self.counts = os.path.dirname(os.path.abspath(mail_dir))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split('@')[0].lower()
        if local.startswith('gone'):
            return '550 5.1.1 <%s>: no such user here' % address
        if local.startswith('busy'):
            marker = os.path.join(self.counts, 'busy-' + address)
            n = int(open(marker).read()) if os.path.exists(marker) else 0
            with open(marker, 'w') as f:
                f.write(str(n + 1))
            if n < 2:
                return '451 4.3.0 mailbox busy, try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'
"#;

struct Capture {
    dir: PathBuf,
    port: u16,
    ca: PathBuf,
    _peer: Peer,
}

impl Capture {
    async fn start(dir: &Path) -> Capture {
        std::fs::create_dir_all(dir).unwrap();
        let Certs { ca, cert, key } = certificates(dir);
        std::fs::write(dir.join("capture.py"), CAPTURE).unwrap();
        let port = free_port();
        let maildir = dir.join("maildir");
        let log = std::fs::File::create(dir.join("aiosmtpd.log")).unwrap();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "capture.Capture"])
            .args(["--tlscert", cert.to_str().unwrap(), "--tlskey", key.to_str().unwrap()])
            .arg(maildir.to_str().unwrap())
            .env("PYTHONPATH", dir)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let peer = Peer(child);
        eventually("aiosmtpd to listen", Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        Capture { dir: dir.to_path_buf(), port, ca, _peer: peer }
    }

    /// Every captured mail in the order it arrived: (recipient, raw bytes).
    fn mails(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join("maildir").join(sub)) {
                for e in entries.flatten() {
                    files.push((e.metadata().unwrap().modified().unwrap(), e.path()));
                }
            }
        }
        files.sort();
        let mut out = Vec::new();
        for (_, path) in files {
            let raw = std::fs::read(path).unwrap();
            let parsed = MessageParser::default().parse(&raw).unwrap();
            let to = parsed
                .to()
                .and_then(|t| t.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_lowercase();
            out.push((to, raw));
        }
        out
    }

    /// (recipient, first text line) of every mail captured, sorted.
    fn summary(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .mails()
            .into_iter()
            .map(|(to, raw)| {
                let p = MessageParser::default().parse(&raw).unwrap();
                (to, p.body_text(0).unwrap_or_default().lines().next().unwrap_or_default().to_string())
            })
            .collect();
        out.sort();
        out
    }

    fn to(&self, address: &str) -> Vec<Vec<u8>> {
        self.mails().into_iter().filter(|(to, _)| to == address).map(|(_, raw)| raw).collect()
    }
}

/// A server in process: API, mail listener, relay, runner with the mail sender.
struct Harness {
    desk: Desk,
    ws: WorkspaceId,
    api: String,
    smtp_port: u16,
    key: ReplyKey,
    http: reqwest::Client,
    stop: watch::Sender<bool>,
    ana: User,
    max: User,
}

async fn start(dir: &Path, capture: &Capture, workers: usize) -> Harness {
    let store = tandem_storage_sqlite::SqliteStore::open(dir.join("tandem.db"), Default::default()).unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let desk = Desk::new(store.clone(), Arc::new(SystemClock), Arc::new(UuidV7Ids), Limits::default());
    let boot = Actor::server_admin(WorkspaceId(uuid::Uuid::nil()));
    let ws = desk.execute(&boot, &CreateWorkspace { name: "Federation IT".into() }).await.unwrap().id;
    let admin = Actor::server_admin(ws);
    let types: Vec<ItemType> = list(store.as_ref(), ws, &RecordQuery::all()).await.unwrap();
    desk.execute(
        &admin,
        &ConfigureMail {
            addresses: Some(vec![InboundAddress {
                address: "it@desk.example".into(),
                item_type: types[0].id,
            }]),
            from_name: Some(Some("Federation IT".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let staff = |name: &str, email: &str, role: Role| CreateUser {
        name: name.into(),
        email: Some(email.into()),
        handle: None,
        role,
    };
    let ana = desk.execute(&admin, &staff("Ana Agent", "ana@desk.example", Role::Agent)).await.unwrap();
    let max = desk.execute(&admin, &staff("Max Manager", "max@desk.example", Role::Manager)).await.unwrap();
    for (user, secret) in [(&ana, ANA_TOKEN), (&max, MAX_TOKEN)] {
        let token = IssueToken {
            user: user.id,
            name: "test".into(),
            scope: TokenScope::Write,
            secret_sha256: tandem_core::conversation::sha256_hex(secret.as_bytes()),
        };
        desk.execute(&admin, &token).await.unwrap();
    }

    let (stop, stopping) = watch::channel(false);
    // The mail listener customers' mail arrives at.
    let intake = tandem_server::mail::intake(
        desk.clone(),
        IntakeLimits { max_message_bytes: 200_000, ..Default::default() },
    )
    .await
    .unwrap();
    let key = intake.key().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_port = listener.local_addr().unwrap().port();
    let mut mail_stop = stopping.clone();
    tokio::spawn(tandem_intake_email::smtp::serve(
        listener,
        intake,
        ListenerConfig { protocol: Protocol::Smtp, hostname: "desk.example".into(), ..Default::default() },
        async move {
            let _ = mail_stop.wait_for(|s| *s).await;
        },
    ));
    // The runner with the mail sender, and the relay mailing followers.
    let outbound = OutboundConfig {
        relay: Relay {
            host: "localhost".into(),
            port: capture.port,
            security: Security::StartTls,
            credentials: None,
            root_certificate_pem: Some(std::fs::read(&capture.ca).unwrap()),
            timeout: Duration::from_secs(10),
        },
        delivery: DeliveryConfig {
            domain: "desk.example".into(),
            public_url: Some("https://desk.example".into()),
            limits: RateLimits::default(),
        },
        attempts: 4,
    };
    let mut registry = Registry::new();
    registry.register_with(
        Arc::new(tandem_server::mail::delivery(desk.clone(), &outbound).await.unwrap()),
        KindPolicy { lease: Duration::from_secs(30), timeout: Duration::from_secs(20) },
    );
    registry.register(Arc::new(tandem_server::jobs::reports::ReportDelivery::new(desk.clone())));
    let backoff = Backoff {
        base: Duration::from_millis(50),
        factor: 2,
        cap: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(1),
    };
    let runner = Runner::start(
        store.clone(),
        Arc::new(SystemClock),
        registry,
        RunnerConfig {
            workers,
            policy: KindPolicy { lease: Duration::from_secs(30), timeout: Duration::from_secs(20) },
            poll: Duration::from_millis(50),
            backoff,
        },
        stopping.clone(),
    )
    .unwrap();
    let relay_config = RelayConfig {
        interval: Duration::from_millis(50),
        mail_attempts: Some(outbound.attempts),
        ..RelayConfig::default()
    };
    relay::spawn(desk.clone(), relay_config, runner.waker(), stopping.clone());
    // The API.
    let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}/api/v1", http_listener.local_addr().unwrap());
    let app = router(AppState::new(desk.clone(), AdminToken::from_secret("tdm_unused_admin_secret")));
    let mut http_stop = stopping.clone();
    tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
            .unwrap();
    });
    Harness { desk, ws, api, smtp_port, key, http: reqwest::Client::new(), stop, ana, max }
}

impl Harness {
    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.api)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A customer's mail into the SMTP listener.
    async fn mail_in(&self, from: &str, raw: String) {
        let sender = Sender::new(&Relay {
            host: "127.0.0.1".into(),
            port: self.smtp_port,
            security: Security::None,
            credentials: None,
            root_certificate_pem: None,
            timeout: Duration::from_secs(10),
        })
        .unwrap();
        sender.send(from, &["it@desk.example".into()], raw.as_bytes()).await.unwrap();
    }

    async fn items(&self) -> Vec<Item> {
        let mut q = ItemQuery::new(ItemScope::All);
        q.limit = 100;
        self.desk.store().items(self.ws, &q).await.unwrap().items
    }

    /// Waits until every event so far has been considered for mail and no mail job is pending.
    async fn settled(&self) {
        let store = self.desk.store().clone();
        let ws = self.ws;
        eventually("notifications to settle", Duration::from_secs(30), || {
            let store = store.clone();
            async move {
                let events = store
                    .events(ws, &tandem_core::store::EventQuery { after: 0, item: None, limit: 100_000 })
                    .await
                    .unwrap();
                let last = events.last().map_or(0, |e| e.seq);
                let cursor: Option<EventCursor> =
                    get(store.as_ref(), ws, EventCursor::id_for(ws, MAIL_NOTIFICATIONS).0).await.unwrap();
                let pending = [JobState::Queued, JobState::Running].into_iter().map(|state| JobFilter {
                    workspace: Some(ws),
                    state: Some(state),
                    kind: Some(MAIL_SEND_JOB.into()),
                    limit: 10,
                });
                let mut busy = false;
                for f in pending {
                    busy |= !store.jobs(&f).await.unwrap().is_empty();
                }
                cursor.is_some_and(|c| c.seq >= last) && !busy
            }
        })
        .await;
        // A mail recorded just now adds an event the relay has not seen: look once more.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    async fn outbound(&self, query: &str) -> Vec<OutboundMail> {
        let (status, body) =
            self.call(ANA_TOKEN, reqwest::Method::GET, &format!("/mail/outbound{query}"), None).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn customer_mail(message_id: &str, extra_headers: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Maria Silva <maria@club.example>\r\nTo: it@desk.example\r\nCc: Chris Partner <chris@partner.example>\r\n\
         Subject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n{extra_headers}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

fn header<'a>(p: &'a mail_parser::Message<'a>, name: &'static str) -> Option<&'a str> {
    p.header_raw(name).map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_mails_in_an_agent_answers_and_the_reply_threads_back() {
    if !peers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = Capture::start(&dir.path().join("capture")).await;
    let _ = std::fs::create_dir_all(dir.path().join("desk"));
    let d = start(&dir.path().join("desk"), &capture, 2).await;

    // The customer writes in, copying a partner: an item with both following it.
    d.mail_in(
        "maria@club.example",
        customer_mail("p1@club.example", "", "Printer jams", "The printer jams on every page."),
    )
    .await;
    eventually("the item from mail", Duration::from_secs(10), || async { d.items().await.len() == 1 }).await;
    let item = d.items().await.remove(0);
    assert_eq!(item.title, "Printer jams");
    d.settled().await;
    assert!(
        capture.mails().is_empty(),
        "the customer's own mail is not mailed back: {:?}",
        capture.summary()
    );

    // The agent answers through the API; the customer and the partner receive it, the agent not.
    let (status, body) = d
        .call(
            ANA_TOKEN,
            reqwest::Method::POST,
            &format!("/items/{}/messages", item.number),
            Some(json!({"visibility": "public", "body": {"format": "text", "content": "We replaced the roller.\nTry again, please."}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    d.settled().await;
    assert_eq!(
        capture.summary(),
        [
            ("chris@partner.example".to_string(), "Ana Agent wrote:".to_string()),
            ("maria@club.example".to_string(), "Ana Agent wrote:".to_string()),
        ]
    );
    let raw = capture.to("maria@club.example").remove(0);
    let p = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(p.subject(), Some(format!("[#{}] Printer jams", item.number).as_str()));
    assert_eq!(header(&p, "Auto-Submitted"), Some("auto-generated"));
    assert_eq!(header(&p, "X-Auto-Response-Suppress"), Some("All"));
    let our_id = p.message_id().unwrap().to_string();
    assert!(our_id.starts_with("tandem.") && our_id.ends_with("@desk.example"), "{our_id}");
    assert_eq!(p.in_reply_to().as_text(), Some("p1@club.example"));
    assert!(header(&p, "References").unwrap().contains("<p1@club.example>"));
    let reply_to = p.reply_to().and_then(|r| r.first()).and_then(|a| a.address()).unwrap().to_string();
    assert_eq!(d.key.verify_address(d.ws, &reply_to), Some(item.number), "{reply_to}");
    assert_eq!(p.from().and_then(|f| f.first()).and_then(|a| a.address()), Some("it@desk.example"));
    let text = p.body_text(0).unwrap();
    assert!(text.contains("We replaced the roller.\nTry again, please."), "{text}");
    assert!(text.contains(&format!("https://desk.example/items/{}", item.number)), "{text}");
    let html = p.body_html(0).unwrap();
    assert!(html.contains("<b>Ana Agent</b>") && html.contains("We replaced the roller.<br>"), "{html}");

    // The customer answers to the plain address (her client dropped the token) without the tag:
    // our Message-ID in In-Reply-To threads it to the same item.
    d.mail_in(
        "maria@club.example",
        customer_mail(
            "p2@club.example",
            &format!("In-Reply-To: <{our_id}>\r\nReferences: <{our_id}>\r\n"),
            "Re: Printer jams",
            "Works now, thanks!\r\n\r\nOn Monday Federation IT wrote:\r\n> We replaced the roller.",
        ),
    )
    .await;
    eventually("the reply on the item", Duration::from_secs(10), || async {
        let messages = d.desk.store().messages(d.ws, item.id, true).await.unwrap();
        messages.iter().any(|m| m.text.contains("Works now"))
    })
    .await;
    assert_eq!(d.items().await.len(), 1, "the reply made no new item");
    d.settled().await;
    // The partner hears of the customer's reply; she does not hear of her own.
    assert_eq!(capture.to("chris@partner.example").len(), 2);
    assert_eq!(capture.to("maria@club.example").len(), 1, "her own reply is not mailed back to her");

    // Max is assigned: the customer, the partner and Max hear of it.
    let (status, body) = d
        .call(
            ANA_TOKEN,
            reqwest::Method::PUT,
            &format!("/items/{}/assignees", item.number),
            Some(json!({"assignees": [{"type": "user", "id": d.max.id}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    d.settled().await;
    for who in ["maria@club.example", "chris@partner.example", "max@desk.example"] {
        let last = capture.to(who).pop().unwrap();
        let p = MessageParser::default().parse(&last).unwrap();
        assert!(p.body_text(0).unwrap().contains("was assigned to Max Manager"), "{who}");
    }

    // An internal note reaches staff (Max) and nobody else.
    let before = capture.mails().len();
    let (status, body) = d
        .call(
            ANA_TOKEN,
            reqwest::Method::POST,
            &format!("/items/{}/messages", item.number),
            Some(json!({"visibility": "internal", "body": {"format": "text", "content": "Roller was worn out."}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    d.settled().await;
    assert_eq!(capture.mails().len(), before + 1);
    let note =
        MessageParser::default().parse(&capture.to("max@desk.example").pop().unwrap()).unwrap().into_owned();
    assert!(note.subject().unwrap().contains("(internal)"));
    assert!(note.body_text(0).unwrap().contains("Roller was worn out."));
    for customer in ["maria@club.example", "chris@partner.example"] {
        for raw in capture.to(customer) {
            let text = String::from_utf8_lossy(&raw).to_string();
            assert!(!text.contains("Roller was worn"), "{customer} saw the internal note");
        }
    }

    // A status change reaches everyone involved but its author (Max makes it).
    let (status, body) = d
        .call(
            MAX_TOKEN,
            reqwest::Method::POST,
            &format!("/items/{}/transition", item.number),
            Some(json!({"status": "waiting"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    d.settled().await;
    for who in ["maria@club.example", "chris@partner.example"] {
        let last = MessageParser::default().parse(&capture.to(who).pop().unwrap()).unwrap().into_owned();
        assert!(last.body_text(0).unwrap().contains("is now Waiting"), "{who}");
    }
    assert!(
        !MessageParser::default()
            .parse(&capture.to("max@desk.example").pop().unwrap())
            .unwrap()
            .body_text(0)
            .unwrap()
            .contains("is now"),
        "the author of the change is not mailed"
    );

    // An out-of-office answer from the customer creates nothing, and no mail goes back.
    let before = capture.mails().len();
    d.mail_in(
        "maria@club.example",
        customer_mail(
            "ooo1@club.example",
            &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{our_id}>\r\n"),
            "Out of office: Printer jams",
            "I am away until Monday.",
        ),
    )
    .await;
    eventually("the auto-reply to be recorded", Duration::from_secs(10), || async {
        let log: Vec<InboundMail> = list(d.desk.store().as_ref(), d.ws, &RecordQuery::all()).await.unwrap();
        log.iter().any(|m| m.class == tandem_core::mail::MailClass::AutoReply)
    })
    .await;
    d.settled().await;
    assert_eq!(capture.mails().len(), before, "no mail answers an automatic reply");

    // The log shows what was sent, filtered.
    let to_maria = d.outbound(&format!("?item={}&recipient=Maria@club.example", item.number)).await;
    assert_eq!(to_maria.len(), capture.to("maria@club.example").len());
    assert!(to_maria.iter().all(|m| m.status == OutboundStatus::Sent && m.message_id.is_some()));
    assert_eq!(to_maria.last().unwrap().message_id.as_deref(), Some(our_id.as_str()), "oldest last");
    let (status, body) = d.call(ANA_TOKEN, reqwest::Method::GET, "/mail/outbound?status=lost", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("status"), "{body}");
    let (status, body) = d.call(ANA_TOKEN, reqwest::Method::GET, "/mail/outbound?sender=x", None).await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_retry_bounce_and_rate_limits_withhold() {
    if !peers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = Capture::start(&dir.path().join("capture")).await;
    let _ = std::fs::create_dir_all(dir.path().join("desk"));
    // One worker: the rate limit counts what was sent before each mail.
    let d = start(&dir.path().join("desk"), &capture, 1).await;

    // Maria writes in copying an address that is busy for a while and one that does not exist.
    let raw = customer_mail("q1@club.example", "", "VPN broken", "The VPN drops every hour.").replace(
        "Cc: Chris Partner <chris@partner.example>",
        "Cc: busy@partner.example, gone@partner.example",
    );
    d.mail_in("maria@club.example", raw).await;
    eventually("the item from mail", Duration::from_secs(10), || async { d.items().await.len() == 1 }).await;
    let item = d.items().await.remove(0);
    let ana = Actor::user(d.ana.clone(), TokenScope::Write);
    d.desk
        .execute(&ana, &PostMessage::new(item.id, Visibility::Public, Body::Text("Looking into it.".into())))
        .await
        .unwrap();
    d.settled().await;

    // 451 twice, then accepted: retried with backoff, sent on the third attempt.
    assert_eq!(capture.to("busy@partner.example").len(), 1);
    let busy = d.outbound("?recipient=busy@partner.example").await;
    assert_eq!(busy.len(), 1);
    assert_eq!(busy[0].status, OutboundStatus::Sent);
    let jobs = d
        .desk
        .store()
        .jobs(&JobFilter { workspace: Some(d.ws), state: None, kind: Some(MAIL_SEND_JOB.into()), limit: 100 })
        .await
        .unwrap();
    let busy_job = jobs.iter().find(|j| j.idempotency_key.ends_with(":busy@partner.example")).unwrap();
    assert_eq!((busy_job.state, busy_job.attempts), (JobState::Done, 3));

    // 550 5.1.1: a dead letter at once, recorded as failed, the address marked bouncing.
    let gone_job = jobs.iter().find(|j| j.idempotency_key.ends_with(":gone@partner.example")).unwrap();
    assert_eq!((gone_job.state, gone_job.attempts), (JobState::Dead, 1));
    assert!(gone_job.last_error.as_deref().unwrap().contains("5.1.1"), "{:?}", gone_job.last_error);
    let gone = d.outbound("?recipient=gone@partner.example&status=failed").await;
    assert_eq!(gone.len(), 1);
    assert!(gone[0].reason.as_deref().unwrap().contains("no such user"));
    let user = d.desk.store().user_by_email(d.ws, "gone@partner.example").await.unwrap().unwrap();
    assert_eq!(user.email_bounce.unwrap().status.as_deref(), Some("5.1.1"));
    assert!(capture.to("gone@partner.example").is_empty());

    // A bouncing address is not mailed again; the others are, up to 20 mails an hour each.
    for n in 2..=21 {
        d.desk
            .execute(&ana, &PostMessage::new(item.id, Visibility::Public, Body::Text(format!("Update {n}"))))
            .await
            .unwrap();
    }
    d.settled().await;
    assert_eq!(capture.to("maria@club.example").len(), 20, "the 21st mail is withheld");
    assert_eq!(capture.to("busy@partner.example").len(), 20);
    assert!(capture.to("gone@partner.example").is_empty());
    let withheld = d.outbound("?status=withheld").await;
    assert_eq!(withheld.len(), 2, "{withheld:?}");
    for w in &withheld {
        let reason = w.reason.as_deref().unwrap();
        assert!(reason.contains("within the window") && reason.contains("limit is 20"), "{reason}");
    }
    let mut who: Vec<&str> = withheld.iter().map(|w| w.recipient.as_str()).collect();
    who.sort();
    assert_eq!(who, ["busy@partner.example", "maria@club.example"]);
    // The withheld mails ran their job to completion: nothing is retried.
    let dead = d
        .desk
        .store()
        .jobs(&JobFilter {
            workspace: Some(d.ws),
            state: Some(JobState::Dead),
            kind: Some(MAIL_SEND_JOB.into()),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "only the 5.1.1 refusal is a dead letter");
}

const CLEO_TOKEN: &str = "tdm_cleo_outbound_test_token";

/// The text of every `<t>` of an XLSX file's shared strings (the sheet's text cells).
fn xlsx_strings(bytes: &[u8]) -> Vec<String> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut xml = String::new();
    zip.by_name("xl/sharedStrings.xml").unwrap().read_to_string(&mut xml).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut out, mut inside) = (Vec::new(), false);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) if e.local_name().as_ref() == b"t" => inside = true,
            quick_xml::events::Event::End(e) if e.local_name().as_ref() == b"t" => inside = false,
            quick_xml::events::Event::Text(t) if inside => out.push(t.unescape().unwrap().into_owned()),
            quick_xml::events::Event::Eof => return out,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_report_arrives_with_its_file_and_shows_only_what_its_owner_sees() {
    use mail_parser::MimeHeaders;
    use tandem_core::commands::{CreateItem, CreateProject, SetProjectMember};
    if !peers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = Capture::start(&dir.path().join("capture")).await;
    let h = start(dir.path(), &capture, 2).await;
    let admin = Actor::server_admin(h.ws);
    let types: Vec<ItemType> = list(h.desk.store().as_ref(), h.ws, &RecordQuery::all()).await.unwrap();
    let project =
        |name: &str| CreateProject { name: name.into(), description: String::new(), portfolio: None };
    let clinics = h.desk.execute(&admin, &project("Clinics")).await.unwrap();
    let payroll = h.desk.execute(&admin, &project("Payroll")).await.unwrap();
    for (p, title) in [(clinics.id, "Booth <3> & audiometer"), (payroll.id, "Salary review")] {
        let mut item = CreateItem::new(types[0].id, title);
        item.project = Some(p);
        h.desk.execute(&admin, &item).await.unwrap();
    }
    // Cleo collaborates on the clinics only; Max shares a view of everything with everyone.
    let cleo = CreateUser {
        name: "Cleo Collaborator".into(),
        email: Some("cleo@desk.example".into()),
        handle: None,
        role: Role::Collaborator,
    };
    let cleo = h.desk.execute(&admin, &cleo).await.unwrap();
    let member = SetProjectMember { project: clinics.id, user: cleo.id, role: ProjectRole::Member };
    h.desk.execute(&admin, &member).await.unwrap();
    let token = IssueToken {
        user: cleo.id,
        name: "test".into(),
        scope: TokenScope::Write,
        secret_sha256: tandem_core::conversation::sha256_hex(CLEO_TOKEN.as_bytes()),
    };
    h.desk.execute(&admin, &token).await.unwrap();
    let post = reqwest::Method::POST;
    let (status, view) = h
        .call(
            MAX_TOKEN,
            post.clone(),
            "/views",
            Some(json!({"name": "Everything", "sharing": {"with": "everyone"},
            "columns": ["number", "title", "project"]})),
        )
        .await;
    assert_eq!(status, 201, "{view}");

    // Cleo's weekly report of it, to Max and to an outside address.
    let body = json!({"name": "Weekly status", "view": view["id"], "format": "xlsx",
        "schedule": {"every": "week", "days": ["Mon", "Fri"], "at": "07:30"},
        "recipients": [{"user": h.max.id}, {"address": "Board@Partner.example"}]});
    let (status, report) = h.call(CLEO_TOKEN, post.clone(), "/reports", Some(body)).await;
    assert_eq!(status, 201, "{report}");
    let next: chrono::DateTime<chrono::Utc> = serde_json::from_value(report["next_run"].clone()).unwrap();
    use chrono::{Datelike, Timelike};
    assert!(next > chrono::Utc::now() && (next.hour(), next.minute()) == (7, 30), "{next}");
    assert!(matches!(next.weekday(), chrono::Weekday::Mon | chrono::Weekday::Fri), "{next}");
    let id = report["id"].as_str().unwrap().to_string();
    // Bad input names the field; someone who neither owns nor administers the report cannot send it.
    let (status, e) = h
        .call(CLEO_TOKEN, post.clone(), "/reports", Some(json!({"name": "x", "view": view["id"],
            "schedule": {"every": "cron", "expression": "0 25 * * *"}, "recipients": [{"address": "a@b.example"}]})))
        .await;
    assert_eq!((status, e["error"]["field"].as_str()), (422, Some("schedule.expression")), "{e}");
    let (status, _) = h.call(ANA_TOKEN, post.clone(), &format!("/reports/{id}/send"), None).await;
    assert_eq!(status, 404, "Ana neither owns nor administers the report");

    // Sent now: both recipients get the XLSX, holding only what Cleo may see.
    let (status, _) = h.call(CLEO_TOKEN, post.clone(), &format!("/reports/{id}/send"), None).await;
    assert_eq!(status, 202);
    eventually("the report mails", Duration::from_secs(30), || async {
        !capture.to("max@desk.example").is_empty() && !capture.to("board@partner.example").is_empty()
    })
    .await;
    for to in ["max@desk.example", "board@partner.example"] {
        let raw = capture.to(to).remove(0);
        let mail = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(mail.subject(), Some("Weekly status"));
        assert!(mail.body_text(0).unwrap().contains("Weekly status as of"), "{:?}", mail.body_text(0));
        let files: Vec<_> = mail.attachments().collect();
        assert_eq!(files.len(), 1, "{to}");
        let name = files[0].attachment_name().unwrap();
        assert!(name.starts_with("Weekly-status-") && name.ends_with(".xlsx"), "{name}");
        let strings = xlsx_strings(files[0].contents());
        assert!(strings.contains(&"Booth <3> & audiometer".to_string()), "{strings:?}");
        assert!(!strings.iter().any(|s| s.contains("Salary")), "the owner cannot see payroll: {strings:?}");
    }

    // As HTML: the table in the body, every cell escaped.
    let (status, _) = h
        .call(CLEO_TOKEN, reqwest::Method::PATCH, &format!("/reports/{id}"), Some(json!({"format": "html"})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = h.call(CLEO_TOKEN, post.clone(), &format!("/reports/{id}/send"), None).await;
    assert_eq!(status, 202);
    eventually("the HTML report", Duration::from_secs(30), || async {
        capture.to("max@desk.example").len() == 2
    })
    .await;
    let mails = capture.to("max@desk.example");
    let html_mail = mails
        .iter()
        .map(|raw| MessageParser::default().parse(raw).unwrap())
        .find(|m| m.attachments().next().is_none())
        .expect("the HTML report has no attachment");
    let html = html_mail.body_html(0).unwrap();
    assert!(html.contains("<td>Booth &lt;3&gt; &amp; audiometer</td>"), "{html}");
    assert!(!html.contains("Salary"), "{html}");
    let outbound = h.outbound("?limit=50").await;
    assert!(
        outbound
            .iter()
            .filter(|m| m.template == "scheduled_report")
            .all(|m| m.status == OutboundStatus::Sent)
    );
}
