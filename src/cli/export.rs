//! `invitesync export`: a run's results file, or its failed rows in the
//! input's format, written again from the state file.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::job;
use crate::results::Select;
use crate::state::RunId;

use super::{exit, fail};

const EXPORT_HELP: &str = "\
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

    /// State file (default: invitesync.db in the current directory)
    #[arg(long, value_name = "FILE", default_value = "invitesync.db")]
    pub state: PathBuf,

    /// Only these rows
    #[arg(long, value_enum)]
    pub only: Option<Only>,

    /// Where to write (default: INPUT.results.csv, or INPUT.failed.csv with --only failed)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn execute(args: ExportArgs) -> i32 {
    let state = match super::open_state(&args.state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let run = match args.run {
        Some(id) => state.run(RunId(id)).map(Some),
        None => state.latest_run(),
    };
    let run = match run {
        Ok(Some(r)) => r,
        Ok(None) => return fail(exit::USAGE, format!("no runs in {}", args.state.display())),
        Err(e) => return fail(exit::USAGE, e),
    };
    // The input is read as the run read it: its delimiter and column names.
    let layout = crate::input::Layout::from_json(run.options.get("input"));
    let (fingerprint, _) = match job::scan_input(&run.input_path, &layout) {
        Ok(f) => f,
        Err(e) => {
            return fail(
                exit::USAGE,
                format!(
                    "{e} (the input of run {} is needed to write its rows)",
                    run.id.0
                ),
            );
        }
    };
    if fingerprint != run.input_fingerprint {
        return fail(
            exit::USAGE,
            format!(
                "{} changed since run {}; its rows can no longer be matched to the state file",
                run.input_path.display(),
                run.id.0
            ),
        );
    }
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
        Err(e) => fail(exit::USAGE, e),
    }
}
