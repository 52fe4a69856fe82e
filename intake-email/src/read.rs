//! Raw bytes → [`InboundEmail`]: parse (every charset and transfer encoding mail-parser knows),
//! classify, collect threading hints, trim quoted history and signatures, keep attachments within
//! the limits. Pure: no clock, no storage.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use mail_parser::{Addr, Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use tandem_core::commands::NewFile;
use tandem_core::conversation::{normalise_content_type, sha256_hex};
use tandem_core::mail::{InboundEmail, MailClass, MailTransport, Mailbox, ThreadHints, normalise_message_id};
use tandem_core::{Body, EmailMeta, WorkspaceId};

use crate::classify::{Classified, classify};
use crate::token::ReplyKey;
use crate::trim::{trim_html, trim_text};

/// How a message reached us: the transport and the SMTP envelope (or what stands in for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub transport: MailTransport,
    pub mail_from: Option<String>,
    pub recipients: Vec<String>,
}

/// Size limits for received mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// A larger message is refused before it is stored (SMTP answers 552).
    pub max_message_bytes: u64,
    /// A larger attachment is dropped (the message says so); the original stays in the raw mail.
    pub max_attachment_bytes: u64,
    /// Attachments beyond this total are dropped the same way.
    pub max_attachments_bytes: u64,
    pub max_attachments: usize,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 50 * 1024 * 1024,
            max_attachment_bytes: 25 * 1024 * 1024,
            max_attachments_bytes: 40 * 1024 * 1024,
            max_attachments: 50,
        }
    }
}

/// What reading needs besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub workspace: WorkspaceId,
    pub key: &'a ReplyKey,
    /// The value of our loop header: mail carrying it came from this Tandem.
    pub loop_id: &'a str,
    pub limits: IntakeLimits,
}

const MAX_REFERENCES: usize = 50;
const MAX_COPIED: usize = 100;
const MAX_TEXT_CHARS: usize = 400_000;

fn subject_tag() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\[(?:[^\[\]#]{0,40}\s)?#(\d{1,12})\]").unwrap_or_else(|_| unreachable!()))
}

/// The item number in a `[#123]` (or `[Desk #123]`) subject tag.
pub fn subject_number(subject: &str) -> Option<i64> {
    subject_tag()
        .captures(subject)
        .and_then(|c| c.get(1))
        .and_then(|m| m.as_str().parse().ok())
        .filter(|n| *n > 0)
}

fn mailbox(a: &Addr<'_>) -> Option<Mailbox> {
    let address = a.address()?.trim().to_lowercase();
    if !tandem_core::fields::is_email(&address) {
        return None;
    }
    let name =
        a.name().map(|n| n.trim().to_string()).filter(|n| !n.is_empty() && n.to_lowercase() != address);
    Some(Mailbox { address, name })
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    a.map(|a| a.iter().filter_map(mailbox).collect()).unwrap_or_default()
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => normalise_message_id(t).into_iter().collect(),
        HeaderValue::TextList(l) => l.iter().filter_map(|t| normalise_message_id(t)).collect(),
        _ => Vec::new(),
    }
}

/// `In-Reply-To` first, then `References` from the newest back, without repeats.
fn references(msg: &Message<'_>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut refs = ids(msg.in_reply_to());
    let mut older = ids(msg.references());
    older.reverse();
    refs.extend(older);
    refs.retain(|r| seen.insert(r.clone()));
    refs.truncate(MAX_REFERENCES);
    refs
}

/// Reads one message. Never fails: what cannot be understood ends up in `problem`, and the
/// message is quarantined with that reason.
pub fn read_message(raw: &[u8], envelope: &Envelope, cx: &ReadContext<'_>) -> InboundEmail {
    let recipients: Vec<String> = envelope.recipients.iter().map(|r| r.trim().to_lowercase()).collect();
    let Some(msg) = MessageParser::default().parse(raw) else {
        return InboundEmail::unreadable(raw, envelope.transport, recipients, "not an email message".into());
    };
    let known = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "Received", "MIME-Version"];
    if !known.iter().any(|h| msg.header_raw(*h).is_some()) {
        return InboundEmail::unreadable(
            raw,
            envelope.transport,
            recipients,
            "not an email message: it has none of the From, To, Subject, Date or Message-ID headers".into(),
        );
    }
    let sha256 = sha256_hex(raw);
    let message_id = msg.message_id().and_then(normalise_message_id);
    let dedupe_key = match &message_id {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{sha256}"),
    };
    let from = msg.from().and_then(|f| f.first()).and_then(mailbox);
    let to = mailboxes(msg.to());
    let cc = mailboxes(msg.cc());
    let subject = msg.subject().map(|s| s.trim().to_string()).unwrap_or_default();
    let Classified { class, bounced, bounce_status } = classify(&msg, cx.loop_id);

    let mut copied: Vec<Mailbox> = Vec::new();
    for m in to.iter().chain(&cc) {
        if copied.len() < MAX_COPIED && !copied.iter().any(|c| c.address == m.address) {
            copied.push(m.clone());
        }
    }
    // A reply token may sit in the envelope or in the headers (an IMAP mailbox has no envelope).
    let token_item = recipients
        .iter()
        .map(String::as_str)
        .chain(copied.iter().map(|c| c.address.as_str()))
        .find_map(|a| cx.key.verify_address(cx.workspace, a));
    let thread =
        ThreadHints { token_item, references: references(&msg), subject_number: subject_number(&subject) };
    let meta = EmailMeta {
        message_id: message_id.clone(),
        in_reply_to: ids(msg.in_reply_to()).into_iter().next(),
        references: ids(msg.references()),
        from: from.as_ref().map(|f| f.address.clone()),
        to: to.iter().map(|m| m.address.clone()).collect(),
        cc: cc.iter().map(|m| m.address.clone()).collect(),
        subject: (!subject.is_empty()).then(|| subject.clone()),
    };
    let mut notes = Vec::new();
    let files = if matches!(class, MailClass::Personal | MailClass::List | MailClass::Automated) {
        attachments(&msg, &cx.limits, &mut notes)
    } else {
        Vec::new()
    };
    let body = body(&msg, &notes);
    InboundEmail {
        dedupe_key,
        message_id,
        sha256,
        size: raw.len() as u64,
        transport: envelope.transport,
        envelope_from: envelope.mail_from.clone().filter(|f| !f.is_empty()),
        recipients,
        class,
        from,
        copied,
        subject,
        meta,
        body,
        files,
        thread,
        bounced,
        bounce_status,
        problem: None,
    }
}

/// The trimmed body: the plain-text part when there is one (trimming text is reliable), else the
/// HTML cut at its quote markers. Notes (attachments not kept) are appended.
fn body(msg: &Message<'_>, notes: &[String]) -> Option<Body> {
    let first_text = msg.text_body.first().and_then(|id| msg.parts.get(*id as usize));
    let plain = match first_text.map(|p| &p.body) {
        Some(PartType::Text(t)) if !t.trim().is_empty() => Some(t.to_string()),
        _ => None,
    };
    let body = match plain {
        Some(text) => Some(Body::Text(trim_text(&clip(&text)))),
        None => msg.body_html(0).map(|h| Body::Html(trim_html(&clip(&h)))),
    };
    if notes.is_empty() {
        return body;
    }
    let notes = notes.join("\n");
    Some(match body {
        Some(Body::Text(t)) => Body::Text(format!("{t}\n\n{notes}").trim().to_string()),
        Some(Body::Html(h)) => Body::Html(format!("{h}<p>{}</p>", escape(&notes).replace('\n', "<br>"))),
        None => Body::Text(notes),
    })
}

fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).take(MAX_TEXT_CHARS).collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn megabytes(n: u64) -> String {
    format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/calendar" => "ics",
        "message/rfc822" => "eml",
        _ => "bin",
    }
}

/// Attachments and inline images, each within the per-file limit and all within the per-message
/// one; a dropped file leaves a note.
fn attachments(msg: &Message<'_>, limits: &IntakeLimits, notes: &mut Vec<String>) -> Vec<NewFile> {
    let mut files = Vec::new();
    let mut total = 0u64;
    for (i, part) in msg.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .map(|ct| normalise_content_type(&ct))
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes: &[u8] = match &part.body {
            PartType::Message(m) => m.raw_message(),
            _ => part.contents(),
        };
        let filename = part
            .attachment_name()
            .map(|n| n.trim().to_string())
            .filter(|n| tandem_core::conversation::sanitize_filename(n).is_ok())
            .unwrap_or_else(|| {
                let stem = if content_type.starts_with("image/") { "image" } else { "attachment" };
                format!("{stem}-{}.{}", i + 1, extension(&content_type))
            });
        let size = bytes.len() as u64;
        let refused = if files.len() >= limits.max_attachments {
            Some(format!("a message keeps at most {} files", limits.max_attachments))
        } else if size > limits.max_attachment_bytes {
            Some(format!("files may be at most {}", megabytes(limits.max_attachment_bytes)))
        } else if total + size > limits.max_attachments_bytes {
            Some(format!("a message's files may total at most {}", megabytes(limits.max_attachments_bytes)))
        } else {
            None
        };
        if let Some(why) = refused {
            notes.push(format!("[The attachment '{filename}' ({}) was not kept: {why}.]", megabytes(size)));
            continue;
        }
        total += size;
        files.push(NewFile { filename, content_type, bytes: Arc::from(bytes) });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tags() {
        for (subject, expected) in [
            ("Re: [#123] Printer", Some(123)),
            ("[Data services #42] Export", Some(42)),
            ("Printer #123", None),
            ("[#0] zero", None),
            ("[#12345678901234] too long", None),
            ("Re: AW: [#7]", Some(7)),
        ] {
            assert_eq!(subject_number(subject), expected, "{subject}");
        }
    }
}
