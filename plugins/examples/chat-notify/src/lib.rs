//! A chat notifier: posts a message to a Slack-compatible incoming webhook.
//!
//! Action `notify`, input `{"text": "Ticket #42 is urgent", "username": "Tandem"}`; the webhook URL
//! is the installation's `config.webhook_url` (or `input.webhook_url`). The request body is
//! `{"text": ...}` plus `username`/`icon_emoji` when given. Output: `{"delivered": true, "status": 200}`.
//!
//! Incoming webhooks answer `ok` as plain text; failures are classified like every other HTTP
//! answer (401/403/404 from a revoked hook → auth or invalid input, 429 → rate limited, 5xx →
//! retryable).

use tandem_plugin_sdk::http::{self, Request};
use tandem_plugin_sdk::{Error, Invocation, Plugin, Value, json, log};

pub struct ChatNotify;

/// Longest message sent, in characters (chat services cut or refuse longer ones).
const MAX_TEXT_CHARS: usize = 4000;

impl Plugin for ChatNotify {
    fn run(ctx: &Invocation, action: &str, config: &Value, input: Value) -> Result<Value, Error> {
        if action != "notify" {
            return Err(Error::invalid_input(format!("no action {action:?}; this plugin has \"notify\"")));
        }
        let text = input
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::invalid_input("input.text: a non-empty string is required"))?;
        let url = input
            .get("webhook_url")
            .or_else(|| config.get("webhook_url"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::invalid_input("config.webhook_url: the incoming webhook URL is not configured")
            })?;
        let text: String = text.chars().take(MAX_TEXT_CHARS).collect();
        let mut body = json!({ "text": text });
        for field in ["username", "icon_emoji"] {
            if let Some(value) = input.get(field).or_else(|| config.get(field)).and_then(Value::as_str) {
                body[field] = Value::String(value.to_string());
            }
        }
        let request = Request {
            method: "POST".into(),
            url: url.to_string(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("idempotency-key".into(), ctx.idempotency_key.clone()),
            ],
            body: Some(body.to_string().into_bytes()),
        };
        let response = http::fetch(&request).map_err(http::transport_error)?;
        http::check_status(&response)?;
        log::info(&format!("posted {} characters to the chat webhook", text.chars().count()));
        Ok(json!({ "delivered": true, "status": response.status }))
    }
}

tandem_plugin_sdk::export_plugin!(ChatNotify);
