//! Server-sent events for a chat, for visitors and agents alike: the stream polls the stored
//! chat (every [`POLL`]) and sends what is new. Polling the store rather than an in-process
//! channel is what lets a message posted to one server of a cluster reach a browser connected
//! to another, and a restarted server carry on where it stopped: the chat's messages are records
//! and `seq` says which ones a client has.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tandem_core::DeskError;
use tandem_core::chat::{Chat, ChatMessage, ChatStatus};

/// How often a stream looks for new messages.
pub const POLL: Duration = Duration::from_millis(250);

struct Cursor<F> {
    fetch: F,
    seq: u32,
    status: Option<ChatStatus>,
    queue: VecDeque<Event>,
    first: bool,
    done: bool,
}

fn json_event(name: &str, value: &impl serde::Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

/// A stream of `message` events (a [`ChatMessage`] each, oldest first, after `after`) and `chat`
/// events (the [`Chat`] whenever its status changes); it ends after the chat has ended, or when
/// `fetch` fails (the chat is gone or the reader lost access).
pub fn chat_events<F, Fut>(after: u32, fetch: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: FnMut(u32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Chat, Vec<ChatMessage>), DeskError>> + Send,
{
    let start = Cursor { fetch, seq: after, status: None, queue: VecDeque::new(), first: true, done: false };
    let stream = futures::stream::unfold(start, |mut c| async move {
        loop {
            if let Some(event) = c.queue.pop_front() {
                return Some((Ok(event), c));
            }
            if c.done {
                return None;
            }
            if !c.first {
                tokio::time::sleep(POLL).await;
            }
            c.first = false;
            match (c.fetch)(c.seq).await {
                Ok((chat, messages)) => {
                    for m in &messages {
                        c.seq = c.seq.max(m.seq);
                        c.queue.push_back(json_event("message", m));
                    }
                    if c.status != Some(chat.status) {
                        c.status = Some(chat.status);
                        c.queue.push_back(json_event("chat", &chat));
                    }
                    c.done = chat.status == ChatStatus::Ended;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a chat stream ends");
                    c.done = true;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
