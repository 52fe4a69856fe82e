//! Live chat commands. A visitor acts through their chat token (the adapter hashes it; the
//! command compares digests), whether signed in or not: an anonymous visitor's commands run as
//! [`Actor::system`] and the token is their only credential. Agents, managers and
//! administrators take, answer and end chats.

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{Record, RecordKind};
use crate::chat::{
    Chat, ChatAuthor, ChatMessage, ChatStatus, MAX_CHAT_MESSAGE_CHARS, MAX_CHAT_MESSAGES, visitor_may_send,
};
use crate::conversation::{Message, Visibility, text_to_html};
use crate::desk::{Command, Decided, Env, load};
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::hierarchy::validate_title;
use crate::ids::{ChatId, ItemId, ItemTypeId, UserId};
use crate::item::{ActorRef, Channel, Item, ItemKind, ItemType, Priority};
use crate::people::{Organization, Role, User, email_domain, normalise_email};
use crate::store::{self, RecordQuery, Store};

/// Agents and above, with a token that may write.
pub(crate) fn check_chat_agent(actor: &Actor) -> Result<(), DeskError> {
    let agent = match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.active && matches!(u.role, Role::Admin | Role::Manager | Role::Agent),
    };
    if !agent {
        return Err(DeskError::Forbidden("only agents, managers and administrators answer chats".into()));
    }
    can(actor, Action::CreateItem, Target::Workspace).into_result()
}

/// Constant-time comparison of two digests, so a timing difference tells nothing about a token.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a visitor's token against the chat. A wrong token is "no such chat": a visitor cannot
/// even learn that somebody else's chat exists.
pub(crate) fn check_visitor(chat: &Chat, token_sha256: &str) -> Result<(), DeskError> {
    if chat.token_sha256.is_empty() || !same_digest(&chat.token_sha256, token_sha256) {
        return Err(DeskError::not_found(format!("chat {}", chat.id)));
    }
    Ok(())
}

fn message_text(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Invalid::new("text", "must not be empty"));
    }
    if text.chars().count() > MAX_CHAT_MESSAGE_CHARS {
        return Err(Invalid::new("text", format!("must be at most {MAX_CHAT_MESSAGE_CHARS} characters")));
    }
    Ok(text.to_string())
}

fn display_name(actor: &Actor) -> String {
    match &actor.kind {
        ActorKind::User(u) => u.name.clone(),
        ActorKind::ServerAdmin => "Administrator".into(),
        ActorKind::System => "Tandem".into(),
    }
}

fn new_message(chat: &mut Chat, author: ChatAuthor, name: &str, text: String, env: &Env<'_>) -> ChatMessage {
    chat.message_count += 1;
    ChatMessage {
        id: env.new_id(),
        workspace_id: chat.workspace_id,
        chat: chat.id,
        author,
        author_name: name.to_string(),
        text,
        seq: chat.message_count,
        at: env.now,
        version: 1,
    }
}

/// Opens a chat. `token_sha256` is the digest of the secret the adapter hands the visitor.
#[derive(Debug, Clone)]
pub struct StartChat {
    pub name: String,
    pub email: Option<String>,
    /// The first message, if the visitor wrote one already.
    pub text: Option<String>,
    pub page: Option<String>,
    pub token_sha256: String,
}

impl Command for StartChat {
    type State = ();
    type Output = (Chat, Vec<ChatMessage>);

    async fn load(&self, _: &Actor, _: &dyn Store) -> Result<(), DeskError> {
        Ok(())
    }

    fn decide(&self, actor: &Actor, (): (), env: &Env<'_>) -> Result<Decided<Self::Output>, DeskError> {
        if self.token_sha256.len() != 64 {
            return Err(Invalid::new("token", "a chat needs the SHA-256 of its token").into());
        }
        let (requester, name, email) = match &actor.kind {
            ActorKind::User(u) if u.active => (Some(u.id), u.name.clone(), u.email.clone()),
            ActorKind::User(_) => return Err(DeskError::Forbidden("the account is disabled".into())),
            _ => {
                let name = validate_title("name", &self.name, 100)?;
                let email = match self.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                    Some(e) => Some(normalise_email("email", e)?),
                    None => return Err(Invalid::new("email", "is required to start a chat").into()),
                };
                (None, name, email)
            }
        };
        let page = self
            .page
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.chars().take(500).collect());
        let mut chat = Chat {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            requester,
            visitor_name: name.clone(),
            visitor_email: email,
            token_sha256: self.token_sha256.clone(),
            status: ChatStatus::Waiting,
            agent: None,
            item: None,
            page,
            message_count: 0,
            started_at: env.now,
            updated_at: env.now,
            ended_at: None,
            version: 1,
        };
        let mut messages = Vec::new();
        if let Some(text) = self.text.as_deref().filter(|t| !t.trim().is_empty()) {
            messages.push(new_message(&mut chat, ChatAuthor::Visitor, &name, message_text(text)?, env));
        }
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordCreated {
                record: RecordKind::Chat,
                id: chat.id.0,
                name: chat.visitor_name.clone(),
            },
        );
        changes.insert(Record::Chat(chat.clone()));
        for m in &messages {
            changes.insert(Record::ChatMessage(m.clone()));
        }
        Ok(Decided { changes, output: (chat.public(), messages) })
    }
}

/// Who sends a message or ends a chat.
#[derive(Debug, Clone)]
pub enum ChatParty {
    /// The visitor, by their token's digest.
    Visitor { token_sha256: String },
    /// An agent (the actor).
    Agent,
}

/// A chat with its messages, as loaded by the chat commands.
#[derive(Debug, Clone)]
pub struct ChatState {
    pub chat: Chat,
    pub messages: Vec<ChatMessage>,
}

async fn load_chat(store: &dyn Store, actor: &Actor, id: ChatId) -> Result<ChatState, DeskError> {
    let chat: Chat = load(store, actor.workspace_id, id).await?;
    let mut messages: Vec<ChatMessage> =
        store::list(store, actor.workspace_id, &RecordQuery::children_of(id.0)).await?;
    messages.sort_by_key(|m| m.seq);
    Ok(ChatState { chat, messages })
}

#[derive(Debug, Clone)]
pub struct PostChatMessage {
    pub chat: ChatId,
    pub from: ChatParty,
    pub text: String,
}

impl Command for PostChatMessage {
    type State = ChatState;
    type Output = ChatMessage;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ChatState, DeskError> {
        load_chat(store, actor, self.chat).await
    }

    fn decide(
        &self,
        actor: &Actor,
        state: ChatState,
        env: &Env<'_>,
    ) -> Result<Decided<ChatMessage>, DeskError> {
        let ChatState { chat: old, messages } = state;
        let (author, name) = match &self.from {
            ChatParty::Visitor { token_sha256 } => {
                check_visitor(&old, token_sha256)?;
                let recent: Vec<_> =
                    messages.iter().filter(|m| m.author == ChatAuthor::Visitor).map(|m| m.at).collect();
                if !visitor_may_send(&recent, env.now) {
                    return Err(DeskError::RateLimited(
                        "too many messages in a minute; wait a moment before sending more".into(),
                    ));
                }
                (ChatAuthor::Visitor, old.visitor_name.clone())
            }
            ChatParty::Agent => {
                check_chat_agent(actor)?;
                let user = actor.user_id();
                (user.map_or(ChatAuthor::System, |user| ChatAuthor::Agent { user }), display_name(actor))
            }
        };
        if old.status == ChatStatus::Ended {
            return Err(DeskError::Conflict("the chat has ended".into()));
        }
        if old.message_count as usize >= MAX_CHAT_MESSAGES {
            return Err(DeskError::Conflict(format!(
                "a chat holds at most {MAX_CHAT_MESSAGES} messages; end it and carry on in the ticket"
            )));
        }
        let mut chat = Chat { updated_at: env.now, version: old.version + 1, ..old.clone() };
        // An agent who answers a waiting chat has taken it.
        if let ChatAuthor::Agent { user } = author
            && chat.status == ChatStatus::Waiting
        {
            chat.status = ChatStatus::Active;
            chat.agent = Some(user);
        }
        let message = new_message(&mut chat, author, &name, message_text(&self.text)?, env);
        let mut changes = env.changes(actor);
        changes.update(Record::Chat(chat), old.version);
        changes.insert(Record::ChatMessage(message.clone()));
        Ok(Decided { changes, output: message })
    }
}

/// An agent takes a waiting chat (or takes over an active one).
#[derive(Debug, Clone)]
pub struct TakeChat {
    pub chat: ChatId,
}

impl Command for TakeChat {
    type State = ChatState;
    type Output = Chat;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<ChatState, DeskError> {
        load_chat(store, actor, self.chat).await
    }

    fn decide(&self, actor: &Actor, state: ChatState, env: &Env<'_>) -> Result<Decided<Chat>, DeskError> {
        check_chat_agent(actor)?;
        let old = state.chat;
        if old.status == ChatStatus::Ended {
            return Err(DeskError::Conflict("the chat has ended".into()));
        }
        let Some(agent) = actor.user_id() else {
            return Err(DeskError::Forbidden("a chat is taken by a person".into()));
        };
        if old.agent == Some(agent) {
            return Ok(Decided { changes: env.changes(actor), output: old.public() });
        }
        let mut chat = Chat {
            status: ChatStatus::Active,
            agent: Some(agent),
            updated_at: env.now,
            version: old.version + 1,
            ..old.clone()
        };
        let joined = format!("{} joined the chat", display_name(actor));
        let message = new_message(&mut chat, ChatAuthor::System, "Tandem", joined, env);
        let mut changes = env.changes(actor);
        changes.update(Record::Chat(chat.clone()), old.version);
        changes.insert(Record::ChatMessage(message));
        Ok(Decided { changes, output: chat.public() })
    }
}

/// Ends a chat. Unless it is empty, it becomes a ticket (of `item_type`, else the workspace's
/// first ticket type) whose requester is the signed-in requester or the contact with the
/// visitor's address (made if new), and whose public conversation is the transcript.
#[derive(Debug, Clone)]
pub struct EndChat {
    pub chat: ChatId,
    pub by: ChatParty,
    pub item_type: Option<ItemTypeId>,
}

#[derive(Debug, Clone)]
pub struct EndChatState {
    pub chat: ChatState,
    pub item_types: Vec<ItemType>,
    /// The person the ticket is for, when they exist already.
    pub requester: Option<User>,
    pub organizations: Vec<Organization>,
}

impl Command for EndChat {
    type State = EndChatState;
    type Output = Chat;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<EndChatState, DeskError> {
        let ws = actor.workspace_id;
        let chat = load_chat(store, actor, self.chat).await?;
        let item_types: Vec<ItemType> = store::list(store, ws, &RecordQuery::all()).await?;
        let requester = match (chat.chat.requester, chat.chat.visitor_email.as_deref()) {
            (Some(id), _) => store::get::<User>(store, ws, id.0).await?,
            (None, Some(email)) => store.user_by_email(ws, email).await?,
            (None, None) => None,
        };
        let organizations =
            if requester.is_none() { store::list(store, ws, &RecordQuery::all()).await? } else { Vec::new() };
        Ok(EndChatState { chat, item_types, requester, organizations })
    }

    fn decide(&self, actor: &Actor, state: EndChatState, env: &Env<'_>) -> Result<Decided<Chat>, DeskError> {
        let EndChatState { chat: ChatState { chat: old, messages }, item_types, requester, organizations } =
            state;
        match &self.by {
            ChatParty::Visitor { token_sha256 } => {
                check_visitor(&old, token_sha256)?;
                if self.item_type.is_some() {
                    return Err(DeskError::Forbidden("visitors do not choose the ticket type".into()));
                }
            }
            ChatParty::Agent => check_chat_agent(actor)?,
        }
        if old.status == ChatStatus::Ended {
            return Err(DeskError::Conflict("the chat has ended already".into()));
        }
        let mut chat = Chat {
            status: ChatStatus::Ended,
            ended_at: Some(env.now),
            updated_at: env.now,
            version: old.version + 1,
            ..old.clone()
        };
        let mut changes = env.changes(actor);
        let transcript: Vec<&ChatMessage> =
            messages.iter().filter(|m| m.author != ChatAuthor::System).collect();
        if !transcript.is_empty() {
            let t = match self.item_type {
                Some(id) => item_types
                    .iter()
                    .find(|t| t.id == id)
                    .ok_or_else(|| Invalid::new("item_type", format!("no item type {id}")))?,
                None => item_types
                    .iter()
                    .filter(|t| t.kind == ItemKind::Ticket)
                    .min_by_key(|t| (t.created_at, t.id))
                    .ok_or_else(|| Invalid::new("item_type", "the workspace has no ticket type"))?,
            };
            let requester = match requester {
                Some(u) => Some(u.id),
                None => match &old.visitor_email {
                    Some(email) => {
                        let contact = new_contact(&old, email, &organizations, env);
                        changes.event(
                            None,
                            EventData::RecordCreated {
                                record: RecordKind::User,
                                id: contact.id.0,
                                name: contact.name.clone(),
                            },
                        );
                        let id = contact.id;
                        changes.insert(Record::User(contact));
                        Some(id)
                    }
                    None => None,
                },
            };
            let item = ticket(actor, &old, t, requester, env)?;
            chat.item = Some(item.id);
            changes.insert(Record::Item(item.clone()));
            changes.event(
                Some(item.id),
                EventData::ItemCreated {
                    item_type: t.id,
                    kind: t.kind,
                    title: item.title.clone(),
                    status: item.status.clone(),
                    requester,
                    channel: Channel::Widget,
                },
            );
            for m in transcript {
                let author = match m.author {
                    ChatAuthor::Visitor => requester.map_or(ActorRef::System, ActorRef::User),
                    ChatAuthor::Agent { user } => ActorRef::User(user),
                    ChatAuthor::System => ActorRef::System,
                };
                let message = Message {
                    id: env.new_id(),
                    workspace_id: actor.workspace_id,
                    item: item.id,
                    author,
                    visibility: Visibility::Public,
                    channel: Channel::Widget,
                    text: m.text.clone(),
                    html: text_to_html(&m.text),
                    attachments: Vec::new(),
                    mentions: Vec::new(),
                    email: None,
                    created_at: m.at,
                    version: 1,
                };
                changes.event(
                    Some(item.id),
                    EventData::MessagePosted {
                        message: message.id,
                        visibility: Visibility::Public,
                        channel: Channel::Widget,
                        mentions: Vec::new(),
                    },
                );
                changes.insert(Record::Message(message));
            }
        }
        let who = match &self.by {
            ChatParty::Visitor { .. } => old.visitor_name.clone(),
            ChatParty::Agent => display_name(actor),
        };
        let ended =
            new_message(&mut chat, ChatAuthor::System, "Tandem", format!("{who} ended the chat"), env);
        changes.insert(Record::ChatMessage(ended));
        changes.event(
            None,
            EventData::RecordUpdated {
                record: RecordKind::Chat,
                id: chat.id.0,
                changes: vec![crate::event::FieldChange {
                    field: "status".into(),
                    from: serde_json::Value::String(old.status.as_str().into()),
                    to: serde_json::Value::String(ChatStatus::Ended.as_str().into()),
                }],
            },
        );
        changes.update(Record::Chat(chat.clone()), old.version);
        Ok(Decided { changes, output: chat.public() })
    }
}

fn new_contact(chat: &Chat, email: &str, organizations: &[Organization], env: &Env<'_>) -> User {
    let domain = email_domain(email);
    User {
        id: env.new_id::<UserId>(),
        workspace_id: chat.workspace_id,
        name: chat.visitor_name.clone(),
        email: Some(email.to_string()),
        handle: None,
        role: Role::Customer,
        active: true,
        email_bounce: None,
        organization: organizations
            .iter()
            .find(|o| domain.is_some_and(|d| o.domains.iter().any(|x| x == d)))
            .map(|o| o.id),
        created_at: env.now,
        version: 1,
    }
}

fn ticket(
    actor: &Actor,
    chat: &Chat,
    t: &ItemType,
    requester: Option<UserId>,
    env: &Env<'_>,
) -> Result<Item, DeskError> {
    let id: ItemId = env.new_id();
    let status = t.workflow.defaults.create.clone();
    let category = t.workflow.status(&status).map(|s| s.category).ok_or_else(|| {
        Invalid::new("item_type", format!("the workflow of '{}' has no create status", t.name))
    })?;
    let title: String = format!("Chat with {}", chat.visitor_name).chars().take(300).collect();
    let agent = chat.agent.map(crate::item::Assignee::User);
    Ok(Item {
        id,
        workspace_id: actor.workspace_id,
        number: 0,
        item_type: t.id,
        kind: t.kind,
        title,
        description: format!(
            "Live chat started {} from the widget{}.",
            chat.started_at.format("%Y-%m-%d %H:%M UTC"),
            chat.page.as_deref().map(|p| format!(" on {p}")).unwrap_or_default()
        ),
        project: None,
        folder: None,
        parent: None,
        requester,
        assignees: agent.into_iter().collect(),
        followers: requester.into_iter().collect(),
        priority: Priority::Normal,
        status,
        category,
        custom: Default::default(),
        channel: Channel::Widget,
        created_by: actor.reference(),
        created_at: env.now,
        updated_at: env.now,
        done_at: category.is_done().then_some(env.now),
        plan: Default::default(),
        version: 1,
    })
}

fn check_chat_reader(actor: &Actor) -> Result<(), DeskError> {
    let agent = match &actor.kind {
        ActorKind::ServerAdmin | ActorKind::System => true,
        ActorKind::User(u) => u.active && matches!(u.role, Role::Admin | Role::Manager | Role::Agent),
    };
    if !agent {
        return Err(DeskError::Forbidden("only agents, managers and administrators read chats".into()));
    }
    can(actor, Action::ViewItem, Target::Workspace).into_result()
}

fn after(messages: Vec<ChatMessage>, seq: u32) -> Vec<ChatMessage> {
    messages.into_iter().filter(|m| m.seq > seq).collect()
}

impl crate::desk::Desk {
    /// The workspace's chats (staff), newest first; only those in `status` when given.
    pub async fn chats(&self, actor: &Actor, status: Option<ChatStatus>) -> Result<Vec<Chat>, DeskError> {
        check_chat_reader(actor)?;
        let mut chats: Vec<Chat> =
            store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::all()).await?;
        chats.retain(|c| status.is_none_or(|s| c.status == s));
        chats.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        Ok(chats.into_iter().map(Chat::public).collect())
    }

    /// One chat and its messages after `seq` (staff).
    pub async fn chat(
        &self,
        actor: &Actor,
        id: ChatId,
        seq: u32,
    ) -> Result<(Chat, Vec<ChatMessage>), DeskError> {
        check_chat_reader(actor)?;
        let state = load_chat(self.store().as_ref(), actor, id).await?;
        Ok((state.chat.public(), after(state.messages, seq)))
    }

    /// A visitor's own chat by its token's digest, with its messages after `seq`. Any other
    /// chat, or a wrong token, is not found.
    pub async fn visitor_chat(
        &self,
        ws: crate::ids::WorkspaceId,
        id: ChatId,
        token_sha256: &str,
        seq: u32,
    ) -> Result<(Chat, Vec<ChatMessage>), DeskError> {
        let state = load_chat(self.store().as_ref(), &Actor::system(ws), id).await?;
        check_visitor(&state.chat, token_sha256)?;
        Ok((state.chat.public(), after(state.messages, seq)))
    }

    /// The signed-in requester's own chats (their profile), newest first.
    pub async fn my_chats(&self, actor: &Actor) -> Result<Vec<Chat>, DeskError> {
        let Some(user) = actor.user_id() else { return Ok(Vec::new()) };
        let mut chats: Vec<Chat> =
            store::list(self.store().as_ref(), actor.workspace_id, &RecordQuery::children_of(user.0)).await?;
        chats.retain(|c| c.requester == Some(user));
        chats.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        Ok(chats.into_iter().map(Chat::public).collect())
    }

    /// One of the signed-in requester's own chats with its whole transcript.
    pub async fn my_chat(&self, actor: &Actor, id: ChatId) -> Result<(Chat, Vec<ChatMessage>), DeskError> {
        let state = load_chat(self.store().as_ref(), actor, id).await?;
        if actor.user_id().is_none() || state.chat.requester != actor.user_id() {
            return Err(DeskError::not_found(format!("chat {id}")));
        }
        Ok((state.chat.public(), state.messages))
    }
}

impl crate::desk::Desk {
    /// The workspace whose widget snippet the actor may copy and paste (those who set up the
    /// workspace: managers and administrators).
    pub async fn widget_workspace(&self, actor: &Actor) -> Result<crate::hierarchy::Workspace, DeskError> {
        can(actor, Action::ManageStructure, Target::Workspace).into_result()?;
        load(self.store().as_ref(), actor.workspace_id, actor.workspace_id).await
    }
}
