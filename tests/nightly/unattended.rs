//! No terminal: progress as log lines, JSON logs on every line, and a
//! summary file that matches the results.

use std::collections::BTreeMap;

use crate::common::{ORG, World, column, read_csv};
use crate::model::{ROWS, count, file, latency, set_faults};
use crate::{json_lines, lossy, text_of};

/// Rows with every kind of ending, for the summary to count.
fn mixed() -> String {
    let mut text = file(&[0; 200]);
    text.push_str("gate,ev1,x,,,,,maybe,,bad1\n");
    text.push_str("nobody,ev1,x,,,,,sent,,bad2\n");
    text.push_str(&format!("om,{ORG},,wiz@example.com,,,,,ORG_WIZARD,rej1\n"));
    text
}

#[test]
fn the_summary_json_matches_the_results_file() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::start(None, ""));
    let cfg = world.config.to_str().expect("utf-8").to_string();
    world.write("mixed.csv", &mixed());
    let out = world.cli_env(
        &[
            "run",
            "mixed.csv",
            "--config",
            &cfg,
            "--summary-json",
            "summary.json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(world.path("summary.json")).expect("summary written"),
    )
    .expect("summary is JSON");
    assert_eq!(summary["exit_code"], 1);
    assert!(summary["duration_seconds"].is_number(), "{summary}");
    assert!(summary["started_at"].is_string(), "{summary}");
    assert!(summary["finished_at"].is_string(), "{summary}");

    let results = read_csv(&world.path("mixed.results.csv"));
    let vendors = column(&results, "vendor");
    let outs = column(&results, "outcome");
    let mut from_csv: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (v, o) in vendors.iter().zip(&outs) {
        let v = if v == "nobody" { "(no vendor)" } else { v };
        *from_csv.entry((v.to_string(), o.clone())).or_default() += 1;
    }
    let mut from_json: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (v, counts) in summary["vendors"].as_object().expect("vendors") {
        for (o, n) in counts.as_object().expect("counts") {
            let n = n.as_u64().expect("count");
            if n > 0 {
                from_json.insert((v.clone(), o.clone()), n);
            }
        }
    }
    assert_eq!(from_json, from_csv);
    for o in ["updated", "unchanged", "invalid", "rejected", "failed"] {
        assert_eq!(
            summary["totals"][o].as_u64(),
            Some(count(&outs, o) as u64),
            "{o}"
        );
    }
    assert_eq!(summary["totals"]["updated"], 200);
    assert_eq!(summary["totals"]["rejected"], 1);
    assert_eq!(summary["totals"]["invalid"], 2);

    // A refused start still leaves a summary with its exit code.
    let out = world.cli_env(
        &[
            "run",
            "missing.csv",
            "--config",
            &cfg,
            "--summary-json",
            "summary.json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(world.path("summary.json")).expect("summary written"),
    )
    .expect("summary is JSON");
    assert_eq!(summary["exit_code"], 2);
    rt.block_on(async { drop(world) });
}

#[test]
fn without_a_terminal_progress_is_a_line_at_a_steady_interval() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::start(None, ""));
    set_faults(&world, latency(2), &[]);
    let cfg = world.config.to_str().expect("utf-8").to_string();
    world.write("nightly.csv", &file(&[0; ROWS]));
    let out = world.cli_env(
        &[
            "run",
            "nightly.csv",
            "--config",
            &cfg,
            "--log-format",
            "json",
            "--log-interval",
            "50ms",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let err = lossy(&out.stderr);
    assert!(
        !err.contains('\r') && !err.contains('\u{1b}'),
        "no bar: {err}"
    );
    // Lines at the interval, not one per row: each says how far the run
    // is, and they only move forward.
    let progress: Vec<serde_json::Value> = json_lines(&err)
        .into_iter()
        .filter(|l| l["message"] == "progress")
        .collect();
    assert!(progress.len() >= 2, "{err}");
    assert!(progress.len() < ROWS / 2, "a line per row? {err}");
    let done: Vec<u64> = progress
        .iter()
        .map(|l| l["rows_done"].as_u64().expect("rows_done"))
        .collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    for l in &progress {
        assert_eq!(l["rows_total"], ROWS as u64, "{l}");
    }

    // Text logs: the same line as a sentence, still no bar.
    world.sandbox.reset_stats();
    let out = world.cli_env(
        &[
            "run",
            "nightly.csv",
            "--config",
            &cfg,
            "--force",
            "--log-interval",
            "50ms",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let err = lossy(&out.stderr);
    assert!(err.contains("progress: "), "{err}");
    assert!(
        !err.contains('\r') && !err.contains('\u{1b}'),
        "no bar: {err}"
    );
    rt.block_on(async { drop(world) });
}

#[test]
fn json_logs_are_json_on_every_line() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::start(None, ""));
    set_faults(&world, latency(2), &[]);
    let cfg = world.config.to_str().expect("utf-8").to_string();
    world.write("mixed.csv", &mixed());
    let out = world.cli_env(
        &[
            "run",
            "mixed.csv",
            "--config",
            &cfg,
            "--log-format",
            "json",
            "--log-interval",
            "20ms",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    let lines = json_lines(&lossy(&out.stderr));
    let progress: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "progress")
        .collect();
    assert!(!progress.is_empty(), "progress lines at the interval");
    for p in &progress {
        assert!(p["rows_done"].is_u64(), "{p}");
        assert!(p["updated"].is_u64(), "{p}");
    }
    let end = lines
        .iter()
        .find(|l| l["message"] == "run finished")
        .expect("a summary line");
    assert_eq!(end["exit_code"], 1);
    assert_eq!(end["updated"], 200);
    assert_eq!(end["invalid"], 2);
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "vendor summary" && l["vendor"] == "gate"),
        "a line per vendor"
    );

    // Errors too, including usage errors, and from the environment.
    for (args, env) in [
        (
            vec![
                "run",
                "missing.csv",
                "--config",
                cfg.as_str(),
                "--log-format",
                "json",
            ],
            vec![],
        ),
        (
            vec![
                "run",
                "mixed.csv",
                "--config",
                cfg.as_str(),
                "--shard",
                "9/3",
            ],
            vec![("INVITESYNC_LOG_FORMAT", "json")],
        ),
        (
            vec!["run", "--log-format", "json", "--no-such-flag"],
            vec![],
        ),
    ] {
        let out = world.cli_env(&args, &env);
        assert_eq!(out.status.code(), Some(2), "{}", text_of(&out));
        let lines = json_lines(&lossy(&out.stderr));
        assert!(
            lines.iter().any(|l| l["level"] == "ERROR"),
            "{}",
            text_of(&out)
        );
    }
    rt.block_on(async { drop(world) });
}
