//! The state file: runs, finished rows and the ledger, in SQLite
//! (docs/ARCHITECTURE.md, "Guarantees and where they are enforced").
//!
//! - [`StateFile`] opens (creating and migrating) the file; it answers the
//!   reads of `status`, `export` and resume, and manages the `runs` table.
//! - [`StateLock`] makes sure a single run uses a state file at a time.
//! - [`Writer`] is the one thread that records finished rows, batching them
//!   into transactions, and keeps the ledger in step.
//! - [`LedgerReader`] answers "was this exact change applied already?" on its
//!   own connection while the writer writes.
//!
//! The tables (`schema.rs`): `runs`, `run_rows` (one line per finished row
//! of a run), `ledger` (per invite key hash, the last change applied), and
//! `ledger_journal` (ledger changes not yet merged, see `pending.rs`). The
//! views `run_rows_named` and `ledger_named` show them with names and dates
//! for the sqlite3 shell. Nothing secret is stored: no request body, no
//! header, no credential; the config and input appear only as fingerprints.
//!
//! Every connection runs in WAL mode with `synchronous=NORMAL`: a commit is
//! not fsynced, so a crash (power loss, not just a killed process) may lose
//! the last few transactions but never corrupts the file; lost rows are sent
//! again on resume, which is safe because every update is idempotent.
//!
//! The file is created with mode 0600 (invite keys can hold email addresses),
//! whatever the umask. SQLite creates `-wal` and `-shm` with the same mode as
//! the database file, so they are private too. The mode of an existing file
//! is left as its owner set it.

mod checkpoint;
mod error;
mod ledger;
mod location;
mod lock;
mod pending;
mod query;
mod queue;
mod runs;
mod schema;
mod usable;
mod writer;

pub mod bench;

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use error::{Result, StateError};
pub use ledger::LedgerReader;
pub use location::{default_name, earlier_default, location};
pub use lock::{LockHolder, StateLock};
pub use pending::LedgerEntry;
pub use query::{Counter, DoneSet, RowRecordView, VendorCounts};
pub use runs::{NewRun, RunId, RunInfo, RunStatus};
pub use schema::SCHEMA_VERSION;
pub use writer::{Writer, WriterHandle, WriterOptions, WriterStats};

use crate::outcome::Outcome;

/// How long a statement waits for a lock held by another connection (a
/// checkpoint, a reader starting) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open state file: the connection for runs and for reads.
#[derive(Debug)]
pub struct StateFile {
    conn: Connection,
    path: PathBuf,
}

impl StateFile {
    /// Opens the state file at `path`, creating it (mode 0600) if missing and
    /// bringing its schema up to date. Fails with a message naming the file
    /// if it is not a state file, is damaged ([`check_pages`]) or comes from
    /// a newer release.
    pub fn open(path: &Path) -> Result<StateFile> {
        usable::check(path)?;
        let mut conn = connect(path)?;
        check_pages(&conn, path)?;
        schema::migrate(&mut conn, path)?;
        Ok(StateFile {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the file's pages again ([`check_pages`]): after a failure,
    /// tells a damaged file from a passing fault (a full disk, say).
    pub fn check(&self) -> Result<()> {
        check_pages(&self.conn, &self.path)
    }

    /// A new [`LedgerReader`] on its own connection to this file.
    pub fn ledger_reader(&self) -> Result<LedgerReader> {
        LedgerReader::open(&self.path)
    }

    fn err(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |e| StateError::sqlite(&self.path, action, e)
    }
}

/// Opens a connection with the settings every connection needs, creating the
/// file privately first. Does not migrate; see [`connect_current`].
fn connect(path: &Path) -> Result<Connection> {
    create_private(path)?;
    let err = |action| move |e| StateError::sqlite(path, action, e);
    let conn = Connection::open(path).map_err(err("open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("set the busy timeout"))?;
    // The first statement reads the header: garbage fails here as "not a
    // database", which `StateError::sqlite` turns into NotAStateFile.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err("switch to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::NotAStateFile {
            path: path.to_path_buf(),
            detail: format!("SQLite kept journal mode {mode} instead of WAL"),
        });
    }
    // A page cache per connection grows with the file up to its size, and a
    // run holds four connections: small caches keep a 1 M-row run's memory
    // near a 10 k-row run's. Readers and the checkpointer touch few pages
    // each; the writer sets a larger one of its own.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -256;",
    )
    .map_err(err("configure the connection"))?;
    Ok(conn)
}

/// The most problems SQLite's check reports; the first few say enough, and
/// a badly damaged file would otherwise list thousands.
const CHECK_PROBLEMS: u32 = 5;

/// Refuses a damaged file before anything is sent, rather than failing on the
/// damaged page mid-run (and again on every resume).
///
/// `PRAGMA quick_check` reads every page once and checks the B-trees, the
/// records and the free list; it skips only `integrity_check`'s comparison
/// of each index with its table, which here is nearly free to skip: the row
/// and ledger tables are their own keys, and the one secondary index is on
/// the small `runs` table. It costs about the time of reading the file (a
/// few tenths of a second for a state file of a million rows, from the page
/// cache), once per command, against minutes of requests a run makes. A
/// damaged write-ahead log needs no check of its own: SQLite stops reading
/// it at the first frame whose checksum fails, which is what a crash leaves
/// behind, and checks the pages as they are with the frames it kept.
fn check_pages(conn: &Connection, path: &Path) -> Result<()> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA quick_check({CHECK_PROBLEMS})"))
        .map_err(|e| StateError::sqlite(path, "check", e))?;
    let found: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| StateError::sqlite(path, "check", e))?;
    if found.len() == 1 && found[0] == "ok" {
        return Ok(());
    }
    let detail: Vec<String> = found
        .iter()
        .filter(|line| !line.starts_with("*** "))
        .take(3)
        .map(|line| line.chars().take(160).collect())
        .collect();
    Err(StateError::damaged(
        path,
        format!("SQLite's quick_check found: {}", detail.join("; ")),
    ))
}

/// A connection for the writer and readers: the file must already be at this
/// release's schema (they start after [`StateFile::open`]), but migrating
/// here too costs two pragma reads and keeps them usable on their own.
fn connect_current(path: &Path) -> Result<Connection> {
    let mut conn = connect(path)?;
    schema::migrate(&mut conn, path)?;
    Ok(conn)
}

/// Creates the file with mode 0600 before SQLite sees it, so it is never
/// readable by others, not even for an instant. The explicit chmod undoes a
/// umask that would remove the owner's own write bit.
fn create_private(path: &Path) -> Result<()> {
    let wal = error::wal_path(path);
    if !path.exists() && std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        // SQLite would replay that log into the new file as if it were its own.
        return Err(StateError::OrphanLog {
            path: path.into(),
            wal,
        });
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file
            .set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| StateError::io(path, "set the permissions of", e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StateError::io(path, "create the state file", e)),
    }
}

/// The stored code of an outcome; fixed forever (the `outcomes` table).
fn outcome_code(o: Outcome) -> i64 {
    match o {
        Outcome::Updated => 0,
        Outcome::Unchanged => 1,
        Outcome::Invalid => 2,
        Outcome::Rejected => 3,
        Outcome::Failed => 4,
    }
}

fn outcome_from_code(code: i64) -> Option<Outcome> {
    Outcome::ALL.into_iter().find(|o| outcome_code(*o) == code)
}

#[cfg(test)]
mod tests;
