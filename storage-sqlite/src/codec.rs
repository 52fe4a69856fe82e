//! Records to rows and back. A record is stored whole as JSON (`doc`); the columns beside it are
//! derived from it for filtering and sorting, and rewritten on every put.

use rusqlite::types::Value as Sql;
use serde::de::DeserializeOwned;
use tandem_core::{Record, RecordKind, StoreError};

pub fn corrupt(kind: RecordKind, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("a stored {} cannot be read: {e}", kind.label()))
}

fn from_doc<T: DeserializeOwned>(kind: RecordKind, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| corrupt(kind, e))
}

pub fn decode(kind: RecordKind, doc: &str) -> Result<Record, StoreError> {
    Ok(match kind {
        RecordKind::Workspace => Record::Workspace(from_doc(kind, doc)?),
        RecordKind::Portfolio => Record::Portfolio(from_doc(kind, doc)?),
        RecordKind::Project => Record::Project(from_doc(kind, doc)?),
        RecordKind::Folder => Record::Folder(from_doc(kind, doc)?),
        RecordKind::ItemType => Record::ItemType(from_doc(kind, doc)?),
        RecordKind::User => Record::User(from_doc(kind, doc)?),
        RecordKind::Team => Record::Team(from_doc(kind, doc)?),
        RecordKind::Item => Record::Item(from_doc(kind, doc)?),
        RecordKind::Message => Record::Message(from_doc(kind, doc)?),
        RecordKind::Attachment => Record::Attachment(from_doc(kind, doc)?),
        RecordKind::Link => Record::Link(from_doc(kind, doc)?),
        RecordKind::Notification => Record::Notification(from_doc(kind, doc)?),
        RecordKind::Token => Record::Token(from_doc(kind, doc)?),
        RecordKind::Webhook => Record::Webhook(from_doc(kind, doc)?),
        RecordKind::EventCursor => Record::EventCursor(from_doc(kind, doc)?),
        RecordKind::MailSettings => Record::MailSettings(from_doc(kind, doc)?),
        RecordKind::InboundMail => Record::InboundMail(from_doc(kind, doc)?),
        RecordKind::AutomationRule => Record::AutomationRule(from_doc(kind, doc)?),
        RecordKind::AutomationRun => Record::AutomationRun(from_doc(kind, doc)?),
        RecordKind::AutomationState => Record::AutomationState(from_doc(kind, doc)?),
        RecordKind::Organization => Record::Organization(from_doc(kind, doc)?),
        RecordKind::ProjectMember => Record::ProjectMember(from_doc(kind, doc)?),
        RecordKind::JoinRequest => Record::JoinRequest(from_doc(kind, doc)?),
        RecordKind::PortalSettings => Record::PortalSettings(from_doc(kind, doc)?),
        RecordKind::OutboundMail => Record::OutboundMail(from_doc(kind, doc)?),
        RecordKind::Credential => Record::Credential(from_doc(kind, doc)?),
        RecordKind::Session => Record::Session(from_doc(kind, doc)?),
        RecordKind::SignInLink => Record::SignInLink(from_doc(kind, doc)?),
        RecordKind::Calendar => Record::Calendar(from_doc(kind, doc)?),
        RecordKind::TimeEntry => Record::TimeEntry(from_doc(kind, doc)?),
        RecordKind::View => Record::View(from_doc(kind, doc)?),
        RecordKind::Flow => Record::Flow(from_doc(kind, doc)?),
        RecordKind::FlowRun => Record::FlowRun(from_doc(kind, doc)?),
        RecordKind::FlowPollState => Record::FlowPollState(from_doc(kind, doc)?),
        RecordKind::HookEndpoint => Record::HookEndpoint(from_doc(kind, doc)?),
        RecordKind::Report => Record::Report(from_doc(kind, doc)?),
        RecordKind::PluginInstallation => Record::PluginInstallation(from_doc(kind, doc)?),
        RecordKind::PluginState => Record::PluginState(from_doc(kind, doc)?),
        RecordKind::KbCategory => Record::KbCategory(from_doc(kind, doc)?),
        RecordKind::KbArticle => Record::KbArticle(from_doc(kind, doc)?),
        RecordKind::Chat => Record::Chat(from_doc(kind, doc)?),
        RecordKind::ChatMessage => Record::ChatMessage(from_doc(kind, doc)?),
    })
}

pub fn decode_as<T: DeserializeOwned>(kind: RecordKind, doc: &str) -> Result<T, StoreError> {
    from_doc(kind, doc)
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

fn uuid(u: uuid::Uuid) -> Sql {
    Sql::Blob(u.as_bytes().to_vec())
}

fn opt_uuid(u: Option<uuid::Uuid>) -> Sql {
    u.map_or(Sql::Null, uuid)
}

fn text(s: impl Into<String>) -> Sql {
    Sql::Text(s.into())
}

fn opt_text(s: Option<&str>) -> Sql {
    s.map_or(Sql::Null, |s| Sql::Text(s.to_string()))
}

/// The kind-specific columns of a record, beside `workspace_id, id, parent_id, version, doc`.
pub fn extra_columns(record: &Record) -> Vec<(&'static str, Sql)> {
    match record {
        Record::User(u) => vec![
            ("email", opt_text(u.email.as_deref())),
            ("handle", opt_text(u.handle.as_deref())),
            ("email_domain", opt_text(u.email_domain())),
            ("organization_id", opt_uuid(u.organization.map(|o| o.0))),
        ],
        Record::Item(i) => vec![
            ("number", Sql::Integer(i.number)),
            ("item_type", uuid(i.item_type.0)),
            ("kind", text(i.kind.as_str())),
            ("project_id", opt_uuid(i.project.map(|p| p.0))),
            ("folder_id", opt_uuid(i.folder.map(|f| f.0))),
            ("status", text(i.status.clone())),
            ("category", text(i.category.as_str())),
            ("priority", Sql::Integer(i.priority.rank())),
            ("requester_id", opt_uuid(i.requester.map(|r| r.0))),
            ("created_ms", Sql::Integer(i.created_at.timestamp_millis())),
            ("updated_ms", Sql::Integer(i.updated_at.timestamp_millis())),
        ],
        Record::Message(m) => vec![
            ("internal", Sql::Integer(i64::from(m.visibility == tandem_core::Visibility::Internal))),
            ("created_ms", Sql::Integer(m.created_at.timestamp_millis())),
        ],
        Record::Attachment(a) => vec![("sha256", text(a.sha256.clone()))],
        Record::Link(l) => vec![("other_id", uuid(l.to.0))],
        Record::Token(t) => vec![
            ("secret_sha256", text(t.secret_sha256.clone())),
            ("last_used_ms", t.last_used_at.map_or(Sql::Null, |at| Sql::Integer(at.timestamp_millis()))),
        ],
        Record::Session(s) => vec![("secret_sha256", text(s.secret_sha256.clone()))],
        Record::SignInLink(l) => vec![("secret_sha256", text(l.secret_sha256.clone()))],
        Record::InboundMail(m) => vec![
            ("dedupe_key", text(m.dedupe_key.clone())),
            ("status", text(m.status.as_str())),
            ("received_ms", Sql::Integer(m.received_at.timestamp_millis())),
        ],
        Record::OutboundMail(m) => vec![
            ("recipient", text(m.recipient.clone())),
            ("status", text(m.status.as_str())),
            ("at_ms", Sql::Integer(m.at.timestamp_millis())),
        ],
        Record::TimeEntry(e) => vec![
            ("user_id", uuid(e.user.0)),
            ("status", text(e.status.as_str())),
            ("started_ms", Sql::Integer(e.started_at.timestamp_millis())),
            ("running", Sql::Integer(i64::from(e.running()))),
        ],
        _ => Vec::new(),
    }
}

pub fn uuid_value(u: uuid::Uuid) -> Sql {
    uuid(u)
}

pub fn ws_value(ws: tandem_core::WorkspaceId) -> Sql {
    uuid(ws.0)
}
