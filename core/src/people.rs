//! Users (staff and customers), teams, API tokens and in-app notifications.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{ItemId, MessageId, NotificationId, OrganizationId, TeamId, TokenId, UserId, WorkspaceId};

/// A person's role in a workspace. Customers are requesters (members, clinic owners, store staff)
/// and may have no login at all, only an email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Agent,
    Collaborator,
    Customer,
}

impl Role {
    pub fn is_staff(self) -> bool {
        self != Role::Customer
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Lowercased; unique within a workspace.
    pub email: Option<String>,
    /// The name used in `@mentions`; unique within a workspace.
    pub handle: Option<String>,
    pub role: Role,
    pub active: bool,
    /// Set when mail to `email` bounced: outbound mail skips the address until it is cleared
    /// (a new address, or mail from the person arriving again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_bounce: Option<EmailBounce>,
    /// The organization a customer belongs to: joined automatically when an organization owns
    /// the domain of their email address, or set by staff. Staff belong to none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationId>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl User {
    /// The domain of the user's email address, lowercase (`clinic.example`).
    pub fn email_domain(&self) -> Option<&str> {
        self.email.as_deref().and_then(email_domain)
    }
}

/// A customer organization: a clinic location, a retail site, a club. Customers whose email
/// address is at one of its domains join it automatically. A domain belongs to at most one
/// organization of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Lowercase, without `@` (`north.clinic.example`).
    pub domains: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// The domain part of a normalised email address.
pub fn email_domain(email: &str) -> Option<&str> {
    email.rsplit_once('@').map(|(_, d)| d).filter(|d| !d.is_empty())
}

/// A mail domain as organizations hold it: lowercase labels of letters, digits and `-`, at least
/// two of them, at most 253 characters.
pub fn validate_domain(field: &str, domain: &str) -> Result<String, Invalid> {
    let d = domain.trim().trim_start_matches('@').trim_end_matches('.').to_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if d.len() > 253 || !d.contains('.') || !labels_ok {
        return Err(Invalid::new(
            field,
            format!("'{}' is not a mail domain (like clinic.example)", domain.trim()),
        ));
    }
    Ok(d)
}

/// Why an address is considered bouncing: the delivery status notification that said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailBounce {
    pub at: DateTime<Utc>,
    /// The DSN status code (`5.1.1`), when the report gave one.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub members: Vec<UserId>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// What a token may do: read only, read and write, or also administer the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    Write,
    Admin,
}

/// An API token. Only the SHA-256 of the secret is stored; the secret is shown once at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub workspace_id: WorkspaceId,
    pub user: UserId,
    pub name: String,
    pub secret_sha256: String,
    pub scope: TokenScope,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NotificationKind {
    /// The user was `@mentioned` in a message.
    Mention { message: MessageId },
}

/// An in-app notification in a user's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: NotificationId,
    pub workspace_id: WorkspaceId,
    pub user: UserId,
    pub item: ItemId,
    pub kind: NotificationKind,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// Normalises an email address for storage and comparison.
pub fn normalise_email(field: &str, email: &str) -> Result<String, Invalid> {
    let e = email.trim().to_lowercase();
    if !crate::fields::is_email(&e) {
        return Err(Invalid::new(field, format!("'{}' is not an email address", email.trim())));
    }
    Ok(e)
}

/// A handle is what follows `@` in a mention: 2–32 of letters, digits, `.`, `_`, `-`.
pub fn validate_handle(field: &str, handle: &str) -> Result<String, Invalid> {
    let h = handle.trim().trim_start_matches('@').to_lowercase();
    let ok_len = (2..=32).contains(&h.chars().count());
    let ok_chars = h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_len || !ok_chars || !h.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(Invalid::new(field, "must be 2 to 32 letters, digits, '.', '_' or '-'"));
    }
    Ok(h)
}
