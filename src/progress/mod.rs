//! What the operator sees while a run goes: a bar with rate and ETA and a
//! line per vendor on a terminal; a log line at a steady interval when there
//! is no terminal (cron, systemd, Kubernetes), so logs show the run is alive
//! without drowning in carriage returns. Log lines written while the bars
//! are up go around them ([`through`]).

mod bars;
pub mod through;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::HumanCount;
use tokio_util::sync::CancellationToken;

use crate::outcome::Outcome;
use crate::send::Target;
use crate::tally::Tally;

pub use bars::vendor_line;

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

/// What is known before the run of how many rows it will finish.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    /// Data rows in the file, counted by the reader that reads them.
    pub total: u64,
    /// Rows an earlier attempt of this run finished (they are skipped).
    pub done_before: u64,
    /// The number of shards the file is split into (1: no sharding).
    pub shards: u32,
}

impl Expected {
    /// The rows this attempt will finish, as well as can be told so far.
    pub fn rows(&self, tally: &Tally) -> u64 {
        expected_rows(
            self,
            tally.read.load(Ordering::Relaxed),
            tally.already_done.load(Ordering::Relaxed),
            tally.elsewhere.load(Ordering::Relaxed),
        )
    }
}

/// The rows of the file that are neither done already nor another shard's.
/// Other shards' rows are known for the part read so far and projected over
/// the rest at the share seen (or 1 − 1/N before anything is read), so the
/// bar's length and ETA are about right from the start and exact at the end.
pub fn expected_rows(e: &Expected, read: u64, already_done: u64, elsewhere: u64) -> u64 {
    let read_fresh = read.saturating_sub(already_done);
    let unread = e.total.saturating_sub(read);
    let unread_fresh = unread.saturating_sub(e.done_before.saturating_sub(already_done));
    let projected_elsewhere = if e.shards <= 1 {
        0
    } else if read_fresh > 0 {
        (unread_fresh as u128 * u128::from(elsewhere) / u128::from(read_fresh)) as u64
    } else {
        unread_fresh - unread_fresh / u64::from(e.shards)
    };
    read_fresh.saturating_sub(elsewhere) + unread_fresh - projected_elsewhere
}

/// The running display; [`Progress::finish`] clears it before the summary.
pub struct Progress {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress as `mode` says: bars only when stderr is a
    /// terminal, log lines when it is not (or when asked), nothing when quiet.
    pub fn start(
        mode: ProgressMode,
        tally: Arc<Tally>,
        targets: Arc<Vec<Target>>,
        expected: Expected,
        dry_run: bool,
    ) -> Progress {
        let stop = CancellationToken::new();
        let mode = match mode {
            ProgressMode::Auto if !std::io::stderr().is_terminal() => ProgressMode::Log {
                interval: Duration::from_secs(10),
            },
            m => m,
        };
        let token = stop.clone();
        let task = match mode {
            ProgressMode::Quiet => None,
            ProgressMode::Log { interval } => Some(tokio::spawn(log_lines(
                tally, expected, interval, dry_run, token,
            ))),
            ProgressMode::Auto => Some(bars::spawn(tally, targets, expected, dry_run, token)),
        };
        Progress { stop, task }
    }

    /// Stops the display and waits until the bars are cleared, so that what
    /// is printed next is not drawn over.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Progress {
    /// A run that ends on an error still takes its bars down.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A line at each interval: `progress: 1,200/5,000 rows (310/s, ETA 12s) ...`.
async fn log_lines(
    tally: Arc<Tally>,
    expected: Expected,
    interval: Duration,
    dry_run: bool,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    // A steady cadence: after a stall (a busy runtime, a suspended VM), no
    // burst of lines to catch up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    let start = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if crate::logs::json() {
            // Fields, not a sentence, for log pipelines to chart.
            let done = tally.finished();
            tracing::info!(
                rows_done = done,
                rows_total = expected.rows(&tally).max(done),
                rows_per_second = (done as f64 / start.elapsed().as_secs_f64().max(0.001)).round(),
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
        tracing::info!("{}", log_line(&tally, &expected, start.elapsed(), dry_run));
    }
}

/// The text of one progress log line.
pub fn log_line(tally: &Tally, expected: &Expected, elapsed: Duration, dry_run: bool) -> String {
    let done = tally.finished();
    let of = expected.rows(tally).max(done);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if rate > 0.0 && of > done {
        let secs = ((of - done) as f64 / rate).ceil() as u64;
        format!(
            ", ETA {}",
            humantime::format_duration(Duration::from_secs(secs))
        )
    } else {
        String::new()
    };
    let by: Vec<String> = Outcome::ALL
        .iter()
        .map(|o| {
            let name = match o {
                Outcome::Updated if dry_run => "would_send",
                o => o.as_str(),
            };
            format!("{name}={}", tally.total(*o))
        })
        .collect();
    let retrying: u64 = tally
        .vendors()
        .iter()
        .map(|v| v.retrying.load(Ordering::Relaxed))
        .sum();
    format!(
        "progress: {}/{} rows ({rate:.0}/s{eta}) {} retrying={retrying}{}",
        HumanCount(done),
        HumanCount(of),
        by.join(" "),
        if dry_run { " (dry run)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(total: u64, done_before: u64, shards: u32) -> Expected {
        Expected {
            total,
            done_before,
            shards,
        }
    }

    #[test]
    fn a_plain_run_expects_every_row() {
        assert_eq!(expected_rows(&e(1000, 0, 1), 0, 0, 0), 1000);
        assert_eq!(expected_rows(&e(1000, 0, 1), 400, 0, 0), 1000);
    }

    #[test]
    fn a_resume_expects_only_the_rows_left() {
        assert_eq!(expected_rows(&e(1000, 700, 1), 0, 0, 0), 300);
        // The done rows are being skipped as the file is read.
        assert_eq!(expected_rows(&e(1000, 700, 1), 500, 500, 0), 300);
        assert_eq!(expected_rows(&e(1000, 700, 1), 1000, 700, 0), 300);
    }

    #[test]
    fn a_shard_expects_its_share_then_what_it_saw() {
        assert_eq!(expected_rows(&e(1000, 0, 4), 0, 0, 0), 250);
        // Read 100 rows, 80 were others': 20 ours, and 20% of the 900 unread.
        assert_eq!(expected_rows(&e(1000, 0, 4), 100, 0, 80), 20 + 180);
        assert_eq!(expected_rows(&e(1000, 0, 4), 1000, 0, 740), 260);
    }

    #[test]
    fn log_lines_count_and_estimate() {
        let tally = Tally::new(1);
        for _ in 0..50 {
            tally.add(Some(0), Outcome::Updated);
        }
        tally.add(None, Outcome::Invalid);
        let line = log_line(&tally, &e(102, 0, 1), Duration::from_secs(1), false);
        assert!(
            line.starts_with("progress: 51/102 rows (51/s, ETA 1s)"),
            "{line}"
        );
        assert!(line.contains("updated=50 unchanged=0 invalid=1"), "{line}");
        let line = log_line(&tally, &e(51, 0, 1), Duration::from_secs(1), true);
        assert!(
            line.contains("would_send=50") && line.ends_with("(dry run)"),
            "{line}"
        );
    }
}
