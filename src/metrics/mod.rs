//! Prometheus metrics of a run, the way batch jobs are monitored: written for
//! the node exporter's textfile collector (`--metrics-file`, [`textfile`])
//! and pushed to a Pushgateway (`--pushgateway`, [`push`]), when the run
//! starts, at every log interval while it goes, and when it ends.
//!
//! The live counters (the run's [`Tally`], each vendor's limits, circuit and
//! round trips) are copied into a [`Snapshot`], and the snapshot rendered as
//! text ([`render`]); rendering and the two sinks know nothing of the
//! pipeline. At the end, the rows per outcome are the state file's counts
//! of the whole run, the same as the results file's.

pub mod push;
pub mod render;
pub mod textfile;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::latency::Exported;
use crate::logs::{Level, notice};
use crate::outcome::Outcome;
use crate::progress::{Expected, ProgressMode};
use crate::send::Target;
use crate::tally::{Tally, VendorTally};

/// What `run` was asked to publish.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// `--metrics-file`: the textfile collector's file (name it `*.prom`).
    pub file: Option<PathBuf>,
    /// `--pushgateway`: the gateway's address.
    pub pushgateway: Option<Url>,
    /// `--metrics-job`: the Pushgateway group's `job`.
    pub job: String,
}

/// The interval between two publications when the run logs none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Everything the metrics say, at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// One per vendor account of the config, in config order.
    pub vendors: Vec<VendorFacts>,
    /// Rows that name no vendor of the config, by outcome, if there are any.
    pub unrouted: Option<[u64; 5]>,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub pending: Option<u64>,
    /// `None` while the run goes.
    pub ended: Option<Ended>,
}

#[derive(Debug, Clone)]
pub struct VendorFacts {
    pub name: String,
    pub kind: String,
    /// Rows by outcome, in [`Outcome::ALL`] order.
    pub rows: [u64; 5],
    /// Attempts by answer class, in [`crate::tally::ANSWER_CLASSES`] order.
    pub answers: [u64; 5],
    pub retries: u64,
    pub throttled: u64,
    pub concurrency_limit: usize,
    pub rate: Option<f64>,
    pub stopped: bool,
    pub round_trips: Exported,
}

#[derive(Debug, Clone)]
pub struct Ended {
    pub exit_code: i32,
    pub at: SystemTime,
}

/// How a run ended, for the last publication.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub exit_code: i32,
    /// Rows of the whole run per vendor name and outcome (`None` vendor: no
    /// vendor); `None` when the run ended before counting them.
    pub counts: Option<&'a [(Option<String>, [u64; 5])]>,
    pub pending: Option<u64>,
}

/// Publishes a run's metrics: [`Reporter::watch`] once the pipeline is set up
/// (then at every interval), [`Reporter::finish`] when the run has ended,
/// however it ended.
pub struct Reporter {
    sinks: Arc<Sinks>,
    watched: Mutex<Option<Watched>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("file", &self.sinks.file)
            .field("pushgateway", &self.sinks.gateway.as_ref().map(|g| g.url()))
            .finish()
    }
}

struct Sinks {
    file: Option<PathBuf>,
    gateway: Option<push::Gateway>,
    /// `K-of-N`, or `all` without `--shard`.
    shard: String,
    started_at: SystemTime,
    started: Instant,
    /// A sink that keeps failing is reported once while the run goes.
    file_warned: AtomicBool,
    /// The file turned out to be one the run reads or writes otherwise (the
    /// input, the state file, a secret...): it is never written.
    file_forbidden: AtomicBool,
    push_warned: AtomicBool,
}

struct Watched {
    live: Arc<Live>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The pipeline's live counters.
struct Live {
    tally: Arc<Tally>,
    targets: Arc<Vec<Target>>,
    kinds: Vec<String>,
    expected: Expected,
}

impl Reporter {
    /// `None` when neither a file nor a gateway was asked for.
    pub fn new(opts: &MetricsOptions, shard: Option<(u32, u32)>) -> Option<Arc<Reporter>> {
        if opts.file.is_none() && opts.pushgateway.is_none() {
            return None;
        }
        let shard = shard.map_or_else(|| "all".to_string(), |(k, n)| format!("{k}-of-{n}"));
        let gateway = opts.pushgateway.as_ref().and_then(|url| {
            push::Gateway::new(url, &opts.job, &shard)
                .map_err(|e| notice(Level::Warn, &format!("warning: {e}")))
                .ok()
        });
        Some(Arc::new(Reporter {
            sinks: Arc::new(Sinks {
                file: opts.file.clone(),
                gateway,
                shard,
                started_at: SystemTime::now(),
                started: Instant::now(),
                file_warned: AtomicBool::new(false),
                file_forbidden: AtomicBool::new(false),
                push_warned: AtomicBool::new(false),
            }),
            watched: Mutex::new(None),
        }))
    }

    /// `--metrics-file`, if given.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.sinks.file.as_deref()
    }

    /// The metrics file is another file of the run's: it is left alone, and
    /// only the Pushgateway (if any) hears of the run.
    pub fn forbid_file(&self) {
        self.sinks.file_forbidden.store(true, Ordering::Relaxed);
    }

    /// Starts publishing the live counters: now, then at every log interval
    /// (`--log-interval`, else every 10 s).
    pub fn watch(
        &self,
        config: &Config,
        tally: Arc<Tally>,
        targets: Arc<Vec<Target>>,
        expected: Expected,
        progress: ProgressMode,
    ) {
        let live = Arc::new(Live {
            tally,
            targets,
            kinds: config.vendors.iter().map(|(v, _)| v.kind.clone()).collect(),
            expected,
        });
        let interval = match progress {
            ProgressMode::Log { interval } => interval,
            _ => DEFAULT_INTERVAL,
        }
        .max(Duration::from_millis(10));
        let stop = CancellationToken::new();
        let task = tokio::spawn(tick(
            self.sinks.clone(),
            live.clone(),
            interval,
            stop.clone(),
        ));
        let previous = self.watched().replace(Watched {
            live,
            stop,
            task: Some(task),
        });
        if let Some(w) = previous {
            w.stop.cancel();
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Option<Watched>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last publication: waits for one under way, then publishes the end.
    pub async fn finish(&self, ending: Ending<'_>) {
        let watched = self.watched().take();
        let live = match watched {
            Some(mut w) => {
                w.stop.cancel();
                if let Some(task) = w.task.take() {
                    let _ = task.await;
                }
                Some(w.live.clone())
            }
            None => None,
        };
        let mut snapshot = match &live {
            Some(live) => live.snapshot(&self.sinks),
            None => self.sinks.bare(),
        };
        snapshot.ended = Some(Ended {
            exit_code: ending.exit_code,
            at: SystemTime::now(),
        });
        if let Some(counts) = ending.counts {
            set_rows(&mut snapshot, counts);
        }
        if ending.pending.is_some() {
            snapshot.pending = ending.pending;
        }
        self.sinks.publish(&snapshot, true).await;
    }
}

impl Drop for Reporter {
    /// A run that ends without [`Reporter::finish`] stops publishing.
    fn drop(&mut self) {
        if let Some(w) = self.watched().take() {
            w.stop.cancel();
        }
    }
}

async fn tick(sinks: Arc<Sinks>, live: Arc<Live>, interval: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        sinks.publish(&live.snapshot(&sinks), false).await;
    }
}

impl Sinks {
    /// A snapshot with no pipeline behind it (the run ended before it had one).
    fn bare(&self) -> Snapshot {
        Snapshot {
            vendors: Vec::new(),
            unrouted: None,
            started_at: self.started_at,
            duration: self.started.elapsed(),
            pending: None,
            ended: None,
        }
    }

    /// Writes and pushes `s`. Only a run that succeeded replaces what an
    /// earlier one published; otherwise the families published replace
    /// theirs and the rest (the last success's time) stays. A sink that
    /// fails is a warning, never a failed run.
    async fn publish(&self, s: &Snapshot, last: bool) {
        let replace = s.ended.as_ref().is_some_and(|e| e.exit_code == 0);
        if let Some(path) = self
            .file
            .as_ref()
            .filter(|_| !self.file_forbidden.load(Ordering::Relaxed))
        {
            let text = render::text(s, &[("shard", &self.shard)]);
            let path = path.clone();
            let written =
                tokio::task::spawn_blocking(move || textfile::write(&path, &text, replace))
                    .await
                    .unwrap_or_else(|e| Err(format!("cannot write the metrics file: {e}")));
            self.report(written, &self.file_warned, last);
        }
        if let Some(gateway) = &self.gateway {
            let pushed = gateway.push(render::text(s, &[]), replace).await;
            self.report(pushed, &self.push_warned, last);
        }
    }

    fn report(&self, outcome: Result<(), String>, warned: &AtomicBool, last: bool) {
        match outcome {
            Ok(()) => warned.store(false, Ordering::Relaxed),
            Err(e) => {
                if last || !warned.swap(true, Ordering::Relaxed) {
                    notice(Level::Warn, &format!("warning: {e}"));
                } else {
                    tracing::debug!("{e}");
                }
            }
        }
    }
}

impl Live {
    fn snapshot(&self, sinks: &Sinks) -> Snapshot {
        let rows =
            |t: &VendorTally| -> [u64; 5] { std::array::from_fn(|i| t.count(Outcome::ALL[i])) };
        let vendors = self
            .targets
            .iter()
            .zip(&self.kinds)
            .map(|(t, kind)| {
                let vt = self.tally.vendor(Some(t.id));
                VendorFacts {
                    name: t.name.clone(),
                    kind: kind.clone(),
                    rows: rows(vt),
                    answers: vt.answers(),
                    retries: vt.retries.load(Ordering::Relaxed),
                    throttled: t.pace.throttled(),
                    concurrency_limit: t.limit.limit(),
                    rate: t.pace.rate(),
                    stopped: t.circuit.is_open(),
                    round_trips: t.latency.export(),
                }
            })
            .collect();
        let unrouted = self.tally.unrouted();
        Snapshot {
            vendors,
            unrouted: (unrouted.finished() > 0).then(|| rows(unrouted)),
            started_at: sinks.started_at,
            duration: sinks.started.elapsed(),
            pending: Some(
                self.expected
                    .rows(&self.tally)
                    .saturating_sub(self.tally.finished()),
            ),
            ended: None,
        }
    }
}

/// The rows per vendor and outcome from the run's counts; a name that is no
/// vendor of the config counts as no vendor.
fn set_rows(s: &mut Snapshot, counts: &[(Option<String>, [u64; 5])]) {
    let mut unrouted = [0u64; 5];
    for v in &mut s.vendors {
        v.rows = [0; 5];
    }
    for (name, c) in counts {
        let into = match name {
            Some(n) => s
                .vendors
                .iter_mut()
                .find(|v| &v.name == n)
                .map(|v| &mut v.rows),
            None => None,
        };
        let into = into.unwrap_or(&mut unrouted);
        for (a, b) in into.iter_mut().zip(c) {
            *a += b;
        }
    }
    s.unrouted = unrouted.iter().any(|n| *n > 0).then_some(unrouted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_counts_are_the_runs_and_unknown_names_are_no_vendor() {
        let mut s = Sinks {
            file: None,
            gateway: None,
            shard: "all".into(),
            started_at: SystemTime::now(),
            started: Instant::now(),
            file_warned: AtomicBool::new(false),
            file_forbidden: AtomicBool::new(false),
            push_warned: AtomicBool::new(false),
        }
        .bare();
        s.vendors.push(VendorFacts {
            name: "gate".into(),
            kind: "securegate".into(),
            rows: [9, 9, 9, 9, 9],
            answers: [0; 5],
            retries: 0,
            throttled: 0,
            concurrency_limit: 1,
            rate: None,
            stopped: false,
            round_trips: Exported::default(),
        });
        set_rows(
            &mut s,
            &[
                (Some("gate".into()), [3, 1, 0, 0, 0]),
                (Some("zoom".into()), [0, 0, 2, 0, 0]),
                (None, [0, 0, 1, 0, 0]),
            ],
        );
        assert_eq!(s.vendors[0].rows, [3, 1, 0, 0, 0]);
        assert_eq!(s.unrouted, Some([0, 0, 3, 0, 0]));
        set_rows(&mut s, &[(Some("gate".into()), [1, 0, 0, 0, 0])]);
        assert_eq!(s.unrouted, None);
    }
}
