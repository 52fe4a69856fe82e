//! What can go wrong when a plugin is loaded or called.

use std::time::Duration;

/// Why a plugin call failed. The class drives what the caller does next: retry with backoff,
/// retry after a delay, pause what uses the installation, or give up.
///
/// The first five come from the plugin itself (`plugin-error` in the WIT contract); the host maps
/// its own findings onto the same classes, with a message that says what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    #[error("retryable: {0}")]
    Retryable(String),
    #[error("rate limited (retry after {} ms): {message}", retry_after.as_millis())]
    RateLimited { retry_after: Duration, message: String },
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("failed: {0}")]
    Fatal(String),
}

impl PluginError {
    /// Whether trying the same call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PluginError::Retryable(_) | PluginError::RateLimited { .. })
    }

    /// The class as a short, stable name (`retryable`, `rate-limited`, `auth`, `invalid-input`,
    /// `fatal`), for run logs and the API.
    pub fn class(&self) -> &'static str {
        match self {
            PluginError::Retryable(_) => "retryable",
            PluginError::RateLimited { .. } => "rate-limited",
            PluginError::Auth(_) => "auth",
            PluginError::InvalidInput(_) => "invalid-input",
            PluginError::Fatal(_) => "fatal",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            PluginError::Retryable(m)
            | PluginError::Auth(m)
            | PluginError::InvalidInput(m)
            | PluginError::Fatal(m)
            | PluginError::RateLimited { message: m, .. } => m,
        }
    }
}

/// A component that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("the file is not a WebAssembly component Tandem can compile: {0}")]
    Compile(String),
    #[error("the component does not fit Tandem's plugin contract (tandem:plugin@0.1.0): {0}")]
    Contract(String),
    #[error("the component's SHA-256 is {actual}, the manifest says {expected}")]
    Checksum { expected: String, actual: String },
    #[error("no component with SHA-256 {0} is loaded")]
    Unknown(String),
}
