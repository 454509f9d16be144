//! `--dry-run`: the plan, and nothing sent, recorded or created.

use invitesync::outcome::Outcome;
use invitesync::state::StateFile;

use crate::common::World;
use crate::lossy;
use crate::model::{change, file, requests};
use crate::text_of;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_sends_nothing_and_records_nothing() {
    let world = World::start(None, "").await;
    let mut versions = vec![0; 400];
    let mut text = file(&versions);
    text.push_str("gate,ev1,x,,,,,maybe,,bad\n");
    // The same change twice: a real run sends it once, so the plan says so.
    text.push_str("gate,ev1,twice,,,,,sent,,t1\ngate,ev1,twice,,,,,sent,,t2\n");
    let input = world.write("nightly.csv", &text);
    let mut opts = world.options(&input);
    opts.dry_run = true;
    let plan = world.run_with(opts.clone()).await.expect("dry run");
    assert_eq!(requests(&world), 0);
    assert!(
        !world.path("invitesync.db").exists(),
        "a dry run creates no state file"
    );
    assert!(plan.run_id.is_none());
    assert_eq!(plan.exit_code, 1, "an invalid row needs attention");
    assert_eq!(plan.dry_run.would_send, 401);
    assert_eq!(plan.total(Outcome::Updated), 401);
    assert_eq!(plan.total(Outcome::Unchanged), 1);
    assert_eq!(plan.total(Outcome::Invalid), 1);
    let gate = plan
        .counts
        .iter()
        .find(|(v, _)| v.as_deref() == Some("gate"))
        .expect("gate counted");
    assert_eq!(gate.1[Outcome::Updated.index()], 101);

    let real = world.run(&input).await;
    assert_eq!(real.total(Outcome::Updated), 401);

    let changed = change(&mut versions, 10, 11);
    world.write("nightly.csv", &file(&versions));
    world.sandbox.reset_stats();
    let plan = world.run_with(opts).await.expect("dry run");
    assert_eq!(plan.dry_run.would_send, 10);
    assert_eq!(plan.total(Outcome::Unchanged), 390);
    assert_eq!(requests(&world), 0, "the sandbox received nothing");
    let state = StateFile::open(&world.path("invitesync.db")).expect("state");
    assert_eq!(state.list_runs().expect("runs").len(), 1, "no run recorded");

    let cfg = world.config.to_str().expect("utf-8").to_string();
    let out = world.cli(&["run", "nightly.csv", "--config", &cfg, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let err = lossy(&out.stderr);
    assert!(err.contains("would send"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert_eq!(requests(&world), 0);
    assert_eq!(state.list_runs().expect("runs").len(), 1);
    assert_eq!(changed.len(), 10);
}
