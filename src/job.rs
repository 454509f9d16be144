//! One `invitesync run`, start to end: config, state, the pipeline's threads
//! and tasks, the results file, the exit code.
//!
//! ```text
//! reader thread ──batches of rows──▶ dispatcher ──tasks──▶ vendors
//!  (parse, plan,                       (order,        │
//!   ledger lookup)                      ledger) ◀─────┘ answers
//!        │                                 │ records
//!        └──────── invalid rows ─────────▶ writer thread (SQLite)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use crate::change::VendorId;
use crate::client::Client;
use crate::config::Config;
use crate::dispatch::{AppliedKeys, DispatchReport, Dispatcher, LedgerPolicy, Ready};
use crate::input::{InputFlags, Layout, Reader};
use crate::latency::Latency;
use crate::outcome::Outcome;
use crate::progress::{Expected, Progress, ProgressMode};
use crate::results::Select;
use crate::send::Target;
use crate::shutdown::{EXIT_RESUMABLE, Shutdown};
use crate::state::{DoneSet, LedgerReader, NewRun, RunId, RunStatus, StateFile, StateLock, Writer};
use crate::tally::Tally;

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
    pub input_flags: InputFlags,
}

/// A run that could not start or went wrong outside the rows: exit code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub code: i32,
    pub message: String,
}

fn usage(message: impl Into<String>) -> JobError {
    JobError {
        code: 2,
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

/// The input's fingerprint (of its bytes as given and the rule that numbers
/// its rows) and its number of data rows, counted by the reader that reads
/// them with `layout` (see [`crate::input::scan`]).
pub fn scan_input(path: &Path, layout: &Layout) -> Result<(String, u64), JobError> {
    crate::input::scan(path, layout).map_err(|e| usage(e.0))
}

/// An input that could not be read to its end: the whole of it is read
/// before anything is sent, so nothing was, and a damaged compressed file's
/// rows are not trusted (its checksum is at its end).
fn unscanned(e: crate::input::InputError) -> JobError {
    usage(format!("{e}; nothing was sent"))
}

/// What of the config decides what is sent. Secrets, concurrency and rates may
/// change between a crash and its resume (that is how a refused credential is
/// fixed); vendor names, kinds, URLs and kind settings may not.
pub fn config_fingerprint(
    config: &Config,
    adapters: &[Box<dyn crate::vendors::Adapter>],
) -> String {
    let mut h = blake3::Hasher::new();
    for ((vc, _), a) in config.vendors.iter().zip(adapters) {
        h.update(
            format!(
                "{}\0{}\0{}\0{}\n",
                vc.name,
                vc.kind,
                vc.base_url,
                a.settings_fingerprint()
            )
            .as_bytes(),
        );
    }
    h.finalize().to_hex().to_string()
}

/// Where the state file lives: `--state`, `[run] state`, or `invitesync.db`
/// beside the input. A shard's default is `invitesync.shard-K-of-N.db`: each
/// shard needs a state file of its own (one file is one run at a time), and
/// shards started side by side on one disk must not lock each other out.
pub fn state_path(
    opts_state: Option<&Path>,
    config: &Config,
    input: &Path,
    shard: Option<(u32, u32)>,
) -> PathBuf {
    opts_state
        .map(Path::to_path_buf)
        .or_else(|| config.run.state.clone())
        .unwrap_or_else(|| {
            input.with_file_name(match shard {
                Some((k, n)) => format!("invitesync.shard-{k}-of-{n}.db"),
                None => "invitesync.db".to_string(),
            })
        })
}

struct Loaded {
    config: Config,
    adapters: Vec<Box<dyn crate::vendors::Adapter>>,
}

fn load(opts: &RunOptions) -> Result<Loaded, JobError> {
    let config = Config::load(&opts.config, !opts.dry_run).map_err(|e| usage(e.0))?;
    let adapters = config.adapters().map_err(|e| usage(e.0))?;
    Ok(Loaded { config, adapters })
}

/// Runs the job; the caller maps [`RunReport::exit_code`] to the process's.
pub async fn run(opts: RunOptions, shutdown: Shutdown) -> Result<RunReport, JobError> {
    let started = Instant::now();
    let mut opts = opts;
    let piped = crate::input::source::is_piped(&opts.input).map_err(usage)?;
    let given = crate::input::source::display_name(&opts.input);
    let Loaded { config, adapters } = load(&opts)?;
    let vendor_names: Vec<&str> = config
        .vendors
        .iter()
        .map(|(v, _)| v.name.as_str())
        .collect();
    let layout = Layout::resolve(&config.input, &opts.input_flags, &vendor_names).map_err(usage)?;
    let state_path = state_path(opts.state.as_deref(), &config, &opts.input, opts.shard);

    // The lock comes first: a second process must not even read a run in
    // progress, nor touch its copy of piped input.
    let lock = if opts.dry_run {
        None
    } else {
        Some(StateLock::acquire(&state_path).map_err(|e| JobError {
            code: if e.is_locked() { 4 } else { 2 },
            message: e.to_string(),
        })?)
    };
    // Piped input is copied beside the state file as it is read, and the run
    // works from the copy (see `input::spool`); its results go where a file's
    // would, named after `-` or the pipe.
    let mut spooled = None;
    if piped {
        let copied = crate::input::spool::spool_or_stop(
            opts.input.clone(),
            state_path.clone(),
            layout.clone(),
            lock.is_some(),
            shutdown.token(),
        )
        .await
        .map_err(unscanned)?;
        let Some(copy) = copied else {
            return Err(JobError {
                code: EXIT_RESUMABLE,
                message: "stopped while the piped data was arriving, before anything was \
                          recorded or sent: run the command again with the whole data"
                    .into(),
            });
        };
        if opts.results.is_none() && config.run.results.is_none() {
            opts.results = Some(crate::results::default_path(&opts.input, opts.shard));
        }
        opts.input = copy.path.clone();
        spooled = Some(copy);
    }
    let header_check = Reader::open_named(&opts.input, &given, &layout).map_err(|e| usage(e.0))?;
    for warning in header_check.header().column_warnings() {
        tracing::warn!("{warning}");
    }
    drop(header_check);
    let (input_fp, total_rows) = match &spooled {
        Some(copy) => (copy.fingerprint.clone(), copy.rows),
        None => crate::input::scan(&opts.input, &layout).map_err(unscanned)?,
    };
    // A file with a header and no rows is what an export that lost its rows
    // looks like: it must not pass for a night with nothing to change.
    let empty_input = total_rows == 0 && !opts.allow_empty;
    if empty_input {
        tracing::warn!(
            "{} has no data rows, only a header: nothing to send; the run ends with exit code 1 \
             (pass --allow-empty when an empty input is expected)",
            given.display()
        );
    }
    let config_fp = config_fingerprint(&config, &adapters);
    let names: Vec<String> = config.vendors.iter().map(|(v, _)| v.name.clone()).collect();
    let concurrency = opts.concurrency.unwrap_or(config.run.concurrency).max(1);

    let state = if opts.dry_run && !state_path.exists() {
        None
    } else {
        Some(StateFile::open(&state_path).map_err(|e| usage(e.to_string()))?)
    };

    let mut options = serde_json::json!({
        "shard": opts.shard.map(|(k, n)| format!("{k}/{n}")),
        "force": opts.force,
        "recheck_after": opts.recheck_after.map(|d| humantime::format_duration(d).to_string()),
    });
    // Only a layout other than the default is recorded, so that runs of
    // plain files record (and resume) what they always did.
    if let (Some(map), Some(input)) = (options.as_object_mut(), layout.to_json()) {
        map.insert("input".into(), input);
    }
    let (run_id, resumed, done) = match (&state, opts.dry_run) {
        (Some(state), false) => {
            if let Some(copy) = &spooled {
                crate::input::spool::settle_other_runs(state, &state_path, copy, opts.new_run)
                    .map_err(usage)?;
            }
            let (id, resumed, done) = choose_run(
                state, &opts, &input_fp, &config_fp, &options, &names, total_rows,
            )?;
            if let Some(copy) = &mut spooled {
                copy.keep(true);
            }
            (Some(id), resumed, done)
        }
        _ => (None, false, DoneSet::new()),
    };
    if resumed {
        let from = match &spooled {
            Some(copy) => format!(
                " from {}, the copy it kept of the data piped in",
                copy.path.display()
            ),
            None => String::new(),
        };
        tracing::info!(
            "resuming run {}{from}: {} rows already done",
            run_id.map_or(0, |r| r.0),
            done.len()
        );
    }

    let client = Client::new(config.run.request_timeout, concurrency).map_err(usage)?;
    let shards = opts.shard.map_or(1, |(_, n)| n);
    let targets: Arc<Vec<Target>> = Arc::new(
        config
            .vendors
            .iter()
            .zip(adapters)
            .enumerate()
            .map(|(i, ((vc, settings), a))| {
                Target::new(
                    i as VendorId,
                    vc,
                    a,
                    concurrency,
                    !opts.fixed_concurrency,
                    shards,
                )
                .with_credential_sources(settings)
            })
            .collect(),
    );
    let tally = Arc::new(Tally::new(targets.len()));
    let stop = shutdown.token();

    let writer = match (run_id, &state) {
        (Some(id), Some(_)) => {
            Some(Writer::spawn(&state_path, id, names.clone()).map_err(|e| usage(e.to_string()))?)
        }
        _ => None,
    };
    let ledger = if state_path.exists() {
        Some(LedgerReader::open(&state_path).map_err(|e| usage(e.to_string()))?)
    } else {
        None
    };
    // An empty ledger can only come to hold this run's own changes: they are
    // marked as they are applied, and only marked keys are looked up.
    let applied_keys = match &ledger {
        Some(l) if l.is_empty().map_err(|e| usage(e.to_string()))? => {
            Some(Arc::new(AppliedKeys::new()))
        }
        _ => None,
    };
    let expected = Expected {
        total: total_rows,
        done_before: done.len(),
        shards,
    };
    let progress = Progress::start(
        opts.progress,
        tally.clone(),
        targets.clone(),
        expected,
        opts.dry_run,
    );
    if let Some(metrics) = &opts.metrics {
        metrics.watch(
            &config,
            tally.clone(),
            targets.clone(),
            expected,
            opts.progress,
        );
    }

    // Batches of rows: 16 of 64 is the 1,024 rows the reader may run ahead.
    let (row_tx, row_rx) = mpsc::channel::<Vec<Ready>>(16);
    let writer_handle = writer.as_ref().map(|(h, _)| h.clone());

    // Reader thread: parse, plan, look up the ledger, hand on.
    let reader = {
        let input = opts.input.clone();
        let layout = layout.clone();
        let targets = targets.clone();
        let tally = tally.clone();
        let stop = stop.clone();
        let writer = writer_handle.clone();
        let shard = opts.shard;
        let ledger = ledger.map(|reader| crate::reader::Ledger {
            reader,
            marked: applied_keys.clone(),
        });
        std::thread::Builder::new()
            .name("invitesync-reader".into())
            .spawn(move || {
                crate::reader::read_rows(
                    &input, &layout, &targets, done, ledger, writer, shard, row_tx, &stop, &tally,
                )
            })
            .map_err(|e| usage(format!("cannot start the reader: {e}")))?
    };

    let dispatcher = Dispatcher {
        targets: targets.clone(),
        client,
        global: Arc::new(Semaphore::new(concurrency)),
        stop: stop.clone(),
        tally: tally.clone(),
        policy: LedgerPolicy {
            force: opts.force,
            recheck_after: opts.recheck_after,
            dry_run: opts.dry_run,
        },
        window: (concurrency * 16).clamp(1024, 16384),
        applied_keys,
    };
    let grace = config.run.grace_period;
    // On the runtime's workers rather than on this thread (which, under the
    // CLI's block_on, is not one of them): the tasks the dispatcher starts
    // and the answers they send back then mostly stay on one worker instead
    // of waking another thread for every row.
    let mut dispatch = tokio::spawn(dispatcher.run(row_rx, writer_handle));
    let mut cut_short = false;
    let report = tokio::select! {
        r = &mut dispatch => match r {
            Ok(report) => report,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => DispatchReport::default(),
        },
        _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
            dispatch.abort();
            cut_short = true;
            DispatchReport::default()
        }
    };
    let read_problem = reader
        .join()
        .unwrap_or_else(|_| Err("the reader stopped unexpectedly".into()));
    let forward_problem = match &report.writer_failed {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    };
    let mut writer_problem = None;
    if let Some((handle, join)) = writer {
        drop(handle);
        match join.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => writer_problem = Some(e.to_string()),
            Err(_) => writer_problem = Some("the state writer stopped unexpectedly".into()),
        }
    }
    progress.finish().await;
    if let Some(problem) = [read_problem.err(), forward_problem.err(), writer_problem]
        .into_iter()
        .flatten()
        .next()
    {
        return Err(JobError {
            code: EXIT_RESUMABLE,
            message: format!(
                "{problem}; what was committed is safe: run the same command again to resume"
            ),
        });
    }

    let stopped: Vec<String> = targets
        .iter()
        .filter_map(|t| t.circuit.reason().map(|r| format!("{}: {r}", t.name)))
        .collect();
    let interrupted = shutdown.is_requested() || cut_short;
    let latency: Vec<(String, Latency)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.latency.snapshot()))
        .collect();
    let pending_live: u64 = targets
        .iter()
        .map(|t| tally.vendor(Some(t.id)).pending.load(Ordering::Relaxed))
        .sum();

    let Some(state) = state.filter(|_| !opts.dry_run) else {
        // Dry run: nothing recorded; report the live tally.
        let counts = live_counts(&tally, &names);
        let any_bad = counts.iter().any(|(_, c)| c[2] + c[3] + c[4] > 0);
        return Ok(RunReport {
            run_id: None,
            exit_code: if any_bad || empty_input { 1 } else { 0 },
            counts,
            pending: 0,
            dry_run: report,
            stopped,
            interrupted,
            results: None,
            failed_rows: None,
            elapsed: started.elapsed(),
            resumed,
            state: state_path,
            latency,
        });
    };
    let run_id = run_id.ok_or_else(|| usage("no run was recorded"))?;
    let recorded = state.row_count(run_id).map_err(|e| usage(e.to_string()))?;
    let counts: Vec<(Option<String>, [u64; 5])> = state
        .counts(run_id)
        .map_err(|e| usage(e.to_string()))?
        .into_iter()
        .map(|c| (c.vendor, c.by_outcome))
        .collect();
    let ours_total = if opts.shard.is_some() {
        recorded + pending_live
    } else {
        total_rows
    };
    let pending = ours_total.saturating_sub(recorded).max(pending_live);
    let any_bad = counts.iter().any(|(_, c)| c[2] + c[3] + c[4] > 0);
    let unfinished = interrupted || !stopped.is_empty() || pending > 0;
    let exit_code = if unfinished {
        EXIT_RESUMABLE
    } else if any_bad || empty_input {
        1
    } else {
        0
    };

    let results_path = opts
        .results
        .clone()
        .or_else(|| config.run.results.clone())
        .unwrap_or_else(|| crate::results::default_path(&opts.input, opts.shard));
    let results = crate::results::write_file(
        &state,
        run_id,
        &opts.input,
        &layout,
        &results_path,
        Select::All,
        opts.shard,
        &targets,
    )
    .map_err(|e| unwritten(e, run_id, &state_path))?;
    let failed_rows = if any_bad {
        let path = crate::results::failed_path(&results_path);
        Some(
            crate::results::write_file(
                &state,
                run_id,
                &opts.input,
                &layout,
                &path,
                Select::Failed,
                opts.shard,
                &targets,
            )
            .map_err(|e| unwritten(e, run_id, &state_path))?,
        )
    } else {
        None
    };
    let status = if unfinished {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    state
        .finish_run(run_id, status, exit_code)
        .map_err(|e| usage(e.to_string()))?;
    if let Some(copy) = &mut spooled {
        copy.keep(unfinished);
        if unfinished {
            tracing::info!(
                "the data piped in is kept at {} until the run finishes: pipe the same data \
                 again to resume",
                copy.path.display()
            );
        }
    }
    drop(lock);
    Ok(RunReport {
        run_id: Some(run_id),
        exit_code,
        counts,
        pending,
        dry_run: report,
        stopped,
        interrupted,
        results: Some(results),
        failed_rows,
        elapsed: started.elapsed(),
        resumed,
        state: state_path,
        latency,
    })
}

/// What this invocation continues or starts: the newest unfinished run of the
/// same input if the input, the vendors and the options are unchanged (a
/// resume), otherwise a new run, retiring an interrupted one when
/// `--new-run` says so. A resume that would be unsafe is refused with what
/// changed and what to do.
#[allow(clippy::too_many_arguments)]
fn choose_run(
    state: &StateFile,
    opts: &RunOptions,
    input_fp: &str,
    config_fp: &str,
    options: &serde_json::Value,
    names: &[String],
    total_rows: u64,
) -> Result<(RunId, bool, DoneSet), JobError> {
    let previous = state
        .latest_unfinished_run(&opts.input)
        .map_err(|e| usage(e.to_string()))?;
    match previous {
        Some(prev) if !opts.new_run => {
            if prev.input_fingerprint != input_fp {
                return Err(usage(format!(
                    "{} changed since run {} was interrupted, so it cannot be resumed safely \
                     (row numbers may no longer match). Run again with --new-run to start afresh; \
                     rows the ledger already holds will end `unchanged`.",
                    opts.input.display(),
                    prev.id.0
                )));
            }
            if prev.config_fingerprint != config_fp {
                return Err(usage(format!(
                    "the vendors in {} (names, kinds, base URLs or methods) changed since run {} was interrupted, \
                     so it cannot be resumed safely. Restore them, or run again with --new-run.",
                    opts.config.display(),
                    prev.id.0
                )));
            }
            if prev.options != *options {
                return Err(usage(format!(
                    "run {} of {} was started with {}, and this command has {}; \
                     resume it with the same options, or pass --new-run to start afresh",
                    prev.id.0,
                    opts.input.display(),
                    describe_options(&prev.options),
                    describe_options(options)
                )));
            }
            let done = state.done_rows(prev.id).map_err(|e| usage(e.to_string()))?;
            // A run recorded by an older count of the same bytes gets the right total.
            state
                .set_total_rows(prev.id, total_rows)
                .map_err(|e| usage(e.to_string()))?;
            state
                .set_status(prev.id, RunStatus::Running)
                .map_err(|e| usage(e.to_string()))?;
            Ok((prev.id, true, done))
        }
        prev => {
            if let Some(prev) = prev {
                state
                    .finish_run(prev.id, RunStatus::Abandoned, EXIT_RESUMABLE)
                    .map_err(|e| usage(e.to_string()))?;
            }
            let id = state
                .create_run(&NewRun {
                    input_path: opts.input.clone(),
                    input_fingerprint: input_fp.to_string(),
                    config_fingerprint: config_fp.to_string(),
                    options: options.clone(),
                    vendors: names.to_vec(),
                    total_rows: Some(total_rows),
                })
                .map_err(|e| usage(e.to_string()))?;
            Ok((id, false, DoneSet::new()))
        }
    }
}

/// A results file that could not be written, after every row was recorded:
/// nothing needs sending again, only the file needs writing.
fn unwritten(problem: String, run: RunId, state: &Path) -> JobError {
    usage(format!(
        "{problem}; every row is recorded in {}: fix that and run the same command again \
         (nothing is sent twice), or write the file with `invitesync export {} --state {}`",
        state.display(),
        run.0,
        state.display()
    ))
}

/// The options a resume must repeat, as the flags that set them:
/// `--shard 0/4 --force`, or `no --shard, --force or --recheck-after`.
fn describe_options(options: &serde_json::Value) -> String {
    let mut flags = Vec::new();
    if let Some(shard) = options.get("shard").and_then(|v| v.as_str()) {
        flags.push(format!("--shard {shard}"));
    }
    if options.get("force").and_then(|v| v.as_bool()) == Some(true) {
        flags.push("--force".to_string());
    }
    if let Some(age) = options.get("recheck_after").and_then(|v| v.as_str()) {
        flags.push(format!("--recheck-after {age}"));
    }
    if let Some(input) = options.get("input") {
        flags.extend(Layout::flags_of(input));
    }
    if flags.is_empty() {
        "no --shard, --force or --recheck-after".to_string()
    } else {
        format!("`{}`", flags.join(" "))
    }
}

fn live_counts(tally: &Tally, names: &[String]) -> Vec<(Option<String>, [u64; 5])> {
    let mut out = Vec::new();
    let row = |t: &crate::tally::VendorTally| {
        let mut c = [0u64; 5];
        for o in Outcome::ALL {
            c[o.index()] = t.count(o);
        }
        c
    };
    if tally.unrouted().finished() > 0 {
        out.push((None, row(tally.unrouted())));
    }
    for (i, t) in tally.vendors().iter().enumerate() {
        out.push((names.get(i).cloned(), row(t)));
    }
    out
}
