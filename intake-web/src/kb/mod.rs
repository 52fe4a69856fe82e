//! The knowledge base as requesters see it: `/kb` (categories and articles), `/kb/search?q=`
//! and `/kb/articles/{id}`. Server-rendered, no script; the reader is whoever the session cookie
//! says (anonymous otherwise) and `Desk` shows them only what they may read. Article bodies are
//! sanitised when written; everything else is escaped by `maud`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use tandem_core::kb::{KbArticle, KbCategory};
use tandem_core::store;
use tandem_core::{Actor, DeskError, KbArticleId, Workspace, WorkspaceId};

use crate::WebState;

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/kb", get(home))
        .route("/kb/search", get(search_page))
        .route("/kb/articles/{id}", get(article_page))
}

/// The workspace a page is for: the one `named` (a workspace id), else the signed-in reader's,
/// else the server's oldest.
pub(crate) async fn workspace_named(
    s: &WebState,
    named: Option<&str>,
    reader: Option<&Actor>,
) -> Result<Workspace, DeskError> {
    let store = s.desk.store().as_ref();
    let id = match named.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.parse::<WorkspaceId>().map_err(|_| DeskError::not_found(format!("workspace '{n}'")))?,
        None => match reader {
            Some(a) => a.workspace_id,
            None => {
                let all = store.workspaces().await?;
                return all
                    .into_iter()
                    .min_by_key(|w| (w.created_at, w.id))
                    .ok_or_else(|| DeskError::not_found("workspace"));
            }
        },
    };
    store::get::<Workspace>(store, id, id.0)
        .await?
        .ok_or_else(|| DeskError::not_found(format!("workspace {id}")))
}

/// Headers every page carries: no script runs but our own files, nothing is sniffed.
pub(crate) fn page_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        ],
        markup.into_string(),
    )
        .into_response()
}

pub(crate) const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;background:#f7f8fa;line-height:1.5}
main{max-width:46rem;margin:0 auto;padding:1rem 1.25rem 3rem}
header.site{background:#1f4e79;color:#fff;padding:.75rem 1.25rem}
header.site a{color:#fff;text-decoration:none;font-weight:600}
a{color:#1f4e79}
form.search{display:flex;gap:.5rem;margin:1rem 0}
form.search input{flex:1;padding:.5rem;font-size:1rem;border:1px solid #aab4bf;border-radius:4px}
button{padding:.5rem .9rem;font-size:1rem;border:0;border-radius:4px;background:#1f4e79;color:#fff;cursor:pointer}
ul.articles{list-style:none;padding:0}
ul.articles li{background:#fff;border:1px solid #e1e5ea;border-radius:6px;padding:.6rem .8rem;margin:.4rem 0}
.excerpt{color:#4a5663;margin:.2rem 0 0;font-size:.92rem}
.muted{color:#5f6b78}
article.body{background:#fff;border:1px solid #e1e5ea;border-radius:6px;padding:1rem 1.25rem}
";

pub(crate) fn layout(workspace: &Workspace, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (workspace.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header.site { a href={ "/kb?workspace=" (workspace.id) } { (workspace.name) " · Help centre" } }
                main { (body) }
            }
        }
    }
}

fn error_page(e: DeskError) -> Response {
    let (status, message) = match e {
        DeskError::NotFound(_) => {
            (StatusCode::NOT_FOUND, "This page does not exist, or you may not see it.".to_string())
        }
        DeskError::Invalid(i) => (StatusCode::BAD_REQUEST, format!("{}: {}", i.field, i.reason)),
        DeskError::Forbidden(_) => (StatusCode::FORBIDDEN, "You may not see this page.".into()),
        DeskError::Store(e) => {
            tracing::error!(error = %e, "a knowledge base page cannot reach storage");
            (StatusCode::SERVICE_UNAVAILABLE, "The help centre is unavailable; try again shortly.".into())
        }
        other => (StatusCode::BAD_REQUEST, other.to_string()),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { "Help centre" } style { (PreEscaped(STYLE)) } }
            body { main { h1 { "Sorry" } p { (message) } } } }
    };
    page_response(status, markup)
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

fn search_form(ws: WorkspaceId, q: &str) -> Markup {
    html! {
        form.search method="get" action="/kb/search" role="search" {
            input type="hidden" name="workspace" value=(ws);
            label for="kb-q" style="position:absolute;left:-9999px" { "Search the help centre" }
            input #kb-q type="search" name="q" value=(q) placeholder="Search articles" maxlength="200";
            button type="submit" { "Search" }
        }
    }
}

fn article_link(ws: WorkspaceId, a: &KbArticle) -> Markup {
    html! { a href={ "/kb/articles/" (a.id) "?workspace=" (ws) } { (a.title) } }
}

async fn reader(s: &WebState, headers: &HeaderMap) -> Option<Actor> {
    s.sessions.actor(headers).await
}

async fn home(State(s): State<WebState>, Query(q): Query<PageQuery>, headers: HeaderMap) -> Response {
    let actor = reader(&s, &headers).await;
    let run = async {
        let ws = workspace_named(&s, q.workspace.as_deref(), actor.as_ref()).await?;
        let categories: Vec<KbCategory> = s.desk.kb_categories(ws.id, actor.as_ref()).await?;
        let articles = s.desk.kb_articles(ws.id, actor.as_ref(), None).await?;
        let loose: Vec<&KbArticle> = articles.iter().filter(|a| a.category.is_none()).collect();
        Ok::<_, DeskError>(layout(
            &ws,
            "Help centre",
            html! {
                h1 { "How can we help?" }
                (search_form(ws.id, ""))
                @if articles.is_empty() { p.muted { "No articles yet." } }
                @for c in &categories {
                    section {
                        h2 { (c.name) }
                        @if !c.description.is_empty() { p.muted { (c.description) } }
                        ul.articles {
                            @for a in articles.iter().filter(|a| a.category == Some(c.id)) {
                                li { (article_link(ws.id, a)) }
                            }
                        }
                    }
                }
                @if !loose.is_empty() {
                    section { h2 { "More articles" } ul.articles { @for a in loose { li { (article_link(ws.id, a)) } } } }
                }
            },
        ))
    };
    match run.await {
        Ok(m) => page_response(StatusCode::OK, m),
        Err(e) => error_page(e),
    }
}

async fn search_page(State(s): State<WebState>, Query(q): Query<PageQuery>, headers: HeaderMap) -> Response {
    let actor = reader(&s, &headers).await;
    let text = q.q.clone().unwrap_or_default();
    let run = async {
        let ws = workspace_named(&s, q.workspace.as_deref(), actor.as_ref()).await?;
        let hits = s.desk.kb_search(ws.id, actor.as_ref(), &text, 20).await?;
        Ok::<_, DeskError>(layout(
            &ws,
            "Search",
            html! {
                h1 { "Search" }
                (search_form(ws.id, &text))
                @if text.trim().is_empty() {
                    p.muted { "Type what you are looking for." }
                } @else if hits.is_empty() {
                    p.muted #kb-none { "No articles match “" (text) "”." }
                } @else {
                    ul.articles #kb-results {
                        @for h in &hits {
                            li { (article_link(ws.id, &h.article)) p.excerpt { (h.excerpt) } }
                        }
                    }
                }
            },
        ))
    };
    match run.await {
        Ok(m) => page_response(StatusCode::OK, m),
        Err(e) => error_page(e),
    }
}

async fn article_page(
    State(s): State<WebState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let actor = reader(&s, &headers).await;
    let run = async {
        let ws = workspace_named(&s, q.workspace.as_deref(), actor.as_ref()).await?;
        let id: KbArticleId = id.parse().map_err(|_| DeskError::not_found(format!("article '{id}'")))?;
        let a = s.desk.kb_article(ws.id, actor.as_ref(), id).await?;
        Ok::<_, DeskError>(layout(
            &ws,
            &a.title,
            html! {
                p { a href={ "/kb?workspace=" (ws.id) } { "← All articles" } }
                article.body {
                    h1 { (a.title) }
                    // Sanitised when it was written (ammonia): safe to render as is.
                    (PreEscaped(&a.html))
                    p.muted { "Updated " (a.updated_at.format("%Y-%m-%d")) }
                }
            },
        ))
    };
    match run.await {
        Ok(m) => page_response(StatusCode::OK, m),
        Err(e) => error_page(e),
    }
}
