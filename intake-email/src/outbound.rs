//! Outbound mail, built but not sent: our own Message-ID, `In-Reply-To`/`References` so replies
//! thread, a reply-to address carrying the item's token, `Auto-Submitted` and
//! `X-Auto-Response-Suppress` on every automatic mail, our loop header, plain text + HTML from a
//! per-workspace template; per-recipient and per-item rate limits, and never an automatic mail in
//! answer to an automatic one. Pure: the caller supplies the time, the ids and what was sent.

use std::collections::BTreeMap;
use std::time::SystemTime;

use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox as LettreMailbox, MultiPart};
use tandem_core::mail::{MailClass, MailTemplate};

use crate::classify::LOOP_HEADER;

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid address {address}: {reason}")]
    Address { address: String, reason: String },
    #[error("the message cannot be built: {0}")]
    Build(String),
}

/// One mail to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMail {
    pub from_name: Option<String>,
    pub from_address: String,
    pub to_name: Option<String>,
    pub to_address: String,
    /// The item's tokenised reply address ([`ReplyKey::reply_address`](crate::ReplyKey::reply_address)).
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Without angle brackets ([`message_id`]).
    pub message_id: String,
    /// The Message-IDs of the item's thread, oldest first; the last is what this one answers.
    pub references: Vec<String>,
    /// This server's loop id: mail carrying it that comes back is recognised and dropped.
    pub loop_id: String,
    pub date: SystemTime,
    /// Files attached after the text and HTML parts.
    pub attachments: Vec<OutboundAttachment>,
}

/// A file attached to an outbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A Message-ID of ours: `tandem.<id>@<domain>`, unique as long as `id` is.
pub fn message_id(id: uuid::Uuid, domain: &str) -> String {
    format!("tandem.{}@{}", id.simple(), domain.trim().trim_start_matches('@'))
}

/// `[#123] Subject`, unless the subject already carries the tag.
pub fn tagged_subject(subject: &str, number: i64) -> String {
    if crate::read::subject_number(subject) == Some(number) {
        subject.to_string()
    } else {
        format!("[#{number}] {subject}")
    }
}

/// Whether an automatic mail may be sent in answer to a message of this class: never to
/// automatic mail (RFC 3834), so no two robots can keep each other busy.
pub fn may_answer_automatically(class: MailClass) -> bool {
    class.may_be_answered_automatically()
}

/// Limits on automatic mail, so no loop between two robots (or a burst of changes) floods anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// At most this many automatic mails to one recipient per `window`.
    pub per_recipient: usize,
    /// At most this many automatic mails about one item per `window`.
    pub per_item: usize,
    pub window: chrono::Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { per_recipient: 20, per_item: 50, window: chrono::Duration::hours(1) }
    }
}

/// A mail sent earlier, as the outbound side remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub at: chrono::DateTime<chrono::Utc>,
    /// Lowercased.
    pub recipient: String,
    pub item: tandem_core::ItemId,
}

/// Why a mail must not be sent now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Withheld {
    #[error("{recipient} got {count} automatic mails within the window; the limit is {limit}")]
    Recipient { recipient: String, count: usize, limit: usize },
    #[error("item {item} caused {count} automatic mails within the window; the limit is {limit}")]
    Item { item: tandem_core::ItemId, count: usize, limit: usize },
    #[error("the mail answers an automatic mail ({0})")]
    AnswersAutomaticMail(&'static str),
}

/// Whether one more automatic mail to `recipient` about `item` may go out at `now`, given what
/// was sent before and the class of the mail it answers (if it answers one).
pub fn may_send(
    limits: &RateLimits,
    history: &[Sent],
    now: chrono::DateTime<chrono::Utc>,
    recipient: &str,
    item: tandem_core::ItemId,
    answers: Option<MailClass>,
) -> Result<(), Withheld> {
    if let Some(class) = answers.filter(|c| !c.may_be_answered_automatically()) {
        return Err(Withheld::AnswersAutomaticMail(class.as_str()));
    }
    let recipient = recipient.to_lowercase();
    let recent = history.iter().filter(|s| now - s.at < limits.window && s.at <= now);
    let (mut to_recipient, mut about_item) = (0, 0);
    for s in recent {
        to_recipient += usize::from(s.recipient == recipient);
        about_item += usize::from(s.item == item);
    }
    if to_recipient >= limits.per_recipient {
        return Err(Withheld::Recipient { recipient, count: to_recipient, limit: limits.per_recipient });
    }
    if about_item >= limits.per_item {
        return Err(Withheld::Item { item, count: about_item, limit: limits.per_item });
    }
    Ok(())
}

fn mailbox(name: Option<&str>, address: &str) -> Result<LettreMailbox, OutboundError> {
    let parsed = address.parse().map_err(|e: lettre::address::AddressError| OutboundError::Address {
        address: address.into(),
        reason: e.to_string(),
    })?;
    Ok(LettreMailbox::new(name.map(|n| n.replace(['\r', '\n'], " ")), parsed))
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.replace(['\r', '\n'], " "))
}

fn bracket(id: &str) -> String {
    format!("<{}>", id.trim_matches(['<', '>']))
}

/// The RFC 5322 bytes of a mail.
pub fn build(mail: &OutboundMail) -> Result<Vec<u8>, OutboundError> {
    let mut builder = lettre::Message::builder()
        .from(mailbox(mail.from_name.as_deref(), &mail.from_address)?)
        .to(mailbox(mail.to_name.as_deref(), &mail.to_address)?)
        .subject(mail.subject.replace(['\r', '\n'], " "))
        .date(mail.date)
        .message_id(Some(bracket(&mail.message_id)))
        .raw_header(header("Auto-Submitted", "auto-generated"))
        .raw_header(header("X-Auto-Response-Suppress", "All"))
        .raw_header(header(LOOP_HEADER, &mail.loop_id));
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(mailbox(mail.from_name.as_deref(), reply_to)?);
    }
    if let Some(last) = mail.references.last() {
        builder = builder
            .in_reply_to(bracket(last))
            .references(mail.references.iter().map(|r| bracket(r)).collect::<Vec<_>>().join(" "));
    }
    let body = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
    let body = if mail.attachments.is_empty() {
        body
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for a in &mail.attachments {
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|e| OutboundError::Build(format!("attachment {}: {e}", a.filename)))?;
            let name = a.filename.replace(['\r', '\n', '"'], "_");
            mixed = mixed.singlepart(Attachment::new(name).body(a.bytes.clone(), content_type));
        }
        mixed
    };
    let message = builder.multipart(body).map_err(|e| OutboundError::Build(e.to_string()))?;
    Ok(message.formatted())
}

/// A template rendered for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The templates every workspace starts with; a workspace's own ones replace them by name.
pub fn builtin_template(name: &str) -> Option<MailTemplate> {
    let t = |subject: &str, text: &str, html: &str| MailTemplate {
        subject: subject.into(),
        text: text.into(),
        html: html.into(),
    };
    Some(match name {
        "item_created" => t(
            "{{title}}",
            "We received your request and will get back to you.\n\n{{body}}\n\n-- \n{{workspace}}",
            "<p>We received your request and will get back to you.</p><blockquote>{{body}}</blockquote><p>{{workspace}}</p>",
        ),
        "message_posted" => t(
            "{{title}}",
            "{{author}} wrote:\n\n{{body}}\n\n-- \nReply to this mail to answer. {{url}}",
            "<p><b>{{author}}</b> wrote:</p><div>{{body}}</div><p style=\"color:#666\">Reply to this mail to answer. <a href=\"{{url}}\">{{url}}</a></p>",
        ),
        "internal_note" => t(
            "{{title}} (internal)",
            "Internal note by {{author}}:\n\n{{body}}\n\n-- \n{{url}}",
            "<p>Internal note by <b>{{author}}</b>:</p><div>{{body}}</div><p><a href=\"{{url}}\">{{url}}</a></p>",
        ),
        "status_changed" => t(
            "{{title}}",
            "The status of #{{number}} is now {{status}}.\n\n-- \n{{url}}",
            "<p>The status of #{{number}} is now <b>{{status}}</b>.</p><p><a href=\"{{url}}\">{{url}}</a></p>",
        ),
        "assigned" => t(
            "{{title}}",
            "#{{number}} was assigned to {{assignee}}.\n\n-- \n{{url}}",
            "<p>#{{number}} was assigned to <b>{{assignee}}</b>.</p><p><a href=\"{{url}}\">{{url}}</a></p>",
        ),
        "attachment_added" => t(
            "{{title}}",
            "{{author}} attached {{filename}} to #{{number}}.\n\n-- \n{{url}}",
            "<p>{{author}} attached <b>{{filename}}</b> to #{{number}}.</p><p><a href=\"{{url}}\">{{url}}</a></p>",
        ),
        "automation_notify" => t(
            "{{title}}",
            "{{body}}\n\n-- \n#{{number}} ({{event}}) {{url}}",
            "<div>{{body}}</div><p style=\"color:#666\">#{{number}} ({{event}}) <a href=\"{{url}}\">{{url}}</a></p>",
        ),
        "magic_link" => t(
            "Your sign-in link for {{workspace}}",
            "Open this link to sign in to {{workspace}}:\n\n{{link}}\n\nIt works once and expires soon. If you did not ask for it, ignore this mail.",
            "<p>Open this link to sign in to {{workspace}}:</p><p><a href=\"{{link}}\">{{link}}</a></p><p style=\"color:#666\">It works once and expires soon. If you did not ask for it, ignore this mail.</p>",
        ),
        "scheduled_report" => t("{{title}}", "{{body}}\n\n-- \n{{workspace}}", "<p>{{body}}</p>"),
        _ => return None,
    })
}

/// The names of the built-in templates.
pub const BUILTIN_TEMPLATES: [&str; 9] = [
    "item_created",
    "message_posted",
    "internal_note",
    "status_changed",
    "assigned",
    "attachment_added",
    "automation_notify",
    "magic_link",
    "scheduled_report",
];

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn fill(template: &str, vars: &BTreeMap<&str, String>, escape: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        // Unknown placeholders render empty rather than leaking template syntax to recipients.
        let value = vars.get(name).map(String::as_str).unwrap_or("");
        if escape {
            // The body's HTML has been sanitised already; every other value is text.
            if name == "body_html" { out.push_str(value) } else { out.push_str(&escape_html(value)) }
        } else {
            out.push_str(value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Fills `{{name}}` placeholders: as text in the subject and plain part, HTML-escaped in the
/// HTML part (where `{{body}}` becomes the text with line breaks).
pub fn render(template: &MailTemplate, vars: &BTreeMap<&str, String>) -> Rendered {
    let mut html_vars = vars.clone();
    if let Some(body) = vars.get("body") {
        html_vars.insert("body_html", escape_html(body).replace('\n', "<br>"));
    }
    let html_template = template.html.replace("{{body}}", "{{body_html}}");
    Rendered {
        subject: fill(&template.subject, vars, false).replace(['\r', '\n'], " "),
        text: fill(&template.text, vars, false),
        html: fill(&html_template, &html_vars, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_escape() {
        let t = builtin_template("message_posted").unwrap();
        let vars: BTreeMap<&str, String> = [
            ("title", "Printer <b>jam</b>".to_string()),
            ("author", "Ana & Ben".to_string()),
            ("body", "line one\n<script>x</script>".to_string()),
            ("url", "https://desk.example/items/7".to_string()),
        ]
        .into();
        let r = render(&t, &vars);
        assert_eq!(r.subject, "Printer <b>jam</b>");
        assert!(r.text.starts_with("Ana & Ben wrote:\n\nline one\n<script>x</script>"));
        assert!(r.html.contains("<b>Ana &amp; Ben</b>"), "{}", r.html);
        assert!(r.html.contains("line one<br>&lt;script&gt;"), "{}", r.html);
        assert!(!r.html.contains("<script>"));
        let custom =
            MailTemplate { subject: "{{nope}}x{{".into(), text: "{{ title }}".into(), html: String::new() };
        let r = render(&custom, &vars);
        assert_eq!((r.subject.as_str(), r.text.as_str()), ("x{{", "Printer <b>jam</b>"));
        assert!(builtin_template("unknown").is_none());
        // Every built-in template uses only placeholders workspace templates may use too.
        for name in BUILTIN_TEMPLATES {
            let t = builtin_template(name).unwrap();
            for part in [&t.subject, &t.text, &t.html] {
                tandem_core::mail::check_placeholders(part).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        let link: BTreeMap<&str, String> =
            [("link", "https://desk.example/login/abc".to_string()), ("workspace", "Desk".to_string())]
                .into();
        let r = render(&builtin_template("magic_link").unwrap(), &link);
        assert!(r.text.contains("https://desk.example/login/abc") && r.subject.contains("Desk"));
    }

    #[test]
    fn rate_limits() {
        use chrono::TimeZone;
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let item = |n: u128| tandem_core::ItemId(uuid::Uuid::from_u128(n));
        let limits = RateLimits { per_recipient: 2, per_item: 3, window: chrono::Duration::minutes(10) };
        let sent = |minutes: i64, to: &str, n: u128| Sent {
            at: t0 + chrono::Duration::minutes(minutes),
            recipient: to.into(),
            item: item(n),
        };
        let history = vec![sent(0, "a@x.example", 1), sent(5, "a@x.example", 2), sent(6, "b@x.example", 1)];
        let check = |now: i64, to: &str, n: u128, answers: Option<MailClass>| {
            may_send(&limits, &history, t0 + chrono::Duration::minutes(now), to, item(n), answers)
        };
        assert!(matches!(check(7, "A@x.example", 3, None), Err(Withheld::Recipient { count: 2, .. })));
        assert!(check(11, "a@x.example", 3, None).is_ok(), "the first mail left the window");
        assert!(check(7, "c@x.example", 3, None).is_ok());
        let mut busy = history.clone();
        busy.push(sent(7, "c@x.example", 1));
        assert!(matches!(
            may_send(&limits, &busy, t0 + chrono::Duration::minutes(8), "d@x.example", item(1), None),
            Err(Withheld::Item { count: 3, .. })
        ));
        assert!(matches!(
            check(7, "c@x.example", 3, Some(MailClass::AutoReply)),
            Err(Withheld::AnswersAutomaticMail(_))
        ));
        assert!(matches!(
            check(7, "c@x.example", 3, Some(MailClass::List)),
            Err(Withheld::AnswersAutomaticMail(_))
        ));
        assert!(check(7, "c@x.example", 3, Some(MailClass::Personal)).is_ok());
    }

    #[test]
    fn subjects_and_ids() {
        assert_eq!(tagged_subject("Printer", 7), "[#7] Printer");
        assert_eq!(tagged_subject("Re: [#7] Printer", 7), "Re: [#7] Printer");
        assert_eq!(tagged_subject("[#8] Printer", 7), "[#7] [#8] Printer");
        let id = message_id(uuid::Uuid::from_u128(5), "desk.example");
        assert_eq!(id, "tandem.00000000000000000000000000000005@desk.example");
        assert!(!may_answer_automatically(MailClass::AutoReply));
        assert!(!may_answer_automatically(MailClass::List));
        assert!(may_answer_automatically(MailClass::Personal));
    }
}
