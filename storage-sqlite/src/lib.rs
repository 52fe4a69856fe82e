//! `tandem-storage-sqlite` — Tandem's embedded, zero-setup storage.
//!
//! - One file, WAL mode, migrations embedded and applied on open.
//! - One writer thread with group commit ([`writer`]): durable (`synchronous=FULL` by default)
//!   without paying one fsync per command under load.
//! - Read-only connections pooled for concurrent readers.
//! - FTS5 search over item titles, descriptions and messages.
//! - Attachment bytes content-addressed per workspace, with a size limit.

mod codec;
mod commit;
mod read;
mod sign_in;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags, params};
use tandem_core::store::{EventQuery, Job, JobFilter, RecordQuery, SearchHit, SearchQuery, UserFilter};
use tandem_core::{
    ApiToken, ChangeSet, CommitReceipt, Event, Item, ItemId, ItemLink, ItemQuery, JobId, Message,
    Organization, Page, Record, RecordKind, Store, StoreError, User, Workspace, WorkspaceId,
};

use crate::writer::{Attempt, Failure, Writer, sql_error};

/// How hard a commit tries to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit group (`synchronous=FULL`): an acknowledged commit survives power loss.
    Full,
    /// fsync at checkpoints only (`synchronous=NORMAL`): survives a crashed process, not a power cut.
    Normal,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { durability: Durability::Full, max_blob_bytes: 64 * 1024 * 1024 }
    }
}

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_webhooks.sql")),
    (4, include_str!("../migrations/0004_mail.sql")),
    (5, include_str!("../migrations/0005_access.sql")),
    (6, include_str!("../migrations/0006_automations.sql")),
    (7, include_str!("../migrations/0007_outbound_mail.sql")),
    (9, include_str!("../migrations/0009_sign_in.sql")),
    (10, include_str!("../migrations/0010_planning.sql")),
    (11, include_str!("../migrations/0011_plugins.sql")),
    (12, include_str!("../migrations/0012_flows.sql")),
    (13, include_str!("../migrations/0013_reports.sql")),
    (15, include_str!("../migrations/0015_kb_chat.sql")),
];

/// The latest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 15;

pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn migrate(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        .map_err(sql_error)?;
    let current: i64 = conn
        .query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
        .map_err(sql_error)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {current}, newer than this build's {SCHEMA_VERSION}; upgrade Tandem"
        )));
    }
    // Every migration not yet recorded runs, in order — not only those above the newest applied —
    // so migrations developed in parallel (say 3 landing after 4) still reach every database.
    let done: std::collections::HashSet<i64> = {
        let mut stmt = conn.prepare("SELECT version FROM schema_migrations").map_err(sql_error)?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !done.contains(v)) {
        let tx = conn.transaction().map_err(sql_error)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Unavailable(format!("migration {version} failed: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Utc::now().to_rfc3339()],
        )
        .map_err(sql_error)?;
        tx.commit().map_err(sql_error)?;
        applied.push(*version);
    }
    Ok(applied)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000; \
             PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;"
        ))
        .map_err(sql_error)?;
        let applied = migrate(&mut conn)?;
        if !applied.is_empty() {
            tracing::info!(path = %path.display(), ?applied, "applied schema migrations");
        }
        conn.set_prepared_statement_cache_capacity(256);
        Ok(Self { writer: Writer::start(conn)?, path, options, readers: Arc::new(Mutex::new(Vec::new())) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes queued writes and closes the writer; later writes fail with `Unavailable`.
    /// Blocks until the writer thread has finished.
    pub fn close(&self) {
        self.writer.close();
    }

    fn reader(path: &Path) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot open {} for reading: {e}", path.display())))?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16384;").map_err(sql_error)?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(conn)
    }

    /// Runs a read on a pooled connection on tokio's blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled =
                pool.lock().map_err(|_| StoreError::Unavailable("reader pool poisoned".into()))?.pop();
            let conn = match pooled {
                Some(c) => c,
                None => Self::reader(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = pool.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

/// Adapts a write that fails only before writing (a single statement is atomic).
fn clean<T>(
    mut f: impl FnMut(&Connection) -> Result<T, StoreError>,
) -> impl FnMut(&Connection) -> Attempt<T> {
    move |c| f(c).map_err(Failure::clean)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[async_trait]
impl Store for SqliteStore {
    async fn workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.read(read::workspaces).await
    }

    async fn record(
        &self,
        ws: WorkspaceId,
        kind: RecordKind,
        id: uuid::Uuid,
    ) -> Result<Option<Record>, StoreError> {
        self.read(move |c| read::record(c, ws, kind, id)).await
    }

    async fn records(
        &self,
        ws: WorkspaceId,
        kind: RecordKind,
        query: &RecordQuery,
    ) -> Result<Vec<Record>, StoreError> {
        let query = query.clone();
        self.read(move |c| read::records(c, ws, kind, &query)).await
    }

    async fn user_by_email(&self, ws: WorkspaceId, email: &str) -> Result<Option<User>, StoreError> {
        let email = email.to_lowercase();
        self.read(move |c| read::user_by_email(c, ws, &email)).await
    }

    async fn users(&self, ws: WorkspaceId, filter: &UserFilter) -> Result<Vec<User>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| read::users(c, ws, &filter)).await
    }

    async fn organization_by_domain(
        &self,
        ws: WorkspaceId,
        domain: &str,
    ) -> Result<Option<Organization>, StoreError> {
        let domain = domain.to_lowercase();
        self.read(move |c| read::organization_by_domain(c, ws, &domain)).await
    }

    async fn users_by_handles(&self, ws: WorkspaceId, handles: &[String]) -> Result<Vec<User>, StoreError> {
        let handles = handles.to_vec();
        self.read(move |c| read::users_by_handles(c, ws, &handles)).await
    }

    async fn item_by_number(&self, ws: WorkspaceId, number: i64) -> Result<Option<Item>, StoreError> {
        self.read(move |c| read::item_by_number(c, ws, number)).await
    }

    async fn items(&self, ws: WorkspaceId, query: &ItemQuery) -> Result<Page<Item>, StoreError> {
        let query = query.clone();
        self.read(move |c| read::items(c, ws, &query)).await
    }

    async fn messages(
        &self,
        ws: WorkspaceId,
        item: ItemId,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError> {
        self.read(move |c| read::messages(c, ws, item, include_internal)).await
    }

    async fn links(&self, ws: WorkspaceId, item: ItemId) -> Result<Vec<ItemLink>, StoreError> {
        self.read(move |c| read::links(c, ws, item)).await
    }

    async fn search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
        let query = query.clone();
        self.read(move |c| read::search(c, ws, &query)).await
    }

    async fn events(&self, ws: WorkspaceId, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let query = query.clone();
        self.read(move |c| read::events(c, ws, &query)).await
    }

    async fn blob(&self, ws: WorkspaceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sha256 = sha256.to_string();
        self.read(move |c| read::blob(c, ws, &sha256)).await
    }

    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt, StoreError> {
        let max = self.options.max_blob_bytes;
        self.writer.write(move |c| commit::apply(c, &changes, max)).await
    }

    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<ApiToken>, StoreError> {
        let secret = secret_sha256.to_ascii_lowercase();
        self.read(move |c| read::token_by_secret(c, &secret)).await
    }

    async fn record_by_secret(
        &self,
        kind: RecordKind,
        secret_sha256: &str,
    ) -> Result<Option<Record>, StoreError> {
        let secret = secret_sha256.to_ascii_lowercase();
        self.read(move |c| sign_in::record_by_secret(c, kind, &secret)).await
    }

    async fn touch_token(
        &self,
        ws: WorkspaceId,
        id: tandem_core::TokenId,
        now: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        self.writer.write(clean(move |c| sign_in::touch_token(c, ws, id, now, every))).await
    }

    async fn login_throttle(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> Result<Option<tandem_core::Throttle>, StoreError> {
        let key = key.to_string();
        self.read(move |c| sign_in::login_throttle(c, ws, &key)).await
    }

    async fn record_login_failure(
        &self,
        ws: WorkspaceId,
        key: &str,
        now: DateTime<Utc>,
        policy: &tandem_core::ThrottlePolicy,
    ) -> Result<tandem_core::Throttle, StoreError> {
        let (key, policy) = (key.to_string(), *policy);
        self.writer.write(clean(move |c| sign_in::record_login_failure(c, ws, &key, now, &policy))).await
    }

    async fn clear_login_failures(&self, ws: WorkspaceId, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.writer.write(clean(move |c| sign_in::clear_login_failures(c, ws, &key))).await
    }

    async fn server_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.read(move |c| read::server_setting(c, &key)).await
    }

    async fn set_server_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.writer
            .write(clean(move |c| {
                c.execute(
                    "INSERT INTO server_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )
                .map(|_| ())
                .map_err(sql_error)
            }))
            .await
    }

    async fn claim_jobs(
        &self,
        kinds: &[String],
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        let kinds = kinds.to_vec();
        self.writer
            .write(clean(move |c| {
                // A job whose lease expired as often as it may be tried is dead, not retried.
                c.prepare_cached(
                    "UPDATE jobs SET state = 'dead', lease_until_ms = NULL, updated_ms = ?1, \
                     last_error = coalesce(last_error, 'the worker running it stopped') \
                     WHERE state = 'running' AND lease_until_ms <= ?1 AND attempts >= max_attempts",
                )
                .and_then(|mut s| s.execute(params![ms(now)]))
                .map_err(sql_error)?;
                let mut values = vec![Sql::Integer(ms(now)), Sql::Integer(ms(lease_until)), Sql::Integer(limit as i64)];
                let mut kind_filter = String::new();
                if !kinds.is_empty() {
                    let mut marks = Vec::new();
                    for k in &kinds {
                        values.push(Sql::Text(k.clone()));
                        marks.push(format!("?{}", values.len()));
                    }
                    kind_filter = format!(" AND kind IN ({})", marks.join(", "));
                }
                // Due queued jobs and lapsed leases are each read in index order and cut at the
                // limit before the two are merged: a backlog is never sorted whole.
                let sql = format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until_ms = ?2, updated_ms = ?1 \
                     WHERE id IN (SELECT id FROM ( \
                       SELECT id, run_at_ms FROM (SELECT id, run_at_ms FROM jobs \
                         WHERE state = 'queued' AND run_at_ms <= ?1{kind_filter} ORDER BY run_at_ms LIMIT ?3) \
                       UNION ALL \
                       SELECT id, run_at_ms FROM (SELECT id, run_at_ms FROM jobs \
                         WHERE state = 'running' AND lease_until_ms <= ?1{kind_filter} ORDER BY lease_until_ms LIMIT ?3) \
                     ) ORDER BY run_at_ms LIMIT ?3) \
                     RETURNING {}",
                    read::JOB_COLUMNS
                );
                let mut stmt = c.prepare_cached(&sql).map_err(sql_error)?;
                read::collect_jobs(&mut stmt, &values)
            }))
            .await
    }

    async fn complete_job(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.writer
            .write(clean(move |c| {
                c.prepare_cached(
                    "UPDATE jobs SET state = 'done', lease_until_ms = NULL, updated_ms = ?3 \
                     WHERE id = ?1 AND attempts = ?2 AND state = 'running'",
                )
                .and_then(|mut s| s.execute(params![codec::uuid_value(id.0), attempt, ms(now)]))
                .map(|n| n > 0)
                .map_err(sql_error)
            }))
            .await
    }

    async fn fail_job(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let error: String = error.chars().take(4000).collect();
        self.writer
            .write(clean(move |c| {
                let (state, run_at) = match retry_at {
                    Some(t) => ("queued", Some(ms(t))),
                    None => ("dead", None),
                };
                c.prepare_cached(
                    "UPDATE jobs SET state = ?4, run_at_ms = coalesce(?5, run_at_ms), lease_until_ms = NULL, \
                     last_error = ?6, updated_ms = ?3 WHERE id = ?1 AND attempts = ?2 AND state = 'running'",
                )
                .and_then(|mut s| {
                    s.execute(params![codec::uuid_value(id.0), attempt, ms(now), state, run_at, error])
                })
                .map(|n| n > 0)
                .map_err(sql_error)
            }))
            .await
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| read::jobs(c, &filter)).await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.read(move |c| read::job(c, id)).await
    }

    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.writer
            .write(clean(move |c| {
                c.prepare_cached(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_at_ms = ?2, lease_until_ms = NULL, updated_ms = ?2 \
                     WHERE id = ?1 AND state IN ('dead', 'done')",
                )
                .and_then(|mut s| s.execute(params![codec::uuid_value(id.0), ms(now)]))
                .map(|n| n > 0)
                .map_err(sql_error)
            }))
            .await
    }

    async fn mail_workspace(&self, address: &str) -> Result<Option<WorkspaceId>, StoreError> {
        let address = address.to_lowercase();
        self.read(move |c| read::mail_workspace(c, &address)).await
    }

    async fn inbound_mail_by_key(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> Result<Option<tandem_core::InboundMail>, StoreError> {
        let key = key.to_string();
        self.read(move |c| read::inbound_mail_by_key(c, ws, &key)).await
    }

    async fn items_by_message_ids(
        &self,
        ws: WorkspaceId,
        message_ids: &[String],
    ) -> Result<Vec<(String, ItemId)>, StoreError> {
        let ids = message_ids.to_vec();
        self.read(move |c| read::items_by_message_ids(c, ws, &ids)).await
    }

    async fn outbound_mails(
        &self,
        ws: WorkspaceId,
        query: &tandem_core::store::OutboundQuery,
    ) -> Result<Vec<tandem_core::mail::OutboundMail>, StoreError> {
        let query = query.clone();
        self.read(move |c| read::outbound_mails(c, ws, &query)).await
    }

    async fn time_entries(
        &self,
        ws: WorkspaceId,
        query: &tandem_core::store::TimeEntryQuery,
    ) -> Result<Vec<tandem_core::TimeEntry>, StoreError> {
        let query = query.clone();
        self.read(move |c| read::time_entries(c, ws, &query)).await
    }
}
