//! HTTPS through a CONNECT proxy: from `HTTPS_PROXY` or the config,
//! bypassed by `NO_PROXY` and `proxy = "none"`, with credentials from a
//! secret that appear in no output; a proxy that refuses stops the vendor.

use crate::harness::{Net, ProxyRules, TestProxy, stderr, stdout};
use crate::trust::assert_stopped;

fn trusted(net: &mut Net) -> String {
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    net.https(&leaf, None)
}

#[test]
fn https_goes_through_the_proxy_with_connect() {
    let mut net = Net::new();
    let base = trusted(&mut net);
    let proxy = TestProxy::start(&net, ProxyRules::default());
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(8);
    let o = net.run(&[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(net.requests(), 8);
    assert_tunnelled(&net, &proxy, &base);
}

/// Every request to the proxy was a `CONNECT` to the vendor, and inside the
/// tunnel everything was encrypted: the proxy never saw the vendor's
/// credential, nor a request line.
fn assert_tunnelled(net: &Net, proxy: &TestProxy, base: &str) {
    let target = base.trim_start_matches("https://");
    let lines = proxy.lines();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(l, &format!("CONNECT {target} HTTP/1.1"));
    }
    assert!(!proxy.saw(&net.api_key()));
    assert!(!proxy.saw("PUT /events"));
}

#[test]
fn an_https_proxy_is_spoken_to_over_tls() {
    let mut net = Net::new();
    let base = trusted(&mut net);
    // The proxy's certificate, from the CA the config trusts.
    let leaf = Net::leaf(&net.ca, &["127.0.0.1"], None);
    let config =
        invitesync::sandbox::tls::server_config(leaf.cert.as_bytes(), leaf.key.as_bytes(), None)
            .expect("proxy TLS");
    let proxy = TestProxy::start(
        &net,
        ProxyRules {
            tls: Some(config),
            ..ProxyRules::default()
        },
    );
    assert!(proxy.url().starts_with("https://"));
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(5);
    let o = net.run(&[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(net.requests(), 5);
    assert_tunnelled(&net, &proxy, &base);
}

#[test]
fn the_lower_case_and_all_proxy_variables_work_too() {
    for var in ["https_proxy", "ALL_PROXY", "all_proxy"] {
        let mut net = Net::new();
        let base = trusted(&mut net);
        let proxy = TestProxy::start(&net, ProxyRules::default());
        net.config(&base, "", "ca_cert = \"ca.pem\"");
        net.input(2);
        let o = net.run(&[(var, &proxy.url())]);
        assert_eq!(o.status.code(), Some(0), "{var}: {}", stderr(&o));
        assert!(!proxy.lines().is_empty(), "{var}");
    }
}

#[test]
fn no_proxy_and_proxy_none_go_direct() {
    let mut net = Net::new();
    let base = trusted(&mut net);
    let proxy = TestProxy::start(&net, ProxyRules::default());
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(3);
    for no_proxy in ["127.0.0.1", "localhost,127.0.0.0/8", "*"] {
        let o = net.run_again(&[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", no_proxy)]);
        assert_eq!(o.status.code(), Some(0), "{no_proxy}: {}", stderr(&o));
    }
    // The vendor's own `proxy = "none"` wins over [run] and the environment.
    net.config(
        &base,
        &format!("proxy = \"{}\"", proxy.url()),
        "ca_cert = \"ca.pem\"\nproxy = \"none\"",
    );
    let o = net.run_again(&[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(proxy.lines().is_empty(), "{:?}", proxy.lines());
    assert_eq!(net.requests(), 12);
}

#[test]
fn the_configured_proxy_wins_over_the_environment() {
    let mut net = Net::new();
    let base = trusted(&mut net);
    let configured = TestProxy::start(&net, ProxyRules::default());
    let from_env = TestProxy::start(&net, ProxyRules::default());
    net.config(
        &base,
        &format!("proxy = \"{}\"", configured.url()),
        "ca_cert = \"ca.pem\"",
    );
    net.input(3);
    let o = net.run(&[("HTTPS_PROXY", &from_env.url())]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!configured.lines().is_empty());
    assert!(from_env.lines().is_empty());
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn proxy_credentials_come_from_a_secret_and_appear_nowhere() {
    const PASSWORD: &str = "s3cret-proxy-pa55";
    let mut net = Net::new();
    let base = trusted(&mut net);
    let proxy = TestProxy::start(
        &net,
        ProxyRules {
            auth: Some(basic("robot", PASSWORD)),
            refuse: false,
            tls: None,
        },
    );
    net.write("secrets/proxy", &format!("robot:{PASSWORD}\n"));
    net.config(
        &base,
        &format!(
            "proxy = \"{}\"\nproxy_credentials = {{ file = \"secrets/proxy\" }}",
            proxy.url()
        ),
        "ca_cert = \"ca.pem\"",
    );
    net.input(6);
    let o = net.cli(
        &[
            "run",
            "in.csv",
            "-c",
            "invitesync.toml",
            "--summary-json",
            "summary.json",
        ],
        &[("RUST_LOG", "trace")],
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        &err[err.len().saturating_sub(3000)..]
    );
    assert_eq!(net.requests(), 6);
    let encoded = basic("robot", PASSWORD);
    let encoded = encoded.trim_start_matches("Basic ");
    for text in [&out, &err, &net.files_text()] {
        assert!(!text.contains(PASSWORD), "the password leaked");
        assert!(!text.contains(encoded), "the encoded password leaked");
    }
    // Wrong credentials: the proxy answers 407, the vendor stops, nothing leaks.
    net.write("secrets/proxy", "robot:wrong-pa55word\n");
    let o = net.run_again(&[]);
    let err = assert_stopped(&net, &o, &["refused our credentials (407", "secrets/proxy"]);
    assert!(!err.contains("wrong-pa55word") && !stdout(&o).contains("wrong-pa55word"));
    assert!(!net.files_text().contains("wrong-pa55word"));
    // No credentials at all: the message says which key to set.
    net.config(
        &base,
        &format!("proxy = \"{}\"", proxy.url()),
        "ca_cert = \"ca.pem\"",
    );
    let o = net.run_again(&[]);
    assert_stopped(
        &net,
        &o,
        &["asks for credentials (407", "proxy_credentials"],
    );
}

#[test]
fn credentials_are_never_written_in_the_proxy_url_of_the_config() {
    let mut net = Net::new();
    let base = trusted(&mut net);
    net.config(&base, "proxy = \"http://robot:hunter2@127.0.0.1:9\"", "");
    net.input(1);
    let o = net.run(&[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("run.proxy") && err.contains("proxy_credentials"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert_eq!(net.requests(), 0);
}

#[test]
fn a_proxy_that_refuses_connect_stops_the_vendor() {
    let mut net = Net::new();
    let base = trusted(&mut net);
    let proxy = TestProxy::start(
        &net,
        ProxyRules {
            auth: None,
            refuse: true,
            tls: None,
        },
    );
    net.config(&base, "", "ca_cert = \"ca.pem\"");
    net.input(10);
    let o = net.run(&[("HTTPS_PROXY", &proxy.url())]);
    assert_stopped(
        &net,
        &o,
        &[
            "refused to open a tunnel (CONNECT)",
            &format!("{} (HTTPS_PROXY)", proxy.url()),
            "NO_PROXY",
        ],
    );
    assert!(
        proxy.lines().len() <= 4,
        "not retried row by row: {:?}",
        proxy.lines()
    );
}
