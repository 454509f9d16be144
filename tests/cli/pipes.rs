//! Output into a pipe whose reader has gone (`| head -1`, a closed log
//! collector): the output ends quietly, the work goes on, and the exit code
//! is the work's.

use std::process::{Output, Stdio};

use crate::common::{HEADER, World};
use crate::{Setup, cli, stderr};

/// A pipe whose reading end is already closed, so the first write fails
/// with EPIPE whenever it comes.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer
}

enum Closed {
    Stdout,
    Stderr,
    Both,
}

fn run_closed(w: &World, args: &[&str], closed: Closed) -> Output {
    let mut cmd = w.command(args);
    cmd.env_remove("RUST_BACKTRACE");
    match closed {
        Closed::Stdout => cmd.stdout(closed_pipe()).stderr(Stdio::piped()),
        Closed::Stderr => cmd.stdout(Stdio::piped()).stderr(closed_pipe()),
        Closed::Both => {
            let pipe = closed_pipe();
            let again = pipe.try_clone().expect("clone");
            cmd.stdout(pipe).stderr(again)
        }
    };
    cmd.output().expect("binary runs")
}

fn rows() -> String {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..50 {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
    }
    text + "gate,ev1,bad,,,,,maybe,,\n"
}

#[test]
fn a_closed_stdout_ends_the_output_quietly_with_the_commands_exit_code() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &rows());
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml", "-q"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    let cases: &[(&[&str], i32)] = &[
        (&["status"], 0),
        (&["man", "run"], 0),
        (&["man"], 0),
        (&["completions", "bash"], 0),
        (&["validate", "in.csv", "-c", "invitesync.toml"], 1),
        (&["--help"], 0),
    ];
    for (args, code) in cases {
        let o = run_closed(w, args, Closed::Stdout);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: nothing to say: {err}");
    }
}

#[test]
fn a_run_whose_output_closes_finishes_its_work_and_files() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &rows());
    for (closed, name) in [(Closed::Stderr, "stderr"), (Closed::Both, "both")] {
        let o = run_closed(
            w,
            &[
                "run",
                "in.csv",
                "-c",
                "invitesync.toml",
                "--new-run",
                "--log-interval",
                "1ms",
                "--summary-json",
                "summary.json",
            ],
            closed,
        );
        assert_eq!(o.status.code(), Some(1), "{name}");
        let results = std::fs::read_to_string(w.path("in.results.csv")).expect("results");
        assert_eq!(results.lines().count(), 52, "{name}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(w.path("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["exit_code"], 1, "{name}");
        std::fs::remove_file(w.path("summary.json")).unwrap();
    }
    // JSON logs, and an error: still its own exit code.
    let o = run_closed(
        w,
        &[
            "--log-format",
            "json",
            "run",
            "missing.csv",
            "-c",
            "invitesync.toml",
        ],
        Closed::Both,
    );
    assert_eq!(o.status.code(), Some(2));
}
