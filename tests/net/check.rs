//! `invitesync check`: each vendor resolved, connected (through the proxy),
//! its certificate shown, its path asked; a verdict and a fix per vendor;
//! exit 0 only when every vendor is reachable; no invite changed.

use crate::harness::{Net, ProxyRules, TestProxy, stderr, stdout};

pub fn check(net: &Net, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let o = net.cli(&["check", "-c", "invitesync.toml"], env);
    let out = stdout(&o);
    assert!(!stderr(&o).contains("ERROR"), "{}", stderr(&o));
    (o.status.code(), out)
}

#[test]
fn a_reachable_vendor_through_a_proxy_shows_each_step() {
    let mut net = Net::new();
    let base = net.https(&Net::leaf(&net.ca, &["127.0.0.1"], None), None);
    let proxy = TestProxy::start(&net, ProxyRules::default());
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    let (code, out) = check(&net, &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(code, Some(0), "{out}");
    let target = base.trim_start_matches("https://");
    for expected in [
        &format!("[vendors.gate] {base}/") as &str,
        &format!("through proxy {} (HTTPS_PROXY)", proxy.url()),
        &format!("CONNECT {target} → HTTP/1.1 200 Connection established"),
        "subject CN=127.0.0.1",
        "issuer CN=test CA",
        "expires ",
        "→ HTTP 404 (the vendor answers)",
        "reachable",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }
    assert!(!out.contains("NOT REACHABLE"), "{out}");
    assert!(
        proxy
            .lines()
            .iter()
            .all(|l| l == &format!("CONNECT {target} HTTP/1.1"))
    );
    // Nothing was changed: no request reached a vendor route.
    assert_eq!(net.requests(), 0);
    assert!(net.sandbox().stats().invites.is_empty());
}

#[test]
fn each_failure_gets_a_verdict_and_a_fix() {
    let mut net = Net::new();
    let base = net.https(&Net::leaf(&net.rogue, &["127.0.0.1"], None), None);
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    let (code, out) = check(&net, &[]);
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "tls      FAILED",
        "issuer CN=rogue CA",
        "NOT REACHABLE: its certificate is signed by an authority this machine does not trust",
        "fix [vendors.gate]: the CA in `ca_cert`",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }

    let refusing = TestProxy::start(
        &net,
        ProxyRules {
            auth: None,
            refuse: true,
            tls: None,
        },
    );
    let (code, out) = check(&net, &[("HTTPS_PROXY", &refusing.url())]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("it answered `HTTP/1.1 403 Forbidden`") && out.contains("NO_PROXY"),
        "{out}"
    );

    let asking = TestProxy::start(
        &net,
        ProxyRules {
            auth: Some("Basic x".into()),
            refuse: false,
            tls: None,
        },
    );
    let (code, out) = check(&net, &[("HTTPS_PROXY", &asking.url())]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("asks for credentials (it answered `HTTP/1.1 407")
            && out.contains("proxy_credentials"),
        "{out}"
    );
}

#[test]
fn a_server_asking_for_a_client_certificate_is_told_apart() {
    let mut net = Net::new();
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    let ca = net.ca.pem();
    let base = net.https(&leaf, Some(&ca));
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    let (code, out) = check(&net, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the server asks for a client certificate and none is configured"),
        "{out}"
    );
    assert!(out.contains("requires a client certificate"), "{out}");
    let client = net.ca.client("invitesync").unwrap();
    net.write("client.pem", &client.cert);
    net.write("secrets/client.key", &client.key);
    net.config(
        &base,
        "",
        "ca_cert = \"ca.pem\"\nclient_cert = \"client.pem\"\nclient_key = { file = \"secrets/client.key\" }",
    );
    let (code, out) = check(&net, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("client certificate asked for"), "{out}");
}

/// `check` of a vendor whose `base_url` is a server on 127.0.0.1 that
/// answers every request with `answer` (status line and headers) and `page`.
fn check_against(answer: &'static str, page: &'static str) -> (Option<i32>, String) {
    let net = Net::new();
    net.config(&web_site(answer, page), "", "");
    check(&net, &[])
}

/// A server on 127.0.0.1 that answers every request with `answer` (status
/// line and headers; a page follows when `page` is not empty).
fn web_site(answer: &'static str, page: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                sock,
                "{answer}Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_web_page_at_base_url_is_named_as_one() {
    // What `base_url` reaches when it names the vendor's site, not its API.
    let (code, out) = check_against(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n",
        "<html><head><title>Securegate - Sign in</title></head></html>",
    );
    // Reachable (an API's root may be a page of its own), but said.
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "→ HTTP 200 (something answers, with an HTML page titled \"Securegate - Sign in\": \
             if that is a web site's page rather than the API's, `base_url` is wrong)"
        ),
        "{out}"
    );
}

#[test]
fn a_redirect_at_base_url_says_where_it_points() {
    let (code, out) = check_against(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://api.example.com/v2/\r\n",
        "",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "→ HTTP 301 (something answers, with a redirect to https://api.example.com/v2/: a run \
             does not follow redirects; if the API has moved there, set `base_url` to it)"
        ),
        "{out}"
    );
}
