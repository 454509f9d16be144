//! A server that requires a client certificate: shown when configured, and
//! a vendor stopped with its rows pending when it is missing or refused.

use crate::harness::{Net, stderr};
use crate::trust::assert_stopped;

/// The sandbox over HTTPS, requiring client certificates from `net.ca`.
fn mutual(net: &mut Net) -> String {
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    let ca = net.ca.pem();
    net.https(&leaf, Some(&ca))
}

#[test]
fn a_required_client_certificate_is_shown() {
    let mut net = Net::new();
    let base = mutual(&mut net);
    let client = net.ca.client("invitesync").unwrap();
    net.write("client.pem", &client.cert);
    net.write("secrets/client.key", &client.key);
    net.config(
        &base,
        "",
        "ca_cert = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = { file = \"secrets/client.key\" }",
    );
    net.input(5);
    let o = net.run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(net.requests(), 5);
    // The key may come from the environment too.
    net.config(
        &base,
        "",
        "ca_cert = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = { env = \"CLIENT_KEY\" }",
    );
    let o = net.run_again(&[("CLIENT_KEY", &client.key)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(net.requests(), 10);
}

#[test]
fn a_missing_client_certificate_stops_the_vendor() {
    let mut net = Net::new();
    let base = mutual(&mut net);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(10);
    let o = net.run(&[]);
    let err = assert_stopped(
        &net,
        &o,
        &["requires a client certificate", "client_cert", "client_key"],
    );
    assert_eq!(net.requests(), 0, "{err}");
}

#[test]
fn a_refused_client_certificate_stops_the_vendor() {
    let mut net = Net::new();
    let base = mutual(&mut net);
    let client = net.rogue.client("invitesync").unwrap();
    net.write("client.pem", &client.cert);
    net.write("secrets/client.key", &client.key);
    net.config(
        &base,
        "",
        "ca_cert = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = { file = \"secrets/client.key\" }",
    );
    net.input(10);
    let o = net.run(&[]);
    let err = assert_stopped(&net, &o, &["refused our client certificate", "client.pem"]);
    assert_eq!(net.requests(), 0, "{err}");
}
