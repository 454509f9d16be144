//! `invitesync.toml`: the run's settings and the vendor accounts.
//!
//! The file is read into plain serde structs first, then checked into the
//! types the rest of the program uses, so every mistake is reported with the
//! table and key it came from (`vendors.mighty.base_url: ...`). Settings that
//! only one vendor kind knows (its credentials, Mighty's `method`) stay in a
//! [`VendorSettings`] table that the vendor's own module takes apart, so a new
//! vendor kind needs no change here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::ranges::{
    BACKOFF, BACKOFF_CAP, Bounds, CONCURRENCY, GRACE_PERIOD, MAX_ATTEMPTS, REQUEST_TIMEOUT,
    RETRY_AFTER_CAP, Whole, parse_duration, whole,
};
use crate::redact::Redactor;
use crate::secret::Registry;

mod error;
pub mod network;
mod table;

pub use error::ConfigError;
use error::err;
pub use table::VendorSettings;

/// How a retrying vendor backs off; `[run]` gives the defaults, a vendor table
/// may override each key.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// The longest `Retry-After` we obey; a vendor asking for more gets this.
    pub retry_after_cap: Duration,
}

/// Requests allowed per period (`"10/s"`, `"600/min"`, `"5000/h"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    /// The most requests a rate may name per period.
    pub const MAX_REQUESTS: u64 = 1_000_000;

    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let (n, unit) = text.split_once('/').ok_or_else(|| {
            format!("`{text}` is not a rate; write it as \"10/s\", \"600/min\" or \"5000/h\"")
        })?;
        let n = n.trim();
        let requests = n
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=Self::MAX_REQUESTS).contains(n))
            .ok_or_else(|| {
                format!(
                    "`{n}` in `{text}` is not a whole number of requests from 1 to {}",
                    Self::MAX_REQUESTS
                )
            })?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "unknown period `{other}` in `{text}`; use s, min or h"
                ));
            }
        };
        Ok(RateLimit {
            requests: requests as u32,
            per,
        })
    }

    /// Requests per second, for arithmetic (sharding, reports).
    pub fn per_second(&self) -> f64 {
        f64::from(self.requests) / self.per.as_secs_f64()
    }

    /// This limit shared among `n` processes, so that together they keep it.
    pub fn divided(&self, n: u32) -> RateLimit {
        RateLimit {
            requests: self.requests,
            per: self.per * n.max(1),
        }
    }
}

/// `[run]`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// How long Ctrl-C waits for requests in flight before it stops anyway.
    pub grace_period: Duration,
    pub state: Option<PathBuf>,
    pub results: Option<PathBuf>,
}

/// One `[vendors.NAME]` table, its common keys checked.
#[derive(Debug, Clone)]
pub struct VendorConfig {
    /// The table's name: what the CSV's `vendor` column says.
    pub name: String,
    pub kind: String,
    pub base_url: Url,
    /// Requests in flight to this vendor at most (the adaptive limit stays under it).
    pub concurrency: Option<usize>,
    pub rate_limit: Option<RateLimit>,
    pub retry: RetryPolicy,
}

/// The whole file, checked. Vendors are sorted by name; a vendor's index here
/// is its [`crate::change::VendorId`].
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub run: RunConfig,
    pub vendors: Vec<(VendorConfig, VendorSettings)>,
    /// Every secret read for the vendor tables (filled by [`crate::vendors::build::adapters`]).
    pub secrets: Registry,
    /// Proxies, trust and client certificates (`crate::net`).
    pub network: network::NetConfig,
    /// `[input]`: how input files are laid out (delimiter, column names).
    pub input: crate::input::InputConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    vendors: BTreeMap<String, RawVendor>,
    #[serde(default)]
    input: crate::input::mapping::RawInputConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    concurrency: Option<Whole>,
    max_attempts: Option<Whole>,
    request_timeout: Option<String>,
    backoff_base: Option<String>,
    backoff_cap: Option<String>,
    retry_after_cap: Option<String>,
    grace_period: Option<String>,
    state: Option<PathBuf>,
    results: Option<PathBuf>,
    // The network keys, checked by `network.rs`.
    proxy: Option<toml::Value>,
    proxy_credentials: Option<toml::Value>,
    ca_cert: Option<toml::Value>,
    client_cert: Option<toml::Value>,
    client_key: Option<toml::Value>,
}

#[derive(Deserialize)]
struct RawVendor {
    kind: Option<String>,
    base_url: Option<String>,
    concurrency: Option<Whole>,
    rate_limit: Option<String>,
    max_attempts: Option<Whole>,
    backoff_base: Option<String>,
    backoff_cap: Option<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

fn duration(
    where_: &str,
    text: Option<&str>,
    default: Duration,
    b: &Bounds,
) -> Result<Duration, ConfigError> {
    match text {
        None => Ok(default),
        Some(t) => parse_duration(t, b).map_err(|e| ConfigError(format!("{where_}: {e}"))),
    }
}

/// Prefixes a message with the config file's name, unless it has it already,
/// so that an error says which file to open.
///
/// Any URL the message quotes loses its `user:password@` here, whatever
/// check produced it.
pub fn in_file(path: &Path, e: ConfigError) -> ConfigError {
    let name = path.display().to_string();
    let message = crate::redact::urls_in(&e.0).into_owned();
    if message.starts_with(&name) {
        ConfigError(message)
    } else {
        ConfigError(format!("{name}: {message}"))
    }
}

/// A TOML error on one line, `FILE:LINE:COLUMN: message`, instead of the
/// parser's multi-line snippet.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            ConfigError(format!("{}:{line}:{column}: {message}", path.display()))
        }
        None => ConfigError(format!("{}: {message}", path.display())),
    }
}

/// Plain `http://` is allowed only where nobody can listen in: loopback.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Checks a vendor's base URL; `where_` names the key for messages.
pub fn check_base_url(where_: &str, text: &str) -> Result<Url, ConfigError> {
    // The URL as messages show it: never with its `user:password@`.
    let shown = crate::redact::url(text);
    let mut url = Url::parse(text.trim())
        .map_err(|e| ConfigError(format!("{where_}: `{shown}` is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return err(format!(
                "{where_}: plain http:// is refused for `{shown}` (credentials would cross the network in clear); use https://"
            ));
        }
        other => {
            return err(format!(
                "{where_}: unsupported scheme `{other}`; use https://"
            ));
        }
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return err(format!(
            "{where_}: give only scheme, host, port and path prefix (no query, fragment or credentials): `{shown}`"
        ));
    }
    // The vendor paths are appended to this prefix; keep it without a trailing slash.
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&trimmed);
    Ok(url)
}

/// The most read from a config file; a real one is a few kilobytes, and a
/// wrong path (`/dev/zero`, a log) must not fill the memory.
pub const CONFIG_CAP: u64 = 1024 * 1024;

impl Config {
    /// Reads and checks the file. With `resolve_secrets` false the secrets'
    /// sources are checked for their form only; every command that reads a
    /// config reads its secrets too, so that a missing one is found by
    /// `validate` and `--dry-run` as it would be by the real run.
    pub fn load(path: &Path, resolve_secrets: bool) -> Result<Config, ConfigError> {
        let bytes = crate::small_file::read(path, CONFIG_CAP).map_err(|e| {
            let hint = match &e {
                e if e.is_not_found() => "; pass --config FILE (or set INVITESYNC_CONFIG)",
                crate::small_file::SmallFileError::Io(_) => "",
                _ => "; pass the invitesync.toml file with --config FILE",
            };
            ConfigError(format!(
                "cannot read the config file {}: {e}{hint}",
                path.display(),
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            ConfigError(format!(
                "{}: not UTF-8 text (a byte at offset {} is not); save the config as UTF-8",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        Self::parse(&text, path, resolve_secrets).map_err(|e| in_file(path, e))
    }

    /// Every file the config names that a run reads: the vendors' secret
    /// files (once [`crate::vendors::build::adapters`] has taken them), and
    /// the certificates, keys and proxy credentials of the network keys.
    /// Each with the setting that names it, for messages.
    pub fn files_read(&self) -> Vec<(String, PathBuf)> {
        let mut files = self.secrets.files();
        files.extend(self.network.files());
        files
    }

    /// A redactor of every secret that [`crate::vendors::build::adapters`] read, for what
    /// the vendors answer.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(&self.secrets.all())
    }

    pub fn parse(text: &str, path: &Path, resolve_secrets: bool) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let input = raw.input.check().map_err(ConfigError)?;
        let r = raw.run;
        let retry = RetryPolicy {
            max_attempts: whole("run.max_attempts", r.max_attempts, &MAX_ATTEMPTS, 6)? as u32,
            backoff_base: duration(
                "run.backoff_base",
                r.backoff_base.as_deref(),
                Duration::from_millis(250),
                &BACKOFF,
            )?,
            backoff_cap: duration(
                "run.backoff_cap",
                r.backoff_cap.as_deref(),
                Duration::from_secs(60),
                &BACKOFF_CAP,
            )?,
            retry_after_cap: duration(
                "run.retry_after_cap",
                r.retry_after_cap.as_deref(),
                Duration::from_secs(300),
                &RETRY_AFTER_CAP,
            )?,
        };
        let concurrency = whole("run.concurrency", r.concurrency, &CONCURRENCY, 64)? as usize;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut run_net = toml::Table::new();
        for (key, value) in [
            ("proxy", r.proxy),
            ("proxy_credentials", r.proxy_credentials),
            ("ca_cert", r.ca_cert),
            ("client_cert", r.client_cert),
            ("client_key", r.client_key),
        ] {
            if let Some(v) = value {
                run_net.insert(key.into(), v);
            }
        }
        // Every secret read, the vendors' and the proxies', for redaction.
        let secrets = Registry::default();
        let run_net =
            network::NetKeys::take("run", &mut run_net, &base_dir, resolve_secrets, &secrets)?;
        let mut network = network::NetConfig::new(&base_dir, resolve_secrets, run_net);
        let run = RunConfig {
            concurrency,
            request_timeout: duration(
                "run.request_timeout",
                r.request_timeout.as_deref(),
                Duration::from_secs(30),
                &REQUEST_TIMEOUT,
            )?,
            retry,
            grace_period: duration(
                "run.grace_period",
                r.grace_period.as_deref(),
                Duration::from_secs(10),
                &GRACE_PERIOD,
            )?,
            state: r.state.map(|p| base_dir.join(p)),
            results: r.results.map(|p| base_dir.join(p)),
        };
        if raw.vendors.is_empty() {
            return err(format!(
                "{}: no vendors configured; add a [vendors.NAME] table with kind, base_url and credentials",
                path.display()
            ));
        }
        let mut vendors = Vec::with_capacity(raw.vendors.len());
        for (name, mut v) in raw.vendors {
            let table = format!("vendors.{name}");
            let net =
                network::NetKeys::take(&table, &mut v.rest, &base_dir, resolve_secrets, &secrets)?;
            network.vendors.insert(name.clone(), net);
            // Which kinds exist is the vendors' list to say (where the
            // adapters are built); an empty kind is a missing one.
            let kind = v.kind.unwrap_or_default();
            let Some(base) = v.base_url else {
                return err(format!("{table}: missing `base_url`"));
            };
            let base_url = check_base_url(&format!("{table}.base_url"), &base)?;
            let vconcurrency = v
                .concurrency
                .map(|n| whole(&format!("{table}.concurrency"), Some(n), &CONCURRENCY, 0))
                .transpose()?
                .map(|n| n as usize);
            let rate_limit = v
                .rate_limit
                .as_deref()
                .map(RateLimit::parse)
                .transpose()
                .map_err(|e| ConfigError(format!("{table}.rate_limit: {e}")))?;
            let vretry = RetryPolicy {
                max_attempts: whole(
                    &format!("{table}.max_attempts"),
                    v.max_attempts,
                    &MAX_ATTEMPTS,
                    u64::from(run.retry.max_attempts),
                )? as u32,
                backoff_base: duration(
                    &format!("{table}.backoff_base"),
                    v.backoff_base.as_deref(),
                    run.retry.backoff_base,
                    &BACKOFF,
                )?,
                backoff_cap: duration(
                    &format!("{table}.backoff_cap"),
                    v.backoff_cap.as_deref(),
                    run.retry.backoff_cap,
                    &BACKOFF_CAP,
                )?,
                retry_after_cap: run.retry.retry_after_cap,
            };
            let settings =
                VendorSettings::scoped(&table, v.rest, resolve_secrets, &base_dir, &secrets);
            vendors.push((
                VendorConfig {
                    name,
                    kind,
                    base_url,
                    concurrency: vconcurrency,
                    rate_limit,
                    retry: vretry,
                },
                settings,
            ));
        }
        Ok(Config {
            path: path.to_path_buf(),
            run,
            vendors,
            secrets,
            network,
            input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"), false)
    }

    #[test]
    fn rates() {
        assert_eq!(RateLimit::parse("10/s").unwrap().per_second(), 10.0);
        assert_eq!(RateLimit::parse("600/min").unwrap().per_second(), 10.0);
        assert!(RateLimit::parse("0/s").is_err());
        assert!(RateLimit::parse("ten/s").is_err());
        assert!(RateLimit::parse("10/fortnight").is_err());
        assert_eq!(
            RateLimit::parse("10/s").unwrap().divided(4).per_second(),
            2.5
        );
    }

    #[test]
    fn http_only_to_loopback() {
        assert!(check_base_url("x", "http://127.0.0.1:8787").is_ok());
        assert!(check_base_url("x", "http://localhost:1/").is_ok());
        assert!(check_base_url("x", "http://[::1]:1/").is_ok());
        let e = check_base_url("vendors.a.base_url", "http://api.mn.co").unwrap_err();
        assert!(e.0.starts_with("vendors.a.base_url: plain http://"), "{e}");
        assert_eq!(
            check_base_url("x", "https://h.example/prefix/")
                .unwrap()
                .as_str(),
            "https://h.example/prefix"
        );
    }

    #[test]
    fn errors_name_table_and_key() {
        let e = parse("[vendors.m]\nkind = \"securegate\"\n").unwrap_err();
        assert!(e.0.contains("vendors.m: missing `base_url`"), "{e}");
        let e = parse(
            "[run]\nconcurency = 3\n[vendors.m]\nkind = \"securegate\"\nbase_url = \"https://x\"\n",
        )
        .unwrap_err();
        assert!(e.0.contains("concurency"), "{e}");
        let e = parse("[run]\nrequest_timeout = \"soon\"\n[vendors.m]\nkind = \"securegate\"\nbase_url = \"https://x\"\n")
            .unwrap_err();
        assert!(e.0.starts_with("run.request_timeout:"), "{e}");
    }

    #[test]
    fn input_table_errors_name_the_key() {
        let vendors = "[vendors.m]\nkind = \"securegate\"\nbase_url = \"https://x\"\n";
        let e = parse(&format!("[input]\ndelimiter = \";;\"\n{vendors}")).unwrap_err();
        assert!(e.0.starts_with("input.delimiter: "), "{e}");
        let e = parse(&format!("[input.columns]\nemial = \"Mail\"\n{vendors}")).unwrap_err();
        assert!(e.0.starts_with("input.columns.emial: "), "{e}");
        let e = parse(&format!("[input]\nvendr = \"m\"\n{vendors}")).unwrap_err();
        assert!(e.0.contains("vendr"), "{e}");
        let c = parse(&format!("[input]\ndelimiter = \"tab\"\n{vendors}")).unwrap();
        assert_eq!(c.input.delimiter, Some(b'\t'));
    }

    #[test]
    fn secrets_come_from_env_or_file_only() {
        let mut t = toml::Table::new();
        t.insert("token".into(), toml::Value::String("inline".into()));
        let mut s = VendorSettings::from_table("vendors.m", t);
        let e = s.secret("token").unwrap_err();
        assert!(e.0.contains("never written in the config"), "{e}");

        let mut t = toml::Table::new();
        let mut src = toml::Table::new();
        src.insert(
            "env".into(),
            toml::Value::String("INVITESYNC_TEST_SURELY_UNSET".into()),
        );
        t.insert("token".into(), toml::Value::Table(src));
        let mut s = VendorSettings::from_table("vendors.m", t);
        let e = s.secret("token").unwrap_err();
        assert!(
            e.0.contains("INVITESYNC_TEST_SURELY_UNSET is not set"),
            "{e}"
        );
        assert!(e.0.starts_with("vendors.m.token"), "{e}");
    }

    #[test]
    fn leftover_keys_are_refused() {
        let mut t = toml::Table::new();
        t.insert("api_key".into(), toml::Value::String("x".into()));
        let s = VendorSettings::from_table("vendors.m", t);
        assert!(s.finish().unwrap_err().0.contains("unknown key `api_key`"));
    }
}
