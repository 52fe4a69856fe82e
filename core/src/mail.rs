//! Email as a channel: a workspace's mail settings (an inbound address per item type, the default
//! type, whether copied people follow, what a reply to a closed item does, outbound templates),
//! the record kept of every message received, and the pure threading rule.
//!
//! MIME is not parsed here: `tandem-intake-email` turns raw bytes into an [`InboundEmail`] and
//! the [`ReceiveEmail`](crate::commands::ReceiveEmail) command decides what it becomes.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::commands::NewFile;
use crate::conversation::{Body, EmailMeta};
use crate::error::Invalid;
use crate::ids::{
    InboundMailId, ItemId, ItemTypeId, MailSettingsId, MessageId, OutboundMailId, UserId, WorkspaceId,
};
use crate::item::Item;
use crate::workflow::StatusCategory;

/// The kind of the job that sends one mail ([`MailJob`]); its handler lives in
/// `tandem-intake-email` and the server registers it.
pub const MAIL_SEND_JOB: &str = "mail.send";

/// The payload of a `mail.send` job: one mail to one recipient, rendered from a template when the
/// job runs (so a template corrected meanwhile applies) and sent through the server's SMTP relay.
/// Everything that mails someone — notifications to followers, automation replies, magic-link
/// sign-in, scheduled reports — enqueues one of these in the commit that causes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailJob {
    /// A template in [`MailSettings::templates`], or a built-in one of that name.
    pub template: String,
    /// Lowercased address.
    pub to: String,
    #[serde(default)]
    pub to_name: Option<String>,
    /// The item the mail is about: threading headers, the tokenised reply address and the
    /// per-item rate limit. `None` for mail about an account (sign-in links) or a report.
    #[serde(default)]
    pub item: Option<ItemId>,
    /// Placeholder values (`{{item.number}}`, `{{link}}`...).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Automatic mail (notifications, automation replies) carries `Auto-Submitted` and counts
    /// against the rate limits; mail the recipient asked for (a sign-in link) does not count.
    pub automatic: bool,
    /// Files attached to the mail, stored as blobs of the workspace in the commit that enqueued
    /// the job (a scheduled report's CSV or XLSX).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<MailAttachment>,
    /// HTML added to the rendered HTML body after the template's, already escaped by whoever
    /// made it (a scheduled report's table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html_appendix: Option<String>,
}

/// A file attached to an outbound mail: a blob of the workspace, by SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailAttachment {
    pub filename: String,
    pub content_type: String,
    pub sha256: String,
}

/// One of the workspace's own addresses and the item type mail to it creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundAddress {
    /// Lowercase, without a `+tag`: `it@desk.example` also receives `it+anything@desk.example`.
    pub address: String,
    pub item_type: ItemTypeId,
}

/// What an email reply to a closed item does (per item type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyToClosed {
    /// Post the reply and move the item to its workflow's customer-reply status.
    #[default]
    Reopen,
    /// Leave the closed item alone and open a new one linked to it.
    NewLinkedItem,
}

/// An outbound template: `{{name}}` placeholders, rendered by `tandem-intake-email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The placeholders a template may use; mail renders each from the job's values (an absent one
/// renders empty). `url` and `workspace` are filled in by the sender.
pub const TEMPLATE_VARS: [&str; 12] = [
    "title",
    "number",
    "author",
    "body",
    "url",
    "status",
    "assignee",
    "filename",
    "workspace",
    "event",
    "link",
    "recipient",
];

/// Checks a template text's `{{placeholders}}`: each must be closed and one of [`TEMPLATE_VARS`].
pub fn check_placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "a placeholder is not closed: '{}'",
                after.chars().take(30).collect::<String>()
            ));
        };
        let name = after[..end].trim();
        if !TEMPLATE_VARS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}}; known ones are {}",
                TEMPLATE_VARS.join(", ")
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// A workspace's mail configuration, one record per workspace (its id is the workspace's id):
/// routing a message needs all of it at once, so it is read in one go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailSettings {
    pub id: MailSettingsId,
    pub workspace_id: WorkspaceId,
    pub addresses: Vec<InboundAddress>,
    /// The type of items made from mail that reaches no type's address (forwarded mail, an IMAP
    /// mailbox read whatever its `To`).
    pub default_type: Option<ItemTypeId>,
    /// Whether the people a sender copied (`Cc`, and `To` addresses other than ours) follow the item.
    pub copied_follow: bool,
    /// Per item type; [`ReplyToClosed::Reopen`] when absent.
    #[serde(default)]
    pub reply_to_closed: BTreeMap<ItemTypeId, ReplyToClosed>,
    /// The display name on outbound mail (`IT desk <it@desk.example>`).
    #[serde(default)]
    pub from_name: Option<String>,
    /// Outbound templates by name (`message_posted`, `status_changed`...); built-in ones apply
    /// when absent.
    #[serde(default)]
    pub templates: BTreeMap<String, MailTemplate>,
    pub version: i64,
}

impl MailSettings {
    /// The settings of a workspace that has configured nothing: no address receives mail.
    pub fn empty(ws: WorkspaceId) -> Self {
        Self {
            id: MailSettingsId(ws.0),
            workspace_id: ws,
            addresses: Vec::new(),
            default_type: None,
            copied_follow: true,
            reply_to_closed: BTreeMap::new(),
            from_name: None,
            templates: BTreeMap::new(),
            version: 0,
        }
    }

    /// Whether `address` (any case, with or without a `+tag`) is one of ours.
    pub fn is_ours(&self, address: &str) -> bool {
        let (base, _) = split_plus(address);
        self.addresses.iter().any(|a| a.address == base)
    }

    /// The first of `recipients` that is ours, with its `+tag` and the type it routes to.
    pub fn route<'a>(&self, recipients: impl IntoIterator<Item = &'a str>) -> Option<Route> {
        recipients.into_iter().find_map(|r| {
            let (base, tag) = split_plus(r);
            self.addresses.iter().find(|a| a.address == base).map(|a| Route {
                address: base.clone(),
                tag,
                item_type: a.item_type,
            })
        })
    }

    /// The type a new item from mail to `recipients` gets: the first of ours that names one, else
    /// the workspace default.
    pub fn item_type_for<'a>(
        &self,
        recipients: impl IntoIterator<Item = &'a str>,
    ) -> Result<ItemTypeId, Invalid> {
        let recipients: Vec<&str> = recipients.into_iter().collect();
        self.route(recipients.iter().copied()).map(|r| r.item_type).or(self.default_type).ok_or_else(|| {
            Invalid::new(
                "recipients",
                format!(
                    "no item type receives mail at {} and the workspace has no default type",
                    if recipients.is_empty() { "(no recipient)".to_string() } else { recipients.join(", ") }
                ),
            )
        })
    }

    pub fn reply_policy(&self, item_type: ItemTypeId) -> ReplyToClosed {
        self.reply_to_closed.get(&item_type).copied().unwrap_or_default()
    }

    /// The address outbound mail about items of `item_type` comes from: that type's address, else
    /// the first one.
    pub fn from_address(&self, item_type: ItemTypeId) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.item_type == item_type)
            .or(self.addresses.first())
            .map(|a| a.address.as_str())
    }
}

/// Where a message was routed: which of our addresses, its `+tag`, and the type it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub address: String,
    pub tag: Option<String>,
    pub item_type: ItemTypeId,
}

/// Splits `it+tag@desk.example` into (`it@desk.example`, `tag`), lowercased.
pub fn split_plus(address: &str) -> (String, Option<String>) {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>').to_lowercase();
    let Some((local, domain)) = address.rsplit_once('@') else { return (address, None) };
    match local.split_once('+') {
        Some((base, tag)) if !base.is_empty() => (format!("{base}@{domain}"), Some(tag.to_string())),
        _ => (address.clone(), None),
    }
}

/// Which transport delivered a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailTransport {
    Smtp,
    Lmtp,
    Imap,
    Pipe,
}

/// What kind of mail it is, decided before anything else happens to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailClass {
    /// A person wrote it.
    Personal,
    /// Sent through a mailing list: handled like a personal message, never answered automatically.
    List,
    /// Bulk or machine-generated mail (`Precedence: bulk`, `Auto-Submitted: auto-generated`, a
    /// monitoring alert): handled like a personal message, never answered automatically.
    Automated,
    /// An out-of-office or other automatic reply: recorded, never turned into an item or message.
    AutoReply,
    /// A delivery status notification: the failed recipients' addresses are marked bouncing.
    Bounce,
    /// Our own mail coming back: recorded and dropped.
    Loop,
}

impl MailClass {
    /// Whether an automatic mail may be sent in answer (never to an automatic mail).
    pub fn may_be_answered_automatically(self) -> bool {
        self == MailClass::Personal
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MailClass::Personal => "personal",
            MailClass::List => "list",
            MailClass::Automated => "automated",
            MailClass::AutoReply => "auto_reply",
            MailClass::Bounce => "bounce",
            MailClass::Loop => "loop",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Processed: it made an item or message, marked a bounce, or was deliberately dropped.
    Accepted,
    /// Kept but not processed (malformed, unroutable...): the reason says why; the raw message is
    /// stored for an operator.
    Quarantined,
    /// Refused (too large): only its size and hash are kept.
    Rejected,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundStatus::Accepted => "accepted",
            InboundStatus::Quarantined => "quarantined",
            InboundStatus::Rejected => "rejected",
        }
    }
}

/// What an accepted message became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MailOutcome {
    CreatedItem {
        item: ItemId,
    },
    PostedMessage {
        item: ItemId,
        message: MessageId,
    },
    /// A reply to a closed item whose type opens a new item instead.
    CreatedLinkedItem {
        item: ItemId,
        closed: ItemId,
    },
    Bounce {
        addresses: Vec<String>,
    },
    /// Auto-replies and our own mail coming back.
    Dropped,
}

/// The record of one received message. The raw bytes are the blob `sha256` (unless rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMail {
    pub id: InboundMailId,
    pub workspace_id: WorkspaceId,
    /// `mid:<Message-ID>`, or `sha256:<hash>` for a message without one: the same message
    /// delivered twice, or to two of our addresses, has one record and makes one item.
    pub dedupe_key: String,
    pub message_id: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub raw_stored: bool,
    pub transport: MailTransport,
    pub envelope_from: Option<String>,
    pub recipients: Vec<String>,
    pub from: Option<String>,
    pub subject: String,
    pub class: MailClass,
    pub status: InboundStatus,
    pub reason: Option<String>,
    pub outcome: Option<MailOutcome>,
    /// The item it made or was posted to.
    pub item: Option<ItemId>,
    pub received_at: DateTime<Utc>,
    pub version: i64,
}

/// What became of one `mail.send` job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundStatus {
    /// The relay accepted it.
    Sent,
    /// Deliberately not sent (a rate limit, a bouncing address, an answer to automatic mail);
    /// the reason says which.
    Withheld,
    /// The relay refused it for good (a 5xx) or it could not be built; the reason keeps the error.
    Failed,
}

impl OutboundStatus {
    pub const ALL: [OutboundStatus; 3] =
        [OutboundStatus::Sent, OutboundStatus::Withheld, OutboundStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboundStatus::Sent => "sent",
            OutboundStatus::Withheld => "withheld",
            OutboundStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The record of one outbound mail: the audit of what Tandem mailed whom, and the history the
/// rate limits count. Its id is derived from the job's idempotency key
/// ([`OutboundMail::id_for`]), so a job that runs again finds what its earlier run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMail {
    pub id: OutboundMailId,
    pub workspace_id: WorkspaceId,
    /// The `mail.send` job's idempotency key.
    pub key: String,
    /// Lowercased.
    pub recipient: String,
    pub item: Option<ItemId>,
    pub template: String,
    /// Our Message-ID (without angle brackets), when a message was built.
    pub message_id: Option<String>,
    pub subject: String,
    pub automatic: bool,
    pub status: OutboundStatus,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    pub version: i64,
}

impl OutboundMail {
    /// The record's id for a job key: the same for every run of the job.
    pub fn id_for(workspace: WorkspaceId, key: &str) -> OutboundMailId {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(workspace.0.as_bytes())
            .chain_update(b"/outbound/")
            .chain_update(key)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // A version-8 (custom) UUID, so it never collides with the time-ordered ids.
        OutboundMailId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// A name and address from a header.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mailbox {
    /// Lowercased.
    pub address: String,
    pub name: Option<String>,
}

/// What a message offers for threading, strongest first. The reply token has already been
/// verified (only an item number whose signature checked out gets here).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThreadHints {
    pub token_item: Option<i64>,
    /// `In-Reply-To` then `References`, nearest first, without angle brackets.
    pub references: Vec<String>,
    /// `[#123]` in the subject.
    pub subject_number: Option<i64>,
}

/// A parsed, classified message as the core receives it from the email adapter.
#[derive(Debug, Clone)]
pub struct InboundEmail {
    pub dedupe_key: String,
    pub message_id: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub transport: MailTransport,
    pub envelope_from: Option<String>,
    /// The envelope recipients that are ours (SMTP `RCPT TO`, or the mailbox polled).
    pub recipients: Vec<String>,
    pub class: MailClass,
    pub from: Option<Mailbox>,
    /// `To` and `Cc` addresses (ours are skipped when deciding followers).
    pub copied: Vec<Mailbox>,
    pub subject: String,
    pub meta: EmailMeta,
    /// Quoted history and signature already trimmed; `None` when the mail has no text at all.
    pub body: Option<Body>,
    pub files: Vec<NewFile>,
    pub thread: ThreadHints,
    /// For a bounce: the addresses that failed, and the DSN status (`5.1.1`).
    pub bounced: Vec<String>,
    pub bounce_status: Option<String>,
    /// Set when the adapter could not make sense of the message: it is quarantined with this reason.
    pub problem: Option<String>,
}

impl InboundEmail {
    /// A message that could not be parsed at all: only what the envelope says.
    pub fn unreadable(
        raw: &[u8],
        transport: MailTransport,
        recipients: Vec<String>,
        problem: String,
    ) -> Self {
        let sha256 = crate::conversation::sha256_hex(raw);
        Self {
            dedupe_key: format!("sha256:{sha256}"),
            message_id: None,
            sha256,
            size: raw.len() as u64,
            transport,
            envelope_from: None,
            recipients,
            class: MailClass::Personal,
            from: None,
            copied: Vec::new(),
            subject: String::new(),
            meta: EmailMeta::default(),
            body: None,
            files: Vec::new(),
            thread: ThreadHints::default(),
            bounced: Vec::new(),
            bounce_status: None,
            problem: Some(problem),
        }
    }
}

/// The raw bytes travelling with an [`InboundEmail`].
pub type RawMail = Arc<[u8]>;

/// How a reply was matched to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadVia {
    ReplyToken,
    References,
    SubjectTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadDecision {
    New,
    Reply { item: ItemId, via: ThreadVia },
}

/// The items the hints point at, as found in storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadCandidates<'a> {
    pub token: Option<&'a Item>,
    /// The item of the nearest referenced Message-ID we have stored.
    pub referenced: Option<&'a Item>,
    pub tagged: Option<&'a Item>,
    pub sender: Option<UserId>,
    pub sender_is_staff: bool,
}

/// Our reply token first (it proves the mail answers ours), then a Message-ID we stored, then a
/// `[#123]` subject tag — which anyone can type, so it only counts for staff and for people the
/// item already involves.
pub fn decide_thread(c: &ThreadCandidates<'_>) -> ThreadDecision {
    if let Some(item) = c.token {
        return ThreadDecision::Reply { item: item.id, via: ThreadVia::ReplyToken };
    }
    if let Some(item) = c.referenced {
        return ThreadDecision::Reply { item: item.id, via: ThreadVia::References };
    }
    if let Some(item) = c.tagged {
        let involved = c.sender.is_some_and(|s| item.requester == Some(s) || item.followers.contains(&s));
        if involved || c.sender_is_staff {
            return ThreadDecision::Reply { item: item.id, via: ThreadVia::SubjectTag };
        }
    }
    ThreadDecision::New
}

/// What a reply does to the item it threads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyAction {
    Post,
    /// Post, and move the item to the workflow's customer-reply status.
    PostAndReopen,
    NewLinkedItem,
}

/// A customer's reply brings a waiting or resolved item back; a closed one follows the type's
/// policy. Staff replying by mail never move the item.
pub fn reply_action(category: StatusCategory, policy: ReplyToClosed, from_staff: bool) -> ReplyAction {
    match category {
        StatusCategory::Closed => match policy {
            ReplyToClosed::Reopen if from_staff => ReplyAction::Post,
            ReplyToClosed::Reopen => ReplyAction::PostAndReopen,
            ReplyToClosed::NewLinkedItem => ReplyAction::NewLinkedItem,
        },
        StatusCategory::Waiting | StatusCategory::Resolved if !from_staff => ReplyAction::PostAndReopen,
        _ => ReplyAction::Post,
    }
}

/// Normalises a Message-ID for storage and lookup: trimmed, without angle brackets.
pub fn normalise_message_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= 998 && !id.chars().any(|c| c.is_control() || c.is_whitespace()))
        .then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ItemTypeId;
    use crate::item::{ActorRef, Channel, ItemKind, Priority};
    use chrono::TimeZone;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn item(n: u128, requester: u128, followers: &[u128]) -> Item {
        let t = Utc.timestamp_opt(0, 0).unwrap();
        Item {
            id: ItemId(Uuid::from_u128(n)),
            workspace_id: WorkspaceId(Uuid::from_u128(1)),
            number: n as i64,
            item_type: ItemTypeId(Uuid::from_u128(50)),
            kind: ItemKind::Ticket,
            title: "t".into(),
            description: String::new(),
            project: None,
            folder: None,
            parent: None,
            requester: Some(UserId(Uuid::from_u128(requester))),
            assignees: vec![],
            followers: followers.iter().map(|f| UserId(Uuid::from_u128(*f))).collect(),
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
        }
    }

    #[test]
    fn plus_addresses_split() {
        for (input, base, tag) in [
            ("IT+t12.ab@Desk.Example", "it@desk.example", Some("t12.ab")),
            ("<support@desk.example>", "support@desk.example", None),
            ("+x@desk.example", "+x@desk.example", None),
            ("a+b+c@d.example", "a@d.example", Some("b+c")),
            ("no-at-sign", "no-at-sign", None),
        ] {
            assert_eq!(split_plus(input), (base.to_string(), tag.map(String::from)), "{input}");
        }
    }

    #[test]
    fn routing() {
        let ws = WorkspaceId(Uuid::from_u128(1));
        let (it, marketing, general) =
            (ItemTypeId(Uuid::from_u128(2)), ItemTypeId(Uuid::from_u128(3)), ItemTypeId(Uuid::from_u128(4)));
        let mut s = MailSettings::empty(ws);
        s.addresses = vec![
            InboundAddress { address: "it@desk.example".into(), item_type: it },
            InboundAddress { address: "marketing@desk.example".into(), item_type: marketing },
        ];
        let check = |s: &MailSettings, rcpts: &[&str], expected: Result<ItemTypeId, ()>| {
            assert_eq!(s.item_type_for(rcpts.iter().copied()).map_err(|_| ()), expected, "{rcpts:?}");
        };
        check(&s, &["IT@desk.example"], Ok(it));
        check(&s, &["someone@else.example", "marketing+t4.x@desk.example"], Ok(marketing));
        check(&s, &["someone@else.example"], Err(()));
        check(&s, &[], Err(()));
        s.default_type = Some(general);
        check(&s, &["someone@else.example"], Ok(general));
        assert_eq!(s.route(["it+t9.zz@desk.example"]).unwrap().tag.as_deref(), Some("t9.zz"));
        assert_eq!(s.from_address(marketing), Some("marketing@desk.example"));
        assert_eq!(s.from_address(general), Some("it@desk.example"));
        let err = MailSettings::empty(ws).item_type_for(["x@y.example"]).unwrap_err();
        assert!(err.reason.contains("x@y.example"), "{err}");
    }

    #[test]
    fn thread_decisions() {
        let sender = UserId(Uuid::from_u128(7));
        let (a, b, c) = (item(10, 7, &[]), item(11, 8, &[]), item(12, 8, &[7]));
        let check = |cands: ThreadCandidates<'_>, expected: ThreadDecision| {
            assert_eq!(decide_thread(&cands), expected, "{cands:?}");
        };
        let base = ThreadCandidates { sender: Some(sender), ..Default::default() };
        check(base, ThreadDecision::New);
        check(
            ThreadCandidates { token: Some(&b), referenced: Some(&a), ..base },
            ThreadDecision::Reply { item: b.id, via: ThreadVia::ReplyToken },
        );
        check(
            ThreadCandidates { referenced: Some(&b), tagged: Some(&a), ..base },
            ThreadDecision::Reply { item: b.id, via: ThreadVia::References },
        );
        check(
            ThreadCandidates { tagged: Some(&a), ..base },
            ThreadDecision::Reply { item: a.id, via: ThreadVia::SubjectTag },
        );
        check(
            ThreadCandidates { tagged: Some(&c), ..base },
            ThreadDecision::Reply { item: c.id, via: ThreadVia::SubjectTag },
        );
        // A stranger typing someone else's number gets a new item, staff do not.
        check(ThreadCandidates { tagged: Some(&b), ..base }, ThreadDecision::New);
        check(
            ThreadCandidates { tagged: Some(&b), sender_is_staff: true, ..base },
            ThreadDecision::Reply { item: b.id, via: ThreadVia::SubjectTag },
        );
        check(ThreadCandidates { tagged: Some(&a), sender: None, ..base }, ThreadDecision::New);
    }

    #[test]
    fn reply_actions() {
        use ReplyAction::*;
        use StatusCategory as C;
        for (category, policy, staff, expected) in [
            (C::New, ReplyToClosed::Reopen, false, Post),
            (C::InProgress, ReplyToClosed::NewLinkedItem, false, Post),
            (C::Waiting, ReplyToClosed::Reopen, false, PostAndReopen),
            (C::Resolved, ReplyToClosed::NewLinkedItem, false, PostAndReopen),
            (C::Resolved, ReplyToClosed::Reopen, true, Post),
            (C::Closed, ReplyToClosed::Reopen, false, PostAndReopen),
            (C::Closed, ReplyToClosed::Reopen, true, Post),
            (C::Closed, ReplyToClosed::NewLinkedItem, false, NewLinkedItem),
            (C::Closed, ReplyToClosed::NewLinkedItem, true, NewLinkedItem),
        ] {
            assert_eq!(reply_action(category, policy, staff), expected, "{category:?} {policy:?} {staff}");
        }
    }

    #[test]
    fn message_ids() {
        assert_eq!(normalise_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(normalise_message_id("<>"), None);
        assert_eq!(normalise_message_id("a b@c"), None);
    }

    proptest! {
        /// A verified token always wins, and a subject tag never threads a stranger's mail into an
        /// item that does not involve them.
        #[test]
        fn thread_rule_invariants(
            has_token in any::<bool>(), has_ref in any::<bool>(), has_tag in any::<bool>(),
            sender in 0u128..4, requester in 0u128..4, follower in 0u128..4, staff in any::<bool>(),
        ) {
            let (t, r, g) = (item(1, requester, &[follower]), item(2, requester, &[follower]), item(3, requester, &[follower]));
            let c = ThreadCandidates {
                token: has_token.then_some(&t),
                referenced: has_ref.then_some(&r),
                tagged: has_tag.then_some(&g),
                sender: Some(UserId(Uuid::from_u128(sender))),
                sender_is_staff: staff,
            };
            let d = decide_thread(&c);
            if has_token {
                prop_assert_eq!(d, ThreadDecision::Reply { item: t.id, via: ThreadVia::ReplyToken });
            }
            if let ThreadDecision::Reply { via: ThreadVia::SubjectTag, .. } = d {
                prop_assert!(staff || sender == requester || sender == follower);
            }
            if !has_token && !has_ref && !has_tag {
                prop_assert_eq!(d, ThreadDecision::New);
            }
        }
    }
}
