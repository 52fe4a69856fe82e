//! Items: list with filters and keyset pagination, create, read, update, transition, assign,
//! follow, convert, link, search, and the kind-specific `/tickets/{n}` and `/tasks/{n}` URLs
//! that keep resolving after a conversion.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tandem_core::commands::{
    ChangeFollowers, ConvertItem, CreateItem, ItemPatch, LinkItems, SetAssignees, TransitionItem,
    TransitionTo, UnlinkItems, UpdateItem,
};
use tandem_core::store::Cursor;
use tandem_core::{
    Assignee, Item, ItemFilter, ItemKind, ItemLink, ItemQuery, ItemRef, ItemScope, ItemTypeId, LinkKind,
    Priority, SortKey, StatusCategory, UserId,
};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, OptionalJson, QueryPairs};
use crate::state::AppState;

const LIST_PARAMS: &[&str] = &[
    "type",
    "kind",
    "project",
    "folder",
    "parent",
    "status",
    "category",
    "priority",
    "assignee",
    "requester",
    "follower",
    "created_after",
    "created_before",
    "updated_after",
    "sort",
    "order",
    "limit",
    "cursor",
];

fn uuid<T: From<uuid::Uuid>>(s: &str) -> Option<T> {
    uuid::Uuid::parse_str(s).ok().map(T::from)
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn kind(s: &str) -> Option<ItemKind> {
    match s {
        "ticket" => Some(ItemKind::Ticket),
        "task" => Some(ItemKind::Task),
        _ => None,
    }
}

fn assignee(s: &str) -> Option<Assignee> {
    let (kind, id) = s.split_once(':')?;
    match kind {
        "user" => uuid(id).map(Assignee::User),
        "team" => uuid(id).map(Assignee::Team),
        _ => None,
    }
}

fn sort_key(s: &str) -> Option<SortKey> {
    match s {
        "number" => Some(SortKey::Number),
        "created_at" => Some(SortKey::CreatedAt),
        "updated_at" => Some(SortKey::UpdatedAt),
        "priority" => Some(SortKey::Priority),
        _ => None,
    }
}

pub fn encode_cursor(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(json!({"value": c.value, "number": c.number}).to_string())
}

pub fn decode_cursor(s: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The item list's query string → an `ItemQuery` (the scope is set by `Desk`).
fn item_query(q: &QueryPairs) -> ApiResult<ItemQuery> {
    q.only(LIST_PARAMS)?;
    let filter = ItemFilter {
        item_types: q.list("type", uuid::<ItemTypeId>, "an item type id")?,
        kind: q.parse("kind", kind, "ticket or task")?,
        project: q.parse("project", uuid, "a project id")?,
        folder: q.parse("folder", uuid, "a folder id")?,
        parent: q.parse("parent", uuid, "an item id")?,
        statuses: q.list("status", |s| Some(s.to_string()), "a status key")?,
        categories: q.list("category", StatusCategory::parse, "a status category")?,
        priorities: q.list("priority", Priority::parse, "low, normal, high or urgent")?,
        assignee: q.parse("assignee", assignee, "user:<id> or team:<id>")?,
        requester: q.parse("requester", uuid::<UserId>, "a user id")?,
        follower: q.parse("follower", uuid::<UserId>, "a user id")?,
        created_after: q.parse("created_after", time, "an RFC 3339 time")?,
        created_before: q.parse("created_before", time, "an RFC 3339 time")?,
        updated_after: q.parse("updated_after", time, "an RFC 3339 time")?,
    };
    let mut query = ItemQuery::new(ItemScope::All);
    query.filter = filter;
    query.sort = q.parse("sort", sort_key, "number, created_at, updated_at or priority")?.unwrap_or_default();
    query.descending = q
        .parse(
            "order",
            |s| match s {
                "asc" => Some(false),
                "desc" => Some(true),
                _ => None,
            },
            "asc or desc",
        )?
        .unwrap_or(false);
    query.limit = q.limit(50, 500)?;
    query.after = q.parse("cursor", decode_cursor, "a cursor from a previous page")?;
    Ok(query)
}

#[derive(Debug, Serialize)]
pub struct ItemPage {
    items: Vec<Item>,
    next_cursor: Option<String>,
}

pub async fn list_items(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<ItemPage>> {
    let page = s.desk().items(&actor, item_query(&q)?).await?;
    Ok(Json(ItemPage { items: page.items, next_cursor: page.next.as_ref().map(encode_cursor) }))
}

pub async fn create_item(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateItem>,
) -> ApiResult<(StatusCode, Json<Item>)> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn get_item(State(s): State<AppState>, Auth(actor): Auth, item: Param) -> ApiResult<Json<Item>> {
    Ok(Json(s.desk().item(&actor, item.item()?).await?))
}

pub async fn update_item(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(patch): JsonBody<ItemPatch>,
) -> ApiResult<Json<Item>> {
    let item = item.item()?;
    Ok(Json(s.desk().execute(&actor, &UpdateItem { item, patch }).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    status: String,
    #[serde(default)]
    version: Option<i64>,
}

pub async fn transition_item(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(body): JsonBody<TransitionBody>,
) -> ApiResult<Json<Item>> {
    let item = item.item()?;
    let cmd = TransitionItem { item, to: TransitionTo::Status(body.status), version: body.version };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    #[serde(default)]
    version: Option<i64>,
}

pub async fn close_item(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    OptionalJson(body): OptionalJson<VersionBody>,
) -> ApiResult<Json<Item>> {
    let item = item.item()?;
    let cmd = TransitionItem { item, to: TransitionTo::Close, version: body.version };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssigneesBody {
    assignees: Vec<Assignee>,
    #[serde(default)]
    version: Option<i64>,
}

pub async fn set_assignees(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(body): JsonBody<AssigneesBody>,
) -> ApiResult<Json<Item>> {
    let item = item.item()?;
    let cmd = SetAssignees { item, assignees: body.assignees, version: body.version };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowersBody {
    #[serde(default)]
    add: Vec<UserId>,
    #[serde(default)]
    remove: Vec<UserId>,
}

pub async fn change_followers(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(body): JsonBody<FollowersBody>,
) -> ApiResult<Json<Item>> {
    let item = item.item()?;
    let cmd = ChangeFollowers { item, add: body.add, remove: body.remove };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertBody {
    item_type: ItemTypeId,
    #[serde(default)]
    custom: BTreeMap<String, Value>,
    #[serde(default)]
    version: Option<i64>,
}

pub async fn convert_item(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(body): JsonBody<ConvertBody>,
) -> ApiResult<Json<Item>> {
    let item = item.item()?;
    let cmd = ConvertItem { item, to_type: body.item_type, custom: body.custom, version: body.version };
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

/// An item named in a body: its number (`1042`, `"#1042"`) or its id.
#[derive(Debug, Clone, Copy)]
pub struct RefInput(pub(crate) ItemRef);

impl<'de> Deserialize<'de> for RefInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RefInput;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an item number or item id")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<RefInput, E> {
                i64::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| RefInput(ItemRef::Number(n)))
                    .ok_or_else(|| E::custom("item numbers start at 1"))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<RefInput, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom("item numbers start at 1"))
                    .and_then(|n| self.visit_u64(n))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RefInput, E> {
                s.parse::<ItemRef>().map(RefInput).map_err(|e| E::custom(e.reason))
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn relates() -> LinkKind {
    LinkKind::Relates
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    to: RefInput,
    #[serde(default = "relates")]
    kind: LinkKind,
    /// For `blocks` links: `{"type": "finish_to_start", "lag": {"unit": "working", "value": 60}}`.
    #[serde(default)]
    dependency: Option<tandem_core::DependencyTiming>,
}

pub async fn list_links(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
) -> ApiResult<Json<Vec<ItemLink>>> {
    Ok(Json(s.desk().links(&actor, item.item()?).await?))
}

pub async fn link_items(
    State(s): State<AppState>,
    Auth(actor): Auth,
    item: Param,
    JsonBody(body): JsonBody<LinkBody>,
) -> ApiResult<(StatusCode, Json<ItemLink>)> {
    let item = item.item()?;
    let cmd = LinkItems { from: item, to: body.to.0, kind: body.kind, dependency: body.dependency };
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn unlink(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &UnlinkItems { link: id.id("link")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/tickets/{n}` and `/tasks/{n}`: the item when its kind matches, otherwise a permanent
/// redirect to the other kind's URL, so links to a ticket keep working after it became a task.
async fn by_kind(
    s: &AppState,
    actor: &tandem_core::Actor,
    number: &Param,
    wanted: ItemKind,
) -> ApiResult<Response> {
    let n = number
        .0
        .trim()
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found(format!("{} '{}'", wanted.as_str(), number.0)))?;
    let item = s.desk().item(actor, ItemRef::Number(n)).await?;
    if item.kind == wanted {
        return Ok(Json(item).into_response());
    }
    Ok(Redirect::permanent(&format!("/api/v1/{}s/{n}", item.kind.as_str())).into_response())
}

pub async fn get_ticket(State(s): State<AppState>, Auth(actor): Auth, number: Param) -> ApiResult<Response> {
    by_kind(&s, &actor, &number, ItemKind::Ticket).await
}

pub async fn get_task(State(s): State<AppState>, Auth(actor): Auth, number: Param) -> ApiResult<Response> {
    by_kind(&s, &actor, &number, ItemKind::Task).await
}

#[derive(Debug, Serialize)]
pub struct Hit {
    item: Item,
    snippet: String,
}

pub async fn search(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<Hit>>> {
    q.only(&["q", "limit"])?;
    let text = q.get("q").unwrap_or("");
    let limit = q.limit(20, 200)?;
    let hits = s.desk().search(&actor, text, limit).await?;
    Ok(Json(hits.into_iter().map(|h| Hit { item: h.item, snippet: h.snippet }).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ApiResult<ItemQuery> {
        item_query(&QueryPairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    #[test]
    fn list_filters_parse() {
        let user = uuid::Uuid::from_u128(7);
        let q = query(&[
            ("status", "triage,execution"),
            ("kind", "task"),
            ("assignee", &format!("user:{user}")),
            ("priority", "high,urgent"),
            ("sort", "updated_at"),
            ("order", "desc"),
            ("limit", "10"),
            ("created_after", "2026-01-01T00:00:00Z"),
        ])
        .unwrap();
        assert_eq!(q.filter.statuses, ["triage", "execution"]);
        assert_eq!(q.filter.kind, Some(ItemKind::Task));
        assert_eq!(q.filter.assignee, Some(Assignee::User(UserId(user))));
        assert_eq!(q.filter.priorities, [Priority::High, Priority::Urgent]);
        assert_eq!((q.sort, q.descending, q.limit), (SortKey::UpdatedAt, true, 10));
        assert!(q.filter.created_after.is_some());
    }

    #[test]
    fn bad_filters_name_the_parameter() {
        for (key, value) in [
            ("kind", "bug"),
            ("assignee", "robot:1"),
            ("status", ""),
            ("created_after", "yesterday"),
            ("sort", "title"),
            ("limit", "0"),
            ("cursor", "not-a-cursor"),
            ("colour", "red"),
        ] {
            match query(&[(key, value)]) {
                Ok(_) if value.is_empty() => {}
                Ok(q) => panic!("{key}={value} was accepted: {q:?}"),
                Err(e) => assert_eq!(e.field.as_deref(), Some(key), "{key}={value}: {e}"),
            }
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { value: 1_767_225_600_000, number: 42 };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("!!"), None);
    }

    #[test]
    fn link_targets_accept_numbers_and_ids() {
        let id = uuid::Uuid::from_u128(9);
        for (json, expected) in [
            ("12", Some(ItemRef::Number(12))),
            ("\"#12\"", Some(ItemRef::Number(12))),
            (&format!("\"{id}\"") as &str, Some(ItemRef::Id(tandem_core::ItemId(id)))),
            ("0", None),
            ("-3", None),
            ("\"abc\"", None),
        ] {
            let parsed = serde_json::from_str::<RefInput>(json).ok().map(|r| r.0);
            assert_eq!(parsed, expected, "{json}");
        }
    }
}
