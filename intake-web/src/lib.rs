//! `tandem-intake-web` — the web channel for requesters: server-rendered HTML that works without
//! JavaScript, mounted by the server as one router.
//!
//! - [`forms`]: a web form per item type, generated from its custom fields and validated by the
//!   same core validation as the API; surveys.
//! - [`portal`]: branding, sign-in, "my requests", the item page with the public conversation.
//! - [`page`]: the shared layout, CSRF tokens (the session's, or a guest's signed one) and error pages.
//! - [`kb`]: the knowledge base as requesters see it.
//! - [`widget`]: the `<script>` snippet, its panel and live chat.
//!
//! Every change goes through `Desk::execute` with the requester as the actor, so permissions are
//! the core's; nothing here touches storage directly.

use axum::Router;

pub mod forms;
pub mod kb;
pub mod page;
pub mod portal;
pub mod state;
pub mod widget;

pub use state::{
    NoSessions, NoSignIn, PortalSession, Sessions, SignInPort, SignInRefused, SignedIn, WebLimits, WebState,
};

/// The web channel's routes, to be merged into the server's router.
pub fn router(state: WebState) -> Router {
    let body_limit = state.body_limit();
    Router::new()
        .merge(forms::routes(body_limit))
        .merge(portal::routes(body_limit))
        .merge(kb::routes())
        .merge(widget::routes())
        .with_state(state)
}
