//! Email: configuring a workspace's mail settings, and turning a received message into an item, a
//! public message, a bounce mark — or a quarantined record with a reason.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{ChangeSet, CommitReceipt, Record, RecordKind};
use crate::conversation::{Body, Message, Visibility, html_to_text, render_body};
use crate::desk::{Command, Decided, Env};
use crate::diff::diff;
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::validate_title;
use crate::ids::{InboundMailId, ItemId, ItemTypeId, MailSettingsId, MessageId, UserId};
use crate::item::{ActorRef, Channel, Item, ItemLink, ItemType, LinkKind, Priority};
use crate::mail::{
    InboundAddress, InboundEmail, InboundMail, InboundStatus, MailClass, MailOutcome, MailSettings,
    MailTemplate, Mailbox, RawMail, ReplyAction, ReplyToClosed, ThreadCandidates, ThreadDecision,
    decide_thread, reply_action, split_plus,
};
use crate::people::{Organization, Role, TokenScope, User, email_domain, normalise_email};
use crate::store::{RecordQuery, Store, get, list};
use crate::workflow::validate_key;

use super::conversation::attach;
use super::items::{move_to_status, touched};

/// Changes a workspace's mail settings (administrators and managers). Absent fields stay as
/// they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigureMail {
    #[serde(default)]
    pub addresses: Option<Vec<InboundAddress>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub default_type: Option<Option<ItemTypeId>>,
    #[serde(default)]
    pub copied_follow: Option<bool>,
    #[serde(default)]
    pub reply_to_closed: Option<BTreeMap<ItemTypeId, ReplyToClosed>>,
    #[serde(default, deserialize_with = "crate::patch::nullable")]
    pub from_name: Option<Option<String>>,
    #[serde(default)]
    pub templates: Option<BTreeMap<String, MailTemplate>>,
}

const MAX_ADDRESSES: usize = 200;
const MAX_TEMPLATE_CHARS: usize = 100_000;

fn check_type(types: &[ItemType], id: ItemTypeId, field: &str) -> Result<(), Invalid> {
    if types.iter().any(|t| t.id == id) {
        Ok(())
    } else {
        Err(Invalid::new(field, format!("no item type {id}")))
    }
}

fn clean_addresses(types: &[ItemType], addresses: &[InboundAddress]) -> Result<Vec<InboundAddress>, Invalid> {
    if addresses.len() > MAX_ADDRESSES {
        return Err(Invalid::new("addresses", format!("at most {MAX_ADDRESSES} inbound addresses")));
    }
    let mut out: Vec<InboundAddress> = Vec::new();
    for (i, a) in addresses.iter().enumerate() {
        let field = format!("addresses[{i}]");
        let address = normalise_email(&format!("{field}.address"), &a.address)?;
        if address.split('@').next().is_some_and(|local| local.contains('+')) {
            return Err(Invalid::new(
                format!("{field}.address"),
                "must not contain '+': Tandem uses plus-addressing for reply tokens",
            ));
        }
        if out.iter().any(|o| o.address == address) {
            return Err(Invalid::new(format!("{field}.address"), format!("{address} is listed twice")));
        }
        check_type(types, a.item_type, &format!("{field}.item_type"))?;
        out.push(InboundAddress { address, item_type: a.item_type });
    }
    Ok(out)
}

fn clean_templates(templates: &BTreeMap<String, MailTemplate>) -> Result<(), Invalid> {
    for (name, t) in templates {
        validate_key(name).map_err(|r| Invalid::new(format!("templates.{name}"), r))?;
        validate_title(&format!("templates.{name}.subject"), &t.subject, 300)?;
        for (part, text) in [("text", &t.text), ("html", &t.html)] {
            crate::hierarchy::validate_multiline(
                &format!("templates.{name}.{part}"),
                text,
                MAX_TEMPLATE_CHARS,
            )?;
        }
        for (part, text) in [("subject", &t.subject), ("text", &t.text), ("html", &t.html)] {
            crate::mail::check_placeholders(text)
                .map_err(|r| Invalid::new(format!("templates.{name}.{part}"), r))?;
        }
    }
    Ok(())
}

impl Command for ConfigureMail {
    type State = (Option<MailSettings>, Vec<ItemType>);
    type Output = MailSettings;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let ws = actor.workspace_id;
        let settings = get::<MailSettings>(store, ws, ws.0).await?;
        let types = list::<ItemType>(store, ws, &RecordQuery::all()).await?;
        Ok((settings, types))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, types): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<MailSettings>, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        let mut next = old.clone().unwrap_or_else(|| MailSettings::empty(actor.workspace_id));
        if let Some(addresses) = &self.addresses {
            next.addresses = clean_addresses(&types, addresses)?;
        }
        if let Some(default_type) = self.default_type {
            if let Some(t) = default_type {
                check_type(&types, t, "default_type")?;
            }
            next.default_type = default_type;
        }
        if let Some(copied) = self.copied_follow {
            next.copied_follow = copied;
        }
        if let Some(policies) = &self.reply_to_closed {
            for t in policies.keys() {
                check_type(&types, *t, &format!("reply_to_closed.{t}"))?;
            }
            next.reply_to_closed = policies.clone();
        }
        if let Some(from_name) = &self.from_name {
            next.from_name = from_name.as_deref().map(|n| validate_title("from_name", n, 120)).transpose()?;
        }
        if let Some(templates) = &self.templates {
            clean_templates(templates)?;
            next.templates = templates.clone();
        }
        next.id = MailSettingsId(actor.workspace_id.0);
        let mut changes = env.changes(actor);
        match &old {
            Some(old) => {
                next.version = old.version + 1;
                changes.event(
                    None,
                    EventData::RecordUpdated {
                        record: RecordKind::MailSettings,
                        id: next.id.0,
                        changes: diff(old, &next),
                    },
                );
                changes.update(Record::MailSettings(next.clone()), old.version);
            }
            None => {
                next.version = 1;
                changes.event(
                    None,
                    EventData::RecordCreated {
                        record: RecordKind::MailSettings,
                        id: next.id.0,
                        name: "mail settings".into(),
                    },
                );
                changes.insert(Record::MailSettings(next.clone()));
            }
        }
        Ok(Decided { changes, output: next })
    }
}

/// Records a received message and does what it asks: a new item, a public message on the item
/// it answers (reopening it, or opening a linked one when it is closed and its type says so),
/// bounce marks, or nothing for auto-replies and our own mail coming back. The sender becomes
/// the requester and a follower (a contact is created when the address is new); people they
/// copied follow when the workspace says so.
///
/// Whatever happens, the raw message and its record are written in the same commit, so nothing
/// is acknowledged before it is stored. A message that cannot be processed (no sender, no route,
/// a disabled sender...) is stored as quarantined with the reason instead of failing. Only
/// Tandem's own mail intake (the system actor) runs this.
#[derive(Debug, Clone)]
pub struct ReceiveEmail {
    pub mail: InboundEmail,
    /// `None` when the message was refused (too large): it is recorded as rejected, without its
    /// bytes, with `mail.problem` as the reason.
    pub raw: Option<RawMail>,
}

/// What receiving produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub mail: InboundMail,
    /// The message had been received before (same Message-ID or bytes): nothing was written.
    pub duplicate: bool,
    pub item_number: Option<i64>,
}

/// Everything a received message may touch.
#[derive(Debug, Clone, Default)]
pub struct MailState {
    existing: Option<InboundMail>,
    settings: Option<MailSettings>,
    types: Vec<ItemType>,
    sender: Option<User>,
    copied: Vec<User>,
    bounced: Vec<User>,
    token: Option<Item>,
    referenced: Option<Item>,
    tagged: Option<Item>,
    /// The organizations owning the domains of the people the mail would create as contacts.
    organizations: Vec<Organization>,
}

/// At most this many people copied on a message become followers.
const MAX_COPIED_FOLLOWERS: usize = 20;
const MAX_DESCRIPTION_CHARS: usize = 100_000;

async fn load_type(
    store: &dyn Store,
    actor: &Actor,
    id: ItemTypeId,
    types: &mut Vec<ItemType>,
) -> Result<(), DeskError> {
    if !types.iter().any(|t| t.id == id)
        && let Some(t) = get::<ItemType>(store, actor.workspace_id, id.0).await?
    {
        types.push(t);
    }
    Ok(())
}

impl Command for ReceiveEmail {
    type State = MailState;
    type Output = Received;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<MailState, DeskError> {
        let ws = actor.workspace_id;
        let m = &self.mail;
        let mut state =
            MailState { existing: store.inbound_mail_by_key(ws, &m.dedupe_key).await?, ..Default::default() };
        if state.existing.is_some() || m.problem.is_some() || self.raw.is_none() {
            return Ok(state);
        }
        if m.class == MailClass::Bounce {
            for address in m.bounced.iter().take(50) {
                state.bounced.extend(store.user_by_email(ws, &address.to_lowercase()).await?);
            }
            return Ok(state);
        }
        if !matches!(m.class, MailClass::Personal | MailClass::List | MailClass::Automated) {
            return Ok(state);
        }
        let settings = get::<MailSettings>(store, ws, ws.0).await?;
        if let Some(from) = &m.from {
            state.sender = store.user_by_email(ws, &from.address.to_lowercase()).await?;
        }
        if settings.as_ref().is_some_and(|s| s.copied_follow) {
            for copied in m.copied.iter().take(MAX_COPIED_FOLLOWERS * 2) {
                if let Some(u) = store.user_by_email(ws, &copied.address.to_lowercase()).await? {
                    state.copied.push(u);
                }
            }
        }
        // New contacts join the organization owning their domain.
        let unknown = m.from.iter().filter(|_| state.sender.is_none()).chain(
            m.copied.iter().take(MAX_COPIED_FOLLOWERS * 2).filter(|c| {
                !state.copied.iter().any(|u| u.email.as_deref() == Some(c.address.to_lowercase().as_str()))
            }),
        );
        let mut domains: Vec<String> =
            unknown.filter_map(|mb| email_domain(&mb.address.to_lowercase()).map(str::to_string)).collect();
        domains.dedup();
        for d in domains.iter().take(MAX_COPIED_FOLLOWERS * 2 + 1) {
            if let Some(o) = store.organization_by_domain(ws, d).await?
                && !state.organizations.iter().any(|k| k.id == o.id)
            {
                state.organizations.push(o);
            }
        }
        if let Some(n) = m.thread.token_item {
            state.token = store.item_by_number(ws, n).await?;
        }
        if state.token.is_none() && !m.thread.references.is_empty() {
            let found = store.items_by_message_ids(ws, &m.thread.references).await?;
            // The nearest reference we know decides.
            let nearest = m.thread.references.iter().find_map(|r| found.iter().find(|(id, _)| id == r));
            if let Some((_, item)) = nearest {
                state.referenced = get::<Item>(store, ws, item.0).await?;
            }
        }
        if state.token.is_none()
            && state.referenced.is_none()
            && let Some(n) = m.thread.subject_number
        {
            state.tagged = store.item_by_number(ws, n).await?;
        }
        if let Some(s) = &settings {
            if let Ok(t) = s.item_type_for(m.recipients.iter().map(String::as_str)) {
                load_type(store, actor, t, &mut state.types).await?;
            }
            for item in [&state.token, &state.referenced, &state.tagged].into_iter().flatten() {
                load_type(store, actor, item.item_type, &mut state.types).await?;
            }
        }
        state.settings = settings;
        Ok(state)
    }

    fn decide(&self, actor: &Actor, state: MailState, env: &Env<'_>) -> Result<Decided<Received>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem's mail intake records received mail".into()));
        }
        if let Some(existing) = state.existing {
            return Ok(Decided {
                changes: env.changes(actor),
                output: Received { mail: existing, duplicate: true, item_number: None },
            });
        }
        let m = &self.mail;
        let record = InboundMail {
            id: env.new_id::<InboundMailId>(),
            workspace_id: actor.workspace_id,
            dedupe_key: m.dedupe_key.clone(),
            message_id: m.message_id.clone(),
            sha256: m.sha256.clone(),
            size: m.size,
            raw_stored: self.raw.is_some(),
            transport: m.transport,
            envelope_from: m.envelope_from.clone(),
            recipients: m.recipients.clone(),
            from: m.from.as_ref().map(|f| f.address.clone()),
            subject: m.subject.chars().filter(|c| !c.is_control()).take(300).collect(),
            class: m.class,
            status: InboundStatus::Accepted,
            reason: None,
            outcome: None,
            item: None,
            received_at: env.now,
            version: 1,
        };
        let Some(raw) = &self.raw else {
            let reason = m.problem.clone().unwrap_or_else(|| "refused".into());
            return Ok(finish(env.changes(actor), record, InboundStatus::Rejected, Some(reason), None));
        };
        let stored = |mut changes: ChangeSet| {
            changes.blob(m.sha256.clone(), raw.clone());
            changes
        };
        if let Some(problem) = &m.problem {
            return Ok(finish(
                stored(env.changes(actor)),
                record,
                InboundStatus::Quarantined,
                Some(problem.clone()),
                None,
            ));
        }
        match m.class {
            MailClass::Loop => Ok(finish(
                stored(env.changes(actor)),
                InboundMail { outcome: Some(MailOutcome::Dropped), ..record },
                InboundStatus::Accepted,
                Some("our own mail came back (loop header)".into()),
                None,
            )),
            MailClass::AutoReply => Ok(finish(
                stored(env.changes(actor)),
                InboundMail { outcome: Some(MailOutcome::Dropped), ..record },
                InboundStatus::Accepted,
                Some("an automatic reply: recorded, not turned into an item".into()),
                None,
            )),
            MailClass::Bounce => {
                let mut changes = stored(env.changes(actor));
                for user in &state.bounced {
                    let next = User {
                        email_bounce: Some(crate::people::EmailBounce {
                            at: env.now,
                            status: m.bounce_status.clone(),
                        }),
                        version: user.version + 1,
                        ..user.clone()
                    };
                    changes.event(
                        None,
                        EventData::RecordUpdated {
                            record: RecordKind::User,
                            id: user.id.0,
                            changes: diff(user, &next),
                        },
                    );
                    changes.update(Record::User(next), user.version);
                }
                let addresses: Vec<String> = m.bounced.iter().map(|a| a.to_lowercase()).collect();
                let reason =
                    (state.bounced.is_empty()).then(|| "a bounce for an address no contact uses".to_string());
                Ok(finish(
                    changes,
                    InboundMail { outcome: Some(MailOutcome::Bounce { addresses }), ..record },
                    InboundStatus::Accepted,
                    reason,
                    None,
                ))
            }
            MailClass::Personal | MailClass::List | MailClass::Automated => {
                match process(m, raw, &state, record.clone(), env) {
                    Ok(decided) => Ok(decided),
                    Err(DeskError::Invalid(e)) => Ok(finish(
                        stored(env.changes(actor)),
                        record,
                        InboundStatus::Quarantined,
                        Some(e.to_string()),
                        None,
                    )),
                    Err(DeskError::TooLarge { what, size, limit }) => Ok(finish(
                        stored(env.changes(actor)),
                        record,
                        InboundStatus::Quarantined,
                        Some(format!("{what} is {size} bytes, the limit is {limit}")),
                        None,
                    )),
                    Err(other) => Err(other),
                }
            }
        }
    }

    fn finish(mut output: Received, receipt: &CommitReceipt) -> Received {
        if let Some(item) = output.mail.item
            && let Some(n) = receipt.number_of(item)
        {
            output.item_number = Some(n);
        }
        output
    }
}

/// Adds the record (with its final status) and its event to a change set.
fn finish(
    mut changes: ChangeSet,
    mut record: InboundMail,
    status: InboundStatus,
    reason: Option<String>,
    item_number: Option<i64>,
) -> Decided<Received> {
    record.status = status;
    record.reason = reason.map(|r| r.chars().take(1000).collect());
    changes.event(
        record.item,
        EventData::EmailReceived {
            mail: record.id,
            class: record.class,
            status,
            reason: record.reason.clone(),
        },
    );
    changes.insert(Record::InboundMail(record.clone()));
    Decided { changes, output: Received { mail: record, duplicate: false, item_number } }
}

/// A contact for an address Tandem has not seen: a customer without a login.
///
/// Hook for organizations: once they exist, the new contact joins the organization that owns the
/// address's domain here (`address.rsplit_once('@')`), in the same change set.
fn new_contact(
    mailbox: &Mailbox,
    address: &str,
    organizations: &[Organization],
    env: &Env<'_>,
    ws: crate::ids::WorkspaceId,
) -> User {
    let name = mailbox
        .name
        .as_deref()
        .and_then(|n| validate_title("name", n.trim_matches('"'), 200).ok())
        .unwrap_or_else(|| address.split('@').next().unwrap_or(address).to_string());
    User {
        id: env.new_id::<UserId>(),
        workspace_id: ws,
        name,
        email: Some(address.to_string()),
        handle: None,
        role: Role::Customer,
        active: true,
        email_bounce: None,
        organization: organization_for(organizations, address),
        created_at: env.now,
        version: 1,
    }
}

/// The organization a new contact with this (normalised) address joins.
pub(crate) fn organization_for(
    organizations: &[Organization],
    address: &str,
) -> Option<crate::ids::OrganizationId> {
    let domain = email_domain(address)?;
    organizations.iter().find(|o| o.domains.iter().any(|d| d == domain)).map(|o| o.id)
}

/// Finds or creates the user behind an address, recording new contacts in `changes`.
#[allow(clippy::too_many_arguments)]
fn person(
    changes: &mut ChangeSet,
    known: &[User],
    created: &mut Vec<User>,
    mailbox: &Mailbox,
    field: &str,
    organizations: &[Organization],
    env: &Env<'_>,
    ws: crate::ids::WorkspaceId,
) -> Result<User, Invalid> {
    let address = normalise_email(field, &mailbox.address)?;
    if let Some(u) = known.iter().chain(created.iter()).find(|u| u.email.as_deref() == Some(address.as_str()))
    {
        return Ok(u.clone());
    }
    let contact = new_contact(mailbox, &address, organizations, env, ws);
    changes.event(
        None,
        EventData::RecordCreated { record: RecordKind::User, id: contact.id.0, name: contact.name.clone() },
    );
    changes.insert(Record::User(contact.clone()));
    created.push(contact.clone());
    Ok(contact)
}

/// The body as stored text: what the sender wrote, or a line naming the attachments.
fn body_or_placeholder(m: &InboundEmail) -> Body {
    match &m.body {
        Some(Body::Text(t)) if !t.trim().is_empty() => Body::Text(t.clone()),
        Some(Body::Html(h)) if !html_to_text(h).trim().is_empty() => Body::Html(h.clone()),
        _ if !m.files.is_empty() => Body::Text(format!(
            "(no text; attached: {})",
            m.files.iter().map(|f| f.filename.as_str()).collect::<Vec<_>>().join(", ")
        )),
        _ => Body::Text("(empty message)".into()),
    }
}

fn clean_text(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).take(max).collect()
}

fn title_of(subject: &str) -> String {
    let t: String = subject.chars().map(|c| if c.is_control() { ' ' } else { c }).take(300).collect();
    let t = t.trim();
    if t.is_empty() { "(no subject)".to_string() } else { t.to_string() }
}

fn process(
    m: &InboundEmail,
    raw: &RawMail,
    state: &MailState,
    mut record: InboundMail,
    env: &Env<'_>,
) -> Result<Decided<Received>, DeskError> {
    let ws = record.workspace_id;
    let settings = state
        .settings
        .as_ref()
        .ok_or_else(|| Invalid::new("recipients", "the workspace receives no mail (no mail settings)"))?;
    let from = m.from.as_ref().ok_or_else(|| Invalid::new("from", "the message names no sender"))?;
    if settings.is_ours(&from.address) {
        // Mail "from" our own address is ours coming back or a forgery; neither makes an item.
        return Err(Invalid::new(
            "from",
            format!("{} is one of this workspace's own addresses", from.address),
        )
        .into());
    }
    let mut changes = ChangeSet::new(ws, ActorRef::System, env.now);
    changes.blob(m.sha256.clone(), raw.clone());
    let mut created = Vec::new();
    let known: Vec<User> = state.sender.iter().chain(&state.copied).cloned().collect();
    let sender = person(&mut changes, &known, &mut created, from, "from", &state.organizations, env, ws)?;
    if !sender.active {
        return Err(Invalid::new("from", format!("{} belongs to a disabled account", from.address)).into());
    }
    if sender.email_bounce.is_some() {
        // Mail from the address works again.
        let next = User { email_bounce: None, version: sender.version + 1, ..sender.clone() };
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::User,
                id: sender.id.0,
                changes: diff(&sender, &next),
            },
        );
        changes.update(Record::User(next), sender.version);
    }
    changes.actor = ActorRef::User(sender.id);
    let author = Actor::user(sender.clone(), TokenScope::Write);

    let mut followers = vec![sender.id];
    if settings.copied_follow {
        for c in &m.copied {
            if followers.len() > MAX_COPIED_FOLLOWERS {
                break;
            }
            if settings.is_ours(&c.address) || split_plus(&c.address).0 == split_plus(&from.address).0 {
                continue;
            }
            // A malformed Cc address is skipped, not a reason to refuse the message.
            let Ok(user) = person(&mut changes, &known, &mut created, c, "cc", &state.organizations, env, ws)
            else {
                continue;
            };
            if user.active && !followers.contains(&user.id) {
                followers.push(user.id);
            }
        }
    }

    let candidates = ThreadCandidates {
        token: state.token.as_ref(),
        referenced: state.referenced.as_ref(),
        tagged: state.tagged.as_ref(),
        sender: Some(sender.id),
        sender_is_staff: sender.role.is_staff(),
    };
    let type_of = |id: ItemTypeId| {
        state
            .types
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| Invalid::new("item_type", format!("no item type {id}")))
    };
    let threaded = match decide_thread(&candidates) {
        ThreadDecision::New => None,
        ThreadDecision::Reply { item, .. } => {
            [&state.token, &state.referenced, &state.tagged].into_iter().flatten().find(|i| i.id == item)
        }
    };
    let mut item_number = None;
    match threaded {
        None => {
            let t = type_of(settings.item_type_for(m.recipients.iter().map(String::as_str))?)?;
            let item = new_item(&mut changes, &author, t, m, &followers, env)?;
            record.outcome = Some(MailOutcome::CreatedItem { item: item.id });
            record.item = Some(item.id);
        }
        Some(old) => {
            let t = type_of(old.item_type)?;
            match reply_action(old.category, settings.reply_policy(old.item_type), sender.role.is_staff()) {
                ReplyAction::NewLinkedItem => {
                    let item = new_item(&mut changes, &author, t, m, &followers, env)?;
                    let link = ItemLink {
                        id: env.new_id(),
                        workspace_id: ws,
                        from: item.id,
                        to: old.id,
                        kind: LinkKind::Relates,
                        dependency: None,
                        created_at: env.now,
                        version: 1,
                    };
                    let data =
                        EventData::ItemLinked { link: link.id, kind: link.kind, from: item.id, to: old.id };
                    changes.event(Some(item.id), data.clone());
                    changes.event(Some(old.id), data);
                    changes.insert(Record::Link(link));
                    record.outcome = Some(MailOutcome::CreatedLinkedItem { item: item.id, closed: old.id });
                    record.item = Some(item.id);
                }
                action => {
                    let message = post(&mut changes, &author, old, t, m, &followers, action, env)?;
                    record.outcome = Some(MailOutcome::PostedMessage { item: old.id, message });
                    record.item = Some(old.id);
                    item_number = Some(old.number);
                }
            }
        }
    }
    Ok(finish(changes, record, InboundStatus::Accepted, None, item_number))
}

fn new_item(
    changes: &mut ChangeSet,
    author: &Actor,
    t: &ItemType,
    m: &InboundEmail,
    followers: &[UserId],
    env: &Env<'_>,
) -> Result<Item, DeskError> {
    let id: ItemId = env.new_id();
    let requester = author.user_id();
    let description = match body_or_placeholder(m) {
        Body::Text(t) => t,
        Body::Html(h) => html_to_text(&crate::conversation::sanitize_html(&h)),
    };
    let category = t.workflow.status(&t.workflow.defaults.create).map(|s| s.category).ok_or_else(|| {
        Invalid::new("item_type", format!("the workflow of '{}' has no create status", t.name))
    })?;
    let item = Item {
        id,
        workspace_id: author.workspace_id,
        number: 0,
        item_type: t.id,
        kind: t.kind,
        title: title_of(&m.subject),
        description: clean_text(description.trim(), MAX_DESCRIPTION_CHARS),
        project: None,
        folder: None,
        parent: None,
        requester,
        assignees: Vec::new(),
        followers: followers.to_vec(),
        priority: Priority::Normal,
        status: t.workflow.defaults.create.clone(),
        category,
        custom: BTreeMap::new(),
        channel: Channel::Email,
        created_by: author.reference(),
        created_at: env.now,
        updated_at: env.now,
        done_at: category.is_done().then_some(env.now),
        plan: Default::default(),
        version: 1,
    };
    changes.insert(Record::Item(item.clone()));
    changes.event(
        Some(id),
        EventData::ItemCreated {
            item_type: t.id,
            kind: t.kind,
            title: item.title.clone(),
            status: item.status.clone(),
            requester,
            channel: Channel::Email,
        },
    );
    attach(changes, author, &item, None, &m.files, env)?;
    Ok(item)
}

#[allow(clippy::too_many_arguments)]
fn post(
    changes: &mut ChangeSet,
    author: &Actor,
    old: &Item,
    t: &ItemType,
    m: &InboundEmail,
    followers: &[UserId],
    action: ReplyAction,
    env: &Env<'_>,
) -> Result<MessageId, DeskError> {
    let body = match body_or_placeholder(m) {
        Body::Text(t) => Body::Text(clean_text(&t, crate::conversation::MAX_MESSAGE_CHARS)),
        html => html,
    };
    let (text, html) = render_body(&body)?;
    let message_id: MessageId = env.new_id();
    let attachments = attach(changes, author, old, Some(message_id), &m.files, env)?;
    let message = Message {
        id: message_id,
        workspace_id: author.workspace_id,
        item: old.id,
        author: author.reference(),
        visibility: Visibility::Public,
        channel: Channel::Email,
        text,
        html,
        attachments: attachments.iter().map(|a| a.id).collect(),
        mentions: Vec::new(),
        email: Some(m.meta.clone()),
        created_at: env.now,
        version: 1,
    };
    changes.event(
        Some(old.id),
        EventData::MessagePosted {
            message: message.id,
            visibility: Visibility::Public,
            channel: Channel::Email,
            mentions: Vec::new(),
        },
    );
    changes.insert(Record::Message(message));
    let mut next = touched(old, env);
    let added: Vec<UserId> = followers.iter().filter(|f| !old.followers.contains(f)).copied().collect();
    if !added.is_empty() {
        next.followers.extend(&added);
        changes.event(Some(old.id), EventData::FollowersChanged { added, removed: vec![] });
    }
    if action == ReplyAction::PostAndReopen {
        let target = t.workflow.defaults.customer_reply.clone();
        if target != old.status {
            move_to_status(changes, &mut next, &t.workflow, &target, env);
        }
    }
    changes.update(Record::Item(next), old.version);
    Ok(message_id)
}
