//! The one pipeline every transport feeds: find the workspace(s) by recipient, refuse what is too
//! large, read the message, and hand it to `Desk` as [`ReceiveEmail`] — which stores the raw
//! bytes and the result in one commit, so a transport acknowledges only what is stored.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tandem_core::commands::{ReceiveEmail, Received};
use tandem_core::mail::{InboundEmail, InboundStatus, split_plus};
use tandem_core::{Actor, Desk, DeskError, WorkspaceId};

use crate::read::{Envelope, IntakeLimits, ReadContext, read_message};
use crate::token::ReplyKey;

/// What happened to a message for one recipient.
// Built once per delivery and matched right away; boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Stored: processed, quarantined with a reason, or a duplicate of one already stored.
    Stored(Received),
    /// Refused for good (too large); recorded with the reason.
    Rejected(String),
    /// No workspace receives mail at this address.
    UnknownRecipient,
    /// Nothing was stored; the sender should try again later.
    Temporary(String),
}

impl Delivery {
    pub fn is_stored(&self) -> bool {
        matches!(self, Delivery::Stored(_))
    }

    /// A one-line account for logs and for the SMTP reply text.
    pub fn describe(&self) -> String {
        match self {
            Delivery::Stored(r) if r.duplicate => "duplicate of a message already received".into(),
            Delivery::Stored(r) => match (&r.mail.status, &r.mail.reason) {
                (InboundStatus::Accepted, _) => match r.item_number {
                    Some(n) => format!("accepted as #{n}"),
                    None => format!("accepted ({})", r.mail.class.as_str()),
                },
                (status, Some(reason)) => format!("{}: {reason}", status.as_str()),
                (status, None) => status.as_str().to_string(),
            },
            Delivery::Rejected(reason) => format!("rejected: {reason}"),
            Delivery::UnknownRecipient => "no such mailbox".into(),
            Delivery::Temporary(reason) => format!("temporary failure: {reason}"),
        }
    }
}

/// The email intake: shared by the SMTP/LMTP listener, the IMAP poller and the stdin pipe.
#[derive(Debug, Clone)]
pub struct Intake {
    desk: Desk,
    key: ReplyKey,
    loop_id: String,
    limits: IntakeLimits,
}

/// How often a receive is re-run when it lost a race (the same new contact, the same message).
const RACE_RETRIES: usize = 4;

impl Intake {
    /// `limits.max_attachment_bytes` is capped at the desk's attachment limit.
    pub fn new(desk: Desk, key: ReplyKey, loop_id: impl Into<String>, mut limits: IntakeLimits) -> Self {
        limits.max_attachment_bytes = limits.max_attachment_bytes.min(desk.limits().max_attachment_bytes);
        Self { desk, key, loop_id: loop_id.into(), limits }
    }

    pub fn limits(&self) -> IntakeLimits {
        self.limits
    }

    pub fn desk(&self) -> &Desk {
        &self.desk
    }

    pub fn key(&self) -> &ReplyKey {
        &self.key
    }

    pub fn loop_id(&self) -> &str {
        &self.loop_id
    }

    /// The workspace receiving mail at `address` (plus tags ignored).
    pub async fn workspace_of(&self, address: &str) -> Result<Option<WorkspaceId>, String> {
        let (base, _) = split_plus(address);
        self.desk.store().mail_workspace(&base).await.map_err(|e| e.to_string())
    }

    /// Delivers one message to each envelope recipient: recipients of one workspace share one
    /// record (and one item). Returns a result per recipient, in envelope order.
    pub async fn deliver(&self, raw: Vec<u8>, envelope: &Envelope) -> Vec<(String, Delivery)> {
        let raw: Arc<[u8]> = Arc::from(raw);
        let mut by_workspace: BTreeMap<WorkspaceId, Vec<String>> = BTreeMap::new();
        let mut results: Vec<(String, Option<Delivery>)> = Vec::new();
        for r in &envelope.recipients {
            match self.workspace_of(r).await {
                Ok(Some(ws)) => {
                    by_workspace.entry(ws).or_default().push(r.to_lowercase());
                    results.push((r.clone(), None));
                }
                Ok(None) => results.push((r.clone(), Some(Delivery::UnknownRecipient))),
                Err(e) => results.push((r.clone(), Some(Delivery::Temporary(e)))),
            }
        }
        for (ws, recipients) in by_workspace {
            let env = Envelope { recipients: recipients.clone(), ..envelope.clone() };
            let outcome = self.deliver_to(ws, raw.clone(), &env).await;
            for (r, slot) in results.iter_mut() {
                if slot.is_none() && recipients.contains(&r.to_lowercase()) {
                    *slot = Some(outcome.clone());
                }
            }
        }
        results.into_iter().map(|(r, d)| (r, d.unwrap_or(Delivery::UnknownRecipient))).collect()
    }

    /// Delivers one message into one workspace.
    pub async fn deliver_to(&self, ws: WorkspaceId, raw: Arc<[u8]>, envelope: &Envelope) -> Delivery {
        let actor = Actor::system(ws);
        if raw.len() as u64 > self.limits.max_message_bytes {
            let reason =
                format!("the message is {} bytes, the limit is {}", raw.len(), self.limits.max_message_bytes);
            let mut mail = InboundEmail::unreadable(
                &raw,
                envelope.transport,
                envelope.recipients.clone(),
                reason.clone(),
            );
            mail.envelope_from = envelope.mail_from.clone();
            return match self.receive(&actor, ReceiveEmail { mail, raw: None }).await {
                Ok(_) => Delivery::Rejected(reason),
                Err(d) => d,
            };
        }
        let cx = ReadContext { workspace: ws, key: &self.key, loop_id: &self.loop_id, limits: self.limits };
        // The parser is robust, but a message must never take the server down with it.
        let mail = std::panic::catch_unwind(AssertUnwindSafe(|| read_message(&raw, envelope, &cx)))
            .unwrap_or_else(|_| {
                InboundEmail::unreadable(
                    &raw,
                    envelope.transport,
                    envelope.recipients.clone(),
                    "the message could not be parsed".into(),
                )
            });
        match self.receive(&actor, ReceiveEmail { mail, raw: Some(raw) }).await {
            Ok(received) => Delivery::Stored(received),
            Err(d) => d,
        }
    }

    async fn receive(&self, actor: &Actor, command: ReceiveEmail) -> Result<Received, Delivery> {
        let mut attempt = 0;
        loop {
            match self.desk.execute(actor, &command).await {
                Ok(received) => {
                    tracing::info!(
                        workspace = %actor.workspace_id,
                        mail = %received.mail.id,
                        status = received.mail.status.as_str(),
                        class = received.mail.class.as_str(),
                        duplicate = received.duplicate,
                        reason = received.mail.reason.as_deref().unwrap_or(""),
                        "email received"
                    );
                    return Ok(received);
                }
                // A concurrent delivery created the same contact or stored the same message first:
                // the next load sees it.
                Err(DeskError::Conflict(_)) if attempt < RACE_RETRIES => attempt += 1,
                Err(e @ DeskError::Store(_)) | Err(e @ DeskError::Conflict(_)) => {
                    tracing::warn!(error = %e, "email not stored; the sender will retry");
                    return Err(Delivery::Temporary(e.to_string()));
                }
                Err(e) => {
                    tracing::error!(error = %e, "email refused");
                    return Err(Delivery::Rejected(e.to_string()));
                }
            }
        }
    }
}
