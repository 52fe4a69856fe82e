//! The single writer: one OS thread owns the only read-write connection and commits in groups.
//!
//! Every write request is a closure run inside its own savepoint; all requests that queued up
//! while the previous group was being made durable share the next `BEGIN IMMEDIATE … COMMIT`.
//! A request's result is only delivered after its group's COMMIT returned, so nothing is
//! acknowledged before it is on disk, while one fsync serves many commits under load.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tandem_core::StoreError;
use tokio::sync::oneshot;

/// Runs inside the group's transaction and says whether it succeeded (its savepoint is rolled
/// back otherwise), plus what to do once the group's fate is known.
type Task = Box<dyn FnOnce(&Connection) -> Completion + Send>;

struct Completion {
    ok: bool,
    deliver: Box<dyn FnOnce(Option<&StoreError>) + Send>,
}

/// Largest group; bounds the time any one request waits behind others.
const MAX_GROUP: usize = 256;

pub struct Writer {
    tx: Option<mpsc::Sender<Task>>,
    thread: Option<JoinHandle<()>>,
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
        let (tx, rx) = mpsc::channel::<Task>();
        let thread = std::thread::Builder::new()
            .name("tandem-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// Runs `f` in the writer's next group commit and returns its result once durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let task: Task = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            Completion {
                ok,
                deliver: Box::new(move |commit_error| {
                    let result = match commit_error {
                        Some(e) if ok => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                        _ => result,
                    };
                    let _ = reply.send(result);
                }),
            }
        });
        let tx = self.tx.as_ref().ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        tx.send(task).map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    /// Stops accepting writes, finishes the queued ones and waits for the thread.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Task>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(task) => group.push(task),
                Err(_) => break,
            }
        }
        commit_group(&conn, group);
    }
}

fn commit_group(conn: &Connection, group: Vec<Task>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Run nothing: dropping the tasks answers every request with "stopped before answering".
        tracing::error!(error = %e, "cannot begin a write transaction");
        return;
    }
    let mut completions = Vec::with_capacity(group.len());
    for task in group {
        let completion = match conn.execute_batch("SAVEPOINT request") {
            Ok(()) => {
                let completion = task(conn);
                let end = if completion.ok { "RELEASE request" } else { "ROLLBACK TO request; RELEASE request" };
                if let Err(e) = conn.execute_batch(end) {
                    tracing::error!(error = %e, "savepoint handling failed");
                }
                completion
            }
            Err(e) => {
                let e = sql_error(e);
                Completion { ok: false, deliver: Box::new(move |_| tracing::error!(error = %e, "savepoint failed")) }
            }
        };
        completions.push(completion);
    }
    let commit = conn.execute_batch("COMMIT").map_err(sql_error);
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let error = commit.err();
    for c in completions {
        (c.deliver)(error.as_ref());
    }
}
