//! Who belongs to which project, and what customers see in the portal.
//!
//! - A [`ProjectMember`] record gives one person a [`ProjectRole`] on one project. For staff it is
//!   membership (collaborators see only the items of projects they belong to); for customers it is
//!   a grant (view, or view and comment, on that project's items).
//! - A [`JoinRequest`] is a user asking to join a project; a workspace manager or a manager of the
//!   project approves (which creates the membership in the same commit) or denies it.
//! - [`PortalSettings`] say which items customers see: their own, their organization's, or all
//!   public ones — per workspace, overridable per item type.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{
    ItemTypeId, JoinRequestId, PortalSettingsId, ProjectId, ProjectMemberId, UserId, WorkspaceId,
};

/// A person's role on one project, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectRole {
    /// Manages the project's members and join requests, and works on its items.
    Manager,
    /// Works on the project's items.
    Member,
    /// Sees the project's items and comments on them (customers: public replies; collaborators:
    /// internal notes).
    Commenter,
    /// Sees the project's items.
    Viewer,
}

impl ProjectRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Manager => "manager",
            ProjectRole::Member => "member",
            ProjectRole::Commenter => "commenter",
            ProjectRole::Viewer => "viewer",
        }
    }

    /// Whether the role may change items (edit, transition, assign), not only see them.
    pub fn works(self) -> bool {
        matches!(self, ProjectRole::Manager | ProjectRole::Member)
    }

    /// Whether the role may write messages on the project's items.
    pub fn comments(self) -> bool {
        self != ProjectRole::Viewer
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectMember {
    /// Always [`ProjectMember::id_for`] of the pair, so two concurrent grants of the same pair
    /// collide in the store instead of creating two records.
    pub id: ProjectMemberId,
    pub workspace_id: WorkspaceId,
    pub project: ProjectId,
    pub user: UserId,
    pub role: ProjectRole,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl ProjectMember {
    /// The id of `user`'s membership of `project`: the first 16 bytes of SHA-256 over both ids.
    pub fn id_for(project: ProjectId, user: UserId) -> ProjectMemberId {
        let mut h = Sha256::new();
        h.update(b"tandem.project-member.");
        h.update(project.0.as_bytes());
        h.update(user.0.as_bytes());
        let digest = h.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        ProjectMemberId(uuid::Uuid::from_bytes(bytes))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinState {
    Pending,
    Approved,
    Denied,
}

/// A user asking to join a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: JoinRequestId,
    pub workspace_id: WorkspaceId,
    pub project: ProjectId,
    pub user: UserId,
    /// Why they want to join, for the approver.
    #[serde(default)]
    pub note: String,
    pub state: JoinState,
    /// The role the membership gets on approval.
    pub role: ProjectRole,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// Which items a customer sees in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalVisibility {
    /// Items they requested or follow.
    #[default]
    Own,
    /// Also the items requested by anyone of their organization.
    Organization,
    /// Every item of the type: the type is a public board (feature requests, known issues).
    /// Internal messages and internal fields stay hidden all the same.
    AllPublic,
}

/// A workspace's portal settings, one record per workspace (its id is the workspace's id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalSettings {
    pub id: PortalSettingsId,
    pub workspace_id: WorkspaceId,
    /// What customers see of item types without an override.
    pub visibility: PortalVisibility,
    /// Per item type.
    #[serde(default)]
    pub by_type: BTreeMap<ItemTypeId, PortalVisibility>,
    /// How the portal and its forms look.
    #[serde(default)]
    pub branding: PortalBranding,
    /// Whether public forms accept requests from people who are not signed in (they give a
    /// name and an email address); otherwise submitting needs a sign-in.
    #[serde(default)]
    pub open_forms: bool,
    /// The item types with a public web form, and how each form is presented.
    #[serde(default)]
    pub forms: BTreeMap<ItemTypeId, WebForm>,
    pub version: i64,
}

/// A workspace's portal look. Colours are `#rgb`/`#rrggbb` only: they are written into CSS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalBranding {
    /// Shown in the portal's header and page titles; the workspace's name when empty.
    #[serde(default)]
    pub name: String,
    /// An `https://` (or `http://`) image shown beside the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Header, buttons and links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_color: Option<String>,
    /// The page background.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
}

/// How one item type's public web form is presented. The fields come from the item type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebForm {
    /// The form's heading; the item type's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A paragraph above the fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intro: Option<String>,
    /// A survey asks only the type's fields (no subject or description); each answer set is
    /// recorded as an item titled after the form.
    #[serde(default)]
    pub survey: bool,
    /// Whether requesters may attach files.
    #[serde(default)]
    pub attachments: bool,
}

fn is_color(s: &str) -> bool {
    let Some(hex) = s.strip_prefix('#') else { return false };
    matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

impl PortalBranding {
    /// Checks the branding; errors name the field under `branding`.
    pub fn validate(&self) -> Result<(), crate::error::Invalid> {
        use crate::error::Invalid;
        let name = self.name.trim();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Invalid::new(
                "branding.name",
                "must be at most 100 characters, without control characters",
            ));
        }
        if let Some(url) = &self.logo_url {
            let lower = url.to_ascii_lowercase();
            let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
                && url.len() <= 2_048
                && url.len() > "https://".len()
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>'));
            if !ok {
                return Err(Invalid::new("branding.logo_url", "must be an http:// or https:// address"));
            }
        }
        for (field, color) in [
            ("branding.primary_color", &self.primary_color),
            ("branding.background_color", &self.background_color),
        ] {
            if let Some(c) = color
                && !is_color(c)
            {
                return Err(Invalid::new(field, "must be a colour like #1a7f5a or #fff"));
            }
        }
        Ok(())
    }
}

impl WebForm {
    /// Checks the form's texts; errors name the field under `at`.
    pub fn validate(&self, at: &str) -> Result<(), crate::error::Invalid> {
        use crate::error::Invalid;
        if let Some(title) = &self.title {
            crate::workflow::validate_name(title).map_err(|r| Invalid::new(format!("{at}.title"), r))?;
        }
        if let Some(intro) = &self.intro {
            crate::hierarchy::validate_multiline(&format!("{at}.intro"), intro, 5_000)?;
        }
        Ok(())
    }
}

impl PortalSettings {
    /// The settings of a workspace that configured nothing: customers see their own items.
    pub fn empty(ws: WorkspaceId) -> Self {
        Self {
            id: PortalSettingsId(ws.0),
            workspace_id: ws,
            visibility: PortalVisibility::Own,
            by_type: BTreeMap::new(),
            branding: PortalBranding::default(),
            open_forms: false,
            forms: BTreeMap::new(),
            version: 0,
        }
    }

    pub fn for_type(&self, t: ItemTypeId) -> PortalVisibility {
        self.by_type.get(&t).copied().unwrap_or(self.visibility)
    }
}
