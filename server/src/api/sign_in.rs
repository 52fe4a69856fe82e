//! Signing in and out: passwords, browser sessions and emailed sign-in links.
//!
//! - `POST /auth/login` {email, password, workspace?} → the session cookie and its CSRF token.
//!   Failures are counted per address and per network address (stored, so every server and a
//!   restarted one see them); past the limit the key is locked for a while. Whether the account
//!   exists, has a password or is disabled, the answer to a failed attempt is the same.
//! - `POST /auth/logout` ends the cookie's session (CSRF token required) and clears the cookie.
//! - `GET /auth/session` says who the caller is and, for a session, its CSRF token.
//! - `POST /users/{id}/password` sets a password: your own (with your current one, if you have
//!   one), or someone else's if you manage people.
//! - `POST /auth/magic-link` {email, workspace?} → always 202; a customer with that address gets a
//!   single-use link, valid for minutes, that `GET /auth/magic/{secret}` turns into a session.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tandem_core::commands::{EndSession, RequestSignInLink, SetPassword, StartSession, UseSignInLink};
use tandem_core::conversation::sha256_hex;
use tandem_core::credentials::check_password;
use tandem_core::people::normalise_email;
use tandem_core::{
    Action, Actor, ActorKind, Credential, DeskError, Record, RecordKind, Session, SessionId, SignInMethod,
    Target, TokenScope, User, Workspace, WorkspaceId, can, store,
};

use super::{Param, new_secret};
use crate::auth::{Caller, Via};
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::sign_in::{self, cleared_cookie, csrf_token, hash_password, session_cookie, verify_password};
use crate::state::AppState;

/// The network address the request came from, when the server knows it (`tandem serve` does).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
    #[serde(default)]
    workspace: Option<WorkspaceId>,
}

#[derive(Debug, Serialize)]
struct SessionView {
    id: SessionId,
    method: SignInMethod,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self { id: s.id, method: s.method, created_at: s.created_at, expires_at: s.expires_at }
    }
}

fn wrong() -> ApiError {
    ApiError::unauthorized("the email address or password is wrong")
}

fn locked(until: DateTime<Utc>, now: DateTime<Utc>) -> Response {
    let seconds = (until - now).num_seconds().max(1);
    let minutes = (seconds + 59) / 60;
    let error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "locked",
        format!("too many failed sign-ins; try again in {minutes} minute(s)"),
    );
    let retry = HeaderValue::from_str(&seconds.to_string()).unwrap_or(HeaderValue::from_static("60"));
    ([(header::RETRY_AFTER, retry)], error).into_response()
}

/// The workspace a sign-in names, or the oldest one.
async fn workspace(s: &AppState, given: Option<WorkspaceId>) -> ApiResult<Option<WorkspaceId>> {
    let ws = match given {
        Some(ws) => ws,
        None => s.default_workspace().await?,
    };
    Ok(store::get::<Workspace>(s.desk().store().as_ref(), ws, ws.0).await?.map(|w| w.id))
}

/// The answer to a sign-in: the cookie, and what the page needs to go on.
fn signed_in(s: &AppState, headers: &HeaderMap, user: User, session: &Session, secret: &str) -> Response {
    let lifetime = session.expires_at - session.created_at;
    let cookie = session_cookie(secret, lifetime, s.sign_in().secure(headers));
    let body = json!({
        "user": user,
        "session": SessionView::from(session),
        "csrf_token": csrf_token(secret),
    });
    ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

/// What a password sign-in came to.
pub(crate) enum PasswordOutcome {
    SignedIn { user: Box<User>, session: Box<Session>, secret: String },
    Wrong,
    Locked(DateTime<Utc>),
}

/// Checks a password for `email` in `ws` (or the oldest workspace), counting failures per
/// address and per network address; shared by `POST /auth/login` and the portal's sign-in page.
pub(crate) async fn password_sign_in(
    s: &AppState,
    ws: Option<WorkspaceId>,
    email: &str,
    password: String,
    ip: Option<IpAddr>,
) -> ApiResult<PasswordOutcome> {
    let desk = s.desk();
    let store = desk.store().as_ref();
    let policy = &s.sign_in().policy;
    let Some(ws) = workspace(s, ws).await? else {
        verify_password(password, None).await?;
        return Ok(PasswordOutcome::Wrong);
    };
    let email = email.trim().to_lowercase();
    let mut keys = vec![(format!("account:{email}"), policy.account)];
    if let Some(ip) = ip {
        keys.push((format!("ip:{ip}"), policy.address));
    }
    let now = desk.now();
    for (key, _) in &keys {
        if let Some(until) = store.login_throttle(ws, key).await?.and_then(|t| t.locked_at(now)) {
            return Ok(PasswordOutcome::Locked(until));
        }
    }
    let user = match normalise_email("email", &email) {
        Ok(email) => store.user_by_email(ws, &email).await?,
        Err(_) => None,
    };
    let phc = match &user {
        Some(u) => store::get::<Credential>(store, ws, u.id.0).await?.map(|c| c.password_phc),
        None => None,
    };
    let matched = verify_password(password, phc).await?;
    let Some(user) = user.filter(|u| matched && u.active) else {
        let mut lock = None;
        for (key, policy) in &keys {
            let counted = store.record_login_failure(ws, key, now, policy).await?;
            lock = lock.max(counted.locked_at(now));
        }
        return Ok(match lock {
            Some(until) => PasswordOutcome::Locked(until),
            None => PasswordOutcome::Wrong,
        });
    };
    store.clear_login_failures(ws, &keys[0].0).await?;
    let (session, secret) = start_session(s, &user).await?;
    Ok(PasswordOutcome::SignedIn { user: Box::new(user), session: Box::new(session), secret })
}

/// A new session for `user`, and its secret.
async fn start_session(s: &AppState, user: &User) -> ApiResult<(Session, String)> {
    let secret = new_secret()?;
    let start = StartSession {
        user: user.id,
        secret_sha256: sha256_hex(secret.as_bytes()),
        lifetime: s.sign_in().policy.session_lifetime,
    };
    let session = s.desk().execute(&Actor::user(user.clone(), TokenScope::Admin), &start).await?;
    Ok((session, secret))
}

pub async fn login(
    State(s): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> ApiResult<Response> {
    let now = s.desk().now();
    match password_sign_in(&s, body.workspace, &body.email, body.password, ip).await? {
        PasswordOutcome::SignedIn { user, session, secret } => {
            Ok(signed_in(&s, &headers, *user, &session, &secret))
        }
        PasswordOutcome::Locked(until) => Ok(locked(until, now)),
        PasswordOutcome::Wrong => Err(wrong()),
    }
}

/// Ends the cookie's session, if it names a live one, and clears the cookie either way.
pub async fn logout(State(s): State<AppState>, mut parts: Parts) -> ApiResult<Response> {
    let secure = s.sign_in().secure(&parts.headers);
    if sign_in::session_secret(&parts.headers).is_some() && parts.headers.get(header::AUTHORIZATION).is_none()
    {
        match Caller::from_request_parts(&mut parts, &s).await {
            Ok(Caller { actor, via: Via::Session { id, .. } }) => {
                s.desk().execute(&actor, &EndSession { id }).await?;
            }
            Ok(_) => {}
            // A cookie for a session that is already over: clearing it is all there is to do.
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {}
            Err(e) => return Err(e),
        }
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cleared_cookie(secure))]).into_response())
}

/// Who the caller is, and for a browser session its expiry and CSRF token.
pub async fn current(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<serde_json::Value>> {
    let user = match &caller.actor.kind {
        ActorKind::User(u) => Some(u.clone()),
        _ => None,
    };
    let mut body = json!({
        "workspace_id": caller.actor.workspace_id,
        "user": user,
        "server_admin": matches!(caller.actor.kind, ActorKind::ServerAdmin),
        "scope": caller.actor.scope,
    });
    match &caller.via {
        Via::Session { id, secret } => {
            let session = store::get::<Session>(s.desk().store().as_ref(), caller.actor.workspace_id, id.0)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the session has ended; sign in again"))?;
            body["via"] = json!("session");
            body["session"] = json!(SessionView::from(&session));
            body["csrf_token"] = json!(csrf_token(secret));
        }
        Via::Token(id) => {
            body["via"] = json!("token");
            body["token"] = json!(id);
        }
        Via::ServerAdmin => body["via"] = json!("server_admin"),
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
    #[serde(default)]
    current_password: Option<String>,
}

pub async fn set_password(
    State(s): State<AppState>,
    caller: Caller,
    id: Param,
    JsonBody(body): JsonBody<NewPassword>,
) -> ApiResult<StatusCode> {
    let desk = s.desk();
    let store = desk.store().as_ref();
    let actor = &caller.actor;
    let target = store::get::<User>(store, actor.workspace_id, id.id("user")?)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user '{}'", id.0)))?;
    let own = actor.user_id() == Some(target.id);
    if !own {
        // Refused before the (deliberately slow) hashing; the command checks again.
        can(actor, Action::ManageUsers, Target::Person { current: Some(&target), new_role: target.role })
            .into_result()?;
    }
    check_password("password", &body.password, target.email.as_deref(), &target.name)?;
    if own && let Some(credential) = store::get::<Credential>(store, actor.workspace_id, target.id.0).await? {
        let current = body
            .current_password
            .ok_or_else(|| ApiError::invalid("current_password", "is needed to change your own password"))?;
        if !verify_password(current, Some(credential.password_phc)).await? {
            if let Some(email) = &target.email {
                let policy = s.sign_in().policy.account;
                store
                    .record_login_failure(
                        actor.workspace_id,
                        &format!("account:{email}"),
                        desk.now(),
                        &policy,
                    )
                    .await?;
            }
            return Err(ApiError::invalid("current_password", "is not your current password"));
        }
    }
    let password_phc = hash_password(body.password).await?;
    let keep_session = match caller.via {
        Via::Session { id, .. } => Some(id),
        _ => None,
    };
    desk.execute(actor, &SetPassword { user: target.id, password_phc, keep_session }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    email: String,
    #[serde(default)]
    workspace: Option<WorkspaceId>,
}

pub async fn request_magic_link(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<LinkRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    send_sign_in_link(&s, body.workspace, &body.email, "/api/v1/auth/magic/").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "if this address belongs to a customer, a sign-in link is on its way"})),
    ))
}

/// Mails a sign-in link to the customer with this address, if there is one: the public URL,
/// `path`, then the secret. The same answer whether or not the address is known.
pub(crate) async fn send_sign_in_link(
    s: &AppState,
    ws: Option<WorkspaceId>,
    email: &str,
    path: &str,
) -> ApiResult<()> {
    let config = s.sign_in();
    if config.public_url.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "sign-in links are off: the server needs its public URL (--public-url) to write them",
        ));
    }
    let email = normalise_email("email", email)?;
    let Some(ws) = workspace(s, ws).await? else { return Ok(()) };
    let desk = s.desk();
    let now = desk.now();
    let counted =
        desk.store().record_login_failure(ws, &format!("link:{email}"), now, &config.policy.links).await?;
    if counted.locked_at(now).is_some() {
        tracing::info!("sign-in link requests for one address are over the limit; sending none");
        return Ok(());
    }
    let secret = new_secret()?;
    let Some(link) = config.link_at(path, &secret) else { return Ok(()) };
    let request = RequestSignInLink {
        email,
        secret_sha256: sha256_hex(secret.as_bytes()),
        link,
        lifetime: config.policy.link_lifetime,
    };
    desk.execute(&Actor::system(ws), &request).await?;
    Ok(())
}

pub async fn use_magic_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    secret: Param,
) -> ApiResult<Response> {
    let (user, session, session_secret) = redeem_link(&s, None, &secret.0).await?;
    Ok(signed_in(&s, &headers, user, &session, &session_secret))
}

/// Turns a sign-in link's secret into a session (of `ws`, when given): the user, the session
/// and its secret.
pub(crate) async fn redeem_link(
    s: &AppState,
    ws: Option<WorkspaceId>,
    secret: &str,
) -> ApiResult<(User, Session, String)> {
    let desk = s.desk();
    let store = desk.store().as_ref();
    let digest = sha256_hex(secret.trim().as_bytes());
    let link = match store.record_by_secret(RecordKind::SignInLink, &digest).await? {
        Some(Record::SignInLink(link)) if ws.is_none_or(|ws| ws == link.workspace_id) => link,
        _ => return Err(ApiError::unauthorized("this sign-in link is not valid; ask for a new one")),
    };
    let session_secret = new_secret()?;
    let command = UseSignInLink {
        id: link.id,
        session_secret_sha256: sha256_hex(session_secret.as_bytes()),
        session_lifetime: s.sign_in().policy.session_lifetime,
    };
    let session = match desk.execute(&Actor::system(link.workspace_id), &command).await {
        Ok(session) => session,
        Err(DeskError::Forbidden(reason)) => {
            return Err(ApiError::unauthorized(format!("{reason}; ask for a new one")));
        }
        Err(e) => return Err(e.into()),
    };
    let user = store::get::<User>(store, link.workspace_id, link.user.0)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account is gone"))?;
    Ok((user, session, session_secret))
}
