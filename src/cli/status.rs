//! `invitesync status`: the runs in a state file and where each stands.

use crate::input::shown_path;
use crate::outcome::{Outcome, format_millis};
use crate::state::{RunStatus, StateLock};

use super::{StateArgs, exit, fail};

const STATUS_HELP: &str = "\
The state file is found as `run` finds it: --state, else [run] state in the
config, else invitesync.db in the current directory.

Examples:
  invitesync status                       # invitesync.db in this directory
  invitesync status --config /etc/invitesync/invitesync.toml
  invitesync status --state /var/lib/invitesync/nightly.db --last 3";

#[derive(Debug, clap::Args)]
#[command(after_help = STATUS_HELP)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateArgs,

    /// Show only the most recent N runs
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub last: usize,
}

pub fn execute(args: StatusArgs) -> i32 {
    let (state, path) = match args.state.open() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runs = match state.list_runs() {
        Ok(r) => r,
        Err(e) => return fail(exit::USAGE, e),
    };
    if runs.is_empty() {
        println!("no runs in {}", shown_path(&path));
        return exit::OK;
    }
    // A run still marked running is alive only if a process holds the lock,
    // and then only the newest such run is the one it runs; any other died
    // (SIGKILL, a lost machine) and is interrupted, ready to resume. A lock
    // that cannot be read leaves the runs as recorded.
    let live = StateLock::holder(&path).map_or(true, |h| h.is_some());
    let live_run = runs
        .iter()
        .rev()
        .find(|r| r.status == RunStatus::Running)
        .map(|r| r.id)
        .filter(|_| live);
    let skip = runs.len().saturating_sub(args.last);
    for run in runs.iter().skip(skip) {
        let done = match state.row_count(run.id) {
            Ok(n) => n,
            Err(e) => return fail(exit::USAGE, e),
        };
        let total = run.total_rows.map_or("?".to_string(), |t| t.to_string());
        let status = match run.status {
            RunStatus::Running if Some(run.id) != live_run => RunStatus::Interrupted,
            s => s,
        };
        println!(
            "run {}  {}  started {}{}  input {}",
            run.id.0,
            status,
            format_millis(run.started_at),
            run.finished_at
                .map(|f| format!("  ended {}", format_millis(f)))
                .unwrap_or_default(),
            shown_path(&run.input_path)
        );
        let pending = run.total_rows.map(|t| t.saturating_sub(done));
        println!(
            "  rows done {done}/{total}{}{}",
            match pending {
                Some(p) if p > 0 => format!("  pending {p}"),
                _ => String::new(),
            },
            run.exit_code
                .map(|c| format!("  exit code {c}"))
                .unwrap_or_default()
        );
        let counts = match state.counts(run.id) {
            Ok(c) => c,
            Err(e) => return fail(exit::USAGE, e),
        };
        for c in counts {
            let parts: Vec<String> = Outcome::ALL
                .iter()
                .filter(|o| c.get(**o) > 0)
                .map(|o| format!("{} {}", o.as_str(), c.get(*o)))
                .collect();
            println!(
                "  {:<14} {}",
                crate::input::shown(c.vendor.as_deref().unwrap_or("(no vendor)")),
                parts.join("  ")
            );
        }
    }
    exit::OK
}
