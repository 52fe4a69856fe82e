//! The `mail.send` job handler: one [`MailJob`] becomes one mail through the server's SMTP relay.
//!
//! A run: find what an earlier run of the job recorded (then there is nothing to do) → read the
//! workspace's settings, the item and the recipient → withhold mail to an address marked
//! bouncing, or over the rate limits (counted from the sent-mail records) → render the
//! workspace's template (or the built-in one) → build it with our Message-ID (derived from the
//! job, so a resend after a crash carries the same id), the thread's References and the item's
//! tokenised Reply-To → send → record what happened with the `RecordOutboundMail` command.
//!
//! Failures: a 4xx answer or a network failure is retried with the queue's backoff (the last
//! attempt records the mail as failed); a 5xx is final, recorded as failed, and a `5.1.x` status
//! marks the recipient's address bouncing.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use tandem_core::commands::RecordOutboundMail;
use tandem_core::mail::{MAIL_SEND_JOB, MailJob, MailSettings, OutboundMail, OutboundStatus};
use tandem_core::store::{Job, OutboundQuery, RecordQuery, get, list};
use tandem_core::{Actor, Desk, DeskError, InboundMail, Item, ItemId, JobFailure, JobHandler, Workspace};

use crate::outbound::{self, RateLimits, Sent, builtin_template, may_send, render, tagged_subject};
use crate::send::Sender;
use crate::token::ReplyKey;

/// How outbound mail is addressed.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The domain of our Message-IDs, and of the sender address of a workspace without an
    /// inbound address (`notifications@<domain>`).
    pub domain: String,
    /// Where people open an item: `{{url}}` is `<public_url>/items/<number>`.
    pub public_url: Option<String>,
    pub limits: RateLimits,
}

/// The `mail.send` job handler.
#[derive(Debug, Clone)]
pub struct MailDelivery {
    desk: Desk,
    sender: Sender,
    key: ReplyKey,
    loop_id: String,
    config: DeliveryConfig,
}

fn retry(e: impl std::fmt::Display) -> JobFailure {
    JobFailure::Retry(e.to_string())
}

/// At most this many Message-IDs go into `References`.
const MAX_REFERENCES: usize = 10;

impl MailDelivery {
    pub fn new(
        desk: Desk,
        sender: Sender,
        key: ReplyKey,
        loop_id: impl Into<String>,
        config: DeliveryConfig,
    ) -> Self {
        Self { desk, sender, key, loop_id: loop_id.into(), config }
    }

    async fn record(
        &self,
        job: &Job,
        mail: OutboundMail,
        bounce_status: Option<String>,
    ) -> Result<(), JobFailure> {
        let system = Actor::system(job.workspace_id);
        self.desk
            .execute(&system, &RecordOutboundMail { mail, bounce_status })
            .await
            .map(|_| ())
            .map_err(|e: DeskError| retry(format!("recording the mail failed: {e}")))
    }

    /// The Message-IDs an item's mail refers to, oldest first: the mail that opened it, then
    /// the latest mail we sent about it.
    async fn references(&self, job: &Job, item: ItemId) -> Result<Vec<String>, JobFailure> {
        let store = self.desk.store().as_ref();
        let ws = job.workspace_id;
        let inbound: Vec<InboundMail> =
            list(store, ws, &RecordQuery { limit: 50, ..RecordQuery::children_of(item.0) })
                .await
                .map_err(retry)?;
        let mut refs: Vec<String> = inbound.iter().filter_map(|m| m.message_id.clone()).take(2).collect();
        let sent = store
            .outbound_mails(
                ws,
                &OutboundQuery {
                    item: Some(item),
                    status: Some(OutboundStatus::Sent),
                    ..OutboundQuery::all(5)
                },
            )
            .await
            .map_err(retry)?;
        for id in sent.into_iter().rev().filter_map(|m| m.message_id) {
            if !refs.contains(&id) {
                refs.push(id);
            }
        }
        let skip = refs.len().saturating_sub(MAX_REFERENCES);
        Ok(refs.split_off(skip))
    }

    /// What was sent within the rate limits' window to this recipient or about this item.
    async fn history(&self, job: &Job, to: &str, item: Option<ItemId>) -> Result<Vec<Sent>, JobFailure> {
        let store = self.desk.store().as_ref();
        let since = self.desk.now() - self.config.limits.window;
        let limit = self.config.limits.per_recipient.max(self.config.limits.per_item) + 1;
        let sent = |recipient: Option<String>, item: Option<ItemId>| OutboundQuery {
            item,
            recipient,
            status: Some(OutboundStatus::Sent),
            since: Some(since),
            limit,
        };
        let mut found =
            store.outbound_mails(job.workspace_id, &sent(Some(to.to_string()), None)).await.map_err(retry)?;
        if let Some(item) = item {
            found.extend(
                store.outbound_mails(job.workspace_id, &sent(None, Some(item))).await.map_err(retry)?,
            );
            found.sort_by_key(|m| m.id);
            found.dedup_by_key(|m| m.id);
        }
        Ok(found
            .into_iter()
            .filter(|m| m.automatic)
            .map(|m| Sent {
                at: m.at,
                recipient: m.recipient,
                item: m.item.unwrap_or(ItemId(uuid::Uuid::nil())),
            })
            .collect())
    }
}

#[async_trait]
impl JobHandler for MailDelivery {
    fn kind(&self) -> &'static str {
        MAIL_SEND_JOB
    }

    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let ws = job.workspace_id;
        let mail: MailJob = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobFailure::Fatal(format!("the mail job is malformed: {e}")))?;
        let store = self.desk.store().as_ref();
        let id = OutboundMail::id_for(ws, &job.idempotency_key);
        if get::<OutboundMail>(store, ws, id.0).await.map_err(retry)?.is_some() {
            // An earlier run sent (or withheld) it and recorded so.
            return Ok(());
        }
        let to = mail.to.trim().to_lowercase();
        let now = self.desk.now();
        let mut record = OutboundMail {
            id,
            workspace_id: ws,
            key: job.idempotency_key.clone(),
            recipient: to.clone(),
            item: mail.item,
            template: mail.template.clone(),
            message_id: None,
            subject: String::new(),
            automatic: mail.automatic,
            status: OutboundStatus::Withheld,
            reason: None,
            at: now,
            version: 1,
        };
        let withhold = |mut record: OutboundMail, status: OutboundStatus, reason: String| {
            record.status = status;
            record.reason = Some(reason);
            record
        };
        let settings = get::<MailSettings>(store, ws, ws.0)
            .await
            .map_err(retry)?
            .unwrap_or_else(|| MailSettings::empty(ws));
        let item = match mail.item {
            Some(i) => match get::<Item>(store, ws, i.0).await.map_err(retry)? {
                Some(item) => Some(item),
                None => {
                    let r = withhold(record, OutboundStatus::Withheld, format!("item {i} no longer exists"));
                    return self.record(job, r, None).await;
                }
            },
            None => None,
        };
        if let Some(user) = store.user_by_email(ws, &to).await.map_err(retry)? {
            let reason = if !user.active {
                Some(format!("{to} belongs to a disabled account"))
            } else {
                user.email_bounce.as_ref().map(|b| {
                    format!("{to} is marked bouncing ({})", b.status.as_deref().unwrap_or("no status"))
                })
            };
            if let Some(reason) = reason {
                return self.record(job, withhold(record, OutboundStatus::Withheld, reason), None).await;
            }
        }
        let Some(template) =
            settings.templates.get(&mail.template).cloned().or_else(|| builtin_template(&mail.template))
        else {
            let reason = format!("no template named '{}'", mail.template);
            self.record(job, withhold(record, OutboundStatus::Failed, reason.clone()), None).await?;
            return Err(JobFailure::Fatal(reason));
        };
        if mail.automatic {
            let history = self.history(job, &to, mail.item).await?;
            let about = mail.item.unwrap_or(ItemId(uuid::Uuid::nil()));
            if let Err(withheld) = may_send(&self.config.limits, &history, now, &to, about, None) {
                return self
                    .record(job, withhold(record, OutboundStatus::Withheld, withheld.to_string()), None)
                    .await;
            }
        }

        let workspace = get::<Workspace>(store, ws, ws.0).await.map_err(retry)?;
        let mut vars: BTreeMap<&str, String> =
            mail.vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        vars.entry("recipient").or_insert_with(|| mail.to_name.clone().unwrap_or_else(|| to.clone()));
        if let Some(w) = &workspace {
            vars.entry("workspace").or_insert_with(|| w.name.clone());
        }
        if let Some(item) = &item {
            vars.entry("title").or_insert_with(|| item.title.clone());
            vars.entry("number").or_insert_with(|| item.number.to_string());
            if let Some(base) = &self.config.public_url {
                vars.entry("url")
                    .or_insert_with(|| format!("{}/items/{}", base.trim_end_matches('/'), item.number));
            }
        }
        let mut rendered = render(&template, &vars);
        if let Some(extra) = &mail.html_appendix {
            rendered.html.push_str(extra);
        }
        let mut attachments = Vec::new();
        for a in &mail.attachments {
            match store.blob(ws, &a.sha256).await.map_err(retry)? {
                Some(bytes) => attachments.push(outbound::OutboundAttachment {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    bytes,
                }),
                None => {
                    let reason = format!("the attachment {} is not stored", a.filename);
                    self.record(job, withhold(record, OutboundStatus::Failed, reason.clone()), None).await?;
                    return Err(JobFailure::Fatal(reason));
                }
            }
        }
        let subject = match &item {
            Some(item) => tagged_subject(&rendered.subject, item.number),
            None => rendered.subject.clone(),
        };
        let from_address = item
            .as_ref()
            .and_then(|i| settings.from_address(i.item_type))
            .or(settings.addresses.first().map(|a| a.address.as_str()))
            .map_or_else(|| format!("notifications@{}", self.config.domain), str::to_string);
        let references = match &item {
            Some(item) => self.references(job, item.id).await?,
            None => Vec::new(),
        };
        let message_id = outbound::message_id(id.0, &self.config.domain);
        let outgoing = outbound::OutboundMail {
            from_name: settings.from_name.clone().or_else(|| workspace.as_ref().map(|w| w.name.clone())),
            from_address: from_address.clone(),
            to_name: mail.to_name.clone(),
            to_address: to.clone(),
            reply_to: item.as_ref().map(|i| self.key.reply_address(&from_address, ws, i.number)),
            subject: subject.clone(),
            text: rendered.text,
            html: rendered.html,
            message_id: message_id.clone(),
            references,
            loop_id: self.loop_id.clone(),
            date: SystemTime::from(now),
            attachments,
        };
        record.subject = subject;
        let raw = match outbound::build(&outgoing) {
            Ok(raw) => raw,
            Err(e) => {
                let reason = e.to_string();
                self.record(job, withhold(record, OutboundStatus::Failed, reason.clone()), None).await?;
                return Err(JobFailure::Fatal(reason));
            }
        };
        match self.sender.send(&from_address, std::slice::from_ref(&to), &raw).await {
            Ok(()) => {
                record.status = OutboundStatus::Sent;
                record.message_id = Some(message_id);
                record.at = self.desk.now();
                self.record(job, record, None).await
            }
            Err(e) if e.retryable => {
                if job.attempts >= job.max_attempts {
                    let reason = format!("gave up after {} attempts: {}", job.attempts, e.message);
                    self.record(job, withhold(record, OutboundStatus::Failed, reason), None).await?;
                }
                Err(JobFailure::Retry(e.message))
            }
            Err(e) => {
                let bounce = e.is_bad_mailbox().then(|| e.enhanced_status.clone()).flatten();
                self.record(job, withhold(record, OutboundStatus::Failed, e.message.clone()), bounce).await?;
                Err(JobFailure::Fatal(e.message))
            }
        }
    }
}
