//! Before anything is sent: every check that can refuse the run, the lock,
//! the choice between a resume and a new run, and each vendor's target.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{JobError, RunOptions, usage};
use crate::change::VendorId;
use crate::client::Client;
use crate::config::Config;
use crate::exit::Exit;
use crate::input::spool::Spooled;
use crate::input::{Fingerprinted, Layout, Reader};
use crate::outputs::Named;
use crate::send::Target;
use crate::shutdown::Shutdown;
use crate::state::{DoneSet, RunId, StateError, StateFile, StateLock};

/// What [`prepare`] leaves for the pipeline and the finish.
pub(super) struct Prepared {
    /// How the input is laid out (delimiter, column names, a fixed vendor).
    pub layout: Layout,
    /// The copy of piped input the run reads; removed when it drops unless
    /// the run is left to resume.
    pub spooled: Option<Spooled>,
    /// The input, held open from its count to the results (`input::Held`).
    pub held: crate::input::Held,
    pub config: Config,
    /// Vendor names in config order (a vendor's id is its index).
    pub names: Vec<String>,
    pub total_rows: u64,
    /// A header and no rows, not allowed by `--allow-empty`.
    pub empty_input: bool,
    pub state_path: PathBuf,
    pub files: OutputFiles,
    /// Held until the run is recorded finished; `None` in a dry run.
    pub lock: Option<StateLock>,
    /// `None` in a dry run without a state file.
    pub state: Option<StateFile>,
    /// The run this invocation records into; `None` in a dry run.
    pub run_id: Option<RunId>,
    pub resumed: bool,
    /// Rows an earlier attempt of this run finished (taken by the reader).
    pub done: DoneSet,
    pub client: Client,
    pub concurrency: usize,
    pub targets: Arc<Vec<Target>>,
}

/// Where the results and the rows to fix go.
pub(super) struct OutputFiles {
    pub results: PathBuf,
    pub failed: PathBuf,
}

/// Everything before the first request. `opts` may change here: piped
/// input is copied beside the state file, and the run works from the copy.
pub(super) async fn prepare(
    opts: &mut RunOptions,
    shutdown: &Shutdown,
) -> Result<Prepared, JobError> {
    let piped = crate::input::source::is_piped(&opts.input).map_err(usage)?;
    let given = crate::input::source::display_name(&opts.input);
    let Loaded { config, adapters } = load(opts)?;
    let vendor_names: Vec<&str> = config
        .vendors
        .iter()
        .map(|(v, _)| v.name.as_str())
        .collect();
    let layout = Layout::resolve(&config.input, &opts.input_flags, &vendor_names).map_err(usage)?;
    let config_fp = super::config_fingerprint(&config, &adapters);
    let state_path = state_path(opts.state.as_deref(), &config, opts.shard);
    if !piped {
        check_earlier_default(opts, &config, &state_path)?;
    }
    let results_path = opts
        .results
        .clone()
        .or_else(|| config.run.results.clone())
        .unwrap_or_else(|| crate::results::default_path(&opts.input, opts.shard));
    // Through symbolic links: written in place of the file a link points
    // to, not of the link.
    let files = OutputFiles {
        failed: crate::outputs::through_links(&crate::results::failed_path(&results_path)),
        results: crate::outputs::through_links(&results_path),
    };
    check_outputs(opts, &config, &files, &state_path)?;
    let names: Vec<String> = config.vendors.iter().map(|(v, _)| v.name.clone()).collect();
    let concurrency = opts.concurrency.unwrap_or(config.run.concurrency).max(1);
    // Proxies, certificates and keys are read before the state file is
    // touched: a mistake there is a config error, and nothing is sent.
    let client = Client::new(&config, concurrency).map_err(usage)?;

    // The lock comes first: a second process must not even read a run in
    // progress, nor touch its copy of piped input.
    let lock = if opts.dry_run {
        None
    } else {
        Some(StateLock::acquire(&state_path).map_err(state_error)?)
    };
    // Yesterday's summary must not pass for today's while this run goes, nor
    // stay behind if it fails: it is written again at the end.
    if let Some(summary) = &opts.summary_json {
        crate::outputs::remove_stale(summary).map_err(usage)?;
    }
    // Piped input is copied beside the state file as it is read, and the run
    // works from the copy (see `input::spool`); its results go where a
    // file's would, named after `-` or the pipe.
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
                code: Exit::Resumable.code(),
                message: "stopped while the piped data was arriving, before anything was \
                          recorded or sent: run the command again with the whole data"
                    .into(),
            });
        };
        opts.input = copy.path.clone();
        spooled = Some(copy);
    }
    let held = crate::input::Held::open(&opts.input).map_err(unscanned)?;
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
    let state = if opts.dry_run && !state_path.exists() {
        None
    } else {
        Some(StateFile::open(&state_path).map_err(state_error)?)
    };
    let (run_id, resumed, done) = match (&state, opts.dry_run) {
        (Some(state), false) => {
            if let Some(copy) = &spooled {
                crate::input::spool::settle_other_runs(state, &state_path, copy, opts.new_run)
                    .map_err(usage)?;
            }
            let chosen = super::resume::choose_run(
                state, opts, &layout, &input_fp, &config_fp, &names, total_rows,
            )?;
            if let Some(copy) = &mut spooled {
                copy.keep(true);
            }
            (Some(chosen.id), chosen.resumed, chosen.done)
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
            "resuming run {}{from}: {} already done",
            run_id.map_or(0, |r| r.0),
            crate::text::counted(done.len(), "row", "rows")
        );
    }

    let shards = opts.shard.map_or(1, |(_, n)| n);
    let redactor = Arc::new(config.redactor());
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
                .with_redactor(redactor.clone())
            })
            .collect(),
    );
    Ok(Prepared {
        layout,
        spooled,
        held,
        config,
        names,
        total_rows,
        empty_input,
        state_path,
        files,
        lock,
        state,
        run_id,
        resumed,
        done,
        client,
        concurrency,
        targets,
    })
}

/// The input's fingerprint (of its bytes as given and the rule that numbers
/// its rows) and its number of data rows, counted by the reader that reads
/// them with `layout` (see [`crate::input::scan`]).
pub fn scan_input(path: &Path, layout: &Layout) -> Result<(Fingerprinted, u64), JobError> {
    crate::input::scan(path, layout).map_err(|e| usage(e.0))
}

/// An input that could not be read to its end: the whole of it is read
/// before anything is sent, so nothing was, and a damaged compressed file's
/// rows are not trusted (its checksum is at its end).
fn unscanned(e: crate::input::InputError) -> JobError {
    usage(format!("{e}; nothing was sent"))
}

/// Where the state file lives: `--state`, `[run] state`, or `invitesync.db`
/// in the current directory, the rule every command shares
/// ([`crate::state::location`]).
pub fn state_path(
    opts_state: Option<&Path>,
    config: &Config,
    shard: Option<(u32, u32)>,
) -> PathBuf {
    crate::state::location(opts_state, config.run.state.as_deref(), shard)
}

/// A state file left beside the input by an earlier release, while none is
/// here: refused rather than silently replaced by a fresh ledger.
fn check_earlier_default(opts: &RunOptions, config: &Config, state: &Path) -> Result<(), JobError> {
    if opts.state.is_some() || config.run.state.is_some() {
        return Ok(());
    }
    let Some(earlier) = crate::state::earlier_default(&opts.input, state) else {
        return Ok(());
    };
    let shown = earlier.display().to_string();
    Err(usage(format!(
        "there is no state file {} in this directory, but {shown} lies beside the input: the \
         state file is kept in the directory invitesync runs in (unless --state or [run] state \
         say otherwise). Pass --state {} to go on with that ledger, or run from that directory",
        state.display(),
        crate::shell::quote(&shown)
    )))
}

/// The files this run writes, checked against the files it reads and keeps
/// and against each other, and for a writable place, before anything is sent.
fn check_outputs(
    opts: &RunOptions,
    config: &Config,
    files: &OutputFiles,
    state: &Path,
) -> Result<(), JobError> {
    let mut outputs = Vec::new();
    if !opts.dry_run {
        let label = if opts.results.is_some() {
            "--results"
        } else if config.run.results.is_some() {
            "the results file ([run] results)"
        } else {
            "the results file (--results sets another)"
        };
        outputs.push(Named::new(label, &files.results));
        outputs.push(Named::new(
            "the rows-to-fix file (named after the results file)",
            &files.failed,
        ));
    }
    if let Some(summary) = &opts.summary_json {
        outputs.push(Named::new("--summary-json", summary));
    }
    let state = Named::new(
        if opts.state.is_some() {
            "--state"
        } else {
            "the state file"
        },
        state,
    );
    let reads = crate::outputs::config_files(config);
    let check = |outputs: &[Named]| {
        crate::outputs::check_run(outputs, &opts.input, &opts.config, &reads, &state)
    };
    let metrics = opts.metrics.as_ref().and_then(|m| Some((m, m.file()?)));
    let Some((reporter, file)) = metrics else {
        return check(&outputs).map_err(usage);
    };
    let without = check(&outputs);
    let named = Named::new("--metrics-file", file);
    let alone = check(std::slice::from_ref(&named));
    outputs.push(named);
    let with = check(&outputs);
    if with.is_err() && (without.is_ok() || alone.is_err()) {
        // The metrics file is in the way: it is not written at all, not
        // even with this run's exit code.
        reporter.forbid_file();
    }
    with.map_err(usage)
}

/// A state-file problem before anything is sent: 4 if another run holds
/// it, 2 otherwise (damaged, unreadable, another program's file).
fn state_error(e: StateError) -> JobError {
    JobError {
        code: if e.is_locked() {
            Exit::Locked.code()
        } else {
            Exit::Usage.code()
        },
        message: e.to_string(),
    }
}

struct Loaded {
    config: Config,
    adapters: Vec<Box<dyn crate::vendors::Adapter>>,
}

fn load(opts: &RunOptions) -> Result<Loaded, JobError> {
    // A dry run reads the secrets too: one that is missing must fail now, as
    // it would fail the real run, not after the plan looked fine.
    let config = Config::load(&opts.config, true).map_err(|e| usage(e.0))?;
    let adapters = crate::vendors::build::adapters(&config).map_err(|e| usage(e.0))?;
    Ok(Loaded { config, adapters })
}
