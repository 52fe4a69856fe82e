//! Authentication's operational state: secret lookups, token use times and failed sign-in
//! counts. Each write is one statement; concurrent upserts of one key serialise on its row.

use chrono::{DateTime, TimeZone, Utc};
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::PgPool;
use tandem_core::{Record, RecordKind, StoreError, Throttle, ThrottlePolicy, TokenId, WorkspaceId};

use crate::codec::{db_error, decode};

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The tables whose rows carry a `secret_sha256` column.
fn secret_table(kind: RecordKind) -> Option<&'static str> {
    matches!(kind, RecordKind::Token | RecordKind::Session | RecordKind::SignInLink).then(|| kind.table())
}

/// Secrets are unique per workspace only (see the schema); one that two workspaces hold
/// authenticates nobody rather than an arbitrary one of them.
pub async fn record_by_secret(
    pool: &PgPool,
    kind: RecordKind,
    secret_sha256: &str,
) -> Result<Option<Record>, StoreError> {
    let Some(table) = secret_table(kind) else { return Ok(None) };
    // `table` is one of three fixed names, never input.
    let sql = format!("SELECT doc::text FROM {table} WHERE secret_sha256 = $1 LIMIT 2");
    let docs: Vec<String> = query_scalar(&sql).bind(secret_sha256).fetch_all(pool).await.map_err(db_error)?;
    match docs.as_slice() {
        [doc] => decode(kind, doc).map(Some),
        [] => Ok(None),
        _ => {
            tracing::warn!(kind = kind.label(), "a secret is held in more than one workspace; refusing it");
            Ok(None)
        }
    }
}

pub async fn touch_token(
    pool: &PgPool,
    ws: WorkspaceId,
    id: TokenId,
    now: DateTime<Utc>,
    every: chrono::Duration,
) -> Result<bool, StoreError> {
    let stamp =
        serde_json::to_value(now).map_err(|e| StoreError::Corrupt(format!("cannot encode a time: {e}")))?;
    let now_ms = now.timestamp_millis();
    let done = query(
        "UPDATE api_tokens SET \
           doc = jsonb_set(jsonb_set(doc, '{last_used_at}', $3), '{version}', to_jsonb(version + 1)), \
           last_used_ms = $4, version = version + 1 \
         WHERE workspace_id = $1 AND id = $2 AND (last_used_ms IS NULL OR last_used_ms <= $5)",
    )
    .bind(ws.0)
    .bind(id.0)
    .bind(stamp)
    .bind(now_ms)
    .bind(now_ms - every.num_milliseconds())
    .execute(pool)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() > 0)
}

fn throttle((failures, window_start, locked_until): (i32, i64, Option<i64>)) -> Throttle {
    Throttle {
        failures: u32::try_from(failures).unwrap_or(0),
        window_start: at(window_start),
        locked_until: locked_until.map(at),
    }
}

pub async fn login_throttle(
    pool: &PgPool,
    ws: WorkspaceId,
    key: &str,
) -> Result<Option<Throttle>, StoreError> {
    let row: Option<(i32, i64, Option<i64>)> = query_as(
        "SELECT failures, window_start_ms, locked_until_ms FROM login_throttles \
         WHERE workspace_id = $1 AND key = $2",
    )
    .bind(ws.0)
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    Ok(row.map(throttle))
}

/// [`Throttle::after_failure`] as one upsert.
pub async fn record_login_failure(
    pool: &PgPool,
    ws: WorkspaceId,
    key: &str,
    now: DateTime<Utc>,
    policy: &ThrottlePolicy,
) -> Result<Throttle, StoreError> {
    let row: (i32, i64, Option<i64>) = query_as(
        "INSERT INTO login_throttles AS t (workspace_id, key, failures, window_start_ms, locked_until_ms) \
         VALUES ($1, $2, 1, $3, CASE WHEN 1 >= $4 THEN $3 + $6 END) \
         ON CONFLICT (workspace_id, key) DO UPDATE SET \
           failures = CASE WHEN t.window_start_ms + $5 <= $3 OR t.locked_until_ms <= $3 THEN 1 \
                           ELSE t.failures + 1 END, \
           window_start_ms = CASE WHEN t.window_start_ms + $5 <= $3 OR t.locked_until_ms <= $3 THEN $3 \
                                  ELSE t.window_start_ms END, \
           locked_until_ms = CASE \
             WHEN t.window_start_ms + $5 <= $3 OR t.locked_until_ms <= $3 THEN (CASE WHEN 1 >= $4 THEN $3 + $6 END) \
             WHEN t.failures + 1 >= $4 THEN coalesce(t.locked_until_ms, $3 + $6) \
             ELSE t.locked_until_ms END \
         RETURNING failures, window_start_ms, locked_until_ms",
    )
    .bind(ws.0)
    .bind(key)
    .bind(now.timestamp_millis())
    .bind(i32::try_from(policy.max_failures).unwrap_or(i32::MAX))
    .bind(policy.window.num_milliseconds())
    .bind(policy.lockout.num_milliseconds())
    .fetch_one(pool)
    .await
    .map_err(db_error)?;
    Ok(throttle(row))
}

pub async fn clear_login_failures(pool: &PgPool, ws: WorkspaceId, key: &str) -> Result<(), StoreError> {
    query("DELETE FROM login_throttles WHERE workspace_id = $1 AND key = $2")
        .bind(ws.0)
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(db_error)
}
