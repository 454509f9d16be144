//! `make bench`: the performance targets of the README's Performance
//! section, each measured against the sandbox.
//!
//! Every figure is a ratio of two things measured side by side in this one
//! run, because the machines are shared and an absolute time means little.
//! The sandbox always runs as its own process (`invitesync sandbox
//! --stateless`), so that client and server never share a runtime; the
//! pipeline is the real binary (`invitesync run`), timed from spawn to exit;
//! the bare client is a plain reqwest loop in this process that sends the
//! very requests the pipeline sends (built by the same vendor adapters).
//!
//! ```text
//! cargo bench --bench pipeline -- [--bin target/release/invitesync] [--quick] [--only a,b]
//! ```
//!
//! It prints a table (scenario, measured, target, pass or miss) at the end
//! and writes it, with the details, to `target/bench/report.md`. Everything
//! talks to 127.0.0.1 only.
//!
//! The parts: [`settings`] (sizes, `--only`), [`report`] (the table),
//! [`sandbox`] (the sandbox as a process, its statistics sampled), [`inputs`]
//! (input files, the config, the requests the adapters build), [`bare`] (the
//! bare client), [`run`] (the pipeline, with its peak RSS), then one module
//! per scenario.

// A benchmark prints its report to the terminal that started it; the
// product's own output goes through `invitesync::stdio` instead.
#![allow(clippy::disallowed_macros)]

/// The config the tests' harness writes (one account per vendor kind), shared
/// so that the bench measures the configuration the tests prove.
#[path = "../../tests/common/config.rs"]
#[allow(dead_code)]
mod config;

mod adaptive;
mod bare;
mod checkpoint;
mod inputs;
mod latency;
mod memory;
mod overhead;
mod rate_limit;
mod report;
mod run;
mod sandbox;
mod settings;
mod wrk;

use std::fmt::Write as _;
use std::time::Instant;

use tokio::runtime::Runtime;

use bare::bare_client_once;
use report::Report;
use run::{PEAK_RSS_FLAG, peak_rss_wrapper};
use settings::Settings;

pub(crate) type Res<T> = Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Re-executed as a wrapper that reports the peak RSS of its one child.
    if args.get(1).map(String::as_str) == Some(PEAK_RSS_FLAG) {
        std::process::exit(peak_rss_wrapper(&args[2..]));
    }
    // `--bare-client CONFIG INPUT CONCURRENCY`: only the bare client, once,
    // for profiling it on its own (e.g. under valgrind --tool=callgrind).
    if args.get(1).map(String::as_str) == Some("--bare-client") {
        std::process::exit(bare_client_once(&args[2..]));
    }
    let settings = match Settings::from_args(&args[1..]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let code = match run_all(&settings) {
        Ok(report) => {
            let strict = std::env::var("BENCH_STRICT").is_ok_and(|v| !v.is_empty() && v != "0");
            if strict && report.rows.iter().any(|r| r.pass == Some(false)) {
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run_all(s: &Settings) -> Res<Report> {
    std::fs::create_dir_all(&s.out).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&s.work);
    std::fs::create_dir_all(&s.work).map_err(|e| e.to_string())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut report = Report::default();
    println!(
        "invitesync bench ({} mode, {} cores); the sandbox runs as its own process on 127.0.0.1",
        if s.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let steps: [(&str, ScenarioFn); 6] = [
        ("overhead", overhead::overhead_and_curl),
        ("latency", latency::latency_bound),
        ("adaptive", adaptive::adaptive),
        ("ratelimit", rate_limit::rate_limit),
        ("memory", memory::memory_and_resume),
        ("checkpoint", checkpoint::checkpoint),
    ];
    for (name, step) in steps {
        let wanted = match name {
            "overhead" => s.wants("overhead") || s.wants("curl"),
            "memory" => s.wants("memory") || s.wants("resume"),
            other => s.wants(other),
        };
        if !wanted {
            continue;
        }
        let t = Instant::now();
        if let Err(e) = step(s, &rt, &mut report) {
            println!("  !! {name}: {e}");
            report.details.push(format!("{name}: failed: {e}"));
            report.row(name, format!("failed: {e}"), "-", None);
        }
        println!("  ({name} took {:.0} s)", t.elapsed().as_secs_f64());
    }
    let table = report.table();
    println!("\n{table}");
    let total = started.elapsed();
    println!("bench took {:.0} s", total.as_secs_f64());
    let mut md = String::new();
    let _ = writeln!(md, "# invitesync benchmark report\n");
    let _ = writeln!(
        md,
        "`{}make bench` ({} mode), {} cores, {:.0} s in all. Every figure is a ratio of two \
         things measured side by side in this run.\n",
        if s.quick { "BENCH_QUICK=1 " } else { "" },
        if s.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        total.as_secs_f64()
    );
    md.push_str(&table);
    md.push_str("\n## Details\n\n");
    for d in &report.details {
        let _ = writeln!(md, "- {d}");
    }
    let path = s.out.join("report.md");
    std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("report: {}", path.display());
    Ok(report)
}

type ScenarioFn = fn(&Settings, &Runtime, &mut Report) -> Res<()>;
