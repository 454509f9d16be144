//! `invitesync run`.

use std::path::PathBuf;
use std::time::Duration;

use crate::job::RunReport;
use crate::job::{self, RunOptions};
use crate::outcome::Outcome;
use crate::progress::ProgressMode;
use crate::ranges;
use crate::shutdown::Shutdown;

use super::summary::{self, Invocation};
use super::{ConfigArg, exit, fail};

const RUN_HELP: &str = "\
Examples:
  # Look first: validate, consult the ledger, send nothing
  invitesync run invites.csv --config invitesync.toml --dry-run
  # Apply; after a crash or Ctrl-C the same command resumes
  invitesync run invites.csv --config invitesync.toml
  # Nightly, unattended, one of 4 Kubernetes Indexed Job pods
  invitesync run export.csv --shard auto/4 --summary-json summary.json";

#[derive(Debug, clap::Args)]
#[command(after_help = RUN_HELP)]
pub struct RunArgs {
    /// The input CSV (header row required)
    #[arg(value_name = "INPUT.csv")]
    pub input: PathBuf,

    #[command(flatten)]
    pub config: ConfigArg,

    /// State file (overrides `[run] state`; default: invitesync.db beside the input)
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Results file (overrides `[run] results`; default: INPUT.results.csv beside the input)
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,

    /// Start a new run instead of resuming the interrupted run of this input
    #[arg(long)]
    pub new_run: bool,

    /// Validate, consult the ledger and print what would be sent; send nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Send rows even when the ledger says the same change was applied
    #[arg(long)]
    pub force: bool,

    /// Send rows again when the ledger's entry is older than this (e.g. 7d, 12h)
    #[arg(long, value_name = "DURATION", value_parser = |s: &str| ranges::parse_duration(s, &ranges::RECHECK_AFTER))]
    pub recheck_after: Option<Duration>,

    /// Take only shard K of N (0-based) by invite key; `auto/N` takes K from JOB_COMPLETION_INDEX
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Requests in flight, all vendors together (overrides `[run] concurrency`)
    #[arg(long, value_name = "N", value_parser = ranges::parse_concurrency)]
    pub concurrency: Option<usize>,

    /// Keep every vendor at its concurrency cap instead of adapting to it
    #[arg(long)]
    pub fixed_concurrency: bool,

    /// No progress display (the summary is still printed)
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Log a progress line at this interval instead of drawing a bar (default when stderr is not a terminal: 10s)
    #[arg(long, value_name = "DURATION", value_parser = |s: &str| ranges::parse_duration(s, &ranges::LOG_INTERVAL))]
    pub log_interval: Option<Duration>,

    /// Write counts per vendor and outcome, durations and the exit code as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
}

/// Reads `K/N` or `auto/N`.
pub fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("--shard `{text}`: write K/N, e.g. 0/4, or auto/4"))?;
    let n: u32 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=ranges::MAX_SHARDS).contains(n))
        .ok_or_else(|| {
            format!(
                "--shard `{text}`: N must be a whole number from 1 to {}",
                ranges::MAX_SHARDS
            )
        })?;
    let k: u32 = if k.trim() == "auto" {
        let v = std::env::var("JOB_COMPLETION_INDEX")
            .map_err(|_| format!("--shard `{text}`: JOB_COMPLETION_INDEX is not set (it is set in a Kubernetes Indexed Job)"))?;
        v.trim().parse().map_err(|_| {
            format!(
                "--shard `{text}`: JOB_COMPLETION_INDEX `{v}` is not a whole number from 0 to {}",
                n - 1
            )
        })?
    } else {
        k.trim().parse().map_err(|_| {
            format!(
                "--shard `{text}`: K must be a whole number from 0 to {}",
                n - 1
            )
        })?
    };
    if k >= n {
        return Err(format!(
            "--shard `{text}`: K must be below N (shards are numbered 0 to {})",
            n - 1
        ));
    }
    Ok((k, n))
}

pub async fn execute(args: RunArgs) -> i32 {
    let shard = match args.shard.as_deref().map(parse_shard).transpose() {
        Ok(s) => s,
        Err(e) => return fail(exit::USAGE, e),
    };
    let progress = if args.quiet {
        ProgressMode::Quiet
    } else if let Some(interval) = args.log_interval {
        ProgressMode::Log { interval }
    } else {
        ProgressMode::Auto
    };
    let how = invocation(&args);
    let summary_json = args.summary_json.clone();
    let opts = RunOptions {
        input: args.input,
        config: args.config.config,
        state: args.state,
        results: args.results,
        new_run: args.new_run,
        dry_run: args.dry_run,
        force: args.force,
        recheck_after: args.recheck_after,
        shard,
        concurrency: args.concurrency,
        fixed_concurrency: args.fixed_concurrency,
        progress,
        summary_json: args.summary_json,
    };
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let dry_run = opts.dry_run;
    let started_at = std::time::SystemTime::now();
    let (input, config) = (opts.input.clone(), opts.config.clone());
    match job::run(opts, shutdown).await {
        Ok(report) => {
            if crate::logs::json() {
                log_summary(&report, dry_run, &input, &config);
            } else {
                eprint!("{}", summary::text(&report, dry_run, &how));
            }
            if let Some(path) = &summary_json {
                let mut doc = summary::json(&report);
                if let Some(map) = doc.as_object_mut() {
                    map.insert("dry_run".into(), dry_run.into());
                    map.insert(
                        "shard".into(),
                        shard.map(|(k, n)| format!("{k}/{n}")).into(),
                    );
                    map.insert("would_send".into(), report.dry_run.would_send.into());
                    map.insert("started_at".into(), rfc3339(started_at).into());
                    map.insert(
                        "finished_at".into(),
                        rfc3339(std::time::SystemTime::now()).into(),
                    );
                }
                if let Err(e) = write_json(path, &doc) {
                    crate::logs::notice(crate::logs::Level::Warn, &format!("warning: {e}"));
                }
            }
            report.exit_code
        }
        Err(e) => {
            if let Some(path) = &summary_json {
                let doc = serde_json::json!({
                    "exit_code": e.code,
                    "error": e.message,
                    "started_at": rfc3339(started_at),
                    "finished_at": rfc3339(std::time::SystemTime::now()),
                });
                if let Err(w) = write_json(path, &doc) {
                    crate::logs::notice(crate::logs::Level::Warn, &format!("warning: {w}"));
                }
            }
            fail(e.code, e.message)
        }
    }
}

fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The summary as JSON log lines (`--log-format json`): one per vendor, then
/// one for the run, so a log pipeline can alert on `exit_code` and chart the
/// counts without parsing a table.
fn log_summary(r: &RunReport, dry_run: bool, input: &std::path::Path, config: &std::path::Path) {
    for (vendor, c) in &r.counts {
        tracing::info!(
            vendor = vendor.as_deref().unwrap_or("(no vendor)"),
            updated = c[Outcome::Updated.index()],
            unchanged = c[Outcome::Unchanged.index()],
            invalid = c[Outcome::Invalid.index()],
            rejected = c[Outcome::Rejected.index()],
            failed = c[Outcome::Failed.index()],
            dry_run,
            "vendor summary"
        );
    }
    let shown = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let results = shown(&r.results).unwrap_or_default();
    let failed_rows = shown(&r.failed_rows).unwrap_or_default();
    let hint = if r.exit_code == exit::RESUMABLE {
        format!(
            "to resume: invitesync run {} --config {}",
            input.display(),
            config.display()
        )
    } else if r.failed_rows.is_some() {
        format!("rows to fix: {failed_rows}")
    } else {
        String::new()
    };
    macro_rules! finished {
        ($level:expr) => {
            tracing::event!(
                $level,
                exit_code = r.exit_code,
                run_id = r.run_id.map(|id| id.0),
                updated = r.total(Outcome::Updated),
                unchanged = r.total(Outcome::Unchanged),
                invalid = r.total(Outcome::Invalid),
                rejected = r.total(Outcome::Rejected),
                failed = r.total(Outcome::Failed),
                pending = r.pending,
                would_send = r.dry_run.would_send,
                dry_run,
                resumed = r.resumed,
                stopped_vendors = r.stopped.join("; "),
                duration_seconds = r.elapsed.as_secs_f64(),
                results,
                failed_rows,
                hint,
                "run finished"
            )
        };
    }
    if r.exit_code == exit::OK {
        finished!(tracing::Level::INFO);
    } else {
        finished!(tracing::Level::WARN);
    }
}

/// The parts of this command line that the summary's next commands repeat.
fn invocation(args: &RunArgs) -> Invocation {
    let mut options = Vec::new();
    let mut push = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            options.push(flag.to_string());
            options.push(v);
        }
    };
    push(
        "--state",
        args.state.as_ref().map(|p| p.display().to_string()),
    );
    push(
        "--results",
        args.results.as_ref().map(|p| p.display().to_string()),
    );
    push("--shard", args.shard.clone());
    push(
        "--recheck-after",
        args.recheck_after
            .map(|d| humantime::format_duration(d).to_string()),
    );
    if args.force {
        options.push("--force".into());
    }
    Invocation {
        input: args.input.display().to_string(),
        config: args.config.config.display().to_string(),
        options,
    }
}

/// `--summary-json`, written beside `path` and renamed into place.
fn write_json(path: &std::path::Path, doc: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| doc.to_string());
    write_atomically(path, &(text + "\n"))
}

/// Writes beside `path` and renames into place, so that a monitoring agent
/// polling the summary never reads half of one, and a failed write leaves
/// the previous night's intact.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<(), String> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards() {
        assert_eq!(parse_shard("0/4"), Ok((0, 4)));
        assert_eq!(parse_shard("3/4"), Ok((3, 4)));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("1/0").is_err());
        assert!(parse_shard("x/2").is_err());
        assert!(parse_shard("2").is_err());
    }
}
