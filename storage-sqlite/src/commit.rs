//! Applying a `ChangeSet` inside the writer's transaction: first every check (nothing written
//! if one fails), then the writes.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params, params_from_iter};
use tandem_core::{ChangeSet, CommitReceipt, Item, Record, RecordKind, StoreError, WorkspaceId, Write};

use crate::codec::{encode, extra_columns, uuid_value, ws_value};
use crate::writer::{Attempt, Failure, sql_error};

/// Maps a constraint violation to what it means for the caller.
fn constraint(e: rusqlite::Error, kind: RecordKind) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, ref msg) = e
        && f.code == ErrorCode::ConstraintViolation
    {
        let msg = msg.clone().unwrap_or_default();
        let what = if msg.contains("email") {
            "a person with this email address".to_string()
        } else if msg.contains("handle") {
            "a person with this handle".to_string()
        } else if msg.contains("organization_domains") {
            "an organization with one of these domains".to_string()
        } else if msg.contains("mail_addresses") {
            "an inbound address another workspace uses".to_string()
        } else if msg.contains("time_entries") {
            "a running timer of this person".to_string()
        } else if msg.contains("inbound_mails") {
            "an inbound mail with this Message-ID or content".to_string()
        } else {
            format!("a {} with the same key ({msg})", kind.label())
        };
        return StoreError::Duplicate(what);
    }
    sql_error(e)
}

fn stored_version(
    conn: &Connection,
    ws: WorkspaceId,
    kind: RecordKind,
    id: uuid::Uuid,
) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(&format!("SELECT version FROM {} WHERE workspace_id = ?1 AND id = ?2", kind.table()))
        .and_then(|mut s| s.query_row(params![ws_value(ws), uuid_value(id)], |r| r.get(0)).optional())
        .map_err(sql_error)
}

/// Everything that can fail without writing: tenancy, versions, existence, sizes.
fn check(conn: &Connection, changes: &ChangeSet, max_blob_bytes: u64) -> Result<(), StoreError> {
    let ws = changes.workspace_id;
    for write in &changes.writes {
        match write {
            Write::Put { record, expected_version } => {
                let kind = record.kind();
                if record.workspace_id() != ws {
                    return Err(StoreError::Corrupt("a change set writes into another workspace".into()));
                }
                let expected_next = expected_version.map_or(1, |v| v + 1);
                if record.version() != expected_next {
                    return Err(StoreError::Corrupt(format!(
                        "a {} written over version {} must carry version {expected_next}",
                        kind.label(),
                        expected_version.unwrap_or(0)
                    )));
                }
                let stored = stored_version(conn, ws, kind, record.id())?;
                match (expected_version, stored) {
                    (None, None) => {}
                    (None, Some(_)) => {
                        return Err(StoreError::Conflict(format!(
                            "{} {} already exists",
                            kind.label(),
                            record.id()
                        )));
                    }
                    (Some(v), Some(s)) if s == *v => {}
                    (Some(_), _) => {
                        return Err(StoreError::Conflict(format!(
                            "{} {} changed since it was read",
                            kind.label(),
                            record.id()
                        )));
                    }
                }
            }
            Write::Delete { kind, id, expected_version } => {
                if stored_version(conn, ws, *kind, *id)? != Some(*expected_version) {
                    return Err(StoreError::Conflict(format!("{} {id} changed or is gone", kind.label())));
                }
            }
            Write::Blob { bytes, .. } => {
                let size = bytes.len() as u64;
                if size > max_blob_bytes {
                    return Err(StoreError::TooLarge { what: "a file".into(), size, limit: max_blob_bytes });
                }
            }
        }
    }
    Ok(())
}

fn is_new_item(write: &Write) -> bool {
    matches!(write, Write::Put { record: Record::Item(_), expected_version: None })
}

fn creates_workspace(changes: &ChangeSet) -> bool {
    changes
        .writes
        .iter()
        .any(|w| matches!(w, Write::Put { record: Record::Workspace(_), expected_version: None }))
}

/// Takes `items` numbers and `events` sequence numbers from the workspace's counters, returning
/// the first of each.
fn allocate(conn: &Connection, ws: WorkspaceId, items: i64, events: i64) -> Result<(i64, i64), StoreError> {
    conn.prepare_cached(
        "UPDATE workspace_counters SET next_item_number = next_item_number + ?2, next_event_seq = next_event_seq + ?3 \
         WHERE workspace_id = ?1 RETURNING next_item_number - ?2, next_event_seq - ?3",
    )
    .and_then(|mut s| s.query_row(params![ws_value(ws), items, events], |r| Ok((r.get(0)?, r.get(1)?))).optional())
    .map_err(sql_error)?
    .ok_or_else(|| StoreError::NotFound(format!("workspace {ws}")))
}

pub fn apply(conn: &Connection, changes: &ChangeSet, max_blob_bytes: u64) -> Attempt<CommitReceipt> {
    check(conn, changes, max_blob_bytes)?;
    write(conn, changes).map_err(Failure::dirty)
}

fn write(conn: &Connection, changes: &ChangeSet) -> Result<CommitReceipt, StoreError> {
    let ws = changes.workspace_id;
    let mut receipt = CommitReceipt::default();
    if creates_workspace(changes) {
        conn.prepare_cached("INSERT INTO workspace_counters (workspace_id) VALUES (?1)")
            .and_then(|mut s| s.execute(params![ws_value(ws)]))
            .map_err(|e| constraint(e, RecordKind::Workspace))?;
    }
    let new_items = changes.writes.iter().filter(|w| is_new_item(w)).count() as i64;
    let events = changes.events.len() as i64;
    let (mut next_number, first_seq) =
        if new_items + events > 0 { allocate(conn, ws, new_items, events)? } else { (0, 0) };

    for w in &changes.writes {
        match w {
            Write::Put { record: Record::Item(item), expected_version: None } => {
                let numbered = Item { number: next_number, ..item.clone() };
                next_number += 1;
                receipt.item_numbers.push((item.id, numbered.number));
                put(conn, &Record::Item(numbered), None)?;
            }
            Write::Put { record, expected_version } => put(conn, record, *expected_version)?,
            Write::Delete { kind, id, expected_version } => {
                let sql = format!(
                    "DELETE FROM {} WHERE workspace_id = ?1 AND id = ?2 AND version = ?3",
                    kind.table()
                );
                let n = conn
                    .prepare_cached(&sql)
                    .and_then(|mut s| s.execute(params![ws_value(ws), uuid_value(*id), expected_version]))
                    .map_err(sql_error)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!("{} {id} changed or is gone", kind.label())));
                }
                if *kind == RecordKind::Organization {
                    unindex_domains(conn, ws, *id)?;
                }
            }
            Write::Blob { sha256, bytes } => {
                conn.prepare_cached(
                    "INSERT INTO blobs (workspace_id, sha256, size, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![ws_value(ws), sha256, bytes.len() as i64, &bytes[..]]))
                .map_err(sql_error)?;
            }
        }
    }

    if events > 0 {
        let actor = serde_json::to_string(&changes.actor).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let at = changes.at.timestamp_millis();
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO events (workspace_id, seq, at_ms, actor, item_id, kind, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql_error)?;
        for (i, event) in changes.events.iter().enumerate() {
            let seq = first_seq + i as i64;
            let data = serde_json::to_string(&event.data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let item = event.item.map(|i| uuid_value(i.0));
            insert
                .execute(params![ws_value(ws), seq, at, actor, item, event.data.name(), data])
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

/// Inserts or version-checked updates a record and its derived rows; returns nothing but keeps
/// the search index and the assignee/follower tables in step.
fn put(conn: &Connection, record: &Record, expected_version: Option<i64>) -> Result<(), StoreError> {
    let kind = record.kind();
    let table = kind.table();
    let extra = extra_columns(record);
    let mut values: Vec<Sql> = vec![
        ws_value(record.workspace_id()),
        uuid_value(record.id()),
        record.parent().map_or(Sql::Null, uuid_value),
        Sql::Integer(record.version()),
        Sql::Text(encode(record)?),
    ];
    values.extend(extra.iter().map(|(_, v)| v.clone()));
    let rowid = match expected_version {
        None => {
            let columns: Vec<&str> = ["workspace_id", "id", "parent_id", "version", "doc"]
                .into_iter()
                .chain(extra.iter().map(|(c, _)| *c))
                .collect();
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
            let sql =
                format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), placeholders.join(", "));
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.execute(params_from_iter(values.iter())))
                .map_err(|e| constraint(e, kind))?;
            conn.last_insert_rowid()
        }
        Some(expected) => {
            let mut sets =
                vec!["parent_id = ?3".to_string(), "version = ?4".to_string(), "doc = ?5".to_string()];
            sets.extend(extra.iter().enumerate().map(|(i, (c, _))| format!("{c} = ?{}", i + 6)));
            let sql = format!(
                "UPDATE {table} SET {} WHERE workspace_id = ?1 AND id = ?2 AND version = ?{} RETURNING rowid",
                sets.join(", "),
                values.len() + 1
            );
            values.push(Sql::Integer(expected));
            conn.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params_from_iter(values.iter()), |r| r.get::<_, i64>(0)).optional()
                })
                .map_err(|e| constraint(e, kind))?
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "{} {} changed since it was read",
                        kind.label(),
                        record.id()
                    ))
                })?
        }
    };
    match record {
        Record::Item(item) => index_item(conn, item, rowid, expected_version.is_some()),
        Record::Message(m) => {
            if let Some(mid) = m.email.as_ref().and_then(|e| e.message_id.as_deref()) {
                index_message_id(conn, m.workspace_id, mid, m.item)?;
            }
            reindex(conn, Fts::Messages, rowid, expected_version.is_some(), &[&m.text])
        }
        Record::InboundMail(m) => match (&m.message_id, m.item) {
            (Some(mid), Some(item)) => index_message_id(conn, m.workspace_id, mid, item),
            _ => Ok(()),
        },
        Record::OutboundMail(m) => match (&m.message_id, m.item) {
            (Some(mid), Some(item)) => index_message_id(conn, m.workspace_id, mid, item),
            _ => Ok(()),
        },
        Record::MailSettings(s) => index_addresses(conn, s),
        Record::Organization(o) => index_domains(conn, o),
        _ => Ok(()),
    }
}

fn unindex_domains(conn: &Connection, ws: WorkspaceId, org: uuid::Uuid) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM organization_domains WHERE workspace_id = ?1 AND organization_id = ?2")
        .and_then(|mut s| s.execute(params![ws_value(ws), uuid_value(org)]))
        .map(|_| ())
        .map_err(sql_error)
}

/// Keeps the domain → organization table in step with an organization's domains.
fn index_domains(conn: &Connection, org: &tandem_core::Organization) -> Result<(), StoreError> {
    unindex_domains(conn, org.workspace_id, org.id.0)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO organization_domains (workspace_id, domain, organization_id) VALUES (?1, ?2, ?3)",
        )
        .map_err(sql_error)?;
    for d in &org.domains {
        insert
            .execute(params![ws_value(org.workspace_id), d, uuid_value(org.id.0)])
            .map_err(|e| constraint(e, RecordKind::Organization))?;
    }
    Ok(())
}

/// Remembers which item a Message-ID belongs to; the first item keeps it.
fn index_message_id(
    conn: &Connection,
    ws: WorkspaceId,
    message_id: &str,
    item: tandem_core::ItemId,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO mail_thread_ids (workspace_id, message_id, item_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![ws_value(ws), message_id, uuid_value(item.0)]))
    .map(|_| ())
    .map_err(sql_error)
}

/// Keeps the server-wide address → workspace table in step with a workspace's settings.
fn index_addresses(conn: &Connection, settings: &tandem_core::MailSettings) -> Result<(), StoreError> {
    let ws = ws_value(settings.workspace_id);
    conn.prepare_cached("DELETE FROM mail_addresses WHERE workspace_id = ?1")
        .and_then(|mut s| s.execute(params![ws]))
        .map_err(sql_error)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO mail_addresses (address, workspace_id) VALUES (?1, ?2)")
        .map_err(sql_error)?;
    for a in &settings.addresses {
        insert.execute(params![a.address, ws]).map_err(|e| constraint(e, RecordKind::MailSettings))?;
    }
    Ok(())
}

/// The two full-text tables; each row's rowid is the rowid of the row it indexes.
#[derive(Clone, Copy)]
enum Fts {
    Items,
    Messages,
}

impl Fts {
    fn delete_sql(self) -> &'static str {
        match self {
            Fts::Items => "DELETE FROM item_fts WHERE rowid = ?1",
            Fts::Messages => "DELETE FROM message_fts WHERE rowid = ?1",
        }
    }

    fn insert_sql(self) -> &'static str {
        match self {
            Fts::Items => "INSERT INTO item_fts (rowid, title, description) VALUES (?1, ?2, ?3)",
            Fts::Messages => "INSERT INTO message_fts (rowid, text) VALUES (?1, ?2)",
        }
    }
}

fn reindex(conn: &Connection, fts: Fts, rowid: i64, existed: bool, texts: &[&str]) -> Result<(), StoreError> {
    if existed {
        conn.prepare_cached(fts.delete_sql())
            .and_then(|mut s| s.execute(params![rowid]))
            .map_err(sql_error)?;
    }
    let mut values: Vec<Sql> = vec![Sql::Integer(rowid)];
    values.extend(texts.iter().map(|t| Sql::Text((*t).to_string())));
    conn.prepare_cached(fts.insert_sql())
        .and_then(|mut s| s.execute(params_from_iter(values.iter())))
        .map_err(sql_error)?;
    Ok(())
}

/// Keeps the assignee/follower tables and the item's search entry in step with the record.
fn index_item(conn: &Connection, item: &Item, rowid: i64, existed: bool) -> Result<(), StoreError> {
    let (ws, id) = (ws_value(item.workspace_id), uuid_value(item.id.0));
    if existed {
        for sql in [
            "DELETE FROM item_assignees WHERE workspace_id = ?1 AND item_id = ?2",
            "DELETE FROM item_followers WHERE workspace_id = ?1 AND item_id = ?2",
        ] {
            conn.prepare_cached(sql).and_then(|mut s| s.execute(params![ws, id])).map_err(sql_error)?;
        }
    }
    if !item.assignees.is_empty() {
        let mut assign = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO item_assignees (workspace_id, item_id, assignee_kind, assignee_id) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql_error)?;
        for a in &item.assignees {
            let (kind, who) = match a {
                tandem_core::Assignee::User(u) => ("user", u.0),
                tandem_core::Assignee::Team(t) => ("team", t.0),
            };
            assign.execute(params![ws, id, kind, uuid_value(who)]).map_err(sql_error)?;
        }
    }
    if !item.followers.is_empty() {
        let mut follow = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO item_followers (workspace_id, item_id, user_id) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql_error)?;
        for f in &item.followers {
            follow.execute(params![ws, id, uuid_value(f.0)]).map_err(sql_error)?;
        }
    }
    reindex(conn, Fts::Items, rowid, existed, &[&item.title, &item.description])
}
