//! Messages, attachments and notifications.

use std::sync::Arc;

use crate::access::{Action, Actor, check_item};
use crate::change::{ChangeSet, Record};
use crate::conversation::{
    Attachment, Body, EmailMeta, Message, Visibility, extract_mentions, normalise_content_type, render_body,
    sanitize_filename, sha256_hex,
};
use crate::desk::{Command, Decided, Env, ItemRef, load, load_item};
use crate::error::{DeskError, Invalid};
use crate::event::EventData;
use crate::ids::{AttachmentId, MessageId, NotificationId};
use crate::item::{Channel, Item, ItemType};
use crate::people::{Notification, NotificationKind, User};
use crate::store::Store;

use super::items::{move_to_status, touched};

/// An uploaded file, before it becomes an attachment.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: Arc<[u8]>,
}

/// Validates files and adds their attachments and blobs to a change set.
pub(crate) fn attach(
    changes: &mut ChangeSet,
    actor: &Actor,
    item: &Item,
    message: Option<MessageId>,
    files: &[NewFile],
    env: &Env<'_>,
) -> Result<Vec<Attachment>, DeskError> {
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let size = file.bytes.len() as u64;
        if size > env.limits.max_attachment_bytes {
            return Err(DeskError::TooLarge {
                what: format!("attachment '{}'", file.filename),
                size,
                limit: env.limits.max_attachment_bytes,
            });
        }
        let filename = sanitize_filename(&file.filename).map_err(|e| {
            if files.len() > 1 { Invalid::new(format!("files[{i}].filename"), e.reason) } else { e }
        })?;
        let sha256 = sha256_hex(&file.bytes);
        let attachment = Attachment {
            id: env.new_id::<AttachmentId>(),
            workspace_id: actor.workspace_id,
            item: item.id,
            message,
            filename,
            content_type: normalise_content_type(&file.content_type),
            size,
            sha256: sha256.clone(),
            uploaded_by: actor.reference(),
            created_at: env.now,
            version: 1,
        };
        changes.blob(sha256, file.bytes.clone());
        changes.event(
            Some(item.id),
            EventData::AttachmentAdded {
                attachment: attachment.id,
                filename: attachment.filename.clone(),
                size,
                message,
            },
        );
        changes.insert(Record::Attachment(attachment.clone()));
        out.push(attachment);
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct PostMessage {
    pub item: ItemRef,
    pub visibility: Visibility,
    pub body: Body,
    pub files: Vec<NewFile>,
    pub channel: Channel,
    pub email: Option<EmailMeta>,
}

impl PostMessage {
    pub fn new(item: impl Into<ItemRef>, visibility: Visibility, body: Body) -> Self {
        Self { item: item.into(), visibility, body, files: Vec::new(), channel: Channel::Api, email: None }
    }
}

/// What posting a message produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub message: Message,
    pub attachments: Vec<Attachment>,
    pub item: Item,
}

impl Command for PostMessage {
    /// The item, its type, and the users `@mentioned` in the body.
    type State = (Item, ItemType, Vec<User>);
    type Output = Posted;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Self::State, DeskError> {
        let item = load_item(store, actor.workspace_id, self.item).await?;
        let t = load::<ItemType>(store, actor.workspace_id, item.item_type).await?;
        let handles = match render_body(&self.body) {
            Ok((text, _)) if actor.is_staff() => extract_mentions(&text),
            _ => Vec::new(),
        };
        let mentioned = if handles.is_empty() {
            Vec::new()
        } else {
            store.users_by_handles(actor.workspace_id, &handles).await?
        };
        Ok((item, t, mentioned))
    }

    fn decide(
        &self,
        actor: &Actor,
        (old, t, mentioned): Self::State,
        env: &Env<'_>,
    ) -> Result<Decided<Posted>, DeskError> {
        let action = match self.visibility {
            Visibility::Public => Action::PostPublicMessage,
            Visibility::Internal => Action::PostInternalMessage,
        };
        check_item(actor, action, &old)?;
        if !self.files.is_empty() {
            check_item(actor, Action::AddAttachment, &old)?;
        }
        let (text, html) = render_body(&self.body)?;
        let author_id = actor.user_id();
        // Only active staff can be mentioned: a mention pulls someone into a conversation that
        // may be internal.
        let mentions: Vec<_> = mentioned
            .iter()
            .filter(|u| u.active && u.role.is_staff() && Some(u.id) != author_id)
            .map(|u| u.id)
            .collect();
        let mut changes = env.changes(actor);
        let message_id: MessageId = env.new_id();
        let attachments = attach(&mut changes, actor, &old, Some(message_id), &self.files, env)?;
        let message = Message {
            id: message_id,
            workspace_id: actor.workspace_id,
            item: old.id,
            author: actor.reference(),
            visibility: self.visibility,
            channel: self.channel,
            text,
            html,
            attachments: attachments.iter().map(|a| a.id).collect(),
            mentions: mentions.clone(),
            email: self.email.clone(),
            created_at: env.now,
            version: 1,
        };
        changes.event(
            Some(old.id),
            EventData::MessagePosted {
                message: message.id,
                visibility: self.visibility,
                channel: self.channel,
                mentions: mentions.clone(),
            },
        );
        changes.insert(Record::Message(message.clone()));

        let mut next = touched(&old, env);
        let added: Vec<_> = mentions.iter().filter(|u| !old.followers.contains(u)).copied().collect();
        if !added.is_empty() {
            next.followers.extend(&added);
            changes.event(Some(old.id), EventData::FollowersChanged { added, removed: vec![] });
        }
        for user in &mentions {
            let n = Notification {
                id: env.new_id::<NotificationId>(),
                workspace_id: actor.workspace_id,
                user: *user,
                item: old.id,
                kind: NotificationKind::Mention { message: message.id },
                created_at: env.now,
                read_at: None,
                version: 1,
            };
            changes.insert(Record::Notification(n));
        }
        // The requester answering a waiting or resolved item puts it back in the queue.
        let from_requester = author_id.is_some() && author_id == old.requester;
        if from_requester
            && self.visibility == Visibility::Public
            && matches!(
                old.category,
                crate::workflow::StatusCategory::Waiting | crate::workflow::StatusCategory::Resolved
            )
        {
            let target = t.workflow.defaults.customer_reply.clone();
            if target != old.status {
                move_to_status(&mut changes, &mut next, &t.workflow, &target, env);
            }
        }
        changes.update(Record::Item(next.clone()), old.version);
        Ok(Decided { changes, output: Posted { message, attachments, item: next } })
    }
}

#[derive(Debug, Clone)]
pub struct AddAttachment {
    pub item: ItemRef,
    pub file: NewFile,
}

impl Command for AddAttachment {
    type State = Item;
    type Output = Attachment;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Item, DeskError> {
        load_item(store, actor.workspace_id, self.item).await
    }

    fn decide(&self, actor: &Actor, old: Item, env: &Env<'_>) -> Result<Decided<Attachment>, DeskError> {
        check_item(actor, Action::AddAttachment, &old)?;
        let mut changes = env.changes(actor);
        let mut attachments = attach(&mut changes, actor, &old, None, std::slice::from_ref(&self.file), env)?;
        changes.update(Record::Item(touched(&old, env)), old.version);
        let attachment = attachments.pop().ok_or_else(|| Invalid::new("file", "no file"))?;
        Ok(Decided { changes, output: attachment })
    }
}

#[derive(Debug, Clone)]
pub struct MarkNotificationRead {
    pub id: NotificationId,
}

impl Command for MarkNotificationRead {
    type State = Notification;
    type Output = Notification;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Notification, DeskError> {
        load::<Notification>(store, actor.workspace_id, self.id).await
    }

    fn decide(
        &self,
        actor: &Actor,
        old: Notification,
        env: &Env<'_>,
    ) -> Result<Decided<Notification>, DeskError> {
        if actor.user_id() != Some(old.user) {
            return Err(DeskError::NotFound(format!("notification {}", old.id)));
        }
        let mut changes = env.changes(actor);
        if old.read_at.is_some() {
            return Ok(Decided { changes, output: old });
        }
        let next = Notification { read_at: Some(env.now), version: old.version + 1, ..old.clone() };
        changes.update(Record::Notification(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}
