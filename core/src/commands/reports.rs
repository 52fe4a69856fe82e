//! Scheduled reports: create, change, delete; queue a due occurrence (the scheduler, as Tandem);
//! deliver a rendered occurrence (the `report.send` job, as Tandem). Rules in `crate::reports`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{NewJob, Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::validate_title;
use crate::ids::{ReportId, ViewId};
use crate::mail::{MAIL_SEND_JOB, MailAttachment, MailJob};
use crate::people::{Role, Team, TokenScope, User};
use crate::reports::{
    REPORT_SEND_JOB, Recipient, ReportFormat, ReportJob, ReportSchedule, ScheduledReport, validate_recipients,
};
use crate::store::{self, RecordQuery, Store};
use crate::views::SavedView;

/// The template report mail is rendered from.
pub const REPORT_TEMPLATE: &str = "scheduled_report";

/// Keeping a report is writing: a read-only token may read reports, not make or change them.
fn check_writer(actor: &Actor) -> Result<(), DeskError> {
    can(actor, Action::ViewItem, Target::Workspace).into_result()?;
    if actor.scope < TokenScope::Write {
        return Err(DeskError::Forbidden(format!(
            "this token's scope is {:?}; keeping reports needs {:?}",
            actor.scope,
            TokenScope::Write
        )));
    }
    Ok(())
}

/// Any staff member (collaborators too: a report shows only what its owner may see) makes
/// reports, as a person.
fn check_maker(actor: &Actor) -> Result<crate::ids::UserId, DeskError> {
    if !actor.is_staff() {
        return Err(DeskError::Forbidden("customers do not schedule reports".into()));
    }
    check_writer(actor)?;
    actor.user_id().ok_or_else(|| {
        DeskError::Forbidden(
            "a report runs with its owner's permissions: a person makes it, not a token of the server".into(),
        )
    })
}

fn report_admin(actor: &Actor) -> bool {
    match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.active && u.role == Role::Admin,
    }
}

/// Who may change, send or delete a report: its owner, or an administrator.
fn check_editor(actor: &Actor, report: &ScheduledReport) -> Result<(), DeskError> {
    if !actor.is_staff() {
        return Err(DeskError::NotFound(format!("report {}", report.id)));
    }
    check_writer(actor)?;
    if actor.user_id() == Some(report.owner) || report_admin(actor) {
        return Ok(());
    }
    // Others do not see it (as with `Desk::report`): the same answer as for no report at all.
    Err(DeskError::NotFound(format!("report {}", report.id)))
}

/// The owner must see the view: a report shows nothing its owner could not open.
fn check_view(view: &SavedView, owner: &User, teams: &[Team]) -> Result<(), Invalid> {
    if owner.role == Role::Admin || view.visible_to(Some(owner.id), teams) {
        Ok(())
    } else {
        Err(Invalid::new("view", format!("no view {}", view.id)))
    }
}

fn check_user_recipients(recipients: &[Recipient], users: &[User]) -> Result<(), Invalid> {
    for (i, r) in recipients.iter().enumerate() {
        if let Recipient::User(id) = r {
            match users.iter().find(|u| u.id == *id) {
                Some(u) if !u.active => {
                    return Err(Invalid::new(format!("recipients[{i}]"), format!("{} is disabled", u.name)));
                }
                Some(u) if u.email.is_none() => {
                    return Err(Invalid::new(
                        format!("recipients[{i}]"),
                        format!("{} has no email address", u.name),
                    ));
                }
                Some(_) => {}
                None => return Err(Invalid::new(format!("recipients[{i}]"), format!("no user {id}"))),
            }
        }
    }
    Ok(())
}

async fn load_people(
    store: &dyn Store,
    actor: &Actor,
    recipients: &[Recipient],
) -> Result<Vec<User>, DeskError> {
    let mut users = Vec::new();
    for r in recipients {
        if let Recipient::User(id) = r
            && let Some(u) = store::get::<User>(store, actor.workspace_id, id.0).await?
        {
            users.push(u);
        }
    }
    Ok(users)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateReport {
    pub name: String,
    pub view: ViewId,
    pub schedule: ReportSchedule,
    #[serde(default)]
    pub format: ReportFormat,
    pub recipients: Vec<Recipient>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// What creating or changing a report reads: the view, the workspace's teams, the people named.
#[derive(Debug, Clone)]
pub struct ReportRefs {
    view: Option<SavedView>,
    teams: Vec<Team>,
    users: Vec<User>,
}

impl Command for CreateReport {
    type State = ReportRefs;
    type Output = ScheduledReport;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ReportRefs, DeskError> {
        let ws = actor.workspace_id;
        let view = store::get::<SavedView>(store, ws, self.view.0).await?;
        let teams = store::list(store, ws, &RecordQuery::all()).await?;
        let mut users = load_people(store, actor, &self.recipients).await?;
        if let Some(me) = actor.user_id()
            && let Some(u) = store::get::<User>(store, ws, me.0).await?
        {
            users.push(u);
        }
        Ok(ReportRefs { view, teams, users })
    }

    fn decide(
        &self,
        actor: &Actor,
        refs: ReportRefs,
        env: &Env<'_>,
    ) -> Result<Decided<ScheduledReport>, DeskError> {
        let owner_id = check_maker(actor)?;
        let owner = refs
            .users
            .iter()
            .find(|u| u.id == owner_id)
            .ok_or_else(|| DeskError::not_found("the acting user"))?;
        let view =
            refs.view.as_ref().ok_or_else(|| Invalid::new("view", format!("no view {}", self.view)))?;
        check_view(view, owner, &refs.teams)?;
        let name = validate_title("name", &self.name, 200)?;
        self.schedule.validate()?;
        let recipients = validate_recipients(&self.recipients)?;
        check_user_recipients(&recipients, &refs.users)?;
        let report = ScheduledReport {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            name,
            owner: owner_id,
            view: view.id,
            schedule: self.schedule.clone(),
            format: self.format,
            recipients,
            enabled: self.enabled,
            next_run: self.schedule.next_after(env.now)?,
            last_run: None,
            created_at: env.now,
            updated_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::Report,
                id: report.id.0,
                name: report.name.clone(),
            },
        );
        changes.insert(Record::Report(report.clone()));
        Ok(Decided { changes, output: report })
    }
}

/// A change to a report: absent fields stay.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub view: Option<ViewId>,
    #[serde(default)]
    pub schedule: Option<ReportSchedule>,
    #[serde(default)]
    pub format: Option<ReportFormat>,
    #[serde(default)]
    pub recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The version the client last read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UpdateReport {
    pub report: ReportId,
    pub patch: ReportPatch,
}

impl Command for UpdateReport {
    type State = (ScheduledReport, ReportRefs);
    type Output = ScheduledReport;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let report = load::<ScheduledReport>(store, ws, self.report).await?;
        let view_id = self.patch.view.unwrap_or(report.view);
        let view = store::get::<SavedView>(store, ws, view_id.0).await?;
        let teams = store::list(store, ws, &RecordQuery::all()).await?;
        let mut users =
            load_people(store, actor, self.patch.recipients.as_deref().unwrap_or(&report.recipients)).await?;
        if let Some(owner) = store::get::<User>(store, ws, report.owner.0).await? {
            users.push(owner);
        }
        Ok((report, ReportRefs { view, teams, users }))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, refs): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<ScheduledReport>, DeskError> {
        check_editor(actor, &old)?;
        let p = &self.patch;
        if let Some(v) = p.version
            && v != old.version
        {
            return Err(DeskError::Conflict(format!(
                "the report is at version {}, not {v}; reload it and try again",
                old.version
            )));
        }
        let mut next = ScheduledReport { updated_at: env.now, version: old.version + 1, ..old.clone() };
        if let Some(name) = &p.name {
            next.name = validate_title("name", name, 200)?;
        }
        if let Some(view) = p.view {
            let owner = refs
                .users
                .iter()
                .find(|u| u.id == old.owner)
                .ok_or_else(|| DeskError::not_found("the report's owner"))?;
            let v = refs.view.as_ref().ok_or_else(|| Invalid::new("view", format!("no view {view}")))?;
            check_view(v, owner, &refs.teams)?;
            next.view = view;
        }
        if let Some(format) = p.format {
            next.format = format;
        }
        if let Some(recipients) = &p.recipients {
            next.recipients = validate_recipients(recipients)?;
            check_user_recipients(&next.recipients, &refs.users)?;
        }
        if let Some(enabled) = p.enabled {
            next.enabled = enabled;
        }
        if let Some(schedule) = &p.schedule {
            schedule.validate()?;
            next.schedule = schedule.clone();
        }
        if p.schedule.is_some() || (next.enabled && !old.enabled) {
            next.next_run = next.schedule.next_after(env.now)?;
        }
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::Report, id: old.id.0, changes: diff(&old, &next) },
        );
        changes.update(Record::Report(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

#[derive(Debug, Clone)]
pub struct DeleteReport {
    pub report: ReportId,
}

impl Command for DeleteReport {
    type State = ScheduledReport;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ScheduledReport, DeskError> {
        load::<ScheduledReport>(store, actor.workspace_id, self.report).await
    }

    fn decide(
        &self,
        actor: &Actor,
        report: ScheduledReport,
        env: &Env<'_>,
    ) -> Result<Decided<()>, DeskError> {
        check_editor(actor, &report)?;
        let mut changes = env.changes(actor);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::Report, id: report.id.0 });
        changes.delete(RecordKind::Report, report.id.0, report.version);
        Ok(Decided { changes, output: () })
    }
}

/// The scheduler's command (as Tandem): when the report is due, move `next_run` to the next
/// occurrence and enqueue a `report.send` job for this one, in one versioned commit — so two
/// servers racing queue it once. With `now`, its owner or an administrator sends one occurrence
/// at once and the schedule stays as it is. Answers whether it queued.
#[derive(Debug, Clone)]
pub struct QueueReport {
    pub report: ReportId,
    pub now: bool,
}

fn report_job(
    report: &ScheduledReport,
    occurrence: DateTime<Utc>,
    env: &Env<'_>,
) -> Result<NewJob, DeskError> {
    let job = ReportJob { report: report.id, occurrence };
    Ok(NewJob {
        id: env.new_id(),
        kind: REPORT_SEND_JOB.into(),
        payload: serde_json::to_value(&job).map_err(|e| DeskError::invalid("report", e.to_string()))?,
        idempotency_key: format!("report:{}:{}", report.id, occurrence.timestamp_micros()),
        run_at: env.now,
        max_attempts: 5,
    })
}

impl Command for QueueReport {
    type State = ScheduledReport;
    type Output = bool;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ScheduledReport, DeskError> {
        load::<ScheduledReport>(store, actor.workspace_id, self.report).await
    }

    fn decide(
        &self,
        actor: &Actor,
        report: ScheduledReport,
        env: &Env<'_>,
    ) -> Result<Decided<bool>, DeskError> {
        let mut changes = env.changes(actor);
        if self.now {
            check_editor(actor, &report)?;
            changes.job(report_job(&report, env.now, env)?);
            return Ok(Decided { changes, output: true });
        }
        if !matches!(actor.kind, ActorKind::System | ActorKind::ServerAdmin) {
            return Err(DeskError::Forbidden("only the scheduler queues reports".into()));
        }
        if !report.enabled || report.next_run > env.now {
            return Ok(Decided { changes, output: false });
        }
        let occurrence = report.next_run;
        let next = ScheduledReport {
            next_run: report.schedule.next_after(env.now)?,
            last_run: Some(env.now),
            version: report.version + 1,
            ..report.clone()
        };
        changes.job(report_job(&report, occurrence, env)?);
        changes.update(Record::Report(next), report.version);
        Ok(Decided { changes, output: true })
    }

    fn runs_automations() -> bool {
        false
    }
}

/// A rendered report file.
#[derive(Debug, Clone)]
pub struct ReportFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The `report.send` job's command (as Tandem): stores the file (content-addressed) and
/// enqueues one `mail.send` per recipient with it attached (CSV, XLSX) or the table in the body
/// (HTML). The mails' keys name the occurrence, so a retried job enqueues nothing twice.
#[derive(Debug, Clone)]
pub struct DeliverReport {
    pub report: ReportId,
    pub occurrence: DateTime<Utc>,
    pub rows: usize,
    pub file: Option<ReportFile>,
    /// An escaped HTML table for the body.
    pub html: Option<String>,
}

impl Command for DeliverReport {
    type State = (ScheduledReport, Vec<User>);
    type Output = usize;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let report = load::<ScheduledReport>(store, actor.workspace_id, self.report).await?;
        let users = load_people(store, actor, &report.recipients).await?;
        Ok((report, users))
    }

    fn decide(
        &self,
        actor: &Actor,
        (report, users): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<usize>, DeskError> {
        if !matches!(actor.kind, ActorKind::System | ActorKind::ServerAdmin) {
            return Err(DeskError::Forbidden("only the report job delivers reports".into()));
        }
        let mut changes = env.changes(actor);
        let mut attachments = Vec::new();
        if let Some(file) = &self.file {
            let sha256 = hex::encode(Sha256::digest(&file.bytes));
            changes.blob(sha256.clone(), file.bytes.clone().into());
            attachments.push(MailAttachment {
                filename: file.name.clone(),
                content_type: file.content_type.clone(),
                sha256,
            });
        }
        let mut sent = 0;
        for r in &report.recipients {
            let (to, to_name) = match r {
                Recipient::Address(a) => (a.clone(), None),
                Recipient::User(id) => match users.iter().find(|u| u.id == *id && u.active) {
                    Some(User { email: Some(e), name, .. }) => (e.clone(), Some(name.clone())),
                    // Gone, disabled or without an address since the report was saved.
                    _ => continue,
                },
            };
            let when = self.occurrence.format("%Y-%m-%d %H:%M UTC");
            let body = match &self.file {
                Some(f) => {
                    format!("{} as of {when}: {} rows, attached as {}.", report.name, self.rows, f.name)
                }
                None => format!("{} as of {when}: {} rows.", report.name, self.rows),
            };
            let vars = BTreeMap::from([
                ("title".to_string(), report.name.clone()),
                ("body".to_string(), body),
                ("filename".to_string(), self.file.as_ref().map(|f| f.name.clone()).unwrap_or_default()),
            ]);
            let mail = MailJob {
                template: REPORT_TEMPLATE.into(),
                to: to.clone(),
                to_name,
                item: None,
                vars,
                automatic: false,
                attachments: attachments.clone(),
                html_appendix: self.html.clone(),
            };
            changes.job(NewJob {
                id: env.new_id(),
                kind: MAIL_SEND_JOB.into(),
                payload: serde_json::to_value(&mail)
                    .map_err(|e| DeskError::invalid("report", e.to_string()))?,
                idempotency_key: format!("report:{}:{}:{to}", report.id, self.occurrence.timestamp_micros()),
                run_at: env.now,
                max_attempts: 8,
            });
            sent += 1;
        }
        Ok(Decided { changes, output: sent })
    }

    fn runs_automations() -> bool {
        false
    }
}
