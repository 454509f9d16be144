//! The `runs` table: one line per `invitesync run`, found again on resume.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};

use super::StateFile;
use super::error::{Result, StateError};
use crate::outcome::now_millis;

/// A run's id in the state file (what `export RUN` takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a run stands. A run found `Running` while nobody holds the lock is
/// one whose process died; resume treats it like `Interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Running,
    Finished,
    Interrupted,
    /// Left unfinished for good: `--new-run` started another run of the same
    /// input instead of resuming this one.
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Interrupted,
            RunStatus::Abandoned,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a new run records about itself. Nothing secret: fingerprints of the
/// input and config, never their contents.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// The input file; stored canonicalised so that resume finds the run
    /// whatever relative path the user typed.
    pub input_path: PathBuf,
    /// Hex digest of the input file, so resume can notice it changed.
    pub input_fingerprint: String,
    /// Hex digest of the effective configuration (without secrets).
    pub config_fingerprint: String,
    /// The options that shape the run (shard, force, recheck-after, ...).
    pub options: serde_json::Value,
    /// Vendor account names, indexed by `VendorId`.
    pub vendors: Vec<String>,
    /// The number of data rows, when already known.
    pub total_rows: Option<u64>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub id: RunId,
    pub input_path: PathBuf,
    pub input_fingerprint: String,
    pub config_fingerprint: String,
    pub options: serde_json::Value,
    pub vendors: Vec<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub total_rows: Option<u64>,
}

const RUN_COLUMNS: &str = "id, input_path, input_fingerprint, config_fingerprint, options, \
     vendors, started_at, finished_at, status, exit_code, total_rows";

/// The form of an input path stored in and looked up from `runs`.
fn canonical_text(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

impl StateFile {
    /// Records a new run with status `running`, started now.
    pub fn create_run(&self, run: &NewRun) -> Result<RunId> {
        let vendors = serde_json::Value::from(run.vendors.clone()).to_string();
        self.conn
            .execute(
                "INSERT INTO runs (input_path, input_fingerprint, config_fingerprint, options,
                                   vendors, started_at, status, total_rows)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
                params![
                    canonical_text(&run.input_path),
                    run.input_fingerprint,
                    run.config_fingerprint,
                    run.options.to_string(),
                    vendors,
                    now_millis(),
                    run.total_rows.map(|n| n as i64),
                ],
            )
            .map_err(self.err("record a new run"))?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// The newest run of this input that did not finish (`running` after a
    /// crash, or `interrupted`): the one `run` resumes. The caller compares
    /// its fingerprints to decide whether resuming is still right.
    pub fn latest_unfinished_run(&self, input_path: &Path) -> Result<Option<RunInfo>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE input_path = ?1 AND status IN ('running', 'interrupted')
             ORDER BY id DESC LIMIT 1"
        );
        self.query_run(&sql, params![canonical_text(input_path)])
    }

    /// The newest run of any input.
    pub fn latest_run(&self) -> Result<Option<RunInfo>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1");
        self.query_run(&sql, [])
    }

    /// One run; [`StateError::NoSuchRun`] if the file does not hold it.
    pub fn run(&self, id: RunId) -> Result<RunInfo> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        self.query_run(&sql, [id.0])?
            .ok_or_else(|| StateError::NoSuchRun {
                path: self.path.clone(),
                run: id.0,
            })
    }

    /// All runs, oldest first.
    pub fn list_runs(&self) -> Result<Vec<RunInfo>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id");
        let mut stmt = self.conn.prepare(&sql).map_err(self.err("list the runs"))?;
        let rows = stmt
            .query_map([], raw_run)
            .map_err(self.err("list the runs"))?;
        let mut runs = Vec::new();
        for raw in rows {
            runs.push(self.decode(raw.map_err(self.err("list the runs"))?)?);
        }
        Ok(runs)
    }

    /// Sets a run's status, e.g. back to `running` when it resumes, or
    /// `interrupted` when it stops early. Leaves `finished_at` alone unless
    /// going back to `running`, which clears it.
    pub fn set_status(&self, id: RunId, status: RunStatus) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2,
                    finished_at = CASE WHEN ?2 = 'running' THEN NULL ELSE finished_at END
                 WHERE id = ?1",
                params![id.0, status.as_str()],
            )
            .map_err(self.err("update a run"))?;
        self.require(id, changed)
    }

    /// Records the end of a run (or of one session of it): its status
    /// (`finished`, or `interrupted` if it can be resumed), exit code and time.
    pub fn finish_run(&self, id: RunId, status: RunStatus, exit_code: i32) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, exit_code = ?3, finished_at = ?4 WHERE id = ?1",
                params![id.0, status.as_str(), exit_code, now_millis()],
            )
            .map_err(self.err("record the end of a run"))?;
        self.require(id, changed)
    }

    /// Records the number of data rows once the input has been read through.
    pub fn set_total_rows(&self, id: RunId, total_rows: u64) -> Result<()> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET total_rows = ?2 WHERE id = ?1",
                params![id.0, total_rows as i64],
            )
            .map_err(self.err("update a run"))?;
        self.require(id, changed)
    }

    fn require(&self, id: RunId, changed: usize) -> Result<()> {
        if changed == 0 {
            return Err(StateError::NoSuchRun {
                path: self.path.clone(),
                run: id.0,
            });
        }
        Ok(())
    }

    fn query_run(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<RunInfo>> {
        let raw = self
            .conn
            .query_row(sql, params, raw_run)
            .optional()
            .map_err(self.err("read the runs"))?;
        raw.map(|r| self.decode(r)).transpose()
    }

    fn decode(&self, raw: RawRun) -> Result<RunInfo> {
        let corrupt = |what, detail: String| StateError::Corrupt {
            path: self.path.clone(),
            what,
            detail,
        };
        let options = serde_json::from_str(&raw.options)
            .map_err(|e| corrupt("run options", format!("run {}: {e}", raw.id)))?;
        let vendors = serde_json::from_str(&raw.vendors)
            .map_err(|e| corrupt("vendor list", format!("run {}: {e}", raw.id)))?;
        let status = RunStatus::parse(&raw.status)
            .ok_or_else(|| corrupt("run status", format!("run {}: {}", raw.id, raw.status)))?;
        Ok(RunInfo {
            id: RunId(raw.id),
            input_path: PathBuf::from(raw.input_path),
            input_fingerprint: raw.input_fingerprint,
            config_fingerprint: raw.config_fingerprint,
            options,
            vendors,
            started_at: raw.started_at,
            finished_at: raw.finished_at,
            status,
            exit_code: raw.exit_code,
            total_rows: raw.total_rows.map(|n| n.max(0) as u64),
        })
    }
}

/// A `runs` line as SQLite gives it, before the JSON and status are parsed.
struct RawRun {
    id: i64,
    input_path: String,
    input_fingerprint: String,
    config_fingerprint: String,
    options: String,
    vendors: String,
    started_at: i64,
    finished_at: Option<i64>,
    status: String,
    exit_code: Option<i32>,
    total_rows: Option<i64>,
}

fn raw_run(r: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        id: r.get(0)?,
        input_path: r.get(1)?,
        input_fingerprint: r.get(2)?,
        config_fingerprint: r.get(3)?,
        options: r.get(4)?,
        vendors: r.get(5)?,
        started_at: r.get(6)?,
        finished_at: r.get(7)?,
        status: r.get(8)?,
        exit_code: r.get(9)?,
        total_rows: r.get(10)?,
    })
}
