//! Write Tandem plugins in Rust.
//!
//! A plugin is a small library crate:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! tandem-plugin-sdk = "0.1"
//! ```
//!
//! ```ignore
//! use tandem_plugin_sdk::{Error, Invocation, Plugin, Value, json};
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn run(_ctx: &Invocation, action: &str, _config: &Value, input: Value) -> Result<Value, Error> {
//!         match action {
//!             "echo" => Ok(json!({ "echoed": input })),
//!             other => Err(Error::invalid_input(format!("no action {other}"))),
//!         }
//!     }
//! }
//!
//! tandem_plugin_sdk::export_plugin!(Echo);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the `.wasm` file under
//! `target/wasm32-wasip2/release/` is the component to install with its `plugin.toml`.
//!
//! The contract is the WIT package `tandem:plugin@0.1.0` (`plugins/wit/plugin.wit`); this crate
//! wraps its generated bindings in plain Rust: [`http`], [`state`], [`log`] and [`clock`] are the
//! host's imports, [`Plugin`] the exports (every method has a default that reports it is not
//! supported, so a plugin implements only what it offers).

pub use serde_json::{self, Value, json};

/// The generated bindings of the `plugin` world.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_bindings",
        default_bindings_module: "tandem_plugin_sdk::bindings",
    });
}

pub use bindings::tandem::plugin::types::{Invocation, PluginError as Error, RateLimit};

impl Error {
    pub fn retryable(message: impl Into<String>) -> Self {
        Error::Retryable(message.into())
    }
    pub fn rate_limited(retry_after_ms: u64, message: impl Into<String>) -> Self {
        Error::RateLimited(RateLimit { retry_after_ms, message: message.into() })
    }
    pub fn auth(message: impl Into<String>) -> Self {
        Error::Auth(message.into())
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        Error::Fatal(message.into())
    }
}

/// Something a trigger saw; the host dedupes on `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerItem {
    pub id: String,
    pub data: Value,
}

/// What a poll found and where the next one starts (`None` keeps the current cursor).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Poll {
    pub items: Vec<TriggerItem>,
    pub cursor: Option<String>,
}

pub use bindings::exports::tandem::plugin::triggers::WebhookRequest;

/// What a plugin offers. Implement the methods for the triggers and actions your manifest
/// declares; the rest answer that they are not supported.
pub trait Plugin {
    fn run(ctx: &Invocation, action: &str, config: &Value, input: Value) -> Result<Value, Error> {
        let _ = (ctx, config, input);
        Err(Error::invalid_input(format!("this plugin has no action {action:?}")))
    }

    fn poll(ctx: &Invocation, trigger: &str, config: &Value, cursor: Option<String>) -> Result<Poll, Error> {
        let _ = (ctx, config, cursor);
        Err(Error::invalid_input(format!("this plugin has no polling trigger {trigger:?}")))
    }

    fn handle_webhook(
        ctx: &Invocation,
        trigger: &str,
        config: &Value,
        request: WebhookRequest,
    ) -> Result<Vec<TriggerItem>, Error> {
        let _ = (ctx, config, request);
        Err(Error::invalid_input(format!("this plugin has no webhook trigger {trigger:?}")))
    }

    fn subscribe(ctx: &Invocation, trigger: &str, config: &Value, target_url: &str) -> Result<Value, Error> {
        let _ = (ctx, config, target_url);
        Err(Error::invalid_input(format!("trigger {trigger:?} does not subscribe")))
    }

    fn unsubscribe(
        ctx: &Invocation,
        trigger: &str,
        config: &Value,
        subscription: Value,
    ) -> Result<(), Error> {
        let _ = (ctx, config, subscription);
        Err(Error::invalid_input(format!("trigger {trigger:?} does not subscribe")))
    }
}

/// Glue between the generated export traits and [`Plugin`]; used by [`export_plugin!`].
#[doc(hidden)]
pub mod glue {
    use super::*;
    use bindings::exports::tandem::plugin::triggers;

    fn parse(what: &str, text: &str) -> Result<Value, Error> {
        serde_json::from_str(text).map_err(|e| Error::invalid_input(format!("{what} is not JSON: {e}")))
    }

    fn item(item: TriggerItem) -> triggers::TriggerItem {
        triggers::TriggerItem { id: item.id, data: item.data.to_string() }
    }

    pub fn run<P: Plugin>(
        ctx: Invocation,
        action: String,
        config: String,
        input: String,
    ) -> Result<String, Error> {
        let config = parse("config", &config)?;
        let input = parse("input", &input)?;
        P::run(&ctx, &action, &config, input).map(|v| v.to_string())
    }

    pub fn poll<P: Plugin>(
        ctx: Invocation,
        trigger: String,
        config: String,
        cursor: Option<String>,
    ) -> Result<triggers::PollResult, Error> {
        let config = parse("config", &config)?;
        let poll = P::poll(&ctx, &trigger, &config, cursor)?;
        Ok(triggers::PollResult { items: poll.items.into_iter().map(item).collect(), cursor: poll.cursor })
    }

    pub fn handle_webhook<P: Plugin>(
        ctx: Invocation,
        trigger: String,
        config: String,
        request: WebhookRequest,
    ) -> Result<Vec<triggers::TriggerItem>, Error> {
        let config = parse("config", &config)?;
        Ok(P::handle_webhook(&ctx, &trigger, &config, request)?.into_iter().map(item).collect())
    }

    pub fn subscribe<P: Plugin>(
        ctx: Invocation,
        trigger: String,
        config: String,
        target_url: String,
    ) -> Result<String, Error> {
        let config = parse("config", &config)?;
        P::subscribe(&ctx, &trigger, &config, &target_url).map(|v| v.to_string())
    }

    pub fn unsubscribe<P: Plugin>(
        ctx: Invocation,
        trigger: String,
        config: String,
        subscription: String,
    ) -> Result<(), Error> {
        let config = parse("config", &config)?;
        let subscription = parse("subscription", &subscription)?;
        P::unsubscribe(&ctx, &trigger, &config, subscription)
    }
}

/// Exports a type implementing [`Plugin`] as the component's `triggers` and `actions`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        const _: () = {
            use $crate::bindings::exports::tandem::plugin::{actions, triggers};

            impl actions::Guest for $plugin {
                fn run(
                    ctx: $crate::Invocation,
                    action: String,
                    config: String,
                    input: String,
                ) -> Result<String, $crate::Error> {
                    $crate::glue::run::<$plugin>(ctx, action, config, input)
                }
            }

            impl triggers::Guest for $plugin {
                fn poll(
                    ctx: $crate::Invocation,
                    trigger: String,
                    config: String,
                    cursor: Option<String>,
                ) -> Result<triggers::PollResult, $crate::Error> {
                    $crate::glue::poll::<$plugin>(ctx, trigger, config, cursor)
                }
                fn handle_webhook(
                    ctx: $crate::Invocation,
                    trigger: String,
                    config: String,
                    request: triggers::WebhookRequest,
                ) -> Result<Vec<triggers::TriggerItem>, $crate::Error> {
                    $crate::glue::handle_webhook::<$plugin>(ctx, trigger, config, request)
                }
                fn subscribe(
                    ctx: $crate::Invocation,
                    trigger: String,
                    config: String,
                    target_url: String,
                ) -> Result<String, $crate::Error> {
                    $crate::glue::subscribe::<$plugin>(ctx, trigger, config, target_url)
                }
                fn unsubscribe(
                    ctx: $crate::Invocation,
                    trigger: String,
                    config: String,
                    subscription: String,
                ) -> Result<(), $crate::Error> {
                    $crate::glue::unsubscribe::<$plugin>(ctx, trigger, config, subscription)
                }
            }

    $crate::bindings::__export_plugin_bindings!($plugin with_types_in $crate::bindings);
        };
    };
}

/// Outgoing HTTP through the host's egress gate.
pub mod http {
    use super::*;
    pub use bindings::tandem::plugin::http::{HttpError, Request, Response};

    /// Sends `request`. A destination the gate refuses ends the whole call (the host stops the
    /// plugin with the reason), so an `Err` here is always about the other side.
    pub fn fetch(request: &Request) -> Result<Response, HttpError> {
        bindings::tandem::plugin::http::fetch(request)
    }

    /// Sends a JSON body (`None`: no body) and reads a JSON answer, mapping HTTP failures to
    /// plugin errors: 401/403 → auth, 429 → rate-limited (honouring `Retry-After` seconds),
    /// 408/5xx and transport failures → retryable, other 4xx → invalid input.
    pub fn json(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let mut all: Vec<(String, String)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        all.push(("accept".into(), "application/json".into()));
        if body.is_some() {
            all.push(("content-type".into(), "application/json".into()));
        }
        let request = Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: all,
            body: body.map(|b| b.to_string().into_bytes()),
        };
        let response = fetch(&request).map_err(transport_error)?;
        check_status(&response)?;
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| Error::fatal(format!("{url} answered with something that is not JSON: {e}")))
    }

    /// The plugin error for a transport failure.
    pub fn transport_error(error: HttpError) -> Error {
        match error {
            HttpError::Timeout(m) | HttpError::Connection(m) => Error::retryable(m),
            HttpError::TooLarge(m) => Error::fatal(m),
            HttpError::InvalidRequest(m) => Error::invalid_input(m),
        }
    }

    /// The plugin error for a response that is not 2xx, if it is not.
    pub fn check_status(response: &Response) -> Result<(), Error> {
        let status = response.status;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
        let message = format!("HTTP {status}: {body}");
        Err(match status {
            401 | 403 => Error::auth(message),
            429 => {
                let seconds =
                    header(response, "retry-after").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(60);
                Error::rate_limited(seconds.saturating_mul(1000), message)
            }
            408 | 500..=599 => Error::retryable(message),
            _ => Error::invalid_input(message),
        })
    }

    /// A response header, by case-insensitive name.
    pub fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Per-installation key-value state with compare-and-swap.
pub mod state {
    use super::*;
    pub use bindings::tandem::plugin::state::{Entry, StateError};

    pub fn get(key: &str) -> Option<Entry> {
        bindings::tandem::plugin::state::get(key)
    }

    /// Writes (or, with `None`, deletes) `key` if its version is `expected` (`None`: absent).
    pub fn compare_and_swap(
        key: &str,
        expected: Option<u64>,
        value: Option<&str>,
    ) -> Result<u64, StateError> {
        bindings::tandem::plugin::state::compare_and_swap(key, expected, value)
    }
}

/// Lines for the run log.
pub mod log {
    use super::*;
    pub use bindings::tandem::plugin::log::Level;

    pub fn write(level: Level, message: &str) {
        bindings::tandem::plugin::log::write(level, message)
    }
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
}

/// The host's clock.
pub mod clock {
    use super::*;

    pub fn now_ms() -> u64 {
        bindings::tandem::plugin::clock::now_ms()
    }
}
