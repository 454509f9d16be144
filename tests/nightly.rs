//! Nightly reconciliation, end to end: the full desired state is exported
//! every night, most rows have not changed, and only what changed may reach
//! the vendors, in order, with no terminal, from cron, a systemd timer or a
//! Kubernetes Indexed Job.
//!
//! Every test counts what the sandbox received, per invite, and compares it
//! with a model of what should have been sent: the last value each invite
//! was given (what the ledger should hold).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{HEADER, ORG, World, column, read_csv};
use invitesync::outcome::Outcome;
use invitesync::sandbox::{FaultSettings, Faults, Kind};
use invitesync::state::StateFile;

const ROWS: usize = 2000;
const GATE: [&str; 4] = ["pending", "sent", "accepted", "rejected"];
const HUB: [&str; 2] = ["accepted", "rejected"];
const ROLES: [&str; 3] = ["ORG_MEMBER", "ORG_OWNER;ORG_MEMBER", "ORG_READ_ONLY"];

/// Invite `i` at version `v`, as an input row (its `note` is `r{i}`), and
/// the invite's key in the sandbox's statistics. Every vendor takes a share;
/// any two versions of one invite differ in what is sent.
fn row(i: usize, v: u32) -> (String, String) {
    let v = v as usize;
    match i % 4 {
        0 => (
            format!(
                "mighty,acme,{},u{i}@example.com,First{v},Last,,,,r{i}",
                100_000 + i
            ),
            format!("mighty_networks/acme/{}", 100_000 + i),
        ),
        1 => (
            format!("gate,ev1,inv{i},,,,,{},,r{i}", GATE[v % 4]),
            format!("securegate/ev1/inv{i}"),
        ),
        2 => (
            format!("om,{ORG},,u{i}@example.com,,,,,{},r{i}", ROLES[v % 3]),
            format!("ops_manager/{ORG}/u{i}@example.com"),
        ),
        _ => (
            format!("hub,,uuid-{i},,,,,{},,r{i}", HUB[v % 2]),
            format!("ctrl_hub/uuid-{i}"),
        ),
    }
}

fn key(i: usize) -> String {
    row(i, 0).1
}

/// The whole desired state: one row per invite, at its version.
fn file(versions: &[u32]) -> String {
    let mut text = String::from(HEADER) + "\n";
    for (i, v) in versions.iter().enumerate() {
        text.push_str(&row(i, *v).0);
        text.push('\n');
    }
    text
}

/// Bumps the version of `count` distinct invites picked by `seed`; returns them.
fn change(versions: &mut [u32], count: usize, seed: u64) -> BTreeSet<usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut picked = BTreeSet::new();
    while picked.len() < count {
        picked.insert(rng.usize(..versions.len()));
    }
    for &i in &picked {
        versions[i] += 1;
    }
    picked
}

/// Updates the sandbox applied per invite since its statistics were reset.
fn updates(world: &World) -> BTreeMap<String, u64> {
    world
        .sandbox
        .stats()
        .invites
        .into_iter()
        .filter(|(_, s)| s.updates > 0)
        .map(|(k, s)| (k, s.updates))
        .collect()
}

/// Each of `rows` applied exactly once, and nothing else.
fn once_each(rows: impl IntoIterator<Item = usize>) -> BTreeMap<String, u64> {
    rows.into_iter().map(|i| (key(i), 1)).collect()
}

/// Requests that reached any vendor since the statistics were reset, not
/// counting digest challenges (a 401 that only hands out a nonce).
fn requests(world: &World) -> u64 {
    let stats = world.sandbox.vendor_stats();
    Kind::ALL
        .iter()
        .map(|k| {
            let v = stats.vendor(*k);
            v.requests - v.status(401)
        })
        .sum()
}

fn outcomes(path: &Path) -> Vec<String> {
    column(&read_csv(path), "outcome")
}

fn count(list: &[String], outcome: &str) -> usize {
    list.iter().filter(|o| o.as_str() == outcome).count()
}

/// Runs the binary in the world's directory with `env`, stdin closed and
/// stdout/stderr captured: no terminal anywhere, as under cron.
fn cli_env(world: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = unattended(world, args, env);
    cmd.output().expect("binary runs")
}

fn unattended(world: &World, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_invitesync"));
    cmd.current_dir(world.dir.path())
        .env_remove("RUST_LOG")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("INVITESYNC_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every line of `stderr` parsed as JSON; fails naming the first that is not.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nwhole stderr:\n{stderr}"))
        })
        .collect()
}

fn set_faults(world: &World, global: Faults, vendors: &[(Kind, Faults)]) {
    world
        .sandbox
        .set_faults(FaultSettings {
            global,
            vendors: vendors.iter().cloned().collect(),
        })
        .expect("faults");
}

fn latency(ms: u64) -> Faults {
    Faults {
        latency_ms: Some(ms),
        ..Faults::default()
    }
}

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
async fn many_rows_for_one_invite_land_in_file_order_and_others_do_not_wait() {
    let world = World::start(None, "").await;
    set_faults(&world, latency(3), &[]);
    // 500 changes to one invite first, each different from the one before,
    // then 2,000 other invites: they must get past the queue of the first.
    let mut rng = fastrand::Rng::with_seed(3);
    let mut text = String::from(HEADER) + "\n";
    let mut hot = Vec::new();
    let mut s = 0usize;
    for _ in 0..500 {
        s = (s + 1 + rng.usize(..3)) % 4;
        text.push_str(&format!("gate,ev1,hot,,,,,{},,\n", GATE[s]));
        hot.push(GATE[s].to_string());
    }
    for i in 0..2000 {
        text.push_str(&format!("gate,ev2,cold{i},,,,,sent,,\n"));
    }
    let input = world.write("order.csv", &text);
    let mut opts = world.options(&input);
    opts.fixed_concurrency = true;
    let report = world.run_with(opts).await.expect("run");
    assert_eq!(report.exit_code, 0);

    let stats = world.sandbox.stats();
    let applied = &stats.invite("securegate/ev1/hot").expect("hot").applied;
    let landed: Vec<String> = applied
        .iter()
        .map(|a| match &a.value {
            invitesync::sandbox::AppliedValue::Status { status } => status.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(landed, hot, "the hot invite's changes land in file order");

    let mut last_cold = 0;
    for i in 0..2000 {
        let c = stats
            .invite(&format!("securegate/ev2/cold{i}"))
            .expect("cold invite");
        assert_eq!(c.updates, 1);
        last_cold = last_cold.max(c.applied[0].seq);
    }
    let hot_before = applied.iter().filter(|a| a.seq < last_cold).count();
    assert!(
        hot_before < 350,
        "the other invites finished while the hot one was still going \
         ({hot_before} of its 500 changes had landed)"
    );
}

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
            unattended(
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
        let out = cli_env(
            &world,
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
            unattended(
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
    let out = cli_env(
        &world,
        &["run", "export.csv", "--config", &cfg, "--shard", "auto/3"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(lossy(&out.stderr).contains("JOB_COMPLETION_INDEX"));
    rt.block_on(async { drop(world) });
}

fn text_of(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    )
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
    let out = cli_env(
        &world,
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
    assert!(summary["duration_seconds"].as_f64().expect("duration") > 0.0);
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
    let out = cli_env(
        &world,
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
    let out = cli_env(
        &world,
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
    let times: Vec<std::time::SystemTime> = json_lines(&err)
        .iter()
        .filter(|l| l["message"] == "progress")
        .map(|l| {
            humantime::parse_rfc3339_weak(l["timestamp"].as_str().expect("timestamp"))
                .expect("a time")
        })
        .collect();
    assert!(times.len() >= 2, "{err}");
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).expect("in order");
        assert!(
            gap >= Duration::from_millis(25),
            "lines {gap:?} apart: {err}"
        );
    }

    // Text logs: the same line as a sentence, still no bar.
    world.sandbox.reset_stats();
    let out = cli_env(
        &world,
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

#[test]
fn json_logs_are_json_on_every_line() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let world = rt.block_on(World::start(None, ""));
    set_faults(&world, latency(2), &[]);
    let cfg = world.config.to_str().expect("utf-8").to_string();
    world.write("mixed.csv", &mixed());
    let out = cli_env(
        &world,
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
        let out = cli_env(&world, &args, &env);
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
        let out = cli_env(&world, &args, &[]);
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

/// What the vendors should hold: the last value each invite was given.
struct Model {
    applied: HashMap<usize, u32>,
}

impl Model {
    /// The rows a run of `versions` should send, vendors in `down` excepted;
    /// records them as applied.
    fn send(&mut self, versions: &[u32], down: Option<usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for (i, v) in versions.iter().enumerate() {
            if Some(i % 4) == down {
                continue;
            }
            if self.applied.get(&i) != Some(v) {
                self.applied.insert(i, *v);
                out.insert(i);
            }
        }
        out
    }
}

fn gate_refuses(world: &World) {
    set_faults(
        world,
        Faults::default(),
        &[(
            Kind::Securegate,
            Faults {
                reject_auth: Some(true),
                ..Faults::default()
            },
        )],
    );
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

/// A row queued behind its invite must not be judged against a ledger
/// lookup made before an earlier row of the same invite was applied, even
/// when the row in between was refused and other rows moved the commit
/// watermark on meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_row_sees_what_its_invite_received_before_it() {
    let world = World::start(None, "").await;
    let email = "queue@example.com";
    let key = format!("ops_manager/{ORG}/{email}");
    let input = world.write(
        "q.csv",
        &format!("{HEADER}\nom,{ORG},,{email},,,,,ORG_MEMBER,\n"),
    );
    assert_eq!(world.run(&input).await.exit_code, 0);

    // Slow Ops Manager, so the rows behind the first wait long enough for
    // the writer to commit it while many Securegate rows are read.
    set_faults(
        &world,
        Faults::default(),
        &[
            (Kind::OpsManager, latency(1000)),
            (Kind::Securegate, latency(10)),
        ],
    );
    let mut text = format!(
        "{HEADER}\n\
         om,{ORG},,{email},,,,,ORG_OWNER,first\n\
         om,{ORG},,{email},,,,,ORG_WIZARD,refused\n\
         om,{ORG},,{email},,,,,ORG_MEMBER,back\n"
    );
    for i in 0..6000 {
        text.push_str(&format!("gate,ev1,q{i},,,,,sent,,\n"));
    }
    world.write("q.csv", &text);
    world.sandbox.reset_stats();
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 1, "the refused row needs attention");
    let outs = outcomes(&world.path("q.results.csv"));
    assert_eq!(&outs[..3], ["updated", "rejected", "updated"]);
    let stats = world.sandbox.stats();
    let roles: Vec<_> = stats
        .invite(&key)
        .expect("invite")
        .applied
        .iter()
        .map(|a| serde_json::to_value(&a.value).expect("json")["roles"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            serde_json::json!(["ORG_OWNER"]),
            serde_json::json!(["ORG_MEMBER"])
        ],
        "the vendor ends with the file's last value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_keeps_its_share_of_a_rate_limit() {
    let world = World::start(None, "").await;
    let cfg = std::fs::read_to_string(&world.config)
        .expect("config")
        .replace(
            "api_key = { file = \"secrets/gate\" }",
            "api_key = { file = \"secrets/gate\" }\nrate_limit = \"80/s\"",
        );
    std::fs::write(&world.config, cfg).expect("config");
    let mut text = String::from(HEADER) + "\n";
    for i in 0..120 {
        text.push_str(&format!("gate,ev1,rl{i},,,,,sent,,\n"));
    }
    let input = world.write("rl.csv", &text);
    let mut opts = world.options(&input);
    opts.shard = Some((0, 2));
    let start = std::time::Instant::now();
    let report = world.run_with(opts).await.expect("run");
    let took = start.elapsed().as_secs_f64();
    assert_eq!(report.exit_code, 0);
    let sent = world
        .sandbox
        .vendor_stats()
        .vendor(Kind::Securegate)
        .requests;
    assert!(sent > 30 && sent < 90, "about half the rows: {sent}");
    // Two shards share 80/s: this one keeps to 40/s (a burst of a couple aside).
    let floor = (sent as f64 - 2.0) / 40.0;
    assert!(
        took >= floor * 0.9,
        "{sent} requests took {took:.2}s, faster than 40/s allows"
    );
}
