//! Scenario 1 and 2: overhead against a bare client, and against curl.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use tokio::runtime::Runtime;

use crate::Res;
use crate::bare::side_by_side;
use crate::inputs::{Planned, plain, plan, write_config, write_input};
use crate::report::Report;
use crate::run::{Job, run_pipeline};
use crate::sandbox::{SandboxProc, check_all_ok, totals};
use crate::settings::Settings;

pub(crate) fn overhead_and_curl(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let n = s.sizes.overhead_rows;
    let concurrency = 64;
    println!("\n== overhead: {n} Securegate rows, concurrency {concurrency}, zero latency");
    let sandbox = Arc::new(SandboxProc::start(s, "overhead", &[])?);
    let dir = s.work.join("overhead");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, concurrency, &plain)?;
    let input = dir.join("gate.csv");
    write_input(&input, n, false)?;
    let planned = Arc::new(plan(&config, &input)?);
    let state = dir.join("state.db");
    let results = dir.join("results.csv");
    let job = Job {
        input: &input,
        config: &config,
        state: &state,
        results: &results,
        args: &["--concurrency", "64", "--fixed-concurrency"],
        fresh: true,
    };
    let mut pipeline_best = 0.0f64;
    if s.wants("overhead") {
        let sbs = side_by_side(
            s,
            rt,
            &sandbox,
            &planned,
            &job,
            concurrency,
            s.sizes.overhead_rounds,
        )?;
        let (bare_best, pipe_best) = (sbs.bare, sbs.pipeline);
        pipeline_best = pipe_best;
        let ratio = sbs.ratio;
        report.detail(format!(
            "overhead (Securegate, {n} rows, c={concurrency}, {} alternating rounds): best pipeline {pipe_best:.0} req/s, best bare reqwest loop {bare_best:.0} req/s; ratio {ratio:.2}, the median of each round's own",
            s.sizes.overhead_rounds
        ));
        report.row(
            "overhead: pipeline / bare client (Securegate), median of the rounds' ratios",
            format!("{ratio:.2} (best {pipe_best:.0} vs {bare_best:.0} req/s)"),
            ">= 0.90",
            Some(ratio >= 0.90),
        );
        let cpu_us = sbs.cpu_per_row.as_secs_f64() * 1e6;
        report.row(
            "overhead: invitesync CPU per row (user + system, Securegate)",
            format!("{cpu_us:.1} µs"),
            "<= 23 µs (a third of the 70 µs first measured)",
            Some(cpu_us <= 23.0),
        );
        // Client and sandbox share the two cores, so at zero latency the
        // throughputs stand in the ratio of the CPU each row costs both
        // sides together: this is the ratio the measured CPU allows.
        let (bare_us, sandbox_us) = (
            sbs.bare_cpu_per_row.as_secs_f64() * 1e6,
            sbs.sandbox_cpu_per_row.as_secs_f64() * 1e6,
        );
        let bound = (bare_us + sandbox_us) / (cpu_us + sandbox_us);
        report.detail(format!(
            "CPU per row, side by side: pipeline {cpu_us:.1} µs, bare reqwest loop {bare_us:.1} µs, sandbox {sandbox_us:.1} µs; \
             on two shared cores that puts pipeline / bare at about {bound:.2}"
        ));
        report.row(
            "overhead: CPU per row, bare loop and sandbox (side by side)",
            format!(
                "bare {bare_us:.1} µs, sandbox {sandbox_us:.1} µs: ratio allowed by CPU {bound:.2}"
            ),
            "(reported)",
            None,
        );
        // The run's own HTTP client alone: the rest of the pipeline's CPU
        // per row is the runner's own work (reading, ordering, checkpoint).
        let http_us = crate::bare::transport_cpu_per_row(
            rt,
            &sandbox,
            &planned,
            concurrency,
            s.sizes.overhead_rounds,
        )?
        .as_secs_f64()
            * 1e6;
        report.detail(format!(
            "CPU per row of the run's own HTTP client alone (net::transport in the bare loop's place): {http_us:.1} µs; \
             the pipeline's other work: {:.1} µs",
            cpu_us - http_us
        ));
        report.row(
            "overhead: CPU per row of the run's HTTP client alone, and of the rest of the pipeline",
            format!("{http_us:.1} µs and {:.1} µs", cpu_us - http_us),
            "(reported)",
            None,
        );
        crate::wrk::against_wrk(s, rt, &sandbox, concurrency, pipe_best, report)?;

        // The four vendors together, Ops Manager's digest included.
        let m = s.sizes.mixed_rows;
        println!("\n== overhead, mixed: {m} rows over the four vendors");
        let mixed_input = dir.join("mixed.csv");
        write_input(&mixed_input, m, true)?;
        let mixed_planned = Arc::new(plan(&config, &mixed_input)?);
        let mixed_job = Job {
            input: &mixed_input,
            ..job
        };
        let mixed = side_by_side(
            s,
            rt,
            &sandbox,
            &mixed_planned,
            &mixed_job,
            concurrency,
            s.sizes.mixed_rounds,
        )?;
        let (bare_m, pipe_m) = (mixed.bare, mixed.pipeline);
        let ratio = mixed.ratio;
        report.detail(format!(
            "overhead (four vendors, {m} rows, c={concurrency}, {} rounds): best pipeline {pipe_m:.0} req/s, best bare {bare_m:.0} req/s; ratio {ratio:.2}, the median of each round's own",
            s.sizes.mixed_rounds
        ));
        report.row(
            "overhead: pipeline / bare client (four vendors), median of the rounds' ratios",
            format!("{ratio:.2} (best {pipe_m:.0} vs {bare_m:.0} req/s)"),
            ">= 0.90",
            Some(ratio >= 0.90),
        );
    }
    if s.wants("curl") {
        println!("\n== against curl --parallel --parallel-max 64: {n} Securegate rows");
        match curl_version() {
            Err(why) => {
                report.detail(format!("curl: not measured: {why}"));
                report.row(
                    "vs curl: pipeline / curl --parallel",
                    format!("not measured: {why}"),
                    ">= 2x",
                    None,
                );
            }
            Ok(version) => {
                let curl_config = dir.join("curl.cfg");
                write_curl_config(&planned, &curl_config)?;
                rt.block_on(sandbox.reset())?;
                let t = Instant::now();
                let status = Command::new("curl")
                    .args([
                        "--parallel",
                        "--parallel-max",
                        "64",
                        "--silent",
                        "--show-error",
                    ])
                    .arg("--config")
                    .arg(&curl_config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .map_err(|e| format!("curl: {e}"))?;
                let curl_elapsed = t.elapsed();
                let snap = rt.block_on(sandbox.stats())?;
                let (_, ok, _, _) = totals(&snap);
                if !status.success() || ok != n as u64 {
                    return Err(format!(
                        "curl exited with {status} after {ok} of {n} accepted requests"
                    ));
                }
                let curl_rate = n as f64 / curl_elapsed.as_secs_f64();
                // The pipeline again, right after curl, unless just measured.
                if pipeline_best == 0.0 {
                    rt.block_on(sandbox.reset())?;
                    let p = run_pipeline(s, &job)?;
                    check_all_ok(rt, &sandbox, n)?;
                    pipeline_best = n as f64 / p.elapsed.as_secs_f64();
                }
                let ratio = pipeline_best / curl_rate;
                report.detail(format!(
                    "curl ({version}): {curl_rate:.0} req/s over {n} rows from a generated config (one url/request/header/data block per row, `next` between); pipeline {pipeline_best:.0} req/s"
                ));
                report.row(
                    "vs curl: pipeline / curl --parallel-max 64",
                    format!("{ratio:.1}x ({pipeline_best:.0} vs {curl_rate:.0} req/s)"),
                    ">= 2x",
                    Some(ratio >= 2.0),
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn curl_version() -> Res<String> {
    let out = Command::new("curl")
        .arg("--version")
        .output()
        .map_err(|_| "curl is not installed".to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("").to_string();
    let version = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let parts: Vec<u32> = version
        .split('.')
        .take(2)
        .filter_map(|p| p.parse().ok())
        .collect();
    // --parallel came with curl 7.66.
    if parts.len() < 2 || (parts[0], parts[1]) < (7, 66) {
        return Err(format!(
            "curl {version} has no --parallel (it came in 7.66)"
        ));
    }
    Ok(format!("curl {version}"))
}

/// One block per row: the same method, URL, headers and body as the pipeline's.
pub(crate) fn write_curl_config(planned: &Planned, path: &Path) -> Res<()> {
    fn quoted(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    let f = File::create(path).map_err(|e| e.to_string())?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let io = |e: std::io::Error| e.to_string();
    for (i, change) in planned.changes.iter().enumerate() {
        let req = planned.adapters[usize::from(change.vendor)].request(change);
        if i > 0 {
            writeln!(w, "next").map_err(io)?;
        }
        writeln!(w, "url = {}", quoted(&req.uri().to_string())).map_err(io)?;
        writeln!(w, "request = {}", quoted(req.method().as_str())).map_err(io)?;
        for (name, value) in req.headers() {
            let value = value.to_str().map_err(|e| e.to_string())?;
            writeln!(w, "header = {}", quoted(&format!("{name}: {value}"))).map_err(io)?;
        }
        let body = std::str::from_utf8(req.body()).map_err(|e| e.to_string())?;
        writeln!(w, "data-binary = {}", quoted(body)).map_err(io)?;
        writeln!(w, "output = \"/dev/null\"").map_err(io)?;
    }
    w.flush().map_err(io)
}
