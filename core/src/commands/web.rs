//! The web channel's commands and its public read: submitting a public web form (signed in, or
//! as a guest on a workspace with open forms) and what the portal shows before anyone signs in.
//!
//! A submission is one commit: the new contact (a guest's first request), the item — decided by
//! [`CreateItem`], so the same validation as the API — and its attachments.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::access::{Access, Action, Actor, ActorKind, check_item};
use crate::change::{Record, RecordKind};
use crate::desk::{Command, Decided, Desk, Env};
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::{Workspace, validate_title};
use crate::ids::{ItemTypeId, UserId, WorkspaceId};
use crate::item::{Channel, Item, ItemType};
use crate::membership::{PortalSettings, WebForm};
use crate::people::{Organization, Role, User, normalise_email};
use crate::store::{RecordQuery, Store, get, list};

use super::conversation::{NewFile, attach};
use super::items::{CreateItem, References};
use super::mail::organization_for;

/// Someone submitting an open form without signing in.
#[derive(Debug, Clone)]
pub struct Guest {
    pub name: String,
    pub email: String,
}

/// Submits a public web form. The actor is either the signed-in requester (`guest: None`) or
/// Tandem itself (`Actor::system`) acting for a guest, which the workspace must allow
/// ([`PortalSettings::open_forms`]); a guest's address becomes (or finds) a customer contact.
#[derive(Debug, Clone)]
pub struct SubmitForm {
    pub item_type: ItemTypeId,
    /// Ignored for surveys, which are titled after the form.
    pub title: String,
    pub description: String,
    pub custom: BTreeMap<String, Value>,
    pub files: Vec<NewFile>,
    pub guest: Option<Guest>,
}

#[derive(Debug, Clone)]
pub struct FormState {
    pub(crate) settings: PortalSettings,
    pub(crate) item_type: Option<ItemType>,
    pub(crate) all_types: Vec<ItemTypeId>,
    /// The guest's account, when the address is known.
    pub(crate) known: Option<User>,
    pub(crate) organizations: Vec<Organization>,
}

impl Command for SubmitForm {
    type State = FormState;
    type Output = Item;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<FormState, DeskError> {
        let ws = actor.workspace_id;
        let settings =
            get::<PortalSettings>(store, ws, ws.0).await?.unwrap_or_else(|| PortalSettings::empty(ws));
        let types: Vec<ItemType> = list(store, ws, &RecordQuery::all()).await?;
        let item_type = types.iter().find(|t| t.id == self.item_type).cloned();
        let (known, organizations) = match &self.guest {
            Some(guest) => match normalise_email("email", &guest.email) {
                Ok(email) => (
                    store.user_by_email(ws, &email).await?,
                    list::<Organization>(store, ws, &RecordQuery::all()).await?,
                ),
                Err(_) => (None, Vec::new()),
            },
            None => (None, Vec::new()),
        };
        Ok(FormState {
            settings,
            item_type,
            all_types: types.iter().map(|t| t.id).collect(),
            known,
            organizations,
        })
    }

    fn decide(&self, actor: &Actor, state: FormState, env: &Env<'_>) -> Result<Decided<Item>, DeskError> {
        let FormState { settings, item_type, all_types, known, organizations } = state;
        let (Some(t), Some(form)) = (item_type, settings.forms.get(&self.item_type).cloned()) else {
            return Err(DeskError::NotFound(format!("form for item type {}", self.item_type)));
        };
        let mut contact = None;
        let requester = match (&actor.kind, &self.guest) {
            (ActorKind::User(_), None) => actor.clone(),
            (ActorKind::System, Some(guest)) => {
                if !settings.open_forms {
                    return Err(DeskError::Forbidden("this workspace's forms need you to sign in".into()));
                }
                let name = validate_title("name", &guest.name, 200)?;
                let email = normalise_email("email", &guest.email)?;
                let user = match known {
                    Some(u) if u.role != Role::Customer => {
                        return Err(Invalid::new("email", "staff sign in to submit requests").into());
                    }
                    Some(u) if !u.active => {
                        return Err(Invalid::new("email", "this address cannot submit requests").into());
                    }
                    Some(u) => u,
                    None => {
                        let user = User {
                            id: env.new_id::<UserId>(),
                            workspace_id: actor.workspace_id,
                            name,
                            email: Some(email.clone()),
                            handle: None,
                            role: Role::Customer,
                            active: true,
                            email_bounce: None,
                            organization: organization_for(&organizations, &email),
                            created_at: env.now,
                            version: 1,
                        };
                        contact = Some(user.clone());
                        user
                    }
                };
                let access = Access::of(&user, &[], &settings, &all_types);
                Actor { access: Some(access), ..Actor::user(user, crate::people::TokenScope::Admin) }
            }
            (ActorKind::System, None) => {
                return Err(Invalid::new("email", "is required: who is asking?").into());
            }
            _ => {
                return Err(DeskError::Forbidden("a signed-in requester submits forms as themselves".into()));
            }
        };
        if !form.attachments && !self.files.is_empty() {
            return Err(Invalid::new("files", "this form takes no attachments").into());
        }
        let title = if form.survey {
            let who = match &requester.kind {
                ActorKind::User(u) => u.name.clone(),
                _ => String::new(),
            };
            let heading = form.title.clone().unwrap_or_else(|| t.name.clone());
            truncate(&format!("{heading} — {who}"), 300)
        } else {
            self.title.clone()
        };
        let create = CreateItem {
            description: if form.survey { String::new() } else { self.description.clone() },
            custom: self.custom.clone(),
            channel: Channel::Portal,
            ..CreateItem::new(t.id, title)
        };
        let Decided { mut changes, output: item } =
            create.decide(&requester, (t, References::default()), env)?;
        // Like mail intake: the item is the requester's (`created_by`), the commit is Tandem's
        // when it acts for a guest.
        changes.actor = actor.reference();
        if let Some(contact) = contact {
            changes.event(
                None,
                EventData::RecordCreated {
                    record: RecordKind::User,
                    id: contact.id.0,
                    name: contact.name.clone(),
                },
            );
            changes.insert(Record::User(contact));
        }
        if !self.files.is_empty() {
            check_item(&requester, Action::AddAttachment, &item)?;
            attach(&mut changes, &requester, &item, None, &self.files, env)?;
        }
        Ok(Decided { changes, output: item })
    }

    fn finish(item: Item, receipt: &crate::change::CommitReceipt) -> Item {
        CreateItem::finish(item, receipt)
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect::<String>().trim().to_string()
}

/// What the portal shows anyone: the workspace, its portal settings and the item types that
/// have a public form (their internal fields removed).
#[derive(Debug, Clone)]
pub struct PortalFace {
    pub workspace: Workspace,
    pub settings: PortalSettings,
    pub forms: Vec<(ItemType, WebForm)>,
}

impl PortalFace {
    pub fn form(&self, item_type: ItemTypeId) -> Option<&(ItemType, WebForm)> {
        self.forms.iter().find(|(t, _)| t.id == item_type)
    }

    /// The name the portal goes by.
    pub fn name(&self) -> &str {
        let branded = self.settings.branding.name.trim();
        if branded.is_empty() { &self.workspace.name } else { branded }
    }
}

impl Desk {
    /// The public face of a workspace's portal; `NotFound` for an unknown workspace. Public by
    /// design: branding and the forms' questions are what a requester sees before signing in.
    pub async fn portal_face(&self, ws: WorkspaceId) -> Result<PortalFace, DeskError> {
        let store = self.store().as_ref();
        let workspace = get::<Workspace>(store, ws, ws.0)
            .await?
            .ok_or_else(|| DeskError::NotFound(format!("workspace {ws}")))?;
        let settings =
            get::<PortalSettings>(store, ws, ws.0).await?.unwrap_or_else(|| PortalSettings::empty(ws));
        let types: Vec<ItemType> = list(store, ws, &RecordQuery::all()).await?;
        let forms = types
            .into_iter()
            .filter_map(|mut t| {
                let form = settings.forms.get(&t.id)?.clone();
                t.fields.retain(|f| !f.internal);
                Some((t, form))
            })
            .collect();
        Ok(PortalFace { workspace, settings, forms })
    }
}
