//! Nights in a row: each sends exactly that night's changes, and an input
//! edited between a stop and its resume is refused, then run afresh.

use std::collections::{BTreeSet, HashMap};

use invitesync::outcome::Outcome;
use invitesync::sandbox::Faults;
use invitesync::state::StateFile;

use crate::common::World;
use crate::model::{
    Model, ROWS, change, count, file, gate_refuses, once_each, outcomes, requests, set_faults,
    updates,
};
use crate::{json_lines, lossy, text_of};

/// The command a scheduler runs every night (README, "Running unattended").
fn nightly_args(cfg: &str) -> Vec<String> {
    [
        "run",
        "export.csv",
        "--config",
        cfg,
        "--state",
        "invitesync.db",
        "--results",
        "invites.results.csv",
        "--new-run",
        "--log-format",
        "json",
        "--summary-json",
        "summary.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_simulated_week_sends_exactly_the_changes() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::start(None, ""));
    let cfg = world.config.to_str().expect("utf-8").to_string();
    let args = nightly_args(&cfg);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut versions = vec![0; ROWS];
    for night in 0..7u64 {
        let changed: BTreeSet<usize> = if night == 0 {
            (0..ROWS).collect()
        } else {
            // A few percent, a different few each night.
            change(&mut versions, ROWS * (2 + night as usize % 3) / 100, night)
        };
        world.write("export.csv", &file(&versions));
        world.sandbox.reset_stats();
        let out = world.cli_env(&args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "night {night}: {}",
            text_of(&out)
        );
        json_lines(&lossy(&out.stderr));
        assert_eq!(
            updates(&world),
            once_each(changed.iter().copied()),
            "night {night}: the sandbox received exactly the changes"
        );
        assert_eq!(requests(&world), changed.len() as u64, "night {night}");
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(world.path("summary.json")).expect("summary"),
        )
        .expect("summary is JSON");
        assert_eq!(summary["totals"]["updated"], changed.len() as u64);
        assert_eq!(
            summary["totals"]["unchanged"],
            (ROWS - changed.len()) as u64
        );
        assert_eq!(summary["exit_code"], 0);
        let out = outcomes(&world.path("invites.results.csv"));
        assert_eq!(count(&out, "updated"), changed.len(), "night {night}");
    }
    let state = StateFile::open(&world.path("invitesync.db")).expect("state");
    assert_eq!(state.list_runs().expect("runs").len(), 7, "a run per night");
    rt.block_on(async { drop(world) });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_input_is_not_a_crisis() {
    const N: usize = 800;
    let world = World::start(None, "").await;
    let mut model = Model {
        applied: HashMap::new(),
    };
    let mut versions = vec![0; N];
    let input = world.write("nightly.csv", &file(&versions));

    // Securegate refuses our key: its rows stay pending, the run can resume.
    gate_refuses(&world);
    let first = world.run(&input).await;
    assert_eq!(first.exit_code, 3);
    assert_eq!(first.pending, (N / 4) as u64);
    assert_eq!(updates(&world), once_each(model.send(&versions, Some(1))));

    // Fixed; the same command resumes and sends only what was pending.
    set_faults(&world, Faults::default(), &[]);
    world.sandbox.reset_stats();
    let resumed = world.run(&input).await;
    assert!(resumed.resumed);
    assert_eq!(resumed.run_id, first.run_id);
    assert_eq!(resumed.exit_code, 0);
    assert_eq!(updates(&world), once_each(model.send(&versions, None)));

    // The next night: a few rows edited, and Securegate down again.
    change(&mut versions, 40, 5);
    world.write("nightly.csv", &file(&versions));
    gate_refuses(&world);
    world.sandbox.reset_stats();
    let night = world.run(&input).await;
    assert!(!night.resumed, "the finished run is not resumed");
    assert_ne!(night.run_id, first.run_id);
    assert_eq!(night.exit_code, 3);
    assert_eq!(updates(&world), once_each(model.send(&versions, Some(1))));

    // The user fixes a few more rows of the same file: it cannot resume.
    change(&mut versions, 10, 6);
    world.write("nightly.csv", &file(&versions));
    set_faults(&world, Faults::default(), &[]);
    world.sandbox.reset_stats();
    let refused = world
        .run_with(world.options(&input))
        .await
        .expect_err("a changed input is not resumed");
    assert_eq!(refused.code, 2);
    assert!(refused.message.contains("--new-run"), "{}", refused.message);
    assert_eq!(requests(&world), 0);

    // --new-run: what the ledger holds ends `unchanged`; only the rest is sent.
    let mut opts = world.options(&input);
    opts.new_run = true;
    let fresh = world.run_with(opts).await.expect("new run");
    assert_eq!(fresh.exit_code, 0);
    let sent = model.send(&versions, None);
    assert_eq!(updates(&world), once_each(sent.iter().copied()));
    assert_eq!(fresh.total(Outcome::Updated), sent.len() as u64);
    assert_eq!(fresh.total(Outcome::Unchanged), (N - sent.len()) as u64);
    let state = StateFile::open(&world.path("invitesync.db")).expect("state");
    let runs = state.list_runs().expect("runs");
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[1].status.as_str(), "abandoned");
    assert_eq!(runs[2].status.as_str(), "finished");
}
