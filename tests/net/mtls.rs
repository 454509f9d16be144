//! A server that requires a client certificate: shown when configured, and
//! a vendor stopped with its rows pending when it is missing or refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Net, stderr, tls_server};
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

/// A server that, like nginx with `ssl_verify_client on`, completes the TLS
/// handshake without a client certificate and answers every request `400`
/// with nginx's page; returns its base URL and the requests it answered.
fn nginx_wanting_a_certificate(net: &Net) -> (String, Arc<AtomicUsize>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    let base = tls_server(net, &[b"http/1.1"], move |mut tls| {
        let count = count.clone();
        async move {
            let page = "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n\
            <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n\
            <center>No required SSL certificate was sent</center>\r\n<hr><center>nginx</center>\r\n\
            </body>\r\n</html>\r\n";
            let mut buf = vec![0u8; 64 * 1024];
            // One request per read is enough for these small PUTs; bounded
            // by the client closing the connection.
            while let Ok(n) = tls.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n\
                 Content-Length: {}\r\n\r\n{page}",
                    page.len()
                );
                if tls.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    });
    (base, answered)
}

#[test]
fn a_client_certificate_asked_for_in_an_answer_stops_the_vendor() {
    let mut net = Net::new();
    // The sandbox holds the secret file the config names; it is not used.
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    net.https(&leaf, None);
    let (base, answered) = nginx_wanting_a_certificate(&net);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(40);
    let o = net.run(&[]);
    assert_stopped(
        &net,
        &o,
        &[
            "requires a client certificate",
            "No required SSL certificate was sent",
            "client_cert = \"PATH\"",
        ],
    );
    // Stopped at the first answers, not after every row.
    assert!(answered.load(Ordering::Relaxed) < 40);
    let (code, out) = crate::check::check(&net, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("requires a client certificate"), "{out}");
}
