//! Live chat: a requester (an anonymous visitor who gave a name and an address, or a signed-in
//! customer) opens a [`Chat`] from the widget; [`ChatMessage`]s are records (children of their
//! chat), so every server of a cluster and a restarted one see the same conversation.
//!
//! A visitor reaches their chat only with its token: an unguessable secret made by the adapter,
//! of which the chat keeps only the SHA-256 (`token_sha256`). A signed-in requester's chats are
//! also listed by requester (their profile). Staff see every chat.
//!
//! Lifecycle: `waiting` (no agent yet) → `active` (an agent took it) → `ended`. Ending makes a
//! ticket whose public conversation is the transcript (`item`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChatId, ChatMessageId, ItemId, UserId, WorkspaceId};

/// Longest chat message, in characters.
pub const MAX_CHAT_MESSAGE_CHARS: usize = 4_000;
/// A chat ends at this many messages (a ticket carries on from there).
pub const MAX_CHAT_MESSAGES: usize = 500;
/// How many messages a visitor may send within [`VISITOR_WINDOW`].
pub const VISITOR_MESSAGES_PER_WINDOW: usize = 12;
pub const VISITOR_WINDOW: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatStatus {
    Waiting,
    Active,
    Ended,
}

impl ChatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Waiting => "waiting",
            ChatStatus::Active => "active",
            ChatStatus::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub id: ChatId,
    pub workspace_id: WorkspaceId,
    /// The signed-in requester; `None` for an anonymous visitor.
    pub requester: Option<UserId>,
    pub visitor_name: String,
    /// Lowercased address the visitor gave (or the signed-in requester's).
    pub visitor_email: Option<String>,
    /// SHA-256 (hex) of the visitor's chat token. Never in API output.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_sha256: String,
    pub status: ChatStatus,
    pub agent: Option<UserId>,
    /// The ticket the chat became.
    pub item: Option<ItemId>,
    /// Where the visitor was when they started (the host page), as they reported it.
    #[serde(default)]
    pub page: Option<String>,
    pub message_count: u32,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl Chat {
    /// The chat as its API shows it: everything but the token digest.
    pub fn public(mut self) -> Chat {
        self.token_sha256.clear();
        self
    }
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatAuthor {
    Visitor,
    Agent {
        user: UserId,
    },
    /// Tandem itself (an agent joined, the chat ended).
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: ChatMessageId,
    pub workspace_id: WorkspaceId,
    pub chat: ChatId,
    pub author: ChatAuthor,
    /// The author's display name when it was written.
    pub author_name: String,
    /// Plain text; adapters escape it when they render it.
    pub text: String,
    /// Position in the chat (1, 2, ...): clients ask for messages after the last one they saw.
    pub seq: u32,
    pub at: DateTime<Utc>,
    pub version: i64,
}

/// Whether a visitor who sent `recent` (their messages' times) may send another at `now`.
pub fn visitor_may_send(recent: &[DateTime<Utc>], now: DateTime<Utc>) -> bool {
    recent.iter().filter(|at| **at > now - VISITOR_WINDOW).count() < VISITOR_MESSAGES_PER_WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitors_are_limited_per_window() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let burst: Vec<_> =
            (0..VISITOR_MESSAGES_PER_WINDOW as i64).map(|s| now - Duration::seconds(s)).collect();
        assert!(!visitor_may_send(&burst, now));
        assert!(visitor_may_send(&burst[1..], now));
        let old: Vec<_> = burst.iter().map(|t| *t - Duration::seconds(61)).collect();
        assert!(visitor_may_send(&old, now), "messages older than the window do not count");
    }
}
