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
  invitesync run export.csv --shard auto/4 --summary-json summary.json
  # From a pipe (copied beside the state file, so it can resume); gzip and zstd are read as is
  psql -c '\\copy (select ...) to stdout csv header' | invitesync run - --config invitesync.toml
  invitesync run invites.csv.gz --config invitesync.toml
  # Another system's export: `;`-separated, its own column names, one vendor's rows
  invitesync run export.csv --delimiter ';' --vendor gate --column invite_id='Invitation ID'
  # Metrics for Prometheus: the node exporter's textfile collector, a Pushgateway
  invitesync run export.csv --metrics-file /var/lib/node_exporter/textfile/invitesync.prom
  invitesync run export.csv --pushgateway http://pushgateway:9091 --metrics-job nightly";

#[derive(Debug, clap::Args)]
#[command(after_help = RUN_HELP)]
pub struct RunArgs {
    /// The input CSV (header row required); gzip and zstd are decompressed as read; `-` reads
    /// standard input (as does a named pipe), copied beside the state file to resume from
    #[arg(value_name = "INPUT.csv")]
    pub input: PathBuf,

    #[command(flatten)]
    pub config: ConfigArg,

    #[command(flatten)]
    pub layout: super::input::InputArgs,

    /// State file (overrides `[run] state`; default: invitesync.db in the current directory)
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

    /// Write Prometheus metrics to FILE (node exporter textfile format, e.g.
    /// /var/lib/node_exporter/textfile/invitesync.prom) at the start, every log interval and the end
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,

    /// Push Prometheus metrics to this Pushgateway (e.g. http://pushgateway:9091) at the start,
    /// every log interval and the end, grouped by job and shard; a gateway that fails is a warning
    #[arg(long, value_name = "URL", value_parser = crate::metrics::push::parse_url)]
    pub pushgateway: Option<url::Url>,

    /// The Pushgateway group's job name
    #[arg(long, value_name = "NAME", default_value = "invitesync", value_parser = parse_job)]
    pub metrics_job: String,

    /// Exit 0 on an input with a header and no data rows (default: exit 1, as for rows needing attention)
    #[arg(long)]
    pub allow_empty: bool,
}

fn parse_job(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the job name must not be empty".into());
    }
    Ok(s.to_string())
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
    // A dry run sends nothing, so it has nothing for monitoring to count.
    let metrics = if args.dry_run {
        None
    } else {
        crate::metrics::Reporter::new(
            &crate::metrics::MetricsOptions {
                file: args
                    .metrics_file
                    .as_deref()
                    .map(crate::outputs::through_links),
                pushgateway: args.pushgateway.clone(),
                job: args.metrics_job.clone(),
            },
            shard,
        )
    };
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
        summary_json: args
            .summary_json
            .as_deref()
            .map(crate::outputs::through_links),
        metrics: metrics.clone(),
        allow_empty: args.allow_empty,
        input_flags: args.layout.flags(),
    };
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let dry_run = opts.dry_run;
    let (input, config) = (opts.input.clone(), opts.config.clone());
    let state = crate::state::location(opts.state.as_deref(), None, shard);
    match job::run(opts, shutdown).await {
        Ok(report) => {
            if crate::logs::json() {
                log_summary(&report, dry_run, &input, &config);
            } else {
                eprint!("{}", summary::text(&report, dry_run, &how));
            }
            if let Some(m) = &metrics {
                m.finish(crate::metrics::Ending {
                    exit_code: report.exit_code,
                    counts: Some(&report.counts),
                    pending: Some(report.pending),
                })
                .await;
            }
            report.exit_code
        }
        Err(e) => {
            if let Some(m) = &metrics {
                // The run may have stopped before it knew every file it
                // keeps: at least the ones named here are not overwritten.
                let keep = [&input, &config];
                if m.file()
                    .is_some_and(|f| !crate::outputs::may_write_early(f, &keep, &state))
                {
                    m.forbid_file();
                }
                m.finish(crate::metrics::Ending {
                    exit_code: e.code,
                    counts: None,
                    pending: None,
                })
                .await;
            }
            fail(e.code, e.message)
        }
    }
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
    let state = r.state.display().to_string();
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
                state,
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
    // The layout, which a resume and the rows to fix are read with too.
    let mut layout = Vec::new();
    if let Some(d) = args.layout.delimiter {
        layout.push("--delimiter".into());
        layout.push(match d {
            b'\t' => "tab".into(),
            d => char::from(d).to_string(),
        });
    }
    for (k, header) in &args.layout.columns {
        layout.push("--column".into());
        layout.push(format!("{}={header}", crate::input::KNOWN_COLUMNS[*k]));
    }
    if let Some(v) = &args.layout.vendor {
        layout.push("--vendor".into());
        layout.push(v.clone());
    }
    Invocation {
        layout,
        input: args.input.display().to_string(),
        config: args.config.config.display().to_string(),
        options,
    }
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
