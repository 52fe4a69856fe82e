//! The knowledge base: articles in categories, each with a [`KbVisibility`] and a published flag,
//! and the one rule of who may read what ([`KbReader::may_read`]).
//!
//! Readers: an anonymous visitor sees published public articles; a signed-in customer also sees
//! articles for signed-in customers and those of their own organization; staff see everything,
//! drafts and internal articles included. Collaborators count as staff here: they are colleagues.
//!
//! Search ranks in memory over the articles the reader may see ([`search`]): a workspace's
//! knowledge base is hundreds of articles, not millions, and ranking after the visibility rule
//! means a hit can never leak an article the reader may not open.

mod read;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::{html_to_text, sanitize_html, text_to_html};
use crate::error::Invalid;
use crate::ids::{KbArticleId, KbCategoryId, OrganizationId, UserId, WorkspaceId};

/// Longest article body (characters of sanitised HTML).
pub const MAX_ARTICLE_CHARS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KbCategory {
    pub id: KbCategoryId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Order in the portal's list (lowest first, then by name).
    #[serde(default)]
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Who may read an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KbVisibility {
    /// Anyone, signed in or not (the portal, the widget on a public site).
    Public,
    /// Any signed-in customer of the workspace.
    SignedIn,
    /// Customers of one organization.
    Organization { organization: OrganizationId },
    /// Staff only.
    #[default]
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KbArticle {
    pub id: KbArticleId,
    pub workspace_id: WorkspaceId,
    pub category: Option<KbCategoryId>,
    pub title: String,
    /// Sanitised HTML: safe to render as is.
    pub html: String,
    /// The body as plain text (what search reads).
    pub text: String,
    pub visibility: KbVisibility,
    pub published: bool,
    pub author: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// An article body as submitted: plain text or HTML (sanitised before it is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", content = "content", rename_all = "snake_case")]
pub enum ArticleBody {
    Text(String),
    Html(String),
}

impl ArticleBody {
    /// The stored (sanitised html, text) pair; empty bodies are allowed (a draft in progress).
    pub fn render(&self) -> Result<(String, String), Invalid> {
        let html = match self {
            ArticleBody::Text(t) => text_to_html(t.trim()),
            ArticleBody::Html(h) => sanitize_html(h),
        };
        if html.chars().count() > MAX_ARTICLE_CHARS {
            return Err(Invalid::new("body", format!("must be at most {MAX_ARTICLE_CHARS} characters")));
        }
        let text = html_to_text(&html);
        Ok((html, text))
    }
}

/// Who is reading the knowledge base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KbReader {
    Anonymous,
    Customer { organization: Option<OrganizationId> },
    Staff,
}

impl KbReader {
    pub fn may_read(&self, article: &KbArticle) -> bool {
        match self {
            KbReader::Staff => true,
            KbReader::Anonymous => article.published && article.visibility == KbVisibility::Public,
            KbReader::Customer { organization } => {
                article.published
                    && match article.visibility {
                        KbVisibility::Public | KbVisibility::SignedIn => true,
                        KbVisibility::Organization { organization: o } => *organization == Some(o),
                        KbVisibility::Internal => false,
                    }
            }
        }
    }
}

/// One search hit: the article and its score (higher is better).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbHit {
    pub article: KbArticle,
    pub score: u32,
    /// A short plain-text excerpt around the first match.
    pub excerpt: String,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// How often `term` (lowercase, alphanumeric) starts a word of `text` (lowercased).
fn word_prefix_hits(text: &str, term: &str) -> u32 {
    let hits = text
        .match_indices(term)
        .filter(|(at, _)| text[..*at].chars().next_back().is_none_or(|c| !c.is_alphanumeric()))
        .count();
    u32::try_from(hits).unwrap_or(u32::MAX)
}

/// Ranks `articles` (already limited to what the reader may see) against `query`: every query
/// word must occur in the title or body (as a word prefix); a title match weighs five times a body
/// match. Ties go to the most recently updated article.
pub fn search(articles: Vec<KbArticle>, query: &str, limit: usize) -> Vec<KbHit> {
    let terms = words(query);
    if terms.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<KbHit> = articles
        .into_iter()
        .filter_map(|article| {
            let title = article.title.to_lowercase();
            let body = article.text.to_lowercase();
            let mut score = 0u32;
            for term in &terms {
                let t = word_prefix_hits(&title, term);
                let b = word_prefix_hits(&body, term);
                if t + b == 0 {
                    return None;
                }
                score = score.saturating_add(t.saturating_mul(5).saturating_add(b));
            }
            let excerpt = excerpt(&article.text, &terms[0]);
            Some(KbHit { article, score, excerpt })
        })
        .collect();
    hits.sort_by(|a, b| b.score.cmp(&a.score).then(b.article.updated_at.cmp(&a.article.updated_at)));
    hits.truncate(limit);
    hits
}

fn excerpt(text: &str, term: &str) -> String {
    let lower = text.to_lowercase();
    let chars: Vec<char> = text.chars().collect();
    // Positions by character, so a multibyte text never splits inside a character.
    let at = lower.find(term).map_or(0, |byte| lower[..byte].chars().count());
    let start = at.saturating_sub(60);
    let end = (at + 140).min(chars.len());
    let mut out: String = chars[start.min(chars.len())..end].iter().collect();
    out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if start > 0 {
        out.insert(0, '…');
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(title: &str, text: &str, visibility: KbVisibility, published: bool) -> KbArticle {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        KbArticle {
            id: KbArticleId(uuid::Uuid::from_u128(title.len() as u128)),
            workspace_id: WorkspaceId(uuid::Uuid::from_u128(1)),
            category: None,
            title: title.into(),
            html: text_to_html(text),
            text: text.into(),
            visibility,
            published,
            author: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn readers_see_what_their_visibility_allows() {
        let org = OrganizationId(uuid::Uuid::from_u128(7));
        let other = OrganizationId(uuid::Uuid::from_u128(8));
        let cases = [
            (KbVisibility::Public, true, [true, true, true, true]),
            (KbVisibility::Public, false, [false, false, false, true]),
            (KbVisibility::SignedIn, true, [false, true, true, true]),
            (KbVisibility::Organization { organization: org }, true, [false, false, true, true]),
            (KbVisibility::Internal, true, [false, false, false, true]),
        ];
        let readers = [
            KbReader::Anonymous,
            KbReader::Customer { organization: Some(other) },
            KbReader::Customer { organization: Some(org) },
            KbReader::Staff,
        ];
        for (visibility, published, expected) in cases {
            let a = article("A", "x", visibility, published);
            for (reader, want) in readers.iter().zip(expected) {
                assert_eq!(
                    reader.may_read(&a),
                    want,
                    "{reader:?} reading {visibility:?} published={published}"
                );
            }
        }
    }

    #[test]
    fn search_needs_every_word_and_ranks_titles_first() {
        let hits = search(
            vec![
                article(
                    "Reset your password",
                    "Open the sign-in page and choose reset.",
                    KbVisibility::Public,
                    true,
                ),
                article(
                    "Printer setup",
                    "To reset the printer, hold the button. Password not needed.",
                    KbVisibility::Public,
                    true,
                ),
                article("Pond pumps", "Cleaning filters", KbVisibility::Public, true),
            ],
            "password reset",
            10,
        );
        let titles: Vec<&str> = hits.iter().map(|h| h.article.title.as_str()).collect();
        assert_eq!(titles, ["Reset your password", "Printer setup"]);
        assert!(search(Vec::new(), "  ", 10).is_empty());
        let pumps =
            search(vec![article("Pond pumps", "Cleaning filters", KbVisibility::Public, true)], "filt", 10);
        assert_eq!(pumps.len(), 1, "a word prefix matches");
        assert!(pumps[0].excerpt.contains("filters"));
    }

    #[test]
    fn bodies_are_sanitised() {
        let (html, text) =
            ArticleBody::Html("<p>Hi<script>alert(1)</script><a href=\"javascript:x()\">l</a></p>".into())
                .render()
                .unwrap_or_default();
        assert!(!html.contains("script") && !html.contains("javascript"), "{html}");
        assert!(text.contains("Hi"));
        let (html, _) = ArticleBody::Text("<b>not bold</b>".into()).render().unwrap_or_default();
        assert!(html.contains("&lt;b&gt;"), "{html}");
    }
}
