//! Health, the workspace event log and the job queue.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tandem_core::Event;
use tandem_core::store::{Job, JobFilter, JobState};

use super::Param;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::QueryPairs;
use crate::state::AppState;

/// Liveness: answers without a token and without touching storage, so load balancers and
/// start-up scripts can poll it cheaply.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn events(
    State(s): State<AppState>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Vec<Event>>> {
    q.only(&["after", "limit"])?;
    let after =
        q.parse("after", |s| s.parse::<i64>().ok().filter(|n| *n >= 0), "a sequence number")?.unwrap_or(0);
    let limit = q.limit(100, 1000)?;
    Ok(Json(s.desk().events(&actor, after, limit).await?))
}

pub async fn jobs(State(s): State<AppState>, Auth(actor): Auth, q: QueryPairs) -> ApiResult<Json<Vec<Job>>> {
    q.only(&["state", "kind", "limit"])?;
    let filter = JobFilter {
        workspace: None,
        state: q.parse("state", JobState::parse, "queued, running, done or dead")?,
        kind: q.get("kind").map(str::to_string),
        limit: q.limit(100, 1000)?,
    };
    let mut jobs = s.desk().jobs(&actor, filter).await?;
    jobs.iter_mut().for_each(hide_sign_in_links);
    Ok(Json(jobs))
}

/// A queued sign-in mail carries its link, and the link signs its recipient in: whoever reads
/// the job queue must not be able to use it.
fn hide_sign_in_links(job: &mut Job) {
    if job.kind == tandem_core::mail::MAIL_SEND_JOB
        && job.payload["template"] == "magic_link"
        && let Some(link) = job.payload.pointer_mut("/vars/link")
    {
        *link = json!("(hidden: it signs its recipient in)");
    }
}

pub async fn retry_job(State(s): State<AppState>, Auth(actor): Auth, id: Param) -> ApiResult<Json<Job>> {
    Ok(Json(s.desk().retry_job(&actor, id.id("job")?).await?))
}
