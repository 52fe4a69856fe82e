//! Applying a `ChangeSet` inside the writer's transaction.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params, params_from_iter};
use tandem_core::{ChangeSet, CommitReceipt, Record, RecordKind, StoreError, Write};

use crate::codec::{encode, extra_columns, uuid_value, ws_value};
use crate::writer::sql_error;

/// Maps a constraint violation to what it means for the caller.
fn constraint(e: rusqlite::Error, kind: RecordKind) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, ref msg) = e
        && f.code == ErrorCode::ConstraintViolation
    {
        let msg = msg.clone().unwrap_or_default();
        // SQLITE_CONSTRAINT_PRIMARYKEY: the record itself exists already.
        if f.extended_code == 1555 {
            return StoreError::Conflict(format!("{} already exists", kind.label()));
        }
        let what = if msg.contains("email") {
            "a person with this email address".to_string()
        } else if msg.contains("handle") {
            "a person with this handle".to_string()
        } else {
            format!("a {} with the same key ({msg})", kind.label())
        };
        return StoreError::Duplicate(what);
    }
    sql_error(e)
}

pub fn apply(conn: &Connection, mut changes: ChangeSet, max_blob_bytes: u64) -> Result<CommitReceipt, StoreError> {
    let ws = changes.workspace_id;
    let mut receipt = CommitReceipt::default();
    conn.prepare_cached("INSERT INTO workspace_counters (workspace_id) VALUES (?1) ON CONFLICT DO NOTHING")
        .and_then(|mut s| s.execute(params![ws_value(ws)]))
        .map_err(sql_error)?;

    for write in changes.writes.drain(..) {
        match write {
            Write::Put { mut record, expected_version } => {
                if record.workspace_id() != ws {
                    return Err(StoreError::Corrupt("a change set writes into another workspace".into()));
                }
                let expected_next = expected_version.map_or(1, |v| v + 1);
                if record.version() != expected_next {
                    return Err(StoreError::Corrupt(format!(
                        "a {} written at version {} must carry version {expected_next}",
                        record.kind().label(),
                        expected_version.unwrap_or(0)
                    )));
                }
                if let (Record::Item(item), None) = (&mut record, expected_version) {
                    item.number = next_item_number(conn, ws)?;
                    receipt.item_numbers.push((item.id, item.number));
                }
                put(conn, &record, expected_version)?;
            }
            Write::Delete { kind, id, expected_version } => {
                let sql = format!("DELETE FROM {} WHERE workspace_id = ?1 AND id = ?2 AND version = ?3", kind.table());
                let n = conn
                    .prepare_cached(&sql)
                    .and_then(|mut s| s.execute(params![ws_value(ws), uuid_value(id), expected_version]))
                    .map_err(sql_error)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!("{} {id} changed or is gone", kind.label())));
                }
            }
            Write::Blob { sha256, bytes } => {
                let size = bytes.len() as u64;
                if size > max_blob_bytes {
                    return Err(StoreError::TooLarge { what: "a file".into(), size, limit: max_blob_bytes });
                }
                conn.prepare_cached(
                    "INSERT INTO blobs (workspace_id, sha256, size, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![ws_value(ws), sha256, size as i64, &bytes[..]]))
                .map_err(sql_error)?;
            }
        }
    }

    if !changes.events.is_empty() {
        let n = changes.events.len() as i64;
        let first: i64 = conn
            .prepare_cached(
                "UPDATE workspace_counters SET next_event_seq = next_event_seq + ?2 WHERE workspace_id = ?1 \
                 RETURNING next_event_seq - ?2",
            )
            .and_then(|mut s| s.query_row(params![ws_value(ws), n], |r| r.get(0)))
            .map_err(sql_error)?;
        let actor = serde_json::to_string(&changes.actor).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let at = changes.at.timestamp_millis();
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO events (workspace_id, seq, at_ms, actor, item_id, kind, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql_error)?;
        for (i, event) in changes.events.iter().enumerate() {
            let seq = first + i as i64;
            let data = serde_json::to_string(&event.data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            insert
                .execute(params![
                    ws_value(ws),
                    seq,
                    at,
                    actor,
                    event.item.map(|i| uuid_value(i.0)),
                    event.data.name(),
                    data
                ])
                .map_err(sql_error)?;
            receipt.seqs.push(seq);
        }
    }

    if !changes.jobs.is_empty() {
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO jobs (id, workspace_id, kind, payload, idempotency_key, state, attempts, max_attempts, \
                 run_at_ms, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?7, ?8, ?8) \
                 ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
            )
            .map_err(sql_error)?;
        for job in &changes.jobs {
            insert
                .execute(params![
                    uuid_value(job.id.0),
                    ws_value(ws),
                    job.kind,
                    job.payload.to_string(),
                    job.idempotency_key,
                    job.max_attempts,
                    job.run_at.timestamp_millis(),
                    changes.at.timestamp_millis()
                ])
                .map_err(sql_error)?;
        }
    }
    Ok(receipt)
}

fn next_item_number(conn: &Connection, ws: tandem_core::WorkspaceId) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "UPDATE workspace_counters SET next_item_number = next_item_number + 1 WHERE workspace_id = ?1 \
         RETURNING next_item_number - 1",
    )
    .and_then(|mut s| s.query_row(params![ws_value(ws)], |r| r.get(0)))
    .map_err(sql_error)
}

fn put(conn: &Connection, record: &Record, expected_version: Option<i64>) -> Result<(), StoreError> {
    let kind = record.kind();
    let table = kind.table();
    let doc = encode(record)?;
    let extra = extra_columns(record);
    let mut values: Vec<Sql> = vec![
        ws_value(record.workspace_id()),
        uuid_value(record.id()),
        record.parent().map_or(Sql::Null, uuid_value),
        Sql::Integer(record.version()),
        Sql::Text(doc),
    ];
    values.extend(extra.iter().map(|(_, v)| v.clone()));
    match expected_version {
        None => {
            let columns: Vec<&str> =
                ["workspace_id", "id", "parent_id", "version", "doc"].into_iter().chain(extra.iter().map(|(c, _)| *c)).collect();
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
            let sql = format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), placeholders.join(", "));
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.execute(params_from_iter(values.iter())))
                .map_err(|e| constraint(e, kind))?;
        }
        Some(expected) => {
            let mut sets = vec!["parent_id = ?3".to_string(), "version = ?4".to_string(), "doc = ?5".to_string()];
            sets.extend(extra.iter().enumerate().map(|(i, (c, _))| format!("{c} = ?{}", i + 6)));
            let sql = format!(
                "UPDATE {table} SET {} WHERE workspace_id = ?1 AND id = ?2 AND version = ?{}",
                sets.join(", "),
                values.len() + 1
            );
            values.push(Sql::Integer(expected));
            let n = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.execute(params_from_iter(values.iter())))
                .map_err(|e| constraint(e, kind))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("{} {} changed since it was read", kind.label(), record.id())));
            }
        }
    }
    match record {
        Record::Item(item) => index_item(conn, item, expected_version.is_some()),
        Record::Message(m) => index_message(conn, m),
        _ => Ok(()),
    }
}

fn rowid(conn: &Connection, table: &str, ws: tandem_core::WorkspaceId, id: uuid::Uuid) -> Result<i64, StoreError> {
    conn.prepare_cached(&format!("SELECT rowid FROM {table} WHERE workspace_id = ?1 AND id = ?2"))
        .and_then(|mut s| s.query_row(params![ws_value(ws), uuid_value(id)], |r| r.get(0)))
        .optional()
        .map_err(sql_error)?
        .ok_or_else(|| StoreError::Corrupt(format!("{table} row vanished during commit")))
}

/// Keeps the assignee/follower tables and the item's search entry in step with the record.
fn index_item(conn: &Connection, item: &tandem_core::Item, existed: bool) -> Result<(), StoreError> {
    let (ws, id) = (ws_value(item.workspace_id), uuid_value(item.id.0));
    if existed {
        for sql in [
            "DELETE FROM item_assignees WHERE workspace_id = ?1 AND item_id = ?2",
            "DELETE FROM item_followers WHERE workspace_id = ?1 AND item_id = ?2",
        ] {
            conn.prepare_cached(sql).and_then(|mut s| s.execute(params![ws, id])).map_err(sql_error)?;
        }
    }
    let mut assign = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO item_assignees (workspace_id, item_id, assignee_kind, assignee_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(sql_error)?;
    for a in &item.assignees {
        let (kind, who) = match a {
            tandem_core::Assignee::User(u) => ("user", u.0),
            tandem_core::Assignee::Team(t) => ("team", t.0),
        };
        assign.execute(params![ws, id, kind, uuid_value(who)]).map_err(sql_error)?;
    }
    let mut follow = conn
        .prepare_cached("INSERT OR IGNORE INTO item_followers (workspace_id, item_id, user_id) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?;
    for f in &item.followers {
        follow.execute(params![ws, id, uuid_value(f.0)]).map_err(sql_error)?;
    }
    let row = rowid(conn, "items", item.workspace_id, item.id.0)?;
    if existed {
        conn.prepare_cached("DELETE FROM item_fts WHERE rowid = ?1").and_then(|mut s| s.execute(params![row])).map_err(sql_error)?;
    }
    conn.prepare_cached("INSERT INTO item_fts (rowid, title, description) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![row, item.title, item.description]))
        .map_err(sql_error)?;
    Ok(())
}

fn index_message(conn: &Connection, m: &tandem_core::Message) -> Result<(), StoreError> {
    let row = rowid(conn, "messages", m.workspace_id, m.id.0)?;
    conn.prepare_cached("DELETE FROM message_fts WHERE rowid = ?1").and_then(|mut s| s.execute(params![row])).map_err(sql_error)?;
    conn.prepare_cached("INSERT INTO message_fts (rowid, text) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![row, m.text]))
        .map_err(sql_error)?;
    Ok(())
}
