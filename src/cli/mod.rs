//! The command line: argument definitions apart from the work, one file per
//! subcommand (as ripgrep and xsv do). Every option that overrides the
//! config file says so in its help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::progress::through::StderrThroughBars;

pub mod completions;
pub mod export;
pub mod input;
pub mod run;
pub mod sandbox;
pub mod status;
pub mod summary;
pub mod validate;

/// Exit codes (DESIGN §5).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ROWS_NEED_ATTENTION: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const RESUMABLE: i32 = 3;
    pub const LOCKED: i32 = 4;
}

const AFTER_HELP: &str = "\
Exit codes:
  0  every row updated or unchanged
  1  the run finished with invalid, rejected or failed rows
  2  usage or configuration error
  3  the run stopped early and can be resumed (Ctrl-C, a vendor stopped, credentials refused)
  4  another run holds the state file

Environment:
  RUST_LOG=debug        more detail in the logs (any tracing filter, e.g. invitesync=trace)
  NO_COLOR=1            no colours
  INVITESYNC_CONFIG     the config file, instead of --config

Examples:
  invitesync validate invites.csv --config invitesync.toml
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
/// invitesync, warnings for the libraries), stderr only, and through the
/// progress display's suspension so bars and lines never collide. Colours
/// only on a terminal, and never with `NO_COLOR`.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    crate::logs::set_json(format == LogFormat::Json);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,invitesync=info"));
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
    runtime.block_on(async move {
        match cli.command {
            Command::Run(a) => run::execute(a).await,
            Command::Validate(a) => validate::execute(a),
            Command::Status(a) => status::execute(a),
            Command::Export(a) => export::execute(a),
            Command::Sandbox(a) => sandbox::execute(a).await,
            Command::Completions(a) => completions::execute(a),
            Command::Man(a) => completions::man(a),
        }
    })
}

/// Opens the state file a reading command (`status`, `export`) was pointed
/// at; one that does not exist is a usage error, never created empty.
pub fn open_state(path: &std::path::Path) -> Result<crate::state::StateFile, i32> {
    if !path.exists() {
        return Err(fail(
            exit::USAGE,
            format!(
                "{} does not exist; pass --state FILE (the file `run` used)",
                path.display()
            ),
        ));
    }
    crate::state::StateFile::open(path).map_err(|e| fail(exit::USAGE, e))
}

/// Prints an error the way every command does: one or two lines, no
/// backtrace; under `--log-format json`, one JSON line with the exit code.
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
