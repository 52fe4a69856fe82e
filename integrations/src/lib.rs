//! `tandem-integrations` — how Tandem reaches other systems.
//!
//! - [`webhooks`]: the `webhook.deliver` job handler — signed POSTs of workspace events, with
//!   retry classification and an idempotency key receivers dedupe on.
//! - [`egress`]: the gate every outgoing request passes — public destinations only, checked on
//!   the resolved address, redirects not followed.
//!
//! - [`flows`]: the flow engine — `flow.run` and `flow.poll` job handlers, the scheduler pass
//!   and incoming webhook endpoints — calling plugins only through [`PluginRuntime`].
//!
//! Handlers here implement `tandem_core::JobHandler`; the server's job runner claims the jobs,
//! runs the handlers and records what happened. Nothing here writes storage.

pub mod egress;
pub mod flows;
pub mod plugin_runtime;
pub mod webhooks;

pub use egress::Egress;
pub use flows::{FlowEngine, HookError, HookOutcome};
pub use plugin_runtime::{
    IncomingRequest, PluginCall, PluginFailure, PluginOutcome, PluginPart, PluginRuntime, PollResult,
    TriggerItem,
};
pub use webhooks::{DeliveryOptions, WebhookDelivery};
