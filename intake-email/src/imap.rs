//! The IMAP poller: reads a mailbox over TLS, delivers each message through the [`Intake`], and
//! moves it to another folder or flags it once it is stored. Waits for new mail with IDLE when
//! the server offers it, else polls at an interval. A message whose delivery failed temporarily
//! stays where it is and is tried again next round.

use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures::TryStreamExt;
use tandem_core::mail::MailTransport;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::intake::{Delivery, Intake};
use crate::read::Envelope;

/// What marks a message as processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Move it to this folder (created if missing); everything left in the mailbox is new.
    MoveTo(String),
    /// Leave it, flagged `\Seen` and with the keyword [`PROCESSED_KEYWORD`].
    Flag,
}

/// The keyword on processed messages in [`Processed::Flag`] mode.
pub const PROCESSED_KEYWORD: &str = "$TandemProcessed";

#[derive(Clone)]
pub struct ImapConfig {
    pub host: String,
    /// Implicit TLS (993 usually); plain IMAP is not offered.
    pub port: u16,
    /// An extra root certificate (PEM) to trust besides the public roots.
    pub root_certificate_pem: Option<Vec<u8>>,
    pub user: String,
    pub password: String,
    pub mailbox: String,
    pub processed: Processed,
    /// The workspace address this mailbox receives for: decides the workspace, and the type when
    /// the headers name none of ours.
    pub recipient: String,
    /// The longest wait between rounds (the IDLE timeout when IDLE is used).
    pub interval: Duration,
    pub use_idle: bool,
}

impl std::fmt::Debug for ImapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the password.
        f.debug_struct("ImapConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("mailbox", &self.mailbox)
            .field("processed", &self.processed)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("IMAP: {0}")]
    Protocol(String),
}

fn protocol(e: impl std::fmt::Display) -> ImapError {
    ImapError::Protocol(e.to_string())
}

type Connection = TlsStream<TcpStream>;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub stored: usize,
    pub rejected: usize,
    /// Left in the mailbox for the next round.
    pub deferred: usize,
}

/// Parses PEM certificates (`-----BEGIN CERTIFICATE-----` blocks).
fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ImapError> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    for block in text.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let body = block.split("-----END CERTIFICATE-----").next().unwrap_or("");
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ImapError::Tls(format!("a certificate is not valid base64: {e}")))?;
        out.push(CertificateDer::from(der));
    }
    if out.is_empty() {
        return Err(ImapError::Tls("no certificate in the PEM data".into()));
    }
    Ok(out)
}

pub struct Poller {
    intake: Intake,
    config: ImapConfig,
    tls: TlsConnector,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Poller {
    pub fn new(intake: Intake, config: ImapConfig) -> Result<Self, ImapError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &config.root_certificate_pem {
            for cert in pem_certificates(pem)? {
                roots.add(cert).map_err(|e| ImapError::Tls(e.to_string()))?;
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ImapError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { intake, config, tls: TlsConnector::from(Arc::new(tls)) })
    }

    /// Connects, logs in and selects the mailbox.
    pub async fn connect(&self) -> Result<Session<Connection>, ImapError> {
        let c = &self.config;
        let tcp = TcpStream::connect((c.host.as_str(), c.port))
            .await
            .map_err(|e| ImapError::Connect(format!("{}:{}: {e}", c.host, c.port)))?;
        let name = ServerName::try_from(c.host.clone()).map_err(|e| ImapError::Tls(e.to_string()))?;
        let stream = self.tls.connect(name, tcp).await.map_err(|e| ImapError::Tls(e.to_string()))?;
        let mut client = async_imap::Client::new(stream);
        client
            .read_response()
            .await
            .map_err(protocol)?
            .ok_or_else(|| ImapError::Protocol("the server closed before greeting".into()))?;
        let mut session = client.login(&c.user, &c.password).await.map_err(|(e, _)| protocol(e))?;
        if let Processed::MoveTo(folder) = &c.processed {
            // Already existing is fine; a real failure shows when moving.
            let _ = session.create(folder).await;
        }
        session.select(&c.mailbox).await.map_err(protocol)?;
        Ok(session)
    }

    /// Delivers every unprocessed message in the mailbox once.
    pub async fn round(&self, session: &mut Session<Connection>) -> Result<Round, ImapError> {
        let query = match &self.config.processed {
            Processed::MoveTo(_) => "ALL".to_string(),
            Processed::Flag => format!("UNKEYWORD {PROCESSED_KEYWORD}"),
        };
        let mut uids: Vec<u32> = session.uid_search(&query).await.map_err(protocol)?.into_iter().collect();
        uids.sort_unstable();
        let mut round = Round::default();
        for uid in uids {
            let fetched: Vec<_> = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .map_err(protocol)?
                .try_collect()
                .await
                .map_err(protocol)?;
            let Some(raw) = fetched.iter().find_map(|f| f.body()).map(<[u8]>::to_vec) else { continue };
            let envelope = self.envelope(&raw).await;
            let results = self.intake.deliver(raw, &envelope).await;
            if results.iter().any(|(_, d)| matches!(d, Delivery::Temporary(_))) {
                round.deferred += 1;
                continue;
            }
            if results.iter().all(|(_, d)| d.is_stored()) {
                round.stored += 1;
            } else {
                round.rejected += 1;
            }
            // Stored or refused for good: either way it must not be read again.
            match &self.config.processed {
                Processed::MoveTo(folder) => {
                    session.uid_mv(uid.to_string(), folder).await.map_err(protocol)?
                }
                Processed::Flag => {
                    let _: Vec<_> = session
                        .uid_store(uid.to_string(), format!("+FLAGS (\\Seen {PROCESSED_KEYWORD})"))
                        .await
                        .map_err(protocol)?
                        .try_collect()
                        .await
                        .map_err(protocol)?;
                }
            }
        }
        Ok(round)
    }

    /// Our addresses named in the headers (same workspace as the configured recipient) come
    /// first, so a mailbox receiving for several addresses routes by the one used.
    async fn envelope(&self, raw: &[u8]) -> Envelope {
        let mut recipients = Vec::new();
        let home = self.intake.workspace_of(&self.config.recipient).await.ok().flatten();
        for r in crate::pipe::recipients_from_headers(raw) {
            if home.is_some() && self.intake.workspace_of(&r).await.ok().flatten() == home {
                recipients.push(r);
            }
        }
        recipients.push(self.config.recipient.to_lowercase());
        recipients.dedup();
        Envelope { transport: MailTransport::Imap, mail_from: None, recipients }
    }

    /// Waits for new mail: IDLE up to the interval when offered, else the interval.
    async fn wait(&self, session: Session<Connection>) -> Result<Session<Connection>, ImapError> {
        let mut session = session;
        let idle = self.config.use_idle && session.capabilities().await.map_err(protocol)?.has_str("IDLE");
        if !idle {
            tokio::time::sleep(self.config.interval).await;
            return Ok(session);
        }
        let mut handle = session.idle();
        handle.init().await.map_err(protocol)?;
        let (wait, _stop) = handle.wait_with_timeout(self.config.interval);
        wait.await.map_err(protocol)?;
        handle.done().await.map_err(protocol)
    }

    /// Runs until `shutdown` resolves: rounds, waits, reconnects after errors with backoff.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_secs(1);
        loop {
            let work = async {
                let mut session = self.connect().await?;
                loop {
                    let round = self.round(&mut session).await?;
                    if round != Round::default() {
                        tracing::info!(?round, mailbox = %self.config.mailbox, "IMAP round");
                    }
                    session = self.wait(session).await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), ImapError>(())
            };
            tokio::select! {
                () = &mut shutdown => return,
                result = work => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, host = %self.config.host, "IMAP poller failed; reconnecting");
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(300));
        }
    }
}
