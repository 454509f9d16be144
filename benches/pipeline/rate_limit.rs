//! Scenario 5: rate limits. One nobody told the runner about (learned from
//! 429s), and one the config gives, kept by a whole run and by one shard of
//! two (which takes half).

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;

use invitesync::vendors::Kind;

use crate::Res;
use crate::inputs::{plain, write_config, write_input};
use crate::report::Report;
use crate::run::Job;
use crate::sandbox::{SandboxProc, first_request, steady_rate, totals};
use crate::settings::Settings;

pub(crate) fn rate_limit(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    unknown_rate_limit(s, rt, report)?;
    configured_rate_limit(s, rt, report)
}

fn unknown_rate_limit(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.rate_rows;
    let limit = 200.0;
    println!("\n== unknown rate limit: {n} rows, sandbox admits {limit} req/s (burst {limit})");
    let sandbox = Arc::new(SandboxProc::start(
        s,
        "ratelimit",
        &["--fault", "securegate.rate_limit=200"],
    )?);
    let dir = s.work.join("ratelimit");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, 64, &plain)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    let job = Job {
        input: &input,
        config: &config,
        state: &state,
        results: &results,
        args: &[],
        fresh: true,
    };
    let (_, samples, origin) = sandbox.watch(s, rt, &job, Duration::from_millis(50))?;
    let snap = rt.block_on(sandbox.stats())?;
    let (requests, ok, throttled, other) = totals(&snap);
    if ok != n as u64 {
        return Err(format!("{ok} of {n} accepted ({other} other answers)"));
    }
    let t0 = first_request(&samples).ok_or("no request seen")?;
    let t1 = samples
        .iter()
        .find(|x| x.ok >= ok)
        .map_or(origin.elapsed(), |x| x.at);
    let span = (t1 - t0).as_secs_f64();
    // The bucket starts full: one second's worth comes on top of the rate.
    let achieved = (ok as f64 - limit) / span;
    let steady = steady_rate(&samples).unwrap_or(0.0);
    let share = throttled as f64 / requests as f64;
    report.detail(format!(
        "unknown rate limit ({n} rows, 200 req/s, burst 200, zero latency, default config: concurrency 64, adaptive): {ok} accepted in {span:.1} s; (accepted - burst) / time = {achieved:.0} req/s, between 20 % and 90 % of the rows {steady:.0} req/s; {throttled} of {requests} requests answered 429"
    ));
    let ratio = achieved / limit;
    report.row(
        "unknown rate limit: achieved / limit",
        format!("{ratio:.2} ({achieved:.0} of 200 req/s)"),
        ">= 0.90",
        Some(ratio >= 0.90),
    );
    report.row(
        "unknown rate limit: share answered 429",
        format!("{:.2} % ({throttled} of {requests})", share * 100.0),
        "< 2 %",
        Some(share < 0.02),
    );
    Ok(())
}

/// `rate_limit = "100/s"` on Securegate, a sandbox that would take more: the
/// requests that reach it come that fast and no faster, and a shard of two
/// sends at half of it (so that the two together keep the limit).
fn configured_rate_limit(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.told_rate_rows;
    let limit = 100.0;
    println!(
        "\n== configured rate limit: {n} rows, rate_limit = \"100/s\", whole and as shard 0/2"
    );
    let sandbox = Arc::new(SandboxProc::start(s, "told", &[])?);
    let dir = s.work.join("told");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let told = |kind: Kind| {
        if kind == Kind::Securegate {
            "rate_limit = \"100/s\"\n".to_string()
        } else {
            String::new()
        }
    };
    let config = write_config(&dir, "config", &sandbox.base, 64, &told)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    for (label, args, share) in [
        ("whole run", &[][..], 1.0),
        ("shard 0/2", &["--shard", "0/2"][..], 0.5),
    ] {
        let job = Job {
            input: &input,
            config: &config,
            state: &state,
            results: &results,
            args,
            fresh: true,
        };
        let (_, samples, origin) = sandbox.watch(s, rt, &job, Duration::from_millis(50))?;
        let ok = samples.last().map_or(0, |x| x.ok);
        let t0 = first_request(&samples).ok_or("no request seen")?;
        let t1 = samples
            .iter()
            .find(|x| x.ok >= ok)
            .map_or(origin.elapsed(), |x| x.at);
        // The first request leaves at once; the others wait their turn.
        let achieved = (ok as f64 - 1.0) / (t1 - t0).as_secs_f64();
        let allowed = limit * share;
        let ratio = achieved / allowed;
        report.detail(format!(
            "configured rate limit, {label}: {ok} requests at {achieved:.1} req/s against {allowed:.0} allowed"
        ));
        report.row(
            &format!("configured rate limit ({label}): achieved / allowed"),
            format!("{ratio:.2} ({achieved:.1} of {allowed:.0} req/s)"),
            "0.90 to 1.05",
            Some((0.90..=1.05).contains(&ratio)),
        );
    }
    Ok(())
}
