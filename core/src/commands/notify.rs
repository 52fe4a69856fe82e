//! Mail notifications: fanning the event log out to the people an item involves, one `mail.send`
//! job per recipient, and recording what the mail handler did with each.
//!
//! Who hears about what ([`recipients`], pure):
//!
//! - the item's requester, followers and assignees (a team's members), each once;
//! - never the person who caused the change, an inactive account, an address without mail or
//!   one marked bouncing;
//! - internal notes (and files attached to them) reach staff only; customers and contacts
//!   without accounts hear of public changes only;
//! - a change caused by automatic mail (a list, a monitoring alert) mails staff only, so Tandem
//!   never answers automatic mail automatically. (Auto-replies and bounces make no change at all.)

use std::collections::{BTreeMap, BTreeSet};

use crate::access::{Actor, ActorKind};
use crate::change::{NewJob, Record, RecordKind};
use crate::conversation::{Attachment, Message, Visibility};
use crate::desk::{Command, Decided, Env};
use crate::error::DeskError;
use crate::event::{Event, EventData};
use crate::ids::{ItemId, ProjectId, UserId, WorkspaceId};
use crate::item::{ActorRef, Assignee, Item, ItemType};
use crate::mail::{MAIL_SEND_JOB, MailClass, MailJob, MailSettings, OutboundMail};
use crate::membership::ProjectMember;
use crate::people::{EmailBounce, Role, Team, User};
use crate::store::{EventQuery, ItemScope, RecordQuery, Store, get, list};
use crate::webhook::EventCursor;

/// The event-log consumer that mails followers.
pub const MAIL_NOTIFICATIONS: &str = "mail-notifications";

/// How far back the first run of a workspace's notifications looks: turning outbound mail on
/// for a database with history must not mail everyone about everything that ever happened.
pub const FIRST_RUN_HORIZON_MINUTES: i64 = 15;

/// A notification's idempotency key: one mail per (event, address).
pub fn notification_key(ws: WorkspaceId, seq: i64, address: &str) -> String {
    format!("mail:{ws}:{seq}:{address}")
}

/// Mails the next events of the workspace's log to the people each one concerns: one
/// `mail.send` job per (event, recipient), and the notifications cursor moved past them, in one
/// commit. Like [`RelayEvents`](super::RelayEvents) it is versioned on its cursor, so of several
/// servers running it one wins each batch; it writes no event of its own.
///
/// A workspace without an outbound address (no [`MailSettings`] address) is skipped over: its
/// cursor moves, nothing is enqueued. The first run (no cursor yet) mails only events of the last
/// [`FIRST_RUN_HORIZON_MINUTES`].
#[derive(Debug, Clone)]
pub struct NotifyFollowers {
    pub batch: usize,
    pub max_attempts: u32,
}

/// What a notification run read.
#[derive(Debug, Clone, Default)]
pub struct NotifyState {
    pub cursor: Option<EventCursor>,
    pub events: Vec<Event>,
    pub settings: Option<MailSettings>,
    pub items: BTreeMap<ItemId, Item>,
    pub types: Vec<ItemType>,
    pub users: BTreeMap<UserId, User>,
    pub teams: Vec<Team>,
    pub messages: Vec<Message>,
    pub attachments: Vec<Attachment>,
    /// The class of the inbound mail each email message came from, by its Message-ID.
    pub mail_classes: BTreeMap<String, MailClass>,
    /// The projects each collaborator among the recipients belongs to: a collaborator is mailed
    /// only about items they may see (items of those projects).
    pub collaborator_projects: BTreeMap<UserId, Vec<ProjectId>>,
}

/// What a notification run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    pub events: usize,
    pub mails: usize,
    pub cursor: i64,
    pub more: bool,
}

/// One event as mail: its template, its placeholder values, and whether customers may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub template: &'static str,
    pub vars: BTreeMap<String, String>,
    pub public: bool,
}

fn actor_name(state: &NotifyState, actor: ActorRef) -> String {
    match actor {
        ActorRef::User(u) => state.users.get(&u).map_or_else(|| "Someone".to_string(), |u| u.name.clone()),
        ActorRef::ServerAdmin => "The administrator".to_string(),
        ActorRef::System => "Tandem".to_string(),
    }
}

/// What an event says to a follower, if anything.
pub fn notice(state: &NotifyState, event: &Event, item: &Item) -> Option<Notice> {
    let mut vars = BTreeMap::from([
        ("title".to_string(), item.title.clone()),
        ("number".to_string(), item.number.to_string()),
        ("author".to_string(), actor_name(state, event.actor)),
        ("event".to_string(), event.data.name().to_string()),
    ]);
    let (template, public) = match &event.data {
        EventData::MessagePosted { message, visibility, .. } => {
            let m = state.messages.iter().find(|m| m.id == *message)?;
            vars.insert("body".into(), m.text.clone());
            match visibility {
                Visibility::Public => ("message_posted", true),
                Visibility::Internal => ("internal_note", false),
            }
        }
        EventData::StatusChanged { to, .. } => {
            let status = state
                .types
                .iter()
                .find(|t| t.id == item.item_type)
                .and_then(|t| t.workflow.status(to))
                .map_or_else(|| to.clone(), |s| s.public_label.clone().unwrap_or_else(|| s.name.clone()));
            vars.insert("status".into(), status);
            ("status_changed", true)
        }
        EventData::AssigneesChanged { added, .. } if !added.is_empty() => {
            let names: Vec<String> = added
                .iter()
                .map(|a| match a {
                    Assignee::User(u) => {
                        state.users.get(u).map_or_else(|| "someone".to_string(), |u| u.name.clone())
                    }
                    Assignee::Team(t) => state
                        .teams
                        .iter()
                        .find(|x| x.id == *t)
                        .map_or_else(|| "a team".to_string(), |t| t.name.clone()),
                })
                .collect();
            vars.insert("assignee".into(), names.join(", "));
            ("assigned", true)
        }
        // Files posted with a message arrive with that message's mail.
        EventData::AttachmentAdded { filename, message: None, .. } => {
            vars.insert("filename".into(), filename.clone());
            ("attachment_added", true)
        }
        _ => return None,
    };
    Some(Notice { template, vars, public })
}

/// Whether the event was caused by automatic mail: a message that came from a list or a robot.
fn from_automatic_mail(state: &NotifyState, event: &Event) -> bool {
    let EventData::MessagePosted { message, .. } = &event.data else { return false };
    state
        .messages
        .iter()
        .find(|m| m.id == *message)
        .and_then(|m| m.email.as_ref())
        .and_then(|e| e.message_id.as_ref())
        .and_then(|id| state.mail_classes.get(id))
        .is_some_and(|c| !c.may_be_answered_automatically())
}

/// The people an event on `item` is mailed to (see the module docs), in a stable order.
pub fn recipients<'a>(
    state: &'a NotifyState,
    event: &Event,
    item: &Item,
    public: bool,
    automatic_origin: bool,
) -> Vec<&'a User> {
    let mut ids: Vec<UserId> = Vec::new();
    let mut push = |u: UserId| {
        if !ids.contains(&u) {
            ids.push(u);
        }
    };
    item.requester.into_iter().for_each(&mut push);
    item.followers.iter().copied().for_each(&mut push);
    for a in &item.assignees {
        match a {
            Assignee::User(u) => push(*u),
            Assignee::Team(t) => {
                if let Some(team) = state.teams.iter().find(|x| x.id == *t) {
                    team.members.iter().copied().for_each(&mut push);
                }
            }
        }
    }
    let actor = match event.actor {
        ActorRef::User(u) => Some(u),
        _ => None,
    };
    ids.into_iter()
        .filter(|id| Some(*id) != actor)
        .filter_map(|id| state.users.get(&id))
        .filter(|u| u.active && u.email.is_some() && u.email_bounce.is_none())
        .filter(|u| u.role.is_staff() || (public && !automatic_origin))
        .filter(|u| {
            u.role != Role::Collaborator
                || state
                    .collaborator_projects
                    .get(&u.id)
                    .is_some_and(|projects| ItemScope::Projects(projects.clone()).admits(item, None))
        })
        .collect()
}

fn notifiable(event: &Event) -> bool {
    event.item.is_some()
        && matches!(
            event.data,
            EventData::MessagePosted { .. }
                | EventData::StatusChanged { .. }
                | EventData::AssigneesChanged { .. }
                | EventData::AttachmentAdded { message: None, .. }
        )
}

impl Command for NotifyFollowers {
    type State = NotifyState;
    type Output = Notified;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<NotifyState, DeskError> {
        let ws = actor.workspace_id;
        let cursor = get::<EventCursor>(store, ws, EventCursor::id_for(ws, MAIL_NOTIFICATIONS).0).await?;
        let after = cursor.as_ref().map_or(0, |c| c.seq);
        let events = store.events(ws, &EventQuery { after, item: None, limit: self.batch.max(1) }).await?;
        let mut state = NotifyState { cursor, events, ..Default::default() };
        if !state.events.iter().any(notifiable) {
            return Ok(state);
        }
        state.settings = get::<MailSettings>(store, ws, ws.0).await?;
        if state.settings.as_ref().is_none_or(|s| s.addresses.is_empty()) {
            return Ok(state);
        }
        let mut users: BTreeSet<UserId> = BTreeSet::new();
        let mut teams = BTreeSet::new();
        for event in state.events.iter().filter(|e| notifiable(e)) {
            let Some(id) = event.item else { continue };
            if let ActorRef::User(u) = event.actor {
                users.insert(u);
            }
            match &event.data {
                EventData::MessagePosted { message, .. } => {
                    if let Some(m) = get::<Message>(store, ws, message.0).await? {
                        if let Some(mid) = m.email.as_ref().and_then(|e| e.message_id.clone())
                            && let Some(mail) = store.inbound_mail_by_key(ws, &format!("mid:{mid}")).await?
                        {
                            state.mail_classes.insert(mid, mail.class);
                        }
                        state.messages.push(m);
                    }
                }
                EventData::AssigneesChanged { added, .. } => {
                    for a in added {
                        match a {
                            Assignee::User(u) => {
                                users.insert(*u);
                            }
                            Assignee::Team(t) => {
                                teams.insert(*t);
                            }
                        }
                    }
                }
                _ => {}
            }
            if state.items.contains_key(&id) {
                continue;
            }
            let Some(item) = get::<Item>(store, ws, id.0).await? else { continue };
            users.extend(item.requester);
            users.extend(item.followers.iter().copied());
            for a in &item.assignees {
                match a {
                    Assignee::User(u) => {
                        users.insert(*u);
                    }
                    Assignee::Team(t) => {
                        teams.insert(*t);
                    }
                }
            }
            if !state.types.iter().any(|t| t.id == item.item_type)
                && let Some(t) = get::<ItemType>(store, ws, item.item_type.0).await?
            {
                state.types.push(t);
            }
            state.items.insert(id, item);
        }
        for t in teams {
            if let Some(team) = get::<Team>(store, ws, t.0).await? {
                users.extend(team.members.iter().copied());
                state.teams.push(team);
            }
        }
        for u in users {
            if let Some(user) = get::<User>(store, ws, u.0).await? {
                if user.role == Role::Collaborator {
                    let memberships: Vec<ProjectMember> =
                        list(store, ws, &RecordQuery::children_of(user.id.0)).await?;
                    state.collaborator_projects.insert(u, memberships.iter().map(|m| m.project).collect());
                }
                state.users.insert(u, user);
            }
        }
        Ok(state)
    }

    fn decide(
        &self,
        actor: &Actor,
        state: NotifyState,
        env: &Env<'_>,
    ) -> Result<Decided<Notified>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem itself sends notifications".into()));
        }
        let ws = actor.workspace_id;
        let mut changes = env.changes(actor);
        let Some(last) = state.events.last().map(|e| e.seq) else {
            let at = state.cursor.map_or(0, |c| c.seq);
            return Ok(Decided {
                changes,
                output: Notified { events: 0, mails: 0, cursor: at, more: false },
            });
        };
        let mut mails = 0;
        let sending = state.settings.as_ref().is_some_and(|s| !s.addresses.is_empty());
        // Changes made in the same commit as a message from automatic mail (a reopen) count as
        // caused by it too: same actor, same instant, same item.
        let mut automatic: Vec<(ActorRef, chrono::DateTime<chrono::Utc>, Option<ItemId>)> = Vec::new();
        let first_run = state.cursor.is_none();
        let recent =
            |e: &Event| !first_run || env.now - e.at <= chrono::Duration::minutes(FIRST_RUN_HORIZON_MINUTES);
        for event in state.events.iter().filter(|_| sending).filter(|e| notifiable(e) && recent(e)) {
            let Some(item) = event.item.and_then(|i| state.items.get(&i)) else { continue };
            if from_automatic_mail(&state, event) {
                automatic.push((event.actor, event.at, event.item));
            }
            let automatic_origin = automatic.contains(&(event.actor, event.at, event.item));
            let Some(notice) = notice(&state, event, item) else { continue };
            for user in recipients(&state, event, item, notice.public, automatic_origin) {
                let Some(address) = user.email.clone() else { continue };
                let job = MailJob {
                    template: notice.template.to_string(),
                    to: address.clone(),
                    to_name: Some(user.name.clone()),
                    item: Some(item.id),
                    vars: notice.vars.clone(),
                    automatic: true,
                    attachments: Vec::new(),
                    html_appendix: None,
                };
                let payload = serde_json::to_value(&job).map_err(|e| {
                    DeskError::Store(crate::StoreError::Corrupt(format!("a mail job cannot be encoded: {e}")))
                })?;
                changes.job(NewJob {
                    id: env.new_id(),
                    kind: MAIL_SEND_JOB.into(),
                    payload,
                    idempotency_key: notification_key(ws, event.seq, &address),
                    run_at: env.now,
                    max_attempts: self.max_attempts.max(1),
                });
                mails += 1;
            }
        }
        match state.cursor {
            Some(c) => {
                let read = c.version;
                let moved = EventCursor { seq: last, updated_at: env.now, version: read + 1, ..c };
                changes.update(Record::EventCursor(moved), read);
            }
            None => {
                changes.insert(Record::EventCursor(EventCursor {
                    id: EventCursor::id_for(ws, MAIL_NOTIFICATIONS),
                    workspace_id: ws,
                    consumer: MAIL_NOTIFICATIONS.into(),
                    seq: last,
                    updated_at: env.now,
                    version: 1,
                }));
            }
        }
        let output = Notified {
            events: state.events.len(),
            mails,
            cursor: last,
            more: state.events.len() >= self.batch.max(1),
        };
        Ok(Decided { changes, output })
    }
}

/// Records what the `mail.send` handler did with one job: sent, withheld (with why) or failed.
/// A bounce status (`5.1.1`: the address does not exist) also marks the recipient's address
/// bouncing, so later notifications skip it. A record already stored for the job's key is kept
/// as it is (the job ran before), so a retried job never records twice. Only Tandem runs this.
#[derive(Debug, Clone)]
pub struct RecordOutboundMail {
    /// `id` and `version` are filled in by the command.
    pub mail: OutboundMail,
    pub bounce_status: Option<String>,
}

/// What recording found: the stored record, and whether it was there already.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedMail {
    pub mail: OutboundMail,
    pub existed: bool,
}

impl Command for RecordOutboundMail {
    type State = (Option<OutboundMail>, Option<User>);
    type Output = RecordedMail;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let existing = get::<OutboundMail>(store, ws, OutboundMail::id_for(ws, &self.mail.key).0).await?;
        let user = match (&existing, &self.bounce_status) {
            (None, Some(_)) => store.user_by_email(ws, &self.mail.recipient).await?,
            _ => None,
        };
        Ok((existing, user))
    }

    fn decide(
        &self,
        actor: &Actor,
        (existing, user): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<RecordedMail>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem's mail sender records sent mail".into()));
        }
        let mut changes = env.changes(actor);
        if let Some(mail) = existing {
            return Ok(Decided { changes, output: RecordedMail { mail, existed: true } });
        }
        let ws = actor.workspace_id;
        let mail = OutboundMail {
            id: OutboundMail::id_for(ws, &self.mail.key),
            workspace_id: ws,
            recipient: self.mail.recipient.to_lowercase(),
            reason: self.mail.reason.as_ref().map(|r| r.chars().take(1000).collect()),
            subject: self.mail.subject.chars().filter(|c| !c.is_control()).take(300).collect(),
            version: 1,
            ..self.mail.clone()
        };
        if let (Some(user), Some(status)) = (user, &self.bounce_status) {
            let next = User {
                email_bounce: Some(EmailBounce { at: env.now, status: Some(status.clone()) }),
                version: user.version + 1,
                ..user.clone()
            };
            changes.event(
                None,
                EventData::RecordUpdated {
                    record: RecordKind::User,
                    id: user.id.0,
                    changes: crate::diff::diff(&user, &next),
                },
            );
            changes.update(Record::User(next), user.version);
        }
        changes.event(
            mail.item,
            EventData::EmailSent {
                mail: mail.id,
                template: mail.template.clone(),
                status: mail.status,
                reason: mail.reason.clone(),
            },
        );
        changes.insert(Record::OutboundMail(mail.clone()));
        Ok(Decided { changes, output: RecordedMail { mail, existed: false } })
    }
}
