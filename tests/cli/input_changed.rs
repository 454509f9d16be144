//! An input that is no longer the file the run read by the time the results
//! are written: moved over (`mv`), appended to, cut short. The results never
//! join the run's records with another file's rows; when the file itself
//! changed, nothing is written, the run stays resumable, and putting the
//! file back lets the same command (or `export`) finish the job.

use std::io::Write;
use std::process::{Child, Stdio};

use invitesync::sandbox::{FaultSettings, Faults, Kind};

use crate::common::{HEADER, World, column, read_csv};
use crate::{Setup, cli, error_message, stderr};

const ROWS: usize = 24;

fn gate_rows(tag: &str, n: usize) -> String {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..n {
        text.push_str(&format!("gate,ev-{tag},inv-{tag}-{i},,,,,accepted,,\n"));
    }
    text
}

fn requests(w: &World) -> u64 {
    w.sandbox.stats().vendor(Kind::Securegate).requests
}

const RUN: &[&str] = &[
    "run",
    "in.csv",
    "-c",
    "invitesync.toml",
    "-q",
    "--concurrency",
    "4",
];

/// A world whose vendor answers every request after `latency_ms`.
fn world_answering_after(latency_ms: u64) -> Setup {
    let s = Setup::new(None, "");
    let faults = FaultSettings {
        global: Faults {
            latency_ms: Some(latency_ms),
            ..Faults::default()
        },
        ..FaultSettings::default()
    };
    s.world().sandbox.set_faults(faults).expect("faults");
    s
}

/// A world whose vendor answers slowly enough that a run of [`ROWS`] rows
/// is still sending when the test changes its input.
fn slow_world() -> Setup {
    world_answering_after(200)
}

/// Starts [`RUN`] and returns once its first request reached the vendor: by
/// then the run has counted its input and read every row (they go to the
/// sender in one batch), and most of them are still to be sent.
fn run_until_sending(w: &World) -> Child {
    run_until_sending_with(w, RUN)
}

/// [`run_until_sending`] with `args`.
fn run_until_sending_with(w: &World, args: &[&str]) -> Child {
    let mut child = w
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    for _ in 0..4000 {
        if requests(w) > 0 {
            return child;
        }
        if child.try_wait().is_ok_and(|ended| ended.is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let o = child.wait_with_output().expect("run ends");
    panic!("the run sent nothing: {}", stderr(&o));
}

fn outcomes(w: &World, file: &str) -> Vec<String> {
    column(&read_csv(&w.path(file)), "outcome")
}

#[test]
fn a_file_moved_over_the_input_does_not_change_the_results() {
    let s = slow_world();
    let w = s.world();
    w.write("in.csv", &gate_rows("a", ROWS));
    let child = run_until_sending(w);
    w.write("new.csv", &gate_rows("b", ROWS));
    std::fs::rename(w.path("new.csv"), w.path("in.csv")).expect("mv");
    let o = child.wait_with_output().expect("run ends");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = read_csv(&w.path("in.results.csv"));
    let sent: Vec<String> = (0..ROWS).map(|i| format!("inv-a-{i}")).collect();
    assert_eq!(column(&rows, "invite_id"), sent, "the rows that were sent");
    assert_eq!(column(&rows, "remote_id"), sent);
    assert!(column(&rows, "outcome").iter().all(|o| o == "updated"));
    assert_eq!(requests(w), ROWS as u64);
}

/// Rows enough that the run is still reading its input when the test
/// appends to it (the reader runs at most a few thousand rows ahead).
const MANY: usize = 4000;

#[test]
fn rows_appended_during_a_run_leave_it_resumable_and_write_nothing() {
    let s = world_answering_after(10);
    let w = s.world();
    let original = gate_rows("a", MANY);
    w.write("in.csv", &original);
    let run = [&RUN[..6], &["16"]].concat();
    let child = run_until_sending_with(w, &run);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(w.path("in.csv"))
        .expect("open");
    for i in 0..5 {
        writeln!(f, "gate,ev-a,inv-late-{i},,,,,accepted,,").expect("append");
    }
    drop(f);
    let o = child.wait_with_output().expect("run ends");
    let err = error_message(&o, 3);
    for said in [
        "the input in.csv changed while the run was going (it is not the file the rows were \
         read from: ",
        "bytes were added at its end after the run counted its rows, and were not sent)",
        "so in.results.csv was not written",
        "every row sent is recorded in invitesync.db",
        "put back the file the run started with and run the same command again",
        "invitesync export 1 --state invitesync.db --output in.results.csv",
    ] {
        assert!(err.contains(said), "`{said}` in: {err}");
    }
    assert!(!w.path("in.results.csv").exists());

    // Put back: the same command finishes the job; the rows added were
    // never read, so none was sent.
    w.write("in.csv", &original);
    let o = cli(w, &run, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(outcomes(w, "in.results.csv"), vec!["updated"; MANY]);
    assert_eq!(
        requests(w),
        MANY as u64,
        "no row is sent twice, no added row at all"
    );
}

#[test]
fn an_input_cut_short_during_a_run_says_how_many_rows_it_kept_and_what_to_do() {
    let s = slow_world();
    let w = s.world();
    let original = gate_rows("a", ROWS);
    w.write("in.csv", &original);
    let child = run_until_sending(w);
    // Overwritten in place with its first half.
    w.write("in.csv", &gate_rows("a", ROWS / 2));
    let o = child.wait_with_output().expect("run ends");
    let err = error_message(&o, 3);
    let half = ROWS / 2;
    for said in [
        format!(
            "it now ends after {half} rows, but the run recorded row {}",
            half + 1
        ),
        "put back the file the run started with and run the same command again".into(),
    ] {
        assert!(err.contains(&said), "`{said}` in: {err}");
    }
    assert!(!w.path("in.results.csv").exists());

    // Put back: `export` writes the file, and so does the same command.
    w.write("in.csv", &original);
    let export = [
        "export",
        "1",
        "--state",
        "invitesync.db",
        "--output",
        "exported.csv",
    ];
    let o = cli(w, &export, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(outcomes(w, "exported.csv"), vec!["updated"; ROWS]);
    let o = cli(w, RUN, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(outcomes(w, "in.results.csv"), vec!["updated"; ROWS]);
    assert_eq!(requests(w), ROWS as u64, "nothing is sent again");
}

#[test]
fn export_of_an_input_that_changed_says_to_put_it_back() {
    let s = Setup::new(None, "");
    let w = s.world();
    let original = gate_rows("a", 3);
    w.write("in.csv", &original);
    let o = cli(w, RUN, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    w.write(
        "in.csv",
        &(original.clone() + "gate,ev-a,inv-late,,,,,accepted,,\n"),
    );
    let export = ["export", "--output", "again.csv"];
    let o = cli(w, &export, &[]);
    let err = error_message(&o, 2);
    for said in [
        "the input ",
        "in.csv changed since run 1 read it (it is not the file the rows were read from: ",
        "so again.csv was not written",
        "put back the file run 1 read and export again",
    ] {
        assert!(err.contains(said), "`{said}` in: {err}");
    }
    assert!(!w.path("again.csv").exists());

    w.write("in.csv", &original);
    let o = cli(w, &export, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(outcomes(w, "again.csv"), vec!["updated"; 3]);
}
