//! Email in the server: the reply-token key and loop id (server settings, made once and shared by
//! every instance on the database), the SMTP/LMTP listener `tandem serve --smtp-listen` runs, and
//! `tandem mail-ingest`.

use anyhow::Context;
use tandem_core::{Desk, Store};
use tandem_intake_email::{Intake, IntakeLimits, ReplyKey};

pub const REPLY_KEY_SETTING: &str = "mail_reply_key";
pub const LOOP_ID_SETTING: &str = "mail_loop_id";

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use rand::TryRngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.try_fill_bytes(&mut buf).context("the operating system's random source failed")?;
    Ok(hex::encode(buf))
}

/// A server setting, generated on first use. Two instances starting at once may both generate
/// one; the last write wins and both re-read it, so they agree afterwards.
async fn setting_or_new(store: &dyn Store, key: &str, bytes: usize) -> anyhow::Result<String> {
    if let Some(v) = store.server_setting(key).await.context("cannot read the server settings")? {
        return Ok(v);
    }
    store.set_server_setting(key, &random_hex(bytes)?).await.context("cannot store a server setting")?;
    store
        .server_setting(key)
        .await
        .context("cannot read the server settings")?
        .with_context(|| format!("the server setting {key} vanished"))
}

/// The mail intake over `desk`, with the server's reply-token key and loop id.
pub async fn intake(desk: Desk, limits: IntakeLimits) -> anyhow::Result<Intake> {
    let store = desk.store().clone();
    let key_hex = setting_or_new(store.as_ref(), REPLY_KEY_SETTING, 32).await?;
    let key = ReplyKey::from_hex(&key_hex)
        .with_context(|| format!("the stored {REPLY_KEY_SETTING} is unusable"))?;
    let loop_id = setting_or_new(store.as_ref(), LOOP_ID_SETTING, 12).await?;
    Ok(Intake::new(desk, key, loop_id, limits))
}
