//! Prometheus metrics through the built binary: the textfile (`--metrics-file`)
//! against the results file, written whole, and the Pushgateway
//! (`--pushgateway`) against a stand-in recording what it receives.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use common::{HEADER, Setup, World, column, read_csv};
use invitesync::sandbox::{FaultSettings, Faults, Kind};

impl Setup {
    fn new() -> Setup {
        Setup::with_config("")
    }

    /// The binary in the world's directory, with no INVITESYNC_* variables.
    fn cli(&self, args: &[&str]) -> Output {
        cmd(self.world(), args).output().expect("binary runs")
    }
}

fn cmd(world: &World, args: &[&str]) -> std::process::Command {
    world.command(args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `n` valid rows over the four vendors, then the `extra` lines.
fn input(n: usize, extra: &[&str]) -> String {
    let mut text = String::from(HEADER) + "\n";
    for i in 0..n {
        text.push_str(&match i % 4 {
            0 => format!("mighty,acme,{},u{i}@example.com,F{i},L,,,,", 1000 + i),
            1 => format!("gate,ev1,inv{i},,,,,accepted,,"),
            2 => format!("om,{},,u{i}@example.com,,,,,ORG_MEMBER,", common::ORG),
            _ => format!("hub,,uuid-{i},,,,,accepted,,"),
        });
        text.push('\n');
    }
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// One sample line: `name{labels} value`, labels as pairs.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a text exposition, every line checked to be a comment or
/// a well-formed sample of a family declared above it.
fn parse(text: &str) -> Vec<Sample> {
    let mut declared: Vec<String> = Vec::new();
    let mut out = Vec::new();
    assert!(text.ends_with('\n'), "not whole: {text:?}");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                for pair in rest.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
            None => (series.to_string(), BTreeMap::new()),
        };
        assert!(
            declared.iter().any(|d| name.starts_with(d.as_str())),
            "undeclared: {line}"
        );
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

/// The results file's rows per (vendor of the config or "", outcome).
fn results_counts(path: &Path) -> BTreeMap<(String, String), f64> {
    let rows = read_csv(path);
    let mut counts = BTreeMap::new();
    for (vendor, outcome) in column(&rows, "vendor")
        .into_iter()
        .zip(column(&rows, "outcome"))
    {
        let vendor = if ["mighty", "gate", "om", "hub"].contains(&vendor.as_str()) {
            vendor
        } else {
            String::new()
        };
        *counts.entry((vendor, outcome)).or_insert(0.0) += 1.0;
    }
    counts
}

#[test]
fn the_metrics_file_counts_what_the_results_file_says() {
    let s = Setup::new();
    let w = s.world();
    // 5xx answers from Securegate, so that there are retries to count: at
    // one answer in two, its 20 rows see none only once in a million runs.
    w.sandbox
        .set_faults(FaultSettings {
            global: Faults::default(),
            vendors: [(
                Kind::Securegate,
                Faults {
                    error_rate: Some(0.5),
                    ..Faults::default()
                },
            )]
            .into(),
        })
        .expect("faults");
    w.write(
        "in.csv",
        &input(
            80,
            &[
                "gate,ev1,inv-x,,,,,maybe,,",
                "zoom,,z1,,,,,accepted,,",
                "hub,,uuid-p,,,,,pending,,",
            ],
        ),
    );
    std::fs::create_dir(w.path("textfile")).unwrap();
    let o = s.cli(&[
        "run",
        "in.csv",
        "--quiet",
        "--metrics-file",
        "textfile/invitesync.prom",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    // Written by rename: only the file itself is left in the directory.
    let names: Vec<String> = std::fs::read_dir(w.path("textfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["invitesync.prom"]);

    let text = std::fs::read_to_string(w.path("textfile/invitesync.prom")).unwrap();
    let m = parse(&text);
    let want = results_counts(&w.path("in.results.csv"));
    assert_eq!(want.values().sum::<f64>(), 83.0);
    for ((vendor, outcome), n) in &want {
        let got = sum(
            &m,
            "invitesync_rows_total",
            &[("vendor", vendor), ("outcome", outcome)],
        );
        assert_eq!(got, *n, "{vendor} {outcome}\n{text}");
    }
    assert_eq!(sum(&m, "invitesync_rows_total", &[]), 83.0, "{text}");
    assert_eq!(sum(&m, "invitesync_exit_code", &[]), 1.0);
    assert_eq!(sum(&m, "invitesync_running", &[]), 0.0);
    assert_eq!(sum(&m, "invitesync_rows_pending", &[]), 0.0);
    assert!(
        !has(&m, "invitesync_last_success_timestamp_seconds"),
        "{text}"
    );
    assert!(
        m.iter()
            .all(|s| s.labels.get("shard").map(String::as_str) == Some("all"))
    );

    // Every attempt is a row's first or a retry, and got an answer or none.
    for vendor in ["mighty", "gate", "om", "hub"] {
        let attempts = sum(&m, "invitesync_requests_total", &[("vendor", vendor)]);
        let sent: f64 = ["updated", "rejected", "failed"]
            .iter()
            .map(|o| {
                sum(
                    &m,
                    "invitesync_rows_total",
                    &[("vendor", vendor), ("outcome", o)],
                )
            })
            .sum();
        let retries = sum(&m, "invitesync_retries_total", &[("vendor", vendor)]);
        assert_eq!(attempts, sent + retries, "{vendor}\n{text}");
        let answered = attempts
            - sum(
                &m,
                "invitesync_requests_total",
                &[("vendor", vendor), ("class", "error")],
            );
        assert_eq!(
            sum(
                &m,
                "invitesync_request_duration_seconds_count",
                &[("vendor", vendor)]
            ),
            answered,
            "{vendor}"
        );
        assert_eq!(
            sum(
                &m,
                "invitesync_request_duration_seconds_bucket",
                &[("vendor", vendor), ("le", "+Inf")]
            ),
            answered
        );
    }
    // Securegate's requests as the sandbox counted them, by status class.
    let gate = w.sandbox.vendor_stats().vendor(Kind::Securegate);
    assert!(sum(&m, "invitesync_retries_total", &[("vendor", "gate")]) > 0.0);
    assert_eq!(
        sum(&m, "invitesync_requests_total", &[("vendor", "gate")]),
        gate.requests as f64
    );
    let fives: u64 = (500..600).map(|c| gate.status(c)).sum();
    assert_eq!(
        sum(
            &m,
            "invitesync_requests_total",
            &[("vendor", "gate"), ("class", "5xx")]
        ),
        fives as f64
    );
    assert_eq!(
        sum(
            &m,
            "invitesync_vendor_info",
            &[("vendor", "om"), ("kind", "ops_manager")]
        ),
        1.0
    );
    // No label carries an invite, an email or a URL.
    for s in &m {
        for v in s.labels.values() {
            assert!(
                !v.contains('@') && !v.contains("uuid") && !v.contains("127.0.0.1"),
                "{s:?}"
            );
        }
    }
}

#[test]
fn a_failed_run_keeps_the_last_success_in_the_file() {
    let s = Setup::new();
    let w = s.world();
    w.write("good.csv", &input(8, &[]));
    let o = s.cli(&["run", "good.csv", "--quiet", "--metrics-file", "m.prom"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let first = parse(&std::fs::read_to_string(w.path("m.prom")).unwrap());
    let success = sum(&first, "invitesync_last_success_timestamp_seconds", &[]);
    assert!(success > 1.0e9, "{success}");
    assert_eq!(sum(&first, "invitesync_exit_code", &[]), 0.0);

    w.write("bad.csv", &input(4, &["gate,ev1,inv-x,,,,,maybe,,"]));
    let o = s.cli(&["run", "bad.csv", "--quiet", "--metrics-file", "m.prom"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = std::fs::read_to_string(w.path("m.prom")).unwrap();
    let second = parse(&text);
    assert_eq!(sum(&second, "invitesync_exit_code", &[]), 1.0);
    assert_eq!(
        sum(&second, "invitesync_last_success_timestamp_seconds", &[]),
        success,
        "{text}"
    );
    assert!(
        sum(&second, "invitesync_last_run_timestamp_seconds", &[]) >= success,
        "{text}"
    );
    // This run's counts, not the last one's added to them.
    assert_eq!(sum(&second, "invitesync_rows_total", &[]), 5.0, "{text}");
    // Each family once.
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), helps, "{text}");
}

#[test]
fn a_reader_never_sees_part_of_the_metrics_file() {
    let s = Setup::new();
    let w = s.world();
    w.sandbox
        .set_faults(FaultSettings {
            global: Faults {
                latency_ms: Some(5),
                ..Faults::default()
            },
            vendors: BTreeMap::new(),
        })
        .expect("faults");
    w.write("in.csv", &input(300, &[]));
    let path = w.path("m.prom");
    let mut child = cmd(
        w,
        &[
            "run",
            "in.csv",
            "--concurrency",
            "2",
            "--log-interval",
            "10ms",
            "--metrics-file",
            "m.prom",
        ],
    )
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("binary starts");
    let mut reads = 0u64;
    let mut running_seen = false;
    // Read as fast as possible while the run rewrites the file; every read
    // must be a whole file. Bounded by the run's end (and a cap).
    for _ in 0..2_000_000 {
        // Once there, the file is never empty or cut short.
        if let Ok(text) = std::fs::read_to_string(&path) {
            let m = parse(&text);
            assert!(has(&m, "invitesync_running"), "{text}");
            running_seen |= sum(&m, "invitesync_running", &[]) == 1.0;
            reads += 1;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(reads > 0);
    assert!(running_seen, "no write while the run was going");
    let m = parse(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        sum(&m, "invitesync_rows_total", &[("outcome", "updated")]),
        300.0
    );
    assert_eq!(sum(&m, "invitesync_running", &[]), 0.0);
}

/// What a Pushgateway stand-in received: method, path, body.
type Pushes = Arc<Mutex<Vec<(String, String, String)>>>;

/// A Pushgateway stand-in on 127.0.0.1 that records every request and
/// answers 200 (or `status`).
fn gateway(s: &Setup, status: u16) -> (SocketAddr, Pushes) {
    let pushes: Pushes = Arc::default();
    let seen = pushes.clone();
    let app = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, body: String| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((method.to_string(), uri.path().to_string(), body));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        },
    );
    let listener =
        s.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
    let addr = listener.local_addr().unwrap();
    s.rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, pushes)
}

#[test]
fn a_run_pushes_its_group_and_the_last_success_only_when_it_succeeded() {
    let s = Setup::new();
    let w = s.world();
    let (addr, pushes) = gateway(&s, 200);
    let url = format!("http://{addr}");
    w.write("good.csv", &input(8, &[]));
    let o = s.cli(&["run", "good.csv", "--quiet", "--pushgateway", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got = std::mem::take(&mut *pushes.lock().unwrap());
    assert!(got.len() >= 2, "{got:?}");
    // While it runs: POST (only its own families replaced), no last success.
    let (method, path, body) = &got[0];
    assert_eq!(method, "POST");
    assert_eq!(path, "/metrics/job/invitesync/shard/all");
    assert!(!body.contains("invitesync_last_success_timestamp_seconds"));
    // The end of a run that succeeded: PUT, the whole group, with it.
    let (method, path, body) = got.last().unwrap();
    assert_eq!(method, "PUT");
    assert_eq!(path, "/metrics/job/invitesync/shard/all");
    let m = parse(body);
    assert!(sum(&m, "invitesync_last_success_timestamp_seconds", &[]) > 1.0e9);
    assert_eq!(sum(&m, "invitesync_exit_code", &[]), 0.0);
    assert_eq!(
        sum(&m, "invitesync_rows_total", &[("outcome", "updated")]),
        8.0
    );
    // The gateway adds the grouping labels itself.
    assert!(
        m.iter()
            .all(|s| !s.labels.contains_key("shard") && !s.labels.contains_key("job"))
    );

    // A failed run, one shard, a job name with a slash: POST, no last success.
    w.write("bad.csv", &input(4, &["gate,ev1,inv-x,,,,,maybe,,"]));
    let o = s.cli(&[
        "run",
        "bad.csv",
        "--quiet",
        "--shard",
        "0/1",
        "--pushgateway",
        &url,
        "--metrics-job",
        "nightly/eu",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let got = std::mem::take(&mut *pushes.lock().unwrap());
    let (method, path, body) = got.last().unwrap();
    assert_eq!(method, "POST");
    assert_eq!(path, "/metrics/job@base64/bmlnaHRseS9ldQ/shard/0-of-1");
    assert!(
        !body.contains("invitesync_last_success_timestamp_seconds"),
        "{body}"
    );
    assert_eq!(sum(&parse(body), "invitesync_exit_code", &[]), 1.0);
    assert!(got.iter().all(|(m, _, _)| m == "POST"), "{got:?}");

    // A run that cannot start (a config error) still says so, by POST.
    let o = s.cli(&[
        "run",
        "good.csv",
        "--config",
        "missing.toml",
        "--pushgateway",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let got = std::mem::take(&mut *pushes.lock().unwrap());
    assert_eq!(got.len(), 1, "{got:?}");
    let (method, _, body) = &got[0];
    assert_eq!(method, "POST");
    let m = parse(body);
    assert_eq!(sum(&m, "invitesync_exit_code", &[]), 2.0);
    assert!(!has(&m, "invitesync_last_success_timestamp_seconds"));
    // Nothing counted, so no count is pushed over the last run's.
    assert!(!has(&m, "invitesync_rows_total"), "{body}");
}

#[test]
fn a_pushgateway_that_fails_is_a_warning_and_the_run_keeps_its_exit_code() {
    let s = Setup::new();
    let w = s.world();
    // A port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    w.write("good.csv", &input(8, &[]));
    let o = s.cli(&["run", "good.csv", "--quiet", "--pushgateway", &url]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: cannot push the metrics to the Pushgateway (PUT "),
        "{err}"
    );
    assert!(err.contains("/metrics/job/invitesync/shard/all"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A gateway that refuses (400, as for inconsistent metrics): the same.
    let (addr, pushes) = gateway(&s, 400);
    w.write("bad.csv", &input(4, &["gate,ev1,inv-x,,,,,maybe,,"]));
    let o = s.cli(&[
        "run",
        "bad.csv",
        "--quiet",
        "--pushgateway",
        &format!("http://{addr}"),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warning: the Pushgateway refused the metrics (POST "),
        "{err}"
    );
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(!pushes.lock().unwrap().is_empty());
}

#[test]
fn a_dry_run_publishes_nothing() {
    let s = Setup::new();
    let w = s.world();
    let (addr, pushes) = gateway(&s, 200);
    w.write("in.csv", &input(4, &[]));
    let o = s.cli(&[
        "run",
        "in.csv",
        "--dry-run",
        "--metrics-file",
        "m.prom",
        "--pushgateway",
        &format!("http://{addr}"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!w.path("m.prom").exists());
    assert!(pushes.lock().unwrap().is_empty());
}

#[test]
fn a_zero_log_interval_is_a_usage_error() {
    let s = Setup::new();
    s.world().write("in.csv", &input(4, &[]));
    let o = s.cli(&[
        "run",
        "in.csv",
        "--log-interval",
        "0s",
        "--metrics-file",
        "m.prom",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`0s` is out of range"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
