//! `tandem-plugin-host` — runs Tandem plugins: WebAssembly components (WIT package
//! `tandem:plugin@0.1.0`, `plugins/wit/plugin.wit`) under wasmtime, in a sandbox.
//!
//! - One [`PluginHost`] per process: one engine with the pooling allocator and epoch
//!   interruption, compiled components cached by the SHA-256 of their bytes
//!   ([`PluginHost::load`]), each pre-linked so a call only instantiates.
//! - Every call runs in a fresh store with a memory cap, an epoch deadline and a wall-clock
//!   timeout; a plugin that loops, allocates without bound, traps, returns something that is not
//!   JSON or too large, or calls a host it may not, fails *its own* call with a clear reason
//!   ([`PluginError`]) and nothing else notices.
//! - Imports: `http.fetch` through the egress gate ([`sandbox`]), per-installation state with
//!   compare-and-swap ([`StateStore`]), a log that becomes the run log, a clock. WASI is linked
//!   only because `wasm32-wasip2` programs import it: no files, no environment, no sockets, no
//!   arguments; stderr (panic messages) is captured into the run log.
//!
//! [`PluginHost::run_action`] is the one path every "run a plugin action" goes through (flows,
//! automations).

pub mod error;
pub mod host;
pub mod manifest;
pub mod sandbox;
pub mod state;

pub use error::{LoadError, PluginError};
pub use host::{
    HostConfig, Installation, Invocation, LogLevel, LogLine, Outcome, PluginHost, Poll, TriggerItem,
    WebhookRequest,
};
pub use manifest::{Manifest, ManifestError};
pub use sandbox::Credential;
pub use state::{CasError, MemoryState, StateEntry, StateStore};
