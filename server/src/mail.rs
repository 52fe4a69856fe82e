//! Email in the server: the reply-token key and loop id (server settings, made once and shared by
//! every instance on the database), the SMTP/LMTP listener `tandem serve --smtp-listen` runs,
//! `tandem mail-ingest`, and outbound mail (`--smtp-relay`: the `mail.send` handler).

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
pub(crate) async fn setting_or_new(store: &dyn Store, key: &str, bytes: usize) -> anyhow::Result<String> {
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

/// `--smtp-relay` and its companions: where outbound mail goes and how it is addressed.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub relay: tandem_intake_email::send::Relay,
    pub delivery: tandem_intake_email::DeliveryConfig,
    /// Attempts each mail gets before it is a dead letter (4xx answers and network failures
    /// are retried with backoff).
    pub attempts: u32,
}

/// Parses `--smtp-relay`: `smtp://host[:port]` (STARTTLS, which must succeed; port 587),
/// `smtps://host[:port]` (TLS from the first byte; port 465) or `smtp+plain://host[:port]` (no
/// encryption, for a relay on the same host; port 25). Credentials are not taken from the URL.
pub fn parse_relay(url: &str) -> anyhow::Result<(String, u16, tandem_intake_email::send::Security)> {
    use tandem_intake_email::send::Security;
    let parsed =
        url::Url::parse(url).map_err(|e| anyhow::anyhow!("--smtp-relay {url:?} is not a URL: {e}"))?;
    let (security, default_port) = match parsed.scheme() {
        "smtp" => (Security::StartTls, 587),
        "smtps" => (Security::Tls, 465),
        "smtp+plain" => (Security::None, 25),
        other => anyhow::bail!(
            "--smtp-relay: unknown scheme {other:?}; use smtp:// (STARTTLS), smtps:// (TLS) or smtp+plain:// (no encryption)"
        ),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        anyhow::bail!("--smtp-relay must not carry credentials; use --smtp-user and TANDEM_SMTP_PASSWORD");
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--smtp-relay {url:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if !matches!(parsed.path(), "" | "/") {
        anyhow::bail!("--smtp-relay {url:?}: a relay URL has no path");
    }
    Ok((host, parsed.port().unwrap_or(default_port), security))
}

/// The `mail.send` handler over `desk`, sharing the intake's reply-token key and loop id.
pub async fn delivery(
    desk: Desk,
    config: &OutboundConfig,
) -> anyhow::Result<tandem_intake_email::MailDelivery> {
    let store = desk.store().clone();
    let key_hex = setting_or_new(store.as_ref(), REPLY_KEY_SETTING, 32).await?;
    let key = ReplyKey::from_hex(&key_hex)
        .with_context(|| format!("the stored {REPLY_KEY_SETTING} is unusable"))?;
    let loop_id = setting_or_new(store.as_ref(), LOOP_ID_SETTING, 12).await?;
    let sender = tandem_intake_email::send::Sender::new(&config.relay)
        .map_err(|e| anyhow::anyhow!("the SMTP relay settings are unusable: {e}"))?;
    Ok(tandem_intake_email::MailDelivery::new(desk, sender, key, loop_id, config.delivery.clone()))
}

#[cfg(test)]
mod tests {
    use super::parse_relay;
    use tandem_intake_email::send::Security;

    #[test]
    fn relay_urls() {
        assert_eq!(
            parse_relay("smtp://mail.example").unwrap(),
            ("mail.example".into(), 587, Security::StartTls)
        );
        assert_eq!(
            parse_relay("smtps://mail.example:2465").unwrap(),
            ("mail.example".into(), 2465, Security::Tls)
        );
        assert_eq!(parse_relay("smtp+plain://127.0.0.1").unwrap(), ("127.0.0.1".into(), 25, Security::None));
        for (bad, says) in [
            ("http://mail.example", "unknown scheme"),
            ("smtp://user:pw@mail.example", "credentials"),
            ("smtp://", "no host"),
            ("smtp://mail.example/x", "no path"),
            ("not a url", "not a URL"),
        ] {
            let e = parse_relay(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
