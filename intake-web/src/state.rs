//! What every page handler shares.

use std::sync::Arc;

use axum::http::HeaderMap;
use tandem_core::{Actor, Desk};

/// Who is signed in, as the server decides it (its session cookie). A port, so this crate
/// neither reads session records itself nor depends on the server.
///
/// Contract: `actor` returns the live session's user (active account) or `None`; it never
/// checks a CSRF token, so a caller must not change anything on this answer alone.
#[async_trait::async_trait]
pub trait Sessions: Send + Sync + std::fmt::Debug {
    async fn actor(&self, headers: &HeaderMap) -> Option<Actor>;
}

/// Nobody is ever signed in (pages for anonymous visitors only).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSessions;

#[async_trait::async_trait]
impl Sessions for NoSessions {
    async fn actor(&self, _: &HeaderMap) -> Option<Actor> {
        None
    }
}

#[derive(Debug, Clone)]
pub struct WebState {
    pub desk: Desk,
    pub sessions: Arc<dyn Sessions>,
    /// Chats started per client address (the widget's anonymous visitors).
    pub(crate) chat_starts: Arc<crate::widget::limit::Window>,
}

impl WebState {
    pub fn new(desk: Desk, sessions: Arc<dyn Sessions>) -> Self {
        Self { desk, sessions, chat_starts: Arc::default() }
    }
}
