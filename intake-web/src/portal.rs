//! The customer portal: branding per workspace, signing in (password or emailed link), "my
//! requests" and an item's page with the public conversation, a reply box and attachments.
//!
//! Every read goes through `Desk` as the signed-in person, so the portal shows exactly what the
//! API would: `Desk::items` applies their portal scope (own / organization / all public),
//! `Desk::messages` leaves out internal notes, and an item they may not see is a 404 page that
//! renders nothing of it.
//!
//! Routes (`{ws}` is the workspace id; `/portal` alone goes to the oldest workspace):
//! `GET /portal/{ws}`, `GET|POST /portal/{ws}/sign-in`, `POST /portal/{ws}/magic-link`,
//! `GET /portal/{ws}/magic/{secret}`, `POST /portal/{ws}/sign-out`, `GET /portal/{ws}/requests`,
//! `GET /portal/{ws}/requests/{number}`, `POST /portal/{ws}/requests/{number}/reply`,
//! `GET /portal/{ws}/attachments/{id}`.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use tandem_core::commands::{PortalFace, PostMessage};
use tandem_core::conversation::Visibility;
use tandem_core::store::RecordQuery;
use tandem_core::{
    ActorRef, AttachmentId, Body, Channel, Item, ItemQuery, ItemRef, ItemScope, ItemType, SortKey,
    WorkspaceId,
};

use crate::WebState;
use crate::forms::read_form;
use crate::page::{
    ClientIp, PageError, PageResult, csrf_for, csrf_ok, csrf_refused, face, guard_fields, layout, too_many,
    with_cookie, workspace,
};
use crate::state::{Bucket, PortalSession, SignInRefused};

pub(crate) fn routes(body_limit: usize) -> Router<WebState> {
    Router::new()
        .route("/portal", get(default_portal))
        .route("/portal/{ws}", get(home))
        .route("/portal/{ws}/sign-in", get(sign_in_page).post(sign_in))
        .route("/portal/{ws}/magic-link", post(magic_link))
        .route("/portal/{ws}/magic/{secret}", get(use_link))
        .route("/portal/{ws}/sign-out", post(sign_out))
        .route("/portal/{ws}/requests", get(requests))
        .route("/portal/{ws}/requests/{number}", get(item_page))
        .route("/portal/{ws}/requests/{number}/reply", post(reply).layer(DefaultBodyLimit::max(body_limit)))
        .route("/portal/{ws}/attachments/{id}", get(download))
}

async fn default_portal(State(state): State<WebState>) -> PageResult<Redirect> {
    let ws = state.sign_in.default_workspace().await.ok_or_else(PageError::not_found)?;
    Ok(Redirect::to(&format!("/portal/{ws}")))
}

/// The public label of an item's status (the status name when it has none).
pub(crate) fn status_label(t: Option<&ItemType>, item: &Item) -> String {
    t.and_then(|t| t.workflow.status(&item.status))
        .map(|s| s.public_label.clone().unwrap_or_else(|| s.name.clone()))
        .unwrap_or_else(|| item.status.clone())
}

async fn home(
    State(state): State<WebState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> PageResult<Markup> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let session = state.sign_in.session(ws, &headers).await;
    Ok(layout(
        &face,
        "Help",
        session.as_ref(),
        html! {
            h1 { "How can we help?" }
            @if face.forms.is_empty() {
                p { "There are no forms here yet." }
            } @else {
                ul.requests {
                    @for (t, form) in &face.forms {
                        li { a href={ "/forms/" (ws) "/" (t.id) } { (form.title.clone().unwrap_or_else(|| t.name.clone())) } }
                    }
                }
            }
            @if session.is_some() {
                p { a href={ "/portal/" (ws) "/requests" } { "See my requests" } }
            } @else {
                p { a href={ "/portal/" (ws) "/sign-in" } { "Sign in" } " to follow your requests." }
            }
        },
    ))
}

#[derive(Debug, Deserialize, Default)]
struct Next {
    next: Option<String>,
    sent: Option<String>,
}

/// Only paths of this site: never a redirect elsewhere.
fn safe_next(ws: WorkspaceId, next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.contains("://") => {
            n.to_string()
        }
        _ => format!("/portal/{ws}/requests"),
    }
}

fn sign_in_view(face: &PortalFace, csrf: &str, next: &str, error: Option<&str>, sent: bool) -> Markup {
    let ws = face.workspace.id;
    layout(
        face,
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if sent { div.notice role="status" { "If this address belongs to one of our customers, a sign-in link is on its way." } }
            @if let Some(e) = error { p.error role="alert" id="sign-in-error" { (e) } }
            form.card method="post" action={ "/portal/" (ws) "/sign-in" } {
                (guard_fields(csrf))
                input type="hidden" name="next" value=(next);
                div.field { label for="s-email" { "Email address" } input type="email" id="s-email" name="email" autocomplete="email" required aria-describedby=[error.map(|_| "sign-in-error")]; }
                div.field { label for="s-password" { "Password" } input type="password" id="s-password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
            form.card method="post" action={ "/portal/" (ws) "/magic-link" } {
                (guard_fields(csrf))
                div.field { label for="l-email" { "Or get a sign-in link by email" } input type="email" id="l-email" name="email" autocomplete="email" required; }
                button type="submit" { "Email me a link" }
            }
        },
    )
}

async fn sign_in_page(
    State(state): State<WebState>,
    Path(ws): Path<String>,
    Query(q): Query<Next>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let next = safe_next(ws, q.next.as_deref());
    if state.sign_in.session(ws, &headers).await.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let csrf = csrf_for(&state, ws, &headers, None);
    Ok(with_cookie(&csrf, sign_in_view(&face, &csrf.token, &next, None, q.sent.is_some())))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    website: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// What every sign-in form post passes first: a known workspace, the per-IP sign-in rate and the
/// CSRF token.
async fn sign_in_gate(
    state: &WebState,
    ws: &str,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    csrf: &str,
) -> PageResult<(WorkspaceId, PortalFace)> {
    let ws = workspace(ws)?;
    let face = face(state, ws).await?;
    if !state.rate.allow(Bucket::SignIn, ip, state.limits.sign_ins_per_minute) {
        return Err(too_many());
    }
    if !csrf_ok(state, ws, headers, None, csrf) {
        return Err(csrf_refused());
    }
    Ok((ws, face))
}

async fn sign_in(
    State(state): State<WebState>,
    Path(ws): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> PageResult<Response> {
    let (ws, face) = sign_in_gate(&state, &ws, ip, &headers, &form.csrf).await?;
    let next = safe_next(ws, form.next.as_deref());
    let refused = |message: String, status: StatusCode| {
        let csrf = csrf_for(&state, ws, &headers, None);
        (status, with_cookie(&csrf, sign_in_view(&face, &csrf.token, &next, Some(&message), false)))
            .into_response()
    };
    if !form.website.is_empty() {
        return Ok(refused("The email address or password is wrong.".into(), StatusCode::UNAUTHORIZED));
    }
    match state.sign_in.password(ws, &form.email, &form.password, ip, &headers).await {
        Ok(signed_in) => {
            Ok(([(header::SET_COOKIE, signed_in.set_cookie)], Redirect::to(&next)).into_response())
        }
        Err(SignInRefused::Locked { retry_after_secs }) => Ok(refused(
            format!("Too many failed sign-ins. Try again in {} minute(s).", (retry_after_secs + 59) / 60),
            StatusCode::TOO_MANY_REQUESTS,
        )),
        Err(SignInRefused::Unavailable(m)) => Ok(refused(m, StatusCode::SERVICE_UNAVAILABLE)),
        Err(_) => Ok(refused("The email address or password is wrong.".into(), StatusCode::UNAUTHORIZED)),
    }
}

#[derive(Debug, Deserialize)]
struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    website: String,
    #[serde(default)]
    email: String,
}

async fn magic_link(
    State(state): State<WebState>,
    Path(ws): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> PageResult<Response> {
    let (ws, face) = sign_in_gate(&state, &ws, ip, &headers, &form.csrf).await?;
    let sent = Redirect::to(&format!("/portal/{ws}/sign-in?sent=1")).into_response();
    if !form.website.is_empty() {
        return Ok(sent);
    }
    match state.sign_in.request_link(ws, &form.email, &format!("/portal/{ws}/magic/")).await {
        Ok(()) => Ok(sent),
        Err(SignInRefused::Invalid(m) | SignInRefused::Unavailable(m)) => {
            let csrf = csrf_for(&state, ws, &headers, None);
            let next = format!("/portal/{ws}/requests");
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                with_cookie(&csrf, sign_in_view(&face, &csrf.token, &next, Some(&m), false)),
            )
                .into_response())
        }
        Err(_) => Ok(sent),
    }
}

async fn use_link(
    State(state): State<WebState>,
    Path((ws, secret)): Path<(String, String)>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    match state.sign_in.use_link(ws, &secret, &headers).await {
        Ok(signed_in) => Ok((
            [(header::SET_COOKIE, signed_in.set_cookie)],
            Redirect::to(&format!("/portal/{ws}/requests")),
        )
            .into_response()),
        Err(refused) => {
            let message = match refused {
                SignInRefused::BadLink(m) | SignInRefused::Unavailable(m) | SignInRefused::Invalid(m) => m,
                _ => "This sign-in link is not valid; ask for a new one.".into(),
            };
            let csrf = csrf_for(&state, ws, &headers, None);
            let next = format!("/portal/{ws}/requests");
            Ok((
                StatusCode::UNAUTHORIZED,
                with_cookie(&csrf, sign_in_view(&face, &csrf.token, &next, Some(&message), false)),
            )
                .into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(state): State<WebState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let session = state.sign_in.session(ws, &headers).await;
    if session.is_some() && !csrf_ok(&state, ws, &headers, session.as_ref(), &form.csrf) {
        return Err(csrf_refused());
    }
    let cleared = state.sign_in.sign_out(&headers).await;
    Ok(([(header::SET_COOKIE, cleared)], Redirect::to(&format!("/portal/{ws}"))).into_response())
}

/// The signed-in session, or a redirect to the sign-in page that comes back here.
async fn signed_in(
    state: &WebState,
    ws: WorkspaceId,
    headers: &HeaderMap,
    here: &str,
) -> Result<PortalSession, Response> {
    match state.sign_in.session(ws, headers).await {
        Some(s) => Ok(s),
        None => Err(Redirect::to(&format!("/portal/{ws}/sign-in?next={}", urlencode(here))).into_response()),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn requests(
    State(state): State<WebState>,
    Path(ws): Path<String>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let session = match signed_in(&state, ws, &headers, &format!("/portal/{ws}/requests")).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    // The scope is replaced by the requester's own in `Desk::items`.
    let mut query = ItemQuery::new(ItemScope::All);
    query.sort = SortKey::Number;
    query.descending = true;
    query.limit = 100;
    let page = state.desk.items(&session.actor, query).await?;
    let types =
        state.desk.directory::<ItemType>(&session.actor, &RecordQuery::all()).await.unwrap_or_default();
    let me = session.actor.user_id();
    // The requester's chats from the widget stay with their profile, newest first.
    let mut chats = state.desk.my_chats(&session.actor).await.unwrap_or_default();
    chats.sort_by_key(|c| std::cmp::Reverse(c.started_at));
    Ok(layout(&face, "My requests", Some(&session), html! {
        h1 { "My requests" }
        @if page.items.is_empty() {
            p { "You have no requests yet." }
        } @else {
            ul.requests {
                @for item in &page.items {
                    @let t = types.iter().find(|t| t.id == item.item_type);
                    li {
                        span { a href={ "/portal/" (ws) "/requests/" (item.number) } { "#" (item.number) " " (item.title) }
                            @if item.requester != me { " " span.help { "(someone else's)" } } }
                        span.status { (status_label(t, item)) }
                    }
                }
            }
        }
        p { a href={ "/portal/" (ws) } { "Submit a new request" } }
        @if !chats.is_empty() {
            h2 { "My chats" }
            ul.requests #my-chats {
                @for chat in &chats {
                    @let ticket = chat.item.and_then(|id| page.items.iter().find(|i| i.id == id));
                    li {
                        span {
                            "Chat of " (chat.started_at.format("%Y-%m-%d %H:%M UTC")) " · " (chat.message_count) " messages"
                            @if let Some(item) = ticket {
                                " → " a href={ "/portal/" (ws) "/requests/" (item.number) } { "#" (item.number) " " (item.title) }
                            }
                        }
                        span.status { (chat.status.as_str()) }
                    }
                }
            }
        }
    })
    .into_response())
}

#[derive(Debug, Deserialize, Default)]
struct ItemQueryString {
    submitted: Option<String>,
    replied: Option<String>,
}

async fn item_page(
    State(state): State<WebState>,
    Path((ws, number)): Path<(String, String)>,
    Query(q): Query<ItemQueryString>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let here = format!("/portal/{ws}/requests/{number}");
    let session = match signed_in(&state, ws, &headers, &here).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let number: i64 = number.parse().map_err(|_| PageError::not_found())?;
    let page =
        item_view(&state, &face, &session, number, None, q.submitted.is_some(), q.replied.is_some()).await?;
    Ok(page.into_response())
}

async fn item_view(
    state: &WebState,
    face: &PortalFace,
    session: &PortalSession,
    number: i64,
    error: Option<&str>,
    submitted: bool,
    replied: bool,
) -> PageResult<Markup> {
    let actor = &session.actor;
    let item = state.desk.item(actor, ItemRef::Number(number)).await?;
    let messages = state.desk.messages(actor, ItemRef::Id(item.id)).await?;
    let attachments = state.desk.attachments(actor, ItemRef::Id(item.id)).await?;
    let types = state.desk.directory::<ItemType>(actor, &RecordQuery::all()).await.unwrap_or_default();
    let t = types.iter().find(|t| t.id == item.item_type);
    let ws = face.workspace.id;
    let me = actor.user_id();
    let public = messages.iter().filter(|m| m.visibility == Visibility::Public);
    Ok(layout(
        face,
        &format!("#{} {}", item.number, item.title),
        Some(session),
        html! {
            @if submitted { div.notice role="status" { "Thank you: we received your request." } }
            @if replied { div.notice role="status" { "Your reply was sent." } }
            h1 { "#" (item.number) " " (item.title) }
            p { "Status: " span.status id="status" { (status_label(t, &item)) } }
            @if !item.description.is_empty() { div.card { div.text style="white-space: pre-wrap" { (item.description) } } }
            @if let Some(t) = t {
                @let shown: Vec<_> = t.fields.iter().filter(|f| !f.internal && item.custom.contains_key(&f.key)).collect();
                @if !shown.is_empty() {
                    dl.card {
                        @for f in shown {
                            dt { (f.label) }
                            dd { (display_value(&item.custom[&f.key])) }
                        }
                    }
                }
            }
            @if !attachments.is_empty() {
                h2 { "Files" }
                ul id="attachments" {
                    @for a in &attachments {
                        li { a href={ "/portal/" (ws) "/attachments/" (a.id) } { (a.filename) } " (" (a.size) " bytes)" }
                    }
                }
            }
            h2 { "Conversation" }
            div id="conversation" {
                @for m in public {
                    div.message {
                        p.meta { (if me.is_some_and(|u| m.author == ActorRef::User(u)) { "You" } else { "Reply" }) " · " (m.created_at.format("%Y-%m-%d %H:%M UTC")) }
                        div.text { (m.text) }
                    }
                }
            }
            form.card method="post" action={ "/portal/" (ws) "/requests/" (item.number) "/reply" } enctype="multipart/form-data" {
                (guard_fields(&session.csrf))
                div.field {
                    label for="r-body" { "Your reply" }
                    textarea id="r-body" name="description" required aria-describedby=[error.map(|_| "r-body-error")] aria-invalid=[error.map(|_| "true")] {}
                    @if let Some(e) = error { p.error id="r-body-error" role="alert" { (e) } }
                }
                div.field {
                    label for="r-files" { "Attach files" }
                    input type="file" id="r-files" name="files" multiple;
                }
                button type="submit" { "Send reply" }
            }
        },
    ))
}

fn display_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "Yes".into(),
        serde_json::Value::Bool(false) => "No".into(),
        serde_json::Value::Array(a) => a.iter().map(display_value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

async fn reply(
    State(state): State<WebState>,
    Path((ws, number)): Path<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Multipart,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let face = face(&state, ws).await?;
    let here = format!("/portal/{ws}/requests/{number}");
    let session = match signed_in(&state, ws, &headers, &here).await {
        Ok(s) => s,
        Err(redirect) => return Ok(redirect),
    };
    let number: i64 = number.parse().map_err(|_| PageError::not_found())?;
    if !state.rate.allow(Bucket::Submit, ip, state.limits.submissions_per_minute) {
        return Err(too_many());
    }
    let mut errors = Default::default();
    let submitted = read_form(&state, form, &mut errors).await?;
    if !csrf_ok(&state, ws, &headers, Some(&session), &submitted.csrf) {
        return Err(csrf_refused());
    }
    if !submitted.honeypot.is_empty() {
        return Ok(Redirect::to(&format!("{here}?replied=1")).into_response());
    }
    let problem = if let Some(e) = errors.values().next() {
        Some(e.clone())
    } else if submitted.description.trim().is_empty() {
        Some("Write a reply before sending.".to_string())
    } else {
        None
    };
    if let Some(problem) = problem {
        let page = item_view(&state, &face, &session, number, Some(&problem), false, false).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let command = PostMessage {
        files: submitted.files,
        channel: Channel::Portal,
        ..PostMessage::new(ItemRef::Number(number), Visibility::Public, Body::Text(submitted.description))
    };
    match state.desk.execute(&session.actor, &command).await {
        Ok(_) => Ok(Redirect::to(&format!("{here}?replied=1")).into_response()),
        Err(tandem_core::DeskError::Invalid(e)) => {
            let page = item_view(&state, &face, &session, number, Some(&e.reason), false, false).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn download(
    State(state): State<WebState>,
    Path((ws, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> PageResult<Response> {
    let ws = workspace(&ws)?;
    let session = state.sign_in.session(ws, &headers).await.ok_or_else(PageError::not_found)?;
    let id: AttachmentId = id.parse().map_err(|_| PageError::not_found())?;
    let (attachment, bytes) = state.desk.attachment(&session.actor, id).await?;
    let filename: String = attachment
        .filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{filename}"))
        .unwrap_or(HeaderValue::from_static("attachment"));
    // Always a download, never rendered in the portal's origin.
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        bytes,
    )
        .into_response())
}
