//! The command line as an operator meets it, through the built binary: help,
//! completions and man pages, `validate`, error messages, the progress output
//! when there is no terminal, the summary, and secrets kept out of the logs.

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use clap::CommandFactory;
use common::{HEADER, ORG, World, column, read_csv};
use invitesync::sandbox::{FaultSettings, Faults, Kind};

/// The binary in the world's directory, with a clean environment for the
/// things that change its output: no `RUST_LOG`, no `NO_COLOR`, no config
/// from the environment, and a fixed width for help text.
fn cli(world: &World, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("invitesync").expect("binary built");
    cmd.current_dir(world.dir.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("INVITESYNC_CONFIG")
        .env_remove("INVITESYNC_LOG_FORMAT")
        .env("COLUMNS", "100")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

/// The binary with no world (help, version, completions).
fn bare(args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("invitesync")
        .expect("binary built")
        .env_remove("RUST_LOG")
        .env("COLUMNS", "100")
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A sandbox-backed world, kept with the runtime that serves the sandbox.
struct Setup {
    rt: tokio::runtime::Runtime,
    world: Option<World>,
}

impl Setup {
    fn new(seed: Option<&str>, extra: &str) -> Setup {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let world = rt.block_on(World::start(seed, extra));
        Setup {
            rt,
            world: Some(world),
        }
    }

    fn world(&self) -> &World {
        self.world.as_ref().expect("world")
    }
}

impl Drop for Setup {
    /// The sandbox's tasks belong to the runtime: stop them inside it.
    fn drop(&mut self) {
        let world = self.world.take();
        self.rt.block_on(async move { drop(world) });
    }
}

/// Checks that a failed command said so the way every command must: exit
/// code `code`, one or two lines starting `error:`, no panic, no backtrace,
/// no Debug dump. Returns the message.
fn error_message(o: &Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        (1..=2).contains(&lines.len()),
        "one or two lines, got: {err}"
    );
    assert!(lines[0].starts_with("error: "), "{err}");
    for bad in ["panicked", "backtrace", "Error {", "Os {", "kind: "] {
        assert!(!err.contains(bad), "`{bad}` in: {err}");
    }
    err
}

// ---------------------------------------------------------------- help

#[test]
fn every_command_has_help_with_examples() {
    let top = invitesync::cli::Cli::command();
    let names: Vec<String> = top
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let o = bare(&[name, "--help"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(out.contains("\nExamples:\n"), "{name} --help: {out}");
        assert!(
            out.contains(&format!("\n  invitesync {name}")),
            "{name} --help has an example of itself: {out}"
        );
    }
    // Help wraps at the terminal's width: compare with spaces collapsed.
    let run = stdout(&bare(&["run", "--help"]))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "(overrides `[run] concurrency`)",
        "(overrides `[run] state`",
        "(overrides `[run] results`",
        "--dry-run",
        "--quiet",
    ] {
        assert!(run.contains(line), "run --help lacks {line}: {run}");
    }
}

#[test]
fn top_level_help_lists_the_commands_and_exit_codes() {
    let o = bare(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("help", stdout(&o));
}

#[test]
fn version_names_the_release() {
    let o = bare(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!("invitesync {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_for_each_shell_know_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = bare(&["completions", shell]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        for word in ["validate", "export", "dry-run", "config"] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
    }
    let o = bare(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn man_pages_come_from_the_same_definitions() {
    let page = stdout(&bare(&["man"]));
    assert!(
        page.starts_with(".ie"),
        "roff: {}",
        &page[..40.min(page.len())]
    );
    assert!(page.contains(".TH invitesync 1"), "{page}");
    assert!(page.contains("validate"), "lists the commands");
    let run = stdout(&bare(&["man", "run"]));
    assert!(run.contains(".TH invitesync-run 1"), "{run}");
    assert!(run.contains("dry\\-run"), "run's options are on its page");
    let o = bare(&["man", "nope"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("no command `nope`; one of: run, validate"),
        "{err}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let o = bare(&["man", "--out-dir", dir.path().to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for page in ["invitesync.1", "invitesync-run.1", "invitesync-validate.1"] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
}

// ------------------------------------------------------------ validate

fn mixed_rows() -> String {
    [
        HEADER,
        "gate,ev1,inv1,,,,,accepted,,",
        "nobody,ev1,inv2,,,,,sent,,",
        "gate,ev1",
        "gate,ev1,inv3,,,,,maybe,,",
        &format!("om,{ORG},,,,,,,ORG_MEMBER,"),
        "hub,,uuid-1,,,,,pending,,",
        "mighty,acme,1001,ann@example.com,Ann,Lee,,,,",
        "gate,ev1,inv4,,,,,bogus,,",
    ]
    .join("\n")
        + "\n"
}

#[test]
fn validate_reports_every_problem_with_line_column_and_reason() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &mixed_rows());
    let o = cli(
        w,
        &["validate", "in.csv", "--config", "invitesync.toml"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no warnings for a well-named header");
    insta::assert_snapshot!("validate_mixed", stdout(&o));

    // Only the groups and totals.
    let o = cli(
        w,
        &[
            "validate",
            "in.csv",
            "-c",
            "invitesync.toml",
            "--max-lines",
            "1",
        ],
        &[],
    );
    let out = stdout(&o);
    assert!(
        out.contains("... and 5 more (--max-lines N prints more)"),
        "{out}"
    );
    assert!(out.contains("8 rows, 2 valid, 6 invalid"), "{out}");
}

#[test]
fn validate_of_a_clean_file_exits_0_without_credentials() {
    // A vendor whose secret is in an unset variable: validate sends nothing,
    // so it does not need it.
    let s = Setup::new(
        None,
        "[vendors.extra]\nkind = \"securegate\"\nbase_url = \"https://gate.example\"\napi_key = { env = \"INVITESYNC_TEST_SURELY_UNSET\" }\n",
    );
    let w = s.world();
    w.write(
        "ok.csv",
        &format!("{HEADER}\ngate,ev1,inv1,,,,,accepted,,\nextra,ev1,inv1,,,,,sent,,\n"),
    );
    let o = cli(w, &["validate", "ok.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 rows, 2 valid, 0 invalid"));
}

#[test]
fn a_misspelt_column_is_pointed_out_by_run_and_validate() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write(
        "typo.csv",
        "vendor,scope,invite_id,emial,status\nmighty,acme,1001,ann@example.com,\n",
    );
    let hint = "the input has a column `emial` but no `email`: did you mean `email`?";
    let o = cli(w, &["validate", "typo.csv", "-c", "invitesync.toml"], &[]);
    assert!(stderr(&o).contains(hint), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("[mighty] email: required"),
        "{}",
        stdout(&o)
    );
    let o = cli(w, &["run", "typo.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(hint), "{}", stderr(&o));
}

// -------------------------------------------------------------- errors

#[test]
fn a_missing_env_var_names_the_variable_and_the_vendor_table() {
    let s = Setup::new(
        None,
        "[vendors.extra]\nkind = \"securegate\"\nbase_url = \"https://gate.example\"\napi_key = { env = \"INVITESYNC_TEST_SURELY_UNSET\" }\n",
    );
    let w = s.world();
    w.write(
        "in.csv",
        &format!("{HEADER}\ngate,ev1,inv1,,,,,accepted,,\n"),
    );
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], &[]);
    let err = error_message(&o, 2);
    assert!(
        err.contains(
            "invitesync.toml: vendors.extra.api_key: environment variable \
             INVITESYNC_TEST_SURELY_UNSET is not set; export it"
        ),
        "{err}"
    );
    // An empty variable is not a credential either.
    let o = cli(
        w,
        &["run", "in.csv", "-c", "invitesync.toml"],
        &[("INVITESYNC_TEST_SURELY_UNSET", " ")],
    );
    let err = error_message(&o, 2);
    assert!(
        err.contains("environment variable INVITESYNC_TEST_SURELY_UNSET is empty"),
        "{err}"
    );
}

#[test]
fn an_unknown_vendor_lists_the_configured_ones() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\nnobody,ev1,inv1,,,,,sent,,\n"));
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let results = read_csv(&w.path("in.results.csv"));
    assert_eq!(
        column(&results, "error"),
        ["line 2: vendor: unknown vendor `nobody`; the config has: gate, hub, mighty, om"]
    );
}

#[test]
fn refused_credentials_stop_the_vendor_and_say_which_key_to_check() {
    let s = Setup::new(None, "");
    let w = s.world();
    std::fs::write(w.path("secrets/gate"), "not-the-key\n").expect("secret");
    let mut text = String::from(HEADER) + "\n";
    for i in 0..40 {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
        text.push_str(&format!("hub,,uuid-{i},,,,,accepted,,\n"));
    }
    w.write("in.csv", &text);
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let secret_file = w.path("secrets/gate");
    assert!(
        err.contains(&format!(
            "stopped gate: the vendor refused our credentials (HTTP 401) 3 times in a row; \
             check vendors.gate.api_key (file {})",
            std::path::Path::new("secrets").join("gate").display()
        )),
        "{err}"
    );
    assert!(err.contains("pending: 40 rows not finished"), "{err}");
    assert!(
        err.contains("to resume: invitesync run in.csv --config invitesync.toml\n"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-key"),
        "the wrong key is not shown either"
    );
    let results = read_csv(&w.path("in.results.csv"));
    for (v, o) in column(&results, "vendor")
        .iter()
        .zip(column(&results, "outcome"))
    {
        assert_eq!(o, if v == "gate" { "pending" } else { "updated" });
    }

    // The key is fixed; the command the summary gave finishes the run.
    let key = w.sandbox.credentials().securegate_api_key.clone();
    std::fs::write(&secret_file, key).expect("secret");
    let o = cli(w, &["run", "in.csv", "--config", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("(resumed)"), "{err}");
}

#[test]
fn a_broken_line_is_one_invalid_row_with_its_line_number() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write(
        "in.csv",
        &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\ngate,\"ev1,inv2\ngate,ev1,inv3,,,,,sent,,\n"),
    );
    let o = cli(w, &["validate", "in.csv", "-c", "invitesync.toml"], &[]);
    assert!(
        stdout(&o).contains("in.csv:3: csv: a quoted field is not closed on this line"),
        "{}",
        stdout(&o)
    );
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let results = read_csv(&w.path("in.results.csv"));
    assert_eq!(
        column(&results, "outcome"),
        ["updated", "invalid", "updated"]
    );
    assert!(column(&results, "error")[1].starts_with("line 3: csv: a quoted field"));
}

#[test]
fn a_missing_config_file_says_how_to_name_one() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    for cmd in ["run", "validate"] {
        let o = cli(w, &[cmd, "in.csv", "--config", "nope.toml"], &[]);
        let err = error_message(&o, 2);
        assert_eq!(
            err,
            "error: cannot read the config file nope.toml: no such file or directory; \
             pass --config FILE (or set INVITESYNC_CONFIG)\n"
        );
    }
    std::fs::write(w.path("typo.toml"), "[run]\nconcurency = 3\n").expect("config");
    let o = cli(w, &["validate", "in.csv", "--config", "typo.toml"], &[]);
    let err = error_message(&o, 2);
    assert!(
        err.starts_with("error: typo.toml:2:1: unknown field `concurency`"),
        "{err}"
    );
}

#[test]
fn an_unreadable_input_is_named() {
    let s = Setup::new(None, "");
    let w = s.world();
    for cmd in ["run", "validate"] {
        let o = cli(w, &[cmd, "missing.csv", "-c", "invitesync.toml"], &[]);
        let err = error_message(&o, 2);
        assert!(
            err.contains("the input missing.csv: no such file or directory"),
            "{err}"
        );
    }
    std::fs::create_dir(w.path("adir")).expect("dir");
    let o = cli(w, &["run", "adir", "-c", "invitesync.toml"], &[]);
    let err = error_message(&o, 2);
    assert!(err.contains("the input adir is a directory"), "{err}");
    w.write("empty.csv", "");
    let o = cli(w, &["run", "empty.csv", "-c", "invitesync.toml"], &[]);
    let err = error_message(&o, 2);
    assert!(
        err.contains("empty.csv: the file is empty; it needs a header line"),
        "{err}"
    );
    w.write("nohead.csv", "gate,ev1,inv1\n");
    let o = cli(w, &["validate", "nohead.csv", "-c", "invitesync.toml"], &[]);
    let err = error_message(&o, 2);
    assert!(
        err.contains("nohead.csv:1: no `vendor` column in the header"),
        "{err}"
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let s = Setup::new(
        None,
        "[vendors.remote]\nkind = \"securegate\"\nbase_url = \"http://api.securegate.example\"\napi_key = { file = \"secrets/gate\" }\n",
    );
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    for cmd in ["run", "validate"] {
        let o = cli(w, &[cmd, "in.csv", "-c", "invitesync.toml"], &[]);
        let err = error_message(&o, 2);
        assert!(
            err.contains(
                "invitesync.toml: vendors.remote.base_url: plain http:// is refused for \
                 `http://api.securegate.example`"
            ) && err.contains("use https://"),
            "{err}"
        );
    }
}

#[test]
fn a_resume_with_other_options_names_them() {
    let s = Setup::new(None, "");
    let w = s.world();
    std::fs::write(w.path("secrets/gate"), "not-the-key\n").expect("secret");
    let mut text = String::from(HEADER) + "\n";
    for i in 0..10 {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
    }
    w.write("in.csv", &text);
    let o = cli(w, &["run", "in.csv", "-c", "invitesync.toml"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = cli(
        w,
        &["run", "in.csv", "-c", "invitesync.toml", "--force"],
        &[],
    );
    let err = error_message(&o, 2);
    assert!(
        err.contains(
            "was started with no --shard, --force or --recheck-after, and this command has \
             `--force`; resume it with the same options, or pass --new-run"
        ),
        "{err}"
    );
}

// ------------------------------------------------- progress and summary

#[test]
fn no_progress_codes_when_stderr_is_not_a_terminal() {
    let s = Setup::new(None, "");
    let w = s.world();
    let faults = FaultSettings {
        global: Faults {
            latency_ms: Some(5),
            ..Faults::default()
        },
        ..FaultSettings::default()
    };
    w.sandbox.set_faults(faults).expect("faults");
    let mut text = String::from(HEADER) + "\n";
    for i in 0..300 {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
    }
    text.push_str("nobody,x,y,,,,,,,\n");
    w.write("in.csv", &text);
    let o = cli(
        w,
        &[
            "run",
            "in.csv",
            "-c",
            "invitesync.toml",
            "--log-interval",
            "20ms",
        ],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains('\r'), "no carriage returns: {err:?}");
    assert!(!err.contains('\u{1b}'), "no terminal codes: {err:?}");
    assert!(
        err.contains("progress: "),
        "log lines instead of a bar: {err}"
    );
    assert!(err.contains("results: in.results.csv"), "{err}");

    let o = cli(
        w,
        &[
            "run",
            "in.csv",
            "-c",
            "invitesync.toml",
            "--new-run",
            "--quiet",
        ],
        &[],
    );
    let err = stderr(&o);
    assert!(!err.contains("progress: "), "--quiet: {err}");
    assert!(
        err.contains("results: in.results.csv"),
        "the summary stays: {err}"
    );
}

#[test]
fn a_dry_run_shows_the_plan_and_sends_nothing() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &mixed_rows());
    let o = cli(
        w,
        &["run", "in.csv", "-c", "invitesync.toml", "--dry-run"],
        &[],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "invalid rows: {err}");
    let table = summary_table(&err.replace("would send", "would_send"));
    assert_eq!(table["total"]["would_send"], 2, "{err}");
    assert_eq!(table["total"]["invalid"], 6, "{err}");
    assert!(
        err.contains(
            "dry run: nothing was sent; to send: invitesync run in.csv --config invitesync.toml\n"
        ),
        "{err}"
    );
    assert_eq!(w.sandbox.stats().vendor(Kind::Securegate).requests, 0);
    assert!(!w.path("in.results.csv").exists() && !w.path("invitesync.db").exists());
}

fn seed() -> String {
    format!(
        "kind,scope,invite_id,email,first_name,last_name,status,roles\n\
         mighty_networks,acme,1001,ann@example.com,Ann,Lee,,\n\
         securegate,ev1,inv1,gus@example.com,Gus,Ray,pending,\n\
         securegate,ev1,inv2,hal@example.com,Hal,Ng,pending,\n\
         ops_manager,{ORG},,bob@example.com,,,,ORG_MEMBER\n\
         ctrl_hub,,uuid-1,cat@example.com,,,pending,\n\
         ctrl_hub,,uuid-2,dan@example.com,,,pending,\n"
    )
}

/// Rows with every outcome: updated, invalid, rejected (unknown invites are
/// 404 in a seeded sandbox), failed (Ctrl-Hub answers only 503), and
/// unchanged on a second run.
fn every_outcome() -> String {
    [
        HEADER,
        "Mighty,acme,1001,ann@example.com,Ann,Lee,,,,",
        "gate,ev1,inv1,,,,,accepted,,",
        "gate,ev1,inv2,,,,,rejected,,",
        &format!("om,{ORG},,bob@example.com,,,,,ORG_OWNER,"),
        "gate,ev1,nope,,,,,sent,,",
        "mighty,acme,404,x@example.com,,,,,,",
        "gate,ev1,inv2,,,,,maybe,,",
        "hub,,uuid-1,,,,,accepted,,",
        "hub,,uuid-2,,,,,rejected,,",
        "nobody,ev1,inv1,,,,,sent,,",
    ]
    .join("\n")
        + "\n"
}

/// The summary's table: vendor → outcome → count.
fn summary_table(stderr: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("vendor "))
        .expect("the summary has a table");
    let heads: Vec<&str> = lines[start].split_whitespace().skip(1).collect();
    let mut table = BTreeMap::new();
    for line in &lines[start + 1..] {
        let (name, rest) = match line.strip_prefix("(no vendor)") {
            Some(rest) => ("(no vendor)", rest),
            None => line.split_once(' ').expect("a row"),
        };
        let counts: BTreeMap<String, u64> = heads
            .iter()
            .zip(rest.split_whitespace())
            .map(|(h, n)| (h.to_string(), n.replace(',', "").parse().expect("a count")))
            .collect();
        assert_eq!(counts.len(), heads.len(), "{line}");
        let total = name == "total";
        table.insert(name.to_string(), counts);
        if total {
            break;
        }
    }
    table
}

/// The same counts from the results file. Rows that name no configured
/// vendor (names match case-insensitively) count as `(no vendor)`.
fn results_table(rows: &[Vec<String>]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let names = ["gate", "hub", "mighty", "om"];
    let mut table: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (vendor, outcome) in column(rows, "vendor").iter().zip(column(rows, "outcome")) {
        let vendor = names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(vendor))
            .map_or("(no vendor)".to_string(), |n| n.to_string());
        for key in [vendor, "total".to_string()] {
            *table
                .entry(key)
                .or_default()
                .entry(outcome.clone())
                .or_default() += 1;
        }
    }
    table
}

/// Drops zero counts, so that a vendor with no rows matches its absence.
fn nonzero(t: BTreeMap<String, BTreeMap<String, u64>>) -> BTreeMap<String, BTreeMap<String, u64>> {
    t.into_iter()
        .map(|(v, c)| (v, c.into_iter().filter(|(_, n)| *n > 0).collect()))
        .filter(|(_, c): &(String, BTreeMap<String, u64>)| !c.is_empty())
        .collect()
}

#[test]
fn the_summary_counts_equal_the_results_file() {
    let s = Setup::new(Some(&seed()), "");
    let w = s.world();
    let faults = FaultSettings {
        vendors: [(
            Kind::CtrlHub,
            Faults {
                error_rate: Some(1.0),
                ..Faults::default()
            },
        )]
        .into(),
        ..FaultSettings::default()
    };
    w.sandbox.set_faults(faults).expect("faults");
    w.write("in.csv", &every_outcome());
    let args = [
        "run",
        "in.csv",
        "-c",
        "invitesync.toml",
        "--summary-json",
        "summary.json",
    ];
    for attempt in ["first", "second"] {
        let o = cli(w, &args, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{attempt}: {err}");
        let results = read_csv(&w.path("in.results.csv"));
        let from_results = results_table(&results);
        assert_eq!(
            nonzero(summary_table(&err)),
            from_results,
            "{attempt}: {err}"
        );
        let outcomes: Vec<&str> = from_results["total"].keys().map(String::as_str).collect();
        let expected: &[&str] = if attempt == "first" {
            &["failed", "invalid", "rejected", "updated"]
        } else {
            &["failed", "invalid", "rejected", "unchanged"]
        };
        assert_eq!(
            outcomes, expected,
            "{attempt}: every kind of outcome is covered"
        );

        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(w.path("summary.json")).expect("summary json"),
        )
        .expect("json");
        for (outcome, n) in &from_results["total"] {
            assert_eq!(json["totals"][outcome], *n, "{attempt} {outcome}");
        }
        assert!(err.contains("rows to fix: in.failed.csv\n"), "{err}");
        assert!(
            err.contains(
                "  fix them, then: invitesync run in.failed.csv --config invitesync.toml\n"
            ),
            "{err}"
        );
        if attempt == "first" {
            assert!(err.contains("(the slowest vendor): p50 "), "{err}");
            assert!(json["latency"]["gate"]["round_trips"].as_u64() > Some(0));
        }
    }
}

// ----------------------------------------------------------- secrets

#[test]
fn no_secret_in_any_log_line_even_at_trace_level() {
    let s = Setup::new(None, "");
    let w = s.world();
    let c = w.sandbox.credentials().clone();
    let secrets = [
        c.mighty_token.as_str(),
        c.securegate_api_key.as_str(),
        c.om_public_key.as_str(),
        c.om_private_key.as_str(),
        c.ctrl_hub_token.as_str(),
    ];
    let mut text = String::from(HEADER) + "\n";
    for i in 0..5 {
        text.push_str(&format!(
            "mighty,acme,{},a{i}@example.com,A,B,7,,,\n",
            i + 1
        ));
        text.push_str(&format!("gate,ev1,inv{i},,,,,accepted,,\n"));
        text.push_str(&format!("om,{ORG},,u{i}@example.com,,,,,ORG_MEMBER,\n"));
        text.push_str(&format!("hub,,uuid-{i},,,,,accepted,,\n"));
    }
    w.write("in.csv", &text);
    for format in ["text", "json"] {
        let o = cli(
            w,
            &[
                "run",
                "in.csv",
                "-c",
                "invitesync.toml",
                "--new-run",
                "--force",
                "--log-format",
                format,
            ],
            &[("RUST_LOG", "trace")],
        );
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{format}: {}",
            &err[err.len().saturating_sub(2000)..]
        );
        assert!(
            err.lines().filter(|l| l.contains("TRACE")).count() > 50,
            "{format}: trace logs of the HTTP stack were on"
        );
        for secret in secrets {
            assert!(!err.contains(secret), "{format}: `{secret}` in the logs");
        }
    }
    // Nor in the files the run leaves.
    for file in ["in.results.csv", "invitesync.db", "invitesync.db-wal"] {
        let Ok(bytes) = std::fs::read(w.path(file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "`{secret}` in {file}");
        }
    }
}
