//! Errors as the user reads them: what was wrong, where, and what to do,
//! in one or two lines.

use crate::common::{HEADER, column, read_csv};
use crate::{Setup, cli, error_message, stderr, stdout};

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
    let key = w
        .sandbox
        .credentials()
        .get("securegate-api-key")
        .expect("key");
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

#[test]
fn a_password_in_a_base_url_is_never_printed() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    for url in [
        "http://u:PASSWORD@api.securegate.example",
        "https://u:PASSWORD@api.securegate.example/v1",
        "http://u:PASSWORD@[not-a-host",
        "https://u:PASS/WORD@api.securegate.example",
        "http://u:PASSWORD@127.0.0.1:1",
    ] {
        w.write_config(&format!(
            "[vendors.remote]\nkind = \"securegate\"\nbase_url = \"{url}\"\napi_key = {{ file = \"secrets/gate\" }}\n"
        ));
        for (cmd, format) in [("run", "text"), ("run", "json"), ("validate", "text")] {
            let o = cli(
                w,
                &[
                    cmd,
                    "in.csv",
                    "-c",
                    "invitesync.toml",
                    "--log-format",
                    format,
                    "--summary-json",
                    "summary.json",
                ][..if cmd == "run" { 8 } else { 6 }],
                &[],
            );
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{url}: {err}");
            assert!(err.contains("vendors.remote.base_url"), "{url}: {err}");
            assert!(err.contains("[redacted]@"), "{url}: {err}");
            for shown in [err, stdout(&o)] {
                assert!(
                    !shown.contains("PASS") && !shown.contains("u:"),
                    "{url}: {shown}"
                );
            }
            if cmd == "run" {
                let summary = std::fs::read_to_string(w.path("summary.json")).expect("summary");
                assert!(!summary.contains("PASS"), "{summary}");
            }
        }
    }
}

#[test]
fn numbers_out_of_range_are_usage_errors_naming_the_key_and_the_range() {
    let s = Setup::new(None, "");
    let w = s.world();
    w.write("in.csv", &format!("{HEADER}\ngate,ev1,inv1,,,,,sent,,\n"));
    let flags: &[(&[&str], &str)] = &[
        (
            &["--concurrency", "18446744073709551615"],
            "'--concurrency <N>': `18446744073709551615` is not a whole number from 1 to 10000",
        ),
        (&["--concurrency", "0"], "from 1 to 10000"),
        (
            &["--log-interval", "0s"],
            "'--log-interval <DURATION>': `0s` is out of range; use a duration from 1ms to 24h",
        ),
        (
            &["--log-interval", "584942417355y"],
            "use one from 1ms to 24h",
        ),
        (
            &["--recheck-after", "500000000000y"],
            "'--recheck-after <DURATION>': `500000000000y` is out of range; use a duration from 0s to 36500d",
        ),
        (
            &["--shard", "0/4294967296"],
            "--shard `0/4294967296`: N must be a whole number from 1 to 100000",
        ),
        (
            &["--shard", "99999999999/4"],
            "K must be a whole number from 0 to 3",
        ),
    ];
    for (args, want) in flags {
        let mut all = vec!["run", "in.csv", "-c", "invitesync.toml"];
        all.extend_from_slice(args);
        let o = cli(w, &all, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let run = |key: &str, value: &str| format!("[run]\n{key} = {value}\n");
    let gate = |key: &str, value: &str| {
        format!(
            "[vendors.g2]\nkind = \"securegate\"\nbase_url = \"https://g.example\"\n\
             api_key = {{ file = \"secrets/gate\" }}\n{key} = {value}\n"
        )
    };
    let keys: Vec<(String, &str)> = vec![
        (
            run("concurrency", "18446744073709551615"),
            "run.concurrency: 18446744073709551615 is out of range; use a whole number from 1 to 10000",
        ),
        (
            run("concurrency", "-1"),
            "run.concurrency: -1 is out of range",
        ),
        (
            run("max_attempts", "4294967296"),
            "run.max_attempts: 4294967296 is out of range; use a whole number from 1 to 100",
        ),
        (
            run("request_timeout", "\"584942417355y\""),
            "run.request_timeout: `584942417355y` is not a duration",
        ),
        (
            run("request_timeout", "\"0s\""),
            "run.request_timeout: `0s` is out of range; use a duration from 1ms to 1h",
        ),
        (
            run("grace_period", "\"100000000y\""),
            "run.grace_period: `100000000y` is out of range; use a duration from 0s to 1h",
        ),
        (
            run("backoff_base", "\"2h\""),
            "run.backoff_base: `2h` is out of range",
        ),
        (
            run("backoff_cap", "\"1000y\""),
            "run.backoff_cap: `1000y` is out of range; use a duration from 0s to 24h",
        ),
        (
            run("retry_after_cap", "\"1000y\""),
            "run.retry_after_cap: `1000y` is out of range",
        ),
        (
            gate("concurrency", "18446744073709551615"),
            "vendors.g2.concurrency: 18446744073709551615 is out of range; use a whole number from 1 to 10000",
        ),
        (
            gate("max_attempts", "0"),
            "vendors.g2.max_attempts: 0 is out of range",
        ),
        (
            gate("rate_limit", "\"1000000000000/s\""),
            "vendors.g2.rate_limit: `1000000000000` in `1000000000000/s` is not a whole number of requests from 1 to 1000000",
        ),
        (
            gate("backoff_cap", "\"1000y\""),
            "vendors.g2.backoff_cap: `1000y` is out of range",
        ),
    ];
    for (table, want) in keys {
        // `[run]` may appear once: this one replaces the harness's.
        let base = std::fs::read_to_string(&w.config).expect("config");
        let text = if table.starts_with("[run]") {
            let vendors = &base[base.find("[vendors.").expect("vendors")..];
            format!("{table}\n{vendors}")
        } else {
            format!("{base}\n{table}")
        };
        std::fs::write(w.path("range.toml"), text).expect("config");
        for cmd in ["run", "validate"] {
            let o = cli(w, &[cmd, "in.csv", "-c", "range.toml"], &[]);
            let err = error_message(&o, 2);
            assert!(err.contains(&format!("range.toml: {want}")), "{err}");
        }
    }
}

#[test]
fn an_input_name_is_shown_escaped_in_every_message_about_it() {
    let s = Setup::new(None, "");
    let w = s.world();
    // A name with a line break and an escape sequence: neither may reach
    // the terminal or the log as it is.
    let missing = "in\n\u{1b}[2Jmissing.csv";
    let o = cli(w, &["validate", missing, "-c", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("in\\n\\u{1b}[2Jmissing.csv"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
    let empty = "empty\u{1b}.csv";
    w.write(empty, "");
    let o = cli(w, &["run", empty, "-c", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert!(err.contains("empty\\u{1b}.csv"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
    let dir = "dir\u{7}";
    std::fs::create_dir(w.path(dir)).expect("dir");
    let o = cli(w, &["run", dir, "-c", "invitesync.toml"], &[]);
    let err = stderr(&o);
    assert!(err.contains("dir\\u{7}"), "{err}");
    assert!(!err.contains('\u{7}'), "{err}");
}
