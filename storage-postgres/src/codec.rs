//! Records to rows and back, and PostgreSQL errors to what they mean for the caller.
//!
//! A record is stored whole as JSONB (`doc`); the columns beside it are derived from it for
//! filtering and sorting, and rewritten on every put.

use serde::de::DeserializeOwned;
use sqlx_core::error::Error as SqlError;
use tandem_core::{Record, RecordKind, StoreError};
use uuid::Uuid;

pub fn corrupt(kind: RecordKind, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("a stored {} cannot be read: {e}", kind.label()))
}

pub fn decode_as<T: DeserializeOwned>(kind: RecordKind, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| corrupt(kind, e))
}

pub fn decode(kind: RecordKind, doc: &str) -> Result<Record, StoreError> {
    Ok(match kind {
        RecordKind::Workspace => Record::Workspace(decode_as(kind, doc)?),
        RecordKind::Portfolio => Record::Portfolio(decode_as(kind, doc)?),
        RecordKind::Project => Record::Project(decode_as(kind, doc)?),
        RecordKind::Folder => Record::Folder(decode_as(kind, doc)?),
        RecordKind::ItemType => Record::ItemType(decode_as(kind, doc)?),
        RecordKind::User => Record::User(decode_as(kind, doc)?),
        RecordKind::Team => Record::Team(decode_as(kind, doc)?),
        RecordKind::Item => Record::Item(decode_as(kind, doc)?),
        RecordKind::Message => Record::Message(decode_as(kind, doc)?),
        RecordKind::Attachment => Record::Attachment(decode_as(kind, doc)?),
        RecordKind::Link => Record::Link(decode_as(kind, doc)?),
        RecordKind::Notification => Record::Notification(decode_as(kind, doc)?),
        RecordKind::Token => Record::Token(decode_as(kind, doc)?),
        RecordKind::Webhook => Record::Webhook(decode_as(kind, doc)?),
        RecordKind::EventCursor => Record::EventCursor(decode_as(kind, doc)?),
        RecordKind::MailSettings => Record::MailSettings(decode_as(kind, doc)?),
        RecordKind::InboundMail => Record::InboundMail(decode_as(kind, doc)?),
        RecordKind::AutomationRule => Record::AutomationRule(decode_as(kind, doc)?),
        RecordKind::AutomationRun => Record::AutomationRun(decode_as(kind, doc)?),
        RecordKind::AutomationState => Record::AutomationState(decode_as(kind, doc)?),
        RecordKind::Organization => Record::Organization(decode_as(kind, doc)?),
        RecordKind::ProjectMember => Record::ProjectMember(decode_as(kind, doc)?),
        RecordKind::JoinRequest => Record::JoinRequest(decode_as(kind, doc)?),
        RecordKind::PortalSettings => Record::PortalSettings(decode_as(kind, doc)?),
        RecordKind::OutboundMail => Record::OutboundMail(decode_as(kind, doc)?),
        RecordKind::Credential => Record::Credential(decode_as(kind, doc)?),
        RecordKind::Session => Record::Session(decode_as(kind, doc)?),
        RecordKind::SignInLink => Record::SignInLink(decode_as(kind, doc)?),
        RecordKind::Calendar => Record::Calendar(decode_as(kind, doc)?),
        RecordKind::TimeEntry => Record::TimeEntry(decode_as(kind, doc)?),
        RecordKind::View => Record::View(decode_as(kind, doc)?),
        RecordKind::Flow => Record::Flow(decode_as(kind, doc)?),
        RecordKind::FlowRun => Record::FlowRun(decode_as(kind, doc)?),
        RecordKind::FlowPollState => Record::FlowPollState(decode_as(kind, doc)?),
        RecordKind::HookEndpoint => Record::HookEndpoint(decode_as(kind, doc)?),
        RecordKind::Report => Record::Report(decode_as(kind, doc)?),
        RecordKind::PluginInstallation => Record::PluginInstallation(decode_as(kind, doc)?),
        RecordKind::PluginState => Record::PluginState(decode_as(kind, doc)?),
        RecordKind::KbCategory => Record::KbCategory(decode_as(kind, doc)?),
        RecordKind::KbArticle => Record::KbArticle(decode_as(kind, doc)?),
        RecordKind::Chat => Record::Chat(decode_as(kind, doc)?),
        RecordKind::ChatMessage => Record::ChatMessage(decode_as(kind, doc)?),
    })
}

pub fn encode(record: &Record) -> Result<String, StoreError> {
    let json = match record {
        Record::Workspace(r) => serde_json::to_string(r),
        Record::Portfolio(r) => serde_json::to_string(r),
        Record::Project(r) => serde_json::to_string(r),
        Record::Folder(r) => serde_json::to_string(r),
        Record::ItemType(r) => serde_json::to_string(r),
        Record::User(r) => serde_json::to_string(r),
        Record::Team(r) => serde_json::to_string(r),
        Record::Item(r) => serde_json::to_string(r),
        Record::Message(r) => serde_json::to_string(r),
        Record::Attachment(r) => serde_json::to_string(r),
        Record::Link(r) => serde_json::to_string(r),
        Record::Notification(r) => serde_json::to_string(r),
        Record::Token(r) => serde_json::to_string(r),
        Record::Webhook(r) => serde_json::to_string(r),
        Record::EventCursor(r) => serde_json::to_string(r),
        Record::MailSettings(r) => serde_json::to_string(r),
        Record::InboundMail(r) => serde_json::to_string(r),
        Record::AutomationRule(r) => serde_json::to_string(r),
        Record::AutomationRun(r) => serde_json::to_string(r),
        Record::AutomationState(r) => serde_json::to_string(r),
        Record::Organization(r) => serde_json::to_string(r),
        Record::ProjectMember(r) => serde_json::to_string(r),
        Record::JoinRequest(r) => serde_json::to_string(r),
        Record::PortalSettings(r) => serde_json::to_string(r),
        Record::OutboundMail(r) => serde_json::to_string(r),
        Record::Credential(r) => serde_json::to_string(r),
        Record::Session(r) => serde_json::to_string(r),
        Record::SignInLink(r) => serde_json::to_string(r),
        Record::Calendar(r) => serde_json::to_string(r),
        Record::TimeEntry(r) => serde_json::to_string(r),
        Record::View(r) => serde_json::to_string(r),
        Record::Flow(r) => serde_json::to_string(r),
        Record::FlowRun(r) => serde_json::to_string(r),
        Record::FlowPollState(r) => serde_json::to_string(r),
        Record::HookEndpoint(r) => serde_json::to_string(r),
        Record::Report(r) => serde_json::to_string(r),
        Record::PluginInstallation(r) => serde_json::to_string(r),
        Record::PluginState(r) => serde_json::to_string(r),
        Record::KbCategory(r) => serde_json::to_string(r),
        Record::KbArticle(r) => serde_json::to_string(r),
        Record::Chat(r) => serde_json::to_string(r),
        Record::ChatMessage(r) => serde_json::to_string(r),
    };
    json.map_err(|e| StoreError::Corrupt(format!("cannot encode a {}: {e}", record.kind().label())))
}

/// A derived column's value, typed as its column is.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(i64),
    /// A nullable bigint.
    Int64(Option<i64>),
    Bool(bool),
}

fn text(s: impl Into<String>) -> Column {
    Column::Text(Some(s.into()))
}

/// The kind-specific columns of a record, beside `workspace_id, id, parent_id, version, doc`.
pub fn extra_columns(record: &Record) -> Vec<(&'static str, Column)> {
    match record {
        Record::User(u) => vec![
            ("email", Column::Text(u.email.clone())),
            ("handle", Column::Text(u.handle.clone())),
            ("email_domain", Column::Text(u.email_domain().map(str::to_string))),
            ("organization_id", Column::Uuid(u.organization.map(|o| o.0))),
        ],
        Record::Item(i) => vec![
            ("number", Column::Int(i.number)),
            ("item_type", Column::Uuid(Some(i.item_type.0))),
            ("kind", text(i.kind.as_str())),
            ("project_id", Column::Uuid(i.project.map(|p| p.0))),
            ("folder_id", Column::Uuid(i.folder.map(|f| f.0))),
            ("status", text(i.status.clone())),
            ("category", text(i.category.as_str())),
            ("priority", Column::Int(i.priority.rank())),
            ("requester_id", Column::Uuid(i.requester.map(|r| r.0))),
            ("created_ms", Column::Int(i.created_at.timestamp_millis())),
            ("updated_ms", Column::Int(i.updated_at.timestamp_millis())),
        ],
        Record::Message(m) => vec![
            ("internal", Column::Bool(m.visibility == tandem_core::Visibility::Internal)),
            ("created_ms", Column::Int(m.created_at.timestamp_millis())),
        ],
        Record::Attachment(a) => vec![("sha256", text(a.sha256.clone()))],
        Record::Link(l) => vec![("other_id", Column::Uuid(Some(l.to.0)))],
        Record::Token(t) => vec![
            ("secret_sha256", text(t.secret_sha256.clone())),
            ("last_used_ms", Column::Int64(t.last_used_at.map(|at| at.timestamp_millis()))),
        ],
        Record::Session(s) => vec![("secret_sha256", text(s.secret_sha256.clone()))],
        Record::SignInLink(l) => vec![("secret_sha256", text(l.secret_sha256.clone()))],
        Record::InboundMail(m) => vec![
            ("dedupe_key", text(m.dedupe_key.clone())),
            ("status", text(m.status.as_str())),
            ("received_ms", Column::Int(m.received_at.timestamp_millis())),
        ],
        Record::OutboundMail(m) => vec![
            ("recipient", text(m.recipient.clone())),
            ("status", text(m.status.as_str())),
            ("at_ms", Column::Int(m.at.timestamp_millis())),
        ],
        Record::TimeEntry(e) => vec![
            ("user_id", Column::Uuid(Some(e.user.0))),
            ("status", text(e.status.as_str())),
            ("started_ms", Column::Int(e.started_at.timestamp_millis())),
            ("running", Column::Bool(e.running())),
        ],
        _ => Vec::new(),
    }
}

/// A query's limit as PostgreSQL takes it.
pub fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Errors that are not about the data written: the database is unreachable, overloaded, or
/// the transaction lost a race and may simply be retried.
pub fn db_error(e: SqlError) -> StoreError {
    match &e {
        SqlError::Database(d) => match d.code().as_deref() {
            // serialization_failure, deadlock_detected: another transaction won; retrying works.
            Some("40001") | Some("40P01") => {
                StoreError::Conflict(format!("a concurrent change won: {}", d.message()))
            }
            // Text PostgreSQL cannot store (a NUL character).
            Some("22P05") | Some("22021") => {
                StoreError::Unavailable(format!("postgres rejected the text: {}", d.message()))
            }
            _ => StoreError::Unavailable(format!("postgres: {d}")),
        },
        SqlError::PoolTimedOut => {
            StoreError::Unavailable("no PostgreSQL connection became free in time".into())
        }
        SqlError::PoolClosed => StoreError::Unavailable("the store is closed".into()),
        SqlError::ColumnDecode { .. } | SqlError::Decode(_) => StoreError::Corrupt(format!("postgres: {e}")),
        _ => StoreError::Unavailable(format!("postgres: {e}")),
    }
}

/// Maps a unique violation while writing a record: its own primary key means the record exists
/// already (`Conflict`); any other unique key is a `Duplicate`.
pub fn write_error(e: SqlError, kind: RecordKind) -> StoreError {
    if let SqlError::Database(d) = &e
        && d.code().as_deref() == Some("23505")
    {
        let constraint = d.constraint().unwrap_or_default();
        let derived = ["mail_addresses_pkey", "organization_domains_pkey"];
        if constraint.ends_with("_pkey") && !derived.contains(&constraint) {
            return StoreError::Conflict(format!("{} already exists", kind.label()));
        }
        let what = match constraint {
            "users_email" => "a person with this email address".to_string(),
            "users_handle" => "a person with this handle".to_string(),
            "api_tokens_secret" => "a token with this secret".to_string(),
            "mail_addresses_pkey" => "an inbound address another workspace uses".to_string(),
            "organization_domains_pkey" => "an organization with one of these domains".to_string(),
            "inbound_mails_dedupe" => "an inbound mail with this Message-ID or content".to_string(),
            "time_entries_one_running" => "a running timer of this person".to_string(),
            other => format!("a {} with the same key ({other})", kind.label()),
        };
        return StoreError::Duplicate(what);
    }
    db_error(e)
}
