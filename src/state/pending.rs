//! Ledger changes committed to `ledger_journal` but not yet merged into
//! `ledger`.
//!
//! The writer appends each ledger change to the journal (cheap: the end of a
//! rowid table) and merges the journal into the ledger in key order once it
//! holds [`super::WriterOptions::ledger_merge_rows`] entries, and when a
//! writer starts with entries an earlier one left (at its end, or in a
//! crash). Sorting lets one merge touch each ledger page once, where
//! upserting rows one by one dirtied a page per row.
//!
//! Until merged, the entries live in [`Pending`], an in-memory map shared by
//! the writer and every [`super::LedgerReader`] of the same file in this
//! process (found through a registry keyed by the file's device and inode),
//! so a reader sees a change as soon as its row is committed whichever way
//! it was opened. Its size is bounded by the merge threshold.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use rusqlite::Connection;

use super::error::{Result, StateError};
use crate::change::{Fingerprint, KeyMap};

/// The last change applied to one invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerEntry {
    pub fingerprint: Fingerprint,
    /// Unix milliseconds of the row that applied it (for `--recheck-after`).
    pub applied_at: i64,
}

/// The unmerged ledger changes of one state file, newest per key.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    map: RwLock<KeyMap<LedgerEntry>>,
    /// Bumped by every merge, before the map is cleared: a reader whose
    /// snapshot predates a merge notices and takes a new one.
    generation: AtomicU64,
}

/// A state file's identity: its device and inode, whatever path names it.
type FileId = (u64, u64);

/// Live [`Pending`] sets by state file.
static REGISTRY: Mutex<Vec<(FileId, Weak<Pending>)>> = Mutex::new(Vec::new());

impl Pending {
    /// The set of the file at `path`, shared within this process; loaded from
    /// the journal (through `conn`) by whoever needs it first.
    pub(crate) fn for_file(conn: &Connection, path: &Path) -> Result<Arc<Pending>> {
        let meta = std::fs::metadata(path).map_err(|e| StateError::io(path, "read", e))?;
        let id = (meta.dev(), meta.ino());
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        registry.retain(|(_, p)| p.strong_count() > 0);
        if let Some(p) = registry
            .iter()
            .find(|(i, _)| *i == id)
            .and_then(|(_, p)| p.upgrade())
        {
            return Ok(p);
        }
        let p = Arc::new(Pending {
            map: RwLock::new(load_journal(conn, path)?),
            generation: AtomicU64::new(0),
        });
        registry.push((id, Arc::downgrade(&p)));
        Ok(p)
    }

    pub(crate) fn get(&self, key_hash: u64) -> Option<LedgerEntry> {
        self.read().get(&key_hash).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Adds the entries of a committed batch, later ones winning.
    pub(crate) fn extend(&self, entries: &[(u64, LedgerEntry)]) {
        if !entries.is_empty() {
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            map.extend(entries.iter().copied());
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forgets everything, once the journal has been merged into the ledger.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        // Keep the memory: the next batches fill it again, and growing it
        // back from nothing would hold the old and the new table at once at
        // every doubling, which is how a long run's memory crept up.
        map.clear();
    }

    /// Makes room for the `n` entries the writer lets gather between merges,
    /// once, so the map never grows (and never holds two tables) mid-run.
    pub(crate) fn reserve(&self, n: usize) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let more = n.saturating_sub(map.len());
        map.reserve(more);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyMap<LedgerEntry>> {
        // A panic elsewhere cannot leave the map half-updated: keep going.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }
}

fn load_journal(conn: &Connection, path: &Path) -> Result<KeyMap<LedgerEntry>> {
    let err = |e| StateError::sqlite(path, "read the ledger journal", e);
    let mut stmt = conn
        .prepare("SELECT key_hash, fingerprint, applied_at FROM ledger_journal ORDER BY seq")
        .map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    let mut map = KeyMap::default();
    while let Some(r) = rows.next().map_err(err)? {
        let hash: i64 = r.get(0).map_err(err)?;
        let fp: [u8; 16] = r.get(1).map_err(err)?;
        let applied_at: i64 = r.get(2).map_err(err)?;
        map.insert(
            hash as u64,
            LedgerEntry {
                fingerprint: Fingerprint(fp),
                applied_at,
            },
        );
    }
    Ok(map)
}

const MERGE: &str = "
INSERT INTO ledger (key_hash, fingerprint, applied_at, run_id, row_index)
SELECT key_hash, fingerprint, applied_at, run_id, row_index
FROM ledger_journal WHERE true ORDER BY key_hash, seq
ON CONFLICT (key_hash) DO UPDATE SET
    fingerprint = excluded.fingerprint, applied_at = excluded.applied_at,
    run_id = excluded.run_id, row_index = excluded.row_index;
DELETE FROM ledger_journal;";

/// Moves the whole journal into the ledger in one transaction (the later of
/// two entries for a key wins, as `seq` orders them). Call it with no
/// transaction open, then clear the [`Pending`] set.
pub(crate) fn merge_journal(conn: &Connection, path: &Path) -> Result<()> {
    let err = |e| StateError::sqlite(path, "merge the ledger journal", e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    match conn.execute_batch(MERGE) {
        Ok(()) => conn.execute_batch("COMMIT").map_err(err),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(err(e))
        }
    }
}
