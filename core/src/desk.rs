//! `Desk` — the application service and the one path every change takes:
//!
//! 1. **load** what the command touches (reads from the [`Store`]);
//! 2. **check** access and 3. **decide**: a pure function of the loaded state, the actor, `now`
//!    and an id source, producing a [`ChangeSet`] and the command's output;
//! 4. **automations**: the workspace's rules run on the change set's events and add their
//!    effects to the same change set (`crate::automation`);
//! 5. **commit** the change set atomically; on a version conflict somebody else changed the same
//!    records between load and commit, so the whole thing runs again from step 1.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::access::{Access, Actor, ActorKind};
use crate::automation::{self, AutomationLimits, Engine};
use crate::change::{ChangeSet, CommitReceipt};
use crate::error::{DeskError, StoreError};
use crate::ids::{Clock, IdSource, ItemId, WorkspaceId};
use crate::item::Item;
use crate::item::ItemType;
use crate::membership::{PortalSettings, ProjectMember};
use crate::people::{Role, User};
use crate::store::{self, RecordQuery, Store, TypedRecord};

/// Operator-tunable limits every entry point shares.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest single attachment, in bytes.
    pub max_attachment_bytes: u64,
    /// How often a command is re-run after a version conflict before giving up with 409.
    pub max_conflict_retries: usize,
    /// Whether webhooks may point at loopback, private and link-local addresses. Off by
    /// default: a webhook is a request the server makes on a user's behalf, and must not reach
    /// into the operator's own network.
    pub allow_private_webhooks: bool,
    /// How far automation rules may cascade and how often they may fire.
    pub automations: AutomationLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 25 * 1024 * 1024,
            max_conflict_retries: 16,
            allow_private_webhooks: false,
            automations: AutomationLimits::default(),
        }
    }
}

/// What a decision may use besides the loaded state: the time, fresh ids and the limits.
pub struct Env<'a> {
    pub now: DateTime<Utc>,
    pub ids: &'a dyn IdSource,
    pub limits: &'a Limits,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("now", &self.now).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Env<'_> {
    pub fn new_id<T: From<uuid::Uuid>>(&self) -> T {
        T::from(self.ids.new_id())
    }

    pub fn changes(&self, actor: &Actor) -> ChangeSet {
        ChangeSet::new(actor.workspace_id, actor.reference(), self.now)
    }
}

/// A decision: what to write, and what to answer once it is written.
#[derive(Debug)]
pub struct Decided<O> {
    pub changes: ChangeSet,
    pub output: O,
}

/// A change request. `load` reads; `decide` is pure (it must not do I/O, read a clock or make up
/// ids other than through `env`), so every command can be tested as a table of
/// (state, input) → change set / error without a database.
pub trait Command: Send + Sync {
    type State: Send;
    type Output: Send;

    fn load(
        &self,
        actor: &Actor,
        store: &dyn Store,
    ) -> impl Future<Output = Result<Self::State, DeskError>> + Send;

    fn decide(
        &self,
        actor: &Actor,
        state: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Self::Output>, DeskError>;

    /// Whether `Desk` runs the workspace's automation rules on this command's events (a command
    /// that runs the rule engine itself says no).
    fn runs_automations() -> bool {
        true
    }

    /// Fills in what only the commit knows (new item numbers).
    fn finish(output: Self::Output, _receipt: &CommitReceipt) -> Self::Output {
        output
    }
}

#[derive(Clone)]
pub struct Desk {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    limits: Limits,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("store", &self.store)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Desk {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ids: Arc<dyn IdSource>, limits: Limits) -> Self {
        Self { store, clock, ids, limits }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn new_id(&self) -> uuid::Uuid {
        self.ids.new_id()
    }

    /// Reads what the actor may reach beyond their role — project memberships and grants, the
    /// portal scope — fresh from the store, so a membership removed a moment ago no longer counts.
    /// Admins, managers, the system and the server administrator need nothing read.
    pub async fn resolve(&self, actor: &Actor) -> Result<Actor, DeskError> {
        let ActorKind::User(user) = &actor.kind else { return Ok(actor.clone()) };
        // Admins and managers may do everything project roles allow; everyone else may hold them.
        if matches!(user.role, Role::Admin | Role::Manager) {
            return Ok(actor.clone());
        }
        let store = self.store.as_ref();
        let ws = actor.workspace_id;
        // The account as stored now: its organization or role may have changed since sign-in.
        let current = store::get::<User>(store, ws, user.id.0).await?.unwrap_or_else(|| user.clone());
        let memberships: Vec<ProjectMember> =
            store::list(store, ws, &RecordQuery::children_of(current.id.0)).await?;
        let (portal, types) = if current.role == Role::Customer {
            let portal = store::get::<PortalSettings>(store, ws, ws.0).await?;
            let types: Vec<ItemType> = store::list(store, ws, &RecordQuery::all()).await?;
            (portal.unwrap_or_else(|| PortalSettings::empty(ws)), types.into_iter().map(|t| t.id).collect())
        } else {
            (PortalSettings::empty(ws), Vec::new())
        };
        let access = Access::of(&current, &memberships, &portal, &types);
        Ok(Actor { kind: ActorKind::User(current), access: Some(access), ..actor.clone() })
    }

    /// Runs a command: load → check → decide → commit, retrying on version conflicts.
    pub async fn execute<C: Command>(&self, actor: &Actor, command: &C) -> Result<C::Output, DeskError> {
        let mut attempt = 0;
        loop {
            let actor = &self.resolve(actor).await?;
            let env = Env { now: self.clock.now(), ids: self.ids.as_ref(), limits: &self.limits };
            let Decided { changes, output } = self.decide(actor, command, &env).await?;
            if changes.is_empty() {
                return Ok(output);
            }
            match self.commit(changes, &mut attempt).await? {
                Some(receipt) => return Ok(C::finish(output, &receipt)),
                None => continue,
            }
        }
    }

    /// Runs `first`, then the command `then` builds from `first`'s output, and commits both
    /// change sets as ONE: either both are written or neither is. On a version conflict both run
    /// again from their loads. `then` reads the store as it was before `first` (the two are
    /// decided before anything is written), so it learns what `first` did only from its output,
    /// and the two must not write the same record ([`ChangeSet::merge`]). Automations run on
    /// each command's events if that command runs them.
    ///
    /// A refusal of `first` (load or decision) is [`ThenError::First`], so a caller can record it;
    /// `then` refusing is [`ThenError::Second`] and the commit failing [`ThenError::Commit`].
    /// Nothing is written in any case.
    ///
    /// `first`'s output is not yet finished ([`Command::finish`]) when `then` sees it: what only
    /// the commit knows (a new item's number) is not in it yet.
    pub async fn execute_then<A, B, F>(
        &self,
        actor: &Actor,
        first: &A,
        then: F,
    ) -> Result<(A::Output, B::Output), ThenError>
    where
        A: Command,
        B: Command,
        F: Fn(&A::Output) -> Result<B, DeskError> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            let actor = &self.resolve(actor).await.map_err(ThenError::First)?;
            let env = Env { now: self.clock.now(), ids: self.ids.as_ref(), limits: &self.limits };
            let Decided { mut changes, output: a } =
                self.decide(actor, first, &env).await.map_err(ThenError::First)?;
            let second = then(&a).map_err(ThenError::Second)?;
            let Decided { changes: later, output: b } =
                self.decide(actor, &second, &env).await.map_err(ThenError::Second)?;
            changes.merge(later).map_err(|e| ThenError::Second(e.into()))?;
            if changes.is_empty() {
                return Ok((a, b));
            }
            match self.commit(changes, &mut attempt).await.map_err(ThenError::Commit)? {
                Some(receipt) => return Ok((A::finish(a, &receipt), B::finish(b, &receipt))),
                None => continue,
            }
        }
    }

    /// Load → check → decide → automations (steps 1–4).
    async fn decide<C: Command>(
        &self,
        actor: &Actor,
        command: &C,
        env: &Env<'_>,
    ) -> Result<Decided<C::Output>, DeskError> {
        let state = command.load(actor, self.store.as_ref()).await?;
        let Decided { mut changes, output } = command.decide(actor, state, env)?;
        if C::runs_automations()
            && let Some(world) =
                automation::load_world(self.store.as_ref(), actor.workspace_id, &changes, &[]).await?
        {
            Engine::new(&world, env, self.limits.automations, &changes).run(&mut changes);
        }
        Ok(Decided { changes, output })
    }

    /// Commits; `None` when a version conflict means running the command again (counted in
    /// `attempt`).
    async fn commit(
        &self,
        changes: ChangeSet,
        attempt: &mut usize,
    ) -> Result<Option<CommitReceipt>, DeskError> {
        match self.store.commit(changes).await {
            Ok(receipt) => Ok(Some(receipt)),
            Err(StoreError::Conflict(_)) if *attempt < self.limits.max_conflict_retries => {
                *attempt += 1;
                Ok(None)
            }
            Err(StoreError::Conflict(what)) => {
                Err(DeskError::Conflict(format!("{what} kept changing; try again")))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Why [`Desk::execute_then`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ThenError {
    /// The first command refused (or could not be loaded).
    #[error(transparent)]
    First(DeskError),
    /// The second command refused, or the two change sets could not be merged.
    #[error(transparent)]
    Second(DeskError),
    /// The commit of both failed (conflicts beyond the retries, storage trouble).
    #[error(transparent)]
    Commit(DeskError),
}

/// How callers name an item: by id, or by its number (`1042` or `#1042`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRef {
    Id(ItemId),
    Number(i64),
}

impl FromStr for ItemRef {
    type Err = crate::error::Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(n) = s.trim_start_matches('#').parse::<i64>()
            && n > 0
        {
            return Ok(ItemRef::Number(n));
        }
        s.parse::<ItemId>().map(ItemRef::Id).map_err(|_| {
            crate::error::Invalid::new("item", format!("'{s}' is neither an item number nor an item id"))
        })
    }
}

impl From<ItemId> for ItemRef {
    fn from(id: ItemId) -> Self {
        ItemRef::Id(id)
    }
}

impl std::fmt::Display for ItemRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemRef::Id(id) => write!(f, "item {id}"),
            ItemRef::Number(n) => write!(f, "item #{n}"),
        }
    }
}

/// Loads an item or answers `NotFound`.
pub async fn load_item(store: &dyn Store, ws: WorkspaceId, item: ItemRef) -> Result<Item, DeskError> {
    let found = match item {
        ItemRef::Id(id) => store::get::<Item>(store, ws, id.as_uuid()).await?,
        ItemRef::Number(n) => store.item_by_number(ws, n).await?,
    };
    found.ok_or_else(|| DeskError::not_found(item))
}

/// Loads a record of a known type or answers `NotFound` naming it.
pub async fn load<T: TypedRecord>(
    store: &dyn Store,
    ws: WorkspaceId,
    id: impl Into<uuid::Uuid>,
) -> Result<T, DeskError> {
    let id = id.into();
    store::get::<T>(store, ws, id)
        .await?
        .ok_or_else(|| DeskError::not_found(format!("{} {id}", T::KIND.label())))
}

/// Loads an optional reference.
pub async fn load_opt<T: TypedRecord>(
    store: &dyn Store,
    ws: WorkspaceId,
    id: Option<impl Into<uuid::Uuid>>,
) -> Result<Option<T>, DeskError> {
    match id {
        Some(id) => load::<T>(store, ws, id).await.map(Some),
        None => Ok(None),
    }
}
