//! `ca_cert` trusted besides the system's roots; an unknown issuer, a wrong
//! host name and an expired certificate each stop the vendor at once with
//! its rows pending.

use crate::harness::{Net, stderr};

/// The vendor stopped: exit 3, every row pending, no rows-to-fix file, no
/// request reached the vendor, and one message that says `expected` (each
/// of them), without any library's log line. Returns stderr.
pub fn assert_stopped(net: &Net, o: &std::process::Output, expected: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let outcomes = net.outcomes();
    assert!(!outcomes.is_empty());
    assert!(
        outcomes.iter().all(|o| o == "pending"),
        "{outcomes:?}\n{err}"
    );
    assert!(
        !net.path("in.failed.csv").exists(),
        "nothing to fix in the rows"
    );
    for e in expected {
        assert!(err.contains(e), "`{e}` missing from:\n{err}");
    }
    let stopped: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("[vendors.gate]"))
        .collect();
    assert!(
        !stopped.is_empty() && stopped.len() <= 2,
        "the reason once as it happens and once in the summary:\n{err}"
    );
    for noise in ["rustls", "failed to verify", "ERROR", "hyper"] {
        assert!(!err.contains(noise), "`{noise}` in:\n{err}");
    }
    err
}

#[test]
fn ca_cert_is_trusted_besides_the_system_roots() {
    let mut net = Net::new();
    let base = net.https(&Net::leaf(&net.ca, &["127.0.0.1"], None), None);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(5);
    let o = net.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(net.outcomes().iter().all(|o| o == "updated"));
    assert_eq!(net.requests(), 5);
}

#[test]
fn ssl_cert_file_is_read_as_curl_reads_it() {
    let mut net = Net::new();
    let base = net.https(&Net::leaf(&net.ca, &["127.0.0.1"], None), None);
    net.config(&base, "", "");
    net.input(2);
    let ca = net.path("ca.pem");
    let o = net.run(&[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(net.requests(), 2);
    let o = net.cli(
        &["run", "in.csv", "-c", "invitesync.toml", "--new-run"],
        &[("SSL_CERT_FILE", "no-such-bundle.pem")],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("SSL_CERT_FILE=no-such-bundle.pem"), "{err}");
    // SSL_CERT_DIR: a directory of PEM files, instead of the system's store.
    std::fs::create_dir(net.path("certs")).unwrap();
    let o = net.cli(
        &["run", "in.csv", "-c", "invitesync.toml", "--new-run"],
        &[("SSL_CERT_DIR", "certs")],
    );
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an empty store trusts nothing: {err}"
    );
    assert!(err.contains("no certificate authority is trusted"), "{err}");
    assert!(err.contains("ca_cert"), "{err}");
    std::fs::copy(net.path("ca.pem"), net.path("certs/ca.pem")).unwrap();
    let o = net.run_again(&[("SSL_CERT_DIR", "certs")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(net.requests(), 4);
}

#[test]
fn an_unknown_issuer_stops_the_vendor_with_its_rows_pending() {
    let mut net = Net::new();
    let base = net.https(&Net::leaf(&net.rogue, &["127.0.0.1"], None), None);
    net.config(&base, "", "");
    net.input(20);
    let o = net.run(&[]);
    let host = base.trim_start_matches("https://");
    let err = assert_stopped(
        &net,
        &o,
        &[
            &format!("[vendors.gate] {host}:"),
            "unknown issuer",
            "ca_cert",
        ],
    );
    assert_eq!(net.requests(), 0, "{err}");
    // Trusting the CA that did sign it, the same command resumes and finishes.
    net.write("rogue.pem", &net.rogue.pem());
    net.config(&base, "", "ca_cert = \"rogue.pem\"");
    let o = net.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(net.outcomes().iter().all(|o| o == "updated"));
    assert_eq!(net.requests(), 20);
}

#[test]
fn a_certificate_for_another_name_stops_the_vendor() {
    let mut net = Net::new();
    let base = net.https(&Net::leaf(&net.ca, &["api.example.com"], None), None);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(10);
    let o = net.run(&[]);
    assert_stopped(
        &net,
        &o,
        &[
            "not valid for the name 127.0.0.1",
            "api.example.com",
            "base_url",
        ],
    );
    assert_eq!(net.requests(), 0);
}

#[test]
fn an_expired_certificate_stops_the_vendor() {
    let mut net = Net::new();
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], Some(((2020, 1, 1), (2021, 3, 4))));
    let base = net.https(&leaf, None);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(10);
    let o = net.run(&[]);
    assert_stopped(&net, &o, &["expired on 2021-03-04", "renew"]);
    assert_eq!(net.requests(), 0);
}
