//! Knowledge base: agents, managers and administrators write categories and articles;
//! collaborators and customers only read (see `crate::kb::KbReader`).

use serde::Deserialize;

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::error::{DeskError, Invalid};
use crate::event::{EventData, FieldChange};
use crate::hierarchy::{validate_multiline, validate_title};
use crate::ids::{KbArticleId, KbCategoryId, OrganizationId};
use crate::kb::{ArticleBody, KbArticle, KbCategory, KbVisibility};
use crate::people::{Organization, Role};
use crate::store::{self, RecordQuery, Store};

/// Who writes the knowledge base: agents and above, with a token that may write.
pub(crate) fn check_kb_editor(actor: &Actor) -> Result<(), DeskError> {
    let editor = match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.active && matches!(u.role, Role::Admin | Role::Manager | Role::Agent),
    };
    if !editor {
        return Err(DeskError::Forbidden(
            "only agents, managers and administrators write the knowledge base".into(),
        ));
    }
    can(actor, Action::CreateItem, Target::Workspace).into_result()
}

fn change(field: &str, from: impl ToString, to: impl ToString) -> FieldChange {
    FieldChange {
        field: field.into(),
        from: serde_json::Value::String(from.to_string()),
        to: serde_json::Value::String(to.to_string()),
    }
}

fn check_version(expected: Option<i64>, stored: i64, what: &str) -> Result<(), DeskError> {
    match expected {
        Some(v) if v != stored => Err(DeskError::Conflict(format!(
            "the {what} changed since it was read (version {v}, now {stored})"
        ))),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKbCategory {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub position: i32,
}

impl Command for CreateKbCategory {
    type State = ();
    type Output = KbCategory;

    async fn load(&self, _: &Actor, _: &dyn Store) -> Result<(), DeskError> {
        Ok(())
    }

    fn decide(&self, actor: &Actor, (): (), env: &Env<'_>) -> Result<Decided<KbCategory>, DeskError> {
        check_kb_editor(actor)?;
        validate_multiline("description", &self.description, 2_000)?;
        let category = KbCategory {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: validate_title("name", &self.name, 200)?,
            description: self.description.trim().to_string(),
            position: self.position,
            created_at: env.now,
            updated_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::KbCategory,
                id: category.id.0,
                name: category.name.clone(),
            },
        );
        changes.insert(Record::KbCategory(category.clone()));
        Ok(Decided { changes, output: category })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbCategoryPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub position: Option<i32>,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UpdateKbCategory {
    pub category: KbCategoryId,
    pub patch: KbCategoryPatch,
}

impl Command for UpdateKbCategory {
    type State = KbCategory;
    type Output = KbCategory;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<KbCategory, DeskError> {
        load(store, actor.workspace_id, self.category).await
    }

    fn decide(
        &self,
        actor: &Actor,
        old: KbCategory,
        env: &Env<'_>,
    ) -> Result<Decided<KbCategory>, DeskError> {
        check_kb_editor(actor)?;
        check_version(self.patch.version, old.version, "category")?;
        let mut next = KbCategory { updated_at: env.now, version: old.version + 1, ..old.clone() };
        let mut changes_made = Vec::new();
        if let Some(name) = &self.patch.name {
            next.name = validate_title("name", name, 200)?;
            if next.name != old.name {
                changes_made.push(change("name", &old.name, &next.name));
            }
        }
        if let Some(d) = &self.patch.description {
            validate_multiline("description", d, 2_000)?;
            next.description = d.trim().to_string();
            if next.description != old.description {
                changes_made.push(change("description", &old.description, &next.description));
            }
        }
        if let Some(p) = self.patch.position
            && p != old.position
        {
            next.position = p;
            changes_made.push(change("position", old.position, p));
        }
        if changes_made.is_empty() {
            return Ok(Decided { changes: env.changes(actor), output: old });
        }
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::KbCategory, id: old.id.0, changes: changes_made },
        );
        changes.update(Record::KbCategory(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Deletes an empty category: its articles must be moved or deleted first.
#[derive(Debug, Clone)]
pub struct DeleteKbCategory {
    pub category: KbCategoryId,
}

impl Command for DeleteKbCategory {
    type State = (KbCategory, usize);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let category: KbCategory = load(store, actor.workspace_id, self.category).await?;
        let query = RecordQuery { parent: Some(self.category.0), after: None, limit: 1 };
        let articles: Vec<KbArticle> = store::list(store, actor.workspace_id, &query).await?;
        Ok((category, articles.len()))
    }

    fn decide(
        &self,
        actor: &Actor,
        (category, articles): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check_kb_editor(actor)?;
        if articles > 0 {
            return Err(DeskError::Conflict(format!(
                "the category '{}' still holds articles; move or delete them first",
                category.name
            )));
        }
        let mut changes = env.changes(actor);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::KbCategory, id: category.id.0 });
        changes.delete(RecordKind::KbCategory, category.id.0, category.version);
        Ok(Decided { changes, output: () })
    }
}

/// What an article refers to, loaded so the decision can check it.
#[derive(Debug, Clone, Default)]
pub struct ArticleRefs {
    pub category: Option<KbCategory>,
    pub organization: Option<Organization>,
}

async fn load_refs(
    store: &dyn Store,
    actor: &Actor,
    category: Option<KbCategoryId>,
    visibility: Option<KbVisibility>,
) -> Result<ArticleRefs, DeskError> {
    let ws = actor.workspace_id;
    let category = match category {
        Some(c) => store::get::<KbCategory>(store, ws, c.0).await?,
        None => None,
    };
    let organization = match visibility {
        Some(KbVisibility::Organization { organization }) => {
            store::get::<Organization>(store, ws, organization.0).await?
        }
        _ => None,
    };
    Ok(ArticleRefs { category, organization })
}

fn check_category(refs: &ArticleRefs, category: Option<KbCategoryId>) -> Result<(), Invalid> {
    match category {
        Some(c) if refs.category.as_ref().is_none_or(|x| x.id != c) => {
            Err(Invalid::new("category", format!("no knowledge base category {c}")))
        }
        _ => Ok(()),
    }
}

fn check_visibility(refs: &ArticleRefs, visibility: KbVisibility) -> Result<(), Invalid> {
    match visibility {
        KbVisibility::Organization { organization } if !org_known(refs, organization) => {
            Err(Invalid::new("visibility.organization", format!("no organization {organization}")))
        }
        _ => Ok(()),
    }
}

fn org_known(refs: &ArticleRefs, id: OrganizationId) -> bool {
    refs.organization.as_ref().is_some_and(|o| o.id == id)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateArticle {
    pub title: String,
    pub body: ArticleBody,
    #[serde(default)]
    pub category: Option<KbCategoryId>,
    /// Internal unless said otherwise: nothing is shown to customers by accident.
    #[serde(default)]
    pub visibility: KbVisibility,
    #[serde(default)]
    pub published: bool,
}

impl Command for CreateArticle {
    type State = ArticleRefs;
    type Output = KbArticle;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ArticleRefs, DeskError> {
        load_refs(store, actor, self.category, Some(self.visibility)).await
    }

    fn decide(
        &self,
        actor: &Actor,
        refs: ArticleRefs,
        env: &Env<'_>,
    ) -> Result<Decided<KbArticle>, DeskError> {
        check_kb_editor(actor)?;
        check_category(&refs, self.category)?;
        check_visibility(&refs, self.visibility)?;
        let (html, text) = self.body.render()?;
        let article = KbArticle {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            category: self.category,
            title: validate_title("title", &self.title, 300)?,
            html,
            text,
            visibility: self.visibility,
            published: self.published,
            author: actor.user_id(),
            created_at: env.now,
            updated_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::KbArticle,
                id: article.id.0,
                name: article.title.clone(),
            },
        );
        changes.insert(Record::KbArticle(article.clone()));
        Ok(Decided { changes, output: article })
    }
}

/// A change to an article: absent fields stay; `category: null` takes it out of its category.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArticlePatch {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<ArticleBody>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub category: Option<Option<KbCategoryId>>,
    #[serde(default)]
    pub visibility: Option<KbVisibility>,
    #[serde(default)]
    pub published: Option<bool>,
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UpdateArticle {
    pub article: KbArticleId,
    pub patch: ArticlePatch,
}

impl UpdateArticle {
    /// Publishing (or taking back) an article and nothing else.
    pub fn publish(article: KbArticleId, published: bool) -> Self {
        Self { article, patch: ArticlePatch { published: Some(published), ..Default::default() } }
    }
}

impl Command for UpdateArticle {
    type State = (KbArticle, ArticleRefs);
    type Output = KbArticle;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let article: KbArticle = load(store, actor.workspace_id, self.article).await?;
        let refs = load_refs(store, actor, self.patch.category.flatten(), self.patch.visibility).await?;
        Ok((article, refs))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<KbArticle>, DeskError> {
        check_kb_editor(actor)?;
        check_version(self.patch.version, old.version, "article")?;
        let p = &self.patch;
        let mut next = KbArticle { updated_at: env.now, version: old.version + 1, ..old.clone() };
        let mut made = Vec::new();
        if let Some(title) = &p.title {
            next.title = validate_title("title", title, 300)?;
            if next.title != old.title {
                made.push(change("title", &old.title, &next.title));
            }
        }
        if let Some(body) = &p.body {
            (next.html, next.text) = body.render()?;
            if next.html != old.html {
                // The body itself is in the record; the event says that it changed.
                made.push(change("body", "", format!("{} characters", next.text.chars().count())));
            }
        }
        if let Some(category) = p.category {
            check_category(&refs, category)?;
            next.category = category;
            if category != old.category {
                let show = |c: Option<KbCategoryId>| c.map(|c| c.to_string()).unwrap_or_default();
                made.push(change("category", show(old.category), show(category)));
            }
        }
        if let Some(visibility) = p.visibility {
            check_visibility(&refs, visibility)?;
            next.visibility = visibility;
            if visibility != old.visibility {
                made.push(FieldChange {
                    field: "visibility".into(),
                    from: serde_json::to_value(old.visibility).unwrap_or_default(),
                    to: serde_json::to_value(visibility).unwrap_or_default(),
                });
            }
        }
        if let Some(published) = p.published
            && published != old.published
        {
            next.published = published;
            made.push(FieldChange {
                field: "published".into(),
                from: serde_json::Value::Bool(old.published),
                to: serde_json::Value::Bool(published),
            });
        }
        if made.is_empty() {
            return Ok(Decided { changes: env.changes(actor), output: old });
        }
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::KbArticle, id: old.id.0, changes: made },
        );
        changes.update(Record::KbArticle(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct DeleteArticle {
    pub article: KbArticleId,
}

impl Command for DeleteArticle {
    type State = KbArticle;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<KbArticle, DeskError> {
        load(store, actor.workspace_id, self.article).await
    }

    fn decide(&self, actor: &Actor, article: KbArticle, env: &Env<'_>) -> Result<Decided<()>, DeskError> {
        check_kb_editor(actor)?;
        let mut changes = env.changes(actor);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::KbArticle, id: article.id.0 });
        changes.delete(RecordKind::KbArticle, article.id.0, article.version);
        Ok(Decided { changes, output: () })
    }
}
