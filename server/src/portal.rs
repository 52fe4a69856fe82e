//! The web channel in the server: the sign-in port `tandem-intake-web` pages use (the same
//! sessions, passwords, throttles and links as the API's `/auth`), the key that signs guests'
//! CSRF tokens, and the whole application — API and web pages — as one router.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use tandem_core::commands::EndSession;
use tandem_core::{Actor, TokenScope, WorkspaceId};
use tandem_intake_web::{PortalSession, SignInPort, SignInRefused, SignedIn, WebLimits, WebState};

use crate::api::{PasswordOutcome, password_sign_in, redeem_link, send_sign_in_link};
use crate::auth::session_user;
use crate::error::ApiError;
use crate::sign_in::{cleared_cookie, csrf_token, session_cookie, session_secret};
use crate::state::AppState;

/// The server setting holding the key of guests' CSRF tokens.
pub const FORM_KEY_SETTING: &str = "web_form_key";

/// [`SignInPort`] over the server's own sign-in.
#[derive(Debug, Clone)]
pub struct ServerSignIn {
    state: AppState,
}

impl ServerSignIn {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn cookie(&self, headers: &HeaderMap, session: &tandem_core::Session, secret: &str) -> SignedIn {
        let lifetime = session.expires_at - session.created_at;
        SignedIn { set_cookie: session_cookie(secret, lifetime, self.state.sign_in().secure(headers)) }
    }
}

fn refused(e: ApiError) -> SignInRefused {
    match e.status {
        StatusCode::UNAUTHORIZED => SignInRefused::BadLink(e.message),
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => SignInRefused::Invalid(e.message),
        _ => SignInRefused::Unavailable(e.message),
    }
}

#[async_trait::async_trait]
impl SignInPort for ServerSignIn {
    async fn session(&self, ws: WorkspaceId, headers: &HeaderMap) -> Option<PortalSession> {
        let secret = session_secret(headers)?.to_string();
        let (session, user) = session_user(&self.state, &secret).await.ok()?;
        if session.workspace_id != ws {
            return None;
        }
        Some(PortalSession { actor: Actor::user(user, TokenScope::Admin), csrf: csrf_token(&secret) })
    }

    async fn password(
        &self,
        ws: WorkspaceId,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<SignedIn, SignInRefused> {
        let now = self.state.desk().now();
        match password_sign_in(&self.state, Some(ws), email, password.to_string(), ip)
            .await
            .map_err(refused)?
        {
            PasswordOutcome::SignedIn { session, secret, .. } => Ok(self.cookie(headers, &session, &secret)),
            PasswordOutcome::Wrong => Err(SignInRefused::Wrong),
            PasswordOutcome::Locked(until) => {
                Err(SignInRefused::Locked { retry_after_secs: (until - now).num_seconds().max(1) })
            }
        }
    }

    async fn request_link(&self, ws: WorkspaceId, email: &str, path: &str) -> Result<(), SignInRefused> {
        send_sign_in_link(&self.state, Some(ws), email, path).await.map_err(refused)
    }

    async fn use_link(
        &self,
        ws: WorkspaceId,
        secret: &str,
        headers: &HeaderMap,
    ) -> Result<SignedIn, SignInRefused> {
        let (_, session, secret) = redeem_link(&self.state, Some(ws), secret).await.map_err(refused)?;
        Ok(self.cookie(headers, &session, &secret))
    }

    async fn sign_out(&self, headers: &HeaderMap) -> HeaderValue {
        let secure = self.state.sign_in().secure(headers);
        if let Some(secret) = session_secret(headers)
            && let Ok((session, user)) = session_user(&self.state, secret).await
            && let Err(e) = self
                .state
                .desk()
                .execute(&Actor::user(user, TokenScope::Admin), &EndSession { id: session.id })
                .await
        {
            tracing::warn!(error = %e, "cannot end a portal session");
        }
        cleared_cookie(secure)
    }

    async fn default_workspace(&self) -> Option<WorkspaceId> {
        self.state.default_workspace().await.ok().filter(|ws| !ws.0.is_nil())
    }
}

/// The web channel's state over the server's: the form key is a server setting, made once and
/// shared by every instance on the database.
pub async fn web_state(state: &AppState, limits: WebLimits) -> anyhow::Result<WebState> {
    let hex_key = crate::mail::setting_or_new(state.desk().store().as_ref(), FORM_KEY_SETTING, 32).await?;
    let key: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("the stored {FORM_KEY_SETTING} is unusable"))?;
    Ok(WebState::new(state.desk().clone(), Arc::new(ServerSignIn::new(state.clone())), key, limits))
}

/// Everything `tandem serve` answers: the API under `/api/v1` and the web pages (`/portal`,
/// `/forms`).
pub async fn app(state: AppState) -> anyhow::Result<Router> {
    let web = web_state(&state, WebLimits::default())
        .await?
        .with_sessions(std::sync::Arc::new(crate::auth::BrowserSessions(state.clone())));
    Ok(tandem_intake_web::router(web).merge(crate::router(state)))
}
