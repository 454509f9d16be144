//! Kill the process at random moments, resume, and prove with the sandbox's
//! counts that nothing was lost and nothing finished was sent again.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{HEADER, ORG, World, read_csv};
use invitesync::sandbox::FaultSettings;
use invitesync::state::StateFile;

const ROWS: usize = 4000;

/// Every row a distinct invite, so a repeat of an invite is a repeat of a row.
fn input() -> (String, Vec<String>) {
    let mut text = String::from(HEADER) + "\n";
    let mut keys = Vec::new();
    let statuses = ["sent", "accepted", "rejected", "pending"];
    for i in 0..ROWS {
        let (row, key) = match i % 10 {
            0 => (
                format!(
                    "mighty,acme,{},user{i}@example.com,First{i},,,,,n{i}",
                    10_000 + i
                ),
                Some(format!("mighty_networks/acme/{}", 10_000 + i)),
            ),
            1 => (
                format!("om,{ORG},,user{i}@example.com,,,,,ORG_MEMBER,n{i}"),
                Some(format!("ops_manager/{ORG}/user{i}@example.com")),
            ),
            2 => (
                format!("hub,,uuid-{i},,,,,accepted,,n{i}"),
                Some(format!("ctrl_hub/uuid-{i}")),
            ),
            3 if i % 100 == 3 => (format!("gate,ev1,inv{i},,,,,maybe,,n{i}"), None),
            _ => (
                format!("gate,ev1,inv{i},,,,,{},,n{i}", statuses[i % 4]),
                Some(format!("securegate/ev1/inv{i}")),
            ),
        };
        text.push_str(&row);
        text.push('\n');
        if let Some(k) = key {
            keys.push(k);
        }
    }
    (text, keys)
}

fn slow(world: &World) {
    let mut f = FaultSettings::default();
    f.global.latency_ms = Some(4);
    f.global.jitter_ms = Some(4);
    world.sandbox.set_faults(f).expect("faults");
}

fn updates(world: &World) -> BTreeMap<String, u64> {
    world
        .sandbox
        .stats()
        .invites
        .into_iter()
        .map(|(k, s)| (k, s.updates))
        .collect()
}

fn done_rows(world: &World) -> HashSet<u64> {
    let db = world.path("invitesync.db");
    if !db.exists() {
        return HashSet::new();
    }
    let state = StateFile::open(&db).expect("state opens after a kill");
    let Some(run) = state.latest_run().expect("runs") else {
        return HashSet::new();
    };
    let mut done = HashSet::new();
    state
        .for_each_row(run.id, |r| -> Result<(), invitesync::state::StateError> {
            done.insert(r.index);
            Ok(())
        })
        .expect("rows");
    done
}

fn run_finished(world: &World) -> bool {
    let db = world.path("invitesync.db");
    db.exists()
        && StateFile::open(&db)
            .expect("state")
            .latest_run()
            .expect("runs")
            .is_some_and(|r| r.status == invitesync::state::RunStatus::Finished)
}

/// The results without what legitimately differs between runs.
fn comparable(path: &std::path::Path) -> Vec<Vec<String>> {
    let rows = read_csv(path);
    let header = rows[0].clone();
    let drop: Vec<usize> = ["attempts", "finished_at", "remote_updated_at"]
        .iter()
        .map(|c| header.iter().position(|h| h == c).expect("column"))
        .collect();
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_then_resume_loses_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (text, keys) = input();
    let row_of: BTreeMap<String, u64> = {
        // Data index of each invite's row (rows with keys only).
        let mut m = BTreeMap::new();
        let mut k = keys.iter();
        for (i, line) in text.lines().skip(1).enumerate() {
            if !line.contains(",maybe,") {
                m.insert(k.next().unwrap().clone(), i as u64);
            }
        }
        m
    };

    // Reference: one uninterrupted run.
    let reference = rt.block_on(World::start(None, ""));
    slow(&reference);
    let input = reference.write("invites.csv", &text);
    let cfg = reference.config.to_str().unwrap().to_string();
    let out = reference.cli(&["run", "invites.csv", "--config", &cfg, "--quiet"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = comparable(&input.with_file_name("invites.results.csv"));

    let world = rt.block_on(World::start(None, ""));
    slow(&world);
    world.write("invites.csv", &text);
    let cfg = world.config.to_str().unwrap().to_string();
    let mut kills = 0;
    let mut completed = false;
    let mut resent_after_done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0..6 {
        let before = updates(&world);
        let done = done_rows(&world);
        let mut child = world
            .command(&["run", "invites.csv", "--config", &cfg, "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let wait = Duration::from_millis(100 + fastrand::u64(0..400) + round * 50);
        std::thread::sleep(wait);
        let finished = child.try_wait().expect("try_wait").is_some();
        completed |= finished;
        if !finished {
            child.kill().expect("SIGKILL");
            kills += 1;
        }
        let _ = child.wait();
        // Rows recorded done before this attempt must not have been sent again by it.
        let after = updates(&world);
        for (key, n) in &after {
            if before.get(key).copied().unwrap_or(0) < *n
                && let Some(row) = row_of.get(key)
                && done.contains(row)
            {
                resent_after_done.push(key.clone());
            }
        }
        // A run can be killed after it recorded itself finished but before it
        // exited; another attempt would then start a new run (which is right
        // for a nightly job, not for this test).
        if finished || run_finished(&world) || Instant::now() > deadline {
            completed = true;
            break;
        }
    }
    assert!(kills >= 2, "the test must actually kill runs ({kills})");
    assert!(
        resent_after_done.is_empty(),
        "finished rows sent again: {resent_after_done:?}"
    );

    // Resume to the end, unless an attempt got there.
    let mut stderr = String::new();
    if !completed {
        let out = world.cli(&["run", "invites.csv", "--config", &cfg, "--quiet"]);
        stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("(resumed)"), "{stderr}");
    }
    let got = comparable(&world.path("invites.results.csv"));
    assert_eq!(got.len(), ROWS + 1);
    let differing: Vec<_> = got
        .iter()
        .zip(&expected)
        .filter(|(a, b)| a != b)
        .take(3)
        .collect();
    let status = String::from_utf8_lossy(&world.cli(&["status"]).stdout).into_owned();
    assert!(
        differing.is_empty(),
        "results differ from an uninterrupted run's after {kills} kills: {differing:?}\n{stderr}\n{status}"
    );

    let total = updates(&world);
    for key in &keys {
        assert!(
            total.get(key).copied().unwrap_or(0) >= 1,
            "{key} was applied"
        );
    }
    let repeats: u64 = total.values().map(|n| n.saturating_sub(1)).sum();
    // Only rows in flight (or answered but not yet committed) at a kill are sent twice.
    assert!(
        repeats <= kills * 1100,
        "{repeats} repeats after {kills} kills"
    );
    rt.block_on(async {
        drop(world);
        drop(reference);
    });
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_and_the_same_command_resumes() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (text, _) = input();
    let world = rt.block_on(World::start(None, ""));
    slow(&world);
    world.write("invites.csv", &text);
    let cfg = world.config.to_str().unwrap().to_string();
    let child = world
        .command(&["run", "invites.csv", "--config", &cfg, "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(400));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("to resume: invitesync run"), "{stderr}");
    let partial = read_csv(&world.path("invites.results.csv"));
    assert_eq!(
        partial.len(),
        ROWS + 1,
        "the results list every row, pending ones too"
    );
    let outcome = partial[0].iter().position(|c| c == "outcome").unwrap();
    assert!(partial[1..].iter().any(|r| r[outcome] == "pending"));

    let out = world.cli(&["run", "invites.csv", "--config", &cfg, "--quiet"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("(resumed)"));
    let done = read_csv(&world.path("invites.results.csv"));
    assert!(done[1..].iter().all(|r| r[outcome] != "pending"));
    rt.block_on(async { drop(world) });
}

/// A closed terminal or SSH session (SIGHUP) stops the run as SIGTERM does:
/// cleanly, results written, exit 3, and the same command resumes. The
/// kernel and the shell may both send it, so a second one does not stop at
/// once.
#[cfg(unix)]
#[test]
fn sighup_stops_cleanly_like_sigterm_and_the_same_command_resumes() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (text, _) = input();
    let world = rt.block_on(World::start(None, ""));
    let mut f = FaultSettings::default();
    f.global.latency_ms = Some(50);
    world.sandbox.set_faults(f).expect("faults");
    world.write("invites.csv", &text);
    let cfg = world.config.to_str().unwrap().to_string();
    let child = world
        .command(&["run", "invites.csv", "--config", &cfg, "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The signals are listened to before the lock is taken.
    let lock = world.path("invitesync.db.lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::metadata(&lock).is_ok_and(|m| m.len() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGHUP).expect("SIGHUP");
    kill(pid, Signal::SIGHUP).expect("SIGHUP again");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SIGHUP"), "{stderr}");
    assert!(!stderr.contains("Stopped at once"), "{stderr}");
    let partial = read_csv(&world.path("invites.results.csv"));
    assert_eq!(partial.len(), ROWS + 1, "a clean stop writes the results");
    let outcome = partial[0].iter().position(|c| c == "outcome").unwrap();
    assert!(partial[1..].iter().any(|r| r[outcome] == "pending"));

    world
        .sandbox
        .set_faults(FaultSettings::default())
        .expect("faults");
    let out = world.cli(&["run", "invites.csv", "--config", &cfg, "--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(resumed)"), "{stderr}");
    let done = read_csv(&world.path("invites.results.csv"));
    assert!(done[1..].iter().all(|r| r[outcome] != "pending"));
    rt.block_on(async { drop(world) });
}

/// Under `nohup` a run is meant to outlive its terminal: SIGHUP, ignored
/// when it started, stays ignored and the run finishes.
#[cfg(unix)]
#[test]
fn sighup_is_ignored_under_nohup() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let world = rt.block_on(World::start(None, ""));
    let mut f = FaultSettings::default();
    f.global.latency_ms = Some(300);
    world.sandbox.set_faults(f).expect("faults");
    let mut text = String::from(HEADER) + "\n";
    for i in 0..40 {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
    }
    world.write("invites.csv", &text);
    let cfg = world.config.to_str().unwrap().to_string();
    let child = common::wrapped("nohup")
        .current_dir(world.dir.path())
        .args(["run", "invites.csv", "--config", &cfg, "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nohup");
    let lock = world.path("invitesync.db.lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::metadata(&lock).is_ok_and(|m| m.len() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).expect("SIGHUP");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let results = read_csv(&world.path("invites.results.csv"));
    assert_eq!(results.len(), 41);
    rt.block_on(async { drop(world) });
}
