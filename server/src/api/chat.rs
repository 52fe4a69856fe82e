//! Live chat for agents: the chats waiting and running, taking one, answering, a live stream of
//! a chat (server-sent events), ending (the chat becomes a ticket); a signed-in requester's own
//! chats; the widget snippet for administrators. Visitors chat through `tandem-intake-web`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tandem_core::chat::{Chat, ChatMessage, ChatStatus};
use tandem_core::commands::{ChatParty, EndChat, PostChatMessage, TakeChat};
use tandem_core::{ChatId, ItemTypeId};
use tandem_intake_web::widget::{live, snippet};

use super::{Param, created};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, OptionalJson, QueryPairs};
use crate::state::AppState;

pub async fn list_chats(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<Chat>>> {
    q.only(&["status"])?;
    let status = match q.get("status") {
        Some(v) => Some(
            serde_json::from_value::<ChatStatus>(serde_json::Value::String(v.into()))
                .map_err(|_| ApiError::invalid("status", "must be waiting, active or ended"))?,
        ),
        None => None,
    };
    Ok(Json(s.desk().chats(&actor, status).await?))
}

#[derive(Debug, Serialize)]
pub struct ChatOut {
    chat: Chat,
    messages: Vec<ChatMessage>,
}

fn after(q: &QueryPairs) -> ApiResult<u32> {
    q.only(&["after"])?;
    match q.get("after") {
        Some(a) => a.parse().map_err(|_| ApiError::invalid("after", "must be a message number")),
        None => Ok(0),
    }
}

pub async fn get_chat(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Json<ChatOut>> {
    let (chat, messages) = s.desk().chat(&actor, id.id::<ChatId>("chat")?, after(&q)?).await?;
    Ok(Json(ChatOut { chat, messages }))
}

pub async fn take_chat(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Chat>> {
    Ok(Json(s.desk().execute(&actor, &TakeChat { chat: id.id("chat")? }).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    text: String,
}

pub async fn post_chat_message(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    JsonBody(reply): JsonBody<Reply>,
) -> ApiResult<(StatusCode, Json<ChatMessage>)> {
    let command = PostChatMessage { chat: id.id("chat")?, from: ChatParty::Agent, text: reply.text };
    Ok(created(s.desk().execute(&actor, &command).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    #[serde(default)]
    item_type: Option<ItemTypeId>,
}

pub async fn end_chat(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    OptionalJson(end): OptionalJson<End>,
) -> ApiResult<Json<Chat>> {
    let command = EndChat { chat: id.id("chat")?, by: ChatParty::Agent, item_type: end.item_type };
    Ok(Json(s.desk().execute(&actor, &command).await?))
}

/// The chat as server-sent events: `message` (each new [`ChatMessage`]) and `chat` (the chat
/// when its status changes); ends when the chat ends.
pub async fn chat_stream(
    State(s): State<AppState>,
    Auth(actor): Auth,
    id: Param,
    q: QueryPairs,
) -> ApiResult<Response> {
    let id: ChatId = id.id("chat")?;
    let from = after(&q)?;
    // Access is checked before the stream starts, so a refusal is an ordinary error response.
    s.desk().chat(&actor, id, u32::MAX).await?;
    let desk = s.desk().clone();
    Ok(live::chat_events(from, move |seq| {
        let desk = desk.clone();
        let actor = actor.clone();
        async move { desk.chat(&actor, id, seq).await }
    })
    .into_response())
}

pub async fn my_chats(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<Vec<Chat>>> {
    Ok(Json(s.desk().my_chats(&actor).await?))
}

pub async fn my_chat(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<ChatOut>> {
    let (chat, messages) = s.desk().my_chat(&actor, id.id("chat")?).await?;
    Ok(Json(ChatOut { chat, messages }))
}

#[derive(Debug, Serialize)]
pub struct Snippet {
    snippet: String,
    script_url: String,
    workspace: tandem_core::WorkspaceId,
}

/// The `<script>` to paste: under `--public-url` when set, else the address this request came to.
pub async fn widget_snippet(
    State(s): State<AppState>,
    Auth(actor): Auth,
    headers: HeaderMap,
) -> ApiResult<Json<Snippet>> {
    let ws = s.desk().widget_workspace(&actor).await?;
    let base = match &s.sign_in().public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
                })
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    Ok(Json(Snippet {
        snippet: snippet(&base, ws.id),
        script_url: format!("{base}/widget.js"),
        workspace: ws.id,
    }))
}
