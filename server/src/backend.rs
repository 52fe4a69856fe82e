//! Which storage backend `--db` names, and opening it. Backends are chosen at run time, so the
//! rest of the server only sees `Arc<dyn Store>`; adding one is a new `DbLocation` variant and
//! one arm in each `match` below.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tandem_core::Store;
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

/// Where the data lives, as given to `--db`: a file path or a `sqlite://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
}

pub const SUPPORTED: &str = "a file path or sqlite://<path>";

impl FromStr for DbLocation {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            bail!("--db is empty; expected {SUPPORTED}");
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(DbLocation::Sqlite(PathBuf::from(s)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" if !rest.is_empty() => Ok(DbLocation::Sqlite(PathBuf::from(rest))),
            "sqlite" => bail!("'{s}' names no file; expected sqlite://<path>"),
            "postgres" | "postgresql" => {
                bail!("PostgreSQL is not supported by this build yet; supported: {SUPPORTED}")
            }
            other => bail!("unsupported database scheme '{other}://'; supported: {SUPPORTED}"),
        }
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

/// An open backend. Kept concrete beside the `dyn Store` so that shutdown can drain it.
#[derive(Debug)]
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
}

impl Backend {
    /// Opens the database, applying embedded migrations.
    pub fn open(location: &DbLocation) -> anyhow::Result<Self> {
        match location {
            DbLocation::Sqlite(path) => {
                let store = SqliteStore::open(path, SqliteOptions::default())
                    .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
                Ok(Backend::Sqlite(Arc::new(store)))
            }
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(s) => s.clone(),
        }
    }

    /// The schema version the database is at (it was migrated on open).
    pub fn schema_version(&self) -> i64 {
        match self {
            Backend::Sqlite(_) => tandem_storage_sqlite::SCHEMA_VERSION,
        }
    }

    /// Finishes queued writes and closes the database. Acknowledged writes are already durable;
    /// this lets the ones still queued finish instead of failing.
    pub async fn close(self) {
        match self {
            Backend::Sqlite(store) => {
                if let Err(e) = tokio::task::spawn_blocking(move || store.close()).await {
                    tracing::error!(error = %e, "closing the database failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_locations() {
        for (input, expected) in [
            ("./tandem.db", Some("./tandem.db")),
            ("/var/lib/tandem/t.db", Some("/var/lib/tandem/t.db")),
            ("sqlite:///var/lib/t.db", Some("/var/lib/t.db")),
            ("sqlite://data/t.db", Some("data/t.db")),
            ("SQLITE://t.db", Some("t.db")),
            ("sqlite://", None),
            ("postgres://u@h/db", None),
            ("mysql://h/db", None),
            ("", None),
        ] {
            let parsed = input.parse::<DbLocation>();
            match expected {
                Some(path) => assert_eq!(parsed.unwrap(), DbLocation::Sqlite(PathBuf::from(path)), "{input}"),
                None => assert!(parsed.is_err(), "{input}"),
            }
        }
        let err = "postgres://u@h/db".parse::<DbLocation>().unwrap_err().to_string();
        assert!(err.contains("sqlite://"), "{err}");
        let err = "mysql://h/db".parse::<DbLocation>().unwrap_err().to_string();
        assert!(err.contains("'mysql://'") && err.contains("sqlite://"), "{err}");
    }
}
