//! A vendor that cannot be reached leaves its rows pending, never failed;
//! mistakes in the network keys are config errors naming the table and key,
//! before anything is sent.

use crate::harness::{Net, stderr};
use crate::trust::assert_stopped;

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_vendor_that_cannot_be_reached_leaves_its_rows_pending() {
    let net = Net::new();
    std::fs::write(net.path("secrets/gate"), "key\n").unwrap();
    let port = closed_port();
    net.config(&format!("http://127.0.0.1:{port}"), "", "");
    net.input(3);
    let o = net.run(&[]);
    let err = assert_stopped(
        &net,
        &o,
        &[
            &format!("[vendors.gate] 127.0.0.1:{port} refused the connection"),
            "base_url",
        ],
    );
    assert!(!err.contains("fix them"), "{err}");
    assert!(err.contains("to resume:"), "{err}");
}

#[test]
fn a_proxy_that_cannot_be_reached_is_named() {
    let mut net = Net::new();
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    let base = net.https(&leaf, None);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(3);
    let proxy = format!("http://127.0.0.1:{}", closed_port());
    let o = net.run(&[("HTTPS_PROXY", &proxy)]);
    assert_stopped(
        &net,
        &o,
        &[&format!(
            "the proxy {proxy} (HTTPS_PROXY) refused the connection"
        )],
    );
    assert_eq!(net.requests(), 0);
}

/// A config error: exit 2, the message says `expected`, nothing was sent
/// and no state file was made.
fn config_error(net: &Net, env: &[(&str, &str)], expected: &[&str]) -> String {
    let o = net.run(env);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for e in expected {
        assert!(err.contains(e), "`{e}` missing from: {err}");
    }
    assert_eq!(net.requests(), 0);
    assert!(!net.path("invitesync.db").exists());
    err
}

#[test]
fn bad_certificates_and_keys_are_config_errors_before_anything_is_sent() {
    let mut net = Net::new();
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    let base = net.https(&leaf, None);
    net.input(2);
    let client = net.ca.client("invitesync").unwrap();
    let other = net.ca.client("someone else").unwrap();
    net.write("client.pem", &client.cert);
    net.write("secrets/client.key", &client.key);
    net.write("secrets/other.key", &other.key);
    net.write("junk.pem", "this is not a certificate\n");

    net.config(&base, "", "ca_cert = \"junk.pem\"");
    config_error(
        &net,
        &[],
        &["vendors.gate.ca_cert", "junk.pem", "no PEM section"],
    );

    net.config(&base, "", "ca_cert = \"missing.pem\"");
    config_error(
        &net,
        &[],
        &["vendors.gate.ca_cert", "missing.pem", "no such file"],
    );

    net.config(&base, "ca_cert = \"secrets/client.key\"", "");
    let err = config_error(
        &net,
        &[],
        &["run.ca_cert", "a private key but no certificate"],
    );
    assert!(!err.contains(key_body(&client.key)), "{err}");

    net.config(
        &base,
        "",
        "client_cert = \"client.pem\"\nclient_key = { file = \"secrets/other.key\" }",
    );
    let err = config_error(
        &net,
        &[],
        &[
            "vendors.gate.client_key",
            "does not belong to the certificate",
            "client.pem",
        ],
    );
    assert!(!err.contains(key_body(&other.key)), "{err}");

    net.config(
        &base,
        "",
        "client_cert = \"client.pem\"\nclient_key = { file = \"client.pem\" }",
    );
    config_error(
        &net,
        &[],
        &[
            "vendors.gate.client_key",
            "a certificate but no private key",
        ],
    );

    net.config(&base, "", "client_cert = \"client.pem\"");
    config_error(&net, &[], &["vendors.gate", "`client_key` is not"]);

    net.config(
        &base,
        "",
        "client_cert = \"client.pem\"\nclient_key = \"inline\"",
    );
    config_error(&net, &[], &["vendors.gate.client_key", "secret"]);

    net.config(
        &base,
        "proxy_credentials = { env = \"PROXY_AUTH\" }\nproxy = \"http://127.0.0.1:9\"",
        "",
    );
    let err = config_error(
        &net,
        &[("PROXY_AUTH", "no-colon-here")],
        &["run.proxy_credentials", "USER:PASSWORD"],
    );
    assert!(!err.contains("no-colon-here"), "{err}");

    net.config(&base, "", "ca_cert = \"ca.pem\"");
    config_error(
        &net,
        &[("HTTPS_PROXY", "socks5://127.0.0.1:1080")],
        &["HTTPS_PROXY", "not supported"],
    );
}

/// A line from the middle of a PEM key: what must never be printed.
fn key_body(pem: &str) -> &str {
    pem.lines().nth(1).unwrap_or("-")
}
