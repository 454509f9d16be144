//! The sandbox as a process.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use invitesync::sandbox::StatsSnapshot;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::Res;
use crate::run::{Job, PipelineRun, run_pipeline};
use crate::settings::Settings;

pub(crate) struct SandboxProc {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
    pub(crate) admin: reqwest::Client,
}

impl SandboxProc {
    /// The sandbox process's CPU time so far (user and system), from
    /// `/proc/PID/stat`; zero where that cannot be read.
    pub(crate) fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 (indices 11 and 12 after the
        // name), in clock ticks of USER_HZ, which Linux fixes at 100.
        Duration::from_millis((ticks(11) + ticks(12)) * 10)
    }

    pub(crate) fn start(s: &Settings, name: &str, faults: &[&str]) -> Res<SandboxProc> {
        let log =
            File::create(s.work.join(format!("sandbox-{name}.log"))).map_err(|e| e.to_string())?;
        let mut child = Command::new(&s.bin)
            .args(["sandbox", "--port", "0", "--stateless"])
            .args(faults)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout);
        let mut first = String::new();
        lines
            .read_line(&mut first)
            .map_err(|e| format!("sandbox: {e}"))?;
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .ok_or_else(|| format!("the sandbox did not say where it listens: {first:?}"))?
            .to_string();
        // Keep draining its stdout so that it never writes into a closed pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while lines.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let admin = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SandboxProc { child, base, admin })
    }

    pub(crate) async fn stats(&self) -> Res<StatsSnapshot> {
        let url = format!("{}/_sandbox/stats?invites=false", self.base);
        let body = self
            .admin
            .get(url)
            .send()
            .await
            .map_err(|e| format!("sandbox stats: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("sandbox stats: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("sandbox stats: {e}"))
    }

    pub(crate) async fn reset(&self) -> Res<()> {
        let url = format!("{}/_sandbox/reset-stats", self.base);
        self.admin
            .post(url)
            .send()
            .await
            .map_err(|e| format!("sandbox reset: {e}"))?;
        Ok(())
    }

    /// Runs `job` on fresh statistics, polled every `every` meanwhile: the
    /// run, what the sandbox saw, and the instant the samples count from.
    pub(crate) fn watch(
        self: &Arc<Self>,
        s: &Settings,
        rt: &Runtime,
        job: &Job<'_>,
        every: Duration,
    ) -> Res<(PipelineRun, Vec<Sample>, Instant)> {
        rt.block_on(self.reset())?;
        let origin = Instant::now();
        let (stop, task) = self.poll(rt, origin, every);
        let run = run_pipeline(s, job);
        stop.cancel();
        let samples = rt.block_on(task).map_err(|e| e.to_string())?;
        Ok((run?, samples, origin))
    }

    /// Starts polling the statistics every `every` until the token is cancelled.
    pub(crate) fn poll(
        self: &Arc<Self>,
        rt: &Runtime,
        origin: Instant,
        every: Duration,
    ) -> (CancellationToken, tokio::task::JoinHandle<Vec<Sample>>) {
        let stop = CancellationToken::new();
        let me = Arc::clone(self);
        let token = stop.clone();
        let task = rt.spawn(async move {
            let mut out = Vec::new();
            while !token.is_cancelled() {
                let asked = Instant::now();
                if let Ok(snap) = me.stats().await {
                    let answered = Instant::now();
                    let at = (asked - origin) + (answered - asked) / 2;
                    out.push(Sample::of(at, &snap));
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = token.cancelled() => {}
                }
            }
            if let Ok(snap) = me.stats().await {
                out.push(Sample::of(origin.elapsed(), &snap));
            }
            out
        });
        (stop, task)
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the sandbox had counted at a moment, all vendors together.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) at: Duration,
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    pub(crate) throttled: u64,
    /// Requests the sandbox was handling at that moment.
    pub(crate) in_flight: u64,
}

impl Sample {
    pub(crate) fn of(at: Duration, snap: &StatsSnapshot) -> Sample {
        let mut s = Sample {
            at,
            ..Sample::default()
        };
        for v in snap.vendors.values() {
            s.requests += v.requests;
            s.in_flight += v.in_flight;
            for (code, n) in &v.statuses {
                if (200..300).contains(code) {
                    s.ok += n;
                }
                if *code == 429 {
                    s.throttled += n;
                }
            }
        }
        s
    }
}

/// Totals of a stats snapshot: (requests, 2xx, 429, other statuses).
pub(crate) fn totals(snap: &StatsSnapshot) -> (u64, u64, u64, u64) {
    let s = Sample::of(Duration::ZERO, snap);
    let answered: u64 = snap
        .vendors
        .values()
        .flat_map(|v| v.statuses.values())
        .sum();
    (s.requests, s.ok, s.throttled, answered - s.ok - s.throttled)
}

/// Throughput between the moments 20 % and 90 % of the answers had come.
pub(crate) fn steady_rate(samples: &[Sample]) -> Option<f64> {
    let total = samples.last()?.ok;
    let at = |share: f64| {
        samples
            .iter()
            .find(|x| x.ok as f64 >= total as f64 * share)
            .copied()
    };
    let (a, b) = (at(0.2)?, at(0.9)?);
    let secs = (b.at - a.at).as_secs_f64();
    (secs > 0.0).then(|| (b.ok - a.ok) as f64 / secs)
}

/// The median number of requests in flight at the sandbox while between
/// 20 % and 90 % of the answers came.
pub(crate) fn steady_in_flight(samples: &[Sample]) -> u64 {
    let total = samples.last().map_or(0, |x| x.ok) as f64;
    let mut v: Vec<u64> = samples
        .iter()
        .filter(|x| x.ok as f64 >= 0.2 * total && x.ok as f64 <= 0.9 * total)
        .map(|x| x.in_flight)
        .collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// When the first request arrived (midway between the last poll that saw
/// none and the first that saw one).
pub(crate) fn first_request(samples: &[Sample]) -> Option<Duration> {
    let i = samples.iter().position(|x| x.requests > 0)?;
    Some(match i {
        0 => samples[0].at,
        i => (samples[i - 1].at + samples[i].at) / 2,
    })
}

/// How long after the first request the throughput over a sliding `window`
/// first reached `rate` (the window's midpoint).
pub(crate) fn time_to_rate(samples: &[Sample], rate: f64, window: Duration) -> Option<Duration> {
    let t0 = first_request(samples)?;
    let mut i = 0;
    for j in 0..samples.len() {
        while i + 1 < j && samples[j].at - samples[i + 1].at >= window {
            i += 1;
        }
        let span = samples[j].at.saturating_sub(samples[i].at);
        if span < window {
            continue;
        }
        let r = (samples[j].ok - samples[i].ok) as f64 / span.as_secs_f64();
        if r >= rate {
            let mid = samples[i].at + span / 2;
            return Some(mid.saturating_sub(t0));
        }
    }
    None
}

/// The sandbox accepted exactly `n` updates since its last reset (a digest
/// vendor's first challenge aside).
pub(crate) fn check_all_ok(rt: &Runtime, sandbox: &SandboxProc, n: usize) -> Res<()> {
    let snap = rt.block_on(sandbox.stats())?;
    let (_, ok, throttled, other) = totals(&snap);
    if ok != n as u64 {
        return Err(format!(
            "the sandbox accepted {ok} of {n} rows ({throttled} answered 429, {other} otherwise)"
        ));
    }
    Ok(())
}
