//! Per-installation key-value state with compare-and-swap: the `state` import.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub value: String,
    /// Starts at 1 and grows by one on every write.
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CasError {
    #[error("the entry's version is {current:?}, not the one expected")]
    Conflict { current: Option<u64> },
    #[error("{0}")]
    TooLarge(String),
    #[error("the state store failed: {0}")]
    Store(String),
}

/// Where installations keep their state. Implementations must make `compare_and_swap` atomic
/// per (installation, key).
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    async fn get(&self, installation: &str, key: &str) -> Result<Option<StateEntry>, CasError>;

    /// Writes `value` (deletes the key when `None`) if the key's version is `expected`
    /// (`None`: the key must not exist). Returns the new version (0 after a delete).
    async fn compare_and_swap(
        &self,
        installation: &str,
        key: &str,
        expected: Option<u64>,
        value: Option<String>,
    ) -> Result<u64, CasError>;
}

/// Checks the size limits every store applies.
pub fn check_sizes(key: &str, value: Option<&str>) -> Result<(), CasError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(CasError::TooLarge(format!(
            "the key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if let Some(value) = value
        && value.len() > MAX_VALUE_BYTES
    {
        return Err(CasError::TooLarge(format!(
            "the value is {} bytes; the limit is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// State kept in memory, for one process (tests, single-run tools).
#[derive(Debug, Default)]
pub struct MemoryState {
    entries: Mutex<HashMap<(String, String), StateEntry>>,
}

#[async_trait]
impl StateStore for MemoryState {
    async fn get(&self, installation: &str, key: &str) -> Result<Option<StateEntry>, CasError> {
        let entries = self.entries.lock().map_err(|_| CasError::Store("poisoned".into()))?;
        Ok(entries.get(&(installation.to_string(), key.to_string())).cloned())
    }

    async fn compare_and_swap(
        &self,
        installation: &str,
        key: &str,
        expected: Option<u64>,
        value: Option<String>,
    ) -> Result<u64, CasError> {
        check_sizes(key, value.as_deref())?;
        let mut entries = self.entries.lock().map_err(|_| CasError::Store("poisoned".into()))?;
        let id = (installation.to_string(), key.to_string());
        let current = entries.get(&id).map(|e| e.version);
        if current != expected {
            return Err(CasError::Conflict { current });
        }
        match value {
            Some(value) => {
                let version = current.unwrap_or(0) + 1;
                entries.insert(id, StateEntry { value, version });
                Ok(version)
            }
            None => {
                entries.remove(&id);
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compare_and_swap_table() {
        let s = MemoryState::default();
        assert_eq!(s.compare_and_swap("i", "k", None, Some("a".into())).await, Ok(1));
        assert_eq!(
            s.compare_and_swap("i", "k", None, Some("b".into())).await,
            Err(CasError::Conflict { current: Some(1) })
        );
        assert_eq!(s.compare_and_swap("i", "k", Some(1), Some("b".into())).await, Ok(2));
        assert_eq!(s.get("i", "k").await.unwrap().unwrap().value, "b");
        // Installations do not see each other's state.
        assert_eq!(s.get("other", "k").await, Ok(None));
        assert_eq!(
            s.compare_and_swap("i", "k", Some(1), None).await,
            Err(CasError::Conflict { current: Some(2) })
        );
        assert_eq!(s.compare_and_swap("i", "k", Some(2), None).await, Ok(0));
        assert_eq!(s.get("i", "k").await, Ok(None));
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(matches!(s.compare_and_swap("i", "k", None, Some(big)).await, Err(CasError::TooLarge(_))));
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(
            s.compare_and_swap("i", &long_key, None, Some("v".into())).await,
            Err(CasError::TooLarge(_))
        ));
    }
}
