//! Mail settings and the log of received mail.

use axum::Json;
use axum::extract::State;
use tandem_core::commands::ConfigureMail;
use tandem_core::store::RecordQuery;
use tandem_core::{InboundMail, MailSettings};

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
