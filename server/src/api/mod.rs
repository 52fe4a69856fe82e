//! The REST JSON API under `/api/v1`. A token acts in its own workspace, so paths carry no
//! workspace segment. Handlers are thin: parse → command → `Desk::execute` (or a `Desk` query)
//! → respond; access rules live in `Desk`, never here.

mod access;
mod conversation;
mod items;
mod mail;
mod ops;
mod people;
mod planning;
mod structure;
mod time;
mod views;
mod webhooks;

pub use people::new_secret;

use std::any::Any;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use tandem_core::ItemRef;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::state::AppState;

/// The one path parameter of a route, as written (uuids and item refs are parsed by the
/// handler so that a malformed one is a 404 in the API's error shape).
#[derive(Debug, Clone)]
pub(crate) struct Param(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Param {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Param(p))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

impl Param {
    pub(crate) fn id<T: From<uuid::Uuid>>(&self, what: &str) -> Result<T, ApiError> {
        crate::extract::path_id(&self.0, what)
    }

    /// An item by number (`1042`, or `#1042` URL-encoded) or id.
    pub(crate) fn item(&self) -> Result<ItemRef, ApiError> {
        self.0.parse::<ItemRef>().map_err(|_| ApiError::not_found(format!("item '{}'", self.0)))
    }
}

pub(crate) fn created<T: serde::Serialize>(value: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(value))
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    // A bug, not the client's fault; the tracing layer has logged the request.
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong on the server; it has been logged",
    )
    .into_response()
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit();
    let api = Router::new()
        .route("/health", get(ops::health))
        // Workspaces
        .route("/workspaces", get(structure::list_workspaces).post(structure::create_workspace))
        .route("/workspace", get(structure::get_workspace).patch(structure::rename_workspace))
        // Portfolios, projects, folders
        .route("/portfolios", get(structure::list_portfolios).post(structure::create_portfolio))
        .route(
            "/portfolios/{id}",
            get(structure::get_portfolio)
                .patch(structure::update_portfolio)
                .delete(structure::delete_portfolio),
        )
        .route("/projects", get(structure::list_projects).post(structure::create_project))
        .route("/projects/{id}", get(structure::get_project).patch(structure::update_project))
        .route("/projects/{id}/folders", get(structure::list_folders))
        .route("/projects/{id}/schedule", get(planning::project_schedule))
        .route("/projects/{id}/gantt.svg", get(planning::project_gantt))
        .route("/calendars", get(planning::list_calendars))
        .route(
            "/calendars/workspace",
            get(planning::get_workspace_calendar).put(planning::put_workspace_calendar),
        )
        .route("/users/{id}/calendar", get(planning::get_user_calendar).put(planning::put_user_calendar))
        .route("/folders", post(structure::create_folder))
        .route("/folders/{id}", patch(structure::update_folder).delete(structure::delete_folder))
        // Item types, workflows, custom fields
        .route("/item-types", get(structure::list_item_types).post(structure::create_item_type))
        .route("/item-types/{id}", get(structure::get_item_type).patch(structure::update_item_type))
        .route("/item-types/{id}/workflow", post(structure::edit_workflow))
        .route("/item-types/{id}/fields", post(structure::edit_fields))
        // People
        .route("/users", get(people::list_users).post(people::create_user))
        .route("/users/{id}", get(people::get_user).patch(people::update_user))
        .route("/users/{id}/tokens", post(people::issue_token))
        .route("/tokens/{id}", delete(people::revoke_token))
        .route("/teams", get(people::list_teams).post(people::create_team))
        .route("/teams/{id}", patch(people::update_team))
        // Organizations, project members and grants, join requests, portal visibility
        .route("/organizations", get(access::list_organizations).post(access::create_organization))
        .route(
            "/organizations/{id}",
            get(access::get_organization)
                .patch(access::update_organization)
                .delete(access::delete_organization),
        )
        .route("/organizations/{id}/members", get(access::organization_members))
        .route("/projects/{id}/members", get(access::project_members))
        .route(
            "/projects/{id}/members/{user}",
            axum::routing::put(access::set_project_member).delete(access::remove_project_member),
        )
        .route("/projects/{id}/join-requests", get(access::list_join_requests).post(access::request_to_join))
        .route("/join-requests/{id}/approve", post(access::approve_join_request))
        .route("/join-requests/{id}/deny", post(access::deny_join_request))
        .route("/portal", get(access::get_portal).patch(access::configure_portal))
        .route("/notifications", get(people::list_notifications))
        .route("/notifications/{id}/read", post(people::read_notification))
        // Items
        .route("/items", get(items::list_items).post(items::create_item))
        .route("/items/{item}", get(items::get_item).patch(items::update_item))
        .route("/items/{item}/transition", post(items::transition_item))
        .route("/items/{item}/close", post(items::close_item))
        .route("/items/{item}/assignees", axum::routing::put(items::set_assignees))
        .route("/items/{item}/followers", post(items::change_followers))
        .route("/items/{item}/convert", post(items::convert_item))
        .route("/items/{item}/links", get(items::list_links).post(items::link_items))
        .route("/links/{id}", delete(items::unlink))
        .route("/tickets/{number}", get(items::get_ticket))
        .route("/tasks/{number}", get(items::get_task))
        .route("/search", get(items::search))
        // Saved views
        .route("/views", get(views::list_views).post(views::create_view))
        .route("/views/{id}", get(views::get_view).patch(views::update_view).delete(views::delete_view))
        .route("/views/{id}/run", get(views::run_view))
        .route("/views/{id}/gantt.svg", get(views::view_gantt))
        .route("/views/{id}/board/move", post(views::move_card))
        // Time tracking
        .route("/items/{item}/time", get(time::item_time).post(time::log_time))
        .route("/items/{item}/timer", post(time::start_timer))
        .route("/timer", get(time::current_timer))
        .route("/timer/pause", post(time::pause_timer))
        .route("/timer/resume", post(time::resume_timer))
        .route("/timer/stop", post(time::stop_timer))
        .route("/time-entries", get(time::list_entries))
        .route("/time-entries/submit", post(time::submit))
        .route("/time-entries/{id}", get(time::get_entry).patch(time::edit_entry).delete(time::delete_entry))
        .route("/time-entries/{id}/approve", post(time::approve))
        .route("/time-entries/{id}/reject", post(time::reject))
        .route("/projects/{id}/time", get(time::project_time))
        .route("/portfolios/{id}/time", get(time::portfolio_time))
        .route("/mail/settings", get(mail::get_settings).patch(mail::configure))
        .route("/mail/inbound", get(mail::inbound))
        .route("/mail/outbound", get(mail::outbound))
        // Conversation, files, history
        .route("/items/{item}/messages", get(conversation::list_messages).post(conversation::post_message))
        .route(
            "/items/{item}/attachments",
            get(conversation::list_attachments).post(conversation::upload_attachment),
        )
        .route("/attachments/{id}", get(conversation::download_attachment))
        .route("/items/{item}/history", get(conversation::history))
        // Audit and operations
        .route("/events", get(ops::events))
        .route("/jobs", get(ops::jobs))
        .route("/jobs/{id}/retry", post(ops::retry_job))
        // Outgoing webhooks
        .route("/webhooks", get(webhooks::list_webhooks).post(webhooks::create_webhook))
        .route(
            "/webhooks/{id}",
            get(webhooks::get_webhook).patch(webhooks::update_webhook).delete(webhooks::delete_webhook),
        );

    Router::new()
        .nest("/api/v1", api)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
