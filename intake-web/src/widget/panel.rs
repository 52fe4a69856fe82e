//! The widget's panel: the page inside the iframe. Server-rendered (knowledge base search works
//! without script); `panel.js` switches tabs and runs the messenger.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use tandem_core::kb::KbHit;

use crate::WebState;
use crate::kb::{page_response, workspace_named};

#[derive(Debug, Deserialize)]
pub(crate) struct PanelQuery {
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    tab: Option<String>,
    #[serde(default)]
    q: Option<String>,
    /// The host page's address, as the snippet reported it.
    #[serde(default)]
    page: Option<String>,
}

const PANEL_STYLE: &str = "
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2733;background:#fff;font-size:15px;line-height:1.45}
header{background:#1f4e79;color:#fff;padding:.7rem 1rem;font-weight:600}
nav[role=tablist]{display:flex;border-bottom:1px solid #dde2e8}
nav button{flex:1;background:none;border:0;border-bottom:3px solid transparent;padding:.6rem .3rem;font-size:.95rem;cursor:pointer;color:#1d2733}
nav button[aria-selected=true]{border-bottom-color:#1f4e79;font-weight:600}
section{padding:.8rem 1rem}
label{display:block;font-size:.85rem;margin:.5rem 0 .2rem;color:#4a5663}
input,textarea{width:100%;padding:.45rem;font-size:.95rem;border:1px solid #aab4bf;border-radius:4px;font-family:inherit}
button.primary{margin-top:.6rem;padding:.5rem .9rem;font-size:.95rem;border:0;border-radius:4px;background:#1f4e79;color:#fff;cursor:pointer}
button.quiet{background:none;border:0;color:#1f4e79;cursor:pointer;padding:.3rem 0;font-size:.85rem}
ul.hits{list-style:none;padding:0;margin:.5rem 0}
ul.hits li{padding:.45rem 0;border-bottom:1px solid #eef1f4}
.excerpt{margin:.15rem 0 0;color:#5f6b78;font-size:.85rem}
.muted{color:#5f6b78;font-size:.9rem}
.error{color:#a4262c;font-size:.9rem}
ol#chat-log{list-style:none;padding:0;margin:0 0 .5rem;max-height:300px;overflow-y:auto}
ol#chat-log li{margin:.3rem 0;padding:.4rem .6rem;border-radius:8px;background:#eef3f8;max-width:90%}
ol#chat-log li.visitor{background:#1f4e79;color:#fff;margin-left:auto}
ol#chat-log li.system{background:none;color:#5f6b78;font-size:.8rem;text-align:center;max-width:100%}
ol#chat-log .who{display:block;font-size:.75rem;opacity:.8}
form.inline{display:flex;gap:.4rem}
form.inline button{margin-top:0}
";

fn kb_tab(ws: &str, page: &str, q: &str, hits: &[KbHit], searched: bool) -> Markup {
    html! {
        form method="get" action="/widget/panel" role="search" {
            input type="hidden" name="workspace" value=(ws);
            input type="hidden" name="page" value=(page);
            input type="hidden" name="tab" value="kb";
            label for="kb-q" { "Search the help centre" }
            div.inline style="display:flex;gap:.4rem" {
                input #kb-q type="search" name="q" value=(q) maxlength="200" placeholder="e.g. pump";
                button.primary #kb-search type="submit" style="margin-top:0" { "Search" }
            }
        }
        @if searched && hits.is_empty() {
            p.muted #kb-none { "No articles match “" (q) "”." }
        }
        @if !hits.is_empty() {
            ul.hits #kb-results {
                @for h in hits {
                    li {
                        a href={ "/kb/articles/" (h.article.id) "?workspace=" (ws) } target="_blank" rel="noopener" { (h.article.title) }
                        p.excerpt { (h.excerpt) }
                    }
                }
            }
        }
        p { a href={ "/kb?workspace=" (ws) } target="_blank" rel="noopener" { "Browse all articles" } }
    }
}

pub(crate) async fn panel(
    State(s): State<WebState>,
    Query(q): Query<PanelQuery>,
    headers: HeaderMap,
) -> Response {
    let actor = s.sessions.actor(&headers).await;
    let ws = match workspace_named(&s, q.workspace.as_deref(), actor.as_ref()).await {
        Ok(ws) => ws,
        Err(e) => {
            return page_response(
                StatusCode::NOT_FOUND,
                html! { p { "This widget is not set up: " (e.to_string()) } },
            );
        }
    };
    let actor = actor.filter(|a| a.workspace_id == ws.id);
    let text = q.q.clone().unwrap_or_default();
    let searched = !text.trim().is_empty();
    let hits = if searched {
        match s.desk.kb_search(ws.id, actor.as_ref(), &text, 10).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "widget search failed");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let tab = match q.tab.as_deref() {
        Some("kb") => "kb",
        Some("forms") => "forms",
        _ if searched => "kb",
        _ => "chat",
    };
    let ws_id = ws.id.to_string();
    // The forms the portal offers (public fields only); none when the workspace has none.
    let forms: Vec<(String, String)> = match s.desk.portal_face(ws.id).await {
        Ok(face) => face
            .forms
            .into_iter()
            .map(|(t, form)| (format!("/forms/{}/{}", ws.id, t.id), form.title.unwrap_or(t.name)))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "widget forms failed");
            Vec::new()
        }
    };
    let signed_in = actor.as_ref().and_then(|a| match &a.kind {
        tandem_core::ActorKind::User(u) => Some(u.name.clone()),
        _ => None,
    });
    let page = q.page.unwrap_or_default();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (ws.name) " · Help" }
                style { (PreEscaped(PANEL_STYLE)) }
                script src="/widget/panel.js" defer {}
            }
            body data-workspace=(ws_id) data-tab=(tab) data-page=(page) data-signed-in=[signed_in.as_deref()] {
                header { (ws.name) }
                nav role="tablist" aria-label="Help" {
                    button #tab-button-chat role="tab" type="button" data-tab="chat" aria-controls="tab-chat" aria-selected=(tab == "chat") { "Messages" }
                    button #tab-button-kb role="tab" type="button" data-tab="kb" aria-controls="tab-kb" aria-selected=(tab == "kb") { "Help centre" }
                    button #tab-button-forms role="tab" type="button" data-tab="forms" aria-controls="tab-forms" aria-selected=(tab == "forms") { "Requests" }
                }
                section #tab-chat role="tabpanel" aria-labelledby="tab-button-chat" {
                    div #chat-start {
                        p.muted { "Chat with our team. We usually answer within minutes." }
                        form #chat-start-form {
                            @if let Some(name) = &signed_in {
                                p.muted { "Signed in as " strong { (name) } }
                            } @else {
                                label for="chat-name" { "Your name" }
                                input #chat-name name="name" autocomplete="name" required maxlength="100";
                                label for="chat-email" { "Your email address" }
                                input #chat-email name="email" type="email" autocomplete="email" required maxlength="200";
                            }
                            label for="chat-first" { "How can we help?" }
                            textarea #chat-first name="text" rows="3" maxlength="4000" {}
                            button.primary #chat-start-button type="submit" { "Start chat" }
                        }
                        noscript { p.muted { "The messenger needs JavaScript; the help centre and request forms work without it." } }
                    }
                    div #chat-live hidden {
                        ol #chat-log aria-live="polite" {}
                        form.inline #chat-send-form {
                            label for="chat-text" style="position:absolute;left:-9999px" { "Message" }
                            input #chat-text name="text" autocomplete="off" maxlength="4000" placeholder="Write a message";
                            button.primary #chat-send type="submit" { "Send" }
                        }
                        button.quiet #chat-end type="button" { "End chat" }
                        p.muted #chat-ended hidden { "This chat has ended. We have kept the conversation as a ticket." }
                    }
                    p.error #chat-error role="alert" {}
                }
                section #tab-kb role="tabpanel" aria-labelledby="tab-button-kb" {
                    (kb_tab(&ws_id, &page, &text, &hits, searched))
                }
                section #tab-forms role="tabpanel" aria-labelledby="tab-button-forms" {
                    p { "Send us a request with the form that fits, and follow it in the portal." }
                    @if !forms.is_empty() {
                        ul #forms-list {
                            @for (href, title) in &forms {
                                li { a href=(href) target="_blank" rel="noopener" { (title) } }
                            }
                        }
                    }
                    p { a #forms-link href={ "/portal/" (ws_id) } target="_blank" rel="noopener" { "Open the request portal" } }
                }
            }
        }
    };
    page_response(StatusCode::OK, markup)
}
