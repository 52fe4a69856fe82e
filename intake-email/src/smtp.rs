//! The SMTP and LMTP listener an MTA forwards to. [`Session`] is the protocol as a pure state
//! machine (commands in, replies out); [`serve`] drives it over TCP with timeouts.
//!
//! Recipients are checked at `RCPT` (unknown addresses get 550, so the MTA bounces them), `SIZE`
//! is announced and enforced, and the reply to `DATA` comes only after the message is stored. In
//! LMTP every recipient gets its own reply after `DATA`, so one failed recipient does not make
//! the MTA resend to the others. Meant for a trusted MTA on the same host or network: no
//! STARTTLS, no AUTH.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tandem_core::mail::MailTransport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::intake::{Delivery, Intake};
use crate::read::Envelope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Lmtp,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub protocol: Protocol,
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    pub max_recipients: usize,
    /// How long the client may stay silent between commands, and while sending data.
    pub timeout: Duration,
    pub max_connections: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Smtp,
            hostname: "localhost".into(),
            max_recipients: 100,
            timeout: Duration::from_secs(300),
            max_connections: 64,
        }
    }
}

/// What the driver must do after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Reply(String),
    /// Look the address up, then call [`Session::recipient_checked`].
    CheckRecipient(String),
    /// Send this reply (354), read the message up to the lone dot, then call [`Session::replies`].
    ReadData(String),
    /// Send this reply and close.
    Close(String),
}

/// One SMTP/LMTP conversation's state.
#[derive(Debug, Clone)]
pub struct Session {
    protocol: Protocol,
    hostname: String,
    max_size: u64,
    max_recipients: usize,
    greeted: bool,
    mail_from: Option<String>,
    recipients: Vec<String>,
    errors: usize,
}

const MAX_ERRORS: usize = 10;

fn reply(code: &str, text: &str) -> String {
    format!("{code} {text}\r\n")
}

/// The address inside `<...>` after `FROM:`/`TO:`, and the rest (parameters).
fn path(arg: &str, prefix: &str) -> Option<(String, String)> {
    let rest =
        arg.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &arg[prefix.len()..])?;
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let (addr, params) = inner.split_once('>')?;
        Some((addr.trim().to_string(), params.trim().to_string()))
    } else {
        let (addr, params) = rest.split_once(' ').unwrap_or((rest, ""));
        Some((addr.trim().to_string(), params.trim().to_string()))
    }
}

impl Session {
    pub fn new(protocol: Protocol, hostname: &str, max_size: u64, max_recipients: usize) -> Self {
        Self {
            protocol,
            hostname: hostname.to_string(),
            max_size,
            max_recipients,
            greeted: false,
            mail_from: None,
            recipients: Vec::new(),
            errors: 0,
        }
    }

    pub fn greeting(&self) -> String {
        let what = if self.protocol == Protocol::Lmtp { "LMTP" } else { "ESMTP" };
        reply("220", &format!("{} Tandem {what} ready", self.hostname))
    }

    fn error(&mut self, code: &str, text: &str) -> Step {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            return Step::Close(reply("421", &format!("4.7.0 {} too many errors, closing", self.hostname)));
        }
        Step::Reply(reply(code, text))
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.recipients.clear();
    }

    /// Handles one command line (without its line ending).
    pub fn command(&mut self, line: &str) -> Step {
        let (verb, arg) = line.trim_end().split_once(' ').unwrap_or((line.trim_end(), ""));
        let arg = arg.trim();
        match (verb.to_ascii_uppercase().as_str(), self.protocol) {
            ("EHLO", Protocol::Smtp) | ("LHLO", Protocol::Lmtp) => {
                self.greeted = true;
                self.reset();
                Step::Reply(format!(
                    "250-{}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
                    self.hostname, self.max_size
                ))
            }
            ("HELO", Protocol::Smtp) => {
                self.greeted = true;
                self.reset();
                Step::Reply(reply("250", &self.hostname))
            }
            ("HELO" | "EHLO", Protocol::Lmtp) => self.error("500", "5.5.1 this is LMTP: use LHLO"),
            ("LHLO", Protocol::Smtp) => self.error("500", "5.5.1 this is SMTP: use EHLO"),
            ("MAIL", _) => {
                if !self.greeted {
                    return self.error("503", "5.5.1 say hello first");
                }
                if self.mail_from.is_some() {
                    return self.error("503", "5.5.1 a transaction is already open");
                }
                let Some((from, params)) = path(arg, "FROM:") else {
                    return self.error("501", "5.5.4 syntax: MAIL FROM:<address>");
                };
                for p in params.split_whitespace() {
                    if let Some(size) =
                        p.get(..5).filter(|k| k.eq_ignore_ascii_case("SIZE=")).map(|_| &p[5..])
                    {
                        match size.parse::<u64>() {
                            Ok(n) if n > self.max_size => {
                                return Step::Reply(reply(
                                    "552",
                                    &format!(
                                        "5.3.4 the message is larger than the limit of {} bytes",
                                        self.max_size
                                    ),
                                ));
                            }
                            Ok(_) => {}
                            Err(_) => return self.error("501", "5.5.4 SIZE must be a number"),
                        }
                    }
                }
                self.mail_from = Some(from);
                Step::Reply(reply("250", "2.1.0 sender OK"))
            }
            ("RCPT", _) => {
                if self.mail_from.is_none() {
                    return self.error("503", "5.5.1 MAIL first");
                }
                let Some((to, _)) = path(arg, "TO:") else {
                    return self.error("501", "5.5.4 syntax: RCPT TO:<address>");
                };
                if !tandem_core::fields::is_email(&to.to_lowercase()) {
                    return self.error("553", &format!("5.1.3 <{to}> is not a valid address"));
                }
                if self.recipients.len() >= self.max_recipients {
                    return Step::Reply(reply("452", "4.5.3 too many recipients"));
                }
                Step::CheckRecipient(to)
            }
            ("DATA", _) => {
                if self.mail_from.is_none() {
                    return self.error("503", "5.5.1 MAIL first");
                }
                if self.recipients.is_empty() {
                    return self.error("503", "5.5.1 no valid recipients");
                }
                Step::ReadData(reply("354", "end data with <CR><LF>.<CR><LF>"))
            }
            ("RSET", _) => {
                self.reset();
                Step::Reply(reply("250", "2.0.0 reset"))
            }
            ("NOOP", _) => Step::Reply(reply("250", "2.0.0 OK")),
            ("VRFY", _) => Step::Reply(reply("252", "2.5.0 cannot verify, but will try")),
            ("HELP", _) => Step::Reply(reply("214", "2.0.0 see RFC 5321 and RFC 2033")),
            ("QUIT", _) => Step::Close(reply("221", &format!("2.0.0 {} closing", self.hostname))),
            ("STARTTLS" | "AUTH" | "BDAT" | "ETRN" | "EXPN", _) => self.error("502", "5.5.1 not implemented"),
            _ => self.error("500", "5.5.2 command not recognised"),
        }
    }

    /// The reply to `RCPT` once the address is looked up: `Ok(true)` ours, `Ok(false)` unknown,
    /// `Err` the lookup failed.
    pub fn recipient_checked(&mut self, address: &str, found: Result<bool, String>) -> String {
        match found {
            Ok(true) => {
                self.recipients.push(address.to_string());
                reply("250", "2.1.5 recipient OK")
            }
            Ok(false) => reply("550", &format!("5.1.1 <{address}>: no such mailbox here")),
            Err(_) => reply("451", "4.3.0 the recipient cannot be checked now; try again later"),
        }
    }

    /// The open transaction's envelope; the session is ready for the next one afterwards.
    pub fn take_envelope(&mut self) -> Envelope {
        let transport = match self.protocol {
            Protocol::Smtp => MailTransport::Smtp,
            Protocol::Lmtp => MailTransport::Lmtp,
        };
        let envelope = Envelope {
            transport,
            mail_from: self.mail_from.take(),
            recipients: std::mem::take(&mut self.recipients),
        };
        self.reset();
        envelope
    }

    /// The replies after `DATA`: one for SMTP, one per recipient (in envelope order) for LMTP.
    pub fn replies(&self, results: &[(String, Delivery)]) -> Vec<String> {
        let line = |d: &Delivery| {
            let text = d.describe().replace(['\r', '\n'], " ");
            match d {
                Delivery::Stored(_) => reply("250", &format!("2.0.0 {text}")),
                Delivery::Rejected(_) => reply("554", &format!("5.6.0 {text}")),
                Delivery::UnknownRecipient => reply("550", &format!("5.1.1 {text}")),
                Delivery::Temporary(_) => reply("451", &format!("4.3.0 {text}")),
            }
        };
        match self.protocol {
            Protocol::Lmtp => results.iter().map(|(_, d)| line(d)).collect(),
            Protocol::Smtp => {
                // One answer for all: any temporary failure makes the MTA retry (deliveries are
                // deduplicated, so recipients already stored are not doubled).
                let worst = results
                    .iter()
                    .map(|(_, d)| d)
                    .find(|d| matches!(d, Delivery::Temporary(_)))
                    .or_else(|| results.iter().map(|(_, d)| d).find(|d| d.is_stored()))
                    .or_else(|| results.first().map(|(_, d)| d));
                worst.map(line).into_iter().collect()
            }
        }
    }

    /// The replies when the data was larger than announced limits.
    pub fn too_large(&self, recipients: usize) -> Vec<String> {
        let one =
            reply("552", &format!("5.3.4 the message is larger than the limit of {} bytes", self.max_size));
        match self.protocol {
            Protocol::Lmtp => vec![one; recipients.max(1)],
            Protocol::Smtp => vec![one],
        }
    }
}

/// Longest command line accepted (RFC 5321 asks for 512; some clients send long parameters).
const MAX_LINE: u64 = 4096;

enum Data {
    Message(Vec<u8>),
    TooLarge,
}

/// Reads until the lone dot, undoing dot-stuffing; past `max` bytes it keeps reading (the
/// client will not stop) but keeps nothing.
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R, max: u64) -> std::io::Result<Data> {
    let mut data = Vec::new();
    let mut over = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client left during DATA",
            ));
        }
        let content = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(&line);
        if content == b"." {
            return Ok(if over { Data::TooLarge } else { Data::Message(data) });
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if !over && data.len() as u64 + content.len() as u64 + 2 > max {
            over = true;
            data = Vec::new();
        }
        if !over {
            data.extend_from_slice(content);
            data.extend_from_slice(b"\r\n");
        }
    }
}

async fn timed<T>(timeout: Duration, f: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    tokio::time::timeout(timeout, f)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client went quiet")))
}

/// Runs one connection to its end.
pub async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    intake: &Intake,
    config: &ListenerConfig,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    let max = intake.limits().max_message_bytes;
    let mut session = Session::new(config.protocol, &config.hostname, max, config.max_recipients);
    write.write_all(session.greeting().as_bytes()).await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = timed(config.timeout, (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line)).await;
        let n = match n {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let _ = write.write_all(reply("421", "4.4.2 idle too long, closing").as_bytes()).await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            write.write_all(reply("500", "5.5.2 line too long").as_bytes()).await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        match session.command(text.trim_end_matches(['\r', '\n'])) {
            Step::Reply(r) => write.write_all(r.as_bytes()).await?,
            Step::Close(r) => {
                write.write_all(r.as_bytes()).await?;
                return Ok(());
            }
            Step::CheckRecipient(address) => {
                let found = intake.workspace_of(&address).await.map(|ws| ws.is_some());
                let r = session.recipient_checked(&address, found);
                write.write_all(r.as_bytes()).await?;
            }
            Step::ReadData(r) => {
                write.write_all(r.as_bytes()).await?;
                write.flush().await?;
                let data = timed(config.timeout, read_data(&mut reader, max)).await?;
                let envelope = session.take_envelope();
                let replies = match data {
                    Data::TooLarge => session.too_large(envelope.recipients.len()),
                    Data::Message(bytes) => session.replies(&intake.deliver(bytes, &envelope).await),
                };
                for r in replies {
                    write.write_all(r.as_bytes()).await?;
                }
            }
        }
        write.flush().await?;
    }
}

/// Accepts connections until `shutdown` resolves; each runs on its own task, at most
/// `config.max_connections` at once.
pub async fn serve(
    listener: TcpListener,
    intake: Intake,
    config: ListenerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (intake, config) = (Arc::new(intake), Arc::new(config));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a mail connection failed");
                continue;
            }
        };
        let Ok(permit) = permits.clone().acquire_owned().await else { return Ok(()) };
        let (intake, config) = (intake.clone(), config.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &intake, &config).await {
                tracing::info!(%peer, error = %e, "mail connection ended");
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(protocol: Protocol, lines: &[&str]) -> Vec<Step> {
        let mut s = Session::new(protocol, "desk.example", 1000, 2);
        lines
            .iter()
            .map(|l| match s.command(l) {
                Step::CheckRecipient(a) => {
                    Step::Reply(s.recipient_checked(&a, Ok(!a.starts_with("unknown"))))
                }
                other => other,
            })
            .collect()
    }

    fn codes(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Reply(r) | Step::ReadData(r) | Step::Close(r) => {
                    r.lines().last().unwrap_or("")[..3].to_string()
                }
                Step::CheckRecipient(_) => "chk".into(),
            })
            .collect()
    }

    #[test]
    fn smtp_conversation() {
        let s = steps(
            Protocol::Smtp,
            &[
                "MAIL FROM:<a@b.example>",
                "EHLO client.example",
                "RCPT TO:<it@desk.example>",
                "MAIL FROM:<a@b.example> SIZE=5000",
                "MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME",
                "DATA",
                "RCPT TO:<unknown@desk.example>",
                "RCPT TO:<it@desk.example>",
                "RCPT TO:<not an address>",
                "RCPT TO:<b@desk.example>",
                "RCPT TO:<c@desk.example>",
                "NOOP",
                "DATA",
                "LHLO x",
                "QUIT",
            ],
        );
        assert_eq!(
            codes(&s),
            vec![
                "503", "250", "503", "552", "250", "503", "550", "250", "553", "250", "452", "250", "354",
                "500", "221"
            ]
        );
        if let Step::Reply(ehlo) = &s[1] {
            assert!(ehlo.contains("250-SIZE 1000\r\n"), "{ehlo}");
        }
    }

    #[test]
    fn lmtp_needs_lhlo_and_errors_close_the_connection() {
        let s =
            steps(Protocol::Lmtp, &["EHLO x", "LHLO x", "MAIL FROM:<>", "RCPT TO:<it@desk.example>", "DATA"]);
        assert_eq!(codes(&s), vec!["500", "250", "250", "250", "354"]);
        let many: Vec<&str> = std::iter::repeat_n("BOGUS", MAX_ERRORS).collect();
        let s = steps(Protocol::Smtp, &many);
        assert!(matches!(s.last(), Some(Step::Close(r)) if r.starts_with("421")));
    }

    #[test]
    fn paths() {
        assert_eq!(path("FROM:<a@b.c> SIZE=1", "FROM:"), Some(("a@b.c".into(), "SIZE=1".into())));
        assert_eq!(path("from: <a@b.c>", "FROM:"), Some(("a@b.c".into(), String::new())));
        assert_eq!(path("FROM:<>", "FROM:"), Some((String::new(), String::new())));
        assert_eq!(path("TO:a@b.c", "TO:"), Some(("a@b.c".into(), String::new())));
        assert_eq!(path("TO<a@b.c>", "TO:"), None);
    }

    #[tokio::test]
    async fn data_is_unstuffed_and_limited() {
        let input: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\n";
        let mut reader = BufReader::new(input);
        match read_data(&mut reader, 1000).await.unwrap() {
            Data::Message(m) => assert_eq!(m, b"Subject: x\r\n\r\n.leading dot\r\nbody\r\n"),
            Data::TooLarge => panic!("not too large"),
        }
        let mut reader = BufReader::new(input);
        assert!(matches!(read_data(&mut reader, 10).await.unwrap(), Data::TooLarge));
        let mut reader = BufReader::new(&b"no end\r\n"[..]);
        assert!(read_data(&mut reader, 1000).await.is_err());
    }
}
