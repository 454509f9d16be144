//! The ledger: what was applied is not sent again, what changed is, and
//! `--force` and `--recheck-after` send anyway.

use std::time::Duration;

use invitesync::outcome::Outcome;

use crate::common::{HEADER, World};
use crate::model::{ROWS, change, count, file, once_each, outcomes, requests, row, updates};
use crate::text_of;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_the_same_file_sends_nothing() {
    let world = World::start(None, "").await;
    let input = world.write("nightly.csv", &file(&[0; ROWS]));

    let first = world.run(&input).await;
    assert_eq!(first.exit_code, 0);
    assert_eq!(first.total(Outcome::Updated), ROWS as u64);
    assert_eq!(updates(&world), once_each(0..ROWS));

    world.sandbox.reset_stats();
    let second = world.run(&input).await;
    assert_eq!(second.exit_code, 0);
    assert!(
        !second.resumed,
        "a finished run is not resumed: the same command starts a new run"
    );
    assert_ne!(second.run_id, first.run_id);
    assert_eq!(second.total(Outcome::Unchanged), ROWS as u64);
    assert_eq!(requests(&world), 0, "nothing reached any vendor");
    let out = outcomes(&world.path("nightly.results.csv"));
    assert_eq!(out.len(), ROWS);
    assert_eq!(count(&out, "unchanged"), ROWS, "every row is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_percent_changed_exactly_that_one_percent_is_sent() {
    let world = World::start(None, "").await;
    let mut versions = vec![0; ROWS];
    let input = world.write("nightly.csv", &file(&versions));
    assert_eq!(world.run(&input).await.exit_code, 0);

    let changed = change(&mut versions, ROWS / 100, 7);
    world.write("nightly.csv", &file(&versions));
    world.sandbox.reset_stats();
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0);
    assert_eq!(updates(&world), once_each(changed.iter().copied()));
    assert_eq!(requests(&world), changed.len() as u64);
    assert_eq!(report.total(Outcome::Updated), changed.len() as u64);
    assert_eq!(
        report.total(Outcome::Unchanged),
        (ROWS - changed.len()) as u64
    );
    let out = outcomes(&world.path("nightly.results.csv"));
    for (i, o) in out.iter().enumerate() {
        let want = if changed.contains(&i) {
            "updated"
        } else {
            "unchanged"
        };
        assert_eq!(o, want, "row {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_and_recheck_after_send_again() {
    let world = World::start(None, "").await;
    let input = world.write("nightly.csv", &file(&[0; 400]));
    assert_eq!(world.run(&input).await.exit_code, 0);

    world.sandbox.reset_stats();
    let mut opts = world.options(&input);
    opts.force = true;
    let forced = world.run_with(opts).await.expect("run");
    assert_eq!(forced.total(Outcome::Updated), 400);
    assert_eq!(
        updates(&world),
        once_each(0..400),
        "--force sends every row"
    );

    world.sandbox.reset_stats();
    let mut opts = world.options(&input);
    opts.recheck_after = Some(Duration::from_secs(3600));
    let recent = world.run_with(opts).await.expect("run");
    assert_eq!(recent.total(Outcome::Unchanged), 400);
    assert_eq!(requests(&world), 0, "entries younger than an hour hold");

    world.sandbox.reset_stats();
    let mut opts = world.options(&input);
    opts.recheck_after = Some(Duration::ZERO);
    let all = world.run_with(opts).await.expect("run");
    assert_eq!(all.total(Outcome::Updated), 400);
    assert_eq!(updates(&world), once_each(0..400), "0s re-sends everything");

    // From the command line too.
    world.sandbox.reset_stats();
    let cfg = world.config.to_str().expect("utf-8").to_string();
    let out = world.cli(&[
        "run",
        "nightly.csv",
        "--config",
        &cfg,
        "--recheck-after",
        "0s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    assert_eq!(updates(&world), once_each(0..400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_shared_by_every_input_of_a_state_file() {
    let world = World::start(None, "").await;
    let rows = |range: std::ops::Range<usize>| {
        let mut text = String::from(HEADER) + "\n";
        for i in range {
            text.push_str(&row(i, 0).0);
            text.push('\n');
        }
        text
    };
    let monday = world.write("monday.csv", &rows(0..400));
    assert_eq!(world.run(&monday).await.exit_code, 0);
    world.sandbox.reset_stats();
    let tuesday = world.write("tuesday.csv", &rows(200..600));
    let report = world.run(&tuesday).await;
    assert_eq!(report.total(Outcome::Unchanged), 200);
    assert_eq!(updates(&world), once_each(400..600));
}
