//! Inputs as they arrive from other systems, through the built binary:
//! standard input and named pipes (killed mid-stream and mid-run, then
//! resumed), gzip and zstd files (whole, truncated, damaged), `;` and tab
//! separated files as spreadsheets write them, another system's column
//! names mapped, and the hint for a wrong delimiter.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Setup;
use invitesync::sandbox::FaultSettings;
use invitesync::state::StateFile;

impl Setup {
    fn new(extra_config: &str) -> Setup {
        Setup::with_config(extra_config)
    }

    fn dir(&self) -> &Path {
        self.world().dir.path()
    }

    /// The binary in the world's directory, in the tests' clean environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.world().command(args);
        cmd.env("NO_COLOR", "1");
        cmd
    }

    /// `invitesync ARGS` (after `run`/`validate` and the input, `--config`
    /// is added), with `stdin` as standard input.
    fn bin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let config = self.world().config.display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        if matches!(args.first(), Some(&"run") | Some(&"validate")) {
            all.extend(["--config", &config]);
        }
        if args.first() == Some(&"run") {
            all.push("--quiet");
        }
        let mut child = self
            .command(&all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary runs");
        let mut pipe = child.stdin.take().expect("stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
        let out = child.wait_with_output().expect("binary ends");
        let _ = writer.join();
        out
    }

    fn requests(&self) -> u64 {
        let stats = self.world().sandbox.stats();
        stats.vendors.values().map(|v| v.requests).sum()
    }

    fn all_updates(&self) -> u64 {
        let stats = self.world().sandbox.stats();
        stats.vendors.values().map(|v| v.updates).sum()
    }

    fn updates(&self, key: &str) -> u64 {
        let stats = self.world().sandbox.stats();
        stats.invite(key).map_or(0, |i| i.updates)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A CSV file as rows of cells (header first), fields separated by `delimiter`.
fn read(path: &Path, delimiter: u8) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    r.records()
        .map(|rec| rec.expect("record").iter().map(str::to_string).collect())
        .collect()
}

fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = rows[0]
        .iter()
        .position(|c| c.trim_start_matches('\u{feff}') == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", rows[0]));
    rows[1..].iter().map(|r| r[i].clone()).collect()
}

/// The results without what differs between two runs of the same rows.
fn comparable(path: &Path) -> Vec<Vec<String>> {
    let rows = read(path, b',');
    let drop: Vec<usize> = ["attempts", "finished_at", "remote_updated_at"]
        .iter()
        .map(|c| rows[0].iter().position(|h| h == c).expect("column"))
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

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(p).unwrap();
        out.extend(e.finish().unwrap());
    }
    out
}

fn zstd(parts: &[&[u8]]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| zstd::encode_all(*p, 3).unwrap())
        .collect()
}

/// Files in the world's directory whose name starts with `prefix`.
fn files(s: &Setup, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(s.dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

/// Waits (boundedly) until `done` holds; fails the test with `what` if it never does.
fn wait_for(what: &str, child: &mut Child, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the run ended before {what}"
        );
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether the process has installed its own handler for SIGINT (Linux
/// lists the signals a process catches in `/proc/PID/status`), so that a
/// test's Ctrl-C reaches the handler rather than the default action.
fn catches_sigint(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}

/// `rows` Securegate rows, each its own invite, and their keys.
fn gate_rows(event: &str, rows: usize) -> (String, Vec<String>) {
    let mut text = String::from("vendor,scope,invite_id,status,note\n");
    let mut keys = Vec::new();
    for i in 0..rows {
        text.push_str(&format!("gate,{event},i{i},sent,n{i}\n"));
        keys.push(format!("securegate/{event}/i{i}"));
    }
    (text, keys)
}

#[test]
fn piped_input_killed_mid_stream_or_mid_run_resumes_from_its_copy() {
    let s = Setup::new("");
    let mut faults = FaultSettings::default();
    faults.global.latency_ms = Some(10);
    s.world().sandbox.set_faults(faults).expect("faults");
    let (text, keys) = gate_rows("pipe", 600);
    let config = s.world().config.display().to_string();
    let args = [
        "run",
        "-",
        "--config",
        &config,
        "--quiet",
        "--concurrency",
        "4",
    ];

    // Killed while the data is still arriving: nothing recorded, nothing sent.
    let (mut child, pipe) = half_piped(&s, &args, &text, Stdio::null());
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    drop(pipe);
    assert_eq!(s.requests(), 0, "nothing is sent before the data is whole");
    assert!(files(&s, "invitesync.piped-").is_empty());

    // Ctrl-C while the data arrives (and the writer goes quiet): it stops at
    // once, starts no run, and leaves no copy.
    let (mut child, pipe) = half_piped(&s, &args, &text, Stdio::piped());
    let child_id = child.id();
    wait_for("Ctrl-C is handled", &mut child, || catches_sigint(child_id));
    let pid = nix::unistd::Pid::from_raw(child_id as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = child.wait_with_output().expect("wait");
    drop(pipe);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stopped while the piped data was arriving"),
        "{}",
        stderr(&out)
    );
    assert!(files(&s, "invitesync.piped-").is_empty());
    assert!(
        files(&s, ".invitesync.piped.").len() <= 1,
        "only the killed one's"
    );

    // Killed while sending: the copy stays for the resume.
    let mut child = s
        .command(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(text.as_bytes()).unwrap();
    drop(pipe);
    wait_for("some rows are sent", &mut child, || s.all_updates() >= 30);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let copies = files(&s, "invitesync.piped-");
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(std::fs::read(&copies[0]).unwrap(), text.as_bytes());
    assert!(
        files(&s, ".invitesync.piped.").is_empty(),
        "what the first kill left is cleared"
    );
    // The rows the state file recorded done before the kill.
    let state = StateFile::open(&s.dir().join("invitesync.db")).expect("state");
    let run = state.latest_run().expect("runs").expect("a run");
    let mut done_before = Vec::new();
    state
        .for_each_row(run.id, |r| -> Result<(), invitesync::state::StateError> {
            done_before.push(r.index);
            Ok(())
        })
        .expect("rows");
    drop(state);
    assert!(done_before.len() < keys.len(), "the run was cut short");

    // The same data piped again: the run resumes from its copy and finishes.
    let out = s.bin(&["run", "-", "--concurrency", "4"], text.as_bytes());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("resuming run 1 from"), "{err}");
    assert!(
        err.contains(&*copies[0].file_name().unwrap().to_string_lossy()),
        "{err}"
    );
    let results = read(&s.dir().join("stdin.results.csv"), b',');
    assert_eq!(column(&results, "outcome"), vec!["updated"; keys.len()]);
    let ids: Vec<String> = (0..keys.len()).map(|i| format!("i{i}")).collect();
    assert_eq!(column(&results, "invite_id"), ids, "every row, in order");
    assert!(
        files(&s, "invitesync.piped-").is_empty(),
        "the copy is removed"
    );
    for (i, key) in keys.iter().enumerate() {
        let n = s.updates(key);
        assert!(n >= 1, "{key} applied");
        if done_before.contains(&(i as u64)) {
            assert_eq!(n, 1, "{key} was done before the resume, and not sent again");
        }
    }

    // Other data piped while a run of piped data waits: refused, as a
    // changed file is, until --new-run retires that run and its copy.
    let mut child = s
        .command(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(text.replace(",sent,", ",accepted,").as_bytes())
        .unwrap();
    drop(pipe);
    let before = s.all_updates();
    wait_for("a row is sent", &mut child, || {
        s.all_updates() >= before + 2
    });
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let out = s.bin(&["run", "-"], text.as_bytes());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--new-run"), "{}", stderr(&out));
    assert_eq!(
        files(&s, "invitesync.piped-").len(),
        1,
        "the waiting run's copy stays"
    );
    let out = s.bin(&["run", "-", "--new-run"], text.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(files(&s, "invitesync.piped-").is_empty());
}

/// Rows with a broken line (a quoted line break shifts the line numbers) and
/// an invalid row, to compare every form of the same data.
const PLAIN: &str = "vendor,scope,invite_id,status,note\n\
    gate,zip,z1,sent,\"two\nlines\"\n\
    gate,zip,z2,bogus,x\n\
    gate,zip,z3,accepted,y\n\
    gate,zip,z4,rejected,z\n";

#[test]
fn gzip_and_zstd_read_like_the_plain_file_from_a_file_a_pipe_or_stdin() {
    let s = Setup::new("");
    let w = s.world();
    let (a, b) = PLAIN.split_at(PLAIN.find("gate,zip,z3").unwrap());
    w.write("plain.csv", PLAIN);
    let forms: [(&str, Vec<u8>); 3] = [
        ("gz.csv.gz", gzip(&[a.as_bytes(), b.as_bytes()])),
        ("zst.csv.zst", zstd(&[a.as_bytes(), b.as_bytes()])),
        ("zst-without-extension", zstd(&[PLAIN.as_bytes()])),
    ];
    for (name, bytes) in &forms {
        std::fs::write(w.path(name), bytes).unwrap();
    }
    let run = |input: &str, state: &str, stdin: &[u8]| {
        let o = s.bin(&["run", input, "--state", state], stdin);
        assert_eq!(o.status.code(), Some(1), "{input}: {}", stderr(&o));
        o
    };
    run("plain.csv", "plain.db", b"");
    let expected = comparable(&w.path("plain.results.csv"));
    assert_eq!(
        column(&read(&w.path("plain.results.csv"), b','), "error")[1],
        "line 4: status: `bogus` is not one of pending, sent, accepted, rejected"
    );
    for (name, _) in &forms {
        run(name, &format!("{name}.db"), b"");
        let results = w.path(&format!("{}.results.csv", name.split('.').next().unwrap()));
        assert_eq!(
            comparable(&results),
            expected,
            "{name}: {}",
            results.display()
        );
        // `export` reads the compressed input again, as the run did.
        let out = w.path("exported.csv");
        let o = s.bin(
            &[
                "export",
                "--state",
                &format!("{name}.db"),
                "--output",
                "exported.csv",
            ],
            b"",
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&results).unwrap()
        );
    }
    // Compressed data on standard input, and through a named pipe.
    run("-", "stdin.db", &forms[0].1);
    assert_eq!(comparable(&w.path("stdin.results.csv")), expected);
    let fifo = w.path("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let bytes = forms[1].1.clone();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    run("fifo", "fifo.db", b"");
    writer.join().unwrap();
    assert_eq!(comparable(&w.path("fifo.results.csv")), expected);
    let o = s.bin(&["validate", "-"], &forms[0].1);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("(standard input):4: [gate] status"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_truncated_or_damaged_compressed_file_sends_nothing_and_its_rows_are_listed() {
    let s = Setup::new("");
    let w = s.world();
    // Past one zstd block (128 KiB), so that half the file holds whole rows.
    let (mut text, _) = gate_rows("cut", 12_000);
    text = text.replacen("gate,cut,i1,sent", "gate,cut,i1,bogus", 1);
    let gz = gzip(&[text.as_bytes()]);
    let zst = zstd(&[text.as_bytes()]);
    let mut damaged = gz.clone();
    let at = damaged.len() - 6;
    damaged[at] ^= 0xff; // the CRC: found only once every row was read
    let cases: [(&str, &[u8], &str); 3] = [
        ("cut.csv.gz", &gz[..gz.len() / 2], "the file is truncated"),
        (
            "cut.csv.zst",
            &zst[..zst.len() / 2],
            "the file is truncated",
        ),
        ("bad.csv.gz", &damaged, "the gzip data is damaged"),
    ];
    for (name, bytes, why) in cases {
        std::fs::write(w.path(name), bytes).unwrap();
        let o = s.bin(&["run", name], b"");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{name}:")) && err.contains(why),
            "{err}"
        );
        assert!(err.contains("nothing was sent"), "{err}");
        assert_eq!(s.requests(), 0, "{name}: nothing sent");
        let results = w.path(&format!("{}.results.csv", name.split('.').next().unwrap()));
        assert!(!results.exists(), "{name}");

        let o = s.bin(&["validate", name], b"");
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}");
        assert!(out.contains(&format!("{name}:3: [gate] status")), "{out}");
        assert!(
            out.contains("cannot read the input from this line on"),
            "{out}"
        );
        assert!(out.contains(why), "{out}");
        assert!(out.contains("rows before the damage"), "{out}");
    }
    // The same from standard input: refused, and no copy is left behind.
    let o = s.bin(&["run", "-"], &gz[..gz.len() / 2]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("(standard input):"), "{}", stderr(&o));
    assert!(files(&s, "invitesync.piped-").is_empty());
    assert!(files(&s, ".invitesync.piped.").is_empty());
    assert_eq!(s.requests(), 0);
}

#[test]
fn semicolon_and_tab_files_come_back_in_their_own_format_round_after_round() {
    let s = Setup::new("");
    let w = s.world();
    // As a spreadsheet saves it: a byte order mark, CRLF, `;`, a cell holding
    // a `;`, a formula, an invalid status and a line with a quote left open.
    let text = "\u{feff}vendor;scope;invite_id;status;note\r\n\
                gate;semi;s1;sent;\"a;b\"\r\n\
                gate;semi;s2;bogus;=1+1\r\n\
                gate;\"semi;broken;sent;n\r\n\
                gate;semi;s4;accepted;plain\r\n";
    let mut input = w.write("excel.csv", text);
    let o = s.bin(&["run", "excel.csv", "--delimiter", ";"], b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let results = std::fs::read(w.path("excel.results.csv")).unwrap();
    assert!(results.starts_with(b"\xef\xbb\xbfvendor;scope;invite_id;status;note;outcome;"));
    let rows = read(&w.path("excel.results.csv"), b';');
    assert_eq!(
        column(&rows, "outcome"),
        ["updated", "invalid", "invalid", "updated"]
    );
    assert_eq!(column(&rows, "note")[0], "a;b");
    assert!(
        column(&rows, "error")[2].starts_with("line 4: csv:"),
        "{rows:?}"
    );

    let mut previous = Vec::new();
    for round in 1..=3 {
        let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
        let fix = std::fs::read(w.path(&format!("{stem}.failed.csv"))).unwrap();
        let fix_text = String::from_utf8_lossy(&fix).into_owned();
        let lines: Vec<&str> = fix_text.lines().collect();
        assert_eq!(lines[0], "\u{feff}vendor;scope;invite_id;status;note;error");
        assert!(
            lines[1].starts_with("gate;semi;s2;bogus;'=1+1;"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "gate;\"semi;broken;sent;n", "kept as written");
        assert_eq!(lines.len(), 3);
        if round > 2 {
            assert_eq!(fix, previous, "round {round}: the same file every round");
        }
        previous = fix;
        input = w.path(&format!("round{round}.csv"));
        std::fs::write(&input, &previous).unwrap();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let o = s.bin(&["run", &name, "--delimiter", ";"], b"");
        assert_eq!(o.status.code(), Some(1), "round {round}: {}", stderr(&o));
    }
    let fixed = String::from_utf8(previous)
        .unwrap()
        .replace("bogus", "sent")
        .replace("gate;\"semi;broken", "gate;semi;broken");
    w.write("fixed.csv", &fixed);
    let o = s.bin(&["run", "fixed.csv", "--delimiter", ";"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.updates("securegate/semi/broken"), 1);
    let applied = s.world().sandbox.stats();
    let s2 = applied.invite("securegate/semi/s2").expect("s2 applied");
    assert_eq!(s2.updates, 1);

    // Tabs, from the config's [input] table.
    w.write_config("\n[input]\ndelimiter = \"tab\"\n");
    w.write(
        "tabs.tsv",
        "vendor\tscope\tinvite_id\tstatus\tnote\ngate\ttab\tt1\tsent\ta,b\n",
    );
    let o = s.bin(&["run", "tabs.tsv"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = read(&w.path("tabs.results.csv"), b'\t');
    assert_eq!(
        rows[0][..5],
        ["vendor", "scope", "invite_id", "status", "note"]
    );
    assert_eq!(column(&rows, "note"), ["a,b"]);
    assert_eq!(column(&rows, "outcome"), ["updated"]);
}

#[test]
fn piped_data_with_empty_rows_interrupted_under_the_earlier_numbering_is_not_resumed() {
    let s = Setup::new("");
    let text = "vendor,scope,invite_id,status\ngate,pipe7,a,sent\n,,,\ngate,pipe7,b,sent\n,,,\n";
    let o = s.bin(&["run", "-"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rows = read(&s.dir().join("stdin.results.csv"), b',');
    assert_eq!(column(&rows, "outcome"), ["updated", "updated"]);

    // As the earlier release left it: interrupted, with its copy named after
    // the fingerprint of the rule that read `,,,` as rows.
    let mut h = blake3::Hasher::new();
    h.update(b"invitesync rows 2\0");
    h.update(text.as_bytes());
    let earlier = h.finalize().to_hex().to_string();
    let dir = std::fs::canonicalize(s.dir()).unwrap();
    let copy = dir.join(format!("invitesync.piped-{}.csv", &earlier[..16]));
    std::fs::write(&copy, text).unwrap();
    let db = rusqlite::Connection::open(s.dir().join("invitesync.db")).unwrap();
    db.execute(
        "UPDATE runs SET status = 'interrupted', input_fingerprint = ?1, input_path = ?2",
        [&earlier, &copy.display().to_string()],
    )
    .unwrap();
    drop(db);

    let o = s.bin(&["run", "-"], text.as_bytes());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("recorded by an earlier release of invitesync, which numbered the rows"),
        "{err}"
    );
    assert!(err.contains("--new-run"), "{err}");
    assert!(!err.contains("is different"), "{err}");
    let left: Vec<_> = files(&s, "invitesync.piped-")
        .iter()
        .map(|p| p.file_name().map(|n| n.to_owned()))
        .collect();
    assert_eq!(
        left,
        [copy.file_name().map(|n| n.to_owned())],
        "the old copy only"
    );

    let o = s.bin(&["run", "-", "--new-run"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(files(&s, "invitesync.piped-").is_empty());
}

#[test]
fn a_finished_run_of_piped_input_is_exported_from_the_same_data_given_again() {
    let s = Setup::new("");
    let text = "vendor,scope,invite_id,status\ngate,pipe8,a,sent\ngate,pipe8,b,sent\n";
    let o = s.bin(&["run", "-"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        files(&s, "invitesync.piped-").is_empty(),
        "removed at the end"
    );

    let o = s.bin(&["export"], b"");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for said in [
        "run 1 read piped input, and the copy it kept of it (",
        ") was removed when the run finished, so export has no input to read its rows from: \
         give it the same data again, as a file (`--input FILE`) or on standard input \
         (`--input -`",
    ] {
        assert!(err.contains(said), "`{said}` in: {err}");
    }
    assert!(!err.contains("no such file"), "{err}");

    // The same data on standard input, or in a file: the file `run` wrote.
    let results = std::fs::read(s.dir().join("stdin.results.csv")).unwrap();
    std::fs::remove_file(s.dir().join("stdin.results.csv")).unwrap();
    let o = s.bin(&["export", "--input", "-"], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrote stdin.results.csv"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(s.dir().join("stdin.results.csv")).unwrap(),
        results
    );
    s.world().write("again.csv", text);
    let o = s.bin(
        &["export", "--input", "again.csv", "-o", "from-file.csv"],
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(s.dir().join("from-file.csv")).unwrap(),
        results
    );

    // Other data is refused, and the output is shown escaped.
    let out = "out\u{1b}[31m.csv";
    let o = s.bin(
        &["export", "--input", "-", "-o", out],
        &text.as_bytes()[..60],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the standard input is not the input run 1 read ("),
        "{err}"
    );
    assert!(
        err.contains("so out\\u{1b}[31m.csv was not written"),
        "{err}"
    );
    assert!(err.contains("give export the data run 1 read"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    let o = s.bin(&["export", "--input", "-", "-o", "no\u{1b}[2J/x.csv"], b"");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write --output no\\u{1b}[2J/x.csv"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err:?}");
    let o = s.bin(&["export", "--input", "-", "-o", out], text.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrote out\\u{1b}[31m.csv"),
        "{:?}",
        stderr(&o)
    );
}

#[test]
fn another_systems_export_is_mapped_and_runs_end_to_end() {
    let s = Setup::new("\n[input.columns]\ninvite_id = \"Invitation ID\"\nscope = \"Event\"\n");
    let w = s.world();
    let text = "Invitation ID,Event,Owner,State\n\
                m1,mapped,ann,accepted\n\
                m2,mapped,bob,sent\n\
                m3,mapped,cy,maybe\n";
    w.write("export.csv", text);
    let flags = ["--vendor", "gate", "--column", "status=State"];
    let o = s.bin(&[&["validate", "export.csv"][..], &flags].concat(), b"");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    for line in [
        "  vendor     gate for every row (--vendor)",
        "  scope      column 2, `Event` ([input.columns])",
        "  invite_id  column 1, `Invitation ID` ([input.columns])",
        "  status     column 4, `State` (--column)",
        "  copied to the results only: Owner",
        "export.csv:4: [gate] status: `maybe`",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }

    let o = s.bin(&[&["run", "export.csv"][..], &flags].concat(), b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(s.updates("securegate/mapped/m1"), 1);
    assert_eq!(s.updates("securegate/mapped/m2"), 1);
    let rows = read(&w.path("export.results.csv"), b',');
    assert_eq!(
        rows[0][..5],
        ["Invitation ID", "Event", "Owner", "State", "outcome"]
    );
    assert_eq!(column(&rows, "outcome"), ["updated", "updated", "invalid"]);
    assert_eq!(column(&rows, "Owner"), ["ann", "bob", "cy"]);
    // The rows to fix keep the export's names, and go back with the same mapping.
    let fix = std::fs::read_to_string(w.path("export.failed.csv")).unwrap();
    assert!(fix.starts_with("Invitation ID,Event,Owner,State,error\nm3,mapped,cy,maybe,"));
    // `export` reads the input with the mapping the run recorded.
    let o = s.bin(&["export", "--output", "again.csv"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(w.path("again.csv")).unwrap(),
        std::fs::read(w.path("export.results.csv")).unwrap()
    );

    // A mapping to a column the file lacks names the file's columns.
    let o = s.bin(
        &[
            "run",
            "export.csv",
            "--vendor",
            "gate",
            "--column",
            "status=Status",
        ],
        b"",
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--column status=Status: the file has no column `Status` (its columns: Invitation ID, Event, Owner, State)"),
        "{err}"
    );
    // A fixed vendor with a vendor column: a row naming another vendor is
    // invalid, never sent to the fixed one.
    w.write(
        "mixed.csv",
        "vendor,Invitation ID,Event,State\n,x1,mapped,sent\nhub,x2,mapped,sent\n",
    );
    let o = s.bin(&[&["run", "mixed.csv"][..], &flags].concat(), b"");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let rows = read(&w.path("mixed.results.csv"), b',');
    assert_eq!(column(&rows, "outcome"), ["updated", "invalid"]);
    assert!(column(&rows, "error")[1].contains("every row's vendor is `gate`"));
    assert_eq!(s.updates("securegate/mapped/x2"), 0);
}

#[test]
fn a_header_cut_at_the_wrong_delimiter_says_which_to_use() {
    let s = Setup::new("");
    let w = s.world();
    w.write("semi.csv", "vendor;scope;invite_id;status\ngate;e;i;sent\n");
    w.write(
        "tabs.csv",
        "vendor\tscope\tinvite_id\tstatus\ngate\te\ti\tsent\n",
    );
    w.write(
        "comma.csv",
        "vendor,scope,invite_id,status\ngate,e,i,sent\n",
    );
    for (file, extra, hint) in [
        ("semi.csv", None, "pass --delimiter ';'"),
        ("tabs.csv", None, "pass --delimiter tab"),
        ("comma.csv", Some(";"), "pass --delimiter ','"),
    ] {
        for command in ["run", "validate"] {
            let mut args = vec![command, file];
            if let Some(d) = extra {
                args.extend(["--delimiter", d]);
            }
            let o = s.bin(&args, b"");
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(&format!("{file}:1: no `vendor` column")),
                "{err}"
            );
            assert!(err.contains(hint), "{args:?}: {err}");
        }
    }
    assert_eq!(s.requests(), 0);
}

/// Starts `run -` with half of `text` written to its standard input, and
/// waits until that half is being copied beside the state file.
fn half_piped(
    s: &Setup,
    args: &[&str],
    text: &str,
    stderr: Stdio,
) -> (std::process::Child, std::process::ChildStdin) {
    let mut child = s
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(&text.as_bytes()[..text.len() / 2]).unwrap();
    pipe.flush().unwrap();
    let part = s
        .dir()
        .join(format!(".invitesync.piped.{}.part", child.id()));
    wait_for("half the data is copied", &mut child, || {
        std::fs::metadata(&part).is_ok_and(|m| m.len() > 0)
    });
    (child, pipe)
}
