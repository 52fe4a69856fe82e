//! The REST JSON API under `/api/v1`. A token acts in its own workspace, so paths carry no
//! workspace segment. Handlers are thin: parse → command → `Desk::execute` (or a `Desk` query)
//! → respond; access rules live in `Desk`, never here.

mod access;
mod automations;
mod chat;
mod conversation;
pub(crate) mod flows;
mod items;
mod kb;
mod mail;
mod ops;
mod people;
mod planning;
mod plugins;
mod reports;
mod sign_in;
mod structure;
mod time;
mod transfer;
mod views;
mod webhooks;

pub use people::new_secret;
pub use sign_in::ClientAddr;
pub(crate) use sign_in::{PasswordOutcome, password_sign_in, redeem_link, send_sign_in_link};

use std::any::Any;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use tandem_core::{Action, ItemRef};
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

/// Who may call a route — the minimum the authorization matrix (`server/tests/authz.rs`) checks
/// for every role. `Desk` enforces it; the table says what it should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Anyone signed in, customers included.
    SignedIn,
    /// Only the server administrator.
    ServerAdmin,
    /// `access::can(actor, action, Workspace)`: the action on the workspace as a whole.
    Workspace(Action),
    /// `access::can(actor, action, Item)` on an item the caller may or may not be involved in.
    Item(Action),
    /// Staff only: customers are refused. Which staff member may act on the record (its owner, a
    /// manager approving someone else's time) is the command's rule, tested with the command.
    Staff,
}

/// One route of the API: method, path (under `/api/v1`) and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
}

fn route<H, T>(method: Method, path: &'static str, rule: Rule, handler: H) -> (Route, MethodRouter<AppState>)
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    (Route { method, path, rule }, on(filter, handler))
}

/// Every route with its rule and handler. A route cannot be added without a rule, and the
/// authorization matrix test runs every one of them for every role.
fn table() -> Vec<(Route, MethodRouter<AppState>)> {
    use Action::*;
    use Method as M;
    use Rule::{Item as OnItem, Public, ServerAdmin, SignedIn, Staff, Workspace as Ws};
    vec![
        route(M::GET, "/health", Public, ops::health),
        // Signing in
        route(M::POST, "/auth/login", Public, sign_in::login),
        route(M::POST, "/auth/logout", Public, sign_in::logout),
        route(M::GET, "/auth/session", SignedIn, sign_in::current),
        route(M::POST, "/auth/magic-link", Public, sign_in::request_magic_link),
        route(M::GET, "/auth/magic/{id}", Public, sign_in::use_magic_link),
        // Workspaces
        route(M::GET, "/workspaces", SignedIn, structure::list_workspaces),
        route(M::POST, "/workspaces", ServerAdmin, structure::create_workspace),
        route(M::GET, "/workspace", SignedIn, structure::get_workspace),
        route(M::PATCH, "/workspace", Ws(AdministerWorkspace), structure::rename_workspace),
        // Portfolios, projects, folders
        route(M::GET, "/portfolios", Ws(ViewDirectory), structure::list_portfolios),
        route(M::POST, "/portfolios", Ws(ManageStructure), structure::create_portfolio),
        route(M::GET, "/portfolios/{id}", Ws(ViewDirectory), structure::get_portfolio),
        route(M::PATCH, "/portfolios/{id}", Ws(ManageStructure), structure::update_portfolio),
        route(M::DELETE, "/portfolios/{id}", Ws(ManageStructure), structure::delete_portfolio),
        route(M::GET, "/projects", Ws(ViewDirectory), structure::list_projects),
        route(M::POST, "/projects", Ws(ManageStructure), structure::create_project),
        route(M::GET, "/projects/{id}", Ws(ViewDirectory), structure::get_project),
        route(M::PATCH, "/projects/{id}", Ws(ManageStructure), structure::update_project),
        route(M::GET, "/projects/{id}/folders", Ws(ViewDirectory), structure::list_folders),
        // Planning: schedules, Gantt charts, working calendars
        route(M::GET, "/projects/{id}/schedule", Ws(ViewDirectory), planning::project_schedule),
        route(M::GET, "/projects/{id}/gantt.svg", Ws(ViewDirectory), planning::project_gantt),
        // Import and export: CSV and MS Project XML into a project, a project as MS Project XML
        route(M::POST, "/projects/{id}/import/csv", Staff, transfer::import_csv),
        route(M::POST, "/projects/{id}/import/mspdi", Staff, transfer::import_mspdi),
        route(M::GET, "/projects/{id}/export/mspdi", Ws(ViewDirectory), transfer::export_mspdi),
        route(M::GET, "/calendars", Ws(ViewDirectory), planning::list_calendars),
        route(M::GET, "/calendars/workspace", Ws(ViewDirectory), planning::get_workspace_calendar),
        route(M::PUT, "/calendars/workspace", Ws(ManageStructure), planning::put_workspace_calendar),
        route(M::GET, "/users/{id}/calendar", Ws(ViewDirectory), planning::get_user_calendar),
        route(M::PUT, "/users/{id}/calendar", Staff, planning::put_user_calendar),
        route(M::POST, "/folders", Ws(ManageStructure), structure::create_folder),
        route(M::PATCH, "/folders/{id}", Ws(ManageStructure), structure::update_folder),
        route(M::DELETE, "/folders/{id}", Ws(ManageStructure), structure::delete_folder),
        // Item types, workflows, custom fields (customers read types to fill in forms)
        route(M::GET, "/item-types", SignedIn, structure::list_item_types),
        route(M::POST, "/item-types", Ws(ManageStructure), structure::create_item_type),
        route(M::GET, "/item-types/{id}", SignedIn, structure::get_item_type),
        route(M::PATCH, "/item-types/{id}", Ws(ManageStructure), structure::update_item_type),
        route(M::POST, "/item-types/{id}/workflow", Ws(ManageStructure), structure::edit_workflow),
        route(M::POST, "/item-types/{id}/fields", Ws(ManageStructure), structure::edit_fields),
        // People
        route(M::GET, "/users", Ws(ViewDirectory), people::list_users),
        route(M::POST, "/users", Ws(ManageUsers), people::create_user),
        route(M::GET, "/users/{id}", Ws(ViewDirectory), people::get_user),
        route(M::PATCH, "/users/{id}", Ws(ManageUsers), people::update_user),
        route(M::POST, "/users/{id}/password", Ws(ManageUsers), sign_in::set_password),
        route(M::POST, "/users/{id}/tokens", Ws(ManageUsers), people::issue_token),
        route(M::DELETE, "/tokens/{id}", Ws(ManageUsers), people::revoke_token),
        route(M::GET, "/teams", Ws(ViewDirectory), people::list_teams),
        route(M::POST, "/teams", Ws(ManageStructure), people::create_team),
        route(M::PATCH, "/teams/{id}", Ws(ManageStructure), people::update_team),
        // Organizations, project members and grants, join requests, portal visibility
        route(M::GET, "/organizations", Ws(ViewDirectory), access::list_organizations),
        route(M::POST, "/organizations", Ws(ManageUsers), access::create_organization),
        route(M::GET, "/organizations/{id}", Ws(ViewDirectory), access::get_organization),
        route(M::PATCH, "/organizations/{id}", Ws(ManageUsers), access::update_organization),
        route(M::DELETE, "/organizations/{id}", Ws(ManageUsers), access::delete_organization),
        route(M::GET, "/organizations/{id}/members", Ws(ViewDirectory), access::organization_members),
        route(M::GET, "/projects/{id}/members", Ws(ViewDirectory), access::project_members),
        route(M::PUT, "/projects/{id}/members/{user}", Ws(ManageMembers), access::set_project_member),
        route(M::DELETE, "/projects/{id}/members/{user}", Ws(ManageMembers), access::remove_project_member),
        route(M::GET, "/projects/{id}/join-requests", SignedIn, access::list_join_requests),
        route(M::POST, "/projects/{id}/join-requests", Ws(RequestToJoin), access::request_to_join),
        route(M::POST, "/join-requests/{id}/approve", Ws(ManageMembers), access::approve_join_request),
        route(M::POST, "/join-requests/{id}/deny", Ws(ManageMembers), access::deny_join_request),
        route(M::GET, "/portal", Ws(ViewDirectory), access::get_portal),
        route(M::PATCH, "/portal", Ws(ManageStructure), access::configure_portal),
        route(M::GET, "/notifications", SignedIn, people::list_notifications),
        route(M::POST, "/notifications/{id}/read", SignedIn, people::read_notification),
        // Items
        route(M::GET, "/items", Ws(ViewItem), items::list_items),
        route(M::POST, "/items", Ws(CreateItem), items::create_item),
        route(M::GET, "/items/{item}", OnItem(ViewItem), items::get_item),
        route(M::PATCH, "/items/{item}", OnItem(EditItem), items::update_item),
        route(M::POST, "/items/{item}/transition", OnItem(TransitionItem), items::transition_item),
        route(M::POST, "/items/{item}/close", OnItem(TransitionItem), items::close_item),
        route(M::PUT, "/items/{item}/assignees", OnItem(AssignItem), items::set_assignees),
        route(M::POST, "/items/{item}/followers", OnItem(ManageFollowers), items::change_followers),
        route(M::POST, "/items/{item}/convert", OnItem(ConvertItem), items::convert_item),
        route(M::GET, "/items/{item}/links", OnItem(ViewItem), items::list_links),
        route(M::POST, "/items/{item}/links", OnItem(LinkItems), items::link_items),
        route(M::DELETE, "/links/{id}", OnItem(LinkItems), items::unlink),
        route(M::GET, "/tickets/{number}", OnItem(ViewItem), items::get_ticket),
        route(M::GET, "/tasks/{number}", OnItem(ViewItem), items::get_task),
        route(M::GET, "/search", Ws(ViewItem), items::search),
        route(M::GET, "/mail/settings", Ws(ViewDirectory), mail::get_settings),
        route(M::PATCH, "/mail/settings", Ws(ManageStructure), mail::configure),
        route(M::GET, "/mail/inbound", Ws(ViewAudit), mail::inbound),
        route(M::GET, "/mail/outbound", Ws(ViewAudit), mail::outbound),
        // Conversation, files, history
        route(M::GET, "/items/{item}/messages", OnItem(ViewItem), conversation::list_messages),
        route(M::POST, "/items/{item}/messages", OnItem(PostPublicMessage), conversation::post_message),
        route(M::GET, "/items/{item}/attachments", OnItem(ViewItem), conversation::list_attachments),
        route(M::POST, "/items/{item}/attachments", OnItem(AddAttachment), conversation::upload_attachment),
        route(M::GET, "/attachments/{id}", OnItem(ViewItem), conversation::download_attachment),
        route(M::GET, "/items/{item}/history", OnItem(ViewHistory), conversation::history),
        // Audit and operations
        route(M::GET, "/events", Ws(ViewAudit), ops::events),
        route(M::GET, "/jobs", Ws(ViewAudit), ops::jobs),
        route(M::POST, "/jobs/{id}/retry", Ws(AdministerWorkspace), ops::retry_job),
        // Saved views and their layouts
        route(M::GET, "/views", Staff, views::list_views),
        route(M::POST, "/views", Staff, views::create_view),
        route(M::GET, "/views/{id}", Staff, views::get_view),
        route(M::PATCH, "/views/{id}", Staff, views::update_view),
        route(M::DELETE, "/views/{id}", Staff, views::delete_view),
        route(M::GET, "/views/{id}/run", Staff, views::run_view),
        route(M::GET, "/views/{id}/gantt.svg", Staff, views::view_gantt),
        route(M::GET, "/views/{id}/export", Staff, transfer::export_view),
        // Scheduled reports (a view mailed on a schedule; the owner's permissions)
        route(M::GET, "/reports", Staff, reports::list_reports),
        route(M::POST, "/reports", Staff, reports::create_report),
        route(M::GET, "/reports/{id}", Staff, reports::get_report),
        route(M::PATCH, "/reports/{id}", Staff, reports::update_report),
        route(M::POST, "/reports/{id}/send", Staff, reports::send_report),
        route(M::DELETE, "/reports/{id}", Staff, reports::delete_report),
        route(M::POST, "/views/{id}/board/move", Staff, views::move_card),
        // Time tracking
        route(M::GET, "/items/{item}/time", Staff, time::item_time),
        route(M::POST, "/items/{item}/time", Staff, time::log_time),
        route(M::POST, "/items/{item}/timer", Staff, time::start_timer),
        route(M::GET, "/timer", Staff, time::current_timer),
        route(M::POST, "/timer/pause", Staff, time::pause_timer),
        route(M::POST, "/timer/resume", Staff, time::resume_timer),
        route(M::POST, "/timer/stop", Staff, time::stop_timer),
        route(M::GET, "/time-entries", Staff, time::list_entries),
        route(M::GET, "/time/export", Staff, transfer::export_time),
        route(M::POST, "/time-entries/submit", Staff, time::submit),
        route(M::GET, "/time-entries/{id}", Staff, time::get_entry),
        route(M::PATCH, "/time-entries/{id}", Staff, time::edit_entry),
        route(M::DELETE, "/time-entries/{id}", Staff, time::delete_entry),
        route(M::POST, "/time-entries/{id}/approve", Staff, time::approve),
        route(M::POST, "/time-entries/{id}/reject", Staff, time::reject),
        route(M::GET, "/projects/{id}/time", Ws(ViewDirectory), time::project_time),
        route(M::GET, "/portfolios/{id}/time", Ws(ViewDirectory), time::portfolio_time),
        // Automations
        route(M::GET, "/automations", Ws(ViewAudit), automations::list_rules),
        route(M::POST, "/automations", Ws(ManageStructure), automations::create_rule),
        route(M::POST, "/automations/reorder", Ws(ManageStructure), automations::reorder_rules),
        route(M::POST, "/automations/dry-run", Ws(ViewAudit), automations::dry_run),
        route(M::GET, "/automations/runs", Ws(ViewAudit), automations::runs),
        route(M::GET, "/automations/{id}", Ws(ViewAudit), automations::get_rule),
        route(M::PATCH, "/automations/{id}", Ws(ManageStructure), automations::update_rule),
        route(M::POST, "/automations/{id}/enable", Ws(ManageStructure), automations::enable_rule),
        route(M::POST, "/automations/{id}/disable", Ws(ManageStructure), automations::disable_rule),
        route(M::DELETE, "/automations/{id}", Ws(ManageStructure), automations::delete_rule),
        // Knowledge base: anyone reads what the article's visibility lets them; agents write
        route(M::GET, "/kb/categories", Public, kb::list_categories),
        route(M::POST, "/kb/categories", Staff, kb::create_category),
        route(M::PATCH, "/kb/categories/{id}", Staff, kb::update_category),
        route(M::DELETE, "/kb/categories/{id}", Staff, kb::delete_category),
        route(M::GET, "/kb/articles", Public, kb::list_articles),
        route(M::POST, "/kb/articles", Staff, kb::create_article),
        route(M::GET, "/kb/articles/{id}", Public, kb::get_article),
        route(M::PATCH, "/kb/articles/{id}", Staff, kb::update_article),
        route(M::POST, "/kb/articles/{id}/publish", Staff, kb::publish_article),
        route(M::POST, "/kb/articles/{id}/unpublish", Staff, kb::unpublish_article),
        route(M::DELETE, "/kb/articles/{id}", Staff, kb::delete_article),
        // Live chat (visitors chat through the widget's own routes) and the widget snippet
        route(M::GET, "/chats", Staff, chat::list_chats),
        route(M::GET, "/chats/{id}", Staff, chat::get_chat),
        route(M::GET, "/chats/{id}/stream", Staff, chat::chat_stream),
        route(M::POST, "/chats/{id}/take", Staff, chat::take_chat),
        route(M::POST, "/chats/{id}/messages", Staff, chat::post_chat_message),
        route(M::POST, "/chats/{id}/end", Staff, chat::end_chat),
        route(M::GET, "/me/chats", SignedIn, chat::my_chats),
        route(M::GET, "/me/chats/{id}", SignedIn, chat::my_chat),
        route(M::GET, "/widget/snippet", Ws(ManageStructure), chat::widget_snippet),
        // Outgoing webhooks
        route(M::GET, "/webhooks", Ws(ManageStructure), webhooks::list_webhooks),
        route(M::POST, "/webhooks", Ws(ManageStructure), webhooks::create_webhook),
        route(M::GET, "/webhooks/{id}", Ws(ManageStructure), webhooks::get_webhook),
        route(M::PATCH, "/webhooks/{id}", Ws(ManageStructure), webhooks::update_webhook),
        route(M::DELETE, "/webhooks/{id}", Ws(ManageStructure), webhooks::delete_webhook),
        // Flows, incoming webhooks, REST hooks
        route(M::GET, "/flows", Ws(ManageStructure), flows::list_flows),
        route(M::POST, "/flows", Ws(ManageStructure), flows::create_flow),
        route(M::GET, "/flows/{id}", Ws(ManageStructure), flows::get_flow),
        route(M::PUT, "/flows/{id}", Ws(ManageStructure), flows::update_flow),
        route(M::POST, "/flows/{id}/enable", Ws(ManageStructure), flows::enable_flow),
        route(M::POST, "/flows/{id}/disable", Ws(ManageStructure), flows::disable_flow),
        route(M::GET, "/flows/{id}/runs", Ws(ManageStructure), flows::list_runs),
        route(M::GET, "/flow-runs/{id}", Ws(ManageStructure), flows::get_run),
        route(M::POST, "/flow-runs/{id}/replay", Ws(ManageStructure), flows::replay_run),
        route(M::DELETE, "/flows/{id}", Ws(ManageStructure), flows::delete_flow),
        route(M::GET, "/hook-endpoints", Ws(ManageStructure), flows::list_endpoints),
        route(M::POST, "/hook-endpoints", Ws(ManageStructure), flows::create_endpoint),
        route(M::DELETE, "/hook-endpoints/{id}", Ws(ManageStructure), flows::delete_endpoint),
        route(M::POST, "/hooks/in/{token}", Public, flows::receive),
        route(M::POST, "/hooks/subscriptions", Ws(ManageStructure), flows::subscribe),
        route(M::DELETE, "/hooks/subscriptions/{id}", Ws(ManageStructure), flows::unsubscribe),
        // Plugins
        route(M::GET, "/plugins", Ws(AdministerWorkspace), plugins::list_plugins),
        route(M::POST, "/plugins", Ws(AdministerWorkspace), plugins::install_plugin),
        route(M::GET, "/plugins/{id}", Ws(AdministerWorkspace), plugins::get_plugin),
        route(M::DELETE, "/plugins/{id}", Ws(AdministerWorkspace), plugins::delete_plugin),
        route(M::POST, "/plugins/{id}/upgrade", Ws(AdministerWorkspace), plugins::upgrade_plugin),
        route(M::POST, "/plugins/{id}/approve", Ws(AdministerWorkspace), plugins::approve_plugin),
        route(M::PUT, "/plugins/{id}/config", Ws(AdministerWorkspace), plugins::configure_plugin),
        route(M::POST, "/plugins/{id}/enable", Ws(AdministerWorkspace), plugins::enable_plugin),
        route(M::POST, "/plugins/{id}/disable", Ws(AdministerWorkspace), plugins::disable_plugin),
    ]
}

/// Every route of the API and its rule, in the router's order.
pub fn routes() -> Vec<Route> {
    table().into_iter().map(|(route, _)| route).collect()
}

/// The whole HTTP API (`app` in `portal.rs` adds the web channel beside it).
pub fn router(state: AppState) -> Router {
    let body_limit = state.body_limit();
    let api = table().into_iter().fold(Router::new(), |api, (route, handler)| api.route(route.path, handler));
    let api = Router::new().nest("/api/v1", api).with_state(state.clone());
    Router::new()
        .merge(api)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}
