//! Workspaces, portfolios, projects and folders.

use serde::Deserialize;

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Env, load, load_opt};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::{Folder, Portfolio, Project, Workspace, creates_cycle, validate_title};
use crate::ids::{FolderId, PortfolioId, ProjectId};
use crate::item::{ItemKind, ItemType};
use crate::store::{ItemFilter, ItemQuery, ItemScope, RecordQuery, Store, list};
use crate::workflow::Workflow;

fn created(record: RecordKind, id: impl Into<uuid::Uuid>, name: &str) -> EventData {
    EventData::RecordCreated { record, id: id.into(), name: name.to_string() }
}

fn check(actor: &Actor, action: Action) -> Result<(), DeskError> {
    can(actor, action, Target::Workspace).into_result()
}

/// Creates a tenant with the default item types "Ticket" and "Task", both on the default
/// triage → execution → delivery workflow. Only the server administrator may do this.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    pub name: String,
}

impl Command for CreateWorkspace {
    type State = ();
    type Output = Workspace;

    async fn load(&self, _: &Actor, _: &dyn Store) -> Result<(), DeskError> {
        Ok(())
    }

    fn decide(&self, actor: &Actor, _: (), env: &Env<'_>) -> Result<Decided<Workspace>, DeskError> {
        if actor.kind != ActorKind::ServerAdmin {
            return Err(DeskError::Forbidden("only the server administrator creates workspaces".into()));
        }
        let name = validate_title("name", &self.name, 120)?;
        let workspace = Workspace { id: env.new_id(), name, created_at: env.now, version: 1 };
        let mut changes = crate::change::ChangeSet::new(workspace.id, actor.reference(), env.now);
        changes.insert(Record::Workspace(workspace.clone()));
        changes.event(None, created(RecordKind::Workspace, workspace.id, &workspace.name));
        for (name, kind) in [("Ticket", ItemKind::Ticket), ("Task", ItemKind::Task)] {
            let t = ItemType {
                id: env.new_id(),
                workspace_id: workspace.id,
                name: name.into(),
                kind,
                description: String::new(),
                workflow: Workflow::default_workflow(),
                fields: Vec::new(),
                created_at: env.now,
                version: 1,
            };
            changes.event(None, created(RecordKind::ItemType, t.id, name));
            changes.insert(Record::ItemType(t));
        }
        Ok(Decided { changes, output: workspace })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameWorkspace {
    pub name: String,
}

impl Command for RenameWorkspace {
    type State = Workspace;
    type Output = Workspace;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Workspace, DeskError> {
        load::<Workspace>(store, actor.workspace_id, actor.workspace_id).await
    }

    fn decide(&self, actor: &Actor, old: Workspace, env: &Env<'_>) -> Result<Decided<Workspace>, DeskError> {
        check(actor, Action::AdministerWorkspace)?;
        let next = Workspace {
            name: validate_title("name", &self.name, 120)?,
            version: old.version + 1,
            ..old.clone()
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::Workspace,
                id: old.id.0,
                changes: diff(&old, &next),
            },
        );
        changes.update(Record::Workspace(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

// ---------------------------------------------------------------------------------------------
// Portfolios

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePortfolio {
    pub name: String,
    #[serde(default)]
    pub parent: Option<PortfolioId>,
}

impl Command for CreatePortfolio {
    type State = Option<Portfolio>;
    type Output = Portfolio;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Option<Portfolio>, DeskError> {
        load_opt::<Portfolio>(store, actor.workspace_id, self.parent).await
    }

    fn decide(
        &self,
        actor: &Actor,
        _parent: Option<Portfolio>,
        env: &Env<'_>,
    ) -> Result<Decided<Portfolio>, DeskError> {
        check(actor, Action::ManageStructure)?;
        let p = Portfolio {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: validate_title("name", &self.name, 200)?,
            parent: self.parent,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(None, created(RecordKind::Portfolio, p.id, &p.name));
        changes.insert(Record::Portfolio(p.clone()));
        Ok(Decided { changes, output: p })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub parent: Option<Option<PortfolioId>>,
}

#[derive(Debug, Clone)]
pub struct UpdatePortfolio {
    pub id: PortfolioId,
    pub patch: PortfolioPatch,
}

impl Command for UpdatePortfolio {
    /// The portfolio and all portfolios of the workspace (to detect cycles when re-parenting).
    type State = (Portfolio, Vec<Portfolio>);
    type Output = Portfolio;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let p = load::<Portfolio>(store, actor.workspace_id, self.id).await?;
        let all = if self.patch.parent.is_some() {
            list::<Portfolio>(store, actor.workspace_id, &RecordQuery::all()).await?
        } else {
            Vec::new()
        };
        Ok((p, all))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, all): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Portfolio>, DeskError> {
        check(actor, Action::ManageStructure)?;
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            next.name = validate_title("name", name, 200)?;
        }
        if let Some(parent) = self.patch.parent {
            if let Some(p) = parent
                && !all.iter().any(|x| x.id == p)
            {
                return Err(DeskError::not_found(format!("portfolio {p}")));
            }
            let parent_of = |id: PortfolioId| all.iter().find(|x| x.id == id).and_then(|x| x.parent);
            if creates_cycle(old.id, parent, parent_of) {
                return Err(Invalid::new("parent", "a portfolio cannot be nested inside itself").into());
            }
            next.parent = parent;
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::Portfolio,
                id: old.id.0,
                changes: diff(&old, &next),
            },
        );
        changes.update(Record::Portfolio(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Deletes an empty portfolio (no sub-portfolios, no projects).
#[derive(Debug, Clone)]
pub struct DeletePortfolio {
    pub id: PortfolioId,
}

impl Command for DeletePortfolio {
    /// The portfolio, whether it has child portfolios, whether it has projects.
    type State = (Portfolio, bool, bool);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let p = load::<Portfolio>(store, ws, self.id).await?;
        let one = RecordQuery { parent: Some(self.id.0), after: None, limit: 1 };
        let children = !store.records(ws, RecordKind::Portfolio, &one).await?.is_empty();
        let projects = !store.records(ws, RecordKind::Project, &one).await?.is_empty();
        Ok((p, children, projects))
    }

    fn decide(
        &self,
        actor: &Actor,
        (p, children, projects): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check(actor, Action::ManageStructure)?;
        if children || projects {
            return Err(DeskError::Conflict(format!(
                "portfolio '{}' still holds {}; move or remove them first",
                p.name,
                if children { "portfolios" } else { "projects" }
            )));
        }
        let mut changes = env.changes(actor);
        changes.delete(RecordKind::Portfolio, p.id.0, p.version);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::Portfolio, id: p.id.0 });
        Ok(Decided { changes, output: () })
    }
}

// ---------------------------------------------------------------------------------------------
// Projects

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub portfolio: Option<PortfolioId>,
}

impl Command for CreateProject {
    type State = Option<Portfolio>;
    type Output = Project;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Option<Portfolio>, DeskError> {
        load_opt::<Portfolio>(store, actor.workspace_id, self.portfolio).await
    }

    fn decide(
        &self,
        actor: &Actor,
        _: Option<Portfolio>,
        env: &Env<'_>,
    ) -> Result<Decided<Project>, DeskError> {
        check(actor, Action::ManageStructure)?;
        let p = Project {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name: validate_title("name", &self.name, 200)?,
            description: validate_description(&self.description)?,
            portfolio: self.portfolio,
            archived: false,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(None, created(RecordKind::Project, p.id, &p.name));
        changes.insert(Record::Project(p.clone()));
        Ok(Decided { changes, output: p })
    }
}

pub(crate) fn validate_description(text: &str) -> Result<String, Invalid> {
    crate::hierarchy::validate_multiline("description", text, 100_000)?;
    Ok(text.trim().to_string())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub portfolio: Option<Option<PortfolioId>>,
    #[serde(default)]
    pub archived: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct UpdateProject {
    pub id: ProjectId,
    pub patch: ProjectPatch,
}

impl Command for UpdateProject {
    type State = Project;
    type Output = Project;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Project, DeskError> {
        if let Some(Some(p)) = self.patch.portfolio {
            load::<Portfolio>(store, actor.workspace_id, p).await?;
        }
        load::<Project>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, old: Project, env: &Env<'_>) -> Result<Decided<Project>, DeskError> {
        check(actor, Action::ManageStructure)?;
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            next.name = validate_title("name", name, 200)?;
        }
        if let Some(d) = &self.patch.description {
            next.description = validate_description(d)?;
        }
        if let Some(p) = self.patch.portfolio {
            next.portfolio = p;
        }
        if let Some(a) = self.patch.archived {
            next.archived = a;
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::Project,
                id: old.id.0,
                changes: diff(&old, &next),
            },
        );
        changes.update(Record::Project(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

// ---------------------------------------------------------------------------------------------
// Folders

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFolder {
    pub project: ProjectId,
    pub name: String,
    #[serde(default)]
    pub parent: Option<FolderId>,
}

impl Command for CreateFolder {
    type State = (Project, Option<Folder>);
    type Output = Folder;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let project = load::<Project>(store, actor.workspace_id, self.project).await?;
        let parent = load_opt::<Folder>(store, actor.workspace_id, self.parent).await?;
        Ok((project, parent))
    }

    fn decide(
        &self,
        actor: &Actor,
        (project, parent): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Folder>, DeskError> {
        check(actor, Action::ManageStructure)?;
        if let Some(parent) = &parent
            && parent.project != project.id
        {
            return Err(Invalid::new("parent", "the parent folder belongs to another project").into());
        }
        let f = Folder {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            project: project.id,
            name: validate_title("name", &self.name, 200)?,
            parent: self.parent,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(None, created(RecordKind::Folder, f.id, &f.name));
        changes.insert(Record::Folder(f.clone()));
        Ok(Decided { changes, output: f })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub parent: Option<Option<FolderId>>,
}

#[derive(Debug, Clone)]
pub struct UpdateFolder {
    pub id: FolderId,
    pub patch: FolderPatch,
}

impl Command for UpdateFolder {
    /// The folder and its project's folders.
    type State = (Folder, Vec<Folder>);
    type Output = Folder;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let f = load::<Folder>(store, actor.workspace_id, self.id).await?;
        let siblings =
            list::<Folder>(store, actor.workspace_id, &RecordQuery::children_of(f.project.0)).await?;
        Ok((f, siblings))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, all): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Folder>, DeskError> {
        check(actor, Action::ManageStructure)?;
        let mut next = old.clone();
        if let Some(name) = &self.patch.name {
            next.name = validate_title("name", name, 200)?;
        }
        if let Some(parent) = self.patch.parent {
            if let Some(p) = parent
                && !all.iter().any(|x| x.id == p)
            {
                return Err(Invalid::new("parent", "no such folder in this project").into());
            }
            let parent_of = |id: FolderId| all.iter().find(|x| x.id == id).and_then(|x| x.parent);
            if creates_cycle(old.id, parent, parent_of) {
                return Err(Invalid::new("parent", "a folder cannot be nested inside itself").into());
            }
            next.parent = parent;
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::Folder, id: old.id.0, changes: diff(&old, &next) },
        );
        changes.update(Record::Folder(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Deletes an empty folder (no sub-folders, no items).
#[derive(Debug, Clone)]
pub struct DeleteFolder {
    pub id: FolderId,
}

impl Command for DeleteFolder {
    /// The folder, whether it has sub-folders, whether it has items.
    type State = (Folder, bool, bool);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let f = load::<Folder>(store, ws, self.id).await?;
        let siblings = list::<Folder>(store, ws, &RecordQuery::children_of(f.project.0)).await?;
        let children = siblings.iter().any(|x| x.parent == Some(f.id));
        let mut q = ItemQuery::new(ItemScope::All);
        q.filter = ItemFilter { folder: Some(f.id), ..Default::default() };
        q.limit = 1;
        let items = !store.items(ws, &q).await?.items.is_empty();
        Ok((f, children, items))
    }

    fn decide(
        &self,
        actor: &Actor,
        (f, children, items): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check(actor, Action::ManageStructure)?;
        if children || items {
            return Err(DeskError::Conflict(format!(
                "folder '{}' still holds {}; move them first",
                f.name,
                if children { "folders" } else { "items" }
            )));
        }
        let mut changes = env.changes(actor);
        changes.delete(RecordKind::Folder, f.id.0, f.version);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::Folder, id: f.id.0 });
        Ok(Decided { changes, output: () })
    }
}
