//! The files a run writes: never over one it reads or keeps, never over
//! each other, checked to be writable before anything is sent, and never an
//! earlier run's file left to pass for this one's.

use std::process::Stdio;

use invitesync::sandbox::{FaultSettings, Faults, Kind};

use crate::common::{HEADER, World};
use crate::{Setup, cli, error_message, stderr};

fn gate_rows(n: usize) -> String {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..n {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
    }
    text
}

fn requests(w: &World) -> u64 {
    w.sandbox.stats().vendor(Kind::Securegate).requests
}

fn run_args<'a>(input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", input, "-c", "invitesync.toml"];
    args.extend_from_slice(extra);
    args
}

/// Runs `in.csv` anew with each case's extra arguments and checks it is
/// refused (exit 2) with a message that says each of its phrases.
fn refused(w: &World, cases: &[(&[&str], &[&str])]) {
    for (extra, said) in cases {
        let o = cli(
            w,
            &run_args("in.csv", &[&["--new-run"], *extra].concat()),
            &[],
        );
        let err = error_message(&o, 2);
        for s in *said {
            assert!(err.contains(s), "{extra:?}: `{s}` in {err}");
        }
    }
}

#[test]
fn an_output_that_is_an_input_the_state_file_or_another_output_is_refused() {
    let s = Setup::new(None, "");
    let w = s.world();
    let input = gate_rows(5);
    w.write("in.csv", &input);
    std::fs::create_dir(w.path("sub")).expect("dir");
    // A first run, so that the state file exists.
    let o = cli(w, &run_args("in.csv", &["-q"]), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let state = std::fs::read(w.path("invitesync.db")).expect("state");
    let config = std::fs::read(w.path("invitesync.toml")).expect("config");
    std::fs::hard_link(w.path("in.csv"), w.path("hard.csv")).expect("hard link");
    std::os::unix::fs::symlink(w.path("invitesync.toml"), w.path("soft.toml")).expect("link");
    let sent = requests(w);

    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--results", "in.csv"],
            &["--results in.csv", "the input in.csv"],
        ),
        (
            &["--results", "./sub/../in.csv"],
            &["--results ./sub/../in.csv", "the input in.csv"],
        ),
        (&["--results", "hard.csv"], &["the input in.csv"]),
        (
            &["--summary-json", "invitesync.db"],
            &[
                "--summary-json invitesync.db",
                "the state file invitesync.db",
            ],
        ),
        (
            &["--summary-json", "invitesync.db-wal"],
            &["the state file's log invitesync.db-wal"],
        ),
        (
            &["--results", "invitesync.db.lock"],
            &["the state file's lock invitesync.db.lock"],
        ),
        (
            &["--summary-json", "soft.toml"],
            &["the config invitesync.toml"],
        ),
        (
            &["--results", "out.csv", "--summary-json", "sub/../out.csv"],
            &[
                "--results out.csv",
                "--summary-json sub/../out.csv",
                "the same file",
            ],
        ),
        (
            &[
                "--results",
                "x.results.csv",
                "--summary-json",
                "x.failed.csv",
            ],
            &[
                "the rows-to-fix file (named after the results file) x.failed.csv",
                "--summary-json x.failed.csv",
            ],
        ),
        (
            &["--state", "in.csv"],
            &["--state in.csv is the input in.csv"],
        ),
    ];
    refused(w, cases);
    assert_eq!(std::fs::read_to_string(w.path("in.csv")).unwrap(), input);
    assert_eq!(std::fs::read(w.path("invitesync.db")).unwrap(), state);
    assert_eq!(std::fs::read(w.path("invitesync.toml")).unwrap(), config);
    assert!(!w.path("invitesync.db-wal").exists());
    assert_eq!(requests(w), sent, "nothing is sent");

    // Feeding back a rows-to-fix file whose own would be written over it.
    w.write("fix.failed.csv", &input);
    let o = cli(
        w,
        &run_args("fix.failed.csv", &["--results", "fix.results.csv"]),
        &[],
    );
    let err = error_message(&o, 2);
    assert!(
        err.contains("fix.failed.csv is the input fix.failed.csv"),
        "{err}"
    );
    assert_eq!(requests(w), sent, "nothing is sent");

    // `export` neither.
    for target in ["in.csv", "invitesync.db", "./invitesync.db-shm"] {
        let o = cli(w, &["export", "--output", target], &[]);
        let err = error_message(&o, 2);
        assert!(err.contains(&format!("--output {target} is ")), "{err}");
    }
    assert_eq!(std::fs::read_to_string(w.path("in.csv")).unwrap(), input);
    assert_eq!(std::fs::read(w.path("invitesync.db")).unwrap(), state);
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_anything_is_sent() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &gate_rows(5));
    w.write("plain-file", "x");
    std::fs::create_dir(w.path("adir")).expect("dir");
    let cases: &[(&[&str], &str)] = &[
        (&["--summary-json", "missing/summary.json"], "missing"),
        (
            &["--summary-json", "plain-file/summary.json"],
            "not a directory",
        ),
        (&["--results", "missing/r.csv"], "missing"),
        (&["--results", "adir"], "is a directory"),
        (&["--summary-json", "adir"], "is a directory"),
        (
            &["--results", "/proc/invitesync-results.csv"],
            "choose another place",
        ),
    ];
    for (extra, said) in cases {
        let o = cli(w, &run_args("in.csv", extra), &[]);
        let err = error_message(&o, 2);
        assert!(err.contains(said) && err.contains(extra[1]), "{err}");
    }
    assert_eq!(requests(w), 0, "nothing is sent");
    let o = cli(
        w,
        &run_args("in.csv", &["--dry-run", "--summary-json", "missing/s.json"]),
        &[],
    );
    error_message(&o, 2);
}

#[test]
fn an_earlier_runs_summary_and_rows_to_fix_never_pass_for_this_runs() {
    let s = Setup::new(None, "");
    let w = s.world();
    // A bad row: a rows-to-fix file.
    w.write("in.csv", &(gate_rows(3) + "gate,ev1,bad,,,,,maybe,,\n"));
    let args = run_args("in.csv", &["-q", "--summary-json", "summary.json"]);
    let o = cli(w, &args, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(w.path("in.failed.csv").exists());
    // Fixed: nothing to fix any more, and no file says otherwise.
    w.write("in.csv", &gate_rows(3));
    let o = cli(w, &[&args[..], &["--new-run"]].concat(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !w.path("in.failed.csv").exists(),
        "the earlier rows to fix are gone"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["failed_rows"], serde_json::Value::Null);
}

/// An output that fails at the end, after every row was sent: the run is
/// not a success, says nothing needs sending again and how to write the
/// file, leaves no earlier summary behind, and the same command finishes
/// the job without sending anything.
#[test]
fn an_output_that_fails_at_the_end_exits_resumable_and_nothing_is_sent_again() {
    let s = Setup::new(None, "");
    let w = s.world();
    let faults = FaultSettings {
        global: Faults {
            latency_ms: Some(1000),
            ..Faults::default()
        },
        ..FaultSettings::default()
    };
    w.sandbox.set_faults(faults).expect("faults");
    w.write("in.csv", &gate_rows(20));
    std::fs::create_dir(w.path("out")).expect("dir");
    w.write(
        "summary.json",
        "{\"exit_code\": 0, \"from\": \"yesterday\"}\n",
    );
    let args = run_args(
        "in.csv",
        &[
            "-q",
            "--results",
            "out/results.csv",
            "--summary-json",
            "summary.json",
        ],
    );
    let child = w
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The lock is taken once every check has passed; then the directory goes.
    let lock = w.path("invitesync.db.lock");
    for _ in 0..2000 {
        if std::fs::metadata(&lock).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_dir_all(w.path("out")).expect("remove out");
    let o = child.wait_with_output().expect("run ends");
    let err = error_message(&o, 3);
    assert!(err.contains("cannot write out/results.csv"), "{err}");
    assert!(err.contains("nothing needs sending again"), "{err}");
    assert!(
        err.contains("invitesync export 1 --state invitesync.db --output out/results.csv"),
        "{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 3, "{summary}");
    let sent = requests(w);
    assert_eq!(sent, 20);

    std::fs::create_dir(w.path("out")).expect("dir");
    let o = cli(w, &args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(requests(w), sent, "nothing is sent again");
    assert_eq!(
        std::fs::read_to_string(w.path("out/results.csv"))
            .unwrap()
            .lines()
            .count(),
        21
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 0, "{summary}");
}

#[test]
fn the_files_the_config_names_and_the_metrics_files_targets_are_never_written_over() {
    let s = Setup::new(None, "");
    let w = s.world();
    let input = gate_rows(5);
    w.write("in.csv", &input);
    let o = cli(w, &run_args("in.csv", &["-q"]), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let secret = std::fs::read(w.path("secrets/gate")).expect("secret");
    let state = std::fs::read(w.path("invitesync.db")).expect("state");
    let config = std::fs::read(w.path("invitesync.toml")).expect("config");
    let sent = requests(w);

    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--results", "secrets/gate"],
            &["--results secrets/gate is `vendors.gate.api_key`'s file"],
        ),
        (
            &["--summary-json", "./secrets/gate"],
            &["`vendors.gate.api_key`'s file"],
        ),
        (
            &["--state", "secrets/gate"],
            &["--state secrets/gate is `vendors.gate.api_key`'s file"],
        ),
        (
            &["--metrics-file", "invitesync.db"],
            &["--metrics-file invitesync.db is the state file"],
        ),
        (
            &["--metrics-file", "invitesync.db.lock"],
            &["the state file's lock"],
        ),
        (&["--metrics-file", "in.csv"], &["the input in.csv"]),
        (
            &["--metrics-file", "secrets/gate"],
            &["`vendors.gate.api_key`'s file"],
        ),
        (
            &["--metrics-file", "out.csv", "--results", "out.csv"],
            &["the same file"],
        ),
    ];
    refused(w, cases);
    assert!(!w.path("out.csv").exists());
    // A run that fails before it knows its files (its config is missing)
    // still leaves a file that is not a metrics file alone.
    w.write("notes.txt", "not metrics\n");
    let o = cli(
        w,
        &[
            "run",
            "in.csv",
            "-c",
            "missing.toml",
            "--metrics-file",
            "notes.txt",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds something else"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(w.path("notes.txt")).unwrap(),
        "not metrics\n"
    );
    // `export` neither, over the config or the files it names.
    for target in ["invitesync.toml", "secrets/gate"] {
        let o = cli(w, &["export", "--output", target], &[]);
        let err = error_message(&o, 2);
        assert!(err.contains(&format!("--output {target} is ")), "{err}");
    }
    assert_eq!(std::fs::read(w.path("secrets/gate")).unwrap(), secret);
    assert_eq!(std::fs::read(w.path("invitesync.db")).unwrap(), state);
    assert_eq!(std::fs::read(w.path("invitesync.toml")).unwrap(), config);
    assert_eq!(std::fs::read_to_string(w.path("in.csv")).unwrap(), input);
    assert_eq!(requests(w), sent, "nothing is sent");
}

#[test]
fn an_output_through_a_symbolic_link_replaces_what_the_link_points_to() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &gate_rows(3));
    std::fs::create_dir(w.path("shared")).expect("dir");
    w.write("shared/res.csv", "old\n");
    std::os::unix::fs::symlink("shared/res.csv", w.path("link.csv")).expect("link");
    std::os::unix::fs::symlink("shared/sum.json", w.path("sum.json")).expect("link");
    let o = cli(
        w,
        &run_args(
            "in.csv",
            &["-q", "--results", "link.csv", "--summary-json", "sum.json"],
        ),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for link in ["link.csv", "sum.json"] {
        let meta = std::fs::symlink_metadata(w.path(link)).expect("link");
        assert!(meta.file_type().is_symlink(), "{link} is still a link");
    }
    let results = std::fs::read_to_string(w.path("shared/res.csv")).expect("results");
    assert!(results.contains("inv2"), "{results}");
    let summary = std::fs::read_to_string(w.path("shared/sum.json")).expect("summary");
    assert!(summary.contains("\"exit_code\": 0"), "{summary}");
}

#[test]
fn data_piped_in_under_a_system_name_has_its_results_here() {
    let s = Setup::new(None, "");
    let w = s.world();
    let input = w.write("in.csv", &gate_rows(3));
    let o = w
        .command(&["run", "/dev/stdin", "-c", "invitesync.toml", "-q"])
        .stdin(std::fs::File::open(input).expect("input"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = std::fs::read_to_string(w.path("stdin.results.csv")).expect("results here");
    assert!(results.contains("inv2"), "{results}");
}
