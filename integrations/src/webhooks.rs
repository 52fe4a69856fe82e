//! Delivering `webhook.deliver` jobs: one signed HTTP POST per job.
//!
//! The request:
//!
//! ```text
//! POST <webhook url>
//! Content-Type: application/json
//! Tandem-Delivery: webhook:<webhook id>:<seq>     the job's idempotency key: receivers dedupe on it
//! Tandem-Event: item.created
//! Tandem-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//!
//! {"id": <delivery key>, "seq": 42, "event": "item.created", "item": <item id or null>,
//!  "data": {...}, "at": <RFC 3339>, "actor": {...}, "workspace": <workspace id>}
//! ```
//!
//! What the answer means: 2xx — delivered; 408, 429 (honouring `Retry-After`), 5xx, timeouts and
//! connection failures — try again later; any other status, a redirect (never followed) or a
//! destination the egress gate refuses — a dead letter at once, with the reason kept.
//!
//! Jobs run at least once, so a receiver may see a delivery again (say, the worker died after
//! sending); `Tandem-Delivery` is what makes it exactly once in effect.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use tandem_core::store::{self, Job};
use tandem_core::webhook::{DELIVER_WEBHOOK, Webhook, origin};
use tandem_core::{Event, JobFailure, JobHandler, Store, WebhookId};

use crate::egress::{Egress, refusal};

pub const DELIVERY_HEADER: &str = "tandem-delivery";
pub const EVENT_HEADER: &str = "tandem-event";
pub const SIGNATURE_HEADER: &str = "tandem-signature";

/// How much of a failed response's body is kept in the job's last error.
const ERROR_BODY_CHARS: usize = 300;

/// The longest `Retry-After` honoured; a receiver asking for more is retried after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The whole request, connecting included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub egress: Egress,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            egress: Egress::default(),
        }
    }
}

/// The `webhook.deliver` job handler.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    egress: Egress,
    timeout: Duration,
    /// Runs `DeleteWebhook` when a REST-hook subscription's target answers 410 Gone.
    desk: Option<tandem_core::Desk>,
}

/// What the relay put in a delivery job.
#[derive(Debug, Deserialize)]
struct Payload {
    webhook: WebhookId,
    event: Event,
}

impl WebhookDelivery {
    pub fn new(store: Arc<dyn Store>, options: DeliveryOptions) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("Tandem-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(options.egress.resolver())
            .build()?;
        Ok(Self { store, client, egress: options.egress, timeout: options.timeout, desk: None })
    }

    /// Lets a 410 Gone from a REST-hook subscription's target unsubscribe it (through `desk`,
    /// as Tandem itself).
    pub fn unsubscribing_gone(mut self, desk: tandem_core::Desk) -> Self {
        self.desk = Some(desk);
        self
    }
}

/// The body sent for an event.
pub fn body(key: &str, event: &Event) -> serde_json::Value {
    json!({
        "id": key,
        "seq": event.seq,
        "event": event.data.name(),
        "item": event.item,
        "data": event.data,
        "at": event.at,
        "actor": event.actor,
        "workspace": event.workspace_id,
    })
}

fn mac(secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length")
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Malformed,
    Mismatch,
    /// Signed longer ago (or further ahead) than the tolerance: a replay, or a skewed clock.
    Stale {
        age_secs: i64,
    },
}

/// What a receiver does with `Tandem-Signature`: recompute the HMAC over the timestamp and the raw
/// body, compare in constant time, and refuse old timestamps. Returns the signing time.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age_secs = now.timestamp() - timestamp;
    if age_secs.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale { age_secs });
    }
    let expected = {
        let mut mac = mac(secret);
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    };
    if signatures.iter().any(|s| expected.clone().verify_slice(s).is_ok()) {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `Retry-After`: delay seconds or an HTTP date. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// What a response status means for the delivery. `what` describes the response for the job's
/// last error.
pub fn outcome(
    status: u16,
    retry_after: Option<&str>,
    now: DateTime<Utc>,
    what: String,
) -> Result<(), JobFailure> {
    match status {
        200..=299 => Ok(()),
        408 | 429 => match retry_after.and_then(|v| parse_retry_after(v, now)) {
            Some(wait) => Err(JobFailure::RetryAfter(what, wait.min(MAX_RETRY_AFTER))),
            None => Err(JobFailure::Retry(what)),
        },
        500..=599 => match retry_after.and_then(|v| parse_retry_after(v, now)) {
            Some(wait) if status == 503 => Err(JobFailure::RetryAfter(what, wait.min(MAX_RETRY_AFTER))),
            _ => Err(JobFailure::Retry(what)),
        },
        300..=399 => {
            Err(JobFailure::Fatal(format!("{what}; redirects are not followed, update the webhook's URL")))
        }
        _ => Err(JobFailure::Fatal(what)),
    }
}

/// The start of a response body, for an error message.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text: String = text.chars().filter(|c| !c.is_control()).take(ERROR_BODY_CHARS).collect();
    text.trim().to_string()
}

fn send_error(e: &reqwest::Error, to: &str, timeout: Duration) -> JobFailure {
    if let Some(refused) = refusal(e) {
        return JobFailure::Fatal(format!("{to}: {refused}"));
    }
    if e.is_timeout() {
        return JobFailure::Retry(format!("{to} did not answer within {} s", timeout.as_secs_f32()));
    }
    if e.is_connect() {
        let mut cause = std::error::Error::source(e);
        let mut why = String::new();
        while let Some(c) = cause {
            why = c.to_string();
            cause = c.source();
        }
        return JobFailure::Retry(format!("cannot connect to {to}: {why}"));
    }
    JobFailure::Retry(format!("sending to {to} failed: {e}"))
}

#[async_trait]
impl JobHandler for WebhookDelivery {
    fn kind(&self) -> &'static str {
        DELIVER_WEBHOOK
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let Payload { webhook, event } = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::Fatal(format!("the job's payload is not a webhook delivery: {e}")))?;
        let hook = store::get::<Webhook>(self.store.as_ref(), job.workspace_id, webhook.0)
            .await
            .map_err(|e| JobFailure::Retry(format!("cannot read webhook {webhook}: {e}")))?;
        let Some(hook) = hook.filter(|h| h.active) else {
            // Deleted or paused since the event was relayed: nobody wants this delivery any more.
            tracing::info!(%webhook, key = %job.idempotency_key, "the webhook is gone or paused; delivery dropped");
            return Ok(());
        };
        let to = origin(&hook.url);
        let url = reqwest::Url::parse(&hook.url)
            .map_err(|e| JobFailure::Fatal(format!("the webhook's URL cannot be used: {e}")))?;
        self.egress.check_url(&url).map_err(|refused| JobFailure::Fatal(format!("{to}: {refused}")))?;

        let body = body(&job.idempotency_key, &event).to_string();
        let signature = sign(&hook.secret, Utc::now().timestamp(), body.as_bytes());
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, &job.idempotency_key)
            .header(EVENT_HEADER, event.data.name())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|e| send_error(&e, &to, self.timeout))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if (200..300).contains(&status) {
            return Ok(());
        }
        if status == 410
            && hook.rest_hook
            && let Some(desk) = &self.desk
        {
            let system = tandem_core::Actor::system(job.workspace_id);
            let gone = tandem_core::commands::DeleteWebhook { id: hook.id };
            return match desk.execute(&system, &gone).await {
                Ok(()) | Err(tandem_core::DeskError::NotFound(_)) => {
                    tracing::info!(webhook = %hook.id, "the subscriber answered 410 Gone; unsubscribed");
                    Ok(())
                }
                Err(e) => {
                    Err(JobFailure::Retry(format!("{to} answered 410 Gone; unsubscribing failed: {e}")))
                }
            };
        }
        let excerpt = body_excerpt(response).await;
        let what = if excerpt.is_empty() {
            format!("HTTP {status} from {to}")
        } else {
            format!("HTTP {status} from {to}: {excerpt}")
        };
        outcome(status, retry_after.as_deref(), Utc::now(), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn check(status: u16, retry_after: Option<&str>, expected: Result<(), JobFailure>) {
        assert_eq!(outcome(status, retry_after, now(), "x".into()), expected, "{status} {retry_after:?}");
    }

    #[test]
    fn statuses() {
        let retry = || Err(JobFailure::Retry("x".into()));
        let after = |s| Err(JobFailure::RetryAfter("x".into(), Duration::from_secs(s)));
        let fatal = || Err(JobFailure::Fatal("x".into()));
        check(200, None, Ok(()));
        check(204, None, Ok(()));
        check(202, Some("30"), Ok(()));
        check(408, None, retry());
        check(429, None, retry());
        check(429, Some("120"), after(120));
        check(429, Some("Mon, 02 Mar 2026 09:01:30 GMT"), after(90));
        check(429, Some("Mon, 02 Mar 2026 08:00:00 GMT"), after(0));
        check(429, Some("9999999"), after(24 * 3600));
        check(429, Some("soon"), retry());
        check(500, None, retry());
        check(502, Some("10"), retry());
        check(503, Some("10"), after(10));
        check(400, None, fatal());
        check(401, None, fatal());
        check(404, None, fatal());
        check(410, Some("10"), fatal());
        check(100, None, fatal());
        assert!(matches!(
            outcome(301, None, now(), "HTTP 301".into()),
            Err(JobFailure::Fatal(r)) if r.contains("redirects are not followed")
        ));
    }

    #[test]
    fn signatures_verify_and_refuse_tampering() {
        let body = br#"{"id":"webhook:1:2"}"#;
        let t = now().timestamp();
        let header = sign("whsec_abcdefghijklmnop", t, body);
        assert!(header.starts_with(&format!("t={t},v1=")));
        let tolerance = Duration::from_secs(300);
        assert_eq!(verify("whsec_abcdefghijklmnop", &header, body, now(), tolerance), Ok(t));
        let table: &[(&str, &str, &[u8], i64, SignatureError)] = &[
            ("whsec_other_secret_0", &header, body, 0, SignatureError::Mismatch),
            ("whsec_abcdefghijklmnop", &header, br#"{"id":"webhook:1:3"}"#, 0, SignatureError::Mismatch),
            ("whsec_abcdefghijklmnop", &header, body, 301, SignatureError::Stale { age_secs: 301 }),
            ("whsec_abcdefghijklmnop", "v1=00", body, 0, SignatureError::Malformed),
            ("whsec_abcdefghijklmnop", &format!("t={t}"), body, 0, SignatureError::Malformed),
            ("whsec_abcdefghijklmnop", &format!("t={t},v1=zz"), body, 0, SignatureError::Malformed),
        ];
        for (secret, header, body, later, expected) in table {
            let at = now() + chrono::Duration::seconds(*later);
            assert_eq!(verify(secret, header, body, at, tolerance), Err(expected.clone()), "{header}");
        }
        // The well-known HMAC-SHA256 test vector: the signature is standard HMAC, so receivers
        // can check it with any library.
        let mut mac = mac("key");
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
