//! The command line: argument definitions apart from the work, one file per
//! subcommand (as ripgrep and xsv do). Every option that overrides the
//! config file says so in its help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::progress::through::StderrThroughBars;

pub mod check;
pub mod completions;
pub mod export;
pub mod input;
pub mod run;
pub mod sandbox;
pub mod status;
pub mod summary;
pub mod validate;

/// Exit codes as the commands return them ([`crate::exit::Exit`]).
pub mod exit {
    use crate::exit::Exit;
    pub const OK: i32 = Exit::Ok.code();
    pub const ROWS_NEED_ATTENTION: i32 = Exit::RowsNeedAttention.code();
    pub const USAGE: i32 = Exit::Usage.code();
    pub const RESUMABLE: i32 = Exit::Resumable.code();
    pub const LOCKED: i32 = Exit::Locked.code();
}

const AFTER_HELP: &str = "\
Exit codes:
  0  every row updated or unchanged
  1  the run finished with invalid, rejected or failed rows
  2  usage or configuration error
  3  the run stopped early and can be resumed (Ctrl-C, SIGTERM, SIGHUP, a vendor stopped,
     credentials refused, an output not written)
  4  another run holds the state file

State file: --state, else [run] state in the config, else invitesync.db in the
current directory; the same for run, status and export.

Environment:
  RUST_LOG=debug        more detail in the logs (any tracing filter, e.g. invitesync=trace)
  NO_COLOR=1            no colours
  INVITESYNC_CONFIG     the config file, instead of --config

Examples:
  invitesync validate invites.csv --config invitesync.toml
  invitesync check --config invitesync.toml
  invitesync run invites.csv --config invitesync.toml --dry-run
  invitesync run invites.csv --config invitesync.toml
  invitesync status
  invitesync export --only failed --output fix-me.csv
  invitesync run fix-me.csv --config invitesync.toml";

/// Apply a CSV of invite changes to Mighty Networks, Securegate, MongoDB Ops
/// Manager and Ctrl-Hub: concurrent, rate-limited, retried, checkpointed,
/// resumable.
#[derive(Debug, Parser)]
#[command(name = "invitesync", version, about, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr: text for people, json for log collectors
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "INVITESYNC_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the changes of an input CSV (resumes an interrupted run of the same input)
    Run(run::RunArgs),
    /// Check every row against the vendors' rules, offline, and report the problems
    Validate(validate::ValidateArgs),
    /// List the runs in the state file with their counts per vendor and outcome
    Status(status::StatusArgs),
    /// Write a run's results (or its failed rows, ready to fix) again from the state file
    Export(export::ExportArgs),
    /// Serve the four vendor APIs on 127.0.0.1 for trying invitesync out
    Sandbox(sandbox::SandboxArgs),
    /// Check that every vendor can be reached (DNS, proxy, TLS, HTTP), changing nothing
    Check(check::CheckArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), of invitesync or of one command
    Man(completions::ManArgs),
}

/// The config file option shared by the commands that read it.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The configuration file
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        default_value = "invitesync.toml",
        env = "INVITESYNC_CONFIG"
    )]
    pub config: PathBuf,
}

/// Sets up logging: `RUST_LOG` decides the level (default: info for
/// invitesync, nothing from the libraries), stderr only, and through the
/// progress display's suspension so bars and lines never collide. Colours
/// only on a terminal, and never with `NO_COLOR`.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    crate::logs::set_json(format == LogFormat::Json);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(crate::logs::DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrThroughBars)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(
                std::env::var_os("NO_COLOR").is_none()
                    && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )
            .compact()
            .try_init(),
    };
}

/// A bug must still end in a message a person can act on, not a backtrace:
/// one line saying it is a bug, where, and that resuming is safe (the state
/// file is only ever written in transactions). `RUST_BACKTRACE` still gets
/// the full report for whoever debugs it.
pub fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        crate::progress::through::eprintln(format_args!(
            "error: invitesync hit a bug ({what}{at}); please report it. \
             What the state file recorded is safe to resume from."
        ));
    }));
}

/// Runs a parsed command line; returns the process's exit code.
pub fn main(cli: Cli) -> i32 {
    install_panic_hook();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Run(a) => run::execute(a).await,
            Command::Validate(a) => validate::execute(a),
            Command::Status(a) => status::execute(a),
            Command::Export(a) => export::execute(a),
            Command::Sandbox(a) => sandbox::execute(a).await,
            Command::Check(a) => check::execute(a).await,
            Command::Completions(a) => completions::execute(a),
            Command::Man(a) => completions::man(a),
        }
    });
    finish(code)
}

/// Where the state file is, for the commands that read it (`status`,
/// `export`) and only read it: the rule `run` follows
/// ([`crate::state::location`]), with `[run] state` taken from the config
/// named by `--config` or `INVITESYNC_CONFIG`, or from `invitesync.toml`
/// here if there is one.
#[derive(Debug, Clone, clap::Args)]
pub struct StateArgs {
    /// State file (overrides `[run] state`; default: invitesync.db in the current directory, as for `run`)
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// The configuration file whose `[run] state` to read (default: invitesync.toml, if present)
    #[arg(long, short = 'c', value_name = "FILE", env = "INVITESYNC_CONFIG")]
    pub config: Option<PathBuf>,
}

impl StateArgs {
    /// The state file's path, by the shared rule.
    pub fn path(&self) -> Result<PathBuf, i32> {
        if let Some(state) = &self.state {
            return Ok(state.clone());
        }
        let default = std::path::Path::new("invitesync.toml");
        let config = match &self.config {
            Some(c) => Some(c.as_path()),
            None => default.is_file().then_some(default),
        };
        let configured = match config {
            Some(c) => {
                crate::config::Config::load(c, false)
                    .map_err(|e| fail(exit::USAGE, format!("{}; or pass --state FILE", e.0)))?
                    .run
                    .state
            }
            None => None,
        };
        Ok(crate::state::location(None, configured.as_deref(), None))
    }

    /// Opens the state file; one that does not exist is a usage error, never
    /// created empty.
    pub fn open(&self) -> Result<(crate::state::StateFile, PathBuf), i32> {
        let path = self.path()?;
        if !path.exists() {
            return Err(fail(exit::USAGE, missing_state(&path)));
        }
        let state = crate::state::StateFile::open(&path).map_err(|e| fail(exit::USAGE, e))?;
        Ok((state, path))
    }
}

/// Says where `run` keeps the state file, and names the state files that are
/// here (a shard's, say) when the default is not.
fn missing_state(path: &std::path::Path) -> String {
    let mut here: Vec<String> = std::fs::read_dir(".")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("invitesync") && n.ends_with(".db"))
                .collect()
        })
        .unwrap_or_default();
    here.sort();
    let found = match here.as_slice() {
        [] => String::new(),
        names => format!(" (here: {})", names.join(", ")),
    };
    format!(
        "{} does not exist; `run` keeps its state file in the directory it runs in, unless \
         --state or [run] state say otherwise: run this from there, or pass --state FILE{found}",
        path.display()
    )
}

/// Prints an error the way every command does: one or two lines, no
/// backtrace; under `--log-format json`, one JSON line with the exit code.
/// The exit code once the output is flushed: `code`, unless stdout failed
/// for a reason other than a closed pipe, in which case that is reported
/// and a command that otherwise succeeded exits 2 (its output is not whole).
fn finish(code: i32) -> i32 {
    match crate::stdio::flush_stdout() {
        Some(why) if code == exit::OK || code == exit::ROWS_NEED_ATTENTION => fail(
            exit::USAGE,
            format!("cannot write to standard output: {why}"),
        ),
        _ => code,
    }
}

pub fn fail(code: i32, message: impl std::fmt::Display) -> i32 {
    if crate::logs::json() {
        tracing::error!(exit_code = code, "{message}");
    } else {
        crate::progress::through::eprintln(format_args!("error: {message}"));
    }
    code
}

/// Parses the process's command line. A usage error exits 2 as clap would,
/// but as a JSON line when JSON logs were asked for, so that a scheduler's
/// log pipeline can read even a typo in a unit file.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let json = e.use_stderr()
                && crate::logs::json_requested(
                    std::env::args_os(),
                    std::env::var("INVITESYNC_LOG_FORMAT").ok().as_deref(),
                );
            if !json {
                e.exit();
            }
            init_logging(LogFormat::Json);
            let text = e.render().to_string();
            let text = text.trim();
            std::process::exit(fail(
                exit::USAGE,
                text.strip_prefix("error: ").unwrap_or(text),
            ));
        }
    }
}
