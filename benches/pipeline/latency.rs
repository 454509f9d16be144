//! Scenario 3: latency-bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::Res;
use crate::bare::side_by_side;
use crate::inputs::{plain, plan, write_config, write_input};
use crate::report::Report;
use crate::run::Job;
use crate::sandbox::SandboxProc;
use crate::settings::Settings;

pub(crate) fn latency_bound(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.latency_rows;
    let concurrency = 64;
    let latency = Duration::from_millis(50);
    println!("\n== latency-bound: {n} rows, sandbox latency 50 ms, concurrency {concurrency}");
    let sandbox = Arc::new(SandboxProc::start(s, "latency", &["--latency-ms", "50"])?);
    let dir = s.work.join("latency");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, concurrency, &plain)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let planned = Arc::new(plan(&config, &input)?);
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    let ideal = concurrency as f64 / latency.as_secs_f64();
    let mut rates = Vec::new();
    for (label, args) in [
        ("fixed", &["--concurrency", "64", "--fixed-concurrency"][..]),
        ("adaptive", &["--concurrency", "64"][..]),
    ] {
        let job = Job {
            input: &input,
            config: &config,
            state: &state,
            results: &results,
            args,
            fresh: true,
        };
        let sbs = side_by_side(
            s,
            rt,
            &sandbox,
            &planned,
            &job,
            concurrency,
            s.sizes.latency_rounds,
        )?;
        let (bare, pipe) = (sbs.bare, sbs.pipeline);
        rates.push((label, bare, pipe));
    }
    let (_, bare, pipe) = rates[0];
    let (_, bare_a, pipe_a) = rates[1];
    report.detail(format!(
        "latency-bound ({n} rows, 50 ms, c={concurrency}): pipeline --fixed-concurrency {pipe:.0} req/s, adaptive (default, cap 64) {pipe_a:.0} req/s, bare {bare:.0} / {bare_a:.0} req/s; ideal c/latency = {ideal:.0} req/s"
    ));
    let ratio = pipe / bare;
    report.row(
        "latency-bound: pipeline / bare client",
        format!("{ratio:.3} ({pipe:.0} vs {bare:.0} req/s)"),
        ">= 0.97",
        Some(ratio >= 0.97),
    );
    let ratio_a = pipe_a / bare_a;
    report.row(
        "latency-bound: adaptive pipeline / bare client",
        format!("{ratio_a:.3} ({pipe_a:.0} vs {bare_a:.0} req/s)"),
        ">= 0.97",
        Some(ratio_a >= 0.97),
    );
    report.row(
        "latency-bound: achieved / (concurrency / latency)",
        format!("{:.3} ({pipe:.0} of {ideal:.0} req/s)", pipe / ideal),
        "(reported)",
        None,
    );
    Ok(())
}
