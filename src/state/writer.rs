//! The writer: one OS thread that records finished rows.
//!
//! SQLite allows one writer at a time, and a commit is the expensive part of a
//! write, so a single thread owns the write connection and groups rows into
//! transactions: it commits when [`WriterOptions::batch_rows`] rows are
//! pending or [`WriterOptions::batch_time`] has passed since the first of
//! them arrived, whichever comes first. A crash therefore loses at most one
//! batch, whose rows are sent again on resume (docs/ARCHITECTURE.md, §4).
//!
//! Senders hand rows over through a bounded queue (`queue.rs`): when the disk
//! is slower than the network, `record` blocks, and that back-pressure
//! reaches the dispatcher instead of memory filling up. The thread runs off
//! the async runtime, so blocking SQLite calls never stall a tokio worker.
//!
//! A ledger change goes to `ledger_journal` in its row's transaction and is
//! merged into `ledger` in bulk (`pending.rs`): when the journal reaches
//! [`WriterOptions::ledger_merge_rows`], and what a run leaves there, when
//! the next writer starts. WAL checkpoints run on a helper thread
//! (`checkpoint.rs`). Both keep the cost of a row near that of
//! a plain insert.
//!
//! If a write fails (disk full, I/O error) the thread rolls back, keeps the
//! error for every sender to see, and ends; the next `record` or `flush`
//! returns [`StateError::WriterStopped`] naming it, and the join handle
//! returns the error itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Statement, params};

use super::checkpoint::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
use super::error::{Result, StateError};
use super::outcome_code;
use super::pending::LedgerEntry;
use super::pending::{Pending, merge_journal};
use super::queue::{Queue, Taken};
use super::runs::RunId;
use crate::outcome::{Outcome, RowRecord};

/// How the writer batches; the defaults keep a commit every ≤ 1,000 rows or
/// ≤ 100 ms (README, "Performance").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Commit when this many rows are pending.
    pub batch_rows: usize,
    /// Commit when the oldest pending row has waited this long.
    pub batch_time: Duration,
    /// Rows that may wait for the writer before `record` blocks. The writer
    /// takes them all at once, so up to twice this many are in memory.
    pub queue_capacity: usize,
    /// Merge the ledger journal into the ledger once it holds this many
    /// entries. Bounds the memory of the unmerged set (~70 bytes an entry).
    pub ledger_merge_rows: usize,
    /// Run checkpoints on a helper thread (`checkpoint.rs`); `false` leaves
    /// them to SQLite's default, in the writer's commits.
    pub background_checkpoint: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_rows: 1_000,
            batch_time: Duration::from_millis(100),
            queue_capacity: 4_096,
            ledger_merge_rows: 65_536,
            background_checkpoint: true,
        }
    }
}

/// What the writer did, returned by its thread when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub rows: u64,
    /// Ledger changes recorded (rows `updated` with a key and fingerprint).
    pub ledger_upserts: u64,
    pub commits: u64,
    /// Merges of the journal into the ledger, including one at start-up if
    /// an earlier writer left entries behind.
    pub ledger_merges: u64,
}

/// Starts writers; see [`Writer::spawn`].
#[derive(Debug)]
pub struct Writer;

/// A clonable handle to send rows to the writer. The writer commits what is
/// left and ends when the last handle is dropped.
#[derive(Debug)]
pub struct WriterHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
enum Msg {
    Row(RowRecord, Option<u64>),
    /// Commit everything before this message, then answer.
    Flush(SyncSender<()>),
}

/// What the handles and the thread share.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    queue: Queue<Msg>,
    rows_committed: AtomicU64,
    ledger_seq: AtomicU64,
    /// The error that stopped the writer, for every sender to report.
    failure: OnceLock<String>,
}

impl Writer {
    /// Starts the writer thread for `run_id` with the default batching.
    /// `vendor_names[id]` is the name stored for `VendorId` `id`.
    ///
    /// The connection is opened here, so a file that cannot be written or a
    /// run that does not exist is reported now rather than by the first
    /// `record`. Join the returned handle after dropping every
    /// [`WriterHandle`]: it returns the writer's final error, including one
    /// from the last commit.
    pub fn spawn(
        path: &Path,
        run_id: RunId,
        vendor_names: Vec<String>,
    ) -> Result<(WriterHandle, JoinHandle<Result<WriterStats>>)> {
        Self::spawn_with(path, run_id, vendor_names, WriterOptions::default())
    }

    /// [`Writer::spawn`] with explicit batching (tests, benchmarks).
    pub fn spawn_with(
        path: &Path,
        run_id: RunId,
        vendor_names: Vec<String>,
        options: WriterOptions,
    ) -> Result<(WriterHandle, JoinHandle<Result<WriterStats>>)> {
        let conn = open_writer_connection(path, run_id, &options)?;
        let pending = Pending::for_file(&conn, path)?;
        // A merge follows the batch that reaches the threshold.
        pending.reserve(options.ledger_merge_rows + options.batch_rows);
        let checkpointer = match options.background_checkpoint {
            true => Some(Checkpointer::spawn(path)?),
            false => None,
        };
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            // Wake the writer for half a batch: it writes those while the
            // next half arrives.
            queue: Queue::new(options.queue_capacity, options.batch_rows / 2),
            rows_committed: AtomicU64::new(0),
            ledger_seq: AtomicU64::new(0),
            failure: OnceLock::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let join = std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || {
                let ctx = Context {
                    shared: &thread_shared,
                    pending: &pending,
                    checkpointer: checkpointer.as_ref(),
                    run_id: run_id.0,
                    vendors: vendor_names,
                    options,
                };
                writer_main(conn, ctx)
            })
            .map_err(|e| StateError::io(path, "start the writer thread for", e))?;
        Ok((WriterHandle { shared }, join))
    }
}

fn open_writer_connection(
    path: &Path,
    run_id: RunId,
    options: &WriterOptions,
) -> Result<Connection> {
    let conn = super::connect_current(path)?;
    let setup = |e| StateError::sqlite(path, "set up the writer", e);
    let run_exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)",
            [run_id.0],
            |r| r.get(0),
        )
        .map_err(setup)?;
    if !run_exists {
        return Err(StateError::NoSuchRun {
            path: path.to_path_buf(),
            run: run_id.0,
        });
    }
    // Foreign keys cost ~15 % of an insert; the writer checked its run above
    // and writes outcome codes from a fixed table, so it is the one
    // connection that does without them.
    let autocheckpoint = match options.background_checkpoint {
        true => WRITER_AUTOCHECKPOINT_PAGES,
        false => 1_000,
    };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -1024;
         PRAGMA wal_autocheckpoint = {autocheckpoint};
         PRAGMA journal_size_limit = {};",
        2 * 4096 * u64::from(WRITER_AUTOCHECKPOINT_PAGES),
    ))
    .map_err(setup)?;
    Ok(conn)
}

impl Clone for WriterHandle {
    fn clone(&self) -> Self {
        self.shared.queue.add_sender();
        WriterHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.shared.queue.remove_sender();
    }
}

impl WriterHandle {
    /// Queues a finished row. Blocks while the queue is full. `ledger_seq`,
    /// if given, must increase in the order rows are sent; once this row is
    /// committed, [`committed_ledger_seq`](Self::committed_ledger_seq) reaches
    /// it and its ledger change is visible to every [`super::LedgerReader`].
    pub fn record(&self, rec: RowRecord, ledger_seq: Option<u64>) -> Result<()> {
        self.shared
            .queue
            .send(Msg::Row(rec, ledger_seq), false)
            .map_err(|_| self.stopped())
    }

    /// [`record`](Self::record) for async callers: waits for room without
    /// blocking the runtime's thread, so the dispatcher can hand rows to the
    /// writer itself instead of through a thread of its own.
    pub async fn record_async(&self, rec: RowRecord, ledger_seq: Option<u64>) -> Result<()> {
        self.shared
            .queue
            .send_async(Msg::Row(rec, ledger_seq))
            .await
            .map_err(|_| self.stopped())
    }

    /// Waits until every row sent so far (by any handle) is committed.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.shared
            .queue
            .send(Msg::Flush(tx), true)
            .map_err(|_| self.stopped())?;
        rx.recv().map_err(|_| {
            // The writer dropped the reply on its way out: wait until it has
            // published why.
            self.shared.queue.wait_closed();
            self.stopped()
        })
    }

    /// Flushes and drops this handle. The thread ends once every clone is gone.
    pub fn finish(self) -> Result<()> {
        self.flush()
    }

    /// Rows committed so far.
    pub fn committed_rows(&self) -> u64 {
        self.shared.rows_committed.load(Ordering::Acquire)
    }

    /// The highest `ledger_seq` committed so far (0 before any): every row
    /// sent with a sequence number up to it is in the file. Start at 1.
    pub fn committed_ledger_seq(&self) -> u64 {
        self.shared.ledger_seq.load(Ordering::Acquire)
    }

    /// The error that stopped the writer, if it stopped.
    pub fn failure(&self) -> Option<StateError> {
        self.shared.failure.get().map(|_| self.stopped())
    }

    fn stopped(&self) -> StateError {
        StateError::WriterStopped {
            path: self.shared.path.clone(),
            message: self
                .shared
                .failure
                .get()
                .cloned()
                .unwrap_or_else(|| "it ended before this row was sent".into()),
        }
    }
}

const BEGIN: &str = "BEGIN IMMEDIATE";
const COMMIT: &str = "COMMIT";

pub(crate) const INSERT_ROW: &str = "INSERT OR REPLACE INTO run_rows
    (run_id, row_index, line, vendor, invite_key, outcome, http_status, attempts,
     error, remote_id, remote_updated_at, finished_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

pub(crate) const INSERT_JOURNAL: &str = "INSERT INTO ledger_journal
    (key_hash, fingerprint, applied_at, run_id, row_index) VALUES (?1, ?2, ?3, ?4, ?5)";

/// What the writer thread works with besides its connection.
struct Context<'a> {
    shared: &'a Shared,
    pending: &'a Pending,
    checkpointer: Option<&'a Checkpointer>,
    run_id: i64,
    vendors: Vec<String>,
    options: WriterOptions,
}

/// Ends the thread's side of the queue however the thread ends (an error,
/// a panic), so that blocked senders wake up and fail instead of hanging.
struct CloseOnDrop<'a>(&'a Shared);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.failure.set("the writer thread panicked".into());
        }
        self.0.queue.close_receiver();
    }
}

/// The thread's body.
fn writer_main(conn: Connection, ctx: Context<'_>) -> Result<WriterStats> {
    let shared = ctx.shared;
    let _close = CloseOnDrop(shared);
    let result = WriterLoop::run(&conn, ctx);
    // Published before `_close` wakes the senders, so they find the reason.
    if let Err(e) = &result {
        let _ = shared.failure.set(e.to_string());
    }
    result
}

/// The writer thread's state: its statements and the open batch.
struct WriterLoop<'c> {
    conn: &'c Connection,
    ctx: Context<'c>,
    insert_row: Statement<'c>,
    insert_journal: Statement<'c>,
    /// Rows in the open transaction; 0 means no transaction is open.
    pending: usize,
    first_pending_at: Instant,
    pending_seq: u64,
    /// The ledger changes of the open transaction, for [`Pending`] once committed.
    staged: Vec<(u64, LedgerEntry)>,
    /// Journal entries since the last merge.
    journal_len: usize,
    stats: WriterStats,
}

impl<'c> WriterLoop<'c> {
    fn run(conn: &'c Connection, ctx: Context<'c>) -> Result<WriterStats> {
        let path = &ctx.shared.path;
        let err = |e| StateError::sqlite(path, "prepare the writer's statements", e);
        // Entries an earlier writer left in the journal are merged first.
        let leftover: i64 = conn
            .query_row("SELECT count(*) FROM ledger_journal", [], |r| r.get(0))
            .map_err(err)?;
        let mut w = WriterLoop {
            conn,
            insert_row: conn.prepare(INSERT_ROW).map_err(err)?,
            insert_journal: conn.prepare(INSERT_JOURNAL).map_err(err)?,
            pending: 0,
            first_pending_at: Instant::now(),
            pending_seq: 0,
            staged: Vec::new(),
            journal_len: leftover.max(0) as usize,
            stats: WriterStats::default(),
            ctx,
        };
        w.merge()?;
        // The journal the run leaves is merged by the next writer, as
        // above: here it would be on the run's way out, its CPU taken from
        // the results file being written beside it (docs/ARCHITECTURE.md,
        // §6), and readers see the journal anyway.
        let result = w.serve();
        if result.is_err() && w.pending > 0 {
            // Leave the file as of the last commit; those rows will be resent.
            let _ = conn.execute_batch("ROLLBACK");
        }
        result.map(|()| w.stats)
    }

    fn serve(&mut self) -> Result<()> {
        let batch_time = self.ctx.options.batch_time;
        let mut inbox = Vec::new();
        loop {
            let deadline = (self.pending > 0).then(|| self.first_pending_at + batch_time);
            let oldest = match self.ctx.shared.queue.take(&mut inbox, deadline, batch_time) {
                Taken::Items(oldest) => oldest,
                Taken::Timeout => {
                    self.commit()?;
                    continue;
                }
                Taken::Closed => return self.commit(),
            };
            for (i, msg) in inbox.drain(..).enumerate() {
                match msg {
                    Msg::Row(rec, seq) => {
                        // The batch clock starts when its first row was
                        // queued (or earlier: a commit never comes late).
                        self.write(&rec, seq, oldest)?;
                        if self.pending >= self.ctx.options.batch_rows
                            || (i % 256 == 255 && self.first_pending_at.elapsed() >= batch_time)
                        {
                            self.commit()?;
                        }
                    }
                    Msg::Flush(reply) => {
                        self.commit()?;
                        let _ = reply.send(());
                    }
                }
            }
            if self.pending > 0 && self.first_pending_at.elapsed() >= batch_time {
                self.commit()?;
            }
        }
    }

    fn write(&mut self, rec: &RowRecord, seq: Option<u64>, queued_at: Instant) -> Result<()> {
        let path = &self.ctx.shared.path;
        if self.pending == 0 {
            self.conn
                .prepare_cached(BEGIN)
                .and_then(|mut s| s.execute([]))
                .map_err(|e| StateError::sqlite(path, "start a transaction", e))?;
            self.first_pending_at = queued_at;
        }
        self.pending += 1;
        if let Some(seq) = seq {
            self.pending_seq = self.pending_seq.max(seq);
        }
        let vendor = rec
            .vendor
            .and_then(|v| self.ctx.vendors.get(usize::from(v)))
            .map(String::as_str);
        let key = rec.key.as_ref();
        self.insert_row
            .execute(params![
                self.ctx.run_id,
                rec.index as i64,
                rec.line as i64,
                vendor,
                key.map(|(text, _)| text.as_str()),
                outcome_code(rec.outcome),
                rec.http_status,
                rec.attempts,
                rec.error.as_deref(),
                rec.remote_id.as_deref(),
                rec.remote_updated_at.as_deref(),
                rec.finished_at,
            ])
            .map_err(|e| StateError::sqlite(path, "record a row", e))?;
        if let (Outcome::Updated, Some((_, hash)), Some(fp)) = (rec.outcome, key, rec.fingerprint) {
            self.insert_journal
                .execute(params![
                    *hash as i64,
                    &fp.0[..],
                    rec.finished_at,
                    self.ctx.run_id,
                    rec.index as i64,
                ])
                .map_err(|e| StateError::sqlite(path, "update the ledger", e))?;
            self.staged.push((
                *hash,
                LedgerEntry {
                    fingerprint: fp,
                    applied_at: rec.finished_at,
                },
            ));
        }
        Ok(())
    }

    /// Commits the open batch, if any, publishes the progress, and merges
    /// the journal when it has grown enough.
    fn commit(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        self.conn
            .prepare_cached(COMMIT)
            .and_then(|mut s| s.execute([]))
            .map_err(|e| StateError::sqlite(&self.ctx.shared.path, "commit rows", e))?;
        // Visible to readers before the sequence number says so.
        self.ctx.pending.extend(&self.staged);
        self.journal_len += self.staged.len();
        self.stats.ledger_upserts += self.staged.len() as u64;
        self.staged.clear();
        self.stats.rows += self.pending as u64;
        self.stats.commits += 1;
        let shared = self.ctx.shared;
        shared
            .rows_committed
            .fetch_add(self.pending as u64, Ordering::AcqRel);
        shared
            .ledger_seq
            .fetch_max(self.pending_seq, Ordering::AcqRel);
        self.pending = 0;
        if let Some(c) = self.ctx.checkpointer {
            c.poke();
        }
        if self.journal_len >= self.ctx.options.ledger_merge_rows {
            self.merge()?;
        }
        Ok(())
    }

    /// Merges the journal into the ledger (no transaction may be open).
    fn merge(&mut self) -> Result<()> {
        if self.journal_len == 0 {
            return Ok(());
        }
        merge_journal(self.conn, &self.ctx.shared.path)?;
        self.ctx.pending.clear();
        self.journal_len = 0;
        self.stats.ledger_merges += 1;
        Ok(())
    }
}
