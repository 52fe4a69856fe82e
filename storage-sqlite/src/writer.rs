//! The single writer: one OS thread owns the only read-write connection and commits in groups.
//!
//! All requests that queued up while the previous group was being made durable share the next
//! `BEGIN IMMEDIATE … COMMIT`, so one fsync serves many commits under load. A request's result is
//! delivered only after its group's COMMIT returned: nothing is acknowledged before it is on disk.
//!
//! Requests check everything they can before writing (versions, existence, sizes), so a failed
//! check leaves nothing behind and the group simply goes on — no savepoint needed, which matters:
//! every SAVEPOINT makes FTS5 flush its pending index and SQLite journal pages twice. Only when a
//! request fails *after* it started writing (a unique key clash) is the group rolled back and
//! replayed with one savepoint per request; that is why requests are re-runnable.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tandem_core::StoreError;
use tokio::sync::oneshot;

/// Why a request failed, and whether it had written anything before failing.
#[derive(Debug)]
pub struct Failure {
    pub error: StoreError,
    pub wrote: bool,
}

impl Failure {
    /// A failure before the first write: nothing to undo.
    pub fn clean(error: StoreError) -> Self {
        Self { error, wrote: false }
    }

    /// A failure after writing started: the request's writes must be undone.
    pub fn dirty(error: StoreError) -> Self {
        Self { error, wrote: true }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::clean(error)
    }
}

pub type Attempt<T> = Result<T, Failure>;

trait Request: Send {
    /// Runs inside the group's transaction; may be called again if the group is replayed.
    /// Returns whether it failed after writing.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Hands over the last run's result once the group's COMMIT is known.
    fn deliver(self: Box<Self>, commit_error: Option<&StoreError>);
}

struct Pending<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send, F: FnMut(&Connection) -> Attempt<T> + Send> Request for Pending<T, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        match (self.work)(conn) {
            Ok(v) => {
                self.result = Some(Ok(v));
                false
            }
            Err(f) => {
                self.result = Some(Err(f.error));
                f.wrote
            }
        }
    }

    fn deliver(self: Box<Self>, commit_error: Option<&StoreError>) {
        let result = match (self.result, commit_error) {
            (Some(Ok(_)), Some(e)) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
            (Some(r), _) => r,
            (None, _) => Err(StoreError::Unavailable("the write was not run".into())),
        };
        let _ = self.reply.send(result);
    }
}

/// Largest group; bounds the time any one request waits behind others.
const MAX_GROUP: usize = 256;

pub struct Writer {
    tx: std::sync::Mutex<Option<mpsc::Sender<Box<dyn Request>>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

pub fn sql_error(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

impl Writer {
    pub fn start(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Request>>();
        let thread = std::thread::Builder::new()
            .name("tandem-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { tx: std::sync::Mutex::new(Some(tx)), thread: std::sync::Mutex::new(Some(thread)) })
    }

    /// Runs `work` in the writer's next group commit and returns its result once durable.
    /// `work` must report a failure after its first write as [`Failure::dirty`].
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Attempt<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let request = Box::new(Pending { work, result: None, reply });
        let tx = self
            .tx
            .lock()
            .ok()
            .and_then(|tx| tx.clone())
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        tx.send(request).map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    /// Stops accepting writes, finishes the queued ones and waits for the thread. Blocks.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Request>>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        commit_group(&conn, group);
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.execute_batch(sql).map_err(sql_error)
}

fn commit_group(conn: &Connection, mut group: Vec<Box<dyn Request>>) {
    let outcome = exec(conn, "BEGIN IMMEDIATE").and_then(|()| {
        let dirty = group.iter_mut().any(|r| r.run(conn));
        if !dirty {
            return Ok(());
        }
        // Somebody failed half-way: undo everything and replay with a savepoint each.
        exec(conn, "ROLLBACK")?;
        exec(conn, "BEGIN IMMEDIATE")?;
        for request in &mut group {
            exec(conn, "SAVEPOINT request")?;
            let end =
                if request.run(conn) { "ROLLBACK TO request; RELEASE request" } else { "RELEASE request" };
            exec(conn, end)?;
        }
        Ok(())
    });
    let outcome = outcome.and_then(|()| exec(conn, "COMMIT"));
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!(error = ?outcome, "a write group failed");
    }
    let error = outcome.err();
    for request in group {
        request.deliver(error.as_ref());
    }
}
