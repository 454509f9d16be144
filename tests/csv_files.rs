//! Input files as users really have them, through the built binary: blank
//! lines, a spreadsheet's empty rows and quoted line breaks, quotes left open anywhere, rows-to-fix files
//! fed back round after round, control characters in cells, inputs with no
//! rows, and any bytes at all (a property test). Every run finishes, every
//! record is one line of the results, and the exit code is the documented one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Setup, column, read_csv};

impl Setup {
    fn new() -> Setup {
        Setup::with_config("")
    }

    /// The binary in the world's directory, in the tests' clean environment.
    fn bin(&self, args: &[&str]) -> Output {
        let mut cmd = self.world().command(args);
        cmd.env("NO_COLOR", "1");
        cmd.output().expect("binary runs")
    }

    /// `invitesync run FILE --config ... --quiet` plus `extra`.
    fn run(&self, file: &str, extra: &[&str]) -> Output {
        let config = self.world().config.display().to_string();
        let mut args = vec!["run", file, "--config", &config, "--quiet"];
        args.extend_from_slice(extra);
        self.bin(&args)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `in.csv` → `in.results.csv` beside it.
fn results_of(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap().to_string_lossy();
    input.with_file_name(format!("{stem}.results.csv"))
}

/// `in.csv` → `in.failed.csv` beside it.
fn failed_of(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap().to_string_lossy();
    input.with_file_name(format!("{stem}.failed.csv"))
}

const HEAD: &str = "vendor,scope,invite_id,status,note";

#[test]
fn blank_lines_and_quoted_line_breaks_finish_the_run() {
    let s = Setup::new();
    let w = s.world();
    let cases: [(&str, String, usize); 6] = [
        ("trailing", format!("{HEAD}\ngate,ev1,t1,sent,x\n\n"), 1),
        (
            "middle",
            format!("{HEAD}\n\ngate,ev1,m1,sent,x\n\n\ngate,ev1,m2,sent,y\n\n"),
            2,
        ),
        (
            "crlf",
            format!("{HEAD}\r\ngate,ev1,c1,sent,x\r\n\r\ngate,ev1,c2,sent,y\r\n\r\n"),
            2,
        ),
        (
            "multiline",
            format!("{HEAD}\ngate,ev1,l1,sent,\"two\nlines\"\ngate,ev1,l2,sent,\"a\r\n\r\nb\"\n"),
            2,
        ),
        (
            "bom",
            format!("\u{feff}{HEAD}\ngate,ev1,b1,sent,\"x,\"\"y\"\"\"\n\n"),
            1,
        ),
        (
            "last-line-open",
            format!("{HEAD}\ngate,ev1,o1,sent,x\ngate,ev1,o2,sent,\"oops\n\n"),
            2,
        ),
    ];
    for (name, text, records) in cases {
        let input = w.write(&format!("{name}.csv"), &text);
        let file = input.display().to_string();
        let want = if name == "last-line-open" { 1 } else { 0 };
        for attempt in ["first", "again"] {
            let o = s.run(&file, &[]);
            assert_eq!(
                o.status.code(),
                Some(want),
                "{name}, {attempt} run: {}",
                stderr(&o)
            );
            assert!(!stderr(&o).contains("to resume"), "{name}: {}", stderr(&o));
            let rows = read_csv(&results_of(&input));
            assert_eq!(rows.len(), 1 + records, "{name}: one line per record");
            assert!(!column(&rows, "outcome").contains(&"pending".to_string()));
        }
        let notes = column(&read_csv(&results_of(&input)), "note");
        match name {
            "multiline" => assert_eq!(notes, ["two\nlines", "a\r\n\r\nb"]),
            "bom" => assert_eq!(notes, ["x,\"y\""]),
            _ => {}
        }
    }
    // `status` counts the rows of the file, not its lines: every run is done.
    let state = w.path("invitesync.db").display().to_string();
    let o = s.bin(&["status", "--state", &state]);
    let out = stdout(&o);
    let done: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rows done "))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert!(!done.is_empty(), "{out}");
    for d in done {
        let (n, total) = d.split_once('/').expect("N/TOTAL");
        assert_eq!(n, total, "{out}");
    }
}

#[test]
fn an_open_quote_anywhere_is_one_invalid_row_and_the_lines_after_it_are_rows() {
    let s = Setup::new();
    let w = s.world();
    let fresh = std::cell::Cell::new(0);
    let ok = |note: &str| {
        fresh.set(fresh.get() + 1);
        format!("gate,ev2,q{},sent,{note}", fresh.get())
    };
    let broken = [
        "\"gate,ev2,x,sent,n",
        "gate,\"ev2,x,sent,n",
        "gate,ev2,x,sent,\"n",
        "gate,ev2,x,\"sent,n",
        "gate,ev2,x,sent,\"n\"\"",
    ];
    for (k, bad) in broken.iter().enumerate() {
        for crlf in [false, true] {
            for at in [0, 1, 3] {
                let end = if crlf { "\r\n" } else { "\n" };
                let mut lines = vec![HEAD.to_string()];
                for i in 0..4 {
                    lines.push(if i == at { bad.to_string() } else { ok("n") });
                }
                // A row with a properly quoted cell after it.
                lines.push(ok("\"a,b\""));
                let text = lines.join(end) + if at == 3 { "" } else { end };
                let name = format!("open-{k}-{crlf}-{at}.csv");
                let input = w.write(&name, &text);
                let o = s.run(&input.display().to_string(), &[]);
                assert_eq!(o.status.code(), Some(1), "{text:?}: {}", stderr(&o));
                let rows = read_csv(&results_of(&input));
                let outcomes = column(&rows, "outcome");
                assert_eq!(outcomes.len(), 5, "{text:?}: {outcomes:?}");
                for (i, outcome) in outcomes.iter().enumerate() {
                    let want = if i == at { "invalid" } else { "updated" };
                    assert_eq!(outcome, want, "{text:?}: row {i} of {outcomes:?}");
                }
                let error = &column(&rows, "error")[at];
                assert!(
                    error.starts_with(&format!("line {}: csv: ", at + 2)),
                    "{text:?}: {error}"
                );
            }
        }
    }
}

#[test]
fn a_rows_to_fix_file_goes_round_any_number_of_times() {
    let s = Setup::new();
    let w = s.world();
    // Unknown columns named like result columns, a formula, values that
    // really start with an apostrophe, a broken line, a short line.
    let text = [
        "vendor,scope,invite_id,status,note,outcome,attempts",
        "gate,ev3,ok1,sent,=1+1,o1,a1",
        "gate,ev3,''=x,bogus,'plain,o2,a2",
        "gate,ev3,'quote,bogus,''-2,o3,a3",
        "gate,\"ev3,broken,sent,n,o4,a4",
        "gate,ev3,short",
        "gate,ev3,ok2,sent,@cmd,o6,a6",
    ]
    .join("\n")
        + "\n";
    let mut input = w.write("round0.csv", &text);
    let o = s.run(&input.display().to_string(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let mut previous = String::new();
    for round in 1..=4 {
        let results = read_csv(&results_of(&input));
        let header = &results[0];
        let mut names: Vec<String> = header.iter().map(|n| n.to_ascii_lowercase()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), header.len(), "unique names: {header:?}");
        for r in &results {
            assert_eq!(r.len(), header.len(), "one value per name: {r:?}");
        }
        assert_eq!(
            column(&results, "outcome").len(),
            if round == 1 { 6 } else { 4 }
        );

        let fix = failed_of(&input);
        let fix_text = std::fs::read_to_string(&fix).unwrap();
        if round > 2 {
            assert_eq!(
                fix_text, previous,
                "round {round}: the same file every round"
            );
        }
        previous = fix_text.clone();
        let lines: Vec<&str> = fix_text.lines().collect();
        assert_eq!(
            lines[0],
            "vendor,scope,invite_id,status,note,outcome,attempts,error"
        );
        assert!(
            lines[1].starts_with("gate,ev3,''=x,bogus,'plain,o2,a2,\"line "),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("gate,ev3,'quote,bogus,''-2,o3,a3,\"line "),
            "{}",
            lines[2]
        );
        assert_eq!(
            lines[3], "gate,\"ev3,broken,sent,n,o4,a4",
            "kept as written"
        );
        assert_eq!(lines[4], "gate,ev3,short", "kept as written");
        assert_eq!(lines.len(), 5);

        let next = w.path(&format!("round{round}.csv"));
        std::fs::copy(&fix, &next).unwrap();
        input = next;
        let o = s.run(&input.display().to_string(), &[]);
        assert_eq!(o.status.code(), Some(1), "round {round}: {}", stderr(&o));
        let errors = column(&read_csv(&results_of(&input)), "error");
        assert!(
            errors[0].starts_with("line 2: status: `bogus`"),
            "{errors:?}"
        );
        assert!(
            errors[2].starts_with("line 4: csv: a quoted field"),
            "{errors:?}"
        );
        assert!(
            errors[3].starts_with("line 5: csv: expected 8 fields"),
            "{errors:?}"
        );
    }

    // Fixed in place, the rows are sent with the values they were written with.
    let fixed = std::fs::read_to_string(&input)
        .unwrap()
        .replace("bogus", "sent")
        .replace("gate,\"ev3,broken", "gate,ev3,broken")
        .replace("gate,ev3,short", "gate,ev3,short,sent,,,");
    let last = w.write("fixed.csv", &fixed);
    let o = s.run(&last.display().to_string(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let results = read_csv(&results_of(&last));
    assert_eq!(column(&results, "outcome"), ["updated"; 4]);
    assert_eq!(column(&results, "note")[0], "'plain");
    assert_eq!(
        column(&results, "note")[1],
        "''-2",
        "the value `'-2`, neutralised"
    );
    assert!(column(&results, "input_error")[0].contains("status"));
    let stats = w.sandbox.stats();
    for id in ["'=x", "'quote", "broken", "short"] {
        let key = format!("securegate/ev3/{id}");
        assert_eq!(
            stats.invite(&key).map(|i| i.updates),
            Some(1),
            "{key} in {:?}",
            stats.invites.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn control_characters_from_the_input_are_shown_escaped() {
    let s = Setup::new();
    let w = s.world();
    w.write(
        "ctl.csv",
        "vendor,scope,invite_id,stat\u{7}us\n\
         \u{1b}]0;pwned\u{7}gate,ev4,a,\u{1b}[2Jbogus\n\
         gate,ev4,b\u{9b}31m,sent\n",
    );
    let config = w.config.display().to_string();
    for args in [
        vec!["validate", "ctl.csv", "--config", &config],
        vec!["run", "ctl.csv", "--config", &config, "--dry-run"],
        vec!["run", "ctl.csv", "--config", &config],
    ] {
        let o = s.bin(&args);
        let all = [o.stdout.clone(), o.stderr.clone()].concat();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        for c in ["\u{1b}", "\u{7}", "\u{9b}"] {
            assert!(
                !String::from_utf8_lossy(&all).contains(c),
                "{args:?} printed {c:?} raw: {:?}",
                String::from_utf8_lossy(&all)
            );
        }
        if args[0] == "validate" {
            let out = stdout(&o);
            assert!(
                out.contains("unknown vendor `\\u{1b}]0;pwned\\u{7}gate`"),
                "{out}"
            );
        }
    }
    w.write("hdr.csv", "vend\u{1b}[2Jor,scope\ngate,x\n");
    let o = s.bin(&["validate", "hdr.csv", "--config", &config]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("vend\\u{1b}[2Jor"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn an_input_without_rows_is_a_warning_and_exit_1_unless_allowed() {
    let s = Setup::new();
    let w = s.world();
    for (name, text) in [
        ("header.csv", format!("{HEAD}\n")),
        ("blank.csv", format!("{HEAD}\r\n\r\n\n")),
        ("nolineend.csv", HEAD.to_string()),
    ] {
        let input = w.write(name, &text);
        let file = input.display().to_string();
        let o = s.run(&file, &["--summary-json", "summary.json"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("no data rows"), "{name}: {err}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(w.path("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["exit_code"], 1, "{summary}");
        assert_eq!(read_csv(&results_of(&input)).len(), 1, "the header only");

        let o = s.run(&file, &["--dry-run"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let o = s.run(&file, &["--allow-empty"]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));

        let config = w.config.display().to_string();
        let o = s.bin(&["validate", &file, "--config", &config]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        assert!(stdout(&o).contains("no data rows"), "{}", stdout(&o));
    }
    // Not even a header: a usage error, as before.
    let input = w.write("empty.csv", "\n\r\n");
    let o = s.run(&input.display().to_string(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("the file is empty"), "{}", stderr(&o));
}

#[test]
fn a_run_interrupted_under_another_row_numbering_is_not_resumed() {
    let s = Setup::new();
    let w = s.world();
    let text = format!("{HEAD}\r\ngate,ev6,a,sent,x\r\n\r\ngate,ev6,b,sent,y\r\n");
    let input = w.write("older.csv", &text);
    let file = input.display().to_string();
    let o = s.run(&file, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // As an earlier release recorded it: interrupted, fingerprinted by the
    // bytes alone (that release numbered the blank CRLF line as a row).
    let db = rusqlite::Connection::open(w.path("invitesync.db")).unwrap();
    let plain = blake3::hash(text.as_bytes()).to_hex().to_string();
    db.execute(
        "UPDATE runs SET status = 'interrupted', input_fingerprint = ?1",
        [&plain],
    )
    .unwrap();
    drop(db);
    let o = s.run(&file, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be resumed safely"), "{err}");
    assert!(err.contains("--new-run"), "{err}");
    let o = s.run(&file, &["--new-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `invitesync rows 2\0` and `bytes` hashed: the fingerprint a release
/// before empty rows were skipped recorded for them.
fn rows2_fingerprint(bytes: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"invitesync rows 2\0");
    h.update(bytes);
    h.finalize().to_hex().to_string()
}

/// Marks the latest run of the world's state file interrupted, as if it
/// had been recorded with the input fingerprint `fp`.
fn interrupt_latest_run(w: &common::World, fp: &str) {
    let db = rusqlite::Connection::open(w.path("invitesync.db")).unwrap();
    db.execute(
        "UPDATE runs SET status = 'interrupted', input_fingerprint = ?1 \
         WHERE id = (SELECT max(id) FROM runs)",
        [fp],
    )
    .unwrap();
}

fn run_count(w: &common::World) -> i64 {
    let db = rusqlite::Connection::open(w.path("invitesync.db")).unwrap();
    db.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_spreadsheets_empty_rows_are_not_rows() {
    let s = Setup::new();
    let w = s.world();
    for (name, text, flags) in [
        (
            "sheet.csv",
            format!(
                ",,,,\r\n{HEAD}\r\ngate,ev7,a,sent,x\r\n \t \r\ngate,ev7,b,sent,y\r\n,,,,\r\n,, ,,\r\n,,,,"
            ),
            &[][..],
        ),
        (
            "sheet-semicolon.csv",
            format!(
                "{}\ngate;ev7;c;sent;x\n;;;;\n\t\ngate;ev7;d;sent;y\n;;;;\n",
                HEAD.replace(',', ";")
            ),
            &["--delimiter", ";"][..],
        ),
        (
            "sheet-tab.csv",
            format!(
                "{}\ngate\tev7\te\tsent\tx\n\t\t\t\t\n  \ngate\tev7\tf\tsent\ty\n\t\t\t\t\n",
                HEAD.replace(',', "\t")
            ),
            &["--delimiter", "tab"][..],
        ),
    ] {
        let input = w.write(name, &text);
        let o = s.run(&input.display().to_string(), flags);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let results = std::fs::read_to_string(results_of(&input)).unwrap();
        let d = if flags.is_empty() {
            ','
        } else if flags[1] == ";" {
            ';'
        } else {
            '\t'
        };
        let outcomes: Vec<&str> = results
            .lines()
            .skip(1)
            .map(|l| l.split(d).nth(5).unwrap_or_default())
            .collect();
        assert_eq!(
            outcomes, ["updated"; 2],
            "{name}: only the real rows: {results}"
        );
        // Written again from the state file, the same rows.
        let state = w.path("invitesync.db").display().to_string();
        let o = s.bin(&["export", "--state", &state]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(results_of(&input)).unwrap(),
            results
        );
    }
    let config = w.config.display().to_string();
    let o = s.bin(&["validate", "sheet.csv", "--config", &config]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn a_run_recorded_before_empty_rows_were_skipped_is_not_resumed_with_other_numbers() {
    let s = Setup::new();
    let w = s.world();
    let text = format!("{HEAD}\ngate,ev8,a,sent,x\n,,,,\ngate,ev8,b,sent,y\n");
    let input = w.write("sheet.csv", &text);
    let file = input.display().to_string();
    let o = s.run(&file, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // As the earlier release recorded it: its fingerprint by the rule that
    // read `,,,,` as row 2, interrupted.
    interrupt_latest_run(w, &rows2_fingerprint(text.as_bytes()));
    let o = s.run(&file, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("recorded by an earlier release of invitesync, which numbered this file's rows differently"),
        "{err}"
    );
    assert!(err.contains("empty rows"), "{err}");
    assert!(err.contains("--new-run"), "{err}");
    assert!(!err.contains("changed since"), "{err}");
    let o = s.run(&file, &["--new-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A file without empty rows keeps the fingerprint that release gave it,
    // so its run resumes.
    let text = format!("{HEAD}\ngate,ev8,c,sent,x\n\r\n\ngate,ev8,d,sent,y\n");
    let input = w.write("plain.csv", &text);
    let file = input.display().to_string();
    let o = s.run(&file, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    interrupt_latest_run(w, &rows2_fingerprint(text.as_bytes()));
    let runs = run_count(w);
    let o = s.run(&file, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(run_count(w), runs, "resumed, not a new run");
}

#[test]
fn a_cell_that_is_not_utf8_is_named_and_counted_under_the_rows_vendor_if_it_can_be_read() {
    let s = Setup::new();
    let w = s.world();
    let input = w.path("latin1.csv");
    let mut bytes = format!("{HEAD}\ngate,ev9,a,sent,x\n").into_bytes();
    bytes.extend_from_slice(b"g\xe9ate,ev9,b,sent,x\ngate,ev9,c,\xe9,x\n");
    std::fs::write(&input, bytes).unwrap();
    let o = s.run(
        &input.display().to_string(),
        &["--summary-json", "summary.json"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("summary.json")).unwrap()).unwrap();
    let vendors = &summary["vendors"];
    assert_eq!(vendors["gate"]["updated"], 1, "{summary}");
    assert_eq!(
        vendors["gate"]["invalid"], 1,
        "the status is unreadable, not the vendor: {summary}"
    );
    assert_eq!(vendors["(no vendor)"]["invalid"], 1, "{summary}");
    let errors = column(&read_csv(&results_of(&input)), "error");
    assert_eq!(
        errors[1],
        "line 3: vendor: not valid UTF-8: column 1 holds the byte 0xE9 (at byte 2 of the cell), \
         which UTF-8 text cannot; save the file as UTF-8 (in Excel: CSV UTF-8)"
    );
    assert!(
        errors[2].starts_with("line 4: status: not valid UTF-8: column 4 holds the byte 0xE9"),
        "{errors:?}"
    );
}

mod any_bytes {
    //! Whatever the bytes, a run ends with 0, 1 or 2, never 3 and never a
    //! panic, and the results file has one line per record of the input.

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use super::*;

    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::sample::select(vec![
                &b"gate"[..],
                b"ev5",
                b"inv",
                b"sent",
                b"bogus",
                b",",
                b",",
                b",",
                b"\"",
                b"\"\"",
                b"\r",
                b"\n",
                b"\n",
                b"\r\n",
                b"\xef\xbb\xbf",
                b"\xff\xfe",
                b"=1+1",
                b"'",
                b" ",
                b"\0",
                b"\x1b]0;x\x07",
            ])
            .prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 0..4),
        ]
    }

    fn near_csv() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(token(), 0..60).prop_map(|t| t.concat())
    }

    fn header() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![
            format!("{HEAD}\n").into_bytes(),
            format!("{HEAD}\r\n").into_bytes(),
            format!("\u{feff}{HEAD}\n").into_bytes(),
        ])
    }

    /// Bytes, and whether they start with a header invitesync accepts.
    fn input() -> impl Strategy<Value = (Vec<u8>, bool)> {
        prop_oneof![
            1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| (b, false)),
            1 => near_csv().prop_map(|b| (b, false)),
            4 => (header(), near_csv()).prop_map(|(h, b)| ([h, b].concat(), true)),
            2 => (header(), prop::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(h, b)| ([h, b].concat(), true)),
        ]
    }

    /// A note cell, written as CSV, and its value.
    fn note() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            "[a-z]{0,6}".prop_map(|v| (v.clone(), v)),
            "[a-z]{0,3}[,\"]{1,3}[a-z]{0,3}"
                .prop_map(|v| (format!("\"{}\"", v.replace('"', "\"\"")), v)),
            (
                "[a-z]{0,3}",
                prop::sample::select(vec!["\n", "\r\n", "\n\n", "\r\n\r\n"])
            )
                .prop_map(|(v, nl)| (format!("\"{v}{nl}{v}\""), format!("{v}{nl}{v}"))),
            Just(("''=x".to_string(), "'=x".to_string())),
        ]
    }

    /// Well-formed CSV with blank lines here and there: its records are known.
    fn well_formed() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((0..3usize, note()), 0..8),
            0..3usize,
        )
            .prop_map(|(crlf, bom, rows, trailing)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut text = String::new();
                if bom {
                    text.push('\u{feff}');
                }
                text.push_str(HEAD);
                text.push_str(nl);
                let mut notes = Vec::new();
                for (i, (blanks, (cell, value))) in rows.into_iter().enumerate() {
                    text.push_str(&nl.repeat(blanks));
                    text.push_str(&format!("gate,ev5,w{i},sent,{cell}{nl}"));
                    notes.push(value);
                }
                text.push_str(&nl.repeat(trailing));
                (text.into_bytes(), notes)
            })
    }

    fn runner(cases: u32) -> TestRunner {
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    }

    /// Runs `bytes` as a fresh input with a state file of its own; checks
    /// what holds for any input and returns the exit code and the results.
    fn run_once(s: &Setup, n: usize, bytes: &[u8]) -> (i32, Vec<Vec<String>>) {
        let dir = s.world().path(&format!("case{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.csv");
        std::fs::write(&input, bytes).unwrap();
        let state = dir.join("state.db").display().to_string();
        let o = s.run(&input.display().to_string(), &["--state", &state]);
        let err = stderr(&o);
        let code = o.status.code().expect("exited, not killed");
        assert!(
            [0, 1, 2].contains(&code),
            "exit {code} for {:?}: {err}",
            String::from_utf8_lossy(bytes)
        );
        assert!(
            !err.contains("hit a bug") && !err.contains("panicked"),
            "{err}"
        );
        if code == 2 {
            assert!(err.starts_with("error: "), "{err}");
            assert!(!results_of(&input).exists());
            return (code, Vec::new());
        }
        let results = read_csv(&results_of(&input));
        let (_, records) = invitesync::input::scan(&input, &Default::default()).unwrap();
        assert_eq!(
            results.len() as u64,
            1 + records,
            "one line per record of {:?}",
            String::from_utf8_lossy(bytes)
        );
        for r in &results {
            assert_eq!(r.len(), results[0].len(), "one value per name: {r:?}");
        }
        let outcomes = column(&results, "outcome");
        assert!(!outcomes.iter().any(|o| o == "pending"), "{outcomes:?}");
        (code, results)
    }

    #[test]
    fn any_bytes_end_with_0_1_or_2_and_one_result_per_record() {
        let s = Setup::new();
        let n = std::cell::Cell::new(0);
        runner(40)
            .run(&input(), |(bytes, headed)| {
                n.set(n.get() + 1);
                let (code, _) = run_once(&s, n.get(), &bytes);
                if headed {
                    prop_assert!(code != 2, "a good header is read");
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn well_formed_files_have_exactly_their_records() {
        let s = Setup::new();
        let n = std::cell::Cell::new(0);
        runner(24)
            .run(&well_formed(), |(bytes, notes)| {
                n.set(n.get() + 1);
                let (code, results) = run_once(&s, n.get(), &bytes);
                prop_assert_eq!(code, if notes.is_empty() { 1 } else { 0 });
                prop_assert_eq!(results.len(), 1 + notes.len());
                let read: Vec<String> = column(&results, "note")
                    .iter()
                    .map(|c| invitesync::results::unneutralise(c).to_string())
                    .collect();
                prop_assert_eq!(read, notes);
                Ok(())
            })
            .unwrap();
    }
}
