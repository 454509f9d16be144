//! `invitesync status`: the runs in a state file and where each stands.

use std::path::PathBuf;

use crate::outcome::{Outcome, format_millis};

use super::{exit, fail};

const STATUS_HELP: &str = "\
Examples:
  invitesync status                       # invitesync.db in this directory
  invitesync status --state /var/lib/invitesync/nightly.db --last 3";

#[derive(Debug, clap::Args)]
#[command(after_help = STATUS_HELP)]
pub struct StatusArgs {
    /// State file (default: invitesync.db in the current directory)
    #[arg(long, value_name = "FILE", default_value = "invitesync.db")]
    pub state: PathBuf,

    /// Show only the most recent N runs
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub last: usize,
}

pub fn execute(args: StatusArgs) -> i32 {
    let state = match super::open_state(&args.state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runs = match state.list_runs() {
        Ok(r) => r,
        Err(e) => return fail(exit::USAGE, e),
    };
    if runs.is_empty() {
        println!("no runs in {}", args.state.display());
        return exit::OK;
    }
    let skip = runs.len().saturating_sub(args.last);
    for run in runs.iter().skip(skip) {
        let done = state.row_count(run.id).unwrap_or(0);
        let total = run.total_rows.map_or("?".to_string(), |t| t.to_string());
        println!(
            "run {}  {}  started {}{}  input {}",
            run.id.0,
            run.status,
            format_millis(run.started_at),
            run.finished_at
                .map(|f| format!("  ended {}", format_millis(f)))
                .unwrap_or_default(),
            run.input_path.display()
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
        if let Ok(counts) = state.counts(run.id) {
            for c in counts {
                let parts: Vec<String> = Outcome::ALL
                    .iter()
                    .filter(|o| c.get(**o) > 0)
                    .map(|o| format!("{} {}", o.as_str(), c.get(*o)))
                    .collect();
                println!(
                    "  {:<14} {}",
                    c.vendor.as_deref().unwrap_or("(no vendor)"),
                    parts.join("  ")
                );
            }
        }
    }
    exit::OK
}
