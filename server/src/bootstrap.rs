//! The server administrator's token: taken from `TANDEM_ADMIN_TOKEN`, or generated and shown
//! once on first start. Only its SHA-256 is stored, in the server settings.

use anyhow::{Context, bail};
use tandem_core::Store;

use crate::state::AdminToken;

pub const SETTING: &str = "admin_token_sha256";

/// What bootstrapping decided.
#[derive(Debug)]
pub struct Bootstrapped {
    pub token: AdminToken,
    /// The new secret when one was generated on this start; it must be shown to the operator
    /// now, because it cannot be recovered later.
    pub generated: Option<String>,
}

/// Settles the admin token. An explicitly configured token wins (and replaces the stored
/// hash, so a later start without the variable keeps accepting it); otherwise the stored hash;
/// otherwise a new secret.
pub async fn admin_token(store: &dyn Store, configured: Option<&str>) -> anyhow::Result<Bootstrapped> {
    if let Some(secret) = configured.map(str::trim).filter(|s| !s.is_empty()) {
        if secret.len() < 16 {
            bail!("TANDEM_ADMIN_TOKEN is too short; use at least 16 characters");
        }
        let token = AdminToken::from_secret(secret);
        let stored = store.server_setting(SETTING).await.context("cannot read the server settings")?;
        if stored.as_deref() != Some(token.to_hex().as_str()) {
            store
                .set_server_setting(SETTING, &token.to_hex())
                .await
                .context("cannot store the admin token's hash")?;
        }
        return Ok(Bootstrapped { token, generated: None });
    }
    if let Some(hex_digest) =
        store.server_setting(SETTING).await.context("cannot read the server settings")?
    {
        let token = AdminToken::from_hex(&hex_digest).with_context(|| {
            format!("the stored {SETTING} is not a SHA-256 digest; set TANDEM_ADMIN_TOKEN to replace it")
        })?;
        return Ok(Bootstrapped { token, generated: None });
    }
    let secret = crate::api::new_secret().map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let token = AdminToken::from_secret(&secret);
    store
        .set_server_setting(SETTING, &token.to_hex())
        .await
        .context("cannot store the admin token's hash")?;
    Ok(Bootstrapped { token, generated: Some(secret) })
}
