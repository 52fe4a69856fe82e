//! Workspace (tenant) → portfolios (nestable) → projects → folders (nestable) → items.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::ids::{FolderId, PortfolioId, ProjectId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    pub id: PortfolioId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The portfolio this one is nested in.
    pub parent: Option<PortfolioId>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub portfolio: Option<PortfolioId>,
    #[serde(default)]
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Folder {
    pub id: FolderId,
    pub workspace_id: WorkspaceId,
    pub project: ProjectId,
    pub name: String,
    /// The folder this one is nested in (same project).
    pub parent: Option<FolderId>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// A display name: trimmed, 1–200 characters, no control characters.
pub fn validate_title(field: &str, name: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(trimmed.to_string())
}

/// Multi-line text (descriptions, long text fields, message bodies): line breaks and tabs are
/// fine, other control characters (NUL, escape sequences...) are refused so that every backend
/// stores exactly what was accepted.
pub fn validate_multiline(field: &str, text: &str, max: usize) -> Result<(), Invalid> {
    if text.chars().count() > max {
        return Err(Invalid::new(field, format!("must be at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Invalid::new(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(())
}

/// Whether making `new_parent` the parent of `node` would create a cycle, given each node's
/// current parent. Used for nested portfolios, folders and parent items.
pub fn creates_cycle<T: Copy + PartialEq>(
    node: T,
    new_parent: Option<T>,
    parent_of: impl Fn(T) -> Option<T>,
) -> bool {
    let mut cursor = new_parent;
    let mut steps = 0usize;
    while let Some(p) = cursor {
        if p == node {
            return true;
        }
        steps += 1;
        if steps > 10_000 {
            // A pre-existing cycle in stored data: refuse rather than loop.
            return true;
        }
        cursor = parent_of(p);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn cycles_are_detected() {
        // 1 <- 2 <- 3 (3's parent is 2, 2's parent is 1)
        let parents: HashMap<u32, u32> = [(2, 1), (3, 2)].into();
        let parent_of = |n: u32| parents.get(&n).copied();
        assert!(creates_cycle(1, Some(3), parent_of));
        assert!(creates_cycle(1, Some(1), parent_of));
        assert!(!creates_cycle(3, Some(1), parent_of));
        assert!(!creates_cycle(1, None, parent_of));
    }

    #[test]
    fn titles() {
        assert_eq!(validate_title("name", "  Clinics ", 200).unwrap(), "Clinics");
        assert_eq!(validate_title("name", " ", 200).unwrap_err().field, "name");
        assert!(validate_title("name", "a\u{0}b", 200).is_err());
        assert!(validate_title("name", &"x".repeat(201), 200).is_err());
        assert!(validate_multiline("description", "a\n\tb\r\n", 10).is_ok());
        assert_eq!(validate_multiline("description", "a\u{0}b", 10).unwrap_err().field, "description");
        assert!(validate_multiline("description", "abc", 2).unwrap_err().reason.contains("at most 2"));
    }
}
