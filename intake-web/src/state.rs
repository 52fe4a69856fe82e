//! What every page handler shares: the `Desk`, the sign-in port the server implements, the key
//! that signs guests' CSRF tokens, and the limits against abuse.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use tandem_core::{Actor, Desk, WorkspaceId};

/// A signed-in browser, as the server's session cookie says.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub actor: Actor,
    /// The session's CSRF token: every form a signed-in page renders carries it.
    pub csrf: String,
}

/// A new session: the `Set-Cookie` header that carries it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub set_cookie: HeaderValue,
}

/// Why a sign-in did not happen. The messages are safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefused {
    /// Wrong address or password — the same answer whether or not the account exists.
    Wrong,
    /// Too many failures for this address or network address.
    Locked { retry_after_secs: i64 },
    /// The link is unknown, used or expired.
    BadLink(String),
    /// Input that cannot be an answer (a malformed address).
    Invalid(String),
    /// The server cannot do it now (no public URL for links, a storage failure).
    Unavailable(String),
}

/// How the web channel signs people in. The server owns sessions, passwords and sign-in links
/// (`server/src/portal.rs` implements this), so the rules and the throttles are the API's.
#[async_trait::async_trait]
pub trait SignInPort: Send + Sync + 'static {
    /// The live session the request's cookie names, if it belongs to `ws` and its user is
    /// active; `None` otherwise (no cookie, ended, expired, another workspace).
    async fn session(&self, ws: WorkspaceId, headers: &HeaderMap) -> Option<PortalSession>;

    /// Checks a password (throttled per address and per `ip`, like `POST /auth/login`).
    async fn password(
        &self,
        ws: WorkspaceId,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<SignedIn, SignInRefused>;

    /// Mails a single-use sign-in link to a customer with this address, if there is one; the
    /// link is the server's public URL followed by `path` and the secret. Succeeds whether or
    /// not the address is known.
    async fn request_link(&self, ws: WorkspaceId, email: &str, path: &str) -> Result<(), SignInRefused>;

    /// Turns a sign-in link's secret into a session of `ws`.
    async fn use_link(
        &self,
        ws: WorkspaceId,
        secret: &str,
        headers: &HeaderMap,
    ) -> Result<SignedIn, SignInRefused>;

    /// Ends the request's session, if any; the `Set-Cookie` header that clears the cookie.
    async fn sign_out(&self, headers: &HeaderMap) -> HeaderValue;

    /// The workspace `/portal` means when none is named: the oldest one.
    async fn default_workspace(&self) -> Option<WorkspaceId>;
}

/// Nobody can sign in: for embedders that serve only open forms, the knowledge base and the
/// widget to anonymous visitors.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSignIn;

#[async_trait::async_trait]
impl SignInPort for NoSignIn {
    async fn session(&self, _: WorkspaceId, _: &HeaderMap) -> Option<PortalSession> {
        None
    }

    async fn password(
        &self,
        _: WorkspaceId,
        _: &str,
        _: &str,
        _: Option<IpAddr>,
        _: &HeaderMap,
    ) -> Result<SignedIn, SignInRefused> {
        Err(SignInRefused::Unavailable("signing in is not available here".into()))
    }

    async fn request_link(&self, _: WorkspaceId, _: &str, _: &str) -> Result<(), SignInRefused> {
        Err(SignInRefused::Unavailable("signing in is not available here".into()))
    }

    async fn use_link(&self, _: WorkspaceId, _: &str, _: &HeaderMap) -> Result<SignedIn, SignInRefused> {
        Err(SignInRefused::Unavailable("signing in is not available here".into()))
    }

    async fn sign_out(&self, _: &HeaderMap) -> HeaderValue {
        HeaderValue::from_static("tandem_session=; Path=/; Max-Age=0")
    }

    async fn default_workspace(&self) -> Option<WorkspaceId> {
        None
    }
}

/// Who is signed in, as the server decides it (its session cookie), in any workspace: the
/// knowledge base and the widget learn the workspace from the session.
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

/// Limits against abuse. Uploads are also bounded by the `Desk`'s attachment limit.
#[derive(Debug, Clone)]
pub struct WebLimits {
    /// Form submissions and replies per network address per minute.
    pub submissions_per_minute: u32,
    /// Sign-in attempts (passwords and link requests) per network address per minute.
    pub sign_ins_per_minute: u32,
    /// Largest single uploaded file.
    pub max_upload_bytes: u64,
    /// Most files per submission.
    pub max_files: usize,
}

impl Default for WebLimits {
    fn default() -> Self {
        Self {
            submissions_per_minute: 10,
            sign_ins_per_minute: 10,
            max_upload_bytes: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

#[derive(Clone)]
pub struct WebState {
    pub desk: Desk,
    pub sign_in: Arc<dyn SignInPort>,
    /// Signs guests' CSRF tokens (HMAC-SHA256); the server keeps it in its settings so every
    /// instance agrees.
    pub form_key: Arc<[u8; 32]>,
    pub limits: WebLimits,
    pub(crate) rate: Arc<RateLimiter>,
    /// Who is signed in for the knowledge base and the widget, whatever the workspace.
    pub sessions: Arc<dyn Sessions>,
    /// Chats started per client address (the widget's anonymous visitors).
    pub(crate) chat_starts: Arc<crate::widget::limit::Window>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("desk", &self.desk)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl WebState {
    pub fn new(desk: Desk, sign_in: Arc<dyn SignInPort>, form_key: [u8; 32], limits: WebLimits) -> Self {
        Self {
            desk,
            sign_in,
            form_key: Arc::new(form_key),
            limits,
            rate: Arc::new(RateLimiter::default()),
            sessions: Arc::new(NoSessions),
            chat_starts: Arc::default(),
        }
    }

    /// Uses `sessions` to recognise signed-in readers of the knowledge base and the widget.
    pub fn with_sessions(mut self, sessions: Arc<dyn Sessions>) -> Self {
        self.sessions = sessions;
        self
    }

    /// The largest request body: the files at their limit plus the form's text.
    pub fn body_limit(&self) -> usize {
        let file = self.limits.max_upload_bytes.min(self.desk.limits().max_attachment_bytes);
        let total = file.saturating_mul(self.limits.max_files as u64).saturating_add(1024 * 1024);
        usize::try_from(total).unwrap_or(usize::MAX)
    }
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    Submit,
    SignIn,
}

type WindowKey = (Bucket, Option<IpAddr>);
/// When the window started and how many attempts it has seen.
type Window = (Instant, u32);

/// Fixed one-minute windows per (bucket, network address), in this process. The durable
/// per-account throttle of failed passwords is the server's; this one stops floods cheaply.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<WindowKey, Window>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl RateLimiter {
    /// Counts one attempt; false when the address is over `per_minute` in the current window.
    pub(crate) fn allow(&self, bucket: Bucket, ip: Option<IpAddr>, per_minute: u32) -> bool {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = windows.entry((bucket, ip)).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_per_bucket_and_address() {
        let limiter = RateLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.allow(Bucket::Submit, Some(a), 2));
        assert!(limiter.allow(Bucket::Submit, Some(a), 2));
        assert!(!limiter.allow(Bucket::Submit, Some(a), 2), "the third in a minute is refused");
        assert!(limiter.allow(Bucket::Submit, Some(b), 2), "another address has its own window");
        assert!(limiter.allow(Bucket::SignIn, Some(a), 2), "sign-ins are counted apart");
    }
}
