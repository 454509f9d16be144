//! The state file as the operator meets it: found by every command in the
//! same place, refused when damaged (nothing sent, and what to do), and its
//! runs shown as they really stand.

use std::process::Stdio;

use invitesync::sandbox::{FaultSettings, Faults, Kind};

use crate::common::{HEADER, World};
use crate::{Setup, cli, error_message, stderr, stdout};

fn gate_rows(n: usize) -> String {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..n {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,note {i}\n"));
    }
    text
}

fn requests(w: &World) -> u64 {
    w.sandbox.stats().vendor(Kind::Securegate).requests
}

#[test]
fn a_damaged_state_file_is_refused_with_what_to_do_and_nothing_is_sent() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &gate_rows(3000));
    let run = ["run", "in.csv", "-c", "invitesync.toml", "-q"];
    let o = cli(w, &run, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let good = std::fs::read(w.path("invitesync.db")).expect("state");
    let pages = good.len() / 4096;
    assert!(pages > 40, "{pages} pages");
    let sent = requests(w);

    let damaged = |name: &str, bytes: Vec<u8>| {
        std::fs::write(w.path("invitesync.db"), bytes).expect("write");
        // Every try says the same: running again does not help.
        for attempt in 0..2 {
            let o = cli(w, &[&run[..], &["--new-run"]].concat(), &[]);
            let err = error_message(&o, 2);
            assert!(err.contains("invitesync.db"), "{name} {attempt}: {err}");
            assert!(
                err.contains("restore it from a backup")
                    && err.contains("mv invitesync.db invitesync.db.damaged"),
                "{name} {attempt}: {err}"
            );
            assert!(!err.contains("to resume"), "{name}: {err}");
        }
        for cmd in [&["status"][..], &["export", "--output", "x.csv"][..]] {
            let o = cli(w, cmd, &[]);
            let err = error_message(&o, 2);
            assert!(err.contains("damaged"), "{name} {cmd:?}: {err}");
        }
        assert_eq!(requests(w), sent, "{name}: nothing is sent");
    };

    // Pages in the middle overwritten: the rows of the run before.
    let mut bad = good.clone();
    let at = (pages / 2) * 4096;
    bad[at..at + 8192].fill(0x77);
    damaged("pages overwritten", bad);
    // Cut short, as by a full disk or a partial copy.
    damaged("truncated", good[..good.len() / 2].to_vec());
    // Its first page gone: not even an SQLite file any more.
    let mut bad = good.clone();
    bad[..4096].fill(0);
    damaged("header overwritten", bad);

    std::fs::write(w.path("invitesync.db"), &good).expect("restore");
    let o = cli(w, &[&run[..], &["--new-run"]].concat(), &[]);
    assert_eq!(o.status.code(), Some(0), "restored: {}", stderr(&o));
}

#[test]
fn every_command_finds_the_state_file_where_run_keeps_it() {
    let s = Setup::new(None, "");
    let w = s.world();
    std::fs::create_dir(w.path("data")).expect("dir");
    w.write(
        "data/in.csv",
        &(gate_rows(3) + "gate,ev1,bad,,,,,maybe,,\n"),
    );
    let o = cli(w, &["run", "data/in.csv", "-c", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("state: {}\n", w.path("invitesync.db").display())),
        "the summary says where the state file is: {err}"
    );
    let o = cli(w, &["status"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("run 1  finished"), "{}", stdout(&o));
    let o = cli(
        w,
        &["export", "--only", "failed", "--output", "fix.csv"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(w.path("fix.csv"))
            .unwrap()
            .contains("bad")
    );

    // `[run] state` in the config: `status` and `export` read it too.
    let config = std::fs::read_to_string(&w.config).unwrap().replacen(
        "[run]\n",
        "[run]\nstate = \"kept/nightly.db\"\n",
        1,
    );
    std::fs::write(w.path("other.toml"), config).expect("config");
    std::fs::create_dir(w.path("kept")).expect("dir");
    let o = cli(w, &["run", "data/in.csv", "-c", "other.toml", "-q"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(w.path("kept/nightly.db").exists());
    let o = cli(w, &["status", "-c", "other.toml"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("run 1  finished"), "{}", stdout(&o));
    let o = cli(w, &["status"], &[("INVITESYNC_CONFIG", "other.toml")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_state_file_left_beside_the_input_is_not_silently_replaced() {
    let s = Setup::new(None, "");
    let w = s.world();
    std::fs::create_dir(w.path("data")).expect("dir");
    w.write("data/in.csv", &gate_rows(3));
    let o = cli(
        w,
        &[
            "run",
            "data/in.csv",
            "-c",
            "invitesync.toml",
            "--state",
            "data/invitesync.db",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = cli(w, &["run", "data/in.csv", "-c", "invitesync.toml"], &[]);
    let err = error_message(&o, 2);
    assert!(err.contains("--state data/invitesync.db"), "{err}");
    assert!(!w.path("invitesync.db").exists());
}

#[test]
fn a_killed_run_shows_as_interrupted_once_its_lock_is_free() {
    let s = Setup::new(None, "");
    let w = s.world();
    let faults = FaultSettings {
        global: Faults {
            latency_ms: Some(500),
            ..Faults::default()
        },
        ..FaultSettings::default()
    };
    w.sandbox.set_faults(faults).expect("faults");
    w.write("in.csv", &gate_rows(200));
    let mut child = w
        .command(&["run", "in.csv", "-c", "invitesync.toml", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let lock = w.path("invitesync.db.lock");
    for _ in 0..2000 {
        if std::fs::metadata(&lock).is_ok_and(|m| m.len() > 0) && w.path("invitesync.db").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // While it runs, it is running.
    let mut seen_running = false;
    for _ in 0..2000 {
        let o = cli(w, &["status"], &[]);
        if stdout(&o).contains("run 1  running") {
            seen_running = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(seen_running, "the live run shows as running");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let o = cli(w, &["status"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("run 1  interrupted"), "{}", stdout(&o));
}
