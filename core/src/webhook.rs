//! Outgoing webhooks: where a workspace's events are delivered, and the cursor that relays the
//! event log to them.
//!
//! Webhooks are fed from the append-only event log, never from individual commands: the
//! [`RelayEvents`](crate::commands::RelayEvents) command reads the events after its
//! [`EventCursor`] and enqueues one delivery job per (event, interested webhook), advancing the
//! cursor in the same commit. Sending is `tandem-integrations`' job; what lives here is pure:
//! the records, which destinations are acceptable, and which events a webhook wants.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::{Action, Actor, Target, can};
use crate::desk::{Desk, load};
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::ids::{EventCursorId, WebhookId, WorkspaceId};
use crate::store::{RecordQuery, list};

/// The job kind of one webhook delivery.
pub const DELIVER_WEBHOOK: &str = "webhook.deliver";

/// The event-log consumer that feeds webhooks.
pub const WEBHOOK_RELAY: &str = "webhooks";

/// Longest accepted destination URL.
pub const MAX_URL_LEN: usize = 2048;

/// A destination that receives a workspace's events as signed HTTP POSTs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub url: String,
    /// The key deliveries are signed with (HMAC-SHA256). Kept as given, because signing needs
    /// it; the API shows it only once, when it is created.
    pub secret: String,
    /// Event names (`item.created`) or namespaces (`item.*`); empty means every event.
    pub events: Vec<String>,
    pub active: bool,
    /// A REST-hook subscription made by an external automation platform
    /// (`POST /api/v1/hooks/subscriptions`): a 410 Gone from its target unsubscribes it.
    #[serde(default)]
    pub rest_hook: bool,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl Webhook {
    /// Whether an event of this name is delivered to this webhook.
    pub fn wants(&self, event: &str) -> bool {
        self.events.is_empty()
            || self.events.iter().any(|filter| match filter.strip_suffix(".*") {
                Some(namespace) => event.strip_prefix(namespace).is_some_and(|rest| rest.starts_with('.')),
                None => filter == event,
            })
    }

    /// What the audit trail says about the destination: its origin, never the path or query,
    /// which may carry the receiver's credentials.
    pub fn origin(&self) -> String {
        origin(&self.url)
    }
}

/// `scheme://host[:port]` of a URL, or the input cut short when it does not parse.
pub fn origin(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => raw.chars().take(40).collect(),
    }
}

/// How far a consumer has read a workspace's event log. One per (workspace, consumer), with
/// an id derived from both, so that concurrent relays all address the same record and its
/// version lets exactly one of them advance it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventCursor {
    pub id: EventCursorId,
    pub workspace_id: WorkspaceId,
    pub consumer: String,
    /// The last sequence number handled; 0 before the first.
    pub seq: i64,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl EventCursor {
    /// The cursor's id: the same for everyone who asks, so no two cursors of one consumer exist.
    pub fn id_for(workspace: WorkspaceId, consumer: &str) -> EventCursorId {
        let digest = Sha256::new()
            .chain_update(b"tandem event cursor\0")
            .chain_update(workspace.0.as_bytes())
            .chain_update(consumer.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        EventCursorId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// A destination URL as stored: http or https, a host, no credentials, no fragment, and — unless
/// the operator allows private destinations — no loopback, private or link-local address
/// literal and no `localhost`. (Names are checked again on the address they resolve to, at
/// delivery.)
pub fn validate_url(field: &str, raw: &str, allow_private: bool) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if raw.len() > MAX_URL_LEN {
        return Err(Invalid::new(field, format!("must be at most {MAX_URL_LEN} characters")));
    }
    let mut url =
        url::Url::parse(raw).map_err(|e| Invalid::new(field, format!("'{raw}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid::new(field, format!("must be an http or https URL, not {}:", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::new(field, "must not contain a user name or password"));
    }
    let refused = match url.host() {
        None => return Err(Invalid::new(field, "names no host")),
        Some(url::Host::Ipv4(ip)) => (!is_public(IpAddr::V4(ip))).then(|| ip.to_string()),
        Some(url::Host::Ipv6(ip)) => (!is_public(IpAddr::V6(ip))).then(|| ip.to_string()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some(name)
        }
    };
    if let Some(host) = refused
        && !allow_private
    {
        return Err(Invalid::new(
            field,
            format!(
                "{host} is a loopback, private or reserved address; this server only delivers webhooks to \
                 public addresses"
            ),
        ));
    }
    url.set_fragment(None);
    Ok(url.to_string())
}

/// Event filters: known event names (`item.created`) or namespaces (`item.*`), lowercased and
/// without repeats. An unknown name is refused rather than silently never matching.
pub fn validate_events(field: &str, filters: &[String]) -> Result<Vec<String>, Invalid> {
    if filters.len() > 100 {
        return Err(Invalid::new(field, "at most 100 event filters"));
    }
    let mut out: Vec<String> = Vec::with_capacity(filters.len());
    for (i, filter) in filters.iter().enumerate() {
        let f = filter.trim().to_ascii_lowercase();
        let known = match f.strip_suffix(".*") {
            Some(namespace) => {
                EventData::NAMES.iter().any(|n| n.split_once('.').is_some_and(|(ns, _)| ns == namespace))
            }
            None => EventData::NAMES.contains(&f.as_str()),
        };
        if !known {
            return Err(Invalid::new(
                format!("{field}[{i}]"),
                format!(
                    "'{}' is not an event name; use one of {} or a namespace such as item.*",
                    filter.trim(),
                    EventData::NAMES.join(", ")
                ),
            ));
        }
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

/// A signing secret: 16 to 256 printable ASCII characters without spaces.
pub fn validate_secret(field: &str, secret: &str) -> Result<String, Invalid> {
    let n = secret.chars().count();
    if !(16..=256).contains(&n) {
        return Err(Invalid::new(field, "must be 16 to 256 characters long"));
    }
    if !secret.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Invalid::new(field, "must be printable ASCII without spaces"));
    }
    Ok(secret.to_string())
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), documentation, benchmarking, multicast, reserved or unspecified — looking
/// through IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    match segments {
        // ::a.b.c.d (IPv4-compatible, deprecated) and the unspecified/loopback addresses.
        [0, 0, 0, 0, 0, 0, hi, lo] => hi != 0 && is_public_v4(embedded_v4(hi, lo)),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)),
        // 6to4: 2002:AABB:CCDD::/48 carries a.b.c.d.
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),
        _ => {
            let first = segments[0];
            let special = ip.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                || (first == 0x2001 && segments[1] == 0) // Teredo: reaches behind NATs
                || (first == 0x0100 && segments[1..4] == [0, 0, 0]); // discard-only 100::/64
            !special
        }
    }
}

impl Desk {
    /// The workspace's webhooks (with their secrets: only for those who may manage them).
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<Webhook>, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        Ok(list::<Webhook>(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?)
    }

    pub async fn webhook(&self, actor: &Actor, id: WebhookId) -> Result<Webhook, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        load::<Webhook>(self.store().as_ref(), actor.workspace_id, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn hook(events: &[&str]) -> Webhook {
        Webhook {
            id: WebhookId(Uuid::from_u128(1)),
            workspace_id: WorkspaceId(Uuid::from_u128(2)),
            url: "https://hooks.example.org/in?token=abc".into(),
            secret: "s".repeat(32),
            events: events.iter().map(|s| s.to_string()).collect(),
            active: true,
            rest_hook: false,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 1,
        }
    }

    #[test]
    fn filters_select_events() {
        let table: &[(&[&str], &str, bool)] = &[
            (&[], "item.created", true),
            (&[], "record.deleted", true),
            (&["item.created"], "item.created", true),
            (&["item.created"], "item.updated", false),
            (&["item.*"], "item.status_changed", true),
            (&["item.*"], "record.created", false),
            (&["item.*"], "items.created", false),
            (&["record.updated", "item.converted"], "item.converted", true),
        ];
        for (filters, event, expected) in table {
            assert_eq!(hook(filters).wants(event), *expected, "{filters:?} {event}");
        }
    }

    fn check_url(raw: &str, allow_private: bool, expected: Result<&str, &str>) {
        let got = validate_url("url", raw, allow_private);
        match (expected, got) {
            (Ok(want), Ok(got)) => assert_eq!(got, want, "{raw}"),
            (Err(reason), Err(e)) => {
                assert_eq!(e.field, "url", "{raw}");
                assert!(e.reason.contains(reason), "{raw}: {}", e.reason);
            }
            (expected, got) => panic!("{raw}: expected {expected:?}, got {got:?}"),
        }
    }

    #[test]
    fn destination_urls() {
        check_url("https://hooks.example.org/in", false, Ok("https://hooks.example.org/in"));
        check_url(
            " http://Hooks.Example.org:8080/a?b=c#frag ",
            false,
            Ok("http://hooks.example.org:8080/a?b=c"),
        );
        check_url("https://93.184.215.14/x", false, Ok("https://93.184.215.14/x"));
        check_url("", false, Err("empty"));
        check_url("hooks.example.org/in", false, Err("not a URL"));
        check_url("ftp://hooks.example.org/", false, Err("http or https"));
        check_url("javascript:alert(1)", false, Err("http or https"));
        check_url("https://user:pw@hooks.example.org/", false, Err("user name or password"));
        check_url("http://127.0.0.1:9000/hook", false, Err("loopback"));
        check_url("http://127.0.0.1:9000/hook", true, Ok("http://127.0.0.1:9000/hook"));
        // Spellings of loopback that parsers normalise.
        check_url("http://0x7f.1/", false, Err("127.0.0.1"));
        check_url("http://2130706433/", false, Err("127.0.0.1"));
        check_url("http://[::1]/", false, Err("loopback"));
        check_url("http://[::ffff:10.0.0.1]/", false, Err("loopback"));
        check_url("http://localhost:8080/", false, Err("localhost"));
        check_url("http://api.localhost./", false, Err("api.localhost"));
        check_url("http://169.254.169.254/latest/meta-data", false, Err("169.254.169.254"));
        check_url(&format!("https://example.org/{}", "a".repeat(MAX_URL_LEN)), false, Err("at most"));
    }

    #[test]
    fn public_addresses() {
        let table = [
            ("8.8.8.8", true),
            ("93.184.215.14", true),
            ("2606:4700::1111", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.32.0.1", true),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.128.0.1", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("224.0.0.1", false),
            ("255.255.255.255", false),
            ("240.0.0.1", false),
            ("::", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("64:ff9b::a00:1", false),
            ("64:ff9b::808:808", true),
            ("2002:7f00:1::", false),
            ("2002:808:808::", true),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("2001:0:4136:e378::1", false),
            ("100::1", false),
        ];
        for (ip, expected) in table {
            assert_eq!(is_public(ip.parse().unwrap()), expected, "{ip}");
        }
    }

    #[test]
    fn event_filters() {
        let ok = |v: &[&str]| validate_events("events", &v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ok(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(
            ok(&[" Item.Created ", "item.created", "record.*"]).unwrap(),
            ["item.created", "record.*"]
        );
        let e = ok(&["item.created", "item.create"]).unwrap_err();
        assert_eq!(e.field, "events[1]");
        assert!(e.reason.contains("'item.create' is not an event name"), "{}", e.reason);
        assert_eq!(ok(&["ticket.*"]).unwrap_err().field, "events[0]");
        assert_eq!(ok(&["*"]).unwrap_err().field, "events[0]");
        let names: std::collections::BTreeSet<_> = EventData::NAMES.iter().collect();
        assert_eq!(names.len(), EventData::NAMES.len(), "event names are distinct");
    }

    #[test]
    fn secrets() {
        assert!(validate_secret("secret", &"k".repeat(16)).is_ok());
        assert!(validate_secret("secret", &"k".repeat(15)).unwrap_err().reason.contains("16 to 256"));
        assert!(validate_secret("secret", &"k".repeat(257)).is_err());
        assert!(validate_secret("secret", "with a space in it!!").unwrap_err().reason.contains("printable"));
        assert!(validate_secret("secret", "ünïcödé-secret-value").is_err());
    }

    #[test]
    fn cursor_ids_are_stable_and_distinct() {
        let a = WorkspaceId(Uuid::from_u128(1));
        let b = WorkspaceId(Uuid::from_u128(2));
        assert_eq!(EventCursor::id_for(a, "webhooks"), EventCursor::id_for(a, "webhooks"));
        assert_ne!(EventCursor::id_for(a, "webhooks"), EventCursor::id_for(b, "webhooks"));
        assert_ne!(EventCursor::id_for(a, "webhooks"), EventCursor::id_for(a, "search"));
    }

    #[test]
    fn origins_hide_paths() {
        assert_eq!(hook(&[]).origin(), "https://hooks.example.org");
        assert_eq!(origin("http://h.example:81/x?token=1"), "http://h.example:81");
    }
}
