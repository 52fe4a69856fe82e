//! The knowledge base's read side: every query applies [`KbReader::may_read`] before anything
//! leaves `Desk`.

use super::{KbArticle, KbCategory, KbHit, KbReader, search};
use crate::access::{Actor, ActorKind};
use crate::desk::Desk;
use crate::error::DeskError;
use crate::ids::{KbArticleId, KbCategoryId, WorkspaceId};
use crate::store::{self, RecordQuery};

impl Desk {
    /// Who `reader` is to the knowledge base of `ws`: anonymous without a reader or for a reader
    /// of another workspace; a customer with their organization as stored now; staff otherwise.
    pub async fn kb_reader(&self, ws: WorkspaceId, reader: Option<&Actor>) -> Result<KbReader, DeskError> {
        let Some(actor) = reader.filter(|a| a.workspace_id == ws) else { return Ok(KbReader::Anonymous) };
        let actor = self.resolve(actor).await?;
        Ok(match &actor.kind {
            ActorKind::ServerAdmin | ActorKind::System => KbReader::Staff,
            ActorKind::User(u) if !u.active => KbReader::Anonymous,
            ActorKind::User(u) if u.role.is_staff() => KbReader::Staff,
            ActorKind::User(u) => KbReader::Customer { organization: u.organization },
        })
    }

    async fn readable_articles(
        &self,
        ws: WorkspaceId,
        reader: KbReader,
    ) -> Result<Vec<KbArticle>, DeskError> {
        let all: Vec<KbArticle> = store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        Ok(all.into_iter().filter(|a| reader.may_read(a)).collect())
    }

    /// The categories, ordered by position then name. Readers other than staff see only the
    /// categories holding at least one article they may read.
    pub async fn kb_categories(
        &self,
        ws: WorkspaceId,
        reader: Option<&Actor>,
    ) -> Result<Vec<KbCategory>, DeskError> {
        let who = self.kb_reader(ws, reader).await?;
        let mut categories: Vec<KbCategory> =
            store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        if who != KbReader::Staff {
            let articles = self.readable_articles(ws, who).await?;
            categories.retain(|c| articles.iter().any(|a| a.category == Some(c.id)));
        }
        categories.sort_by(|a, b| a.position.cmp(&b.position).then(a.name.cmp(&b.name)));
        Ok(categories)
    }

    /// The articles the reader may read (of one category when given), by title.
    pub async fn kb_articles(
        &self,
        ws: WorkspaceId,
        reader: Option<&Actor>,
        category: Option<KbCategoryId>,
    ) -> Result<Vec<KbArticle>, DeskError> {
        let who = self.kb_reader(ws, reader).await?;
        let mut articles = self.readable_articles(ws, who).await?;
        if let Some(c) = category {
            articles.retain(|a| a.category == Some(c));
        }
        articles.sort_by(|a, b| a.title.to_lowercase().cmp(&b.title.to_lowercase()).then(a.id.cmp(&b.id)));
        Ok(articles)
    }

    /// One article; an article the reader may not read does not exist for them.
    pub async fn kb_article(
        &self,
        ws: WorkspaceId,
        reader: Option<&Actor>,
        id: KbArticleId,
    ) -> Result<KbArticle, DeskError> {
        let who = self.kb_reader(ws, reader).await?;
        store::get::<KbArticle>(self.store().as_ref(), ws, id.0)
            .await?
            .filter(|a| who.may_read(a))
            .ok_or_else(|| DeskError::not_found(format!("article {id}")))
    }

    /// Full-text search over what the reader may read (see [`search`]).
    pub async fn kb_search(
        &self,
        ws: WorkspaceId,
        reader: Option<&Actor>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<KbHit>, DeskError> {
        if query.chars().count() > 200 {
            return Err(crate::error::Invalid::new("q", "must be at most 200 characters").into());
        }
        let who = self.kb_reader(ws, reader).await?;
        Ok(search(self.readable_articles(ws, who).await?, query, limit.clamp(1, 100)))
    }
}
