//! Applying a `ChangeSet` in one transaction.

use chrono::{DateTime, Utc};
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_postgres::{PgConnection, PgPool};
use tandem_core::{
    Assignee, ChangeSet, CommitReceipt, Item, Record, RecordKind, StoreError, WorkspaceId, Write,
};
use uuid::Uuid;

use crate::codec::{Column, db_error, encode, extra_columns, write_error};

/// What can be known to fail without asking the database: nothing is sent for such a change set.
/// Returns how many items the change set creates.
fn check(changes: &ChangeSet, max_blob_bytes: u64) -> Result<i64, StoreError> {
    let mut new_items = 0;
    for write in &changes.writes {
        match write {
            Write::Put { record, expected_version } => {
                if record.workspace_id() != changes.workspace_id {
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
                if matches!((record, expected_version), (Record::Item(_), None)) {
                    new_items += 1;
                }
            }
            Write::Blob { bytes, .. } => {
                let size = bytes.len() as u64;
                if size > max_blob_bytes {
                    return Err(StoreError::TooLarge { what: "a file".into(), size, limit: max_blob_bytes });
                }
            }
            Write::Delete { .. } => {}
        }
    }
    Ok(new_items)
}

fn creates_workspace(changes: &ChangeSet) -> bool {
    changes
        .writes
        .iter()
        .any(|w| matches!(w, Write::Put { record: Record::Workspace(_), expected_version: None }))
}

pub async fn apply(
    pool: &PgPool,
    mut changes: ChangeSet,
    max_blob_bytes: u64,
) -> Result<CommitReceipt, StoreError> {
    let new_items = check(&changes, max_blob_bytes)?;
    let ws = changes.workspace_id;
    let new_events = changes.events.len() as i64;
    let mut receipt = CommitReceipt::default();
    let mut tx = pool.begin().await.map_err(db_error)?;

    // A workspace's counters are born with it; a commit that needs numbers in a workspace that
    // was never created fails below with `NotFound`, as on SQLite.
    if creates_workspace(&changes) {
        query("INSERT INTO workspace_counters (workspace_id) VALUES ($1)")
            .bind(ws.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_error(e, RecordKind::Workspace))?;
    }
    // Reserve the numbers before anything else. The counter row stays locked until this
    // transaction ends, so concurrent commits to the workspace take numbers in commit order and a
    // rollback gives them back; taking it before any other row lock also keeps it out of
    // lock-order deadlocks.
    let (mut next_number, first_seq) = if new_items > 0 || new_events > 0 {
        query_as::<_, (i64, i64)>(
            "UPDATE workspace_counters \
             SET next_item_number = next_item_number + $2, next_event_seq = next_event_seq + $3 \
             WHERE workspace_id = $1 RETURNING next_item_number - $2, next_event_seq - $3",
        )
        .bind(ws.0)
        .bind(new_items)
        .bind(new_events)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?
        .ok_or_else(|| StoreError::NotFound(format!("workspace {ws}")))?
    } else {
        (0, 0)
    };

    for write in changes.writes.drain(..) {
        match write {
            Write::Put { mut record, expected_version } => {
                if let (Record::Item(item), None) = (&mut record, expected_version) {
                    item.number = next_number;
                    next_number += 1;
                    receipt.item_numbers.push((item.id, item.number));
                }
                put(&mut tx, &record, expected_version).await?;
            }
            Write::Delete { kind, id, expected_version } => {
                delete(&mut tx, ws, kind, id, expected_version).await?
            }
            Write::Blob { sha256, bytes } => {
                query(
                    "INSERT INTO blobs (workspace_id, sha256, size, data) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (workspace_id, sha256) DO NOTHING",
                )
                .bind(ws.0)
                .bind(&sha256)
                .bind(bytes.len() as i64)
                .bind(&bytes[..])
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            }
        }
    }

    if new_events > 0 {
        insert_events(&mut tx, &changes, first_seq).await?;
        receipt.seqs = (first_seq..first_seq + new_events).collect();
    }
    if !changes.jobs.is_empty() {
        insert_jobs(&mut tx, &changes).await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(receipt)
}

fn bind_column<'q>(
    q: sqlx_core::query::Query<'q, sqlx_postgres::Postgres, sqlx_postgres::PgArguments>,
    value: Column,
) -> sqlx_core::query::Query<'q, sqlx_postgres::Postgres, sqlx_postgres::PgArguments> {
    match value {
        Column::Uuid(v) => q.bind(v),
        Column::Text(v) => q.bind(v),
        Column::Int(v) => q.bind(v),
        Column::Bool(v) => q.bind(v),
    }
}

async fn put(
    conn: &mut PgConnection,
    record: &Record,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let kind = record.kind();
    let table = kind.table();
    let doc = encode(record)?;
    let extra = extra_columns(record);
    let sql = match expected_version {
        None => {
            let mut columns = vec!["workspace_id", "id", "parent_id", "version", "doc"];
            columns.extend(extra.iter().map(|(c, _)| *c));
            let values: Vec<String> = (1..=columns.len())
                .map(|i| if i == 5 { "$5::jsonb".to_string() } else { format!("${i}") })
                .collect();
            format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), values.join(", "))
        }
        Some(_) => {
            let mut sets =
                vec!["parent_id = $3".to_string(), "version = $4".to_string(), "doc = $5::jsonb".to_string()];
            sets.extend(extra.iter().enumerate().map(|(i, (c, _))| format!("{c} = ${}", i + 6)));
            format!(
                "UPDATE {table} SET {} WHERE workspace_id = $1 AND id = $2 AND version = ${}",
                sets.join(", "),
                extra.len() + 6
            )
        }
    };
    let mut q = query(&sql)
        .bind(record.workspace_id().0)
        .bind(record.id())
        .bind(record.parent())
        .bind(record.version())
        .bind(&doc);
    for (_, value) in extra {
        q = bind_column(q, value);
    }
    if let Some(expected) = expected_version {
        q = q.bind(expected);
    }
    let written = q.execute(&mut *conn).await.map_err(|e| write_error(e, kind))?.rows_affected();
    if written == 0 {
        return Err(StoreError::Conflict(format!(
            "{} {} changed since it was read",
            kind.label(),
            record.id()
        )));
    }
    match record {
        Record::Item(item) => index_item(conn, item, expected_version.is_some()).await?,
        Record::Message(m) => {
            if let Some(mid) = m.email.as_ref().and_then(|e| e.message_id.as_deref()) {
                index_message_id(conn, m.workspace_id, mid, m.item).await?;
            }
        }
        Record::InboundMail(m) => {
            if let (Some(mid), Some(item)) = (&m.message_id, m.item) {
                index_message_id(conn, m.workspace_id, mid, item).await?;
            }
        }
        Record::OutboundMail(m) => {
            if let (Some(mid), Some(item)) = (&m.message_id, m.item) {
                index_message_id(conn, m.workspace_id, mid, item).await?;
            }
        }
        Record::MailSettings(s) => index_addresses(conn, s).await?,
        Record::Organization(o) => index_domains(conn, o).await?,
        _ => {}
    }
    Ok(())
}

/// Remembers which item a Message-ID belongs to; the first item keeps it.
async fn index_message_id(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    message_id: &str,
    item: tandem_core::ItemId,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO mail_thread_ids (workspace_id, message_id, item_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ws.0)
    .bind(message_id)
    .bind(item.0)
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(db_error)
}

/// Keeps the server-wide address → workspace table in step with a workspace's settings.
async fn index_addresses(
    conn: &mut PgConnection,
    settings: &tandem_core::MailSettings,
) -> Result<(), StoreError> {
    let ws = settings.workspace_id.0;
    query("DELETE FROM mail_addresses WHERE workspace_id = $1")
        .bind(ws)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let addresses: Vec<String> = settings.addresses.iter().map(|a| a.address.clone()).collect();
    if !addresses.is_empty() {
        query("INSERT INTO mail_addresses (address, workspace_id) SELECT unnest($1::text[]), $2")
            .bind(&addresses)
            .bind(ws)
            .execute(&mut *conn)
            .await
            .map_err(|e| write_error(e, RecordKind::MailSettings))?;
    }
    Ok(())
}

async fn unindex_domains(conn: &mut PgConnection, ws: WorkspaceId, org: Uuid) -> Result<(), StoreError> {
    query("DELETE FROM organization_domains WHERE workspace_id = $1 AND organization_id = $2")
        .bind(ws.0)
        .bind(org)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(db_error)
}

/// Keeps the domain → organization table in step with an organization's domains.
async fn index_domains(conn: &mut PgConnection, org: &tandem_core::Organization) -> Result<(), StoreError> {
    unindex_domains(conn, org.workspace_id, org.id.0).await?;
    if !org.domains.is_empty() {
        query(
            "INSERT INTO organization_domains (workspace_id, domain, organization_id) \
             SELECT $1, unnest($2::text[]), $3",
        )
        .bind(org.workspace_id.0)
        .bind(&org.domains)
        .bind(org.id.0)
        .execute(&mut *conn)
        .await
        .map_err(|e| write_error(e, RecordKind::Organization))?;
    }
    Ok(())
}

async fn delete(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    kind: RecordKind,
    id: Uuid,
    expected_version: i64,
) -> Result<(), StoreError> {
    let sql = format!("DELETE FROM {} WHERE workspace_id = $1 AND id = $2 AND version = $3", kind.table());
    let deleted =
        query(&sql).bind(ws.0).bind(id).bind(expected_version).execute(&mut *conn).await.map_err(db_error)?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!("{} {id} changed or is gone", kind.label())));
    }
    if kind == RecordKind::Organization {
        unindex_domains(conn, ws, id).await?;
    }
    if kind == RecordKind::Item {
        for sql in [
            "DELETE FROM item_assignees WHERE workspace_id = $1 AND item_id = $2",
            "DELETE FROM item_followers WHERE workspace_id = $1 AND item_id = $2",
        ] {
            query(sql).bind(ws.0).bind(id).execute(&mut *conn).await.map_err(db_error)?;
        }
    }
    Ok(())
}

/// Keeps the assignee and follower tables in step with the record (the search vector is a
/// generated column and follows by itself).
async fn index_item(conn: &mut PgConnection, item: &Item, existed: bool) -> Result<(), StoreError> {
    let (ws, id) = (item.workspace_id.0, item.id.0);
    let (kinds, assignees): (Vec<&str>, Vec<Uuid>) = item
        .assignees
        .iter()
        .map(|a| match a {
            Assignee::User(u) => ("user", u.0),
            Assignee::Team(t) => ("team", t.0),
        })
        .unzip();
    let followers: Vec<Uuid> = item.followers.iter().map(|f| f.0).collect();
    if existed {
        query(
            "DELETE FROM item_assignees WHERE workspace_id = $1 AND item_id = $2 AND assignee_id <> ALL($3)",
        )
        .bind(ws)
        .bind(id)
        .bind(&assignees)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        query("DELETE FROM item_followers WHERE workspace_id = $1 AND item_id = $2 AND user_id <> ALL($3)")
            .bind(ws)
            .bind(id)
            .bind(&followers)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    if !assignees.is_empty() {
        query(
            "INSERT INTO item_assignees (workspace_id, item_id, assignee_kind, assignee_id) \
             SELECT $1, $2, a.kind, a.id FROM unnest($3::text[], $4::uuid[]) AS a (kind, id) \
             ON CONFLICT (workspace_id, item_id, assignee_id) DO UPDATE SET assignee_kind = excluded.assignee_kind",
        )
        .bind(ws)
        .bind(id)
        .bind(&kinds)
        .bind(&assignees)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    if !followers.is_empty() {
        query(
            "INSERT INTO item_followers (workspace_id, item_id, user_id) \
             SELECT $1, $2, f.id FROM unnest($3::uuid[]) AS f (id) ON CONFLICT DO NOTHING",
        )
        .bind(ws)
        .bind(id)
        .bind(&followers)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

fn json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn insert_events(
    conn: &mut PgConnection,
    changes: &ChangeSet,
    first_seq: i64,
) -> Result<(), StoreError> {
    let items: Vec<Option<Uuid>> = changes.events.iter().map(|e| e.item.map(|i| i.0)).collect();
    let kinds: Vec<&str> = changes.events.iter().map(|e| e.data.name()).collect();
    let data = changes.events.iter().map(|e| json(&e.data)).collect::<Result<Vec<_>, _>>()?;
    query(
        "INSERT INTO events (workspace_id, seq, at, actor, item_id, kind, data) \
         SELECT $1, $2 + e.ord - 1, $3, $4::jsonb, e.item, e.kind, e.data::jsonb \
         FROM unnest($5::uuid[], $6::text[], $7::text[]) WITH ORDINALITY AS e (item, kind, data, ord)",
    )
    .bind(changes.workspace_id.0)
    .bind(first_seq)
    .bind(changes.at)
    .bind(json(&changes.actor)?)
    .bind(&items)
    .bind(&kinds)
    .bind(&data)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn insert_jobs(conn: &mut PgConnection, changes: &ChangeSet) -> Result<(), StoreError> {
    let jobs = &changes.jobs;
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id.0).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let payloads = jobs.iter().map(|j| json(&j.payload)).collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<&str> = jobs.iter().map(|j| j.idempotency_key.as_str()).collect();
    let max_attempts: Vec<i32> =
        jobs.iter().map(|j| i32::try_from(j.max_attempts).unwrap_or(i32::MAX)).collect();
    let run_at: Vec<DateTime<Utc>> = jobs.iter().map(|j| j.run_at).collect();
    // A key seen earlier — in the table or earlier in this same list — drops the job.
    query(
        "INSERT INTO jobs (workspace_id, id, kind, payload, idempotency_key, state, attempts, max_attempts, run_at, \
         created_at, updated_at) \
         SELECT $1, j.id, j.kind, j.payload::jsonb, j.key, 'queued', 0, j.max_attempts, j.run_at, $2, $2 \
         FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::timestamptz[]) WITH ORDINALITY \
              AS j (id, kind, payload, key, max_attempts, run_at, ord) \
         ORDER BY j.ord \
         ON CONFLICT (workspace_id, idempotency_key) DO NOTHING",
    )
    .bind(changes.workspace_id.0)
    .bind(changes.at)
    .bind(&ids)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&keys)
    .bind(&max_attempts)
    .bind(&run_at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}
