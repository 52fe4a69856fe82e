//! Authentication's operational state: secret lookups, token use times and failed sign-in
//! counts. Each write is one statement, so it either happened or did not (a clean failure).

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tandem_core::{Record, RecordKind, StoreError, Throttle, ThrottlePolicy, TokenId, WorkspaceId};

use crate::codec::{decode, uuid_value, ws_value};
use crate::writer::sql_error;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The tables whose rows carry a `secret_sha256` column.
fn secret_table(kind: RecordKind) -> Option<&'static str> {
    matches!(kind, RecordKind::Token | RecordKind::Session | RecordKind::SignInLink).then(|| kind.table())
}

pub fn record_by_secret(
    conn: &Connection,
    kind: RecordKind,
    secret_sha256: &str,
) -> Result<Option<Record>, StoreError> {
    let Some(table) = secret_table(kind) else { return Ok(None) };
    // `table` is one of three fixed names, never input.
    let doc: Option<String> = conn
        .prepare_cached(&format!("SELECT doc FROM {table} WHERE secret_sha256 = ?1"))
        .and_then(|mut s| s.query_row(params![secret_sha256], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode(kind, &d)).transpose()
}

pub fn touch_token(
    conn: &Connection,
    ws: WorkspaceId,
    id: TokenId,
    now: DateTime<Utc>,
    every: chrono::Duration,
) -> Result<bool, StoreError> {
    let stamp = serde_json::to_value(now)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a time: {e}")))?
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now_ms = now.timestamp_millis();
    let changed = conn
        .prepare_cached(
            "UPDATE api_tokens SET \
               doc = json_set(doc, '$.last_used_at', ?3, '$.version', version + 1), \
               last_used_ms = ?4, version = version + 1 \
             WHERE workspace_id = ?1 AND id = ?2 AND (last_used_ms IS NULL OR last_used_ms <= ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                ws_value(ws),
                uuid_value(id.0),
                stamp,
                now_ms,
                now_ms - every.num_milliseconds()
            ])
        })
        .map_err(sql_error)?;
    Ok(changed > 0)
}

pub fn login_throttle(conn: &Connection, ws: WorkspaceId, key: &str) -> Result<Option<Throttle>, StoreError> {
    conn.prepare_cached(
        "SELECT failures, window_start_ms, locked_until_ms FROM login_throttles \
         WHERE workspace_id = ?1 AND key = ?2",
    )
    .and_then(|mut s| s.query_row(params![ws_value(ws), key], throttle_row).optional())
    .map_err(sql_error)
}

fn throttle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Throttle> {
    Ok(Throttle {
        failures: r.get::<_, i64>(0)?.clamp(0, i64::from(u32::MAX)) as u32,
        window_start: at(r.get(1)?),
        locked_until: r.get::<_, Option<i64>>(2)?.map(at),
    })
}

/// [`Throttle::after_failure`] as one upsert.
pub fn record_login_failure(
    conn: &Connection,
    ws: WorkspaceId,
    key: &str,
    now: DateTime<Utc>,
    policy: &ThrottlePolicy,
) -> Result<Throttle, StoreError> {
    conn.prepare_cached(
        "INSERT INTO login_throttles (workspace_id, key, failures, window_start_ms, locked_until_ms) \
         VALUES (?1, ?2, 1, ?3, CASE WHEN 1 >= ?4 THEN ?3 + ?6 END) \
         ON CONFLICT (workspace_id, key) DO UPDATE SET \
           failures = CASE WHEN window_start_ms + ?5 <= ?3 OR locked_until_ms <= ?3 THEN 1 \
                           ELSE failures + 1 END, \
           window_start_ms = CASE WHEN window_start_ms + ?5 <= ?3 OR locked_until_ms <= ?3 THEN ?3 \
                                  ELSE window_start_ms END, \
           locked_until_ms = CASE \
             WHEN window_start_ms + ?5 <= ?3 OR locked_until_ms <= ?3 THEN (CASE WHEN 1 >= ?4 THEN ?3 + ?6 END) \
             WHEN failures + 1 >= ?4 THEN coalesce(locked_until_ms, ?3 + ?6) \
             ELSE locked_until_ms END \
         RETURNING failures, window_start_ms, locked_until_ms",
    )
    .and_then(|mut s| {
        s.query_row(
            params![
                ws_value(ws),
                key,
                now.timestamp_millis(),
                i64::from(policy.max_failures),
                policy.window.num_milliseconds(),
                policy.lockout.num_milliseconds()
            ],
            throttle_row,
        )
    })
    .map_err(sql_error)
}

pub fn clear_login_failures(conn: &Connection, ws: WorkspaceId, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM login_throttles WHERE workspace_id = ?1 AND key = ?2")
        .and_then(|mut s| s.execute(params![ws_value(ws), key]))
        .map(|_| ())
        .map_err(sql_error)
}
