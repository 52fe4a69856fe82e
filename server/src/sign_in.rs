//! The server's half of signing in: argon2id password hashing (on the blocking pool), session
//! cookies and their CSRF tokens, and where sign-in links point. The rules — who may set a
//! password, when a session or link is valid — are `tandem-core`'s.

use std::sync::OnceLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use tandem_core::SignInPolicy;
use tandem_core::conversation::sha256_hex;

use crate::error::ApiError;
use crate::state::constant_time_eq;

/// The cookie carrying a browser session's secret.
pub const SESSION_COOKIE: &str = "tandem_session";
/// The header a cookie-authenticated request that changes something must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How this server signs people in.
#[derive(Debug, Clone)]
pub struct SignInConfig {
    pub policy: SignInPolicy,
    /// Where people reach this server (`--public-url`): sign-in links point here, and an
    /// `https://` URL makes session cookies `Secure`. Without it no sign-in links are sent: a
    /// link built from the request's `Host` header would let anyone who asks for a link for
    /// someone else point it at their own site.
    pub public_url: Option<url::Url>,
    /// A token's `last_used_at` is written at most this often.
    pub token_touch_every: chrono::Duration,
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            policy: SignInPolicy::default(),
            public_url: None,
            token_touch_every: chrono::Duration::minutes(1),
        }
    }
}

impl SignInConfig {
    /// Whether cookies must be `Secure`: the public URL is `https`, or the request reached the
    /// TLS-terminating proxy in front of this server over TLS.
    pub fn secure(&self, headers: &HeaderMap) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
    }

    /// The sign-in link for a secret, when the public URL is known.
    pub fn magic_link(&self, secret: &str) -> Option<String> {
        self.link_at("/api/v1/auth/magic/", secret)
    }

    /// A sign-in link to a page of this server: the public URL, `path`, then the secret.
    pub fn link_at(&self, path: &str, secret: &str) -> Option<String> {
        let base = self.public_url.as_ref()?;
        let base = base.as_str().trim_end_matches('/');
        Some(format!("{base}{path}{secret}"))
    }
}

fn unavailable(what: &str) -> ApiError {
    tracing::error!("{what}");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot sign in right now; try again")
}

fn salt() -> Result<SaltString, ApiError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|_| unavailable("the random source failed"))?;
    SaltString::encode_b64(&bytes).map_err(|_| unavailable("cannot encode a salt"))
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    let salt = salt()?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| unavailable(&format!("argon2 failed: {e}")))
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes), off the async threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|_| unavailable("the password hashing task failed"))?
}

/// A hash of a password nobody knows, verified against when there is no account, so that a
/// sign-in for an unknown address takes as long as one for a known address.
fn decoy() -> Option<&'static str> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    DECOY.get_or_init(|| crate::api::new_secret().ok().and_then(|s| hash_now(&s).ok())).as_deref()
}

/// Whether `password` matches the stored PHC string; without one, the same work against a
/// decoy, answering false.
pub async fn verify_password(password: String, phc: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let real = phc.is_some();
        let stored = match &phc {
            Some(phc) => phc.as_str(),
            None => match decoy() {
                Some(decoy) => decoy,
                None => return false,
            },
        };
        let Ok(parsed) = PasswordHash::new(stored) else {
            tracing::error!("a stored password hash is not a PHC string");
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
    })
    .await
    .map_err(|_| unavailable("the password check failed"))
}

/// The session secret from the request's cookies, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: derived from its secret, so it is bound to the session and needs
/// no storage, and only a page that was given it (the secret itself is `HttpOnly`) can send it.
pub fn csrf_token(session_secret: &str) -> String {
    sha256_hex(format!("tandem-csrf:{session_secret}").as_bytes())
}

/// Whether the request carries the session's CSRF token.
pub fn csrf_ok(headers: &HeaderMap, session_secret: &str) -> bool {
    let expected = csrf_token(session_secret);
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sent| constant_time_eq(sent.trim().as_bytes(), expected.as_bytes()))
}

/// `Set-Cookie` for a new session: `HttpOnly` (scripts never see it), `SameSite=Lax` (other
/// sites' forms and requests do not carry it), `Secure` behind TLS.
pub fn session_cookie(secret: &str, max_age: chrono::Duration, secure: bool) -> HeaderValue {
    cookie(secret, max_age.num_seconds().max(0), secure)
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    // The value is base64url (or empty): nothing in it needs quoting.
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("tandem_session=; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify_password("correct horse battery".into(), Some(phc.clone())).await.unwrap());
        assert!(!verify_password("correct horse batterY".into(), Some(phc.clone())).await.unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
        assert!(!verify_password("x".into(), Some("not a hash".into())).await.unwrap());
        let again = hash_password("correct horse battery".into()).await.unwrap();
        assert_ne!(phc, again, "every hash has its own salt");
    }

    #[test]
    fn cookies_and_csrf() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; tandem_session=abc123"));
        assert_eq!(session_secret(&headers), Some("abc123"));
        assert!(!csrf_ok(&headers, "abc123"));
        headers.insert(CSRF_HEADER, HeaderValue::from_str(&csrf_token("abc123")).unwrap());
        assert!(csrf_ok(&headers, "abc123"));
        assert!(!csrf_ok(&headers, "abc124"), "a token is bound to its session");
        let set = session_cookie("abc123", chrono::Duration::days(7), true);
        let set = set.to_str().unwrap();
        for part in
            ["tandem_session=abc123", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=604800", "Path=/"]
        {
            assert!(set.contains(part), "{set}");
        }
        assert!(!session_cookie("a", chrono::Duration::days(1), false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn secure_and_links_follow_the_public_url() {
        let mut config = SignInConfig::default();
        let headers = HeaderMap::new();
        assert!(!config.secure(&headers));
        assert_eq!(config.magic_link("s"), None);
        config.public_url = Some("https://desk.example/".parse().unwrap());
        assert!(config.secure(&headers));
        assert_eq!(config.magic_link("s").as_deref(), Some("https://desk.example/api/v1/auth/magic/s"));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(SignInConfig::default().secure(&proxied));
    }
}
