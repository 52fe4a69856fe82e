//! Reads. Every query names its workspace; item lists and search apply the reader's scope in SQL.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use tandem_core::store::{
    Cursor, EventQuery, Job, JobFilter, JobState, RecordQuery, SearchHit, SearchQuery, UserFilter,
};
use tandem_core::{
    ApiToken, Assignee, Event, Item, ItemLink, ItemQuery, ItemScope, Message, Organization, Page, Record,
    RecordKind, SortKey, StoreError, User, Workspace, WorkspaceId,
};

use crate::codec::{decode, decode_as, uuid_value, ws_value};
use crate::writer::sql_error;

fn docs(conn: &Connection, sql: &str, values: Vec<Sql>) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows =
        stmt.query_map(params_from_iter(values.iter()), |r| r.get::<_, String>(0)).map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

pub fn workspaces(conn: &Connection) -> Result<Vec<Workspace>, StoreError> {
    let mut all: Vec<Workspace> = docs(conn, "SELECT doc FROM workspaces", vec![])?
        .iter()
        .map(|d| decode_as(RecordKind::Workspace, d))
        .collect::<Result<_, _>>()?;
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(all)
}

pub fn record(
    conn: &Connection,
    ws: WorkspaceId,
    kind: RecordKind,
    id: uuid::Uuid,
) -> Result<Option<Record>, StoreError> {
    let sql = format!("SELECT doc FROM {} WHERE workspace_id = ?1 AND id = ?2", kind.table());
    let doc: Option<String> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params![ws_value(ws), uuid_value(id)], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode(kind, &d)).transpose()
}

pub fn records(
    conn: &Connection,
    ws: WorkspaceId,
    kind: RecordKind,
    q: &RecordQuery,
) -> Result<Vec<Record>, StoreError> {
    let mut sql = format!("SELECT doc FROM {} WHERE workspace_id = ?1", kind.table());
    let mut values = vec![ws_value(ws)];
    if let Some(parent) = q.parent {
        values.push(uuid_value(parent));
        sql.push_str(&format!(" AND parent_id = ?{}", values.len()));
    }
    if let Some(after) = q.after {
        values.push(uuid_value(after));
        sql.push_str(&format!(" AND id > ?{}", values.len()));
    }
    values.push(Sql::Integer(q.limit as i64));
    sql.push_str(&format!(" ORDER BY id LIMIT ?{}", values.len()));
    docs(conn, &sql, values)?.iter().map(|d| decode(kind, d)).collect()
}

pub fn user_by_email(conn: &Connection, ws: WorkspaceId, email: &str) -> Result<Option<User>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM users WHERE workspace_id = ?1 AND email = ?2")
        .and_then(|mut s| s.query_row(params![ws_value(ws), email], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode_as(RecordKind::User, &d)).transpose()
}

pub fn users(conn: &Connection, ws: WorkspaceId, f: &UserFilter) -> Result<Vec<User>, StoreError> {
    let mut sql = String::from("SELECT doc FROM users WHERE workspace_id = ?1");
    let mut values = vec![ws_value(ws)];
    if let Some(d) = &f.email_domain {
        eq("email_domain", Sql::Text(d.clone()), &mut sql, &mut values);
    }
    if let Some(o) = f.organization {
        eq("organization_id", uuid_value(o.0), &mut sql, &mut values);
    }
    values.push(Sql::Integer(f.limit as i64));
    sql.push_str(&format!(" ORDER BY id LIMIT ?{}", values.len()));
    docs(conn, &sql, values)?.iter().map(|d| decode_as(RecordKind::User, d)).collect()
}

pub fn organization_by_domain(
    conn: &Connection,
    ws: WorkspaceId,
    domain: &str,
) -> Result<Option<Organization>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached(
            "SELECT o.doc FROM organization_domains d JOIN organizations o \
             ON o.workspace_id = d.workspace_id AND o.id = d.organization_id \
             WHERE d.workspace_id = ?1 AND d.domain = ?2",
        )
        .and_then(|mut s| s.query_row(params![ws_value(ws), domain], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode_as(RecordKind::Organization, &d)).transpose()
}

pub fn users_by_handles(
    conn: &Connection,
    ws: WorkspaceId,
    handles: &[String],
) -> Result<Vec<User>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM users WHERE workspace_id = ?1 AND handle = ?2")
        .map_err(sql_error)?;
    for h in handles {
        let doc: Option<String> =
            stmt.query_row(params![ws_value(ws), h], |r| r.get(0)).optional().map_err(sql_error)?;
        if let Some(d) = doc {
            out.push(decode_as(RecordKind::User, &d)?);
        }
    }
    Ok(out)
}

pub fn item_by_number(conn: &Connection, ws: WorkspaceId, number: i64) -> Result<Option<Item>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM items WHERE workspace_id = ?1 AND number = ?2")
        .and_then(|mut s| s.query_row(params![ws_value(ws), number], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode_as(RecordKind::Item, &d)).transpose()
}

/// The condition "the user requested or follows item `i`".
fn involving(user: tandem_core::UserId, values: &mut Vec<Sql>) -> String {
    values.push(uuid_value(user.0));
    let n = values.len();
    format!(
        "(i.requester_id = ?{n} OR EXISTS (SELECT 1 FROM item_followers f \
         WHERE f.workspace_id = i.workspace_id AND f.item_id = i.id AND f.user_id = ?{n}))"
    )
}

/// `column IN (…)`, or a condition that is never true for an empty list.
fn one_of(column: &str, list: Vec<Sql>, values: &mut Vec<Sql>) -> String {
    if list.is_empty() {
        return "0".into();
    }
    let mut placeholders = Vec::new();
    for v in list {
        values.push(v);
        placeholders.push(format!("?{}", values.len()));
    }
    format!("{column} IN ({})", placeholders.join(", "))
}

/// Appends the scope condition on alias `i`: the SQL form of `ItemScope::admits`.
fn scope_sql(scope: &ItemScope, sql: &mut String, values: &mut Vec<Sql>) {
    match scope {
        ItemScope::All => {}
        ItemScope::Involving(user) => {
            let cond = involving(*user, values);
            sql.push_str(&format!(" AND {cond}"));
        }
        ItemScope::Projects(projects) => {
            let cond = one_of("i.project_id", projects.iter().map(|p| uuid_value(p.0)).collect(), values);
            sql.push_str(&format!(" AND {cond}"));
        }
        ItemScope::Portal(p) => {
            let mut any = vec![involving(p.user, values)];
            if !p.public_types.is_empty() {
                any.push(one_of(
                    "i.item_type",
                    p.public_types.iter().map(|t| uuid_value(t.0)).collect(),
                    values,
                ));
            }
            if !p.projects.is_empty() {
                any.push(one_of(
                    "i.project_id",
                    p.projects.iter().map(|t| uuid_value(t.0)).collect(),
                    values,
                ));
            }
            if let Some(org) = p.organization
                && !p.organization_types.is_empty()
            {
                let types = one_of(
                    "i.item_type",
                    p.organization_types.iter().map(|t| uuid_value(t.0)).collect(),
                    values,
                );
                values.push(uuid_value(org.0));
                any.push(format!(
                    "({types} AND i.requester_id IN (SELECT u.id FROM users u \
                     WHERE u.workspace_id = i.workspace_id AND u.organization_id = ?{}))",
                    values.len()
                ));
            }
            sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
    }
}

fn in_list(column: &str, items: Vec<Sql>, sql: &mut String, values: &mut Vec<Sql>) {
    if items.is_empty() {
        return;
    }
    let mut placeholders = Vec::new();
    for v in items {
        values.push(v);
        placeholders.push(format!("?{}", values.len()));
    }
    sql.push_str(&format!(" AND {column} IN ({})", placeholders.join(", ")));
}

fn eq(column: &str, value: Sql, sql: &mut String, values: &mut Vec<Sql>) {
    values.push(value);
    sql.push_str(&format!(" AND {column} = ?{}", values.len()));
}

pub fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::Number => "i.number",
        SortKey::CreatedAt => "i.created_ms",
        SortKey::UpdatedAt => "i.updated_ms",
        SortKey::Priority => "i.priority",
    }
}

pub fn items(conn: &Connection, ws: WorkspaceId, q: &ItemQuery) -> Result<Page<Item>, StoreError> {
    let mut sql = String::from("SELECT i.doc FROM items i WHERE i.workspace_id = ?1");
    let mut values = vec![ws_value(ws)];
    scope_sql(&q.scope, &mut sql, &mut values);
    let f = &q.filter;
    in_list("i.item_type", f.item_types.iter().map(|t| uuid_value(t.0)).collect(), &mut sql, &mut values);
    if let Some(kind) = f.kind {
        eq("i.kind", Sql::Text(kind.as_str().into()), &mut sql, &mut values);
    }
    if let Some(p) = f.project {
        eq("i.project_id", uuid_value(p.0), &mut sql, &mut values);
    }
    if let Some(folder) = f.folder {
        eq("i.folder_id", uuid_value(folder.0), &mut sql, &mut values);
    }
    if let Some(parent) = f.parent {
        eq("i.parent_id", uuid_value(parent.0), &mut sql, &mut values);
    }
    in_list("i.status", f.statuses.iter().map(|s| Sql::Text(s.clone())).collect(), &mut sql, &mut values);
    in_list(
        "i.category",
        f.categories.iter().map(|c| Sql::Text(c.as_str().into())).collect(),
        &mut sql,
        &mut values,
    );
    in_list(
        "i.priority",
        f.priorities.iter().map(|p| Sql::Integer(p.rank())).collect(),
        &mut sql,
        &mut values,
    );
    if let Some(requester) = f.requester {
        eq("i.requester_id", uuid_value(requester.0), &mut sql, &mut values);
    }
    if let Some(a) = f.assignee {
        let id = match a {
            Assignee::User(u) => u.0,
            Assignee::Team(t) => t.0,
        };
        values.push(uuid_value(id));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM item_assignees a WHERE a.workspace_id = i.workspace_id AND a.item_id = i.id \
             AND a.assignee_id = ?{})",
            values.len()
        ));
    }
    if let Some(u) = f.follower {
        values.push(uuid_value(u.0));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM item_followers fo WHERE fo.workspace_id = i.workspace_id AND fo.item_id = i.id \
             AND fo.user_id = ?{})",
            values.len()
        ));
    }
    for (column, bound, op) in [
        ("i.created_ms", f.created_after, ">="),
        ("i.created_ms", f.created_before, "<"),
        ("i.updated_ms", f.updated_after, ">="),
    ] {
        if let Some(t) = bound {
            values.push(Sql::Integer(t.timestamp_millis()));
            sql.push_str(&format!(" AND {column} {op} ?{}", values.len()));
        }
    }
    let col = sort_column(q.sort);
    let (cmp, dir) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
    if let Some(after) = q.after {
        values.push(Sql::Integer(after.value));
        values.push(Sql::Integer(after.number));
        let n = values.len();
        sql.push_str(&format!(" AND ({col}, i.number) {cmp} (?{}, ?{n})", n - 1));
    }
    values.push(Sql::Integer(q.limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY {col} {dir}, i.number {dir} LIMIT ?{}", values.len()));
    let mut items: Vec<Item> =
        docs(conn, &sql, values)?.iter().map(|d| decode_as(RecordKind::Item, d)).collect::<Result<_, _>>()?;
    let next = if items.len() > q.limit {
        items.truncate(q.limit);
        items.last().map(|last| Cursor { value: q.sort.value(last), number: last.number })
    } else {
        None
    };
    Ok(Page { items, next })
}

pub fn messages(
    conn: &Connection,
    ws: WorkspaceId,
    item: tandem_core::ItemId,
    internal: bool,
) -> Result<Vec<Message>, StoreError> {
    let sql = if internal {
        "SELECT doc FROM messages WHERE workspace_id = ?1 AND parent_id = ?2 ORDER BY created_ms, id"
    } else {
        "SELECT doc FROM messages WHERE workspace_id = ?1 AND parent_id = ?2 AND internal = 0 ORDER BY created_ms, id"
    };
    docs(conn, sql, vec![ws_value(ws), uuid_value(item.0)])?
        .iter()
        .map(|d| decode_as(RecordKind::Message, d))
        .collect()
}

pub fn links(
    conn: &Connection,
    ws: WorkspaceId,
    item: tandem_core::ItemId,
) -> Result<Vec<ItemLink>, StoreError> {
    docs(
        conn,
        "SELECT doc FROM item_links WHERE workspace_id = ?1 AND (parent_id = ?2 OR other_id = ?2) ORDER BY id",
        vec![ws_value(ws), uuid_value(item.0)],
    )?
    .iter()
    .map(|d| decode_as(RecordKind::Link, d))
    .collect()
}

/// Turns user text into an FTS5 query: every word must match (the last one as a prefix);
/// quoting each word means no user input is ever parsed as FTS syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}*", words.join(" ")))
}

pub fn search(conn: &Connection, ws: WorkspaceId, q: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
    let Some(fts) = fts_query(&q.text) else {
        return Ok(Vec::new());
    };
    let mut values = vec![Sql::Text(fts), ws_value(ws), Sql::Integer(i64::from(q.include_internal))];
    let mut sql = String::from(
        "WITH hits AS ( \
           SELECT it.rowid AS irow, bm25(item_fts, 10.0, 1.0) AS score, \
                  snippet(item_fts, -1, '', '', '…', 16) AS snip \
             FROM item_fts JOIN items it ON it.rowid = item_fts.rowid \
            WHERE item_fts MATCH ?1 AND it.workspace_id = ?2 \
           UNION ALL \
           SELECT it.rowid, bm25(message_fts), snippet(message_fts, 0, '', '', '…', 16) \
             FROM message_fts JOIN messages m ON m.rowid = message_fts.rowid \
             JOIN items it ON it.workspace_id = m.workspace_id AND it.id = m.parent_id \
            WHERE message_fts MATCH ?1 AND m.workspace_id = ?2 AND (?3 = 1 OR m.internal = 0) \
         ) \
         SELECT i.doc, min(h.score) AS best, h.snip FROM hits h JOIN items i ON i.rowid = h.irow WHERE 1 = 1",
    );
    scope_sql(&q.scope, &mut sql, &mut values);
    values.push(Sql::Integer(q.limit as i64));
    sql.push_str(&format!(" GROUP BY h.irow ORDER BY best LIMIT ?{}", values.len()));
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params_from_iter(values.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(2)?)))
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (doc, snippet) = row.map_err(sql_error)?;
        out.push(SearchHit { item: decode_as(RecordKind::Item, &doc)?, snippet });
    }
    Ok(out)
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub fn events(conn: &Connection, ws: WorkspaceId, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
    let (sql, mut values) = match q.item {
        Some(item) => (
            "SELECT seq, at_ms, actor, item_id, data FROM events WHERE workspace_id = ?1 AND item_id = ?3 AND seq > ?2 \
             ORDER BY seq LIMIT ?4",
            vec![ws_value(ws), Sql::Integer(q.after), uuid_value(item.0)],
        ),
        None => (
            "SELECT seq, at_ms, actor, item_id, data FROM events WHERE workspace_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            vec![ws_value(ws), Sql::Integer(q.after)],
        ),
    };
    values.push(Sql::Integer(q.limit as i64));
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params_from_iter(values.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<uuid::Uuid>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, at, actor, item, data) = row.map_err(sql_error)?;
        let bad = |e: serde_json::Error| StoreError::Corrupt(format!("event {seq}: {e}"));
        out.push(Event {
            workspace_id: ws,
            seq,
            at: millis(at),
            actor: serde_json::from_str(&actor).map_err(bad)?,
            item: item.map(tandem_core::ItemId),
            data: serde_json::from_str(&data).map_err(bad)?,
        });
    }
    Ok(out)
}

pub fn blob(conn: &Connection, ws: WorkspaceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT data FROM blobs WHERE workspace_id = ?1 AND sha256 = ?2")
        .and_then(|mut s| s.query_row(params![ws_value(ws), sha256], |r| r.get(0)).optional())
        .map_err(sql_error)
}

pub fn token_by_secret(conn: &Connection, secret_sha256: &str) -> Result<Option<ApiToken>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM api_tokens WHERE secret_sha256 = ?1")
        .and_then(|mut s| s.query_row(params![secret_sha256], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode_as(RecordKind::Token, &d)).transpose()
}

pub fn server_setting(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM server_settings WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .map_err(sql_error)
}

pub fn mail_workspace(conn: &Connection, address: &str) -> Result<Option<WorkspaceId>, StoreError> {
    conn.prepare_cached("SELECT workspace_id FROM mail_addresses WHERE address = ?1")
        .and_then(|mut s| s.query_row(params![address], |r| r.get::<_, uuid::Uuid>(0)).optional())
        .map(|id| id.map(WorkspaceId))
        .map_err(sql_error)
}

pub fn inbound_mail_by_key(
    conn: &Connection,
    ws: WorkspaceId,
    key: &str,
) -> Result<Option<tandem_core::InboundMail>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM inbound_mails WHERE workspace_id = ?1 AND dedupe_key = ?2")
        .and_then(|mut s| s.query_row(params![ws_value(ws), key], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    doc.map(|d| decode_as(RecordKind::InboundMail, &d)).transpose()
}

pub fn items_by_message_ids(
    conn: &Connection,
    ws: WorkspaceId,
    ids: &[String],
) -> Result<Vec<(String, tandem_core::ItemId)>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached("SELECT item_id FROM mail_thread_ids WHERE workspace_id = ?1 AND message_id = ?2")
        .map_err(sql_error)?;
    for id in ids.iter().take(200) {
        let item: Option<uuid::Uuid> =
            stmt.query_row(params![ws_value(ws), id], |r| r.get(0)).optional().map_err(sql_error)?;
        out.extend(item.map(|i| (id.clone(), tandem_core::ItemId(i))));
    }
    Ok(out)
}

pub fn outbound_mails(
    conn: &Connection,
    ws: WorkspaceId,
    q: &tandem_core::store::OutboundQuery,
) -> Result<Vec<tandem_core::mail::OutboundMail>, StoreError> {
    let mut sql = String::from("SELECT doc FROM outbound_mails WHERE workspace_id = ?");
    let mut values: Vec<Sql> = vec![ws_value(ws)];
    if let Some(item) = q.item {
        sql.push_str(" AND parent_id = ?");
        values.push(uuid_value(item.0));
    }
    if let Some(recipient) = &q.recipient {
        sql.push_str(" AND recipient = ?");
        values.push(Sql::Text(recipient.to_lowercase()));
    }
    if let Some(status) = q.status {
        sql.push_str(" AND status = ?");
        values.push(Sql::Text(status.as_str().to_string()));
    }
    if let Some(since) = q.since {
        sql.push_str(" AND at_ms >= ?");
        values.push(Sql::Integer(since.timestamp_millis()));
    }
    sql.push_str(" ORDER BY at_ms DESC, id DESC LIMIT ?");
    values.push(Sql::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    let docs: Vec<String> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map(params_from_iter(values.iter()), |r| r.get(0))?.collect())
        .map_err(sql_error)?;
    docs.iter().map(|d| decode_as(RecordKind::OutboundMail, d)).collect()
}

pub const JOB_COLUMNS: &str = "id, workspace_id, kind, payload, idempotency_key, state, attempts, max_attempts, run_at_ms, \
                               lease_until_ms, last_error, created_ms, updated_ms";

pub fn job_row(r: &Row<'_>) -> rusqlite::Result<Result<Job, StoreError>> {
    let payload: String = r.get(3)?;
    let state: String = r.get(5)?;
    let lease: Option<i64> = r.get(9)?;
    Ok((|| {
        Ok(Job {
            id: tandem_core::JobId(r.get(0).map_err(sql_error)?),
            workspace_id: WorkspaceId(r.get(1).map_err(sql_error)?),
            kind: r.get(2).map_err(sql_error)?,
            payload: serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
            idempotency_key: r.get(4).map_err(sql_error)?,
            state: JobState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("job state '{state}'")))?,
            attempts: r.get(6).map_err(sql_error)?,
            max_attempts: r.get(7).map_err(sql_error)?,
            run_at: millis(r.get(8).map_err(sql_error)?),
            lease_until: lease.map(millis),
            last_error: r.get(10).map_err(sql_error)?,
            created_at: millis(r.get(11).map_err(sql_error)?),
            updated_at: millis(r.get(12).map_err(sql_error)?),
        })
    })())
}

pub fn collect_jobs(stmt: &mut rusqlite::Statement<'_>, values: &[Sql]) -> Result<Vec<Job>, StoreError> {
    let rows = stmt.query_map(params_from_iter(values.iter()), job_row).map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(sql_error)??);
    }
    Ok(out)
}

pub fn jobs(conn: &Connection, f: &JobFilter) -> Result<Vec<Job>, StoreError> {
    let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
    let mut values = Vec::new();
    if let Some(ws) = f.workspace {
        values.push(ws_value(ws));
        sql.push_str(&format!(" AND workspace_id = ?{}", values.len()));
    }
    if let Some(state) = f.state {
        values.push(Sql::Text(state.as_str().into()));
        sql.push_str(&format!(" AND state = ?{}", values.len()));
    }
    if let Some(kind) = &f.kind {
        values.push(Sql::Text(kind.clone()));
        sql.push_str(&format!(" AND kind = ?{}", values.len()));
    }
    values.push(Sql::Integer(f.limit as i64));
    sql.push_str(&format!(" ORDER BY created_ms DESC, id DESC LIMIT ?{}", values.len()));
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    collect_jobs(&mut stmt, &values)
}

pub fn job(conn: &Connection, id: tandem_core::JobId) -> Result<Option<Job>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1")).map_err(sql_error)?;
    Ok(collect_jobs(&mut stmt, &[uuid_value(id.0)])?.pop())
}

pub fn time_entries(
    conn: &Connection,
    ws: WorkspaceId,
    q: &tandem_core::store::TimeEntryQuery,
) -> Result<Vec<tandem_core::TimeEntry>, StoreError> {
    let mut sql = "SELECT doc FROM time_entries WHERE workspace_id = ?1".to_string();
    let mut values = vec![ws_value(ws)];
    if let Some(user) = q.user {
        values.push(uuid_value(user.0));
        sql.push_str(&format!(" AND user_id = ?{}", values.len()));
    }
    if let Some(items) = &q.items {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut marks = Vec::with_capacity(items.len());
        for item in items {
            values.push(uuid_value(item.0));
            marks.push(format!("?{}", values.len()));
        }
        sql.push_str(&format!(" AND parent_id IN ({})", marks.join(", ")));
    }
    if !q.statuses.is_empty() {
        let mut marks = Vec::with_capacity(q.statuses.len());
        for status in &q.statuses {
            values.push(Sql::Text(status.as_str().into()));
            marks.push(format!("?{}", values.len()));
        }
        sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
    }
    if let Some(running) = q.running {
        values.push(Sql::Integer(i64::from(running)));
        sql.push_str(&format!(" AND running = ?{}", values.len()));
    }
    if let Some(from) = q.started_from {
        values.push(Sql::Integer(from.timestamp_millis()));
        sql.push_str(&format!(" AND started_ms >= ?{}", values.len()));
    }
    if let Some(before) = q.started_before {
        values.push(Sql::Integer(before.timestamp_millis()));
        sql.push_str(&format!(" AND started_ms < ?{}", values.len()));
    }
    values.push(Sql::Integer(q.limit as i64));
    sql.push_str(&format!(" ORDER BY started_ms, id LIMIT ?{}", values.len()));
    // Long item lists make one-off statements: do not fill the statement cache with them.
    let mut stmt = conn.prepare(&sql).map_err(sql_error)?;
    let rows =
        stmt.query_map(params_from_iter(values.iter()), |r| r.get::<_, String>(0)).map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error).and_then(|d| decode_as(RecordKind::TimeEntry, &d))).collect()
}
