//! The durable job queue, shared by every server instance on the database.
//!
//! Claims lock the rows they take with `FOR UPDATE SKIP LOCKED`: a claimer never waits for, nor
//! receives, a job another claimer is taking. A claim's `attempts` is its identity afterwards:
//! completing or failing a job only succeeds for the claim that is still current.

use chrono::{DateTime, Utc};
use sqlx_core::query::{Query, query};
use sqlx_core::row::Row;
use sqlx_postgres::{PgArguments, PgPool, PgRow, Postgres};
use tandem_core::store::{Job, JobFilter, JobState};
use tandem_core::{JobId, StoreError, WorkspaceId};

use crate::codec::{db_error, limit};

/// The columns [`job_row`] reads, on alias `j`.
const JOB_COLUMNS: &str = "j.id, j.workspace_id, j.kind, j.payload::text, j.idempotency_key, j.state, j.attempts, \
                           j.max_attempts, j.run_at, j.lease_until, j.last_error, j.created_at, j.updated_at";

fn job_row(row: &PgRow) -> Result<Job, StoreError> {
    let payload: String = row.try_get(3).map_err(db_error)?;
    let state: String = row.try_get(5).map_err(db_error)?;
    let count = |i: usize| -> Result<u32, StoreError> {
        let n: i32 = row.try_get(i).map_err(db_error)?;
        u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("job attempts {n}")))
    };
    Ok(Job {
        id: JobId(row.try_get(0).map_err(db_error)?),
        workspace_id: WorkspaceId(row.try_get(1).map_err(db_error)?),
        kind: row.try_get(2).map_err(db_error)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("job payload: {e}")))?,
        idempotency_key: row.try_get(4).map_err(db_error)?,
        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state '{state}'")))?,
        attempts: count(6)?,
        max_attempts: count(7)?,
        run_at: row.try_get(8).map_err(db_error)?,
        lease_until: row.try_get(9).map_err(db_error)?,
        last_error: row.try_get(10).map_err(db_error)?,
        created_at: row.try_get(11).map_err(db_error)?,
        updated_at: row.try_get(12).map_err(db_error)?,
    })
}

async fn fetch_jobs(pool: &PgPool, q: Query<'_, Postgres, PgArguments>) -> Result<Vec<Job>, StoreError> {
    q.fetch_all(pool).await.map_err(db_error)?.iter().map(job_row).collect()
}

/// Whether the statement touched a row.
async fn touched(pool: &PgPool, q: Query<'_, Postgres, PgArguments>) -> Result<bool, StoreError> {
    Ok(q.execute(pool).await.map_err(db_error)?.rows_affected() > 0)
}

/// A claim's attempt number as stored; one that cannot be stored matches no claim.
fn attempt_number(attempt: u32) -> Option<i32> {
    i32::try_from(attempt).ok()
}

/// One statement: running jobs whose lease expired after their last allowed attempt become dead
/// letters, and up to `limit` due jobs — queued ones at or past `run_at`, running ones whose
/// lease expired with attempts left — are taken, oldest due first.
///
/// Each kind of due job is read in index order and locked as it is read, so a backlog is never
/// sorted whole; up to `limit` of each are locked and the oldest `limit` of those claimed (the
/// others are free again when the statement ends).
pub async fn claim(
    pool: &PgPool,
    kinds: &[String],
    n: usize,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Job>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // One kind (what the runner asks for) is an equality, which reads `jobs_due_kind` in due
    // order; PostgreSQL does not order an index scan over `= ANY(array)`.
    let kind_filter = match kinds {
        [] => "",
        [_] => " AND kind = $4",
        _ => " AND kind = ANY($4)",
    };
    let sql = format!(
        "WITH expired AS ( \
             UPDATE jobs SET state = 'dead', lease_until = NULL, updated_at = $1, \
                    last_error = coalesce(last_error, 'the worker running it stopped') \
              WHERE (workspace_id, id) IN ( \
                    SELECT workspace_id, id FROM jobs \
                     WHERE state = 'running' AND lease_until <= $1 AND attempts >= max_attempts \
                       FOR UPDATE SKIP LOCKED) \
         ), \
         due AS MATERIALIZED ( \
             SELECT workspace_id, id, run_at FROM jobs \
              WHERE state = 'queued' AND run_at <= $1{kind_filter} \
              ORDER BY run_at, id LIMIT $3 \
                FOR UPDATE SKIP LOCKED \
         ), \
         lapsed AS MATERIALIZED ( \
             SELECT workspace_id, id, run_at FROM jobs \
              WHERE state = 'running' AND lease_until <= $1 AND attempts < max_attempts{kind_filter} \
              ORDER BY lease_until LIMIT $3 \
                FOR UPDATE SKIP LOCKED \
         ), \
         chosen AS ( \
             SELECT workspace_id, id FROM (SELECT * FROM due UNION ALL SELECT * FROM lapsed) AS taken \
              ORDER BY run_at, id LIMIT $3 \
         ) \
         UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, lease_until = $2, updated_at = $1 \
           FROM chosen p \
          WHERE j.workspace_id = p.workspace_id AND j.id = p.id \
         RETURNING {JOB_COLUMNS}"
    );
    let mut q = query(&sql).bind(now).bind(lease_until).bind(limit(n));
    match kinds {
        [] => {}
        [kind] => q = q.bind(kind),
        _ => q = q.bind(kinds),
    }
    fetch_jobs(pool, q).await
}

pub async fn complete(
    pool: &PgPool,
    id: JobId,
    attempt: u32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(attempt) = attempt_number(attempt) else { return Ok(false) };
    let q = query(
        "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = $3 \
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(id.0)
    .bind(attempt)
    .bind(now);
    touched(pool, q).await
}

pub async fn fail(
    pool: &PgPool,
    id: JobId,
    attempt: u32,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(attempt) = attempt_number(attempt) else { return Ok(false) };
    // PostgreSQL text cannot hold NUL; an error message is for people, so it loses nothing.
    let error: String = error.chars().take(4000).map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect();
    let state = if retry_at.is_some() { JobState::Queued } else { JobState::Dead };
    let q = query(
        "UPDATE jobs SET state = $4, run_at = coalesce($5, run_at), lease_until = NULL, last_error = $6, \
         updated_at = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(id.0)
    .bind(attempt)
    .bind(now)
    .bind(state.as_str())
    .bind(retry_at)
    .bind(error);
    touched(pool, q).await
}

pub async fn retry(pool: &PgPool, id: JobId, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let q = query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, lease_until = NULL, updated_at = $2 \
         WHERE id = $1 AND state IN ('dead', 'done')",
    )
    .bind(id.0)
    .bind(now);
    touched(pool, q).await
}

/// Newest first.
pub async fn list(pool: &PgPool, f: &JobFilter) -> Result<Vec<Job>, StoreError> {
    let mut b = sqlx_core::query_builder::QueryBuilder::<Postgres>::new(format!(
        "SELECT {JOB_COLUMNS} FROM jobs j WHERE TRUE"
    ));
    if let Some(ws) = f.workspace {
        b.push(" AND j.workspace_id = ").push_bind(ws.0);
    }
    if let Some(state) = f.state {
        b.push(" AND j.state = ").push_bind(state.as_str());
    }
    if let Some(kind) = &f.kind {
        b.push(" AND j.kind = ").push_bind(kind.clone());
    }
    b.push(" ORDER BY j.created_at DESC, j.id DESC LIMIT ").push_bind(limit(f.limit));
    b.build().fetch_all(pool).await.map_err(db_error)?.iter().map(job_row).collect()
}

pub async fn get(pool: &PgPool, id: JobId) -> Result<Option<Job>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = $1 LIMIT 1");
    Ok(fetch_jobs(pool, query(&sql).bind(id.0)).await?.pop())
}
