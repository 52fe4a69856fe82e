//! `tandem-intake-email` — email as a Tandem channel.
//!
//! A sans-IO core and thin transports around it:
//!
//! - [`read`]: raw bytes → [`InboundEmail`](tandem_core::mail::InboundEmail): parsing (all
//!   charsets and encodings), [`classify`] (bounce, auto-reply, our own mail, lists), threading
//!   hints (our reply [`token`], `In-Reply-To`/`References`, `[#123]`), [`trim`]ming quoted
//!   history and signatures, attachment limits. The decision what a message becomes is the core's
//!   `ReceiveEmail` command.
//! - [`outbound`]: building mail (our Message-IDs and References, tokenised reply-to,
//!   `Auto-Submitted`, templates), [`send`]ing it over SMTP with STARTTLS or TLS, and
//!   [`deliver::MailDelivery`], the `mail.send` job handler that does both and records the outcome.
//! - [`intake::Intake`]: the pipeline every transport feeds; [`smtp`] (SMTP and LMTP listener),
//!   [`imap`] (poller with IDLE or an interval) and [`pipe`] (one message on stdin for an MTA).

pub mod classify;
pub mod deliver;
pub mod imap;

pub mod intake;
pub mod outbound;
pub mod pipe;

pub mod read;
pub mod send;
pub mod smtp;

pub mod token;
pub mod trim;

pub use deliver::{DeliveryConfig, MailDelivery};
pub use intake::{Delivery, Intake};
pub use read::{Envelope, IntakeLimits, ReadContext, read_message};
pub use token::ReplyKey;
