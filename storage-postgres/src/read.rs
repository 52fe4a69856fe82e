//! Reads. Every query names its workspace; item lists and search apply the reader's scope in SQL.

use chrono::{DateTime, Utc};
use sqlx_core::query_as::query_as;
use sqlx_core::query_builder::QueryBuilder;
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::{PgPool, Postgres};
use tandem_core::store::{Cursor, EventQuery, SearchHit, SearchQuery, UserFilter};
use tandem_core::{
    ApiToken, Assignee, Event, Item, ItemId, ItemLink, ItemQuery, ItemScope, Message, Organization, Page,
    Record, RecordKind, SortKey, StoreError, User, Workspace, WorkspaceId,
};
use uuid::Uuid;

use crate::codec::{db_error, decode, decode_as, limit};

async fn docs(pool: &PgPool, builder: &mut QueryBuilder<'_, Postgres>) -> Result<Vec<String>, StoreError> {
    builder.build_query_scalar::<String>().fetch_all(pool).await.map_err(db_error)
}

pub async fn workspaces(pool: &PgPool) -> Result<Vec<Workspace>, StoreError> {
    let docs: Vec<String> =
        query_scalar("SELECT doc::text FROM workspaces").fetch_all(pool).await.map_err(db_error)?;
    let mut all: Vec<Workspace> =
        docs.iter().map(|d| decode_as(RecordKind::Workspace, d)).collect::<Result<_, _>>()?;
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(all)
}

pub async fn record(
    pool: &PgPool,
    ws: WorkspaceId,
    kind: RecordKind,
    id: Uuid,
) -> Result<Option<Record>, StoreError> {
    let sql = format!("SELECT doc::text FROM {} WHERE workspace_id = $1 AND id = $2", kind.table());
    let doc: Option<String> =
        query_scalar(&sql).bind(ws.0).bind(id).fetch_optional(pool).await.map_err(db_error)?;
    doc.map(|d| decode(kind, &d)).transpose()
}

pub async fn records(
    pool: &PgPool,
    ws: WorkspaceId,
    kind: RecordKind,
    q: &tandem_core::store::RecordQuery,
) -> Result<Vec<Record>, StoreError> {
    let mut b = QueryBuilder::new(format!("SELECT doc::text FROM {} WHERE workspace_id = ", kind.table()));
    b.push_bind(ws.0);
    if let Some(parent) = q.parent {
        b.push(" AND parent_id = ").push_bind(parent);
    }
    if let Some(after) = q.after {
        b.push(" AND id > ").push_bind(after);
    }
    b.push(" ORDER BY id LIMIT ").push_bind(limit(q.limit));
    docs(pool, &mut b).await?.iter().map(|d| decode(kind, d)).collect()
}

pub async fn user_by_email(pool: &PgPool, ws: WorkspaceId, email: &str) -> Result<Option<User>, StoreError> {
    let doc: Option<String> =
        query_scalar("SELECT doc::text FROM users WHERE workspace_id = $1 AND email = $2")
            .bind(ws.0)
            .bind(email)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    doc.map(|d| decode_as(RecordKind::User, &d)).transpose()
}

/// In the order the handles were given.
pub async fn users_by_handles(
    pool: &PgPool,
    ws: WorkspaceId,
    handles: &[String],
) -> Result<Vec<User>, StoreError> {
    if handles.is_empty() {
        return Ok(Vec::new());
    }
    let docs: Vec<String> = query_scalar(
        "SELECT doc::text FROM users WHERE workspace_id = $1 AND handle = ANY($2) \
         ORDER BY array_position($2, handle)",
    )
    .bind(ws.0)
    .bind(handles)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    docs.iter().map(|d| decode_as(RecordKind::User, d)).collect()
}

pub async fn users(pool: &PgPool, ws: WorkspaceId, f: &UserFilter) -> Result<Vec<User>, StoreError> {
    let mut b = QueryBuilder::new("SELECT doc::text FROM users WHERE workspace_id = ");
    b.push_bind(ws.0);
    if let Some(d) = &f.email_domain {
        b.push(" AND email_domain = ").push_bind(d.clone());
    }
    if let Some(o) = f.organization {
        b.push(" AND organization_id = ").push_bind(o.0);
    }
    b.push(" ORDER BY id LIMIT ").push_bind(limit(f.limit));
    docs(pool, &mut b).await?.iter().map(|d| decode_as(RecordKind::User, d)).collect()
}

pub async fn organization_by_domain(
    pool: &PgPool,
    ws: WorkspaceId,
    domain: &str,
) -> Result<Option<Organization>, StoreError> {
    let doc: Option<String> = query_scalar(
        "SELECT o.doc::text FROM organization_domains d JOIN organizations o \
         ON o.workspace_id = d.workspace_id AND o.id = d.organization_id \
         WHERE d.workspace_id = $1 AND d.domain = $2",
    )
    .bind(ws.0)
    .bind(domain)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?;
    doc.map(|d| decode_as(RecordKind::Organization, &d)).transpose()
}

pub async fn item_by_number(pool: &PgPool, ws: WorkspaceId, number: i64) -> Result<Option<Item>, StoreError> {
    let doc: Option<String> =
        query_scalar("SELECT doc::text FROM items WHERE workspace_id = $1 AND number = $2")
            .bind(ws.0)
            .bind(number)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    doc.map(|d| decode_as(RecordKind::Item, &d)).transpose()
}

fn uuids<T: Copy + Into<Uuid>>(ids: &[T]) -> Vec<Uuid> {
    ids.iter().map(|&i| i.into()).collect()
}

/// The scope condition on alias `i` as SQL whose parameters start at `$6` (search builds its
/// statement by hand), and the values in order. The SQL form of `ItemScope::admits`.
fn scope_clause(scope: &ItemScope) -> (&'static str, Vec<ScopeValue>) {
    match scope {
        ItemScope::All => ("", Vec::new()),
        ItemScope::Involving(u) => (
            " AND (i.requester_id = $6 OR EXISTS (SELECT 1 FROM item_followers f \
             WHERE f.workspace_id = i.workspace_id AND f.item_id = i.id AND f.user_id = $6))",
            vec![ScopeValue::Id(Some(u.0))],
        ),
        ItemScope::Projects(p) => (" AND i.project_id = ANY($6)", vec![ScopeValue::Ids(uuids(p))]),
        ItemScope::Portal(p) => (
            " AND ((i.requester_id = $6 OR EXISTS (SELECT 1 FROM item_followers f \
                 WHERE f.workspace_id = i.workspace_id AND f.item_id = i.id AND f.user_id = $6)) \
                 OR i.item_type = ANY($9) OR i.project_id = ANY($10) \
                 OR (i.item_type = ANY($8) AND i.requester_id IN (SELECT u.id FROM users u \
                     WHERE u.workspace_id = i.workspace_id AND u.organization_id = $7)))",
            vec![
                ScopeValue::Id(Some(p.user.0)),
                ScopeValue::Id(p.organization.map(|o| o.0)),
                ScopeValue::Ids(if p.organization.is_some() {
                    uuids(&p.organization_types)
                } else {
                    Vec::new()
                }),
                ScopeValue::Ids(uuids(&p.public_types)),
                ScopeValue::Ids(uuids(&p.projects)),
            ],
        ),
    }
}

enum ScopeValue {
    Id(Option<Uuid>),
    Ids(Vec<Uuid>),
}

/// Appends the scope condition on alias `i` to a query being built.
fn scope_sql(scope: &ItemScope, b: &mut QueryBuilder<'_, Postgres>) {
    match scope {
        ItemScope::All => {}
        ItemScope::Involving(user) => {
            b.push(" AND (i.requester_id = ").push_bind(user.0);
            b.push(
                " OR EXISTS (SELECT 1 FROM item_followers f \
                 WHERE f.workspace_id = i.workspace_id AND f.item_id = i.id AND f.user_id = ",
            )
            .push_bind(user.0)
            .push("))");
        }
        ItemScope::Projects(p) => {
            b.push(" AND i.project_id = ANY(").push_bind(uuids(p)).push(")");
        }
        ItemScope::Portal(p) => {
            b.push(" AND ((i.requester_id = ").push_bind(p.user.0);
            b.push(
                " OR EXISTS (SELECT 1 FROM item_followers f \
                 WHERE f.workspace_id = i.workspace_id AND f.item_id = i.id AND f.user_id = ",
            )
            .push_bind(p.user.0)
            .push("))");
            b.push(" OR i.item_type = ANY(").push_bind(uuids(&p.public_types)).push(")");
            b.push(" OR i.project_id = ANY(").push_bind(uuids(&p.projects)).push(")");
            if let Some(org) = p.organization {
                b.push(" OR (i.item_type = ANY(").push_bind(uuids(&p.organization_types)).push(")");
                b.push(
                    " AND i.requester_id IN (SELECT u.id FROM users u \
                     WHERE u.workspace_id = i.workspace_id AND u.organization_id = ",
                )
                .push_bind(org.0)
                .push("))");
            }
            b.push(")");
        }
    }
}

fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::Number => "i.number",
        SortKey::CreatedAt => "i.created_ms",
        SortKey::UpdatedAt => "i.updated_ms",
        SortKey::Priority => "i.priority",
    }
}

pub async fn items(pool: &PgPool, ws: WorkspaceId, q: &ItemQuery) -> Result<Page<Item>, StoreError> {
    let mut b = QueryBuilder::new("SELECT i.doc::text FROM items i WHERE i.workspace_id = ");
    b.push_bind(ws.0);
    scope_sql(&q.scope, &mut b);
    let f = &q.filter;
    if !f.item_types.is_empty() {
        b.push(" AND i.item_type = ANY(")
            .push_bind(f.item_types.iter().map(|t| t.0).collect::<Vec<_>>())
            .push(")");
    }
    if let Some(kind) = f.kind {
        b.push(" AND i.kind = ").push_bind(kind.as_str());
    }
    if let Some(p) = f.project {
        b.push(" AND i.project_id = ").push_bind(p.0);
    }
    if let Some(folder) = f.folder {
        b.push(" AND i.folder_id = ").push_bind(folder.0);
    }
    if let Some(parent) = f.parent {
        b.push(" AND i.parent_id = ").push_bind(parent.0);
    }
    if !f.statuses.is_empty() {
        b.push(" AND i.status = ANY(").push_bind(f.statuses.clone()).push(")");
    }
    if !f.categories.is_empty() {
        let categories: Vec<&'static str> = f.categories.iter().map(|c| c.as_str()).collect();
        b.push(" AND i.category = ANY(").push_bind(categories).push(")");
    }
    if !f.priorities.is_empty() {
        let ranks: Vec<i64> = f.priorities.iter().map(|p| p.rank()).collect();
        b.push(" AND i.priority = ANY(").push_bind(ranks).push(")");
    }
    if let Some(requester) = f.requester {
        b.push(" AND i.requester_id = ").push_bind(requester.0);
    }
    if let Some(a) = f.assignee {
        let id = match a {
            Assignee::User(u) => u.0,
            Assignee::Team(t) => t.0,
        };
        b.push(
            " AND EXISTS (SELECT 1 FROM item_assignees a WHERE a.workspace_id = i.workspace_id \
             AND a.item_id = i.id AND a.assignee_id = ",
        )
        .push_bind(id)
        .push(")");
    }
    if let Some(u) = f.follower {
        b.push(
            " AND EXISTS (SELECT 1 FROM item_followers fo WHERE fo.workspace_id = i.workspace_id \
             AND fo.item_id = i.id AND fo.user_id = ",
        )
        .push_bind(u.0)
        .push(")");
    }
    for (column, bound, op) in [
        ("i.created_ms", f.created_after, " >= "),
        ("i.created_ms", f.created_before, " < "),
        ("i.updated_ms", f.updated_after, " >= "),
    ] {
        if let Some(t) = bound {
            b.push(" AND ").push(column).push(op).push_bind(t.timestamp_millis());
        }
    }
    let col = sort_column(q.sort);
    let (cmp, dir) = if q.descending { (" < ", " DESC") } else { (" > ", " ASC") };
    if let Some(after) = q.after {
        // A row comparison, so the (workspace, sort column, number) index serves the seek.
        b.push(" AND (").push(col).push(", i.number)").push(cmp).push("(");
        b.push_bind(after.value).push(", ").push_bind(after.number).push(")");
    }
    b.push(" ORDER BY ").push(col).push(dir).push(", i.number").push(dir);
    b.push(" LIMIT ").push_bind(limit(q.limit).saturating_add(1));
    let mut items: Vec<Item> =
        docs(pool, &mut b).await?.iter().map(|d| decode_as(RecordKind::Item, d)).collect::<Result<_, _>>()?;
    let next = if items.len() > q.limit {
        items.truncate(q.limit);
        items.last().map(|last| Cursor { value: q.sort.value(last), number: last.number })
    } else {
        None
    };
    Ok(Page { items, next })
}

pub async fn messages(
    pool: &PgPool,
    ws: WorkspaceId,
    item: ItemId,
    internal: bool,
) -> Result<Vec<Message>, StoreError> {
    let sql = if internal {
        "SELECT doc::text FROM messages WHERE workspace_id = $1 AND parent_id = $2 ORDER BY created_ms, id"
    } else {
        "SELECT doc::text FROM messages WHERE workspace_id = $1 AND parent_id = $2 AND NOT internal \
         ORDER BY created_ms, id"
    };
    let docs: Vec<String> =
        query_scalar(sql).bind(ws.0).bind(item.0).fetch_all(pool).await.map_err(db_error)?;
    docs.iter().map(|d| decode_as(RecordKind::Message, d)).collect()
}

pub async fn links(pool: &PgPool, ws: WorkspaceId, item: ItemId) -> Result<Vec<ItemLink>, StoreError> {
    let docs: Vec<String> = query_scalar(
        "SELECT doc::text FROM item_links WHERE workspace_id = $1 AND (parent_id = $2 OR other_id = $2) ORDER BY id",
    )
    .bind(ws.0)
    .bind(item.0)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    docs.iter().map(|d| decode_as(RecordKind::Link, d)).collect()
}

/// Turns user text into `to_tsquery` input: every word must match, the last one as a prefix.
///
/// Words are runs of letters and digits, so none holds a quote, a backslash or an operator, and
/// each is quoted as a single operand: no user input is ever read as tsquery syntax. Words too
/// long for any index entry are dropped, as PostgreSQL drops them when indexing.
pub fn tsquery(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 255)
        .take(16)
        .map(|w| format!("'{w}'"))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}:*", words.join(" & ")))
}

/// `ts_headline` options: plain text (no markup), up to two fragments around the matches.
const HEADLINE: &str = "StartSel=\"\", StopSel=\"\", MaxWords=20, MinWords=6, ShortWord=2, MaxFragments=2, \
                        FragmentDelimiter=\" … \"";

/// One hit per item: title and description through the item's vector, messages through theirs
/// (internal ones only when allowed), the best-ranked of them wins and supplies the snippet.
pub async fn search(pool: &PgPool, ws: WorkspaceId, q: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
    let Some(tsquery) = tsquery(&q.text) else { return Ok(Vec::new()) };
    // $1 workspace, $2 tsquery text, $3 include internal, $4 limit, $5 headline options; the
    // scope's values, when it has any, from $6 on.
    let (scope, scope_values) = scope_clause(&q.scope);
    let sql = format!(
        "WITH query AS (SELECT to_tsquery('tandem_search', $2) AS q), \
         hits AS ( \
             SELECT i.id AS item_id, ts_rank(i.search, query.q, 1) AS rank, NULL::uuid AS message_id \
               FROM items i CROSS JOIN query \
              WHERE i.workspace_id = $1 AND i.search @@ query.q{scope} \
             UNION ALL \
             SELECT i.id, ts_rank(m.search, query.q, 1), m.id \
               FROM messages m CROSS JOIN query \
               JOIN items i ON i.workspace_id = m.workspace_id AND i.id = m.parent_id \
              WHERE m.workspace_id = $1 AND m.search @@ query.q AND ($3 OR NOT m.internal){scope} \
         ), \
         best AS ( \
             SELECT DISTINCT ON (item_id) item_id, rank, message_id FROM hits \
              ORDER BY item_id, rank DESC, message_id NULLS FIRST \
         ), \
         top AS ( \
             SELECT b.item_id, b.rank, b.message_id, i.number FROM best b \
               JOIN items i ON i.workspace_id = $1 AND i.id = b.item_id \
              ORDER BY b.rank DESC, i.number LIMIT $4 \
         ) \
         SELECT i.doc::text, ts_headline('tandem_search', \
                    CASE WHEN t.message_id IS NULL \
                         THEN concat_ws(E'\\n', i.doc->>'title', left(i.doc->>'description', 100000)) \
                         ELSE left(m.doc->>'text', 100000) END, \
                    query.q, $5) \
           FROM top t \
           JOIN items i ON i.workspace_id = $1 AND i.id = t.item_id \
           LEFT JOIN messages m ON m.workspace_id = $1 AND m.id = t.message_id \
           CROSS JOIN query \
          ORDER BY t.rank DESC, t.number"
    );
    let mut select = query_as::<_, (String, String)>(&sql)
        .bind(ws.0)
        .bind(tsquery)
        .bind(q.include_internal)
        .bind(limit(q.limit))
        .bind(HEADLINE);
    for v in scope_values {
        select = match v {
            ScopeValue::Id(id) => select.bind(id),
            ScopeValue::Ids(ids) => select.bind(ids),
        };
    }
    let rows = select.fetch_all(pool).await.map_err(db_error)?;
    rows.into_iter()
        .map(|(doc, snippet)| Ok(SearchHit { item: decode_as(RecordKind::Item, &doc)?, snippet }))
        .collect()
}

pub async fn events(pool: &PgPool, ws: WorkspaceId, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
    let mut b = QueryBuilder::new(
        "SELECT seq, at, actor::text, item_id, data::text FROM events WHERE workspace_id = ",
    );
    b.push_bind(ws.0).push(" AND seq > ").push_bind(q.after);
    if let Some(item) = q.item {
        b.push(" AND item_id = ").push_bind(item.0);
    }
    b.push(" ORDER BY seq LIMIT ").push_bind(limit(q.limit));
    let rows = b
        .build_query_as::<(i64, DateTime<Utc>, String, Option<Uuid>, String)>()
        .fetch_all(pool)
        .await
        .map_err(db_error)?;
    rows.into_iter()
        .map(|(seq, at, actor, item, data)| {
            let bad = |e: serde_json::Error| StoreError::Corrupt(format!("event {seq}: {e}"));
            Ok(Event {
                workspace_id: ws,
                seq,
                at,
                actor: serde_json::from_str(&actor).map_err(bad)?,
                item: item.map(ItemId),
                data: serde_json::from_str(&data).map_err(bad)?,
            })
        })
        .collect()
}

pub async fn blob(pool: &PgPool, ws: WorkspaceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
    query_scalar("SELECT data FROM blobs WHERE workspace_id = $1 AND sha256 = $2")
        .bind(ws.0)
        .bind(sha256)
        .fetch_optional(pool)
        .await
        .map_err(db_error)
}

/// Secrets are unique per workspace only (see the schema); one that two workspaces hold
/// authenticates nobody rather than an arbitrary one of them.
pub async fn token_by_secret(pool: &PgPool, secret_sha256: &str) -> Result<Option<ApiToken>, StoreError> {
    let docs: Vec<String> = query_scalar("SELECT doc::text FROM api_tokens WHERE secret_sha256 = $1 LIMIT 2")
        .bind(secret_sha256)
        .fetch_all(pool)
        .await
        .map_err(db_error)?;
    match docs.as_slice() {
        [doc] => decode_as(RecordKind::Token, doc).map(Some),
        [] => Ok(None),
        _ => {
            tracing::warn!("an API token secret is held in more than one workspace; refusing it");
            Ok(None)
        }
    }
}

pub async fn mail_workspace(pool: &PgPool, address: &str) -> Result<Option<WorkspaceId>, StoreError> {
    query_scalar("SELECT workspace_id FROM mail_addresses WHERE address = $1")
        .bind(address)
        .fetch_optional(pool)
        .await
        .map(|id: Option<Uuid>| id.map(WorkspaceId))
        .map_err(db_error)
}

pub async fn inbound_mail_by_key(
    pool: &PgPool,
    ws: WorkspaceId,
    key: &str,
) -> Result<Option<tandem_core::InboundMail>, StoreError> {
    let doc: Option<String> =
        query_scalar("SELECT doc::text FROM inbound_mails WHERE workspace_id = $1 AND dedupe_key = $2")
            .bind(ws.0)
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    doc.map(|d| decode_as(RecordKind::InboundMail, &d)).transpose()
}

pub async fn items_by_message_ids(
    pool: &PgPool,
    ws: WorkspaceId,
    ids: &[String],
) -> Result<Vec<(String, ItemId)>, StoreError> {
    let ids: Vec<&String> = ids.iter().take(200).collect();
    let rows: Vec<(String, Uuid)> = query_as(
        "SELECT message_id, item_id FROM mail_thread_ids WHERE workspace_id = $1 AND message_id = ANY($2)",
    )
    .bind(ws.0)
    .bind(&ids)
    .fetch_all(pool)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(|(m, i)| (m, ItemId(i))).collect())
}

pub async fn outbound_mails(
    pool: &PgPool,
    ws: WorkspaceId,
    q: &tandem_core::store::OutboundQuery,
) -> Result<Vec<tandem_core::mail::OutboundMail>, StoreError> {
    let mut b = QueryBuilder::new("SELECT doc::text FROM outbound_mails WHERE workspace_id = ");
    b.push_bind(ws.0);
    if let Some(item) = q.item {
        b.push(" AND parent_id = ").push_bind(item.0);
    }
    if let Some(recipient) = &q.recipient {
        b.push(" AND recipient = ").push_bind(recipient.to_lowercase());
    }
    if let Some(status) = q.status {
        b.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(since) = q.since {
        b.push(" AND at_ms >= ").push_bind(since.timestamp_millis());
    }
    b.push(" ORDER BY at_ms DESC, id DESC LIMIT ").push_bind(limit(q.limit));
    docs(pool, &mut b).await?.iter().map(|d| decode_as(RecordKind::OutboundMail, d)).collect()
}

pub async fn server_setting(pool: &PgPool, key: &str) -> Result<Option<String>, StoreError> {
    query_scalar("SELECT value FROM server_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db_error)
}

pub async fn time_entries(
    pool: &PgPool,
    ws: WorkspaceId,
    q: &tandem_core::store::TimeEntryQuery,
) -> Result<Vec<tandem_core::TimeEntry>, StoreError> {
    let mut b = QueryBuilder::new("SELECT doc::text FROM time_entries WHERE workspace_id = ");
    b.push_bind(ws.0);
    if let Some(user) = q.user {
        b.push(" AND user_id = ").push_bind(user.0);
    }
    if let Some(items) = &q.items {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = items.iter().map(|i| i.0).collect();
        b.push(" AND parent_id = ANY(").push_bind(ids).push(")");
    }
    if !q.statuses.is_empty() {
        let statuses: Vec<&'static str> = q.statuses.iter().map(|s| s.as_str()).collect();
        b.push(" AND status = ANY(").push_bind(statuses).push(")");
    }
    if let Some(running) = q.running {
        b.push(" AND running = ").push_bind(running);
    }
    if let Some(from) = q.started_from {
        b.push(" AND started_ms >= ").push_bind(from.timestamp_millis());
    }
    if let Some(before) = q.started_before {
        b.push(" AND started_ms < ").push_bind(before.timestamp_millis());
    }
    b.push(" ORDER BY started_ms, id LIMIT ").push_bind(limit(q.limit));
    docs(pool, &mut b).await?.iter().map(|d| decode_as(RecordKind::TimeEntry, d)).collect()
}

#[cfg(test)]
mod tests {
    use super::tsquery;

    #[test]
    fn user_text_becomes_quoted_words_with_a_prefix_last() {
        for (text, expected) in [
            ("printer floor", Some("'printer' & 'floor':*")),
            ("disconn", Some("'disconn':*")),
            ("Zürich", Some("'Zürich':*")),
            ("floor\" OR \"x", Some("'floor' & 'OR' & 'x':*")),
            ("NEAR(a b)", Some("'NEAR' & 'a' & 'b':*")),
            ("title:x", Some("'title' & 'x':*")),
            ("it's", Some("'it' & 's':*")),
            ("a\\b", Some("'a' & 'b':*")),
            ("\"", None),
            ("*", None),
            ("-", None),
            ("🙂", None),
            ("   ", None),
            ("", None),
        ] {
            assert_eq!(tsquery(text).as_deref(), expected, "{text:?}");
        }
        assert_eq!(tsquery(&"x ".repeat(40)).map(|q| q.matches('x').count()), Some(16), "at most 16 words");
    }
}
