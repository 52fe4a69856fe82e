//! Outgoing webhooks: creating, changing and deleting them, and relaying the event log to them.

use serde_json::json;

use crate::access::{Action, Actor, ActorKind, Target, can};
use crate::change::{NewJob, Record, RecordKind};
use crate::desk::{Command, Decided, Env, load};
use crate::error::DeskError;
use crate::event::{Event, EventData, FieldChange};
use crate::ids::WebhookId;
use crate::store::{EventQuery, RecordQuery, Store, get, list};
use crate::webhook::{
    DELIVER_WEBHOOK, EventCursor, WEBHOOK_RELAY, Webhook, origin, validate_events, validate_secret,
    validate_url,
};

fn check(actor: &Actor) -> Result<(), DeskError> {
    can(actor, Action::ManageStructure, Target::Workspace).into_result()
}

/// Creates a webhook. The API makes up the secret when the caller gives none.
#[derive(Debug, Clone)]
pub struct CreateWebhook {
    pub url: String,
    pub secret: String,
    /// Event names or namespaces; empty means every event.
    pub events: Vec<String>,
    pub active: bool,
    /// A REST-hook subscription (see [`Webhook::rest_hook`]).
    pub rest_hook: bool,
}

impl Command for CreateWebhook {
    type State = ();
    type Output = Webhook;

    async fn load(&self, _: &Actor, _: &dyn Store) -> Result<(), DeskError> {
        Ok(())
    }

    fn decide(&self, actor: &Actor, _: (), env: &Env<'_>) -> Result<Decided<Webhook>, DeskError> {
        check(actor)?;
        let hook = Webhook {
            id: env.new_id(),
            workspace_id: actor.workspace_id,
            url: validate_url("url", &self.url, env.limits.allow_private_webhooks)?,
            secret: validate_secret("secret", &self.secret)?,
            events: validate_events("events", &self.events)?,
            active: self.active,
            rest_hook: self.rest_hook,
            created_at: env.now,
            version: 1,
        };
        let mut changes = env.changes(actor);
        // The event names the destination by its origin only: the event log is readable by
        // agents, and a URL's path or query may hold the receiver's credentials.
        changes.event(
            None,
            EventData::RecordCreated { record: RecordKind::Webhook, id: hook.id.0, name: hook.origin() },
        );
        changes.insert(Record::Webhook(hook.clone()));
        Ok(Decided { changes, output: hook })
    }
}

/// Changes a webhook; absent fields stay as they are.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    pub url: Option<String>,
    /// A new signing secret (rotation).
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub active: Option<bool>,
    /// The version the client last read; a stale one is refused with 409.
    #[serde(default)]
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UpdateWebhook {
    pub id: WebhookId,
    pub patch: WebhookPatch,
}

/// The audit trail's view of a change: the destination by origin, the secret only as "changed".
fn audit_changes(old: &Webhook, next: &Webhook) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    if old.url != next.url {
        changes.push(FieldChange {
            field: "url".into(),
            from: json!(origin(&old.url)),
            to: json!(origin(&next.url)),
        });
    }
    if old.secret != next.secret {
        changes.push(FieldChange { field: "secret".into(), from: json!("(hidden)"), to: json!("(changed)") });
    }
    if old.events != next.events {
        changes.push(FieldChange { field: "events".into(), from: json!(old.events), to: json!(next.events) });
    }
    if old.active != next.active {
        changes.push(FieldChange { field: "active".into(), from: json!(old.active), to: json!(next.active) });
    }
    changes
}

impl Command for UpdateWebhook {
    type State = Webhook;
    type Output = Webhook;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Webhook, DeskError> {
        load::<Webhook>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, old: Webhook, env: &Env<'_>) -> Result<Decided<Webhook>, DeskError> {
        check(actor)?;
        if let Some(v) = self.patch.version
            && v != old.version
        {
            return Err(DeskError::Conflict(format!(
                "webhook {} is at version {}, not {v}; reload it and try again",
                old.id, old.version
            )));
        }
        let mut next = old.clone();
        if let Some(url) = &self.patch.url {
            next.url = validate_url("url", url, env.limits.allow_private_webhooks)?;
        }
        if let Some(secret) = &self.patch.secret {
            next.secret = validate_secret("secret", secret)?;
        }
        if let Some(events) = &self.patch.events {
            next.events = validate_events("events", events)?;
        }
        if let Some(active) = self.patch.active {
            next.active = active;
        }
        let audit = audit_changes(&old, &next);
        if audit.is_empty() {
            return Ok(Decided { changes: env.changes(actor), output: old });
        }
        next.version = old.version + 1;
        let mut changes = env.changes(actor);
        changes.event(
            None,
            EventData::RecordUpdated { record: RecordKind::Webhook, id: old.id.0, changes: audit },
        );
        changes.update(Record::Webhook(next.clone()), old.version);
        Ok(Decided { changes, output: next })
    }
}

/// Deletes a webhook. Deliveries already queued for it are dropped when they run.
#[derive(Debug, Clone)]
pub struct DeleteWebhook {
    pub id: WebhookId,
}

impl Command for DeleteWebhook {
    type State = Webhook;
    type Output = ();

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<Webhook, DeskError> {
        load::<Webhook>(store, actor.workspace_id, self.id).await
    }

    fn decide(&self, actor: &Actor, hook: Webhook, env: &Env<'_>) -> Result<Decided<()>, DeskError> {
        check(actor)?;
        let mut changes = env.changes(actor);
        changes.delete(RecordKind::Webhook, hook.id.0, hook.version);
        changes.event(None, EventData::RecordDeleted { record: RecordKind::Webhook, id: hook.id.0 });
        Ok(Decided { changes, output: () })
    }
}

/// Relays the next events of the workspace's log to its webhooks: one `webhook.deliver` job per
/// (event, active webhook that wants it and existed when it happened), and the relay's cursor
/// moved past them — in one commit. Relays running at once on several servers all address the
/// same cursor, so one of them wins each batch and the others re-run from the moved cursor; the
/// delivery keys (`webhook:{webhook}:{seq}`) would drop a repeat even so.
///
/// Only Tandem itself runs this. It writes no event of its own, so relaying never feeds itself.
#[derive(Debug, Clone)]
pub struct RelayEvents {
    /// Most events taken per run.
    pub batch: usize,
    /// How often each delivery is attempted before it becomes a dead letter.
    pub max_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct RelayState {
    pub cursor: Option<EventCursor>,
    pub events: Vec<Event>,
    pub webhooks: Vec<Webhook>,
}

/// What a relay run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub events: usize,
    pub deliveries: usize,
    /// The last sequence number relayed so far.
    pub cursor: i64,
    /// Whether the batch was full, so more events may be waiting.
    pub more: bool,
}

/// A delivery's idempotency key, also sent to the receiver as `Tandem-Delivery`.
pub fn delivery_key(webhook: WebhookId, seq: i64) -> String {
    format!("webhook:{webhook}:{seq}")
}

impl Command for RelayEvents {
    type State = RelayState;
    type Output = Relayed;

    async fn load(&self, actor: &Actor, store: &dyn Store) -> Result<RelayState, DeskError> {
        let ws = actor.workspace_id;
        let cursor = get::<EventCursor>(store, ws, EventCursor::id_for(ws, WEBHOOK_RELAY).0).await?;
        let after = cursor.as_ref().map_or(0, |c| c.seq);
        let events = store.events(ws, &EventQuery { after, item: None, limit: self.batch.max(1) }).await?;
        let webhooks = if events.is_empty() {
            Vec::new()
        } else {
            list::<Webhook>(store, ws, &RecordQuery::all()).await?
        };
        Ok(RelayState { cursor, events, webhooks })
    }

    fn decide(&self, actor: &Actor, state: RelayState, env: &Env<'_>) -> Result<Decided<Relayed>, DeskError> {
        if actor.kind != ActorKind::System {
            return Err(DeskError::Forbidden("only Tandem itself relays the event log".into()));
        }
        let RelayState { cursor, events, webhooks } = state;
        let mut changes = env.changes(actor);
        let Some(last) = events.last().map(|e| e.seq) else {
            let at = cursor.map_or(0, |c| c.seq);
            return Ok(Decided {
                changes,
                output: Relayed { events: 0, deliveries: 0, cursor: at, more: false },
            });
        };
        let mut deliveries = 0;
        for event in &events {
            let name = event.data.name();
            for hook in
                webhooks.iter().filter(|h| h.active && event.happened_since(h.created_at) && h.wants(name))
            {
                let payload =
                    serde_json::to_value(event).map(|event| json!({"webhook": hook.id, "event": event}));
                let payload = payload.map_err(|e| {
                    DeskError::Store(crate::StoreError::Corrupt(format!(
                        "event {} cannot be encoded: {e}",
                        event.seq
                    )))
                })?;
                changes.job(NewJob {
                    id: env.new_id(),
                    kind: DELIVER_WEBHOOK.into(),
                    payload,
                    idempotency_key: delivery_key(hook.id, event.seq),
                    run_at: env.now,
                    max_attempts: self.max_attempts.max(1),
                });
                deliveries += 1;
            }
        }
        match cursor {
            Some(c) => {
                let read = c.version;
                let moved = EventCursor { seq: last, updated_at: env.now, version: read + 1, ..c };
                changes.update(Record::EventCursor(moved), read);
            }
            None => {
                changes.insert(Record::EventCursor(EventCursor {
                    id: EventCursor::id_for(actor.workspace_id, WEBHOOK_RELAY),
                    workspace_id: actor.workspace_id,
                    consumer: WEBHOOK_RELAY.into(),
                    seq: last,
                    updated_at: env.now,
                    version: 1,
                }));
            }
        }
        let output = Relayed {
            events: events.len(),
            deliveries,
            cursor: last,
            more: events.len() >= self.batch.max(1),
        };
        Ok(Decided { changes, output })
    }
}
