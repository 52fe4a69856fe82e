//! A generic HTTP/JSON action: sends a JSON request to a URL the installation allows and returns
//! the JSON answer.
//!
//! Action `request`, input:
//!
//! ```json
//! {"method": "POST", "url": "https://api.example.com/things", "headers": {"x-team": "ops"},
//!  "body": {"name": "Printer on fire"}}
//! ```
//!
//! output: `{"status": 201, "body": <the JSON answer, or null when empty>}`.
//!
//! The run's idempotency key goes out as `Idempotency-Key`, so a retried step does not act twice
//! on servers that honour it. Non-2xx answers become classified errors (401/403 auth, 429 rate
//! limited, 408/5xx retryable, other 4xx invalid input).

use tandem_plugin_sdk::http::{self, Request};
use tandem_plugin_sdk::{Error, Invocation, Plugin, Value, json, log};

pub struct HttpJson;

impl Plugin for HttpJson {
    fn run(ctx: &Invocation, action: &str, _config: &Value, input: Value) -> Result<Value, Error> {
        if action != "request" {
            return Err(Error::invalid_input(format!("no action {action:?}; this plugin has \"request\"")));
        }
        let url = input
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_input("input.url: a URL string is required"))?;
        let method = input.get("method").and_then(Value::as_str).unwrap_or("GET").to_ascii_uppercase();
        let mut headers = vec![
            ("accept".to_string(), "application/json".to_string()),
            ("idempotency-key".to_string(), ctx.idempotency_key.clone()),
        ];
        if let Some(extra) = input.get("headers") {
            let extra = extra
                .as_object()
                .ok_or_else(|| Error::invalid_input("input.headers: an object is expected"))?;
            for (name, value) in extra {
                let value = value.as_str().ok_or_else(|| {
                    Error::invalid_input(format!("input.headers.{name}: a string is expected"))
                })?;
                headers.push((name.clone(), value.to_string()));
            }
        }
        let body = match input.get("body") {
            None | Some(Value::Null) => None,
            Some(body) => {
                headers.push(("content-type".to_string(), "application/json".to_string()));
                Some(body.to_string().into_bytes())
            }
        };
        log::info(&format!("{method} {url}"));
        let response = http::fetch(&Request { method, url: url.to_string(), headers, body })
            .map_err(http::transport_error)?;
        http::check_status(&response)?;
        let body: Value = if response.body.is_empty() {
            Value::Null
        } else {
            tandem_plugin_sdk::serde_json::from_slice(&response.body)
                .map_err(|e| Error::fatal(format!("{url} answered with something that is not JSON: {e}")))?
        };
        Ok(json!({ "status": response.status, "body": body }))
    }
}

tandem_plugin_sdk::export_plugin!(HttpJson);
