//! What may change between an interrupted run and its resume: how rows
//! travel and how fast (a vendor's `base_url`, timeouts, rates, concurrency,
//! retries, credentials) may, and the resume goes on; what a row becomes
//! (the vendor accounts, their kinds, Mighty's method, the input) may not,
//! and the refusal names what changed and both ways out.

use crate::common::{HEADER, World, column, read_csv};
use crate::{Setup, cli, error_message, stderr};

/// Rows for two accounts: `gate` (the one the tests stop) and `hub`.
fn rows(w: &World, n: usize) {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..n {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
        text.push_str(&format!("hub,,uuid-{i},,,,,accepted,,\n"));
    }
    w.write("in.csv", &text);
}

const RUN: &[&str] = &["run", "in.csv", "-c", "invitesync.toml"];

/// A loopback URL nothing listens on: a port the system just handed out and
/// took back.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The gate account's `kind` and `base_url` lines as the config has them.
fn gate_base(url: &str) -> String {
    format!("kind = \"securegate\"\nbase_url = \"{url}\"")
}

/// Stops gate by refusing its key; returns the key that works.
fn stop_gate_on_credentials(w: &World) -> String {
    let key = std::fs::read_to_string(w.path("secrets/gate")).expect("secret");
    std::fs::write(w.path("secrets/gate"), "not-the-key\n").expect("secret");
    let o = cli(w, RUN, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    key
}

#[test]
fn a_fixed_base_url_and_new_pacing_resume_the_run() {
    let s = Setup::new(None, "");
    let w = s.world();
    rows(w, 10);
    let live = w.base_url();
    let dead = dead_url();
    w.edit_config(&[(&gate_base(&live), &gate_base(&dead))]);
    let o = cli(w, RUN, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("stopped gate"), "{err}");
    assert!(err.contains("pending: 10 rows not finished"), "{err}");

    // The fix, with every connection and pacing setting changed on the way.
    w.edit_config(&[
        (
            &gate_base(&dead),
            &format!(
                "{}\nrate_limit = \"1000/s\"\nconcurrency = 2",
                gate_base(&live)
            ),
        ),
        ("concurrency = 16", "concurrency = 4"),
        ("max_attempts = 4", "max_attempts = 6"),
        ("request_timeout = \"5s\"", "request_timeout = \"7s\""),
        ("backoff_base = \"10ms\"", "backoff_base = \"20ms\""),
    ]);
    let o = cli(w, RUN, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("(resumed)"), "{err}");
    let results = read_csv(&w.path("in.results.csv"));
    assert!(
        column(&results, "outcome").iter().all(|o| o == "updated"),
        "{results:?}"
    );
}

#[test]
fn a_change_to_what_rows_become_is_named_with_both_ways_out() {
    let s = Setup::new(None, "");
    let w = s.world();
    rows(w, 10);
    let key = stop_gate_on_credentials(w);
    std::fs::write(w.path("secrets/gate"), &key).expect("secret");

    w.edit_config(&[("[vendors.mighty]", "[vendors.mighty]\nmethod = \"PUT\"")]);
    let err = error_message(&cli(w, RUN, &[]), 2);
    assert!(
        err.contains(
            "invitesync.toml changed what the rows of in.csv become since run 1 was interrupted \
             ([vendors.mighty] `method` was PATCH, is now PUT)"
        ),
        "{err}"
    );
    assert!(err.contains("Put that back to resume run 1"), "{err}");
    assert!(err.contains("pass --new-run"), "{err}");
    assert!(err.contains("end `unchanged` without being sent"), "{err}");

    w.edit_config(&[
        ("[vendors.mighty]\nmethod = \"PUT\"", "[vendors.mighty]"),
        ("[vendors.hub]", "[vendors.hub2]"),
    ]);
    let err = error_message(&cli(w, RUN, &[]), 2);
    assert!(
        err.contains("([vendors.hub] was removed; [vendors.hub2] was added)"),
        "{err}"
    );

    // Put back, the run resumes: only connection settings were fixed.
    w.edit_config(&[("[vendors.hub2]", "[vendors.hub]")]);
    let o = cli(w, RUN, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("(resumed)"), "{err}");
}

#[test]
fn a_changed_input_says_to_put_it_back_or_start_a_new_run() {
    let s = Setup::new(None, "");
    let w = s.world();
    rows(w, 5);
    let key = stop_gate_on_credentials(w);
    std::fs::write(w.path("secrets/gate"), &key).expect("secret");
    let text = std::fs::read_to_string(w.path("in.csv")).expect("input");
    w.write("in.csv", &format!("{text}hub,,uuid-new,,,,,accepted,,\n"));
    let err = error_message(&cli(w, RUN, &[]), 2);
    assert!(
        err.contains("in.csv changed since run 1 was interrupted, so it cannot be resumed safely"),
        "{err}"
    );
    assert!(err.contains("Put the file back as run 1 read it"), "{err}");
    assert!(err.contains("pass --new-run"), "{err}");

    // The new run sends what the ledger does not hold: gate's rows and the new one.
    let o = cli(w, &[RUN, &["--new-run"]].concat(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = read_csv(&w.path("in.results.csv"));
    let outcomes: Vec<(String, String)> = column(&results, "vendor")
        .into_iter()
        .zip(column(&results, "outcome"))
        .collect();
    let unchanged = outcomes.iter().filter(|(_, o)| o == "unchanged").count();
    assert_eq!(unchanged, 5, "hub's 5 rows of run 1: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter(|(v, _)| v == "gate")
            .all(|(_, o)| o == "updated"),
        "{outcomes:?}"
    );
}

/// The summary and `status` after a run that stopped: one row is "1 row",
/// and an input named with an escape sequence and a line break is shown as
/// `validate` shows it, never sent to the terminal.
#[test]
fn the_summary_and_status_count_in_words_and_show_names_escaped() {
    let s = Setup::new(None, "");
    let w = s.world();
    let name = "in\u{1b}]0;x\u{7}\n.csv";
    w.write(name, &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    std::fs::write(w.path("secrets/gate"), "not-the-key\n").expect("secret");
    let o = cli(w, &["run", name, "-c", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("pending: 1 row not finished\n"), "{err}");
    for raw in ['\u{1b}', '\u{7}'] {
        assert!(!err.contains(raw), "{err:?}");
    }
    assert!(
        err.contains("results: in\\u{1b}]0;x\\u{7}\\n.results.csv\n"),
        "{err}"
    );
    assert!(
        err.contains(
            "to resume: invitesync run $'in\\x1b]0;x\\x07\\n.csv' --config invitesync.toml\n"
        ),
        "{err}"
    );

    let o = cli(w, &["status"], &[]);
    let out = crate::stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("in\\u{1b}]0;x\\u{7}\\n.csv\n"), "{out}");
}

/// `--state` naming what cannot be a state file: each is refused before the
/// lock or SQLite touches it, saying what the path is and what to do, never
/// with the operating system's error number or SQLite's "disk I/O error".
#[test]
fn a_state_path_that_cannot_be_one_is_named_before_sqlite_is_asked() {
    let s = Setup::new(None, "");
    let w = s.world();
    rows(w, 1);
    std::fs::create_dir(w.path("dir")).expect("dir");
    w.write("file", "");
    let _socket = std::os::unix::net::UnixListener::bind(w.path("sock")).expect("socket");
    let cases: &[(&str, &str)] = &[
        (
            "nope/s.db",
            "cannot use nope/s.db as the state file: its directory nope does not exist; \
             create it (mkdir -p nope) or pass another --state file",
        ),
        (
            "dir",
            "cannot use dir as the state file: it is a directory; name a file, e.g. --state \
             dir/invitesync.db",
        ),
        (
            "sock",
            "cannot use sock as the state file: it is a socket, not a regular file; ",
        ),
        (
            "file/s.db",
            "cannot use file/s.db as the state file: file is not a directory",
        ),
    ];
    for (state, expected) in cases {
        for cmd in [RUN, &["status"]] {
            let err = error_message(&cli(w, &[cmd, &["--state", state]].concat(), &[]), 2);
            if cmd[0] == "status" && !state.starts_with("dir") && !state.starts_with("sock") {
                // `status` never creates a state file: a missing one is named as such.
                assert!(err.contains("does not exist"), "{err}");
                continue;
            }
            assert!(err.contains(expected), "{state}: {err}");
            assert!(!err.contains("os error"), "{err}");
        }
    }
    assert!(!w.path("dir.lock").exists() && !w.path("sock.lock").exists());
    if std::path::Path::new("/proc/self").is_dir() {
        let err = error_message(&cli(w, &[RUN, &["--state", "/proc/x.db"]].concat(), &[]), 2);
        assert!(
            err.contains("no such file or directory; /proc does not let files be created in it"),
            "{err}"
        );
        assert!(
            !err.contains("create the directory") && !err.contains("os error"),
            "{err}"
        );
    }
}

/// A sandbox asked for a port another program holds says so in words, and
/// how to get a free one.
#[test]
fn a_busy_sandbox_port_says_what_to_do() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("address").port().to_string();
    let o = crate::bare(&["sandbox", "--port", &port]);
    let err = error_message(&o, 2);
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: address already in use; another program"
        )),
        "{err}"
    );
    assert!(err.contains("--port 0 picks a free one"), "{err}");
    assert!(!err.contains("os error"), "{err}");
}

/// A vendor that accepts every connection and answers too late is not one
/// that "could not be reached": the stop says it did not answer in time and
/// names the setting.
#[test]
fn a_vendor_that_answers_too_late_is_not_called_unreachable() {
    let s = Setup::new(None, "");
    let w = s.world();
    rows(w, 10);
    w.edit_config(&[
        ("request_timeout = \"5s\"", "request_timeout = \"50ms\""),
        ("max_attempts = 4", "max_attempts = 20"),
    ]);
    let faults = invitesync::sandbox::FaultSettings {
        global: invitesync::sandbox::Faults {
            latency_ms: Some(1_000),
            ..Default::default()
        },
        ..Default::default()
    };
    w.sandbox.set_faults(faults).expect("faults");
    let o = cli(w, RUN, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "stopped gate: [vendors.gate] did not answer in time: 20 requests in a row got no \
             answer, the last none within `request_timeout` (50ms, set in [run])"
        ),
        "{err}"
    );
    assert!(err.contains("raise `request_timeout`"), "{err}");
    assert!(!err.contains("could not be reached"), "{err}");
}

/// `--column status=vendor` gives the file's `vendor` column to status:
/// the error says so instead of "no `vendor` column (it has: vendor, ...)".
#[test]
fn a_vendor_column_mapped_away_is_named_as_mapped() {
    let s = Setup::new(None, "");
    let w = s.world();
    rows(w, 1);
    let o = cli(
        w,
        &[
            "validate",
            "in.csv",
            "-c",
            "invitesync.toml",
            "--column",
            "status=vendor",
        ],
        &[],
    );
    let err = error_message(&o, 2);
    assert!(
        err.contains(
            "in.csv:1: the header's `vendor` column is mapped to status (--column status=vendor), \
             so no column gives each row's vendor"
        ),
        "{err}"
    );
    assert!(!err.contains("no `vendor` column"), "{err}");
}

#[test]
fn a_resume_says_how_many_rows_were_done_in_words() {
    let s = Setup::new(None, "");
    let w = s.world();
    // One row each: hub's is done when gate is stopped.
    rows(w, 1);
    let key = stop_gate_on_credentials(w);
    std::fs::write(w.path("secrets/gate"), &key).expect("secret");
    let o = cli(w, RUN, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("resuming run 1: 1 row already done"), "{err}");
}
