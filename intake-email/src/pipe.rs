//! `tandem mail-ingest`: one message on stdin from an MTA's pipe transport. The exit code tells
//! the MTA what to do (sysexits.h): 0 stored, 75 try again later, anything else a permanent
//! refusal with the reason on stderr.

use mail_parser::MessageParser;
use tandem_core::mail::MailTransport;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::intake::{Delivery, Intake};
use crate::read::Envelope;

/// Stored (processed, quarantined or a duplicate).
pub const EX_OK: u8 = 0;
/// The input is not a message, or is empty.
pub const EX_DATAERR: u8 = 65;
/// No workspace receives mail at the recipient.
pub const EX_NOUSER: u8 = 67;
/// Refused for good (too large).
pub const EX_UNAVAILABLE: u8 = 69;
/// Nothing stored; the MTA should retry.
pub const EX_TEMPFAIL: u8 = 75;

/// The exit code and a line for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeOutcome {
    pub code: u8,
    pub message: String,
}

/// Who a piped message is for when the MTA did not say: `Delivered-To`, `X-Original-To`, then
/// `To` and `Cc`.
pub fn recipients_from_headers(raw: &[u8]) -> Vec<String> {
    let Some(msg) = MessageParser::default().parse_headers(raw) else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for name in ["Delivered-To", "X-Original-To"] {
        for v in msg.header_values(name) {
            if let Some(t) = v.as_text() {
                out.push(t.trim().trim_matches(['<', '>']).to_lowercase());
            }
        }
    }
    for a in msg.to().into_iter().chain(msg.cc()) {
        out.extend(a.iter().filter_map(|a| a.address()).map(|a| a.trim().to_lowercase()));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|a| tandem_core::fields::is_email(a) && seen.insert(a.clone()));
    out
}

/// Reads one message from `input` (at most the size limit plus one byte, so a larger one is
/// recognised without reading it all) and delivers it to `recipients`, or, when none are given,
/// to the first header address a workspace receives mail at.
pub async fn ingest<R: AsyncRead + Unpin>(
    intake: &Intake,
    input: R,
    sender: Option<String>,
    recipients: Vec<String>,
) -> PipeOutcome {
    let limit = intake.limits().max_message_bytes;
    let mut raw = Vec::new();
    if let Err(e) = input.take(limit + 1).read_to_end(&mut raw).await {
        return PipeOutcome { code: EX_TEMPFAIL, message: format!("reading the message failed: {e}") };
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return PipeOutcome { code: EX_DATAERR, message: "no message on standard input".into() };
    }
    let recipients = if recipients.is_empty() {
        let mut found = Vec::new();
        for r in recipients_from_headers(&raw) {
            match intake.workspace_of(&r).await {
                Ok(Some(_)) => {
                    found.push(r);
                    break;
                }
                Ok(None) => {}
                Err(e) => return PipeOutcome { code: EX_TEMPFAIL, message: e },
            }
        }
        if found.is_empty() {
            return PipeOutcome {
                code: EX_NOUSER,
                message: "no recipient given and no header address is received by any workspace".into(),
            };
        }
        found
    } else {
        recipients
    };
    let envelope = Envelope { transport: MailTransport::Pipe, mail_from: sender, recipients };
    let results = intake.deliver(raw, &envelope).await;
    let line = results.iter().map(|(r, d)| format!("{r}: {}", d.describe())).collect::<Vec<_>>().join("; ");
    let code = if results.iter().any(|(_, d)| matches!(d, Delivery::Temporary(_))) {
        EX_TEMPFAIL
    } else if results.iter().all(|(_, d)| d.is_stored()) {
        EX_OK
    } else if results.iter().any(|(_, d)| matches!(d, Delivery::Rejected(_))) {
        EX_UNAVAILABLE
    } else {
        EX_NOUSER
    };
    PipeOutcome { code, message: line }
}
