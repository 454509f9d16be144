//! `invitesync check` for one vendor, step by step, changing nothing:
//! resolve the first host on the way (the proxy, or the vendor), connect,
//! ask the proxy for a tunnel, complete TLS (and describe the certificate
//! the server showed, even one that is refused), then send one `GET` to the
//! vendor's base URL through the same client a run uses. Any HTTP answer,
//! even 401 or 404, proves the vendor is reachable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Network;
use super::classify::{self, Class, Context, Problem, innermost};
use super::proxy::{Proxy, Route};
use super::tls::Seen;
use super::x509::Summary;

/// A certificate that expires sooner than this gets a warning.
const RENEW_SOON_DAYS: i64 = 14;

/// One step and how it went.
#[derive(Debug, Clone)]
pub struct Step {
    /// `resolve`, `connect`, `proxy`, `tls`, `http`.
    pub label: &'static str,
    pub ok: bool,
    pub text: String,
}

/// What `check` found out about one vendor.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub url: String,
    /// `api.example.com:443`.
    pub host: String,
    pub route: Route,
    pub steps: Vec<Step>,
    /// The vendor answered over HTTP.
    pub reachable: bool,
    /// Why it is not reachable, and what to do.
    pub problem: Option<Problem>,
    /// Worth knowing even so (a certificate about to expire).
    pub warnings: Vec<String>,
}

impl Report {
    fn step(&mut self, label: &'static str, ok: bool, text: impl Into<String>) {
        self.steps.push(Step {
            label,
            ok,
            text: text.into(),
        });
    }

    fn fail(mut self, label: &'static str, problem: Problem) -> Report {
        self.step(label, false, problem.cause.clone());
        self.problem = Some(problem);
        self
    }
}

/// Checks vendor `i` of `network`; each step waits at most `wait`.
pub async fn probe(network: &Network, i: usize, wait: Duration) -> Report {
    let v = &network.vendors[i];
    let ctx: &Context = &v.context;
    let mut r = Report {
        name: v.name.clone(),
        url: v.base_url.to_string(),
        host: ctx.host.clone(),
        route: v.route.clone(),
        steps: Vec::new(),
        reachable: false,
        problem: None,
        warnings: Vec::new(),
    };
    let host = v
        .base_url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = v.base_url.port_or_known_default().unwrap_or(443);
    let (hop, hop_port) = match &v.route {
        Route::Proxy(p) => p.authority(),
        Route::Direct { .. } => (host.clone(), port),
    };

    // Resolve the first host on the way.
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(wait, tokio::net::lookup_host((hop.as_str(), hop_port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                let detail = crate::fs_error::reason(&e);
                let detail = detail
                    .strip_prefix("failed to lookup address information: ")
                    .unwrap_or(&detail)
                    .to_string();
                return r.fail(
                    "resolve",
                    classify::unresolved(ctx, &crate::fs_error::plain(&detail)),
                );
            }
            Err(_) => {
                return r.fail(
                    "resolve",
                    problem(
                        ctx,
                        &format!("no answer from the resolver for {hop} in {}", human(wait)),
                    ),
                );
            }
        };
    let shown: Vec<String> = addrs.iter().take(3).map(|a| a.ip().to_string()).collect();
    let note = match &v.route {
        Route::Proxy(_) => format!(" (the proxy; it resolves {host} itself)"),
        Route::Direct { .. } => String::new(),
    };
    r.step(
        "resolve",
        true,
        format!("{hop} → {}{note}", shown.join(", ")),
    );

    // Connect to it.
    let mut stream = None;
    let mut last = String::from("no address");
    for addr in &addrs {
        match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = crate::fs_error::reason(&e),
            Err(_) => last = format!("no answer in {}", human(wait)),
        }
    }
    let Some(mut stream) = stream else {
        let whom = match &v.route {
            Route::Proxy(p) => classify::named(p),
            Route::Direct { .. } => ctx.host.clone(),
        };
        let p = Problem {
            table: ctx.table.clone(),
            host: ctx.host.clone(),
            cause: format!("cannot connect to {whom}: {last}"),
            fix: classify::unreachable_fix(ctx),
        };
        return r.fail("connect", p);
    };
    r.step("connect", true, format!("{hop}:{hop_port}"));

    // Ask the proxy for a tunnel, as a run does. A proxy reached over TLS
    // itself is left to the request below, which goes the whole way.
    let proxied_tls = v.route.proxy().is_some_and(|p| p.url.scheme() == "https");
    if proxied_tls {
        r.step(
            "proxy",
            true,
            "an https:// proxy: the tunnel and the vendor's TLS are checked by the request below",
        );
    } else if let Route::Proxy(p) = &v.route {
        match connect_tunnel(&mut stream, p, &host, port, wait).await {
            Ok(status) if status.code == 200 => {
                r.step(
                    "proxy",
                    true,
                    format!("CONNECT {host}:{port} → {}", status.line),
                );
            }
            // Some proxies (tinyproxy) answer wrong credentials with 401.
            Ok(status) if status.code == 407 || (status.code == 401 && p.credentials.is_some()) => {
                let p = classify::proxy_wants_credentials(ctx, p, Some(&status.line));
                return r.fail("proxy", p);
            }
            Ok(status) => {
                return r.fail(
                    "proxy",
                    classify::tunnel_refused(ctx, p, Some(&status.line)),
                );
            }
            Err(why) => {
                let mut p = classify::not_a_proxy(ctx, p);
                p.cause = format!("{} ({why})", p.cause);
                return r.fail("proxy", p);
            }
        }
    }

    // TLS, with the vendor's trust and client certificate.
    let seen = Arc::new(Seen::default());
    if proxied_tls {
        // Nothing more to do here: see above.
    } else if v.base_url.scheme() == "https" {
        let config = match network.tls_config(i, Some(seen.clone())) {
            Ok(c) => Arc::new(c),
            Err(e) => return r.fail("tls", problem(ctx, &e)),
        };
        let Ok(name) = ServerName::try_from(host.clone()) else {
            return r.fail(
                "tls",
                problem(ctx, &format!("`{host}` is not a valid TLS server name")),
            );
        };
        let handshake = tokio_rustls::TlsConnector::from(config).connect(name, stream);
        let result = tokio::time::timeout(wait, handshake).await;
        let certificate = describe(seen.certificate().as_deref(), &mut r.warnings);
        match result {
            Ok(Ok(tls)) => {
                let version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .map_or("TLS".to_string(), |v| {
                        format!("{v:?}").replace("TLSv1_", "TLS 1.")
                    });
                let asked = if seen.client_cert_requested.load(Ordering::Relaxed) {
                    match &v.identity {
                        Some(id) => format!(
                            "; client certificate asked for, {} shown",
                            id.cert.display()
                        ),
                        None => "; the server asks for a client certificate and none is configured"
                            .to_string(),
                    }
                } else {
                    String::new()
                };
                r.step("tls", true, format!("{version}; {certificate}{asked}"));
            }
            Ok(Err(e)) => {
                let p = match classify::classify(&e, ctx) {
                    Class::Blocked(p) => p,
                    _ => problem(ctx, &format!("TLS failed: {}", crate::fs_error::reason(&e))),
                };
                let shown = if certificate.is_empty() {
                    p.cause.clone()
                } else {
                    format!("{}; the server showed: {certificate}", p.cause)
                };
                r.step("tls", false, shown);
                r.problem = Some(p);
                return r;
            }
            Err(_) => {
                return r.fail(
                    "tls",
                    problem(
                        ctx,
                        &format!("the TLS handshake did not finish in {}", human(wait)),
                    ),
                );
            }
        }
    } else {
        drop(stream);
        r.step(
            "tls",
            true,
            "none: plain http:// (allowed to loopback only)",
        );
    }

    // One GET through the client a run uses.
    let client = match network.transport(i, wait, 1) {
        Ok(c) => c,
        Err(e) => return r.fail("http", problem(ctx, &e)),
    };
    let url = v.base_url.as_str().to_string();
    let url = if v.base_url.path().is_empty() || v.base_url.path() == "/" {
        format!("{}/", url.trim_end_matches('/'))
    } else {
        url
    };
    let get = http::Request::get(url.as_str()).body(bytes::Bytes::new());
    let get = match get {
        Ok(g) => g,
        Err(e) => return r.fail("http", problem(ctx, &format!("GET {url}: {e}"))),
    };
    let answer = client
        .send(get, |resp| async move {
            let status = resp.status();
            let moved_to = crate::vendors::answer::redirect_target(
                status.as_u16(),
                resp.headers().get(http::header::LOCATION),
            );
            // Enough of the body to read a refusal in it (see `cert_answer`).
            let body = super::transport::body_up_to(resp.into_body(), super::cert_answer::LOOK_AT);
            Ok((status, moved_to, body.await?))
        })
        .await;
    match answer {
        Ok((status, moved_to, body)) => {
            if let Some(p) =
                super::cert_answer::refused_client_certificate(status.as_u16(), &body, ctx)
            {
                return r.fail("http", p);
            }
            let page = status
                .is_success()
                .then(|| crate::vendors::answer::not_an_api_answer(&body))
                .flatten();
            let meaning = match (status.as_u16(), page) {
                (401 | 403, _) => "the vendor answers; `check` sends no credentials".to_string(),
                // An API's root may well be a page of its own; a web site at
                // `base_url` answers every request so, and a run then stops
                // the vendor (docs/ARCHITECTURE.md, §4: circuit).
                (_, Some(page)) => format!(
                    "something answers, with {page}: if that is a web site's page rather than \
                     the API's, `base_url` is wrong"
                ),
                // The API's root may redirect to its documents; a run does
                // not follow redirects, and stops a vendor that sends every
                // request elsewhere.
                _ if moved_to.is_some() => format!(
                    "something answers, with a redirect to {}: a run does not follow \
                     redirects; if the API has moved there, set `base_url` to it",
                    crate::input::shown(moved_to.as_deref().unwrap_or_default())
                ),
                _ => "the vendor answers".to_string(),
            };
            r.step(
                "http",
                true,
                format!("GET {url} → HTTP {} ({meaning})", status.as_u16()),
            );
            r.reachable = true;
            r
        }
        Err(e) => {
            let p = match classify::classify(&e, ctx) {
                Class::Blocked(p) => p,
                Class::Unreachable(what) => Problem {
                    table: ctx.table.clone(),
                    host: ctx.host.clone(),
                    cause: what,
                    fix: classify::unreachable_fix(ctx),
                },
                Class::Other => {
                    problem(ctx, &format!("GET {url} got no answer: {}", innermost(&e)))
                }
            };
            r.fail("http", p)
        }
    }
}

/// A problem without a more specific fix.
fn problem(ctx: &Context, cause: &str) -> Problem {
    Problem {
        table: ctx.table.clone(),
        host: ctx.host.clone(),
        cause: cause.to_string(),
        fix: format!(
            "check `base_url` and the network settings of [{}] (`proxy`, `ca_cert`, `client_cert`)",
            ctx.table
        ),
    }
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `subject CN=...; issuer CN=...; expires ... (in N days); names a, b`.
fn describe(der: Option<&[u8]>, warnings: &mut Vec<String>) -> String {
    let Some(s) = der.and_then(Summary::parse) else {
        return String::new();
    };
    let days = s.days_left(SystemTime::now());
    let left = if days < 0 {
        format!("expired {} days ago", -days)
    } else {
        format!("in {days} days")
    };
    if (0..RENEW_SOON_DAYS).contains(&days) {
        warnings.push(format!(
            "the certificate expires {} ({left}): the vendor must renew it soon",
            s.expires()
        ));
    }
    let names = if s.names.is_empty() {
        String::new()
    } else {
        format!("; names {}", s.names.join(", "))
    };
    format!(
        "subject {}; issuer {}; expires {} ({left}){names}",
        s.subject,
        s.issuer,
        s.expires()
    )
}

/// A proxy's answer to CONNECT.
struct Status {
    code: u16,
    line: String,
}

/// Sends `CONNECT host:port` (with the configured credentials) and reads the
/// answer's head; on 200 the stream is the tunnel.
async fn connect_tunnel(
    stream: &mut TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
    wait: Duration,
) -> Result<Status, String> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = &proxy.credentials {
        head.push_str(&format!("Proxy-Authorization: {}\r\n", c.basic()));
    }
    head.push_str("\r\n");
    let exchange = async {
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| crate::fs_error::reason(&e))?;
        // Byte by byte up to the blank line, so that nothing of the tunnel
        // is consumed; a head past 16 KiB is no proxy's answer.
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") {
            if answer.len() > 16 * 1024 {
                return Err("its answer has no end".to_string());
            }
            match stream.read(&mut byte).await {
                Ok(0) => return Err("it closed the connection".to_string()),
                Ok(_) => answer.push(byte[0]),
                Err(e) => return Err(crate::fs_error::reason(&e)),
            }
        }
        Ok(answer)
    };
    let answer = tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| format!("no answer in {}", human(wait)))??;
    let text = String::from_utf8_lossy(&answer);
    let line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| "its answer is not HTTP".to_string())?;
    Ok(Status { code, line })
}
