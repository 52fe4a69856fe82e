//! `tandem-storage-postgres` — `Store` on PostgreSQL 15+, for operators who run several
//! `tandem serve` instances on one database.
//!
//! - A connection pool; the schema's migrations are embedded and applied on connect under
//!   PostgreSQL's advisory lock, so instances that start together migrate once.
//! - Commits are one transaction each. Item numbers and event sequence numbers come from the
//!   workspace's `workspace_counters` row, incremented inside that transaction: a rollback gives
//!   them back, so they stay gap-free however many servers commit at once.
//! - Optimistic versions: a stale `UPDATE … AND version = $n` touches no row and the commit fails
//!   with `Conflict`, as does inserting a record that exists.
//! - Jobs are claimed with `FOR UPDATE SKIP LOCKED`: concurrent workers never wait on, or receive,
//!   each other's jobs.
//! - Search: generated `tsvector` columns with GIN indexes, diacritics folded by `unaccent`.
//! - Every table is keyed by `workspace_id` first, ready to be distributed by tenant.
//!
//! sqlx is used through its driver crates (`sqlx-core`, `sqlx-postgres`) rather than the `sqlx`
//! facade: the facade's optional SQLite driver pins a `libsqlite3-sys` that Cargo's lockfile
//! cannot reconcile with rusqlite's, even when the feature is off. So there is no `migrate!`
//! macro here; [`migrations`] embeds the same files the same way (version and description from
//! the file name, SHA-384 checksum), so the `_sqlx_migrations` table looks exactly as the macro
//! would leave it.

mod codec;
mod commit;
mod jobs;
mod migrations;
mod read;
mod sign_in;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx_core::query::query;
use sqlx_postgres::{PgPool, PgPoolOptions};
use tandem_core::store::{EventQuery, Job, JobFilter, RecordQuery, SearchHit, SearchQuery, UserFilter};
use tandem_core::{
    ApiToken, ChangeSet, CommitReceipt, Event, Item, ItemId, ItemLink, ItemQuery, JobId, Message,
    Organization, Page, Record, RecordKind, Store, StoreError, User, Workspace, WorkspaceId,
};

pub use sqlx_postgres::PgConnectOptions;

pub use crate::migrations::{SCHEMA_VERSION, versions as migration_versions};

use crate::codec::db_error;

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Largest number of connections this process opens.
    pub max_connections: u32,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// How long a query waits for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            max_blob_bytes: 64 * 1024 * 1024,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

pub struct PostgresStore {
    pool: PgPool,
    options: PostgresOptions,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the connection options: they may hold a password.
        f.debug_struct("PostgresStore")
            .field("options", &self.options)
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database?…`) and
    /// brings its schema up to date.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_with(connect, options).await
    }

    /// [`PostgresStore::connect`] with options built in code.
    pub async fn connect_with(
        connect: PgConnectOptions,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        let connect = if connect.get_application_name().is_none() {
            connect.application_name("tandem")
        } else {
            connect
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        if let Err(e) = migrations::run(&pool).await {
            // A failed migrator may still hold its session-level advisory lock: close the
            // connections rather than hand them out again.
            pool.close().await;
            return Err(e);
        }
        Ok(Self { pool, options })
    }

    /// The pool, for callers that share it (health checks, `LISTEN`).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for the connections to close. Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        read::workspaces(&self.pool).await
    }

    async fn record(
        &self,
        ws: WorkspaceId,
        kind: RecordKind,
        id: uuid::Uuid,
    ) -> Result<Option<Record>, StoreError> {
        read::record(&self.pool, ws, kind, id).await
    }

    async fn records(
        &self,
        ws: WorkspaceId,
        kind: RecordKind,
        query: &RecordQuery,
    ) -> Result<Vec<Record>, StoreError> {
        read::records(&self.pool, ws, kind, query).await
    }

    async fn user_by_email(&self, ws: WorkspaceId, email: &str) -> Result<Option<User>, StoreError> {
        read::user_by_email(&self.pool, ws, &email.to_lowercase()).await
    }

    async fn users(&self, ws: WorkspaceId, filter: &UserFilter) -> Result<Vec<User>, StoreError> {
        read::users(&self.pool, ws, filter).await
    }

    async fn organization_by_domain(
        &self,
        ws: WorkspaceId,
        domain: &str,
    ) -> Result<Option<Organization>, StoreError> {
        read::organization_by_domain(&self.pool, ws, &domain.to_lowercase()).await
    }

    async fn users_by_handles(&self, ws: WorkspaceId, handles: &[String]) -> Result<Vec<User>, StoreError> {
        read::users_by_handles(&self.pool, ws, handles).await
    }

    async fn item_by_number(&self, ws: WorkspaceId, number: i64) -> Result<Option<Item>, StoreError> {
        read::item_by_number(&self.pool, ws, number).await
    }

    async fn items(&self, ws: WorkspaceId, query: &ItemQuery) -> Result<Page<Item>, StoreError> {
        read::items(&self.pool, ws, query).await
    }

    async fn messages(
        &self,
        ws: WorkspaceId,
        item: ItemId,
        include_internal: bool,
    ) -> Result<Vec<Message>, StoreError> {
        read::messages(&self.pool, ws, item, include_internal).await
    }

    async fn links(&self, ws: WorkspaceId, item: ItemId) -> Result<Vec<ItemLink>, StoreError> {
        read::links(&self.pool, ws, item).await
    }

    async fn search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
        read::search(&self.pool, ws, query).await
    }

    async fn events(&self, ws: WorkspaceId, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        read::events(&self.pool, ws, query).await
    }

    async fn blob(&self, ws: WorkspaceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read::blob(&self.pool, ws, sha256).await
    }

    async fn commit(&self, changes: ChangeSet) -> Result<CommitReceipt, StoreError> {
        commit::apply(&self.pool, changes, self.options.max_blob_bytes).await
    }

    async fn token_by_secret(&self, secret_sha256: &str) -> Result<Option<ApiToken>, StoreError> {
        read::token_by_secret(&self.pool, &secret_sha256.to_ascii_lowercase()).await
    }

    async fn record_by_secret(
        &self,
        kind: RecordKind,
        secret_sha256: &str,
    ) -> Result<Option<Record>, StoreError> {
        sign_in::record_by_secret(&self.pool, kind, &secret_sha256.to_ascii_lowercase()).await
    }

    async fn touch_token(
        &self,
        ws: WorkspaceId,
        id: tandem_core::TokenId,
        now: DateTime<Utc>,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        sign_in::touch_token(&self.pool, ws, id, now, every).await
    }

    async fn login_throttle(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> Result<Option<tandem_core::Throttle>, StoreError> {
        sign_in::login_throttle(&self.pool, ws, key).await
    }

    async fn record_login_failure(
        &self,
        ws: WorkspaceId,
        key: &str,
        now: DateTime<Utc>,
        policy: &tandem_core::ThrottlePolicy,
    ) -> Result<tandem_core::Throttle, StoreError> {
        sign_in::record_login_failure(&self.pool, ws, key, now, policy).await
    }

    async fn clear_login_failures(&self, ws: WorkspaceId, key: &str) -> Result<(), StoreError> {
        sign_in::clear_login_failures(&self.pool, ws, key).await
    }

    async fn server_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        read::server_setting(&self.pool, key).await
    }

    async fn set_server_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        query(
            "INSERT INTO server_settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    async fn claim_jobs(
        &self,
        kinds: &[String],
        limit: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>, StoreError> {
        jobs::claim(&self.pool, kinds, limit, now, lease_until).await
    }

    async fn complete_job(&self, id: JobId, attempt: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        jobs::complete(&self.pool, id, attempt, now).await
    }

    async fn fail_job(
        &self,
        id: JobId,
        attempt: u32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        jobs::fail(&self.pool, id, attempt, error, retry_at, now).await
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        jobs::list(&self.pool, filter).await
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        jobs::get(&self.pool, id).await
    }

    async fn retry_job(&self, id: JobId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        jobs::retry(&self.pool, id, now).await
    }

    async fn mail_workspace(&self, address: &str) -> Result<Option<WorkspaceId>, StoreError> {
        read::mail_workspace(&self.pool, &address.to_lowercase()).await
    }

    async fn inbound_mail_by_key(
        &self,
        ws: WorkspaceId,
        key: &str,
    ) -> Result<Option<tandem_core::InboundMail>, StoreError> {
        read::inbound_mail_by_key(&self.pool, ws, key).await
    }

    async fn items_by_message_ids(
        &self,
        ws: WorkspaceId,
        message_ids: &[String],
    ) -> Result<Vec<(String, ItemId)>, StoreError> {
        read::items_by_message_ids(&self.pool, ws, message_ids).await
    }

    async fn outbound_mails(
        &self,
        ws: WorkspaceId,
        query: &tandem_core::store::OutboundQuery,
    ) -> Result<Vec<tandem_core::mail::OutboundMail>, StoreError> {
        read::outbound_mails(&self.pool, ws, query).await
    }

    async fn time_entries(
        &self,
        ws: WorkspaceId,
        query: &tandem_core::store::TimeEntryQuery,
    ) -> Result<Vec<tandem_core::TimeEntry>, StoreError> {
        read::time_entries(&self.pool, ws, query).await
    }
}
