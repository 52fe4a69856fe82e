//! Signing in: a user's password credential, browser sessions, emailed sign-in links (magic
//! links) and the policy for failed attempts. Pure data and rules: hashing passwords (argon2id)
//! and making secrets happen in the server; the core only ever sees a PHC hash string or the
//! SHA-256 of a secret.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{CredentialId, SessionId, SignInLinkId, UserId, WorkspaceId};

/// A user's password, as an argon2id PHC string (`$argon2id$v=19$...`). One per user; its id is
/// the user's id. Never part of any API output.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub id: CredentialId,
    pub workspace_id: WorkspaceId,
    pub user: UserId,
    pub password_phc: String,
    pub changed_at: DateTime<Utc>,
    pub version: i64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("changed_at", &self.changed_at)
            .finish_non_exhaustive()
    }
}

/// How a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    Password,
    MagicLink,
}

/// A browser session: the cookie carries the secret, the store only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub workspace_id: WorkspaceId,
    pub user: UserId,
    pub secret_sha256: String,
    pub method: SignInMethod,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl Session {
    /// Whether the session authenticates at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A single-use, short-lived sign-in link mailed to a customer. Only the SHA-256 of the link's
/// secret is stored; using it starts a [`Session`] in the same commit that marks it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInLink {
    pub id: SignInLinkId,
    pub workspace_id: WorkspaceId,
    pub user: UserId,
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// How long sessions and sign-in links live, and how failed sign-ins are limited.
#[derive(Debug, Clone, PartialEq)]
pub struct SignInPolicy {
    pub session_lifetime: Duration,
    pub link_lifetime: Duration,
    /// Failed sign-ins for one address before it is locked.
    pub account: ThrottlePolicy,
    /// Failed sign-ins from one network address before it is locked (several people may share
    /// one address, so this is looser).
    pub address: ThrottlePolicy,
    /// Sign-in links mailed to one address: past the limit requests are answered as usual but
    /// send nothing, so nobody can flood someone's mailbox.
    pub links: ThrottlePolicy,
}

impl Default for SignInPolicy {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::days(7),
            link_lifetime: Duration::minutes(15),
            account: ThrottlePolicy {
                max_failures: 5,
                window: Duration::minutes(15),
                lockout: Duration::minutes(15),
            },
            address: ThrottlePolicy {
                max_failures: 30,
                window: Duration::minutes(15),
                lockout: Duration::minutes(15),
            },
            links: ThrottlePolicy {
                max_failures: 5,
                window: Duration::minutes(15),
                lockout: Duration::minutes(15),
            },
        }
    }
}

/// `max_failures` failed attempts within `window` lock the key for `lockout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

/// The stored count of failed sign-ins for one key (`account:<email>`, `ip:<address>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures in the current window.
    pub failures: u32,
    pub window_start: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl Throttle {
    /// Until when the key is locked at `now`, if it is.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// The count after one more failure at `now`: a window (or a lockout) that is over starts
    /// afresh; reaching the limit locks. Both stores implement exactly this, atomically.
    pub fn after_failure(
        previous: Option<Throttle>,
        now: DateTime<Utc>,
        policy: &ThrottlePolicy,
    ) -> Throttle {
        let fresh = match previous {
            None => true,
            Some(t) => {
                t.window_start + policy.window <= now || t.locked_until.is_some_and(|until| until <= now)
            }
        };
        let (failures, window_start, locked_until) = match previous {
            Some(t) if !fresh => (t.failures.saturating_add(1), t.window_start, t.locked_until),
            _ => (1, now, None),
        };
        let locked_until = if failures >= policy.max_failures {
            locked_until.or(Some(now + policy.lockout))
        } else {
            locked_until
        };
        Throttle { failures, window_start, locked_until }
    }
}

/// The shortest and longest password accepted, in characters.
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 256;

/// The minimum password policy: long enough, not absurdly long (hashing cost), not the email
/// address or the person's name, not a single repeated character.
pub fn check_password(field: &str, password: &str, email: Option<&str>, name: &str) -> Result<(), Invalid> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(Invalid::new(field, format!("must be at least {PASSWORD_MIN_CHARS} characters")));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(Invalid::new(field, format!("must be at most {PASSWORD_MAX_CHARS} characters")));
    }
    let mut chars_of = password.chars();
    if let Some(first) = chars_of.next()
        && chars_of.all(|c| c == first)
    {
        return Err(Invalid::new(field, "must not be one character repeated"));
    }
    let lower = password.to_lowercase();
    let same = |other: &str| !other.trim().is_empty() && lower == other.trim().to_lowercase();
    if email.is_some_and(same) || same(name) {
        return Err(Invalid::new(field, "must not be your email address or name"));
    }
    Ok(())
}

/// Whether a stored hash is an argon2id PHC string (what the server writes).
pub fn is_argon2id_phc(phc: &str) -> bool {
    phc.starts_with("$argon2id$") && phc.len() < 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn password_policy() {
        let check = |pw: &str| check_password("password", pw, Some("ana@club.example"), "Ana Silva");
        assert!(check("correct horse battery").is_ok());
        for (pw, says) in [
            ("short", "at least 12"),
            ("aaaaaaaaaaaaaaaa", "repeated"),
            ("ANA@club.example", "email address or name"),
            ("ana silva", "at least 12"),
            (&"x".repeat(300), "at most"),
        ] {
            let err = check(pw).unwrap_err();
            assert_eq!(err.field, "password");
            assert!(err.reason.contains(says), "{pw}: {}", err.reason);
        }
    }

    #[test]
    fn throttle_counts_locks_and_forgets() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let policy =
            ThrottlePolicy { max_failures: 3, window: Duration::minutes(10), lockout: Duration::minutes(5) };
        let mut t = Throttle::after_failure(None, t0, &policy);
        assert_eq!((t.failures, t.locked_until), (1, None));
        t = Throttle::after_failure(Some(t), t0 + Duration::minutes(1), &policy);
        t = Throttle::after_failure(Some(t), t0 + Duration::minutes(2), &policy);
        assert_eq!(t.failures, 3);
        let until = t0 + Duration::minutes(7);
        assert_eq!(t.locked_at(t0 + Duration::minutes(3)), Some(until));
        // Failing while locked does not extend the lock.
        t = Throttle::after_failure(Some(t), t0 + Duration::minutes(4), &policy);
        assert_eq!(t.locked_until, Some(until));
        assert_eq!(t.locked_at(until), None, "the lock ends on time");
        // After the lock, counting starts again.
        t = Throttle::after_failure(Some(t), until, &policy);
        assert_eq!((t.failures, t.locked_until, t.window_start), (1, None, until));
        // A window that passed without reaching the limit is forgotten.
        let old = Throttle { failures: 2, window_start: t0, locked_until: None };
        let t = Throttle::after_failure(Some(old), t0 + Duration::minutes(10), &policy);
        assert_eq!(t.failures, 1);
    }
}
