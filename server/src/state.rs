//! What every request handler shares: the `Desk`, the server administrator's token hash and how
//! people sign in.

use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use tandem_core::{Desk, WorkspaceId};
use tandem_integrations::{Egress, FlowEngine, PluginRuntime};

use crate::error::ApiError;
use crate::plugins::Plugins;
use crate::sign_in::SignInConfig;

/// The server administrator's credential, kept only as its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AdminToken {
    sha256: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    pub fn from_secret(secret: &str) -> Self {
        Self { sha256: Sha256::digest(secret.as_bytes()).into() }
    }

    /// From the hex digest kept in the server settings.
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let bytes = hex::decode(hex_digest.trim()).ok()?;
        Some(Self { sha256: bytes.try_into().ok()? })
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// Whether `secret` is this token, in time independent of where the digests differ.
    pub fn matches(&self, secret: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        constant_time_eq(&candidate, &self.sha256)
    }
}

/// Compares two byte strings without an early exit, so response times say nothing about how
/// much of a secret's digest was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    desk: Desk,
    /// The flow engine incoming webhooks use (made on first use).
    flows: OnceLock<Arc<FlowEngine>>,
    admin: AdminToken,
    sign_in: SignInConfig,
    /// The oldest workspace, where the server administrator acts without a `Tandem-Workspace`
    /// header. Workspaces are never deleted, so once known it never changes.
    default_workspace: OnceLock<WorkspaceId>,
    /// The plugin runtime: given by `serve` (shared with the job runner), else made on first use.
    plugins: OnceLock<Arc<Plugins>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("desk", &self.inner.desk).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(desk: Desk, admin: AdminToken) -> Self {
        Self::with_sign_in(desk, admin, SignInConfig::default())
    }

    pub fn with_sign_in(desk: Desk, admin: AdminToken, sign_in: SignInConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                desk,
                flows: OnceLock::new(),
                admin,
                sign_in,
                default_workspace: OnceLock::new(),
                plugins: OnceLock::new(),
            }),
        }
    }

    /// The flow engine incoming webhooks run through.
    pub fn flows(&self) -> Result<&Arc<FlowEngine>, ApiError> {
        if let Some(engine) = self.inner.flows.get() {
            return Ok(engine);
        }
        let egress = Egress { allow_private: self.inner.desk.limits().allow_private_webhooks };
        let engine = FlowEngine::new(
            self.inner.desk.clone(),
            self.plugins().ok().map(|p| p as Arc<dyn PluginRuntime>),
            egress,
            std::time::Duration::from_secs(15),
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot set up the flow engine");
            ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "unavailable", "flows are unavailable")
        })?;
        Ok(self.inner.flows.get_or_init(|| Arc::new(engine)))
    }

    /// Uses `plugins` as this server's plugin runtime (the one the job runner uses too).
    pub fn with_plugins(self, plugins: Arc<Plugins>) -> Self {
        let _ = self.inner.plugins.set(plugins);
        self
    }

    /// The plugin runtime, made on first use when `serve` gave none.
    pub fn plugins(&self) -> Result<Arc<Plugins>, ApiError> {
        if let Some(p) = self.inner.plugins.get() {
            return Ok(p.clone());
        }
        let config = Plugins::host_config(self.inner.desk.limits().allow_private_webhooks);
        let made = Plugins::new(self.inner.desk.clone(), config).map_err(|e| {
            tracing::error!(error = %e, "the plugin host cannot start");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "plugins cannot run on this server",
            )
        })?;
        Ok(self.inner.plugins.get_or_init(|| Arc::new(made)).clone())
    }

    pub fn sign_in(&self) -> &SignInConfig {
        &self.inner.sign_in
    }

    pub fn desk(&self) -> &Desk {
        &self.inner.desk
    }

    pub fn admin_token(&self) -> &AdminToken {
        &self.inner.admin
    }

    /// The largest request body accepted: one attachment at the limit plus room for the
    /// multipart framing and a message body.
    pub fn body_limit(&self) -> usize {
        let max = self.inner.desk.limits().max_attachment_bytes.saturating_add(1024 * 1024);
        usize::try_from(max).unwrap_or(usize::MAX)
    }

    /// The oldest workspace, or the nil id while there is none (only `POST /workspaces` is
    /// useful then).
    pub async fn default_workspace(&self) -> Result<WorkspaceId, ApiError> {
        if let Some(ws) = self.inner.default_workspace.get() {
            return Ok(*ws);
        }
        let all = self.inner.desk.store().workspaces().await?;
        match all.first() {
            Some(first) => Ok(*self.inner.default_workspace.get_or_init(|| first.id)),
            None => Ok(WorkspaceId(uuid::Uuid::nil())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_round_trips_and_matches() {
        let t = AdminToken::from_secret("tdm_secret");
        assert!(t.matches("tdm_secret"));
        assert!(!t.matches("tdm_secreT"));
        assert!(!t.matches(""));
        assert_eq!(AdminToken::from_hex(&t.to_hex()), Some(t));
        assert_eq!(AdminToken::from_hex("abcd"), None);
        assert_eq!(AdminToken::from_hex("zz"), None);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
