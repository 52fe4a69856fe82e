//! Conversations: public and internal messages on an item, attachments, `@mentions`, and the
//! HTML sanitising every message body goes through.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Invalid;
use crate::ids::{AttachmentId, ItemId, MessageId, UserId, WorkspaceId};
use crate::item::{ActorRef, Channel};

/// Public messages reach the requester and external followers; internal ones only staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Internal,
}

/// Headers kept from an email so that replies thread back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailMeta {
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub workspace_id: WorkspaceId,
    pub item: ItemId,
    pub author: ActorRef,
    pub visibility: Visibility,
    pub channel: Channel,
    /// Plain text (what search indexes and plain-text mail carries).
    pub text: String,
    /// Sanitised HTML: safe to render as is.
    pub html: String,
    pub attachments: Vec<AttachmentId>,
    pub mentions: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailMeta>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// A file attached to an item (and possibly to one of its messages). The bytes live in a
/// content-addressed blob keyed by `sha256`, shared by identical uploads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub workspace_id: WorkspaceId,
    pub item: ItemId,
    pub message: Option<MessageId>,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub uploaded_by: ActorRef,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

pub const MAX_MESSAGE_CHARS: usize = 500_000;

/// Removes everything unsafe from HTML (scripts, event handlers, `javascript:` links, styles,
/// iframes...) and keeps formatting, links and images.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default().link_rel(Some("noopener noreferrer nofollow")).clean(html).to_string()
}

/// Escapes text and turns paragraphs and line breaks into HTML.
pub fn text_to_html(text: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape(p.trim_matches('\n')).replace('\n', "<br>")))
        .collect()
}

fn block_breaks() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6]|blockquote|pre|table)\s*>")
            .unwrap_or_else(|_| unreachable!())
    })
}

/// Plain text of an HTML body: tags dropped, block ends become line breaks, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let with_breaks = block_breaks().replace_all(html, "\n");
    let stripped = ammonia::Builder::empty().clean(&with_breaks).to_string();
    let decoded = decode_entities(&stripped);
    let mut out = String::new();
    let mut blank = 0;
    for line in decoded.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_start());
    }
    out
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail[..tail.len().min(12)].find(';') else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16).ok().and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A message body as submitted: plain text or HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", content = "content", rename_all = "snake_case")]
pub enum Body {
    Text(String),
    Html(String),
}

/// Produces the stored (text, sanitised html) pair of a body, rejecting empty and oversized ones.
pub fn render_body(body: &Body) -> Result<(String, String), Invalid> {
    let (text, html) = match body {
        Body::Text(t) => {
            let t = t.trim().to_string();
            let html = text_to_html(&t);
            (t, html)
        }
        Body::Html(h) => {
            let html = sanitize_html(h);
            (html_to_text(&html), html)
        }
    };
    if text.trim().is_empty() {
        return Err(Invalid::new("body", "must not be empty"));
    }
    crate::hierarchy::validate_multiline("body", &text, MAX_MESSAGE_CHARS)?;
    crate::hierarchy::validate_multiline("body", &html, MAX_MESSAGE_CHARS * 4)?;
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Invalid::new("body", format!("must be at most {MAX_MESSAGE_CHARS} characters")));
    }
    Ok((text, html))
}

fn mention_pattern() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?:^|[^\w@.])@([A-Za-z0-9][A-Za-z0-9._-]{1,31})")
            .unwrap_or_else(|_| unreachable!())
    })
}

/// The handles `@mentioned` in a text, lowercased, first occurrence order, without duplicates.
/// An email address (`ana@clinic.example`) is not a mention.
pub fn extract_mentions(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    mention_pattern()
        .captures_iter(text)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str().trim_end_matches(['.', '-', '_']).to_lowercase())
        .filter(|h| h.len() >= 2 && seen.insert(h.clone()))
        .collect()
}

/// Hex SHA-256 of some bytes: the address of a blob.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A filename safe to store and to offer for download: no directories, no control characters,
/// at most 200 characters.
pub fn sanitize_filename(name: &str) -> Result<String, Invalid> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | '|' | ':' | '*' | '?'))
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        return Err(Invalid::new("filename", "must name a file"));
    }
    Ok(cleaned.chars().take(200).collect())
}

/// A MIME type as `type/subtype`, lowercased; anything else becomes `application/octet-stream`.
pub fn normalise_content_type(ct: &str) -> String {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let valid = essence.split_once('/').is_some_and(|(t, s)| {
        let ok = |p: &str| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
        };
        ok(t) && ok(s)
    });
    if valid { essence } else { "application/octet-stream".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_sanitised() {
        for (dirty, must_not_contain) in [
            ("<p onclick=\"x()\">hi</p>", "onclick"),
            ("<script>alert(1)</script><b>ok</b>", "alert"),
            ("<a href=\"javascript:alert(1)\">x</a>", "javascript"),
            ("<iframe src=\"https://evil.example\"></iframe>", "iframe"),
            ("<img src=x onerror=alert(1)>", "onerror"),
            ("<style>body{}</style>text", "body{}"),
        ] {
            let clean = sanitize_html(dirty);
            assert!(!clean.contains(must_not_contain), "{dirty} -> {clean}");
        }
        assert!(sanitize_html("<a href=\"https://x.example\">x</a>").contains("noopener"));
    }

    #[test]
    fn bodies_render_both_ways() {
        let (text, html) = render_body(&Body::Text("Hello <team>\n\nSecond & last".into())).unwrap();
        assert_eq!(text, "Hello <team>\n\nSecond & last");
        assert_eq!(html, "<p>Hello &lt;team&gt;</p><p>Second &amp; last</p>");
        let (text, html) = render_body(&Body::Html(
            "<p>Printer <b>down</b></p><p>Room&nbsp;4 &amp; 5<br>asap</p><script>x</script>".into(),
        ))
        .unwrap();
        assert_eq!(text, "Printer down\nRoom 4 & 5\nasap");
        assert!(!html.contains("script"));
        assert_eq!(render_body(&Body::Text("   ".into())).unwrap_err().field, "body");
        assert_eq!(render_body(&Body::Html("<p> </p>".into())).unwrap_err().field, "body");
        for bad in [Body::Text("nul\u{0}byte".into()), Body::Html("<p>esc\u{1b}[31m</p>".into())] {
            assert!(render_body(&bad).unwrap_err().reason.contains("control"), "{bad:?}");
        }
        assert!(render_body(&Body::Text("tab\tand\r\nline".into())).is_ok());
    }

    #[test]
    fn mentions() {
        for (text, expected) in [
            ("@ana please look, cc @Ben.", vec!["ana", "ben"]),
            ("mail ana@clinic.example", vec![]),
            ("@ana @ana @a", vec!["ana"]),
            ("(@dev_ops) and\n@it-desk", vec!["dev_ops", "it-desk"]),
        ] {
            assert_eq!(extract_mentions(text), expected, "{text}");
        }
    }

    #[test]
    fn filenames_and_types() {
        assert_eq!(sanitize_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\a\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(sanitize_filename("a\u{0}b.txt").unwrap(), "ab.txt");
        assert!(sanitize_filename("..").is_err());
        assert_eq!(normalise_content_type("Text/Plain; charset=utf-8"), "text/plain");
        assert_eq!(normalise_content_type("garbage"), "application/octet-stream");
    }
}
