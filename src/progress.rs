//! What the operator sees while a run goes: a bar with rate and ETA and a
//! line per vendor on a terminal; a log line at a steady interval when there
//! is no terminal (cron, systemd, Kubernetes), so logs show the run is alive
//! without drowning in carriage returns.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::outcome::Outcome;
use crate::send::Target;
use crate::tally::Tally;

/// How progress is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on a terminal, log lines otherwise.
    #[default]
    Auto,
    /// Log lines only, every `interval`.
    Log { interval: Duration },
    /// Nothing until the summary.
    Quiet,
}

pub struct Progress {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// One vendor's counts in a line: `gate  updated 120  unchanged 3 ...`.
pub fn vendor_line(tally: &Tally, target: &Target, width: usize) -> String {
    let t = tally.vendor(Some(target.id));
    let mut s = format!("{:<width$}", target.name);
    for o in Outcome::ALL {
        s.push_str(&format!("  {} {}", o.as_str(), t.count(o)));
    }
    s.push_str(&format!(
        "  retrying {}  concurrency {}",
        t.retrying.load(Ordering::Relaxed),
        target.limit.limit()
    ));
    if let Some(r) = target.pace.learned_rate() {
        s.push_str(&format!("  pace {r:.0}/s"));
    }
    if target.circuit.is_open() {
        s.push_str("  STOPPED");
    }
    s
}

impl Progress {
    pub fn start(
        mode: ProgressMode,
        tally: Arc<Tally>,
        targets: Arc<Vec<Target>>,
        total: u64,
        dry_run: bool,
    ) -> Progress {
        let stop = CancellationToken::new();
        let interactive = std::io::stderr().is_terminal();
        let mode = match mode {
            ProgressMode::Auto if interactive => None,
            ProgressMode::Auto => Some(ProgressMode::Log {
                interval: Duration::from_secs(10),
            }),
            m => Some(m),
        };
        let token = stop.clone();
        let task = match mode {
            Some(ProgressMode::Quiet) => None,
            Some(ProgressMode::Log { interval }) => Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                // A steady cadence: after a stall (a busy runtime, a
                // suspended VM), no burst of lines to catch up.
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                tick.tick().await;
                let start = std::time::Instant::now();
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = token.cancelled() => return,
                    }
                    let done = tally.finished();
                    let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001);
                    if crate::logs::json() {
                        // Fields, not a sentence, for log pipelines to chart.
                        tracing::info!(
                            rows_done = done,
                            rows_total = total,
                            rows_per_second = rate.round(),
                            updated = tally.total(Outcome::Updated),
                            unchanged = tally.total(Outcome::Unchanged),
                            invalid = tally.total(Outcome::Invalid),
                            rejected = tally.total(Outcome::Rejected),
                            failed = tally.total(Outcome::Failed),
                            retrying = tally
                                .vendors()
                                .iter()
                                .map(|v| v.retrying.load(Ordering::Relaxed))
                                .sum::<u64>(),
                            dry_run,
                            "progress"
                        );
                        continue;
                    }
                    let by: Vec<String> = Outcome::ALL
                        .iter()
                        .map(|o| format!("{}={}", o.as_str(), tally.total(*o)))
                        .collect();
                    tracing::info!(
                        "progress: {done}/{total} rows ({rate:.0}/s) {}{}",
                        by.join(" "),
                        if dry_run { " (dry run)" } else { "" }
                    );
                }
            })),
            _ => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(5));
                let bar = multi.add(ProgressBar::new(total));
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows  {per_sec}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                let width = targets.iter().map(|t| t.name.len()).max().unwrap_or(4);
                let lines: Vec<ProgressBar> = targets
                    .iter()
                    .map(|_| {
                        let l = multi.add(ProgressBar::new_spinner());
                        l.set_style(
                            ProgressStyle::with_template("  {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        l
                    })
                    .collect();
                Some(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(200));
                    loop {
                        let stopping = tokio::select! {
                            _ = tick.tick() => false,
                            _ = token.cancelled() => true,
                        };
                        bar.set_position(tally.finished());
                        for (l, t) in lines.iter().zip(targets.iter()) {
                            l.set_message(vendor_line(&tally, t, width));
                        }
                        if stopping {
                            bar.finish_and_clear();
                            for l in &lines {
                                l.finish_and_clear();
                            }
                            return;
                        }
                    }
                }))
            }
        };
        Progress { stop, task }
    }

    pub fn finish(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            // The task ends at once on cancel; don't wait on it from sync code.
            drop(t);
        }
    }
}
