//! A run as the operator watches it: no terminal codes without a terminal,
//! the dry run's plan, and a summary whose counts equal the results file.

use std::collections::BTreeMap;

use invitesync::sandbox::{FaultSettings, Faults, Kind};

use crate::common::{HEADER, ORG, column, read_csv};
use crate::validate::mixed_rows;
use crate::{Setup, cli, stderr};

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
                // A 500 is the vendor's own answer: its rows fail. Only
                // 502/503/504 to everything is an outage, which stops it.
                error_status: Some(500),
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
