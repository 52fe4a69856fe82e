//! Sending built mail through an SMTP relay (lettre): plain, STARTTLS or implicit TLS, with
//! optional credentials. Errors say whether trying again can help, which drives the job queue's
//! retries.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No encryption: only for a relay on the same host.
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

#[derive(Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    /// An extra root certificate (PEM) to trust, for a relay with a private CA.
    pub root_certificate_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the credentials.
        f.debug_struct("Relay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Trying again later may succeed (a 4xx reply, a network failure); a permanent error (5xx,
    /// a bad address) will fail the same way.
    pub retryable: bool,
    pub message: String,
    /// The relay's basic reply code (`550`), when it answered with one.
    pub code: Option<u16>,
    /// The enhanced status code in the relay's answer (`5.1.1`), when it gave one.
    pub enhanced_status: Option<String>,
}

impl SendError {
    fn permanent(message: impl Into<String>) -> Self {
        Self { retryable: false, message: message.into(), code: None, enhanced_status: None }
    }

    /// Whether the relay said the recipient's address does not exist or cannot take mail
    /// (`5.1.x`): the address is then marked bouncing.
    pub fn is_bad_mailbox(&self) -> bool {
        !self.retryable && self.enhanced_status.as_deref().is_some_and(|s| s.starts_with("5.1."))
    }
}

/// The first RFC 3463 enhanced status code (`5.1.1`) in a relay's answer.
pub fn enhanced_status(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find_map(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        let ok = parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && (1..=3).contains(&parts[1].len())
            && (1..=3).contains(&parts[2].len())
            && parts[1..].iter().all(|p| p.chars().all(|c| c.is_ascii_digit()));
        ok.then(|| word.to_string())
    })
}

/// A configured SMTP client.
#[derive(Clone)]
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(relay: &Relay) -> Result<Self, SendError> {
        let tls = |host: &str| -> Result<TlsParameters, SendError> {
            let mut params = TlsParameters::builder(host.to_string());
            if let Some(pem) = &relay.root_certificate_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| {
                    SendError::permanent(format!("the relay's root certificate is unreadable: {e}"))
                })?;
                params = params.add_root_certificate(cert);
            }
            params.build_rustls().map_err(|e| SendError::permanent(format!("TLS setup failed: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&relay.host)
            .port(relay.port)
            .timeout(Some(relay.timeout));
        builder = match relay.security {
            Security::None => builder.tls(Tls::None),
            Security::StartTls => builder.tls(Tls::Required(tls(&relay.host)?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls(&relay.host)?)),
        };
        if let Some((user, password)) = &relay.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build() })
    }

    /// Sends `raw` (built by [`outbound::build`](crate::outbound::build)) to `to`, with
    /// `from` as the envelope sender (bounces go there).
    pub async fn send(&self, from: &str, to: &[String], raw: &[u8]) -> Result<(), SendError> {
        let parse = |a: &str| {
            a.parse().map_err(|e: lettre::address::AddressError| {
                SendError::permanent(format!("invalid address {a}: {e}"))
            })
        };
        let recipients = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(parse(from)?), recipients)
            .map_err(|e| SendError::permanent(format!("invalid envelope: {e}")))?;
        match self.transport.send_raw(&envelope, raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = format!("sending failed: {e}");
                let code = e.status().and_then(|c| c.to_string().parse().ok());
                Err(SendError {
                    retryable: !e.is_permanent(),
                    enhanced_status: enhanced_status(&message),
                    code,
                    message,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::enhanced_status;

    #[test]
    fn enhanced_status_codes_are_found() {
        for (text, expected) in [
            ("permanent error (550): 5.1.1 <gone@club.example>: no such user", Some("5.1.1")),
            ("transient error (451): 4.3.0 try again later", Some("4.3.0")),
            ("permanent error (554): transaction failed", None),
            ("version 1.2.3 of something", None),
            ("5.7.26 unauthenticated", Some("5.7.26")),
        ] {
            assert_eq!(enhanced_status(text).as_deref(), expected, "{text}");
        }
    }
}
