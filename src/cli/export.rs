//! `invitesync export`: a run's results file, or its failed rows in the
//! input's format, written again from the state file.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::input::shown_path;
use crate::outputs::Named;
use crate::results::{Select, WriteError};
use crate::state::RunId;

use super::{StateArgs, exit, fail};

const EXPORT_HELP: &str = "\
The state file is found as `run` finds it: --state, else [run] state in the
config, else invitesync.db in the current directory.

The input is read again from where the run read it, unless --input says
where it is now; either way it must be the same bytes (its fingerprint is
checked). The copy a run keeps of piped input is removed when the run
finishes: to export such a run, give the same data again.

Examples:
  invitesync export                           # the latest run's results again
  invitesync export 3 --only failed --output fix-me.csv
  # fix fix-me.csv, then feed it back:
  invitesync run fix-me.csv --config invitesync.toml
  # a finished run of piped input, its data piped again:
  zcat invites.csv.gz | invitesync export 4 --input -";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// invalid, rejected and failed rows, in the input format with an `error` column
    Failed,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXPORT_HELP)]
pub struct ExportArgs {
    /// The run's number (see `invitesync status`); default: the latest run
    pub run: Option<i64>,

    #[command(flatten)]
    pub state: StateArgs,

    /// Only these rows
    #[arg(long, value_enum)]
    pub only: Option<Only>,

    /// Where to write (default: INPUT.results.csv, or INPUT.failed.csv with --only failed;
    /// stdin.results.csv, stdin.failed.csv for piped input)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The run's input, read from here instead of where the run read it
    /// (`-`: standard input); it must hold the same bytes
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

pub fn execute(args: ExportArgs) -> i32 {
    let (state, state_path) = match args.state.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let run = match args.run {
        Some(id) => state.run(RunId(id)).map(Some),
        None => state.latest_run(),
    };
    let run = match run {
        Ok(Some(r)) => r,
        Ok(None) => return fail(exit::USAGE, format!("no runs in {}", state_path.display())),
        Err(e) => return fail(exit::USAGE, e),
    };
    // The input is read as the run read it: its delimiter and column names.
    // Whether it is still the file the run read is checked by the read that
    // writes the rows (its fingerprint, before the file is renamed into
    // place), not by a pass of its own.
    let layout = crate::input::Layout::from_json(run.options.get("input"));
    let shard = run
        .options
        .get("shard")
        .and_then(|s| s.as_str())
        .and_then(|s| super::run::parse_shard(s).ok());
    let select = if args.only.is_some() {
        Select::Failed
    } else {
        Select::All
    };
    let input = args.input.clone().unwrap_or_else(|| run.input_path.clone());
    let piped = crate::input::spool::is_copy_for(&run.input_path, &state_path);
    if piped && args.input.is_none() && !run.input_path.exists() {
        return fail(exit::USAGE, copy_gone(&run));
    }
    // Named as `run` named them: piped input's after standard input.
    let named_after = if piped {
        Path::new("-")
    } else {
        run.input_path.as_path()
    };
    let default_results = crate::results::default_path(named_after, shard);
    let output = args.output.clone().unwrap_or_else(|| match select {
        Select::All => default_results.clone(),
        Select::Failed => crate::results::failed_path(&default_results),
    });
    // Never over the files it reads: the run's input, the state file.
    let mut protected = vec![Named::new(
        format!("run {}'s input", run.id),
        &run.input_path,
    )];
    if args.input.is_some() && !crate::input::source::is_stdin(&input) {
        protected.push(Named::new("--input", &input));
    }
    protected.extend(crate::outputs::state_files(&state_path));
    protected.extend(config_files(&args.state));
    let out = Named::new(
        if args.output.is_some() {
            "--output"
        } else {
            "the output"
        },
        &output,
    );
    let output = crate::outputs::through_links(&output);
    if let Err(e) = crate::outputs::check_distinct(std::slice::from_ref(&out), &protected)
        .and_then(|()| crate::outputs::check_writable(&out))
    {
        return fail(exit::USAGE, e);
    }
    let input_shown = match &args.input {
        Some(_) if crate::input::source::is_stdin(&input) => "the standard input".to_string(),
        _ => format!("the input {}", shown_path(&input)),
    };
    match crate::results::export_file(&state, run.id, &input, &layout, &output, select, shard) {
        Ok(path) => {
            crate::logs::notice(
                crate::logs::Level::Info,
                &format!("wrote {}", shown_path(&path)),
            );
            exit::OK
        }
        Err(WriteError::InputChanged(how)) if args.input.is_some() => fail(
            exit::USAGE,
            format!(
                "{input_shown} is not the input run {id} read ({how}), so {} was not written; \
                 the run's rows are recorded in {}: give export the data run {id} read",
                shown_path(&output),
                shown_path(&state_path),
                id = run.id.0
            ),
        ),
        Err(WriteError::InputChanged(how)) => fail(
            exit::USAGE,
            format!(
                "{input_shown} changed since run {} read it (it is not the file the rows were \
                 read from: {how}), so {} was not written; the run's rows are recorded in {}: \
                 put back the file run {} read and export again",
                run.id.0,
                shown_path(&output),
                shown_path(&state_path),
                run.id.0
            ),
        ),
        Err(WriteError::InputUnreadable(e)) => fail(
            exit::USAGE,
            format!(
                "{e} (the input of run {} is needed to write its rows{})",
                run.id.0,
                if args.input.is_none() {
                    "; if it moved, --input gives its new place"
                } else {
                    ""
                }
            ),
        ),
        Err(WriteError::Failed(e)) => fail(exit::USAGE, e),
    }
}

/// Why a run of piped input cannot be exported as it is: the copy it read
/// is gone (removed when the run finished), and the data must be given again.
fn copy_gone(run: &crate::state::RunInfo) -> String {
    let id = run.id.0;
    let when = if run.status == crate::state::RunStatus::Finished {
        "was removed when the run finished"
    } else {
        "is missing"
    };
    format!(
        "run {id} read piped input, and the copy it kept of it ({}) {when}, so export has no \
         input to read its rows from: give it the same data again, as a file (`--input FILE`) \
         or on standard input (`--input -`, e.g. `... | invitesync export {id} --input -`); \
         export checks that it is the data run {id} read",
        shown_path(&run.input_path)
    )
}

/// The config `--config` (or `INVITESYNC_CONFIG`, or `invitesync.toml` here)
/// names, and the files it names (secrets, certificates): an export must not
/// write over them either. Read as far as it can be; nothing is sent.
fn config_files(args: &StateArgs) -> Vec<Named> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("invitesync.toml"));
    if !path.exists() {
        return Vec::new();
    }
    let mut files = vec![Named::new("the config", &path)];
    if let Ok(config) = crate::config::Config::load(&path, false) {
        // Building the vendors notes the secret files each names.
        let _ = crate::vendors::build::adapters(&config);
        files.extend(crate::outputs::config_files(&config));
    }
    files
}
