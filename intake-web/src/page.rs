//! What every page shares: the layout (branding, a phone-friendly stylesheet), CSRF tokens,
//! the client's network address and error pages.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::Sha256;
use tandem_core::commands::PortalFace;
use tandem_core::{DeskError, WorkspaceId};

use crate::state::{PortalSession, WebState};

/// The cookie binding a guest's CSRF token to their browser.
pub const FORM_COOKIE: &str = "tandem_form";
/// The hidden field every form carries its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";
/// The honeypot: hidden from people (and from assistive technology), filled in by bots.
pub const HONEYPOT_FIELD: &str = "website";

/// The network address the request came from (`ConnectInfo`), when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// A page's answer when something is wrong: a status and a short, escaped explanation.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "There is nothing here, or you may not see it.")
    }
}

impl From<DeskError> for PageError {
    fn from(e: DeskError) -> Self {
        match e {
            // Forbidden and missing look the same: a requester learns nothing of what exists.
            DeskError::NotFound(_) | DeskError::Forbidden(_) => PageError::not_found(),
            DeskError::Invalid(i) => {
                PageError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{}: {}", i.field, i.reason))
            }
            DeskError::TooLarge { what, limit, .. } => {
                PageError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("{what} is larger than {limit} bytes"))
            }
            DeskError::Conflict(_) => {
                PageError::new(StatusCode::CONFLICT, "Something changed meanwhile; try again.")
            }
            DeskError::RateLimited(why) => PageError::new(StatusCode::TOO_MANY_REQUESTS, why),
            DeskError::Store(e) => {
                tracing::error!(error = %e, "a portal page failed");
                PageError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Something went wrong on our side; try again.",
                )
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            _ => "Something is wrong",
        };
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; meta name="viewport" content="width=device-width, initial-scale=1"; title { (title) } style { (PreEscaped(CSS)) } }
                body { main { h1 { (title) } p role="alert" { (self.message) } } }
            }
        };
        (self.status, body).into_response()
    }
}

pub type PageResult<T> = Result<T, PageError>;

const CSS: &str = r#"
:root { --primary: #1f5f8b; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: #1d1d1f; }
header.brand { background: var(--primary); color: #fff; padding: .75rem 1rem; display: flex; align-items: center; gap: .75rem; flex-wrap: wrap; }
header.brand a { color: #fff; }
header.brand img { max-height: 2.5rem; max-width: 8rem; }
header.brand .name { font-weight: 600; font-size: 1.15rem; flex: 1; }
header.brand form { margin: 0; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
a { color: var(--primary); }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: .5rem; padding: 1rem; margin-bottom: 1rem; }
label, legend { display: block; font-weight: 600; margin-bottom: .25rem; }
.field { margin-bottom: 1rem; }
.field fieldset { border: 0; padding: 0; margin: 0; }
.field .option { display: flex; align-items: center; gap: .5rem; font-weight: normal; }
input[type=text], input[type=email], input[type=password], input[type=number], input[type=date], input[type=url], select, textarea {
  width: 100%; padding: .6rem; border: 1px solid #b9c0c8; border-radius: .35rem; font: inherit; background: #fff; }
textarea { min-height: 8rem; }
input[type=checkbox] { width: 1.2rem; height: 1.2rem; }
.help { color: #50575e; font-size: .9rem; margin: .15rem 0 .35rem; }
.error { color: #b00020; font-weight: 600; margin: .25rem 0; }
[aria-invalid=true] { border-color: #b00020 !important; outline: 1px solid #b00020; }
.required { color: #b00020; }
button { background: var(--primary); color: #fff; border: 0; border-radius: .35rem; padding: .7rem 1.2rem; font: inherit; cursor: pointer; }
button.link { background: none; color: inherit; padding: 0; text-decoration: underline; }
.hp { position: absolute; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
ul.requests { list-style: none; padding: 0; margin: 0; }
ul.requests li { background: #fff; border: 1px solid #dde1e6; border-radius: .5rem; padding: .75rem 1rem; margin-bottom: .5rem; display: flex; justify-content: space-between; gap: .5rem; flex-wrap: wrap; }
.status { display: inline-block; background: #e8eef3; border-radius: 1rem; padding: 0 .6rem; font-size: .9rem; }
.message { background: #fff; border: 1px solid #dde1e6; border-radius: .5rem; padding: .75rem 1rem; margin-bottom: .75rem; }
.message .meta { color: #50575e; font-size: .85rem; }
.message .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.notice { background: #e7f4ea; border: 1px solid #9fd3ad; border-radius: .5rem; padding: .75rem 1rem; margin-bottom: 1rem; }
@media (max-width: 30rem) { main { padding: .75rem; } h1 { font-size: 1.3rem; } button { width: 100%; } }
"#;

/// The branding's colours as CSS custom properties. They were validated as `#rgb`/`#rrggbb` by
/// the core, and are checked again here because they are written into a stylesheet.
fn brand_css(face: &PortalFace) -> String {
    let safe = |c: &Option<String>| {
        c.as_ref()
            .filter(|c| {
                c.starts_with('#')
                    && c[1..].chars().all(|x| x.is_ascii_hexdigit())
                    && matches!(c.len(), 4 | 7)
            })
            .cloned()
    };
    let mut css = String::from(":root {");
    if let Some(c) = safe(&face.settings.branding.primary_color) {
        css.push_str(&format!(" --primary: {c};"));
    }
    if let Some(c) = safe(&face.settings.branding.background_color) {
        css.push_str(&format!(" --bg: {c};"));
    }
    css.push('}');
    css
}

/// A full page in the workspace's branding.
pub fn layout(face: &PortalFace, title: &str, session: Option<&PortalSession>, body: Markup) -> Markup {
    let ws = face.workspace.id;
    let name = face.name();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (name) }
                style { (PreEscaped(CSS)) (PreEscaped(brand_css(face))) }
            }
            body {
                header.brand {
                    @if let Some(logo) = &face.settings.branding.logo_url {
                        img src=(logo) alt="";
                    }
                    a.name href={ "/portal/" (ws) } { (name) }
                    @if let Some(s) = session {
                        a href={ "/portal/" (ws) "/requests" } { "My requests" }
                        form method="post" action={ "/portal/" (ws) "/sign-out" } {
                            input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    } @else {
                        a href={ "/portal/" (ws) "/sign-in" } { "Sign in" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The CSRF token a page's forms carry, and the cookie to set when a guest has none yet.
#[derive(Debug, Clone)]
pub struct Csrf {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A guest's token: HMAC-SHA256 over the workspace and the random value in their cookie, so
/// only a page this server rendered for that browser has it.
fn guest_token(state: &WebState, ws: WorkspaceId, nonce: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(state.form_key.as_slice()).expect("HMAC takes any key length");
    mac.update(b"tandem-form-csrf:");
    mac.update(ws.0.as_bytes());
    mac.update(nonce.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The CSRF token for a page: the session's when signed in, else a guest's (making the cookie
/// on the first visit).
pub fn csrf_for(
    state: &WebState,
    ws: WorkspaceId,
    headers: &HeaderMap,
    session: Option<&PortalSession>,
) -> Csrf {
    if let Some(s) = session {
        return Csrf { token: s.csrf.clone(), set_cookie: None };
    }
    if let Some(nonce) = cookie_value(headers, FORM_COOKIE) {
        return Csrf { token: guest_token(state, ws, nonce), set_cookie: None };
    }
    let nonce = {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let cookie = format!("{FORM_COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Lax; Max-Age=86400");
    Csrf { token: guest_token(state, ws, &nonce), set_cookie: HeaderValue::from_str(&cookie).ok() }
}

/// Whether `sent` is the token this browser was given.
pub fn csrf_ok(
    state: &WebState,
    ws: WorkspaceId,
    headers: &HeaderMap,
    session: Option<&PortalSession>,
    sent: &str,
) -> bool {
    let expected = match session {
        Some(s) => s.csrf.clone(),
        None => match cookie_value(headers, FORM_COOKIE) {
            Some(nonce) => guest_token(state, ws, nonce),
            None => return false,
        },
    };
    let (a, b) = (expected.as_bytes(), sent.trim().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn csrf_refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this site. Reload the page and try again.",
    )
}

pub fn too_many() -> PageError {
    PageError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts from your network. Wait a minute and try again.",
    )
}

/// A page response with the guest cookie when one was made.
pub fn with_cookie(csrf: &Csrf, page: Markup) -> Response {
    let mut response = page.into_response();
    if let Some(cookie) = &csrf.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// The workspace in a path, or 404.
pub fn workspace(raw: &str) -> PageResult<WorkspaceId> {
    raw.parse::<WorkspaceId>().map_err(|_| PageError::not_found())
}

/// The workspace's public face, or 404.
pub async fn face(state: &WebState, ws: WorkspaceId) -> PageResult<PortalFace> {
    Ok(state.desk.portal_face(ws).await?)
}

/// The honeypot and CSRF fields every form starts with.
pub fn guard_fields(csrf: &str) -> Markup {
    html! {
        input type="hidden" name=(CSRF_FIELD) value=(csrf);
        div.hp aria-hidden="true" {
            label for="hp-website" { "Leave this empty" }
            input id="hp-website" type="text" name=(HONEYPOT_FIELD) tabindex="-1" autocomplete="off";
        }
    }
}
