//! Which storage backend `--db` names, and opening it. Backends are chosen at run time, so the
//! rest of the server only sees `Arc<dyn Store>`; adding one is a new `DbLocation` variant and
//! one arm in each `match` below.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, bail};
use tandem_core::Store;
use tandem_storage_postgres::{PgConnectOptions, PostgresOptions, PostgresStore};
use tandem_storage_sqlite::{SqliteOptions, SqliteStore};

/// Where the data lives, as given to `--db`: a file path, a `sqlite://` URL or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    /// `postgres://` or `postgresql://`, as given (it may carry a password: see `Display`).
    Postgres(String),
}

pub const SUPPORTED: &str = "a file path, sqlite://<path> or postgres://user@host/database";

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
                // The parser's message never repeats the URL, so no password reaches the log.
                PgConnectOptions::from_str(s)
                    .map_err(|e| anyhow::anyhow!("--db is not a usable PostgreSQL URL: {e}"))?;
                Ok(DbLocation::Postgres(s.to_string()))
            }
            other => bail!("unsupported database scheme '{other}://'; supported: {SUPPORTED}"),
        }
    }
}

/// A PostgreSQL URL with its password (if any) replaced, for logs and messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            // Query parameters may carry a password too (`?password=`).
            if u.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
                let kept: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") {
                            "***".to_string()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(kept);
            }
            u.to_string()
        }
        Err(_) => "postgres://(unparsable)".to_string(),
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DbLocation::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

impl std::fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbLocation({self})")
    }
}

/// How to open the backend.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Most PostgreSQL connections this process opens (SQLite has one writer and pooled readers).
    pub pool_size: u32,
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self { pool_size: PostgresOptions::default().max_connections }
    }
}

/// An open backend. Kept concrete beside the `dyn Store` so that shutdown can drain it.
#[derive(Debug)]
pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Backend {
    /// Opens the database, applying embedded migrations.
    pub async fn open(location: &DbLocation, options: &BackendOptions) -> anyhow::Result<Self> {
        match location {
            DbLocation::Sqlite(path) => {
                let store = SqliteStore::open(path, SqliteOptions::default())
                    .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
                Ok(Backend::Sqlite(Arc::new(store)))
            }
            DbLocation::Postgres(url) => {
                if options.pool_size == 0 {
                    bail!("--pool-size must be at least 1");
                }
                let pg = PostgresOptions { max_connections: options.pool_size, ..PostgresOptions::default() };
                let store = PostgresStore::connect(url, pg)
                    .await
                    .with_context(|| format!("cannot open the PostgreSQL database {location}"))?;
                Ok(Backend::Postgres(Arc::new(store)))
            }
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(s) => s.clone(),
            Backend::Postgres(s) => s.clone(),
        }
    }

    /// The schema version the database is at (it was migrated on open).
    pub fn schema_version(&self) -> i64 {
        match self {
            Backend::Sqlite(_) => tandem_storage_sqlite::SCHEMA_VERSION,
            Backend::Postgres(_) => tandem_storage_postgres::SCHEMA_VERSION,
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
            Backend::Postgres(store) => store.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_locations() {
        let sqlite = |p: &str| Some(DbLocation::Sqlite(PathBuf::from(p)));
        let postgres = |u: &str| Some(DbLocation::Postgres(u.to_string()));
        for (input, expected) in [
            ("./tandem.db", sqlite("./tandem.db")),
            ("/var/lib/tandem/t.db", sqlite("/var/lib/tandem/t.db")),
            ("sqlite:///var/lib/t.db", sqlite("/var/lib/t.db")),
            ("sqlite://data/t.db", sqlite("data/t.db")),
            ("SQLITE://t.db", sqlite("t.db")),
            ("postgres://u@h/db", postgres("postgres://u@h/db")),
            (
                " postgresql://u:pw@h:5433/db?sslmode=disable ",
                postgres("postgresql://u:pw@h:5433/db?sslmode=disable"),
            ),
            ("sqlite://", None),
            ("postgres://u@h:notaport/db", None),
            ("mysql://h/db", None),
            ("", None),
        ] {
            let parsed = input.parse::<DbLocation>();
            match expected {
                Some(location) => assert_eq!(parsed.unwrap(), location, "{input}"),
                None => assert!(parsed.is_err(), "{input}"),
            }
        }
        let err = "mysql://h/db".parse::<DbLocation>().unwrap_err().to_string();
        assert!(err.contains("'mysql://'") && err.contains("postgres://"), "{err}");
        let err = "postgres://u:hunter2@h:notaport/db".parse::<DbLocation>().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn passwords_never_print() {
        for (input, shown) in [
            (
                "postgres://tandem:hunter2@db.internal:5432/tandem",
                "postgres://tandem:***@db.internal:5432/tandem",
            ),
            ("postgres://tandem@db.internal/tandem?password=hunter2&sslmode=require", "password=***"),
            ("postgres://tandem@db.internal/tandem", "postgres://tandem@db.internal/tandem"),
        ] {
            let location: DbLocation = input.parse().unwrap();
            for text in [location.to_string(), format!("{location:?}")] {
                assert!(text.contains(shown), "{text}");
                assert!(!text.contains("hunter2"), "{text}");
            }
        }
    }
}
