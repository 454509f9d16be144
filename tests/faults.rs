//! A hostile vendor: 5xx, resets, hangs, throttling, refused credentials.
//! How fast the runner goes under a rate limit is `make bench`'s to measure;
//! here, what it does: how many requests a limit answers 429.

mod common;

use common::{HEADER, World, column, read_csv};
use invitesync::sandbox::{FaultSettings, Faults, Kind};

fn gate_rows(n: usize) -> String {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..n {
        text.push_str(&format!("gate,ev1,inv{i},,,,,accepted,,\n"));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_lands_through_5xx_resets_and_hangs() {
    let world = World::start(None, "").await;
    world.write_config("");
    // Short timeouts so the hangs cost little; enough attempts to ride it
    // out: with 27 % of attempts failing, one of the 1,500 rows failing all
    // 20 is a chance of a few in a billion.
    world.edit_config(&[
        ("max_attempts = 4", "max_attempts = 20"),
        ("request_timeout = \"5s\"", "request_timeout = \"500ms\""),
    ]);
    let f = FaultSettings {
        global: Faults {
            error_rate: Some(0.20),
            reset_rate: Some(0.05),
            hang_rate: Some(0.02),
            ..Faults::default()
        },
        ..FaultSettings::default()
    };
    world.sandbox.set_faults(f).unwrap();
    let input = world.write("in.csv", &gate_rows(1500));
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0, "{report:?}");
    let results = read_csv(&world.path("in.results.csv"));
    assert!(column(&results, "outcome").iter().all(|o| o == "updated"));
    let stats = world.sandbox.stats();
    let gate = stats.vendor(Kind::Securegate);
    assert!(
        gate.resets > 0
            && gate.status(500) + gate.status(502) + gate.status(503) + gate.status(504) > 0
    );
    for i in 0..1500 {
        let s = stats
            .invite(&format!("securegate/ev1/inv{i}"))
            .expect("reached");
        assert!(s.updates >= 1);
    }
    // Retries went to transient failures only: no 4xx was retried.
    let retried_final = gate
        .statuses
        .iter()
        .filter(|(c, _)| (400..500).contains(*c) && **c != 429)
        .count();
    assert_eq!(retried_final, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_rate_limit_is_learned_without_a_storm_of_429s() {
    let world = World::start(None, "").await;
    let mut f = FaultSettings::default();
    f.vendors.insert(
        Kind::Securegate,
        Faults {
            rate_limit: Some(100.0),
            burst: Some(10.0),
            ..Faults::default()
        },
    );
    world.sandbox.set_faults(f).unwrap();
    let rows = 500;
    let input = world.write("in.csv", &gate_rows(rows));
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0, "{report:?}");
    let results = read_csv(&world.path("in.results.csv"));
    assert!(column(&results, "outcome").iter().all(|o| o == "updated"));
    // Learned, not hammered: once the limit is known, few requests meet it.
    let gate = world.sandbox.stats().vendor(Kind::Securegate);
    let share = gate.status(429) as f64 / gate.requests as f64;
    assert!(
        share < 0.15,
        "{} of {} requests were 429",
        gate.status(429),
        gate.requests
    );
}

/// A configured rate limit holds for every request, retries included. The
/// sandbox enforces the same 50/s (with a burst of 40) and fails 30 % of
/// requests: retries that skipped the limit would push past it and be
/// answered 429; a runner that keeps it never is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_rate_limit_is_kept_by_first_sends_and_retries() {
    let world = World::start(None, "").await;
    // Enough attempts that no row runs out: with 4, a 30% error rate fails
    // one of 60 rows about two runs in five (0.3^4 per row).
    world.edit_config(&[
        (
            "api_key = { file = \"secrets/gate\" }",
            "api_key = { file = \"secrets/gate\" }\nrate_limit = \"50/s\"",
        ),
        ("max_attempts = 4", "max_attempts = 12"),
    ]);
    let mut f = FaultSettings::default();
    f.global.error_rate = Some(0.3);
    f.vendors.insert(
        Kind::Securegate,
        Faults {
            rate_limit: Some(50.0),
            burst: Some(40.0),
            ..Faults::default()
        },
    );
    world.sandbox.set_faults(f).unwrap();
    let input = world.write("in.csv", &gate_rows(200));
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0);
    let gate = world.sandbox.stats().vendor(Kind::Securegate);
    let errors: u64 = [500, 502, 503, 504].iter().map(|c| gate.status(*c)).sum();
    assert!(errors > 0, "retries happened");
    assert_eq!(
        gate.status(429),
        0,
        "{} requests (retries included), {} over the limit",
        gate.requests,
        gate.status(429)
    );
}

/// A Securegate vendor with `faults` and a healthy Ctrl-Hub, 300 rows each:
/// the run stops Securegate alone, with a message saying each of `said`,
/// its rows pending after fewer than `most` requests; once the faults are
/// gone, the same command resumes and sends each row once.
async fn stops_one_vendor_and_a_resume_finishes_it(faults: Faults, said: &[&str], most: u64) {
    let world = World::start(None, "").await;
    let mut text = String::from(HEADER) + "\n";
    for i in 0..300 {
        text.push_str(&format!("gate,ev1,inv{i},,,,,sent,,\n"));
        text.push_str(&format!("hub,,uuid-{i},,,,,accepted,,\n"));
    }
    let input = world.write("in.csv", &text);
    let mut f = FaultSettings::default();
    f.vendors.insert(Kind::Securegate, faults);
    world.sandbox.set_faults(f).unwrap();
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 3, "stopped early, resumable: {report:?}");
    assert_eq!(report.stopped.len(), 1, "{:?}", report.stopped);
    assert!(
        said.iter().all(|s| report.stopped[0].contains(s)),
        "{:?}",
        report.stopped
    );
    let results = read_csv(&world.path("in.results.csv"));
    let outcomes = column(&results, "outcome");
    let vendors = column(&results, "vendor");
    for (v, o) in vendors.iter().zip(&outcomes) {
        match v.as_str() {
            "gate" => assert_eq!(o, "pending", "the stopped vendor's rows stay pending"),
            _ => assert_eq!(o, "updated"),
        }
    }
    let gate = world.sandbox.stats().vendor(Kind::Securegate);
    assert!(
        gate.requests < most,
        "the circuit stopped the traffic ({} requests)",
        gate.requests
    );

    // Fixed, or back; the same command resumes and finishes.
    world.sandbox.set_faults(FaultSettings::default()).unwrap();
    let report = world.run(&input).await;
    assert_eq!(report.exit_code, 0, "{report:?}");
    assert!(report.resumed);
    let results = read_csv(&world.path("in.results.csv"));
    assert!(column(&results, "outcome").iter().all(|o| o == "updated"));
    let stats = world.sandbox.stats();
    assert_eq!(stats.vendor(Kind::Securegate).updates, 300);
    assert_eq!(
        stats.vendor(Kind::CtrlHub).updates,
        300,
        "nothing sent twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_one_vendor_and_a_resume_finishes_it() {
    let revoked = Faults {
        reject_auth: Some(true),
        ..Faults::default()
    };
    stops_one_vendor_and_a_resume_finishes_it(revoked, &["check vendors.gate.api_key"], 30).await;
}

/// A vendor that is down behind its gateway answers 502 to everything: its
/// rows wait for a resume instead of failing one after another, each after
/// all its retries, and the other vendor carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_stops_one_vendor_and_a_resume_finishes_it() {
    let down = Faults {
        error_rate: Some(1.0),
        error_status: Some(502),
        ..Faults::default()
    };
    // Failing every row, each after its 4 attempts, would take 1,200.
    let said = [
        "[vendors.gate] answered nothing but 502, 503 or 504",
        "run the same command again",
    ];
    stops_one_vendor_and_a_resume_finishes_it(down, &said, 1_200).await;
}

/// A vendor that sheds load answers some requests 503 and serves the
/// others: that is busy, not down. Rows that use up their attempts fail
/// as before, and the vendor is never stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_vendor_is_not_stopped_for_its_503s() {
    let world = World::start(None, "").await;
    world.write_config("");
    world.edit_config(&[("max_attempts = 4", "max_attempts = 2")]);
    let mut f = FaultSettings::default();
    f.vendors.insert(
        Kind::Securegate,
        Faults {
            error_rate: Some(0.4),
            error_status: Some(503),
            retry_after_s: Some(0),
            ..Faults::default()
        },
    );
    world.sandbox.set_faults(f).unwrap();
    let input = world.write("in.csv", &gate_rows(400));
    let report = world.run(&input).await;
    assert!(report.stopped.is_empty(), "{:?}", report.stopped);
    let results = read_csv(&world.path("in.results.csv"));
    let outcomes = column(&results, "outcome");
    let failed = outcomes.iter().filter(|o| *o == "failed").count();
    assert!(
        outcomes.iter().all(|o| o == "updated" || o == "failed"),
        "{outcomes:?}"
    );
    assert!(failed > 0, "some rows had two 503s and failed, as before");
    // Twenty 503s in a row among some 560 answers, 40 % of them 503: a
    // chance of about one in 200,000.
    assert_eq!(report.exit_code, 1, "{report:?}");
}
