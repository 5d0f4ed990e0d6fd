//! Group commit on one writer OS thread: every write of the SQLite store runs on one
//! `rusqlite` connection owned by that thread. Writes that queue up while a transaction
//! commits go into the next transaction together, each inside its own savepoint (a write
//! that fails on its own, say a constraint, rolls back alone), and every caller is
//! answered only after that transaction's `COMMIT`. With `synchronous=FULL` that is one
//! fsync per batch instead of one per request: the same durability, many more sign-ins
//! per second under concurrency.
//!
//! A write runs its statements synchronously on this thread, so a batch costs one
//! wake-up of the thread and one of each waiting task, not a thread hand-off per
//! statement. Writes still run one after another, so each sees the ones before it
//! exactly as if it had its own transaction (rotation and single-use checks stay atomic).
//!
//! **Storage failures fail the batch.** When a statement fails because of the storage
//! (disk full, I/O error, read-only file) or SQLite rolled the transaction back itself,
//! nothing of the batch is committed and every caller in it gets an error: a reply is
//! never sent for a write that is not on disk.

use super::StoreError;
use rusqlite::{Connection, ErrorCode};
use tokio::sync::{mpsc, oneshot};

/// Answers a caller once the batch's commit is known.
type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What running one queued write did.
enum Ran {
    /// It succeeded; answer it once the batch commits.
    Done(Deliver),
    /// It failed on its own (answered already): roll back its savepoint only.
    Failed,
    /// It failed because of the storage (answered already): the batch cannot commit.
    Broken(StoreError),
}

/// One queued write: runs its statements and says how to answer.
type Job = Box<dyn FnOnce(&Connection) -> Ran + Send>;

enum Message {
    Write(Job),
    Close(oneshot::Sender<()>),
}

/// Most writes committed together.
const BATCH_MAX: usize = 512;
/// Writes waiting beyond this make callers wait to enqueue (backpressure).
const QUEUE_MAX: usize = 8192;

/// The handle callers use; cheap to share.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
}

/// Whether `e` says the storage failed (as opposed to the write's own statements).
fn is_storage_failure(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
        )
    )
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel(QUEUE_MAX);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(conn, jobs))
            .map_err(|e| StoreError::new(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { queue })
    }

    /// Runs `write` in the next batch; its result is returned once the batch committed.
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        self.write_store(move |conn| write(conn).map_err(Failure::from))
            .await
    }

    /// Like [`Writer::write`], for writes that may also fail with a [`StoreError`] of
    /// their own (one that rolls back this write only).
    pub(crate) async fn write_store<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Failure> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| match write(conn) {
            Ok(value) => Ran::Done(Box::new(move |committed| {
                let _ = answer.send(committed.map(|()| value));
            })),
            Err(failure) => {
                let broken = match &failure {
                    Failure::Sql(e) => is_storage_failure(e) || conn.is_autocommit(),
                    Failure::Store(_) => conn.is_autocommit(),
                };
                let e = failure.into_store_error();
                let _ = answer.send(Err(StoreError::new(e.to_string())));
                if broken { Ran::Broken(e) } else { Ran::Failed }
            }
        });
        self.queue
            .send(Message::Write(job))
            .await
            .map_err(|_| StoreError::new("store is closed"))?;
        answered
            .await
            // Dropped unanswered: the batch broke before this write ran, or the
            // writer stopped. Either way nothing of it was committed.
            .map_err(|_| {
                StoreError::new("write not committed (its batch failed or the store closed)")
            })?
    }

    /// How many messages wait in the queue (not yet taken into a batch).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Finishes the writes already queued, then closes the connection.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// Why a write failed: a statement, or a check of the write itself.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A statement failed.
    Sql(rusqlite::Error),
    /// The write refused (its own rule, such as an import conflict).
    Store(StoreError),
}

impl Failure {
    fn into_store_error(self) -> StoreError {
        match self {
            Failure::Sql(e) => e.into(),
            Failure::Store(e) => e,
        }
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run(conn: Connection, mut queue: mpsc::Receiver<Message>) {
    let mut close = None;
    while close.is_none() {
        let Some(first) = queue.blocking_recv() else {
            break;
        };
        let mut batch = Vec::new();
        match first {
            Message::Write(job) => batch.push(job),
            Message::Close(done) => close = Some(done),
        }
        while close.is_none() && batch.len() < BATCH_MAX {
            match queue.try_recv() {
                Ok(Message::Write(job)) => batch.push(job),
                Ok(Message::Close(done)) => close = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, batch);
        }
    }
    queue.close();
    // Writes that raced the close are answered with an error (their senders dropped).
    while queue.try_recv().is_ok() {}
    drop(conn);
    if let Some(done) = close {
        let _ = done.send(());
    }
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Dropping the jobs answers their callers with an error.
        tracing::error!(error = %e, "cannot begin a write transaction");
        return;
    }
    let mut done: Vec<Deliver> = Vec::with_capacity(batch.len());
    let mut broken: Option<StoreError> = None;
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        if let Err(e) = exec(conn, "SAVEPOINT write") {
            broken = Some(e.into());
            break;
        }
        let step = match job(conn) {
            Ran::Done(deliver) => {
                done.push(deliver);
                exec(conn, "RELEASE write").map_err(StoreError::from)
            }
            Ran::Failed => exec(conn, "ROLLBACK TO write")
                .and_then(|()| exec(conn, "RELEASE write"))
                .map_err(StoreError::from),
            Ran::Broken(e) => Err(e),
        };
        if let Err(e) = step {
            broken = Some(e);
            break;
        }
    }
    // Jobs after a broken one never ran: dropping them answers their callers with an error.
    drop(jobs);
    let outcome = match broken {
        Some(e) => Err(e),
        None => exec(conn, "COMMIT").map_err(StoreError::from),
    };
    let message = match outcome {
        Ok(()) => None,
        Err(e) => {
            tracing::error!(error = %e, writes = done.len(), "write transaction failed; rolled back");
            if !conn.is_autocommit() {
                let _ = exec(conn, "ROLLBACK");
            }
            Some(e.to_string())
        }
    };
    for deliver in done {
        deliver(match &message {
            None => Ok(()),
            Some(m) => Err(StoreError::new(format!("batch not committed: {m}"))),
        });
    }
}
