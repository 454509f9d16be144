//! Which proxy a vendor's requests go through, decided once per vendor when
//! the run starts, so that messages and `invitesync check` can say exactly
//! which way a request took.
//!
//! In order: the vendor table's `proxy`, `[run] proxy`, then the variables
//! curl reads: `https_proxy`/`HTTPS_PROXY`, then `all_proxy`/`ALL_PROXY`, with
//! `no_proxy`/`NO_PROXY` exempting hosts (not from a proxy set in the vendor's
//! own table, which names that vendor alone). `"none"` means a direct
//! connection. Vendors are HTTPS, reached through the proxy with `CONNECT`,
//! so the proxy never sees a request or its credentials; plain `http://` is
//! only allowed to loopback, which is always reached directly (a proxy
//! elsewhere cannot reach this machine's loopback, and it would see the
//! vendor's credentials in clear), so `http_proxy` has nothing to apply to.

use std::net::IpAddr;

use url::Url;

use crate::config::ConfigError;
use crate::secret::Secret;

/// A proxy to go through.
#[derive(Clone)]
pub struct Proxy {
    /// `http://proxy.example.com:3128`: scheme, host and port only.
    pub url: Url,
    /// Where it was set: `[vendors.gate] proxy`, `[run] proxy`, `HTTPS_PROXY`.
    pub from: String,
    /// `Proxy-Authorization: Basic` credentials, if any.
    pub credentials: Option<Credentials>,
}

/// A user name and password for the proxy.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
    /// Where they come from, for messages: `[run] proxy_credentials
    /// (environment variable PROXY_AUTH)`, or the variable's URL.
    pub from: String,
}

impl Credentials {
    /// The `Proxy-Authorization` value: `Basic` and `user:password` in base64.
    pub fn basic(&self) -> String {
        use base64::Engine as _;
        let pair = format!("{}:{}", self.user, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({} from {})", self.shown(), self.from)
    }
}

impl Proxy {
    /// `http://proxy.example.com:3128`, never with credentials.
    pub fn shown(&self) -> String {
        format!(
            "{}://{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("?")
        ) + &self.url.port().map(|p| format!(":{p}")).unwrap_or_default()
    }

    /// `host:port` of the proxy itself.
    pub fn authority(&self) -> (String, u16) {
        let host = self.url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (
            host.to_string(),
            self.url.port_or_known_default().unwrap_or(3128),
        )
    }
}

/// How a vendor is reached.
#[derive(Debug, Clone)]
pub enum Route {
    Direct {
        /// Why no proxy: `no proxy is set`, `NO_PROXY lists it`, `proxy = "none"`.
        why: String,
    },
    Proxy(Proxy),
}

impl Route {
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Proxy(p) => Some(p),
            Route::Direct { .. } => None,
        }
    }

    /// `direct (no proxy is set)` or `through proxy http://p:3128 (HTTPS_PROXY)`.
    pub fn describe(&self) -> String {
        match self {
            Route::Direct { why } => format!("direct ({why})"),
            Route::Proxy(p) => format!("through proxy {} ({})", p.shown(), p.from),
        }
    }
}

/// Reads environment variables; a seam for tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process's environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// The first of `names` that is set and not empty, with its name.
fn first(env: &dyn Env, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        env.var(n)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (n.to_string(), v))
    })
}

/// The proxy written in the config (`proxy = "..."`): `None` for `"none"`.
pub fn parse_configured(where_: &str, text: &str) -> Result<Option<Url>, ConfigError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text.is_empty() {
        return Ok(None);
    }
    let url = parse_url(text).map_err(|why| {
        ConfigError(format!(
            "{where_}: `{}` is not a proxy: {why}; write e.g. `proxy = \"http://proxy.example.com:3128\"`, or \"none\" for a direct connection",
            redact(text)
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError(format!(
            "{where_}: credentials are never written in the config; remove them from the URL and set \
             `proxy_credentials = {{ env = \"VARIABLE\" }}` (or `{{ file = \"PATH\" }}`) holding USER:PASSWORD"
        )));
    }
    Ok(Some(url))
}

/// A proxy URL as curl reads one: a missing scheme means `http://`.
fn parse_url(text: &str) -> Result<Url, String> {
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    match url.scheme() {
        "http" | "https" => {}
        s if s.starts_with("socks") => {
            return Err(format!(
                "{s} proxies are not supported; use the proxy's HTTP (CONNECT) port"
            ));
        }
        s => return Err(format!("unsupported scheme `{s}`; use http://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("it names no host".into());
    }
    url.set_path("");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// A proxy setting fit for a message: without any `user:password@`.
pub fn redact(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), text),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => text.to_string(),
    }
}

/// What the config says for one vendor, from its table and `[run]`.
pub struct Configured<'a> {
    /// The vendor table's `proxy`, and its table name.
    pub vendor: Option<(&'a str, &'a str)>,
    /// `[run] proxy`.
    pub run: Option<&'a str>,
    /// The credentials that apply (the vendor's, else `[run]`'s).
    pub credentials: Option<Credentials>,
}

/// Decides the route to `base` (a vendor's base URL).
pub fn route(base: &Url, configured: Configured<'_>, env: &dyn Env) -> Result<Route, ConfigError> {
    if base.scheme() != "https" {
        return Ok(Route::Direct {
            why: "plain http:// to loopback is never proxied".into(),
        });
    }
    let host = base.host_str().unwrap_or_default();
    let with = |url: Url, from: String, env_auth: Option<Credentials>| {
        Route::Proxy(Proxy {
            url,
            from,
            credentials: configured.credentials.clone().or(env_auth),
        })
    };
    if let Some((table, text)) = configured.vendor {
        let where_ = format!("{table}.proxy");
        return Ok(match parse_configured(&where_, text)? {
            None => Route::Direct {
                why: format!("[{table}] proxy = \"none\""),
            },
            Some(url) => with(url, format!("[{table}] proxy"), None),
        });
    }
    let no_proxy = first(env, &["no_proxy", "NO_PROXY"]);
    let exempt = |var: &str| Route::Direct {
        why: format!("{var} lists {host}"),
    };
    if let Some(text) = configured.run {
        return Ok(match parse_configured("run.proxy", text)? {
            None => Route::Direct {
                why: "[run] proxy = \"none\"".into(),
            },
            Some(_) if no_proxy.as_ref().is_some_and(|(_, v)| exempts(v, host)) => {
                exempt(&no_proxy.map(|(n, _)| n).unwrap_or_default())
            }
            Some(url) => with(url, "[run] proxy".into(), None),
        });
    }
    let Some((var, text)) = first(
        env,
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
    ) else {
        return Ok(Route::Direct {
            why: "no proxy is set".into(),
        });
    };
    if let Some((nvar, list)) = &no_proxy
        && exempts(list, host)
    {
        return Ok(exempt(nvar));
    }
    let mut url = parse_url(&text).map_err(|why| {
        ConfigError(format!(
            "the environment variable {var} (`{}`) is not a proxy: {why}; set it to e.g. http://proxy.example.com:3128, or unset it",
            redact(&text)
        ))
    })?;
    // Credentials in the variable's URL are used as curl uses them, unless
    // the config names some.
    let env_auth = if url.username().is_empty() {
        None
    } else {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let password = decode(url.password().unwrap_or_default());
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(Credentials {
            user,
            password: Secret::new(password),
            from: format!("the user name and password in {var}"),
        })
    };
    Ok(with(url, var, env_auth))
}

/// Whether a `NO_PROXY` list exempts `host`, as curl reads one: comma
/// separated; `*` alone exempts everything; a name exempts itself and its
/// subdomains (a leading dot changes nothing); an IP address or CIDR block
/// exempts the addresses it covers; a `:port` on an entry is ignored.
pub fn exempts(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.');
    let ip: Option<IpAddr> = host.parse().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some(ip) = ip {
                return ip_matches(entry, ip);
            }
            let entry = strip_port(entry)
                .trim_start_matches('.')
                .trim_end_matches('.');
            if entry.is_empty() {
                return false;
            }
            host.eq_ignore_ascii_case(entry)
                || (host.len() > entry.len()
                    && host.as_bytes()[host.len() - entry.len() - 1] == b'.'
                    && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry))
        })
}

fn strip_port(entry: &str) -> &str {
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => entry,
    }
}

fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    let entry = entry.trim_start_matches('[');
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (entry, None),
    };
    let addr = addr.trim_end_matches(']');
    let Ok(net) = addr.parse::<IpAddr>().or_else(|_| strip_port(addr).parse()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn vars(pairs: &[(&'static str, &'static str)]) -> Vars {
        Vars(pairs.iter().copied().collect())
    }

    fn none() -> Configured<'static> {
        Configured {
            vendor: None,
            run: None,
            credentials: None,
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn no_proxy_lists_as_curl_reads_them() {
        assert!(exempts("*", "api.example.com"));
        assert!(exempts("example.com", "api.example.com"));
        assert!(exempts(".example.com", "api.example.com"));
        assert!(exempts("example.com", "example.com"));
        assert!(exempts("EXAMPLE.com:443", "api.example.COM"));
        assert!(!exempts("example.com", "notexample.com"));
        assert!(!exempts("api.example.com", "example.com"));
        assert!(exempts("10.0.0.0/8, localhost", "10.1.2.3"));
        assert!(!exempts("10.0.0.0/8", "11.1.2.3"));
        assert!(exempts("127.0.0.1", "127.0.0.1"));
        assert!(exempts("::1", "[::1]"));
        assert!(exempts("fd00::/8", "fd12::1"));
        assert!(!exempts("", "a.b"));
        assert!(!exempts(" , ", "a.b"));
    }

    #[test]
    fn the_vendor_wins_then_run_then_the_environment() {
        let env = vars(&[
            ("HTTPS_PROXY", "http://env-proxy:3128"),
            ("no_proxy", "internal.example"),
        ]);
        let base = url("https://api.example.com");
        let r = route(&base, none(), &env).unwrap();
        assert_eq!(
            r.describe(),
            "through proxy http://env-proxy:3128 (HTTPS_PROXY)"
        );
        let r = route(
            &base,
            Configured {
                run: Some("run-proxy:8080"),
                ..none()
            },
            &env,
        )
        .unwrap();
        assert_eq!(
            r.describe(),
            "through proxy http://run-proxy:8080 ([run] proxy)"
        );
        let r = route(
            &base,
            Configured {
                vendor: Some(("vendors.gate", "none")),
                run: Some("run-proxy:8080"),
                credentials: None,
            },
            &env,
        )
        .unwrap();
        assert_eq!(r.describe(), "direct ([vendors.gate] proxy = \"none\")");
        let inside = url("https://db.internal.example:8443");
        let r = route(&inside, none(), &env).unwrap();
        assert_eq!(r.describe(), "direct (no_proxy lists db.internal.example)");
        let r = route(&url("http://127.0.0.1:8787"), none(), &env).unwrap();
        assert!(r.proxy().is_none());
        let r = route(&base, none(), &vars(&[])).unwrap();
        assert_eq!(r.describe(), "direct (no proxy is set)");
        let r = route(&base, none(), &vars(&[("ALL_PROXY", "http://all:1")])).unwrap();
        assert_eq!(r.describe(), "through proxy http://all:1 (ALL_PROXY)");
    }

    #[test]
    fn credentials_never_inline_in_the_config_and_never_shown() {
        let e = parse_configured("run.proxy", "http://me:hunter2@proxy:3128").unwrap_err();
        assert!(e.0.contains("proxy_credentials"), "{e}");
        assert!(!e.0.contains("hunter2"), "{e}");
        let e = parse_configured("run.proxy", "socks5://proxy:1080").unwrap_err();
        assert!(e.0.contains("not supported"), "{e}");
        let env = vars(&[("https_proxy", "http://me:p%40ss@proxy:3128")]);
        let r = route(&url("https://a.example"), none(), &env).unwrap();
        let p = r.proxy().unwrap();
        assert_eq!(p.shown(), "http://proxy:3128");
        let c = p.credentials.as_ref().unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("me", "p@ss"));
        assert!(!format!("{r:?} {}", r.describe()).contains("p@ss"));
        let env = vars(&[("HTTPS_PROXY", "http://me:hunter2@[bad")]);
        let e = route(&url("https://a.example"), none(), &env).unwrap_err();
        assert!(
            e.0.contains("HTTPS_PROXY") && !e.0.contains("hunter2"),
            "{e}"
        );
        assert_eq!(redact("http://u:p@h:1/x@y"), "http://***@h:1/x@y");
    }
}
