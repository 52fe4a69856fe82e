//! The read side of `Desk`: every query checks access and pushes the reader's visibility down
//! into storage.

use std::collections::HashSet;

use crate::access::{Action, Actor, ActorKind, Target, can, item_scope};
use crate::change::RecordKind;
use crate::conversation::{Attachment, Message, Visibility};
use crate::desk::{Desk, ItemRef, load, load_item};
use crate::error::DeskError;
use crate::event::Event;
use crate::hierarchy::Project;
use crate::hierarchy::Workspace;
use crate::ids::{AttachmentId, ItemId, JobId, OrganizationId, ProjectId};
use crate::item::{Item, ItemLink, ItemType};
use crate::membership::{JoinRequest, PortalSettings, ProjectMember};
use crate::people::{Notification, Organization, User};
use crate::store::{
    self, EventQuery, ItemQuery, ItemScope, Job, JobFilter, Page, RecordQuery, SearchHit, SearchQuery,
    TypedRecord, UserFilter,
};

impl Desk {
    /// The workspaces the actor can enter: all of them for the server administrator.
    pub async fn workspaces(&self, actor: &Actor) -> Result<Vec<Workspace>, DeskError> {
        let all = self.store().workspaces().await?;
        Ok(match actor.kind {
            ActorKind::ServerAdmin => all,
            _ => all.into_iter().filter(|w| w.id == actor.workspace_id).collect(),
        })
    }

    pub async fn workspace(&self, actor: &Actor) -> Result<Workspace, DeskError> {
        load::<Workspace>(self.store().as_ref(), actor.workspace_id, actor.workspace_id).await
    }

    /// The workspace's mail settings (staff); empty settings when none were configured.
    pub async fn mail_settings(&self, actor: &Actor) -> Result<crate::mail::MailSettings, DeskError> {
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("only staff read the mail settings".into()));
        }
        can(actor, Action::ViewDirectory, Target::Workspace).into_result()?;
        let ws = actor.workspace_id;
        Ok(store::get::<crate::mail::MailSettings>(self.store().as_ref(), ws, ws.0)
            .await?
            .unwrap_or_else(|| crate::mail::MailSettings::empty(ws)))
    }

    /// The log of received mail, oldest first (including quarantined and rejected messages).
    pub async fn inbound_mails(
        &self,
        actor: &Actor,
        query: &RecordQuery,
    ) -> Result<Vec<crate::mail::InboundMail>, DeskError> {
        can(actor, Action::ViewAudit, Target::Workspace).into_result()?;
        Ok(store::list(self.store().as_ref(), actor.workspace_id, query).await?)
    }

    /// The log of outbound mail (sent, withheld, failed), newest first.
    pub async fn outbound_mails(
        &self,
        actor: &Actor,
        query: &store::OutboundQuery,
    ) -> Result<Vec<crate::mail::OutboundMail>, DeskError> {
        can(actor, Action::ViewAudit, Target::Workspace).into_result()?;
        Ok(self.store().outbound_mails(actor.workspace_id, query).await?)
    }

    /// Structure and directory records (portfolios, projects, folders, item types, users, teams).
    /// Customers may read item types (to fill in forms), nothing else.
    pub async fn directory<T: TypedRecord>(
        &self,
        actor: &Actor,
        query: &RecordQuery,
    ) -> Result<Vec<T>, DeskError> {
        self.check_directory(actor, T::KIND)?;
        Ok(store::list::<T>(self.store().as_ref(), actor.workspace_id, query).await?)
    }

    pub async fn directory_entry<T: TypedRecord>(
        &self,
        actor: &Actor,
        id: uuid::Uuid,
    ) -> Result<T, DeskError> {
        self.check_directory(actor, T::KIND)?;
        load::<T>(self.store().as_ref(), actor.workspace_id, id).await
    }

    fn check_directory(&self, actor: &Actor, kind: RecordKind) -> Result<(), DeskError> {
        match kind {
            RecordKind::ItemType if !actor.is_staff() => Ok(()),
            RecordKind::Portfolio
            | RecordKind::Project
            | RecordKind::Folder
            | RecordKind::ItemType
            | RecordKind::User
            | RecordKind::Team
            | RecordKind::Organization => {
                if !actor.is_staff() {
                    return Err(DeskError::Forbidden("customers do not read the directory".into()));
                }
                can(actor, Action::ViewDirectory, Target::Workspace).into_result()
            }
            other => {
                Err(DeskError::Forbidden(format!("{} records are not part of the directory", other.label())))
            }
        }
    }

    /// The people in an organization, in id order (staff).
    pub async fn organization_members(
        &self,
        actor: &Actor,
        organization: OrganizationId,
        limit: usize,
    ) -> Result<Vec<User>, DeskError> {
        self.check_directory(actor, RecordKind::Organization)?;
        let ws = actor.workspace_id;
        load::<Organization>(self.store().as_ref(), ws, organization).await?;
        let filter = UserFilter {
            email_domain: None,
            organization: Some(organization),
            limit: limit.clamp(1, 10_000),
        };
        Ok(self.store().users(ws, &filter).await?)
    }

    /// A project's members and grants (staff).
    pub async fn project_members(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<Vec<ProjectMember>, DeskError> {
        self.check_directory(actor, RecordKind::Project)?;
        let ws = actor.workspace_id;
        load::<Project>(self.store().as_ref(), ws, project).await?;
        // Memberships are keyed by user (read on every request); a project's list is the
        // workspace's memberships of that project.
        let all: Vec<ProjectMember> = store::list(self.store().as_ref(), ws, &RecordQuery::all()).await?;
        Ok(all.into_iter().filter(|m| m.project == project).collect())
    }

    /// A project's join requests, oldest first: all of them for whoever manages its members, the
    /// actor's own otherwise.
    pub async fn join_requests(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<Vec<JoinRequest>, DeskError> {
        let actor = &self.resolve(actor).await?;
        let ws = actor.workspace_id;
        load::<Project>(self.store().as_ref(), ws, project).await?;
        let all: Vec<JoinRequest> =
            store::list(self.store().as_ref(), ws, &RecordQuery::children_of(project.0)).await?;
        if can(actor, Action::ManageMembers, Target::Project(project)).allowed {
            return Ok(all);
        }
        let me = actor.user_id();
        Ok(all.into_iter().filter(|r| Some(r.user) == me).collect())
    }

    /// The portal settings (staff); the defaults when none were configured.
    pub async fn portal_settings(&self, actor: &Actor) -> Result<PortalSettings, DeskError> {
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("only staff read the portal settings".into()));
        }
        can(actor, Action::ViewDirectory, Target::Workspace).into_result()?;
        let ws = actor.workspace_id;
        Ok(store::get::<PortalSettings>(self.store().as_ref(), ws, ws.0)
            .await?
            .unwrap_or_else(|| PortalSettings::empty(ws)))
    }

    /// One item, as the actor may see it.
    pub async fn item(&self, actor: &Actor, item: ItemRef) -> Result<Item, DeskError> {
        let actor = &self.resolve(actor).await?;
        let item = load_item(self.store().as_ref(), actor.workspace_id, item).await?;
        self.visible(actor, item).await
    }

    async fn visible(&self, actor: &Actor, item: Item) -> Result<Item, DeskError> {
        // Portal visibility by organization asks who the requester is with.
        let requester_organization = match (&item_scope(actor), item.requester) {
            (ItemScope::Portal(p), Some(r)) if p.organization.is_some() && Some(r) != actor.user_id() => {
                store::get::<User>(self.store().as_ref(), actor.workspace_id, r.0)
                    .await?
                    .and_then(|u| u.organization)
            }
            _ => None,
        };
        let decision = can(actor, Action::ViewItem, Target::ItemOf { item: &item, requester_organization });
        if !decision.allowed {
            // Indistinguishable from a missing item: customers must not learn what exists.
            return Err(DeskError::NotFound(format!("item #{}", item.number)));
        }
        self.redact(actor, item).await
    }

    /// Hides internal-only custom fields from customers.
    async fn redact(&self, actor: &Actor, mut item: Item) -> Result<Item, DeskError> {
        if actor.is_staff() || item.custom.is_empty() {
            return Ok(item);
        }
        let t = load::<ItemType>(self.store().as_ref(), actor.workspace_id, item.item_type).await?;
        item.custom.retain(|key, _| t.field(key).is_some_and(|f| !f.internal));
        Ok(item)
    }

    /// A page of items; `query.scope` is replaced by what the actor may see.
    pub async fn items(&self, actor: &Actor, mut query: ItemQuery) -> Result<Page<Item>, DeskError> {
        let actor = &self.resolve(actor).await?;
        can(actor, Action::ViewItem, Target::Workspace)
            .into_result()
            .or_else(|e| if actor.is_staff() { Err(e) } else { Ok(()) })?;
        query.scope = item_scope(actor);
        query.limit = query.limit.clamp(1, 500);
        let mut page = self.store().items(actor.workspace_id, &query).await?;
        if !actor.is_staff() {
            let mut redacted = Vec::with_capacity(page.items.len());
            for item in page.items {
                redacted.push(self.redact(actor, item).await?);
            }
            page.items = redacted;
        }
        Ok(page)
    }

    pub async fn search(&self, actor: &Actor, text: &str, limit: usize) -> Result<Vec<SearchHit>, DeskError> {
        if text.trim().is_empty() {
            return Err(DeskError::invalid("q", "must not be empty"));
        }
        let actor = &self.resolve(actor).await?;
        let query = SearchQuery {
            text: text.to_string(),
            scope: item_scope(actor),
            include_internal: can(actor, Action::ViewInternal, Target::Workspace).allowed && actor.is_staff(),
            limit: limit.clamp(1, 200),
        };
        let hits = self.store().search(actor.workspace_id, &query).await?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            out.push(SearchHit { item: self.redact(actor, hit.item).await?, snippet: hit.snippet });
        }
        Ok(out)
    }

    fn sees_internal(actor: &Actor, item: &Item) -> bool {
        actor.is_staff() && can(actor, Action::ViewInternal, Target::Item(item)).allowed
    }

    /// The conversation: customers get public messages only.
    pub async fn messages(&self, actor: &Actor, item: ItemRef) -> Result<Vec<Message>, DeskError> {
        let actor = &self.resolve(actor).await?;
        let item = self.item(actor, item).await?;
        let internal = Self::sees_internal(actor, &item);
        Ok(self.store().messages(actor.workspace_id, item.id, internal).await?)
    }

    /// Attachments of an item; customers do not see files attached to internal messages.
    pub async fn attachments(&self, actor: &Actor, item: ItemRef) -> Result<Vec<Attachment>, DeskError> {
        let actor = &self.resolve(actor).await?;
        let item = self.item(actor, item).await?;
        let all: Vec<Attachment> =
            store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::children_of(item.id.0))
                .await?;
        if Self::sees_internal(actor, &item) {
            return Ok(all);
        }
        let public: HashSet<_> = self
            .store()
            .messages(actor.workspace_id, item.id, false)
            .await?
            .into_iter()
            .filter(|m| m.visibility == Visibility::Public)
            .map(|m| m.id)
            .collect();
        Ok(all.into_iter().filter(|a| a.message.is_none_or(|m| public.contains(&m))).collect())
    }

    /// An attachment and its bytes, if the actor may see it.
    pub async fn attachment(
        &self,
        actor: &Actor,
        id: AttachmentId,
    ) -> Result<(Attachment, Vec<u8>), DeskError> {
        let a = load::<Attachment>(self.store().as_ref(), actor.workspace_id, id).await?;
        let visible = self
            .attachments(actor, ItemRef::Id(a.item))
            .await
            .map_err(|_| DeskError::not_found(format!("attachment {id}")))?;
        if !visible.iter().any(|v| v.id == id) {
            return Err(DeskError::not_found(format!("attachment {id}")));
        }
        let bytes = self.store().blob(actor.workspace_id, &a.sha256).await?.ok_or_else(|| {
            DeskError::Store(crate::error::StoreError::Corrupt(format!("blob {} is missing", a.sha256)))
        })?;
        Ok((a, bytes))
    }

    pub async fn links(&self, actor: &Actor, item: ItemRef) -> Result<Vec<ItemLink>, DeskError> {
        let item = self.item(actor, item).await?;
        Ok(self.store().links(actor.workspace_id, item.id).await?)
    }

    /// An item's history: its events in order.
    pub async fn history(&self, actor: &Actor, item: ItemRef) -> Result<Vec<Event>, DeskError> {
        let actor = &self.resolve(actor).await?;
        let item = self.item(actor, item).await?;
        can(actor, Action::ViewHistory, Target::Item(&item)).into_result()?;
        self.item_events(actor.workspace_id, item.id).await
    }

    async fn item_events(&self, ws: crate::ids::WorkspaceId, item: ItemId) -> Result<Vec<Event>, DeskError> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store().events(ws, &EventQuery { after, item: Some(item), limit: 1000 }).await?;
            let Some(last) = page.last() else { return Ok(out) };
            after = last.seq;
            let full = page.len() == 1000;
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// The workspace's event log after `after`.
    pub async fn events(&self, actor: &Actor, after: i64, limit: usize) -> Result<Vec<Event>, DeskError> {
        can(actor, Action::ViewAudit, Target::Workspace).into_result()?;
        Ok(self
            .store()
            .events(actor.workspace_id, &EventQuery { after, item: None, limit: limit.clamp(1, 1000) })
            .await?)
    }

    /// The actor's own notifications, newest first.
    pub async fn notifications(&self, actor: &Actor) -> Result<Vec<Notification>, DeskError> {
        let Some(user) = actor.user_id() else { return Ok(Vec::new()) };
        let mut all: Vec<Notification> =
            store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::children_of(user.0)).await?;
        all.reverse();
        Ok(all)
    }

    /// Jobs of the actor's workspace (all workspaces for the server administrator).
    pub async fn jobs(&self, actor: &Actor, mut filter: JobFilter) -> Result<Vec<Job>, DeskError> {
        can(actor, Action::ViewAudit, Target::Workspace).into_result()?;
        if actor.kind != ActorKind::ServerAdmin {
            filter.workspace = Some(actor.workspace_id);
        }
        filter.limit = filter.limit.clamp(1, 1000);
        Ok(self.store().jobs(&filter).await?)
    }

    /// Puts a dead or done job back in the queue. Workspace administrators may retry their
    /// workspace's jobs, the server administrator any job. The queue is operational state, not
    /// part of the event log, so this is no `Command`.
    pub async fn retry_job(&self, actor: &Actor, id: JobId) -> Result<Job, DeskError> {
        can(actor, Action::AdministerWorkspace, Target::Workspace).into_result()?;
        let mine = |job: &Job| actor.kind == ActorKind::ServerAdmin || job.workspace_id == actor.workspace_id;
        let job = self
            .store()
            .job(id)
            .await?
            .filter(mine)
            .ok_or_else(|| DeskError::not_found(format!("job {id}")))?;
        if !self.store().retry_job(id, self.now()).await? {
            return Err(DeskError::Conflict(format!(
                "job {id} is {}; only dead or done jobs can be retried",
                job.state.as_str()
            )));
        }
        self.store().job(id).await?.ok_or_else(|| DeskError::not_found(format!("job {id}")))
    }
}
