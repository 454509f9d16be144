//! `--shard K/N`: the shards cover the file exactly once, keep an invite's
//! rows together, each with its own state file, and share a rate limit.

use std::collections::{BTreeMap, BTreeSet};

use invitesync::sandbox::{Faults, Kind};
use invitesync::state::StateFile;

use crate::common::{HEADER, World, column, read_csv};
use crate::model::{count, row, set_faults, updates};
use crate::{lossy, piped, text_of};

#[test]
fn shards_cover_the_file_exactly_once() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::start(None, ""));
    let cfg = world.config.to_str().expect("utf-8").to_string();
    // Distinct invites, some invites twice (different values, in order),
    // and a few invalid rows: every row must belong to exactly one shard.
    let mut text = String::from(HEADER) + "\n";
    let mut notes = Vec::new();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..1500 {
        let (line, k) = row(i, 0);
        text.push_str(&line);
        text.push('\n');
        notes.push(format!("r{i}"));
        *expected.entry(k).or_default() += 1;
        if i % 50 == 1 {
            let (line, k) = row(i, 1);
            text.push_str(&line.replace(&format!(",r{i}"), &format!(",again{i}")));
            text.push('\n');
            notes.push(format!("again{i}"));
            *expected.entry(k).or_default() += 1;
        }
        if i % 100 == 7 {
            text.push_str(&format!("gate,ev1,bad{i},,,,,maybe,,bad{i}\n"));
            notes.push(format!("bad{i}"));
        }
    }
    world.write("export.csv", &text);

    // Three processes at once, as an Indexed Job's pods, K from the environment.
    let children: Vec<_> = (0..3)
        .map(|k| {
            let state = format!("shard-{k}.db");
            let summary = format!("summary-{k}.json");
            let index = k.to_string();
            piped(
                &world,
                &[
                    "run",
                    "export.csv",
                    "--config",
                    &cfg,
                    "--shard",
                    "auto/3",
                    "--state",
                    &state,
                    "--summary-json",
                    &summary,
                ],
                &[("JOB_COMPLETION_INDEX", index.as_str())],
            )
            .spawn()
            .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("shard ends");
        assert_eq!(
            out.status.code(),
            Some(1),
            "invalid rows need attention: {}",
            text_of(&out)
        );
    }
    assert_eq!(updates(&world), expected, "every change applied once");

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for k in 0..3 {
        let results = read_csv(&world.path(&format!("export.results.shard-{k}-of-3.csv")));
        let mine = column(&results, "note");
        assert!(
            mine.len() > notes.len() / 5,
            "shard {k} has a fair share: {}",
            mine.len()
        );
        let outs = column(&results, "outcome");
        let invites = column(&results, "invite_id");
        let vendors = column(&results, "vendor");
        for ((note, outcome), invite) in mine.iter().zip(&outs).zip(&invites) {
            assert!(seen.insert(note.clone(), k).is_none(), "{note} twice");
            let want = if note.starts_with("bad") {
                "invalid"
            } else {
                "updated"
            };
            assert_eq!(outcome, want, "{note} in shard {k} ({invite})");
        }
        // Both rows of an invite go to the same shard.
        for (note, (v, inv)) in mine.iter().zip(vendors.iter().zip(&invites)) {
            if let Some(i) = note.strip_prefix("again") {
                assert!(
                    mine.contains(&format!("r{i}")),
                    "{v}/{inv}: both rows in shard {k}"
                );
            }
        }
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(world.path(&format!("summary-{k}.json"))).expect("summary"),
        )
        .expect("summary is JSON");
        assert_eq!(summary["shard"], format!("{k}/3"));
        assert_eq!(
            summary["totals"]["updated"].as_u64(),
            Some(count(&outs, "updated") as u64)
        );
        // Each shard has its own state file and run.
        let state = StateFile::open(&world.path(&format!("shard-{k}.db"))).expect("state");
        assert_eq!(state.list_runs().expect("runs").len(), 1);
    }
    let all: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(all, notes.iter().cloned().collect::<BTreeSet<_>>());

    // Run again: each shard's ledger knows its rows; nothing is sent but
    // the invites changed twice in the file. The ledger holds an invite's
    // last change, so the first of the two differs from it and both go again
    // (in order, ending where the file says).
    world.sandbox.reset_stats();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let state = format!("shard-{k}.db");
        let out = world.cli_env(
            &[
                "run",
                "export.csv",
                "--config",
                &cfg,
                "--shard",
                &shard,
                "--state",
                &state,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    }
    let twice: BTreeMap<String, u64> = expected.into_iter().filter(|(_, n)| *n == 2).collect();
    assert_eq!(twice.len(), 30);
    assert_eq!(updates(&world), twice);

    // Without --state, each shard gets a state file of its own: two shards
    // started side by side on one disk do not lock each other out.
    let children: Vec<_> = (0..2)
        .map(|k| {
            let shard = format!("{k}/2");
            piped(
                &world,
                &["run", "export.csv", "--config", &cfg, "--shard", &shard],
                &[],
            )
            .spawn()
            .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("shard ends");
        assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    }
    for k in 0..2 {
        assert!(
            world
                .path(&format!("invitesync.shard-{k}-of-2.db"))
                .exists()
        );
    }

    // `auto` needs the index; without it the command is refused as usage.
    let out = world.cli_env(
        &["run", "export.csv", "--config", &cfg, "--shard", "auto/3"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(lossy(&out.stderr).contains("JOB_COMPLETION_INDEX"));
    rt.block_on(async { drop(world) });
}

/// Two shards share a configured rate limit: each keeps to its half. The
/// sandbox admits 40 requests a second to Securegate (with a burst of 30): a
/// shard that sent at the whole 80/s would be answered 429 once the burst is
/// spent, one that keeps to its 40/s never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_keeps_its_share_of_a_rate_limit() {
    let world = World::start(None, "").await;
    world.edit_config(&[(
        "api_key = { file = \"secrets/gate\" }",
        "api_key = { file = \"secrets/gate\" }\nrate_limit = \"80/s\"",
    )]);
    let limit = Faults {
        rate_limit: Some(40.0),
        burst: Some(30.0),
        ..Faults::default()
    };
    set_faults(&world, Faults::default(), &[(Kind::Securegate, limit)]);
    let mut text = String::from(HEADER) + "\n";
    for i in 0..240 {
        text.push_str(&format!("gate,ev1,rl{i},,,,,sent,,\n"));
    }
    let input = world.write("rl.csv", &text);
    let mut opts = world.options(&input);
    opts.shard = Some((0, 2));
    let report = world.run_with(opts).await.expect("run");
    assert_eq!(report.exit_code, 0);
    let gate = world.sandbox.vendor_stats().vendor(Kind::Securegate);
    assert!(
        gate.requests > 80 && gate.requests < 160,
        "about half the rows: {}",
        gate.requests
    );
    assert_eq!(
        gate.status(429),
        0,
        "{} requests, {} answered 429: faster than half of 80/s",
        gate.requests,
        gate.status(429)
    );
}
