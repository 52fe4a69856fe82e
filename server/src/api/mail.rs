//! Mail settings, the log of received mail and the log of outbound mail.

use axum::Json;
use axum::extract::State;
use tandem_core::commands::ConfigureMail;
use tandem_core::mail::{OutboundMail, OutboundStatus};
use tandem_core::store::{OutboundQuery, RecordQuery};
use tandem_core::{InboundMail, ItemRef, MailSettings};

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{JsonBody, QueryPairs};
use crate::state::AppState;

pub async fn get_settings(State(s): State<AppState>, Auth(actor): Auth) -> ApiResult<Json<MailSettings>> {
    Ok(Json(s.desk().mail_settings(&actor).await?))
}

pub async fn configure(
    State(s): State<AppState>,
    Auth(actor): Auth,
    JsonBody(cmd): JsonBody<ConfigureMail>,
) -> ApiResult<Json<MailSettings>> {
    Ok(Json(s.desk().execute(&actor, &cmd).await?))
}

pub async fn inbound(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<InboundMail>>> {
    q.only(&["limit"])?;
    let query = RecordQuery { parent: None, after: None, limit: q.limit(100, 1000)? };
    Ok(Json(s.desk().inbound_mails(&actor, &query).await?))
}

/// `GET /api/v1/mail/outbound?item=<number or id>&recipient=<address>&status=sent|withheld|failed&limit=`:
/// what Tandem mailed (or withheld, and why), newest first.
pub async fn outbound(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<OutboundMail>>> {
    q.only(&["item", "recipient", "status", "limit"])?;
    let item_ref = q.parse("item", |s| s.parse::<ItemRef>().ok(), "an item number or id")?;
    let status = q.parse("status", OutboundStatus::parse, "one of sent, withheld, failed")?;
    let recipient = q.parse(
        "recipient",
        |s| (s.contains('@') && s.len() <= 320).then(|| s.to_lowercase()),
        "an email address",
    )?;
    let limit = q.limit(100, 1000)?;
    let item = match item_ref {
        Some(r) => Some(s.desk().item(&actor, r).await?.id),
        None => None,
    };
    let query = OutboundQuery { item, recipient, status, since: None, limit };
    Ok(Json(s.desk().outbound_mails(&actor, &query).await?))
}
