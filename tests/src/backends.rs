//! How each backend's test store is made.

use std::any::Any;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use sqlx_core::connection::Connection;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::PgConnection;
use tandem_storage_postgres::{PgConnectOptions, PostgresOptions, PostgresStore};

use crate::TestStore;

/// Largest blob the test stores accept, so limit cases stay fast.
pub const TEST_MAX_BLOB: u64 = 1024 * 1024;

/// A store for one test, plus whatever must live as long as it (a temp dir, a database).
pub struct Harness {
    pub store: TestStore,
    _keep: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Harness {
    pub fn new(store: TestStore, keep: impl Any + Send + Sync) -> Self {
        Self { store, _keep: Box::new(keep) }
    }
}

/// A fresh SQLite store in a temporary directory, with durable commits as in production.
pub async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let options =
        tandem_storage_sqlite::SqliteOptions { max_blob_bytes: TEST_MAX_BLOB, ..Default::default() };
    let store = tandem_storage_sqlite::SqliteStore::open(dir.path().join("tandem.db"), options)
        .expect("sqlite opens");
    Some(Harness::new(Arc::new(store), dir))
}

/// The PostgreSQL server the conformance suite runs against; every test gets a database of its own
/// there, created from `template0` and migrated by the store itself, as in production.
pub const POSTGRES_URL_VAR: &str = "TANDEM_TEST_DATABASE_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Prefix of the per-test databases: `tandem_t_` + a UUIDv7, whose timestamp dates the database.
const TEST_DATABASE_PREFIX: &str = "tandem_t_";
/// Test databases older than this are leftovers of a run that was killed, and are dropped.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// A fresh PostgreSQL store for one test, on a database of its own that is dropped again with
/// the harness.
///
/// Without a reachable server the test is skipped with a one-line reason, except under `CI=true`,
/// where a missing database is a failure.
pub async fn postgres() -> Option<Harness> {
    let database = postgres_database().await?;
    let options = PostgresOptions { max_connections: 8, max_blob_bytes: TEST_MAX_BLOB, ..Default::default() };
    let store = PostgresStore::connect_with(database.connect_options(), options)
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL store opens {}: {e}", database.name));
    Some(Harness::new(Arc::new(store), database))
}

/// A fresh, empty database on the test server (nothing migrated yet), dropped with the returned
/// guard; `None` (after printing why) when the server is unreachable outside CI.
pub async fn postgres_database() -> Option<TestDatabase> {
    let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
    let mut server = PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a PostgreSQL URL: {e}"));
    let admin = match admin_connection(&server).await {
        // The URL names a database that does not exist (a fresh server has only `postgres`): it
        // only serves to create and drop the test databases, which `postgres` does as well.
        Err(e) if database_missing(&e) => {
            server = server.database("postgres");
            admin_connection(&server).await
        }
        other => other,
    };
    let mut admin = match admin {
        Ok(conn) => conn,
        Err(e) => return unreachable_server(&server, &e.to_string()),
    };
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&mut admin).await;
    }
    let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::now_v7().simple());
    let mut db_url = url::Url::parse(&url).unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a URL: {e}"));
    db_url.set_path(&format!("/{name}"));
    // DDL takes no bind parameters; the name is ours (a prefix and hex digits).
    query(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
    let _ = admin.close().await;
    Some(TestDatabase { server, name, url: db_url.to_string() })
}

async fn admin_connection(server: &PgConnectOptions) -> Result<PgConnection, sqlx_core::Error> {
    tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(server)).await.unwrap_or_else(
        |_| {
            Err(sqlx_core::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connecting timed out",
            )))
        },
    )
}

fn database_missing(e: &sqlx_core::Error) -> bool {
    matches!(e, sqlx_core::Error::Database(d) if d.code().as_deref() == Some("3D000"))
}

/// Panics under `CI=true`; otherwise prints why the test is skipped.
fn unreachable_server<T>(server: &PgConnectOptions, why: &str) -> Option<T> {
    let reason = format!("PostgreSQL not reachable at {}: {why}", describe(server));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason} (set {POSTGRES_URL_VAR}; under CI=true a missing database is a failure)");
    }
    eprintln!("skipping: {reason}");
    None
}

/// The server without its password, for messages.
fn describe(server: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        server.get_username(),
        server.get_host(),
        server.get_port(),
        server.get_database().unwrap_or_default()
    )
}

async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> = query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
        .bind(TEST_DATABASE_PREFIX)
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for name in names {
        let created = name
            .strip_prefix(TEST_DATABASE_PREFIX)
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
            });
        let stale = created.is_some_and(|t| t.elapsed().is_ok_and(|age| age > STALE_AFTER));
        if stale {
            let _ =
                query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut *admin).await;
        }
    }
}

/// A test database; dropped (with `FORCE`, so open connections do not keep it) when this goes.
#[derive(Debug)]
pub struct TestDatabase {
    server: PgConnectOptions,
    name: String,
    /// The database as a URL, for processes started with `--db`.
    url: String,
}

impl TestDatabase {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL (with the server's credentials), for `tandem serve --db`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How to connect to this database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.server.clone().database(&self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop may run inside the test's runtime, where blocking on a future is not allowed: use a
        // thread with a runtime of its own. A database left behind (say, the server went away) is
        // swept by a later run.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect_with(&server).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = query(&sql).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}
