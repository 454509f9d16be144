//! The schema and its versioned migrations.
//!
//! `PRAGMA user_version` counts the migrations applied, so a later release
//! opens an older file by applying the ones it lacks, and this release
//! refuses a file from a newer one instead of misreading it. Migrations are
//! append-only: never edit one that has shipped, add the next.
//!
//! `PRAGMA application_id` marks the file as ours, so that `--state` pointed at
//! another program's SQLite database is refused rather than altered.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::error::{Result, StateError};

/// "InVS" in ASCII: identifies an invitesync state file.
pub(crate) const APPLICATION_ID: i32 = 0x496e_5653;

/// The schema version this release writes: the number of migrations.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `MIGRATIONS[n]` takes a file from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// Version 1.
///
/// - Outcomes are stored as small integers (the codes of `outcomes`, fixed
///   forever) to keep the row table compact; `run_rows_named` shows names for
///   anyone reading the file with the sqlite3 shell.
/// - `run_rows` is `WITHOUT ROWID`: its primary key is the only index, so a
///   recorded row costs one B-tree insert, and a run's rows are stored in
///   row order, which is the order the results file and `done_rows` read.
/// - The ledger is keyed by the invite key's 64-bit hash (as a signed
///   integer): the rowid itself, the fastest lookup SQLite has. A hash
///   collision cannot make a row look unchanged, because the stored
///   fingerprint covers the request path and body, which name the invite.
/// - A ledger entry holds fixed-size fields only and points at the row that
///   applied it (`run_id`, `row_index`) for the invite key's text and vendor,
///   which `ledger_named` shows. Halving the entry halved the cost of the
///   journal merges, which rewrite ledger pages. No foreign key: pruning old
///   runs keeps the ledger working, it only loses those names.
/// - `ledger_journal` is where the writer appends a ledger change, in the
///   transaction of its row; it is merged into `ledger` in key order every
///   few tens of thousands of entries (see `pending.rs`). Upserting a random
///   key straight into a large `ledger` dirties one page per row, which
///   made the writer 10x slower; appending costs a few bytes.
const V1: &str = "
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    input_path         TEXT    NOT NULL,
    input_fingerprint  TEXT    NOT NULL,
    config_fingerprint TEXT    NOT NULL,
    options            TEXT    NOT NULL DEFAULT '{}',
    vendors            TEXT    NOT NULL DEFAULT '[]',
    started_at         INTEGER NOT NULL,
    finished_at        INTEGER,
    status             TEXT    NOT NULL
                       CHECK (status IN ('running', 'finished', 'interrupted', 'abandoned')),
    exit_code          INTEGER,
    total_rows         INTEGER
);
CREATE INDEX runs_by_input ON runs (input_path, id);

CREATE TABLE outcomes (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
INSERT INTO outcomes (code, name) VALUES
    (0, 'updated'), (1, 'unchanged'), (2, 'invalid'), (3, 'rejected'), (4, 'failed');

CREATE TABLE run_rows (
    run_id            INTEGER NOT NULL REFERENCES runs (id),
    row_index         INTEGER NOT NULL,
    line              INTEGER NOT NULL,
    vendor            TEXT,
    invite_key        TEXT,
    outcome           INTEGER NOT NULL REFERENCES outcomes (code),
    http_status       INTEGER,
    attempts          INTEGER NOT NULL,
    error             TEXT,
    remote_id         TEXT,
    remote_updated_at TEXT,
    finished_at       INTEGER NOT NULL,
    PRIMARY KEY (run_id, row_index)
) WITHOUT ROWID;

CREATE VIEW run_rows_named AS
SELECT r.run_id, r.row_index, r.line, r.vendor, r.invite_key,
       o.name AS outcome, r.http_status, r.attempts, r.error,
       r.remote_id, r.remote_updated_at,
       strftime('%Y-%m-%dT%H:%M:%fZ', r.finished_at / 1000.0, 'unixepoch') AS finished_at
FROM run_rows AS r JOIN outcomes AS o ON o.code = r.outcome;

CREATE TABLE ledger (
    key_hash    INTEGER PRIMARY KEY,
    fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 16),
    applied_at  INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    row_index   INTEGER NOT NULL
);

CREATE TABLE ledger_journal (
    seq         INTEGER PRIMARY KEY,
    key_hash    INTEGER NOT NULL,
    fingerprint BLOB    NOT NULL,
    applied_at  INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    row_index   INTEGER NOT NULL
);

CREATE VIEW ledger_named AS
SELECT r.invite_key, r.vendor, hex(l.fingerprint) AS fingerprint,
       strftime('%Y-%m-%dT%H:%M:%fZ', l.applied_at / 1000.0, 'unixepoch') AS applied_at,
       l.run_id, l.row_index
FROM (
    SELECT key_hash, fingerprint, applied_at, run_id, row_index FROM ledger
    WHERE key_hash NOT IN (SELECT key_hash FROM ledger_journal)
    UNION ALL
    SELECT key_hash, fingerprint, applied_at, run_id, row_index FROM (
        SELECT *, row_number() OVER (PARTITION BY key_hash ORDER BY seq DESC) AS newest
        FROM ledger_journal
    ) WHERE newest = 1
) AS l
LEFT JOIN run_rows AS r ON r.run_id = l.run_id AND r.row_index = l.row_index;
";

/// Brings the file to [`SCHEMA_VERSION`], or explains why it cannot.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let (version, app_id) = identity(conn, path)?;
    check_identity(conn, path, version, app_id)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let sql = |e| StateError::sqlite(path, "upgrade the state file", e);
    // IMMEDIATE takes the write lock first, so two processes racing to create
    // the same file cannot both apply the migrations.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let (version, app_id) = identity(&tx, path)?;
    check_identity(&tx, path, version, app_id)?;
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(migration).map_err(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)
            .map_err(sql)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(sql)?;
    tx.commit().map_err(sql)
}

fn identity(conn: &Connection, path: &Path) -> Result<(i64, i32)> {
    let read = |name| {
        conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
            .map_err(|e| StateError::sqlite(path, "read the state format", e))
    };
    Ok((read("user_version")?, read("application_id")? as i32))
}

fn check_identity(conn: &Connection, path: &Path, version: i64, app_id: i32) -> Result<()> {
    let not_ours = |detail: String| StateError::NotAStateFile {
        path: path.to_path_buf(),
        detail,
    };
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(not_ours(format!(
            "an SQLite database of another program, application_id {app_id:#x}"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        // A fresh file has no tables; anything else is someone's data.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| StateError::sqlite(path, "read the schema", e))?;
        if tables > 0 {
            return Err(not_ours(format!(
                "an SQLite database with {tables} tables of another program"
            )));
        }
    } else if app_id != APPLICATION_ID {
        return Err(not_ours(format!(
            "an SQLite database at version {version} without the invitesync mark"
        )));
    }
    Ok(())
}
