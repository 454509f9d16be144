//! The writer: one OS thread that records finished rows.
//!
//! SQLite allows one writer at a time, and a commit is the expensive part of a
//! write, so a single thread owns the write connection and groups rows into
//! transactions: it commits when [`WriterOptions::batch_rows`] rows are
//! pending or [`WriterOptions::batch_time`] has passed since the first of
//! them, whichever comes first. A crash therefore loses at most one batch,
//! whose rows are sent again on resume (DESIGN §6).
//!
//! Senders talk to it through a bounded channel: when the disk is slower than
//! the network, `record` blocks, and that back-pressure reaches the
//! dispatcher instead of memory filling up. The thread runs off the async
//! runtime, so blocking SQLite calls never stall a tokio worker.
//!
//! A ledger change goes to `ledger_journal` in its row's transaction and is
//! merged into `ledger` in bulk (see `pending.rs`); WAL checkpoints run on a
//! helper thread (see `checkpoint.rs`). Both keep the per-row cost near that
//! of a plain insert.
//!
//! If a write fails (disk full, I/O error) the thread rolls back, keeps the
//! error for every sender to see, and ends; the next `record` or `flush`
//! returns [`StateError::WriterStopped`] naming it, and the join handle
//! returns the error itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Statement, params};

use super::checkpoint::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
use super::error::{Result, StateError};
use super::ledger::LedgerEntry;
use super::outcome_code;
use super::pending::{Pending, merge_journal};
use super::runs::RunId;
use crate::outcome::{Outcome, RowRecord};

/// How the writer batches; the defaults follow DESIGN §10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Commit when this many rows are pending.
    pub batch_rows: usize,
    /// Commit when the oldest pending row has waited this long.
    pub batch_time: Duration,
    /// Rows that may wait in the channel before `record` blocks.
    pub channel_capacity: usize,
    /// Merge the ledger journal into the ledger once it holds this many
    /// entries. Bounds the memory of the unmerged set (~40 bytes an entry).
    pub ledger_merge_rows: usize,
    /// Run checkpoints on a helper thread (see `checkpoint.rs`); `false`
    /// leaves them to SQLite's default, in the writer's commits.
    pub background_checkpoint: bool,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_rows: 1_000,
            batch_time: Duration::from_millis(100),
            channel_capacity: 8_192,
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
    /// Merges of the journal into the ledger, including one at start-up if a
    /// crashed writer left entries behind.
    pub ledger_merges: u64,
}

/// Starts writers; see [`Writer::spawn`].
#[derive(Debug)]
pub struct Writer;

/// A clonable handle to send rows to the writer. The writer commits what is
/// left and ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
enum Msg {
    Row(RowRecord, Option<u64>),
    /// Commit everything before this message, then answer.
    Flush(SyncSender<()>),
}

/// What the writer thread publishes to the handles.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    rows_committed: AtomicU64,
    ledger_seq: AtomicU64,
    /// The error that stopped the writer, for every sender to report.
    failure: OnceLock<String>,
}

impl Writer {
    /// Starts the writer thread for `run_id` with the default batching.
    /// `vendor_names[id]` is the name stored for `VendorId` `id`.
    ///
    /// The connection is opened here, so a file that cannot be written is
    /// reported now rather than by the first `record`. Join the returned
    /// handle after dropping every [`WriterHandle`]: it returns the writer's
    /// final error, including one from the last commit.
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
        // Foreign keys cost ~15 % of an insert; the writer checked its run
        // above and writes outcome codes from a fixed table, so it is the one
        // connection that does without them.
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = OFF;
             PRAGMA wal_autocheckpoint = {};
             PRAGMA journal_size_limit = {};",
            if options.background_checkpoint {
                WRITER_AUTOCHECKPOINT_PAGES
            } else {
                1_000
            },
            2 * 4096 * u64::from(WRITER_AUTOCHECKPOINT_PAGES),
        ))
        .map_err(setup)?;
        let pending = Pending::for_file(&conn, path)?;
        let checkpointer = if options.background_checkpoint {
            Some(Checkpointer::spawn(path)?)
        } else {
            None
        };
        let (tx, rx) = mpsc::sync_channel(options.channel_capacity.max(1));
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
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
                writer_main(conn, ctx, rx)
            })
            .map_err(|e| StateError::io(path, "start the writer thread for", e))?;
        Ok((WriterHandle { tx, shared }, join))
    }
}

/// Marks the writer as failed if its thread unwinds, so senders get a message.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.failure.set("the writer thread panicked".into());
        }
    }
}

impl WriterHandle {
    /// Queues a finished row. Blocks while the channel is full. `ledger_seq`,
    /// if given, must increase in the order rows are sent; once this row is
    /// committed, [`committed_ledger_seq`](Self::committed_ledger_seq) reaches it.
    pub fn record(&self, rec: RowRecord, ledger_seq: Option<u64>) -> Result<()> {
        self.tx
            .send(Msg::Row(rec, ledger_seq))
            .map_err(|_| self.stopped())
    }

    /// Waits until every row sent so far (by any handle) is committed.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg::Flush(tx)).map_err(|_| self.stopped())?;
        rx.recv().map_err(|_| self.stopped())
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
    (key_hash, invite_key, vendor, fingerprint, applied_at, run_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// What the writer thread works with besides its connection.
struct Context<'a> {
    shared: &'a Shared,
    pending: &'a Pending,
    checkpointer: Option<&'a Checkpointer>,
    run_id: i64,
    vendors: Vec<String>,
    options: WriterOptions,
}

/// The thread's body.
fn writer_main(conn: Connection, ctx: Context<'_>, rx: Receiver<Msg>) -> Result<WriterStats> {
    // Locals drop before parameters: the failure is published before `rx`
    // goes and wakes the senders, so they always find the reason.
    let _guard = FailOnPanic(ctx.shared);
    let shared = ctx.shared;
    let result = WriterLoop::run(&conn, ctx, &rx);
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
    fn run(conn: &'c Connection, ctx: Context<'c>, rx: &Receiver<Msg>) -> Result<WriterStats> {
        let path = &ctx.shared.path;
        let err = |e| StateError::sqlite(path, "prepare the writer's statements", e);
        let mut w = WriterLoop {
            conn,
            insert_row: conn.prepare(INSERT_ROW).map_err(err)?,
            insert_journal: conn.prepare(INSERT_JOURNAL).map_err(err)?,
            pending: 0,
            first_pending_at: Instant::now(),
            pending_seq: 0,
            staged: Vec::new(),
            journal_len: 0,
            stats: WriterStats::default(),
            ctx,
        };
        // Entries a crashed writer left in the journal: merge them first.
        let leftover: i64 = conn
            .query_row("SELECT count(*) FROM ledger_journal", [], |r| r.get(0))
            .map_err(|e| StateError::sqlite(&w.ctx.shared.path, "read the ledger journal", e))?;
        w.journal_len = leftover as usize;
        w.merge()?;
        let result = w.serve(rx).and_then(|()| w.merge());
        if result.is_err() && w.pending > 0 {
            // Leave the file as of the last commit; those rows will be resent.
            let _ = conn.execute_batch("ROLLBACK");
        }
        result.map(|()| w.stats)
    }

    fn serve(&mut self, rx: &Receiver<Msg>) -> Result<()> {
        loop {
            let msg = if self.pending == 0 {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return Ok(()),
                }
            } else {
                let deadline = self.first_pending_at + self.ctx.options.batch_time;
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.commit()?;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return self.commit(),
                }
            };
            match msg {
                Msg::Row(rec, seq) => {
                    self.write(&rec, seq)?;
                    if self.pending >= self.ctx.options.batch_rows
                        || self.first_pending_at.elapsed() >= self.ctx.options.batch_time
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
    }

    fn write(&mut self, rec: &RowRecord, seq: Option<u64>) -> Result<()> {
        let path = &self.ctx.shared.path;
        if self.pending == 0 {
            self.conn
                .prepare_cached(BEGIN)
                .and_then(|mut s| s.execute([]))
                .map_err(|e| StateError::sqlite(path, "start a transaction", e))?;
            self.first_pending_at = Instant::now();
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
        if let (Outcome::Updated, Some((text, hash)), Some(fp)) =
            (rec.outcome, key, rec.fingerprint)
        {
            self.insert_journal
                .execute(params![
                    *hash as i64,
                    text,
                    vendor,
                    &fp.0[..],
                    rec.finished_at,
                    self.ctx.run_id
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
