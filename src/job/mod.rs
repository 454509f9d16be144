//! One `invitesync run`, start to end, in three parts (docs/ARCHITECTURE.md,
//! "A run"):
//!
//! 1. [`prepare`]: read the config and the input's fingerprint, check every
//!    file the run reads and writes, take the state file's lock, choose
//!    between a resume and a new run, build each vendor's target;
//! 2. [`pipeline`]: the threads and tasks that send the rows;
//! 3. [`finish`]: count what the state file recorded, pick the exit code,
//!    write the results, the rows to fix and the summary, close the run.
//!
//! ```text
//! reader thread ──batches of rows──▶ dispatcher ──tasks──▶ vendors
//!  (parse, plan,                       (order,        │
//!   ledger lookup)                      ledger) ◀─────┘ answers
//!        │                                 │ records
//!        └──────── invalid rows ─────────▶ writer thread (SQLite)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dispatch::DispatchReport;
use crate::exit::Exit;
use crate::latency::Latency;
use crate::outcome::Outcome;
use crate::progress::ProgressMode;
use crate::shutdown::Shutdown;
use crate::state::RunId;

mod finish;
mod pipeline;
mod prepare;
mod resume;

pub use prepare::{scan_input, state_path};
pub use resume::config_fingerprint;

/// Everything `run` can be told.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub input: PathBuf,
    pub config: PathBuf,
    pub state: Option<PathBuf>,
    pub results: Option<PathBuf>,
    pub new_run: bool,
    pub dry_run: bool,
    pub force: bool,
    pub recheck_after: Option<Duration>,
    /// `(k, n)`: this process takes shard k (0-based) of n.
    pub shard: Option<(u32, u32)>,
    /// Overrides `[run] concurrency`.
    pub concurrency: Option<usize>,
    /// Keeps each vendor's concurrency at its cap instead of adapting.
    pub fixed_concurrency: bool,
    pub progress: ProgressMode,
    pub summary_json: Option<PathBuf>,
    /// Publishes the run's metrics while it goes; the caller publishes the end.
    pub metrics: Option<Arc<crate::metrics::Reporter>>,
    /// An input without data rows ends with exit code 0 instead of 1.
    pub allow_empty: bool,
    /// `--delimiter`, `--column`, `--vendor`: over the config's `[input]`.
    pub input_flags: crate::input::InputFlags,
}

/// A run that could not start or went wrong outside the rows: exit code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub code: i32,
    pub message: String,
}

/// A usage or configuration problem: nothing was sent.
fn usage(message: impl Into<String>) -> JobError {
    JobError {
        code: Exit::Usage.code(),
        message: message.into(),
    }
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: Option<RunId>,
    pub exit_code: i32,
    /// Rows of the whole run (all attempts) per vendor name and outcome; `None` = no vendor.
    pub counts: Vec<(Option<String>, [u64; 5])>,
    pub pending: u64,
    pub dry_run: DispatchReport,
    pub stopped: Vec<String>,
    pub interrupted: bool,
    pub results: Option<PathBuf>,
    pub failed_rows: Option<PathBuf>,
    pub elapsed: Duration,
    pub resumed: bool,
    pub state: PathBuf,
    /// Round-trip percentiles of this attempt, per vendor name, in config order.
    pub latency: Vec<(String, Latency)>,
}

impl RunReport {
    pub fn total(&self, o: Outcome) -> u64 {
        self.counts.iter().map(|(_, c)| c[o.index()]).sum()
    }
}

/// Runs the job; the caller maps [`RunReport::exit_code`] to the process's.
/// A run that cannot start or stops on an error still leaves a summary
/// (`{"exit_code": 2, "error": ...}`) where `--summary-json` says.
pub async fn run(opts: RunOptions, shutdown: Shutdown) -> Result<RunReport, JobError> {
    let started_at = std::time::SystemTime::now();
    let result = run_job(&opts, shutdown, started_at).await;
    if let (Err(e), Some(path)) = (&result, &opts.summary_json) {
        // The config, which may name the state file, may not have been read.
        let state = crate::state::location(opts.state.as_deref(), None, opts.shard);
        let wrote = crate::outputs::error_summary(
            path,
            e.code,
            &e.message,
            started_at,
            &[&opts.input, &opts.config],
            &state,
        );
        // Unless the summary's own name was the problem, which the error says.
        let named = e
            .message
            .contains(&format!("--summary-json {}", path.display()));
        if let (Err(w), false) = (wrote, named) {
            crate::logs::notice(crate::logs::Level::Warn, &format!("warning: {w}"));
        }
    }
    result
}

async fn run_job(
    opts: &RunOptions,
    shutdown: Shutdown,
    started_at: std::time::SystemTime,
) -> Result<RunReport, JobError> {
    let started = Instant::now();
    // Piped input makes the run read a copy: `opts` as the run sees it.
    let mut opts = opts.clone();
    let mut prepared = prepare::prepare(&mut opts, &shutdown).await?;
    let ended = pipeline::run(&opts, &mut prepared, &shutdown).await?;
    finish::finish(&opts, prepared, ended, started, started_at)
}
