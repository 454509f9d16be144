//! What a failed connection means to the operator, and what it means to the
//! run.
//!
//! A certificate the vendor's name does not match, an unknown issuer, an
//! expired certificate, a refused client certificate, a proxy that refuses
//! `CONNECT` or asks for credentials, a name that does not resolve: none of
//! these gets better by sending the next row, so they stop the vendor at once
//! ([`Class::Blocked`]) with one message naming the vendor table, the host,
//! the cause and the fix. A vendor that refuses connections or does not
//! answer them ([`Class::Unreachable`]) is retried like any transient
//! failure, but its rows never end `failed` for it: nothing is wrong with
//! the rows.
//!
//! The error's source chain is read by type where the libraries expose one
//! (rustls' errors, `std::io::ErrorKind`); hyper-util's tunnel and DNS errors
//! are private types, so those two are recognised by their text.

use std::error::Error as StdError;
use std::path::PathBuf;

use rustls::{AlertDescription, CertificateError};

use super::proxy::{Proxy, Route};
use super::x509::date;

/// What is known about a vendor's connections, for messages.
#[derive(Debug, Clone)]
pub struct Context {
    /// `vendors.gate`.
    pub table: String,
    /// `api.example.com:443`.
    pub host: String,
    pub route: Route,
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    /// Where the system's roots came from (`SSL_CERT_FILE=...`).
    pub trust: String,
}

/// A failure that stops a vendor: where, why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `vendors.gate`.
    pub table: String,
    /// `api.example.com:443`.
    pub host: String,
    pub cause: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    /// One message: `[vendors.gate] api.example.com:443: CAUSE. Fix: FIX.`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: {}. Fix: {}.",
            self.table, self.host, self.cause, self.fix
        )
    }
}

impl Context {
    pub(crate) fn say(&self, cause: &str, fix: &str) -> Problem {
        Problem {
            table: self.table.clone(),
            host: self.host.clone(),
            cause: cause.to_string(),
            fix: fix.to_string(),
        }
    }

    fn name(&self) -> &str {
        self.table.strip_prefix("vendors.").unwrap_or(&self.table)
    }

    /// The host name alone (no port).
    fn hostname(&self) -> &str {
        match self.host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => &self.host,
        }
    }
}

/// What a failed request means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Sending more rows cannot help: stop the vendor now.
    Blocked(Problem),
    /// No connection could be made; the text says to what and why.
    Unreachable(String),
    /// Anything else: the vendor may have been reached.
    Other,
}

/// Every error in the chain, including those an `io::Error` wraps (its
/// `source()` skips the error it carries and goes to that one's source).
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        if out.len() > 32 {
            break;
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

/// The innermost cause, which says what happened ("connection reset by
/// peer") without the framing of the layers above it. Never contains
/// credentials: they travel in headers, which errors do not quote.
pub fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    // `Connection reset by peer (os error 104)` → `connection reset by peer`.
    crate::fs_error::plain(&inner.to_string())
}

/// The first error of type `T` in `err`'s chain (see [`chain`]).
pub(crate) fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    chain(err).into_iter().find_map(|e| e.downcast_ref::<T>())
}

/// Classifies a failed request to the vendor of `ctx`.
pub fn classify(err: &(dyn StdError + 'static), ctx: &Context) -> Class {
    let errors = chain(err);
    if let Some(tls) = errors
        .iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>())
    {
        return Class::Blocked(tls_failure(tls, ctx));
    }
    let texts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let has = |s: &str| texts.iter().any(|t| t.contains(s));
    let innermost = texts.last().cloned().unwrap_or_default();
    if let Some(proxy) = ctx.route.proxy() {
        if has("proxy authorization required") {
            return Class::Blocked(proxy_wants_credentials(ctx, proxy, None));
        }
        if has("tunnel error: unsuccessful") {
            return Class::Blocked(tunnel_refused(ctx, proxy, None));
        }
        if has("tunnel error: unexpected end of file")
            || has("tunnel error: proxy response headers too long")
        {
            return Class::Blocked(not_a_proxy(ctx, proxy));
        }
        if has("dns error") {
            return Class::Blocked(unresolved(ctx, &plain(&innermost)));
        }
        if let Some(kind) = refused(&errors) {
            return Class::Unreachable(format!("{} {kind}", named(proxy)));
        }
        return Class::Other;
    }
    if has("dns error") {
        if temporary_dns(&innermost) {
            return Class::Unreachable(format!(
                "the name {} could not be resolved for now ({})",
                ctx.hostname(),
                plain(&innermost)
            ));
        }
        return Class::Blocked(unresolved(ctx, &plain(&innermost)));
    }
    if let Some(kind) = refused(&errors) {
        return Class::Unreachable(format!("{} {kind}", ctx.host));
    }
    Class::Other
}

/// `the proxy http://proxy:3128 (HTTPS_PROXY)`.
pub fn named(proxy: &Proxy) -> String {
    format!("the proxy {} ({})", proxy.shown(), proxy.from)
}

/// The proxy asked for credentials (407), or refused ours; `answer` is
/// its status line when known.
pub fn proxy_wants_credentials(ctx: &Context, proxy: &Proxy, answer: Option<&str>) -> Problem {
    let named = named(proxy);
    let said = answer.map_or("407 Proxy Authentication Required".to_string(), |a| {
        format!("it answered `{}`", safe(a))
    });
    match &proxy.credentials {
        Some(c) => ctx.say(
            &format!("{named} refused our credentials ({said})"),
            &format!("check the user name and password in {}", c.from),
        ),
        None => ctx.say(
            &format!("{named} asks for credentials ({said})"),
            &format!(
                "set `proxy_credentials = {{ env = \"VARIABLE\" }}` (holding USER:PASSWORD) in [{}] or [run]",
                ctx.table
            ),
        ),
    }
}

/// The proxy answered CONNECT with something other than 200 or 407
/// (`answer`: its status line, when known).
pub fn tunnel_refused(ctx: &Context, proxy: &Proxy, answer: Option<&str>) -> Problem {
    let answered = answer.map_or(String::new(), |a| format!(" (it answered `{}`)", safe(a)));
    ctx.say(
        &format!(
            "{} refused to open a tunnel (CONNECT) to {}{answered}",
            named(proxy),
            ctx.host
        ),
        &format!(
            "ask the proxy's administrators to allow {}, or, if the vendor is reachable without the proxy, \
             set `proxy = \"none\"` in [{}] (or list the host in NO_PROXY){}{}",
            ctx.host,
            ctx.table,
            // Some proxies answer wrong credentials with 401 or 403, not 407.
            proxy.credentials.as_ref().map_or(String::new(), |c| format!(
                "; if it refused our credentials, check {}",
                c.from
            )),
            if answer.is_none() {
                "; `invitesync check` shows the proxy's answer"
            } else {
                ""
            }
        ),
    )
}

/// The proxy did not answer CONNECT like an HTTP proxy.
pub fn not_a_proxy(ctx: &Context, proxy: &Proxy) -> Problem {
    ctx.say(
        &format!(
            "{} did not answer CONNECT as an HTTP proxy does",
            named(proxy)
        ),
        "check that the proxy setting names the proxy's HTTP port (e.g. http://proxy:3128)",
    )
}

/// The first host on the way (the proxy, or the vendor) has no address.
pub fn unresolved(ctx: &Context, detail: &str) -> Problem {
    match ctx.route.proxy() {
        Some(proxy) => {
            let (host, _) = proxy.authority();
            ctx.say(
                &format!("the name of {} does not resolve ({detail})", named(proxy)),
                &format!("check the host name {host} in {}", proxy.from),
            )
        }
        None => ctx.say(
            &format!("the name {} does not resolve ({detail})", ctx.hostname()),
            &format!(
                "check the host name in `base_url` of [{}]; if this machine reaches the internet only \
                 through a proxy, set `proxy` in [run] (or HTTPS_PROXY)",
                ctx.table
            ),
        ),
    }
}

/// What to do about a vendor (or proxy) that refuses or drops connections.
pub fn unreachable_fix(ctx: &Context) -> String {
    match ctx.route.proxy() {
        Some(proxy) => format!(
            "check that {} is the right proxy and that it is up",
            named(proxy)
        ),
        None => format!(
            "check `base_url` in [{}] and that the vendor is up; if this machine reaches it only \
             through a proxy, set `proxy` (or HTTPS_PROXY)",
            ctx.table
        ),
    }
}

/// getaddrinfo's EAI_AGAIN: the resolver did not answer, the name may exist.
fn temporary_dns(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("temporary failure") || t.contains("try again")
}

/// How a connection attempt failed, if it did: `refused the connection`.
fn refused(errors: &[&(dyn StdError + 'static)]) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    errors.iter().find_map(|e| {
        let io = e.downcast_ref::<std::io::Error>()?;
        Some(match io.kind() {
            K::ConnectionRefused => "refused the connection",
            K::HostUnreachable => "cannot be reached (no route to the host)",
            K::NetworkUnreachable => "cannot be reached (the network is unreachable)",
            K::TimedOut => "did not answer the connection in time",
            K::AddrNotAvailable => "cannot be reached (address not available)",
            _ => return None,
        })
    })
}

/// `Name or service not known (os error -2)` → `name or service not known`.
fn plain(text: &str) -> String {
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(text);
    crate::fs_error::plain(text)
}

/// `CertificateRequired` → `certificate required`.
fn words(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Text from a certificate, safe to print.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What a TLS error means for the vendor of `ctx`.
pub fn tls_failure(e: &rustls::Error, ctx: &Context) -> Problem {
    use rustls::Error as E;
    let check = "`invitesync check` shows the certificate";
    match e {
        E::InvalidCertificate(ce) => certificate_failure(ce, ctx),
        E::AlertReceived(alert) => alert_failure(*alert, ctx),
        E::PeerIncompatible(why) => ctx.say(
            &format!(
                "the server's TLS is incompatible with invitesync's (TLS 1.2 or 1.3 with current ciphers): {}",
                words(&format!("{why:?}"))
            ),
            "the vendor must enable TLS 1.2 or later",
        ),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::DecryptError => ctx.say(
            &format!("the server did not answer in TLS ({e})"),
            &format!(
                "check the scheme and port of `base_url` in [{}] (https:// to a port that speaks TLS){}",
                ctx.table,
                if ctx.route.proxy().is_some() {
                    "; a proxy that inspects TLS may be in the way"
                } else {
                    ""
                }
            ),
        ),
        other => ctx.say(&format!("TLS failed: {other}"), check),
    }
}

fn certificate_failure(ce: &CertificateError, ctx: &Context) -> Problem {
    use CertificateError as C;
    let table = &ctx.table;
    match ce {
        C::UnknownIssuer => {
            let fix = match &ctx.ca_cert {
                Some(path) => format!(
                    "the CA in `ca_cert` ({}) did not sign it either: point `ca_cert` in [{table}] at the CA that \
                     issued the vendor's certificate (`invitesync check` shows its issuer)",
                    path.display()
                ),
                None => format!(
                    "if the vendor (or a TLS-inspecting proxy on the way) uses a private CA, set \
                     `ca_cert = \"PATH\"` to that CA's PEM file in [{table}] (or [run] for every vendor); \
                     the roots trusted now are {}",
                    ctx.trust
                ),
            };
            ctx.say(
                "its certificate is signed by an authority this machine does not trust (unknown issuer)",
                &fix,
            )
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let names = match ce {
                C::NotValidForNameContext { presented, .. } if !presented.is_empty() => format!(
                    " (it names {})",
                    presented
                        .iter()
                        .map(|n| safe(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => String::new(),
            };
            ctx.say(
                &format!(
                    "its certificate is not valid for the name {}{names}",
                    ctx.hostname()
                ),
                &format!(
                    "write the host name the certificate was issued for in `base_url` of [{table}], \
                     or have the vendor's certificate cover {}",
                    ctx.hostname()
                ),
            )
        }
        C::Expired | C::ExpiredContext { .. } => {
            let when = match ce {
                C::ExpiredContext { not_after, .. } => {
                    format!(" on {}", date(not_after.as_secs() as i64))
                }
                _ => String::new(),
            };
            ctx.say(
                &format!("its certificate expired{when}"),
                "the vendor must renew it; if that date has not come yet, this machine's clock is wrong",
            )
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            let when = match ce {
                C::NotValidYetContext { not_before, .. } => {
                    format!(" before {}", date(not_before.as_secs() as i64))
                }
                _ => String::new(),
            };
            ctx.say(
                &format!("its certificate is not valid yet{when}"),
                "check this machine's clock",
            )
        }
        C::Revoked => ctx.say(
            "its certificate has been revoked",
            "the vendor must replace it",
        ),
        other => ctx.say(
            &format!(
                "its certificate was refused ({})",
                words(&format!("{other:?}"))
            ),
            &format!(
                "`invitesync check` shows the certificate; the vendor may have to replace it, \
                 or `ca_cert` in [{table}] must name its CA"
            ),
        ),
    }
}

/// The fix for a missing client certificate, for vendor table `table`.
pub(crate) fn set_client_cert(table: &str) -> String {
    format!(
        "set `client_cert = \"PATH\"` and `client_key = {{ file = \"PATH\" }}` in [{table}] (the certificate the server's operators issued for invitesync)"
    )
}

/// The fix for a client certificate the server refused.
pub(crate) fn check_client_cert(table: &str) -> String {
    format!(
        "check that `client_cert` in [{table}] holds a certificate the server accepts (issued by the CA it \
         trusts, not expired) and `client_key` its key"
    )
}

fn alert_failure(alert: AlertDescription, ctx: &Context) -> Problem {
    use AlertDescription as A;
    let table = &ctx.table;
    let said = words(&format!("{alert:?}"));
    let set_cert = set_client_cert(table);
    match (&ctx.client_cert, alert) {
        (None, A::CertificateRequired) => ctx.say("the server requires a client certificate", &set_cert),
        (
            None,
            A::HandshakeFailure | A::BadCertificate | A::CertificateUnknown | A::AccessDenied,
        ) => ctx.say(
            &format!(
                "the server ended the TLS handshake ({said}); it may require a client certificate"
            ),
            &format!("if it does, {set_cert}; `invitesync check` shows whether it asks for one"),
        ),
        (
            Some(cert),
            A::CertificateRequired
            | A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::DecryptError
            | A::HandshakeFailure,
        ) => ctx.say(
            &format!(
                "the server refused our client certificate ({}): {said}",
                cert.display()
            ),
            &check_client_cert(table),
        ),
        (_, A::ProtocolVersion | A::InsufficientSecurity) => ctx.say(
            &format!("the server refused every TLS version and cipher invitesync offers ({said})"),
            "the vendor must enable TLS 1.2 or later",
        ),
        (_, A::UnrecognisedName) => ctx.say(
            &format!("the server does not answer for the name {}", ctx.hostname()),
            &format!("check the host name in `base_url` of [{table}]"),
        ),
        _ => ctx.say(
            &format!("the server ended the TLS handshake ({said})"),
            &format!(
                "`invitesync check` shows what the server presents; check `ca_cert`, `client_cert` and `base_url` in [{}]",
                ctx.name()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_cause_reads_as_plain_words() {
        let reset = std::io::Error::from_raw_os_error(104);
        let outer = std::io::Error::other(reset);
        assert_eq!(innermost(&outer), "connection reset by peer");
    }
    use crate::net::proxy::{Credentials, Proxy};

    fn ctx(route: Route) -> Context {
        Context {
            table: "vendors.gate".into(),
            host: "api.example.com:443".into(),
            route,
            ca_cert: None,
            client_cert: None,
            trust: "the system's certificate store".into(),
        }
    }

    fn direct() -> Route {
        Route::Direct {
            why: "no proxy is set".into(),
        }
    }

    fn proxied(credentials: bool) -> Route {
        Route::Proxy(Proxy {
            url: url::Url::parse("http://proxy.corp:3128").unwrap(),
            from: "HTTPS_PROXY".into(),
            credentials: credentials.then(|| Credentials {
                user: "me".into(),
                password: crate::secret::Secret::new("hunter2"),
                from: "[run] proxy_credentials (environment variable PROXY_AUTH)".into(),
            }),
        })
    }

    /// An error shaped like the HTTP client's: a wrapper whose source is `inner`.
    #[derive(Debug)]
    struct Wrap(&'static str, Box<dyn StdError + Send + Sync>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn io_wrapping(e: rustls::Error) -> Wrap {
        Wrap(
            "client error (Connect)",
            Box::new(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        )
    }

    #[test]
    fn certificate_problems_name_vendor_host_cause_and_fix() {
        let e = io_wrapping(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let Class::Blocked(m) = classify(&e, &ctx(direct())) else {
            panic!()
        };
        let m = m.to_string();
        assert!(m.starts_with("[vendors.gate] api.example.com:443: "), "{m}");
        assert!(m.contains("unknown issuer") && m.contains("ca_cert"), "{m}");

        let e = io_wrapping(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        let Class::Blocked(m) = classify(&e, &ctx(direct())) else {
            panic!()
        };
        let m = m.to_string();
        assert!(m.contains("not valid for the name api.example.com"), "{m}");
        assert!(m.contains("base_url"), "{m}");

        let e = io_wrapping(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        let Class::Blocked(m) = classify(&e, &ctx(direct())) else {
            panic!()
        };
        let m = m.to_string();
        assert!(m.contains("requires a client certificate"), "{m}");
        assert!(m.contains("client_cert") && m.contains("client_key"), "{m}");
    }

    #[test]
    fn proxy_refusals_stop_the_vendor_and_never_show_credentials() {
        let e = Wrap(
            "client error (Connect)",
            Box::new(Wrap(
                "tunnel error: proxy authorization required",
                "x".into(),
            )),
        );
        let Class::Blocked(m) = classify(&e, &ctx(proxied(true))) else {
            panic!()
        };
        let m = m.to_string();
        assert!(m.contains("refused our credentials (407"), "{m}");
        assert!(m.contains("PROXY_AUTH") && !m.contains("hunter2"), "{m}");
        let Class::Blocked(m) = classify(&e, &ctx(proxied(false))) else {
            panic!()
        };
        let m = m.to_string();
        assert!(m.contains("proxy_credentials"), "{m}");

        let e = Wrap("tunnel error: unsuccessful", "x".into());
        let Class::Blocked(m) = classify(&e, &ctx(proxied(false))) else {
            panic!()
        };
        let m = m.to_string();
        assert!(m.contains("refused to open a tunnel"), "{m}");
        assert!(m.contains("http://proxy.corp:3128 (HTTPS_PROXY)"), "{m}");
    }

    #[test]
    fn names_that_do_not_resolve_and_refused_connections() {
        let dns = |text: &'static str| {
            Wrap(
                "dns error",
                Box::new(std::io::Error::other(format!(
                    "failed to lookup address information: {text}"
                ))),
            )
        };
        let Class::Blocked(m) = classify(&dns("Name or service not known"), &ctx(direct())) else {
            panic!()
        };
        let m = m.to_string();
        assert!(
            m.contains("the name api.example.com does not resolve (name or service not known)"),
            "{m}"
        );
        assert!(matches!(
            classify(&dns("Temporary failure in name resolution"), &ctx(direct())),
            Class::Unreachable(_)
        ));
        let refused = Wrap(
            "tcp connect error",
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        );
        assert_eq!(
            classify(&refused, &ctx(direct())),
            Class::Unreachable("api.example.com:443 refused the connection".into())
        );
        assert_eq!(
            classify(&refused, &ctx(proxied(false))),
            Class::Unreachable(
                "the proxy http://proxy.corp:3128 (HTTPS_PROXY) refused the connection".into()
            )
        );
        let other = Wrap("connection closed before message completed", "x".into());
        assert_eq!(classify(&other, &ctx(direct())), Class::Other);
    }
}
