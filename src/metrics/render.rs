//! A [`Snapshot`] as Prometheus' text exposition format (version 0.0.4), the
//! format both the node exporter's textfile collector and the Pushgateway
//! read. Pure: facts in, text out.
//!
//! Every family has its `# HELP` and `# TYPE` lines and at least one sample
//! (a family with none is left out, so that a Pushgateway `POST` or a
//! textfile merge keeps the previous value instead of erasing it). Labels are
//! bounded: the vendor account's name from the config, its kind, the
//! outcome, the HTTP status class; never an invite, an email or a URL.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::Snapshot;
use crate::latency::EXPORT_BOUNDS;
use crate::outcome::Outcome;
use crate::tally::ANSWER_CLASSES;

/// The family that says when a run last succeeded: pushed only by a run that
/// did, so that a failed night leaves the last good one in place.
pub const LAST_SUCCESS: &str = "invitesync_last_success_timestamp_seconds";

/// The text of `snapshot`, each sample carrying `const_labels` besides its own.
pub fn text(s: &Snapshot, const_labels: &[(&str, &str)]) -> String {
    let mut out = Out {
        text: String::new(),
        constant: const_labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
            .collect(),
    };

    out.family(
        "invitesync_rows_total",
        "counter",
        "Rows of the run finished, by vendor account and outcome; at the end of a run, the \
         results file's counts (vendor is empty for rows that name no vendor of the config).",
        |f| {
            for v in &s.vendors {
                for o in Outcome::ALL {
                    f.sample(
                        "",
                        &[("vendor", &v.name), ("outcome", o.as_str())],
                        v.rows[o.index()] as f64,
                    );
                }
            }
            if let Some(rows) = &s.unrouted {
                for o in Outcome::ALL.into_iter().filter(|o| rows[o.index()] > 0) {
                    f.sample(
                        "",
                        &[("vendor", ""), ("outcome", o.as_str())],
                        rows[o.index()] as f64,
                    );
                }
            }
        },
    );
    out.family(
        "invitesync_requests_total",
        "counter",
        "Requests sent by this process, by vendor account and the HTTP status class of the \
         answer (error: no answer, such as a timeout or a refused connection).",
        |f| {
            for v in &s.vendors {
                for (class, n) in ANSWER_CLASSES.iter().zip(v.answers) {
                    f.sample("", &[("vendor", &v.name), ("class", class)], n as f64);
                }
            }
        },
    );
    out.per_vendor(
        s,
        "invitesync_retries_total",
        "counter",
        "Attempts after a row's first one, by vendor account.",
        |v| Some(v.retries as f64),
    );
    out.per_vendor(
        s,
        "invitesync_throttled_total",
        "counter",
        "Answers 429 Too Many Requests, by vendor account.",
        |v| Some(v.throttled as f64),
    );
    out.per_vendor(
        s,
        "invitesync_vendor_concurrency_limit",
        "gauge",
        "Requests the vendor account may have in flight now (adapts to the vendor under its cap).",
        |v| Some(v.concurrency_limit as f64),
    );
    out.per_vendor(
        s,
        "invitesync_vendor_rate_limit_requests_per_second",
        "gauge",
        "The pace requests to the vendor account keep to now: the configured rate limit (this \
         shard's part) or the rate learned from 429s, whichever is lower; +Inf when neither \
         applies.",
        |v| Some(v.rate.unwrap_or(f64::INFINITY)),
    );
    out.per_vendor(
        s,
        "invitesync_vendor_stopped",
        "gauge",
        "1 when traffic to the vendor account was stopped (credentials refused, or the vendor \
         cannot be reached); its rows stay pending for a resume.",
        |v| Some(if v.stopped { 1.0 } else { 0.0 }),
    );
    out.family(
        "invitesync_vendor_info",
        "gauge",
        "The vendor accounts of the config and their kinds (always 1).",
        |f| {
            for v in &s.vendors {
                f.sample("", &[("vendor", &v.name), ("kind", &v.kind)], 1.0);
            }
        },
    );
    out.family(
        "invitesync_request_duration_seconds",
        "histogram",
        "Round trips of the requests that got an answer, by vendor account.",
        |f| {
            for v in &s.vendors {
                let h = &v.round_trips;
                for (bound, n) in EXPORT_BOUNDS.iter().zip(&h.cumulative) {
                    let le = number(*bound);
                    f.sample("_bucket", &[("vendor", &v.name), ("le", &le)], *n as f64);
                }
                f.sample(
                    "_bucket",
                    &[("vendor", &v.name), ("le", "+Inf")],
                    h.count as f64,
                );
                f.sample("_sum", &[("vendor", &v.name)], h.sum_seconds);
                f.sample("_count", &[("vendor", &v.name)], h.count as f64);
            }
        },
    );
    out.one(
        "invitesync_rows_pending",
        "gauge",
        "Rows of this run (this shard's) not finished yet; at the end, those left for a resume.",
        s.pending.map(|p| p as f64),
    );
    out.one(
        "invitesync_run_start_timestamp_seconds",
        "gauge",
        "When the run started, in seconds since the Unix epoch.",
        Some(unix(s.started_at)),
    );
    out.one(
        "invitesync_run_duration_seconds",
        "gauge",
        "How long the run has taken so far, or took.",
        Some(s.duration.as_secs_f64()),
    );
    out.one(
        "invitesync_exit_code",
        "gauge",
        "The exit code of the last run that ended: 0 every row updated or unchanged, 1 rows \
         need attention, 2 usage or configuration error, 3 stopped early and resumable, 4 \
         another run holds the state file.",
        s.ended.as_ref().map(|e| f64::from(e.exit_code)),
    );
    out.one(
        "invitesync_last_run_timestamp_seconds",
        "gauge",
        "When the last run ended, whatever its exit code, in seconds since the Unix epoch.",
        s.ended.as_ref().map(|e| unix(e.at)),
    );
    out.one(
        LAST_SUCCESS,
        "gauge",
        "When a run last ended with exit code 0, in seconds since the Unix epoch.",
        s.ended
            .as_ref()
            .filter(|e| e.exit_code == 0)
            .map(|e| unix(e.at)),
    );
    out.one(
        "invitesync_running",
        "gauge",
        "1 while a run is going, 0 once it ended.",
        Some(if s.ended.is_some() { 0.0 } else { 1.0 }),
    );
    out.text
}

struct Out {
    text: String,
    constant: Vec<String>,
}

/// One family's samples, written under its header once the first arrives.
struct Family<'a> {
    out: &'a mut Out,
    name: &'a str,
    kind: &'a str,
    help: &'a str,
    started: bool,
}

impl Family<'_> {
    fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let t = &mut self.out.text;
        if !self.started {
            self.started = true;
            let _ = writeln!(t, "# HELP {} {}", self.name, escape_help(self.help));
            let _ = writeln!(t, "# TYPE {} {}", self.name, self.kind);
        }
        t.push_str(self.name);
        t.push_str(suffix);
        let mut pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
            .collect();
        pairs.extend(self.out.constant.iter().cloned());
        if !pairs.is_empty() {
            let _ = write!(t, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(t, " {}", number(value));
    }
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str, body: impl FnOnce(&mut Family<'_>)) {
        let mut f = Family {
            out: self,
            name,
            kind,
            help,
            started: false,
        };
        body(&mut f);
    }

    fn per_vendor(
        &mut self,
        s: &Snapshot,
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&super::VendorFacts) -> Option<f64>,
    ) {
        self.family(name, kind, help, |f| {
            for v in &s.vendors {
                if let Some(x) = value(v) {
                    f.sample("", &[("vendor", &v.name)], x);
                }
            }
        });
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: Option<f64>) {
        self.family(name, kind, help, |f| {
            if let Some(x) = value {
                f.sample("", &[], x);
            }
        });
    }
}

/// A sample value: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x}")
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1e3)
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A `# HELP` text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::latency::Exported;
    use crate::metrics::{Ended, VendorFacts};

    fn vendor(name: &str) -> VendorFacts {
        VendorFacts {
            name: name.into(),
            kind: "securegate".into(),
            rows: [5, 1, 0, 2, 0],
            answers: [5, 0, 2, 1, 1],
            retries: 2,
            throttled: 1,
            concurrency_limit: 8,
            rate: None,
            stopped: false,
            round_trips: Exported {
                cumulative: vec![1; EXPORT_BOUNDS.len()],
                count: 8,
                sum_seconds: 1.5,
            },
        }
    }

    fn snapshot(ended: Option<i32>) -> Snapshot {
        Snapshot {
            vendors: vec![vendor("gate"), vendor("weird\"name\\")],
            unrouted: Some([0, 0, 3, 0, 0]),
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(2500),
            pending: Some(4),
            ended: ended.map(|exit_code| Ended {
                exit_code,
                at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_002_500),
            }),
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_well_formed_samples() {
        let t = text(&snapshot(Some(0)), &[]);
        let mut declared = Vec::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                declared.iter().any(|d| name.starts_with(d.as_str())),
                "{line}"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
        }
        for d in &declared {
            assert!(t.contains(&format!("# HELP {d} ")), "{d}");
            assert!(d.starts_with("invitesync_"), "{d}");
        }
        assert!(t.contains("invitesync_rows_total{vendor=\"gate\",outcome=\"updated\"} 5\n"));
        assert!(t.contains("invitesync_rows_total{vendor=\"\",outcome=\"invalid\"} 3\n"));
        assert!(!t.contains("vendor=\"\",outcome=\"updated\""));
        assert!(t.contains("invitesync_requests_total{vendor=\"gate\",class=\"5xx\"} 1\n"));
        assert!(t.contains("vendor=\"weird\\\"name\\\\\""), "{t}");
        assert!(t.contains(
            "invitesync_request_duration_seconds_bucket{vendor=\"gate\",le=\"0.005\"} 1\n"
        ));
        assert!(t.contains(
            "invitesync_request_duration_seconds_bucket{vendor=\"gate\",le=\"+Inf\"} 8\n"
        ));
        assert!(t.contains("invitesync_request_duration_seconds_sum{vendor=\"gate\"} 1.5\n"));
        assert!(t.contains("invitesync_exit_code 0\n"));
        assert!(t.contains("invitesync_last_success_timestamp_seconds 1700000002.5\n"));
        assert!(t.contains("invitesync_running 0\n"));
        // No configured or learned rate: no limit.
        assert!(
            t.contains("invitesync_vendor_rate_limit_requests_per_second{vendor=\"gate\"} +Inf\n")
        );
    }

    #[test]
    fn the_last_success_only_after_a_run_that_succeeded() {
        let failed = text(&snapshot(Some(1)), &[]);
        assert!(!failed.contains(LAST_SUCCESS), "{failed}");
        assert!(failed.contains("invitesync_exit_code 1\n"));
        let running = text(&snapshot(None), &[]);
        assert!(!running.contains(LAST_SUCCESS));
        assert!(!running.contains("invitesync_exit_code"));
        assert!(running.contains("invitesync_running 1\n"));
    }

    #[test]
    fn constant_labels_go_on_every_sample() {
        let t = text(&snapshot(Some(0)), &[("shard", "0-of-2")]);
        assert!(
            t.contains("invitesync_exit_code{shard=\"0-of-2\"} 0\n"),
            "{t}"
        );
        assert!(t.contains(
            "invitesync_rows_total{vendor=\"gate\",outcome=\"updated\",shard=\"0-of-2\"} 5\n"
        ));
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("shard=\"0-of-2\""), "{line}");
        }
    }
}
