#![allow(clippy::unwrap_used)] // A test fails loudly; that is what an unwrap is for here.

//! The delivery handler against a real HTTP receiver on loopback: what is sent, how it is signed,
//! and what each kind of answer means for the job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use tandem_core::store::{Job, JobState};
use tandem_core::webhook::{DELIVER_WEBHOOK, Webhook};
use tandem_core::*;
use tandem_integrations::Egress;
use tandem_integrations::webhooks::{self, DeliveryOptions, WebhookDelivery};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

const SECRET: &str = "whsec_delivery_test_secret";

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<(HeaderMap, Bytes)>>);

async fn receiver() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let record = |seen: Arc<Seen>, answer: fn() -> axum::response::Response| {
        post(move |headers: HeaderMap, body: Bytes| async move {
            seen.0.lock().unwrap().push((headers, body));
            answer()
        })
    };
    let app = Router::new()
        .route("/ok", record(seen.clone(), || StatusCode::NO_CONTENT.into_response()))
        .route(
            "/busy",
            record(seen.clone(), || {
                (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "7")]).into_response()
            }),
        )
        .route(
            "/down",
            record(seen.clone(), || (StatusCode::BAD_GATEWAY, "upstream is down").into_response()),
        )
        .route(
            "/gone",
            record(seen.clone(), || (StatusCode::GONE, "no such hook\n\u{1b}[31m").into_response()),
        )
        .route(
            "/moved",
            record(seen.clone(), || {
                (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "http://169.254.169.254/latest")])
                    .into_response()
            }),
        )
        .route(
            "/slow",
            post(|| async {
                // A receiver that takes longer than the delivery timeout.
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{}", addr.port()), seen)
}

struct Setup {
    store: Arc<dyn Store>,
    ws: WorkspaceId,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap());
    let ws = WorkspaceId(uuid::Uuid::now_v7());
    let mut changes = ChangeSet::new(ws, ActorRef::System, Utc::now());
    changes.insert(Record::Workspace(Workspace {
        id: ws,
        name: "W".into(),
        created_at: Utc::now(),
        version: 1,
    }));
    store.commit(changes).await.unwrap();
    Setup { store, ws, _dir: dir }
}

impl Setup {
    async fn webhook(&self, url: &str, active: bool) -> Webhook {
        let hook = Webhook {
            id: WebhookId(uuid::Uuid::now_v7()),
            workspace_id: self.ws,
            url: url.to_string(),
            secret: SECRET.into(),
            events: vec![],
            active,
            rest_hook: false,
            created_at: Utc::now(),
            version: 1,
        };
        let mut changes = ChangeSet::new(self.ws, ActorRef::System, Utc::now());
        changes.insert(Record::Webhook(hook.clone()));
        self.store.commit(changes).await.unwrap();
        hook
    }

    fn job(&self, hook: &Webhook, seq: i64) -> Job {
        let event = Event {
            workspace_id: self.ws,
            seq,
            at: Utc::now(),
            actor: ActorRef::System,
            item: Some(ItemId(uuid::Uuid::from_u128(42))),
            data: EventData::ItemUpdated { changes: vec![] },
        };
        Job {
            id: JobId(uuid::Uuid::now_v7()),
            workspace_id: self.ws,
            kind: DELIVER_WEBHOOK.into(),
            payload: json!({"webhook": hook.id, "event": event}),
            idempotency_key: format!("webhook:{}:{seq}", hook.id),
            state: JobState::Running,
            attempts: 1,
            max_attempts: 5,
            run_at: Utc::now(),
            lease_until: None,
            last_error: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn handler(&self, allow_private: bool) -> WebhookDelivery {
        let options = DeliveryOptions {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            egress: Egress { allow_private },
        };
        WebhookDelivery::new(self.store.clone(), options).unwrap()
    }
}

#[tokio::test]
async fn a_delivery_is_a_signed_post_of_the_event() {
    let s = setup().await;
    let (base, seen) = receiver().await;
    let hook = s.webhook(&format!("{base}/ok"), true).await;
    let job = s.job(&hook, 7);
    s.handler(true).run(&job).await.unwrap();

    let seen = seen.0.lock().unwrap();
    let (headers, body) = &seen[0];
    assert_eq!(headers["tandem-delivery"], job.idempotency_key.as_str());
    assert_eq!(headers["tandem-event"], "item.updated");
    assert_eq!(headers["content-type"], "application/json");
    let signature = headers["tandem-signature"].to_str().unwrap();
    webhooks::verify(SECRET, signature, body, Utc::now(), Duration::from_secs(60)).unwrap();
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["id"], job.idempotency_key.as_str());
    assert_eq!((body["seq"].as_i64(), body["event"].as_str()), (Some(7), Some("item.updated")));
    assert_eq!(body["item"], json!(ItemId(uuid::Uuid::from_u128(42))));
    assert_eq!(body["workspace"], json!(s.ws));
    assert_eq!(body["data"]["type"], "item_updated");
    assert_eq!(body["actor"], json!(ActorRef::System));
    assert!(body["at"].as_str().is_some());
}

/// Each answer, and what it makes of the job.
#[tokio::test]
async fn answers_decide_retries_and_dead_letters() {
    let s = setup().await;
    let (base, seen) = receiver().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/ok")
    };
    type Expect = fn(&JobFailure) -> bool;
    let table: Vec<(String, Expect)> = vec![
        (
            format!("{base}/busy"),
            |f| matches!(f, JobFailure::RetryAfter(r, d) if r.contains("HTTP 429") && *d == Duration::from_secs(7)),
        ),
        (
            format!("{base}/down"),
            |f| matches!(f, JobFailure::Retry(r) if r.contains("HTTP 502") && r.contains("upstream is down")),
        ),
        (
            format!("{base}/gone"),
            |f| matches!(f, JobFailure::Fatal(r) if r.contains("HTTP 410") && r.contains("no such hook") && !r.contains('\u{1b}')),
        ),
        (
            format!("{base}/moved"),
            |f| matches!(f, JobFailure::Fatal(r) if r.contains("redirects are not followed")),
        ),
        (
            format!("{base}/slow"),
            |f| matches!(f, JobFailure::Retry(r) if r.contains("did not answer within 1 s")),
        ),
        (closed, |f| matches!(f, JobFailure::Retry(r) if r.contains("cannot connect"))),
    ];
    for (seq, (url, expected)) in table.into_iter().enumerate() {
        let hook = s.webhook(&url, true).await;
        let failure = s.handler(true).run(&s.job(&hook, seq as i64 + 1)).await.unwrap_err();
        assert!(expected(&failure), "{url}: {failure:?}");
    }
    // The redirect was not followed: the receiver saw one request per reachable route.
    assert_eq!(seen.0.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let s = setup().await;
    let (base, seen) = receiver().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    for url in [
        format!("{base}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
    ] {
        let hook = s.webhook(&url, true).await;
        let failure = s.handler(false).run(&s.job(&hook, 1)).await.unwrap_err();
        assert!(
            matches!(&failure, JobFailure::Fatal(r) if r.contains("only sends to public addresses")),
            "{url}: {failure:?}"
        );
    }
    assert!(seen.0.lock().unwrap().is_empty(), "nothing reached the private receiver");
    let hook = s.webhook(&format!("http://localhost:{port}/ok"), true).await;
    s.handler(true).run(&s.job(&hook, 2)).await.unwrap();
    assert_eq!(seen.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn deliveries_for_deleted_or_paused_webhooks_are_dropped() {
    let s = setup().await;
    let (base, seen) = receiver().await;
    let paused = s.webhook(&format!("{base}/ok"), false).await;
    s.handler(true).run(&s.job(&paused, 1)).await.unwrap();
    let never_stored = Webhook { id: WebhookId(uuid::Uuid::now_v7()), ..paused.clone() };
    s.handler(true).run(&s.job(&never_stored, 2)).await.unwrap();
    assert!(seen.0.lock().unwrap().is_empty());

    let mut garbled = s.job(&paused, 3);
    garbled.payload = json!({"webhook": "not an id"});
    let failure = s.handler(true).run(&garbled).await.unwrap_err();
    assert!(matches!(&failure, JobFailure::Fatal(r) if r.contains("not a webhook delivery")), "{failure:?}");
}
