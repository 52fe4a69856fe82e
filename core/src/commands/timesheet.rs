//! Timesheets: manual entries, timers (start, pause, resume, stop), edits, submission and review.
//! The rules are written at the top of `timesheet/mod.rs`.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::access::{Action, Actor, ActorKind, check_item};
use crate::change::{ChangeSet, Record, RecordKind};
use crate::desk::{Command, Decided, Env, ItemRef, load, load_item};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::ids::{TimeEntryId, UserId};
use crate::item::Item;
use crate::people::{Role, User};
use crate::store::{Store, TimeEntryQuery};
use crate::timesheet::{
    EntryStatus, MAX_ENTRY_MINUTES, TimeEntry, Timer, overlapping, validate_manual, validate_note,
};

/// The person time is recorded for: the acting user.
fn me(actor: &Actor) -> Result<UserId, DeskError> {
    actor.user_id().ok_or_else(|| DeskError::invalid("user", "name the person whose time this is"))
}

/// Whether the actor may review (approve, reject) and record other people's time: managers and
/// administrators, the server administrator and Tandem itself.
pub(crate) fn manages_time(actor: &Actor) -> bool {
    match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.active && matches!(u.role, Role::Admin | Role::Manager),
    }
}

/// The same person's entries that could overlap `[start, end)`: those starting up to a day
/// earlier, and any whose timer is still open.
async fn neighbours(
    store: &dyn Store,
    actor: &Actor,
    user: UserId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<TimeEntry>, DeskError> {
    let ws = actor.workspace_id;
    let mut near = store
        .time_entries(
            ws,
            &TimeEntryQuery {
                user: Some(user),
                started_from: Some(start - Duration::minutes(MAX_ENTRY_MINUTES)),
                started_before: Some(end),
                ..TimeEntryQuery::all()
            },
        )
        .await?;
    let open = TimeEntryQuery { user: Some(user), running: Some(true), ..TimeEntryQuery::all() };
    for e in store.time_entries(ws, &open).await? {
        if !near.iter().any(|n| n.id == e.id) {
            near.push(e);
        }
    }
    Ok(near)
}

fn check_no_overlap(
    others: &[TimeEntry],
    own: Option<TimeEntryId>,
    start: DateTime<Utc>,
    minutes: i64,
    now: DateTime<Utc>,
) -> Result<(), Invalid> {
    if let Some(o) = overlapping(others, own, start, start + Duration::minutes(minutes), now) {
        let (a, b) = o.span_at(now);
        return Err(Invalid::new(
            "started_at",
            format!(
                "overlaps entry {} ({} to {}); a person's entries must not overlap",
                o.id,
                a.format("%Y-%m-%d %H:%M"),
                b.format("%Y-%m-%d %H:%M")
            ),
        ));
    }
    Ok(())
}

fn created(changes: &mut ChangeSet, entry: &TimeEntry) {
    let name = format!("{} min", entry.minutes);
    changes.event(
        Some(entry.item),
        EventData::RecordCreated { record: RecordKind::TimeEntry, id: entry.id.0, name },
    );
    changes.insert(Record::TimeEntry(entry.clone()));
}

fn updated(changes: &mut ChangeSet, old: &TimeEntry, next: &TimeEntry) {
    let mut field_changes = diff(old, next);
    field_changes.retain(|c| c.field != "updated_at");
    changes.event(
        Some(old.item),
        EventData::RecordUpdated { record: RecordKind::TimeEntry, id: old.id.0, changes: field_changes },
    );
    changes.update(Record::TimeEntry(next.clone()), old.version);
}

fn new_entry(
    actor: &Actor,
    env: &Env<'_>,
    item: &Item,
    user: UserId,
    started_at: DateTime<Utc>,
) -> TimeEntry {
    TimeEntry {
        id: env.new_id(),
        workspace_id: actor.workspace_id,
        item: item.id,
        user,
        started_at,
        minutes: 0,
        note: String::new(),
        timer: None,
        status: EntryStatus::Draft,
        submitted_at: None,
        reviewed_by: None,
        reviewed_at: None,
        rejection_reason: None,
        created_at: env.now,
        updated_at: env.now,
        version: 1,
    }
}

/// Records work done by hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogTime {
    #[serde(skip, default = "unset_item")]
    pub item: ItemRef,
    /// Whose time: the acting user unless a manager records it for someone else.
    #[serde(default)]
    pub user: Option<UserId>,
    pub started_at: DateTime<Utc>,
    pub minutes: i64,
    #[serde(default)]
    pub note: String,
}

fn unset_item() -> ItemRef {
    ItemRef::Number(0)
}

impl Command for LogTime {
    type State = (Item, Option<User>, Vec<TimeEntry>);
    type Output = TimeEntry;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let user = match self.user {
            Some(u) => Some(
                crate::store::get::<User>(store, actor.workspace_id, u.0)
                    .await?
                    .ok_or_else(|| Invalid::new("user", format!("no user {u}")))?,
            ),
            None => None,
        };
        let Some(whose) = self.user.or(actor.user_id()) else { return Ok((item, user, Vec::new())) };
        let end = self.started_at + Duration::minutes(self.minutes.clamp(0, MAX_ENTRY_MINUTES));
        let others = neighbours(store, actor, whose, self.started_at, end).await?;
        Ok((item, user, others))
    }

    fn decide(
        &self,
        actor: &Actor,
        (item, user, others): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<TimeEntry>, DeskError> {
        check_item(actor, Action::EditItem, &item)?;
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("customers do not record time".into()));
        }
        let whose = match (&user, actor.user_id()) {
            (Some(u), me) if Some(u.id) != me => {
                if !manages_time(actor) {
                    return Err(DeskError::Forbidden("only managers record time for other people".into()));
                }
                if !u.active || !u.role.is_staff() {
                    return Err(Invalid::new("user", format!("{} cannot record time", u.name)).into());
                }
                u.id
            }
            (Some(u), _) => u.id,
            (None, _) => me(actor)?,
        };
        validate_manual(self.started_at, self.minutes, env.now)?;
        check_no_overlap(&others, None, self.started_at, self.minutes, env.now)?;
        let mut entry = new_entry(actor, env, &item, whose, self.started_at);
        entry.minutes = self.minutes;
        entry.note = validate_note(&self.note)?;
        let mut changes = env.changes(actor);
        created(&mut changes, &entry);
        Ok(Decided { changes, output: entry })
    }
}

/// Starts measuring the acting user's work on an item. One timer runs per person.
#[derive(Debug, Clone)]
pub struct StartTimer {
    pub item: ItemRef,
    pub note: String,
}

impl Command for StartTimer {
    type State = (Item, Vec<TimeEntry>);
    type Output = TimeEntry;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let running = match actor.user_id() {
            Some(u) => {
                store
                    .time_entries(
                        actor.workspace_id,
                        &TimeEntryQuery { user: Some(u), running: Some(true), ..TimeEntryQuery::all() },
                    )
                    .await?
            }
            None => Vec::new(),
        };
        Ok((item, running))
    }

    fn decide(
        &self,
        actor: &Actor,
        (item, running): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<TimeEntry>, DeskError> {
        check_item(actor, Action::EditItem, &item)?;
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("customers do not record time".into()));
        }
        let user = me(actor)?;
        if let Some(r) = running.first() {
            return Err(DeskError::Conflict(format!(
                "your timer on entry {} is running; pause or stop it before starting another",
                r.id
            )));
        }
        let mut entry = new_entry(actor, env, &item, user, env.now);
        entry.note = validate_note(&self.note)?;
        entry.timer = Some(Timer::Running { since: env.now });
        let mut changes = env.changes(actor);
        created(&mut changes, &entry);
        Ok(Decided { changes, output: entry })
    }
}

/// What to do with a timer.
#[derive(Debug, Clone, PartialEq)]
pub enum TimerAction {
    Pause,
    Resume,
    /// Ends the measurement: the entry becomes an ordinary draft. `minutes` replaces what was
    /// measured (a timer forgotten over lunch); `note` replaces the note.
    Stop {
        minutes: Option<i64>,
        note: Option<String>,
    },
}

/// Pauses, resumes or stops one of the acting user's timers: the named entry, else the running
/// one (for pause and stop) or the most recently paused one (for resume).
#[derive(Debug, Clone)]
pub struct ControlTimer {
    pub entry: Option<TimeEntryId>,
    pub action: TimerAction,
}

impl Command for ControlTimer {
    /// The entry acted on (if found) and the user's running entries.
    type State = (Option<TimeEntry>, Vec<TimeEntry>);
    type Output = TimeEntry;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let Some(user) = actor.user_id() else { return Ok((None, Vec::new())) };
        let running = TimeEntryQuery { user: Some(user), running: Some(true), ..TimeEntryQuery::all() };
        let running = store.time_entries(ws, &running).await?;
        let entry = match (self.entry, &self.action) {
            (Some(id), _) => Some(load::<TimeEntry>(store, ws, id).await?),
            (None, TimerAction::Resume) => {
                let drafts = store
                    .time_entries(
                        ws,
                        &TimeEntryQuery {
                            user: Some(user),
                            statuses: vec![EntryStatus::Draft],
                            running: Some(false),
                            ..TimeEntryQuery::all()
                        },
                    )
                    .await?;
                drafts.into_iter().filter(|e| e.timer == Some(Timer::Paused)).max_by_key(|e| e.updated_at)
            }
            (None, _) => running.first().cloned(),
        };
        Ok((entry, running))
    }

    fn decide(
        &self,
        actor: &Actor,
        (entry, running): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<TimeEntry>, DeskError> {
        let user = me(actor)?;
        let Some(old) = entry else {
            return Err(DeskError::not_found(match self.action {
                TimerAction::Resume => "paused timer",
                _ => "running timer",
            }));
        };
        if old.user != user {
            return Err(DeskError::Forbidden("only the person a timer measures controls it".into()));
        }
        let now = env.now;
        let mut next = TimeEntry { updated_at: now, version: old.version + 1, ..old.clone() };
        let measured = old.minutes_at(now);
        match (&self.action, old.timer) {
            (TimerAction::Pause, Some(Timer::Running { .. })) => {
                next.minutes = measured;
                next.timer = Some(Timer::Paused);
            }
            (TimerAction::Resume, Some(Timer::Paused)) => {
                if let Some(r) = running.iter().find(|r| r.id != old.id) {
                    return Err(DeskError::Conflict(format!(
                        "your timer on entry {} is running; pause or stop it first",
                        r.id
                    )));
                }
                next.timer = Some(Timer::Running { since: now });
            }
            (TimerAction::Stop { minutes, note }, Some(_)) => {
                let minutes = match minutes {
                    Some(m) => *m,
                    None if measured > MAX_ENTRY_MINUTES => {
                        return Err(Invalid::new(
                            "minutes",
                            format!(
                                "the timer ran {} hours; more than a day in one entry is not plausible: stop it with the minutes really worked",
                                measured / 60
                            ),
                        )
                        .into());
                    }
                    // Started and stopped within a minute: a minute of work.
                    None => measured.max(1),
                };
                validate_manual(old.started_at, minutes, now)?;
                next.minutes = minutes;
                next.timer = None;
                if let Some(n) = note {
                    next.note = validate_note(n)?;
                }
            }
            (action, timer) => {
                let state = match timer {
                    Some(Timer::Running { .. }) => "running",
                    Some(Timer::Paused) => "paused",
                    None => "stopped",
                };
                let verb = match action {
                    TimerAction::Pause => "paused",
                    TimerAction::Resume => "resumed",
                    TimerAction::Stop { .. } => "stopped",
                };
                return Err(DeskError::Conflict(format!("entry {} is {state}; it cannot be {verb}", old.id)));
            }
        }
        let mut changes = env.changes(actor);
        updated(&mut changes, &old, &next);
        Ok(Decided { changes, output: next })
    }
}

/// A change to an entry: absent fields stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeEntryPatch {
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub minutes: Option<i64>,
    #[serde(default)]
    pub note: Option<String>,
    /// The version the client last read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i64>,
}

fn check_owner_or_manager(actor: &Actor, entry: &TimeEntry, what: &str) -> Result<(), DeskError> {
    if actor.user_id() == Some(entry.user) || manages_time(actor) {
        return Ok(());
    }
    Err(DeskError::Forbidden(format!("only the person whose time it is, or a manager, {what} an entry")))
}

fn check_editable(entry: &TimeEntry) -> Result<(), DeskError> {
    if entry.status.editable() {
        return Ok(());
    }
    Err(DeskError::Conflict(format!(
        "entry {} is {}; only drafts and rejected entries can be changed",
        entry.id,
        entry.status.as_str()
    )))
}

/// Changes a draft or rejected entry (a rejected one becomes a draft again).
#[derive(Debug, Clone)]
pub struct EditTimeEntry {
    pub entry: TimeEntryId,
    pub patch: TimeEntryPatch,
}

impl Command for EditTimeEntry {
    type State = (TimeEntry, Item, Vec<TimeEntry>);
    type Output = TimeEntry;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let entry = load::<TimeEntry>(store, actor.workspace_id, self.entry).await?;
        let item = load::<Item>(store, actor.workspace_id, entry.item).await?;
        let start = self.patch.started_at.unwrap_or(entry.started_at);
        let minutes = self.patch.minutes.unwrap_or(entry.minutes).clamp(0, MAX_ENTRY_MINUTES);
        let others = neighbours(store, actor, entry.user, start, start + Duration::minutes(minutes)).await?;
        Ok((entry, item, others))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, item, others): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<TimeEntry>, DeskError> {
        check_item(actor, Action::EditItem, &item)?;
        check_owner_or_manager(actor, &old, "changes")?;
        if let Some(v) = self.patch.version
            && v != old.version
        {
            return Err(DeskError::Conflict(format!(
                "entry {} is at version {}, not {v}; reload it and try again",
                old.id, old.version
            )));
        }
        check_editable(&old)?;
        let p = &self.patch;
        if old.timer.is_some() && (p.started_at.is_some() || p.minutes.is_some()) {
            return Err(DeskError::Conflict(format!(
                "entry {} is being measured by a timer; stop it before changing its time",
                old.id
            )));
        }
        let mut next = TimeEntry { updated_at: env.now, version: old.version + 1, ..old.clone() };
        if let Some(s) = p.started_at {
            next.started_at = s;
        }
        if let Some(m) = p.minutes {
            next.minutes = m;
        }
        if let Some(n) = &p.note {
            next.note = validate_note(n)?;
        }
        if p.started_at.is_some() || p.minutes.is_some() {
            validate_manual(next.started_at, next.minutes, env.now)?;
            check_no_overlap(&others, Some(old.id), next.started_at, next.minutes, env.now)?;
        }
        let untouched = TimeEntry { updated_at: env.now, version: old.version + 1, ..old.clone() };
        if next == untouched {
            return Ok(Decided { changes: env.changes(actor), output: old });
        }
        if next.status == EntryStatus::Rejected {
            next.status = EntryStatus::Draft;
        }
        let mut changes = env.changes(actor);
        updated(&mut changes, &old, &next);
        Ok(Decided { changes, output: next })
    }
}

/// Deletes a draft or rejected entry (a running timer included: the measurement is discarded).
#[derive(Debug, Clone)]
pub struct DeleteTimeEntry {
    pub entry: TimeEntryId,
}

impl Command for DeleteTimeEntry {
    type State = (TimeEntry, Item);
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let entry = load::<TimeEntry>(store, actor.workspace_id, self.entry).await?;
        let item = load::<Item>(store, actor.workspace_id, entry.item).await?;
        Ok((entry, item))
    }

    fn decide(
        &self,
        actor: &Actor,
        (entry, item): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check_item(actor, Action::EditItem, &item)?;
        check_owner_or_manager(actor, &entry, "deletes")?;
        check_editable(&entry)?;
        let mut changes = env.changes(actor);
        changes.event(
            Some(entry.item),
            EventData::RecordDeleted { record: RecordKind::TimeEntry, id: entry.id.0 },
        );
        changes.delete(RecordKind::TimeEntry, entry.id.0, entry.version);
        Ok(Decided { changes, output: () })
    }
}

/// Submits the acting user's draft (or rejected) entries for approval, all or none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTime {
    pub entries: Vec<TimeEntryId>,
}

impl Command for SubmitTime {
    type State = Vec<Option<TimeEntry>>;
    type Output = Vec<TimeEntry>;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let mut out = Vec::with_capacity(self.entries.len());
        for id in &self.entries {
            out.push(crate::store::get::<TimeEntry>(store, actor.workspace_id, id.0).await?);
        }
        Ok(out)
    }

    fn decide(
        &self,
        actor: &Actor,
        entries: Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Vec<TimeEntry>>, DeskError> {
        let user = me(actor)?;
        if !actor.is_staff() {
            return Err(DeskError::Forbidden("customers do not record time".into()));
        }
        if self.entries.is_empty() {
            return Err(Invalid::new("entries", "name at least one entry").into());
        }
        if self.entries.len() > 500 {
            return Err(Invalid::new("entries", "submit at most 500 entries at once").into());
        }
        let mut changes = env.changes(actor);
        let mut out = Vec::new();
        for (i, (id, entry)) in self.entries.iter().zip(entries).enumerate() {
            let field = format!("entries[{i}]");
            let Some(old) = entry.filter(|e| e.user == user) else {
                return Err(Invalid::new(field, format!("no entry {id} of yours")).into());
            };
            if old.timer.is_some() {
                return Err(Invalid::new(
                    field,
                    format!("entry {id} is being measured; stop its timer first"),
                )
                .into());
            }
            if !old.status.editable() {
                return Err(
                    Invalid::new(field, format!("entry {id} is {} already", old.status.as_str())).into()
                );
            }
            if out.iter().any(|e: &TimeEntry| e.id == old.id) {
                return Err(Invalid::new(field, format!("entry {id} is named twice")).into());
            }
            let next = TimeEntry {
                status: EntryStatus::Submitted,
                submitted_at: Some(env.now),
                updated_at: env.now,
                version: old.version + 1,
                ..old.clone()
            };
            updated(&mut changes, &old, &next);
            out.push(next);
        }
        Ok(Decided { changes, output: out })
    }
}

/// A manager's answer to a submitted entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Review {
    Approve,
    Reject { reason: String },
}

/// Approves or rejects a submitted entry. Managers and administrators only, never their own.
#[derive(Debug, Clone)]
pub struct ReviewTime {
    pub entry: TimeEntryId,
    pub review: Review,
}

impl Command for ReviewTime {
    type State = (TimeEntry, Item);
    type Output = TimeEntry;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let entry = load::<TimeEntry>(store, actor.workspace_id, self.entry).await?;
        let item = load::<Item>(store, actor.workspace_id, entry.item).await?;
        Ok((entry, item))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, item): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<TimeEntry>, DeskError> {
        check_item(actor, Action::EditItem, &item)?;
        if !manages_time(actor) {
            return Err(DeskError::Forbidden(
                "only managers and administrators approve or reject time".into(),
            ));
        }
        if actor.user_id() == Some(old.user) {
            return Err(DeskError::Forbidden("nobody approves or rejects their own time".into()));
        }
        if old.status != EntryStatus::Submitted {
            return Err(DeskError::Conflict(format!(
                "entry {} is {}; only submitted entries are reviewed",
                old.id,
                old.status.as_str()
            )));
        }
        let mut next = TimeEntry {
            reviewed_by: actor.user_id(),
            reviewed_at: Some(env.now),
            updated_at: env.now,
            version: old.version + 1,
            ..old.clone()
        };
        match &self.review {
            Review::Approve => {
                next.status = EntryStatus::Approved;
                next.rejection_reason = None;
            }
            Review::Reject { reason } => {
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(Invalid::new("reason", "say why the entry is rejected").into());
                }
                if reason.chars().count() > 1000 {
                    return Err(Invalid::new("reason", "must be at most 1000 characters").into());
                }
                next.status = EntryStatus::Rejected;
                next.rejection_reason = Some(reason.to_string());
            }
        }
        let mut changes = env.changes(actor);
        updated(&mut changes, &old, &next);
        Ok(Decided { changes, output: next })
    }
}
