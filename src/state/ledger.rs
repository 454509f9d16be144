//! Reading the ledger: which change was last applied to each invite.
//!
//! The writer keeps the ledger (an `updated` row upserts its key's entry in
//! the same transaction as the row), and the pipeline asks it, once per row,
//! whether the row's change equals the last one applied. That lookup runs on
//! its own connection so it never waits for the writer: in WAL mode a reader
//! sees the last committed state while a write transaction is open.
//!
//! A reader sees an entry as soon as the writer has committed its row (the
//! not-yet-merged ones through the shared [`Pending`] set). Entries the
//! writer has not committed yet are invisible; the pipeline covers that gap
//! with [`super::WriterHandle::committed_ledger_seq`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use super::error::{Result, StateError};
use super::pending::Pending;
use crate::change::Fingerprint;

/// The last change applied to one invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    pub fingerprint: Fingerprint,
    /// Unix milliseconds of the row that applied it (for `--recheck-after`).
    pub applied_at: i64,
}

/// Ledger lookups on a dedicated read connection. `Send`, not `Sync`: give
/// each thread that looks things up its own reader.
#[derive(Debug)]
pub struct LedgerReader {
    conn: Connection,
    pending: Arc<Pending>,
    path: PathBuf,
}

const GET: &str = "SELECT fingerprint, applied_at FROM ledger WHERE key_hash = ?1";

impl LedgerReader {
    /// Opens a reader on the state file at `path`.
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
        })
    }

    /// The entry for an invite key's hash, if a change to it was ever applied.
    ///
    /// The unmerged entries are newer than the ledger's, so they are asked
    /// first. The statement is prepared once and cached, and the primary key
    /// is the rowid, so this costs a hash lookup, a B-tree probe and no
    /// allocation.
    pub fn get(&self, key_hash: u64) -> Result<Option<LedgerEntry>> {
        if let Some(entry) = self.pending.get(key_hash) {
            return Ok(Some(entry));
        }
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

    /// Whether the ledger holds no entry at all: the pipeline can then skip
    /// lookups (the first run of a file, `--force`).
    pub fn is_empty(&self) -> Result<bool> {
        if self.pending.len() > 0 {
            return Ok(false);
        }
        self.conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM ledger)", [], |r| r.get(0))
            .map_err(|e| StateError::sqlite(&self.path, "read the ledger", e))
    }

    /// The number of invites in the ledger. Reads the whole table (tens of
    /// ms at a million entries): for `status`, not the hot path.
    pub fn count(&self) -> Result<u64> {
        let merged: i64 = self
            .conn
            .query_row("SELECT count(*) FROM ledger_named", [], |r| r.get(0))
            .map_err(|e| StateError::sqlite(&self.path, "count the ledger", e))?;
        Ok(merged as u64)
    }
}
