//! Errors at the core's edges. Each variant is something a caller can act on; HTTP maps them to
//! status codes (`Invalid` → 422, `NotFound` → 404, `Forbidden` → 403, `Conflict` → 409,
//! `TooLarge` → 413).

/// A validation failure, naming the input that was wrong (`"title"`, `"custom.due_date"`,
/// `"statuses[2].name"`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// The same problem, seen from one level up: `custom` + `due` → `custom.due`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// What went wrong in storage. `Conflict` means "somebody else changed it first" and is the only
/// variant `Desk` retries.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict: {0}")]
    Conflict(String),
    #[error("already exists: {0}")]
    Duplicate(String),
    /// Too many requests of one kind in a while (an anonymous visitor's chat messages).
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("too large: {what} is {size} bytes, the limit is {limit}")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Everything `Desk` can answer instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0} not found")]
    NotFound(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many requests of one kind in a while (an anonymous visitor's chat messages).
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("too large: {what} is {size} bytes, the limit is {limit}")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DeskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => DeskError::Conflict(format!("{what} already exists")),
            StoreError::TooLarge { what, size, limit } => DeskError::TooLarge { what, size, limit },
            StoreError::NotFound(what) => DeskError::NotFound(what),
            other => DeskError::Store(other),
        }
    }
}

impl DeskError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DeskError::Invalid(Invalid::new(field, reason))
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        DeskError::NotFound(what.to_string())
    }
}
