//! The knowledge base over the API: anyone reads (what they may read: `Desk` applies the
//! article's visibility to the caller, anonymous included); agents and above write.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tandem_core::commands::{
    ArticlePatch, CreateArticle, CreateKbCategory, DeleteArticle, DeleteKbCategory, KbCategoryPatch,
    UpdateArticle, UpdateKbCategory,
};
use tandem_core::kb::{KbArticle, KbCategory, KbHit};
use tandem_core::{Actor, WorkspaceId};

use super::{Param, created};
use crate::auth::{Auth, MaybeAuth};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;

/// The workspace a reader reads: their own; for an anonymous reader the one `?workspace=` names,
/// else the server's first.
async fn workspace_of(s: &AppState, actor: Option<&Actor>, q: &QueryPairs) -> ApiResult<WorkspaceId> {
    if let Some(a) = actor {
        return Ok(a.workspace_id);
    }
    match q.get("workspace") {
        Some(w) => w.parse().map_err(|_| ApiError::invalid("workspace", "must be a workspace id")),
        None => s.default_workspace().await,
    }
}

pub async fn list_categories(
    State(s): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<KbCategory>>> {
    q.only(&["workspace"])?;
    let ws = workspace_of(&s, actor.as_ref(), &q).await?;
    Ok(Json(s.desk().kb_categories(ws, actor.as_ref()).await?))
}

pub async fn create_category(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateKbCategory>,
) -> ApiResult<(StatusCode, Json<KbCategory>)> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn update_category(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<KbCategoryPatch>,
) -> ApiResult<Json<KbCategory>> {
    let category = id.id("knowledge base category")?;
    Ok(Json(s.desk().execute(&actor, &UpdateKbCategory { category, patch }).await?))
}

pub async fn delete_category(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteKbCategory { category: id.id("knowledge base category")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Articles, or search hits with `?q=`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ArticlesOut {
    Articles(Vec<KbArticle>),
    Hits(Vec<KbHit>),
}

pub async fn list_articles(
    State(s): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    q: QueryPairs,
) -> ApiResult<Json<ArticlesOut>> {
    q.only(&["workspace", "category", "q", "limit"])?;
    let ws = workspace_of(&s, actor.as_ref(), &q).await?;
    if let Some(text) = q.get("q") {
        let limit = match q.get("limit") {
            Some(l) => l.parse().map_err(|_| ApiError::invalid("limit", "must be a number"))?,
            None => 20,
        };
        return Ok(Json(ArticlesOut::Hits(s.desk().kb_search(ws, actor.as_ref(), text, limit).await?)));
    }
    let category = match q.get("category") {
        Some(c) => Some(c.parse().map_err(|_| ApiError::invalid("category", "must be a category id"))?),
        None => None,
    };
    Ok(Json(ArticlesOut::Articles(s.desk().kb_articles(ws, actor.as_ref(), category).await?)))
}

pub async fn get_article(
    State(s): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Json<KbArticle>> {
    q.only(&["workspace"])?;
    let ws = workspace_of(&s, actor.as_ref(), &q).await?;
    Ok(Json(s.desk().kb_article(ws, actor.as_ref(), id.id("article")?).await?))
}

pub async fn create_article(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<CreateArticle>,
) -> ApiResult<(StatusCode, Json<KbArticle>)> {
    Ok(created(s.desk().execute(&actor, &cmd).await?))
}

pub async fn update_article(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(patch): JsonBody<ArticlePatch>,
) -> ApiResult<Json<KbArticle>> {
    Ok(Json(s.desk().execute(&actor, &UpdateArticle { article: id.id("article")?, patch }).await?))
}

pub async fn publish_article(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<KbArticle>> {
    Ok(Json(s.desk().execute(&actor, &UpdateArticle::publish(id.id("article")?, true)).await?))
}

pub async fn unpublish_article(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<Json<KbArticle>> {
    Ok(Json(s.desk().execute(&actor, &UpdateArticle::publish(id.id("article")?, false)).await?))
}

pub async fn delete_article(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
) -> ApiResult<StatusCode> {
    s.desk().execute(&actor, &DeleteArticle { article: id.id("article")? }).await?;
    Ok(StatusCode::NO_CONTENT)
}
