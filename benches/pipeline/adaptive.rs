//! Scenario 4: adaptive concurrency against a capacity knee.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::Res;
use crate::inputs::{plain, write_config, write_input};
use crate::report::Report;
use crate::run::Job;
use crate::sandbox::{
    Sample, SandboxProc, check_all_ok, steady_in_flight, steady_rate, time_to_rate,
};
use crate::settings::Settings;

pub(crate) fn adaptive(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.adaptive_rows;
    let rtt = Duration::from_millis(20);
    let knee = 24u32;
    println!("\n== adaptive: {n} rows, sandbox latency 20 ms with a knee at {knee} in flight");
    let vendor = KneeVendor::start(s, "adaptive", knee, n)?;
    let measure = |args: &[&str]| vendor.measure(s, rt, args);
    let mut best_fixed = (0usize, 0.0f64);
    let mut fixed_line = Vec::new();
    for &c in &s.sizes.adaptive_fixed {
        let cs = c.to_string();
        let samples = measure(&["--concurrency", &cs, "--fixed-concurrency"])?;
        let rate = steady_rate(&samples).ok_or("too few samples")?;
        println!(
            "  fixed concurrency {c}: {rate:.0} req/s ({} in flight)",
            steady_in_flight(&samples)
        );
        fixed_line.push(format!("{c}: {rate:.0}"));
        if rate > best_fixed.1 {
            best_fixed = (c, rate);
        }
    }
    let samples = measure(&["--concurrency", "256"])?;
    let rate = steady_rate(&samples).ok_or("too few samples")?;
    let reach = time_to_rate(&samples, 0.9 * best_fixed.1, rtt * 5);
    let settled = steady_in_flight(&samples);
    println!("  adaptive (cap 256): {rate:.0} req/s ({settled} in flight)");
    report.detail(format!(
        "adaptive ({n} rows, latency 20 ms growing past {knee} in flight): fixed concurrencies (req/s) {}; adaptive, cap 256: {rate:.0} req/s with a median of {settled} in flight",
        fixed_line.join(", ")
    ));
    let ratio = rate / best_fixed.1;
    report.row(
        "adaptive: steady throughput / best fixed concurrency",
        format!(
            "{ratio:.2} ({rate:.0} vs {:.0} req/s at {})",
            best_fixed.1, best_fixed.0
        ),
        ">= 0.90",
        Some(ratio >= 0.90),
    );
    good_citizen_rows(report, "adaptive", settled, knee);
    match reach {
        Some(t) => {
            let trips = t.as_secs_f64() / rtt.as_secs_f64();
            report.row(
                "adaptive: time to 90 % of best fixed",
                format!(
                    "{trips:.1} round trips ({:.0} ms)",
                    t.as_secs_f64() * 1000.0
                ),
                "<= 20 round trips",
                Some(trips <= 20.0),
            );
        }
        None => report.row(
            "adaptive: time to 90 % of best fixed",
            "never reached".into(),
            "<= 20 round trips",
            Some(false),
        ),
    }
    small_knee(s, rt, report)?;
    jitter(s, rt, report)
}

/// Round trips anywhere from 2 to 42 ms and no knee: more in flight is
/// always more throughput, and chance alone must not read as a queue. A
/// controller that takes the lowest of many noisy windows for the quiet
/// round trip drifts down over hundreds of windows, so the run is long.
fn jitter(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.adaptive_rows * 3;
    let cap = 64;
    println!("\n== adaptive, jitter: {n} rows, sandbox latency 2 to 42 ms, no knee");
    let vendor = KneeVendor::start_with(
        s,
        "adaptive-jitter",
        &["--latency-ms", "2", "--jitter-ms", "40"],
        n,
    )?;
    let caps = cap.to_string();
    let fixed = vendor.measure(s, rt, &["--concurrency", &caps, "--fixed-concurrency"])?;
    let fixed_rate = steady_rate(&fixed).ok_or("too few samples")?;
    let samples = vendor.measure(s, rt, &["--concurrency", &caps])?;
    let rate = steady_rate(&samples).ok_or("too few samples")?;
    let settled = steady_in_flight(&samples);
    println!(
        "  fixed concurrency {cap}: {fixed_rate:.0} req/s; adaptive (cap {cap}): {rate:.0} req/s ({settled} in flight)"
    );
    let ratio = rate / fixed_rate;
    report.row(
        "adaptive, jitter 2 to 42 ms, no knee: steady throughput / fixed at the cap (64)",
        format!("{ratio:.2} ({rate:.0} vs {fixed_rate:.0} req/s, {settled} in flight)"),
        ">= 0.90",
        Some(ratio >= 0.90),
    );
    Ok(())
}

/// The same against a knee at the starting limit: a margin of two requests
/// waiting, right for the knee above, is half again this vendor's load.
fn small_knee(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.adaptive_rows / 4;
    let knee = 4u32;
    let latency = Duration::from_millis(20);
    println!(
        "\n== adaptive, small knee: {n} rows, sandbox latency 20 ms with a knee at {knee} in flight"
    );
    let samples = KneeVendor::start(s, "adaptive-small", knee, n)?.measure(
        s,
        rt,
        &["--concurrency", "256"],
    )?;
    let rate = steady_rate(&samples).ok_or("too few samples")?;
    let settled = steady_in_flight(&samples);
    let capacity = f64::from(knee) / latency.as_secs_f64();
    println!(
        "  adaptive (cap 256): {rate:.0} req/s ({settled} in flight) against a capacity of {capacity:.0} req/s"
    );
    good_citizen_rows(report, "adaptive, knee at 4", settled, knee);
    let share = rate / capacity;
    report.row(
        "adaptive, knee at 4: steady throughput / capacity",
        format!("{share:.2} ({rate:.0} of {capacity:.0} req/s)"),
        ">= 0.90",
        Some(share >= 0.90),
    );
    Ok(())
}

/// A sandbox whose round trips are 20 ms up to `knee` requests in flight
/// and grow in proportion past it (or as other flags say), with `n` rows
/// to send it.
struct KneeVendor {
    sandbox: Arc<SandboxProc>,
    n: usize,
    input: PathBuf,
    config: PathBuf,
    dir: PathBuf,
}

impl KneeVendor {
    fn start(s: &Settings, name: &str, knee: u32, n: usize) -> Res<KneeVendor> {
        let knee = knee.to_string();
        Self::start_with(s, name, &["--latency-ms", "20", "--knee", &knee], n)
    }

    /// A sandbox started with `faults` (its flags), with `n` rows to send it.
    fn start_with(s: &Settings, name: &str, faults: &[&str], n: usize) -> Res<KneeVendor> {
        let sandbox = Arc::new(SandboxProc::start(s, name, faults)?);
        let dir = s.work.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let config = write_config(&dir, "config", &sandbox.base, 256, &plain)?;
        let input = dir.join("gate.csv");
        write_input(&input, n, false)?;
        Ok(KneeVendor {
            sandbox,
            n,
            input,
            config,
            dir,
        })
    }

    /// One fresh run with `args`, watched from the sandbox; every row must
    /// be accepted.
    fn measure(&self, s: &Settings, rt: &Runtime, args: &[&str]) -> Res<Vec<Sample>> {
        let job = Job {
            input: &self.input,
            config: &self.config,
            state: &self.dir.join("state.db"),
            results: &self.dir.join("results.csv"),
            args,
            fresh: true,
        };
        let (_, samples, _) = self.sandbox.watch(s, rt, &job, Duration::from_millis(10))?;
        check_all_ok(rt, &self.sandbox, self.n)?;
        Ok(samples)
    }
}

/// The good citizen's two rows: the median in flight against the knee, and
/// the median round trip against the quiet 20 ms (which the sandbox
/// stretches by in-flight / knee past the knee).
fn good_citizen_rows(report: &mut Report, scenario: &str, settled: u64, knee: u32) {
    let in_flight_ratio = settled as f64 / f64::from(knee);
    report.row(
        &format!("{scenario}: median requests in flight / knee ({knee})"),
        format!("{in_flight_ratio:.2} ({settled} in flight)"),
        "<= 1.5",
        Some(in_flight_ratio <= 1.5),
    );
    let rtt_ratio = in_flight_ratio.max(1.0);
    report.row(
        &format!("{scenario}: median round trip / quiet round trip (20 ms)"),
        format!("{rtt_ratio:.2} ({:.0} ms)", 20.0 * rtt_ratio),
        "<= 1.5",
        Some(rtt_ratio <= 1.5),
    );
}
