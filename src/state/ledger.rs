//! Reading the ledger: which change was last applied to each invite.
//!
//! The pipeline asks, once per row, whether the row's change equals the last
//! one applied to its invite. That lookup runs on its own connection so it
//! never waits for the writer: in WAL mode a reader sees the last committed
//! state while a write transaction is open.
//!
//! A reader sees an entry as soon as the writer has committed its row: the
//! entries not yet merged into `ledger` through the shared [`Pending`] set,
//! the others through SQLite. Entries the writer has not committed yet are
//! invisible; the pipeline covers that gap with
//! [`super::WriterHandle::committed_ledger_seq`].
//!
//! Starting a read transaction costs three system calls (locking the WAL
//! read mark and unlocking it, and a `stat`), more than the lookup itself, so
//! a reader keeps one snapshot for up to [`SNAPSHOT_GETS`] lookups or
//! [`SNAPSHOT_AGE`]. A snapshot can only miss what was merged into `ledger`
//! after it began, and every merge bumps the [`Pending`] generation, which
//! makes the next lookup take a fresh snapshot.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use super::error::{Result, StateError};
use super::pending::{LedgerEntry, Pending};
use crate::change::Fingerprint;

/// The most lookups served from one snapshot.
const SNAPSHOT_GETS: u32 = 1_024;
/// The longest a busy reader keeps a snapshot: a snapshot in use stops a
/// checkpoint from finishing and the WAL from starting over.
const SNAPSHOT_AGE: Duration = Duration::from_millis(20);

/// Ledger lookups on a dedicated read connection. `Send`, not `Sync`: give
/// each thread that looks things up its own reader. Drop it, or call
/// [`release`](Self::release), when lookups pause for long.
#[derive(Debug)]
pub struct LedgerReader {
    conn: Connection,
    pending: Arc<Pending>,
    path: PathBuf,
    snapshot: Cell<Option<Snapshot>>,
}

/// The read transaction a reader keeps open between lookups.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    generation: u64,
    started: Instant,
    gets: u32,
}

const GET: &str = "SELECT fingerprint, applied_at FROM ledger WHERE key_hash = ?1";

impl LedgerReader {
    /// Opens a reader on the state file at `path`. Changes a writer in
    /// another process commits later are seen only after a merge there and a
    /// new reader here; within one process every reader sees them at once.
    pub fn open(path: &Path) -> Result<LedgerReader> {
        let conn = super::connect_current(path)?;
        // `query_only` makes a mistaken write here fail instead of competing
        // with the writer for the lock.
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(|e| StateError::sqlite(path, "configure the ledger reader", e))?;
        let pending = Pending::for_file(&conn, path)?;
        Ok(LedgerReader {
            conn,
            pending,
            path: path.to_path_buf(),
            snapshot: Cell::new(None),
        })
    }

    /// The entry for an invite key's hash, if a change to it was ever applied.
    ///
    /// The unmerged entries are newer than the ledger's, so they are asked
    /// first. The statement is prepared once and cached, the primary key is
    /// the rowid, and the snapshot is usually already open: a hash lookup, a
    /// B-tree probe, no allocation and at most a page read.
    pub fn get(&self, key_hash: u64) -> Result<Option<LedgerEntry>> {
        if let Some(entry) = self.pending.get(key_hash) {
            return Ok(Some(entry));
        }
        // Read after the map: a merge bumps the generation before it clears
        // the map, so a key missing from the map here is found below.
        let generation = self.pending.generation();
        self.begin_snapshot(generation)?;
        let found = self.lookup(key_hash);
        if found.is_err() {
            self.release();
        }
        found
    }

    fn lookup(&self, key_hash: u64) -> Result<Option<LedgerEntry>> {
        let err = |e| StateError::sqlite(&self.path, "read the ledger", e);
        let mut stmt = self.conn.prepare_cached(GET).map_err(err)?;
        let found = stmt
            .query_row([key_hash as i64], |r| {
                let bytes = r.get_ref(0)?.as_blob()?;
                Ok((<[u8; 16]>::try_from(bytes).ok(), r.get::<_, i64>(1)?))
            })
            .optional()
            .map_err(err)?;
        match found {
            None => Ok(None),
            Some((Some(fp), applied_at)) => Ok(Some(LedgerEntry {
                fingerprint: Fingerprint(fp),
                applied_at,
            })),
            Some((None, _)) => Err(StateError::Corrupt {
                path: self.path.clone(),
                what: "ledger fingerprint",
                detail: format!("key hash {key_hash:016x} has a fingerprint that is not 16 bytes"),
            }),
        }
    }

    /// Reuses the open snapshot if it is recent enough, or starts a new one.
    fn begin_snapshot(&self, generation: u64) -> Result<()> {
        if let Some(mut s) = self.snapshot.get() {
            if s.generation == generation
                && s.gets < SNAPSHOT_GETS
                && s.started.elapsed() < SNAPSHOT_AGE
            {
                s.gets += 1;
                self.snapshot.set(Some(s));
                return Ok(());
            }
            self.release();
        }
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(|e| StateError::sqlite(&self.path, "read the ledger", e))?;
        self.snapshot.set(Some(Snapshot {
            generation,
            started: Instant::now(),
            gets: 1,
        }));
        Ok(())
    }

    /// Ends the read snapshot this reader keeps between lookups, so that it
    /// does not hold back checkpoints while the reader sits idle. The next
    /// lookup starts a new one.
    pub fn release(&self) {
        if self.snapshot.take().is_some() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("COMMIT");
        }
    }

    /// Whether the ledger holds no entry at all: the pipeline can then skip
    /// lookups (the first run of a file, `--force`).
    pub fn is_empty(&self) -> Result<bool> {
        if self.pending.len() > 0 {
            return Ok(false);
        }
        self.release();
        self.conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM ledger)", [], |r| r.get(0))
            .map_err(|e| StateError::sqlite(&self.path, "read the ledger", e))
    }

    /// The number of invites in the ledger. Reads the whole table (tens of
    /// ms at a million entries): for `status`, not the hot path.
    pub fn count(&self) -> Result<u64> {
        self.release();
        let n: i64 = self
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM ledger
                         WHERE key_hash NOT IN (SELECT key_hash FROM ledger_journal))
                      + (SELECT count(DISTINCT key_hash) FROM ledger_journal)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StateError::sqlite(&self.path, "count the ledger", e))?;
        Ok(n as u64)
    }
}
