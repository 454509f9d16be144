//! `invitesync export`: a run's results file, or its failed rows in the
//! input's format, written again from the state file.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::outputs::Named;
use crate::results::{Select, WriteError};
use crate::state::RunId;

use super::{StateArgs, exit, fail};

const EXPORT_HELP: &str = "\
The state file is found as `run` finds it: --state, else [run] state in the
config, else invitesync.db in the current directory.

Examples:
  invitesync export                           # the latest run's results again
  invitesync export 3 --only failed --output fix-me.csv
  # fix fix-me.csv, then feed it back:
  invitesync run fix-me.csv --config invitesync.toml";

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

    /// Where to write (default: INPUT.results.csv, or INPUT.failed.csv with --only failed)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    let default_results = crate::results::default_path(&run.input_path, shard);
    let output = args.output.clone().unwrap_or_else(|| match select {
        Select::All => default_results.clone(),
        Select::Failed => crate::results::failed_path(&default_results),
    });
    // Never over the files it reads: the run's input, the state file.
    let mut protected = vec![Named::new(
        format!("run {}'s input", run.id),
        &run.input_path,
    )];
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
    match crate::results::export_file(
        &state,
        run.id,
        &run.input_path,
        &layout,
        &output,
        select,
        shard,
    ) {
        Ok(path) => {
            crate::logs::notice(
                crate::logs::Level::Info,
                &format!("wrote {}", path.display()),
            );
            exit::OK
        }
        Err(WriteError::InputChanged(how)) => fail(
            exit::USAGE,
            format!(
                "the input {} changed since run {} read it (it is not the file the rows were \
                 read from: {how}), so {} was not written; the run's rows are recorded in {}: \
                 put back the file run {} read and export again",
                run.input_path.display(),
                run.id.0,
                output.display(),
                state_path.display(),
                run.id.0
            ),
        ),
        Err(WriteError::InputUnreadable(e)) => fail(
            exit::USAGE,
            format!(
                "{e} (the input of run {} is needed to write its rows)",
                run.id.0
            ),
        ),
        Err(WriteError::Failed(e)) => fail(exit::USAGE, e),
    }
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
