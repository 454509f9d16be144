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

use reqwest::Url;
use serde::Deserialize;

use crate::secret::Secret;

/// A configuration mistake, already phrased for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

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
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let (n, unit) = text.split_once('/').ok_or_else(|| {
            format!("`{text}` is not a rate; write it as \"10/s\", \"600/min\" or \"5000/h\"")
        })?;
        let requests: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("`{n}` in `{text}` is not a positive whole number of requests")
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
        Ok(RateLimit { requests, per })
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
    concurrency: Option<usize>,
    max_attempts: Option<u32>,
    request_timeout: Option<String>,
    backoff_base: Option<String>,
    backoff_cap: Option<String>,
    retry_after_cap: Option<String>,
    grace_period: Option<String>,
    state: Option<PathBuf>,
    results: Option<PathBuf>,
}

#[derive(Deserialize)]
struct RawVendor {
    kind: Option<String>,
    base_url: Option<String>,
    concurrency: Option<usize>,
    rate_limit: Option<String>,
    max_attempts: Option<u32>,
    backoff_base: Option<String>,
    backoff_cap: Option<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

/// The keys of a vendor table that belong to its kind alone. The vendor module
/// takes the keys it knows with [`VendorSettings::secret`] and friends, then
/// calls [`VendorSettings::finish`], which rejects whatever is left over
/// (a typo, or another kind's credential).
#[derive(Debug, Clone)]
pub struct VendorSettings {
    table: String,
    rest: toml::Table,
    resolve_secrets: bool,
    base_dir: PathBuf,
}

impl VendorSettings {
    /// A settings table for tests and for code that builds adapters directly.
    pub fn from_table(table: &str, rest: toml::Table) -> Self {
        VendorSettings {
            table: table.to_string(),
            rest,
            resolve_secrets: true,
            base_dir: PathBuf::from("."),
        }
    }

    /// `vendors.NAME`, for messages.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A required secret: `{ env = "VAR" }` or `{ file = "PATH" }`. When the
    /// command does not send anything (`validate`, `--dry-run`), secrets are
    /// not read and an empty placeholder is returned.
    pub fn secret(&mut self, key: &str) -> Result<Secret, ConfigError> {
        let table = self.table.clone();
        let Some(value) = self.rest.remove(key) else {
            return err(format!(
                "{table}: missing `{key}`; add `{key} = {{ env = \"VARIABLE\" }}` or `{key} = {{ file = \"PATH\" }}`"
            ));
        };
        let where_ = format!("{table}.{key}");
        let source = match value {
            toml::Value::Table(t) => t,
            toml::Value::String(_) => {
                return err(format!(
                    "{where_}: secrets are never written in the config; use `{{ env = \"VARIABLE\" }}` or `{{ file = \"PATH\" }}`"
                ));
            }
            _ => {
                return err(format!(
                    "{where_}: expected `{{ env = \"VARIABLE\" }}` or `{{ file = \"PATH\" }}`"
                ));
            }
        };
        let env = source.get("env").and_then(|v| v.as_str());
        let file = source.get("file").and_then(|v| v.as_str());
        if source.len() != 1 || env.is_none() == file.is_none() {
            return err(format!(
                "{where_}: expected exactly one of `env = \"VARIABLE\"` or `file = \"PATH\"`"
            ));
        }
        if !self.resolve_secrets {
            return Ok(Secret::new(""));
        }
        let (value, from) = if let Some(var) = env {
            match std::env::var(var) {
                Ok(v) => (v, format!("environment variable {var}")),
                Err(std::env::VarError::NotPresent) => {
                    return err(format!(
                        "{where_}: environment variable {var} is not set; export it (or point `{key}` at a file with `{{ file = \"PATH\" }}`)"
                    ));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return err(format!(
                        "{where_}: environment variable {var} is not valid UTF-8; set it to the credential as text"
                    ));
                }
            }
        } else {
            let path = self.base_dir.join(file.unwrap_or_default());
            match std::fs::read_to_string(&path) {
                Ok(v) => (v, format!("file {}", path.display())),
                Err(e) => {
                    return err(format!(
                        "{where_}: cannot read {}: {}; check the path (relative paths start at the config file) and that this user may read it",
                        path.display(),
                        crate::fs_error::reason(&e)
                    ));
                }
            }
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return err(format!(
                "{where_}: {from} is empty; put the credential in it"
            ));
        }
        Ok(Secret::new(value))
    }

    /// Where a secret comes from, for messages that ask the user to check it:
    /// `environment variable MIGHTY_TOKEN` or `file /etc/invitesync/om.key`.
    /// Never the value.
    pub fn secret_source(&self, key: &str) -> Option<String> {
        let source = self.rest.get(key)?.as_table()?;
        if let Some(var) = source.get("env").and_then(|v| v.as_str()) {
            return Some(format!("environment variable {var}"));
        }
        let file = source.get("file").and_then(|v| v.as_str())?;
        Some(format!("file {}", self.base_dir.join(file).display()))
    }

    /// An optional string setting.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.rest.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => err(format!("{}.{key}: expected a string", self.table)),
        }
    }

    /// Fails on any key that no one took.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.rest.keys().next() {
            None => Ok(()),
            Some(k) => err(format!(
                "{}: unknown key `{k}` for this kind of vendor",
                self.table
            )),
        }
    }
}

fn duration(where_: &str, text: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match text {
        None => Ok(default),
        Some(t) => humantime::parse_duration(t.trim()).map_err(|e| {
            ConfigError(format!(
                "{where_}: `{t}` is not a duration ({e}); write e.g. \"30s\", \"250ms\", \"2m\""
            ))
        }),
    }
}

/// Prefixes a message with the config file's name, unless it has it already,
/// so that an error says which file to open.
fn in_file(path: &Path, e: ConfigError) -> ConfigError {
    let name = path.display().to_string();
    if e.0.starts_with(&name) {
        e
    } else {
        ConfigError(format!("{name}: {}", e.0))
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
    let mut url = Url::parse(text.trim())
        .map_err(|e| ConfigError(format!("{where_}: `{text}` is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return err(format!(
                "{where_}: plain http:// is refused for `{text}` (credentials would cross the network in clear); use https://"
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
            "{where_}: give only scheme, host, port and path prefix (no query, fragment or credentials)"
        ));
    }
    // The vendor paths are appended to this prefix; keep it without a trailing slash.
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&trimmed);
    Ok(url)
}

impl Config {
    /// Reads and checks the file. `resolve_secrets` is false for commands that
    /// send nothing, so that `validate` works without credentials.
    pub fn load(path: &Path, resolve_secrets: bool) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; pass --config FILE (or set INVITESYNC_CONFIG)"
            } else {
                ""
            };
            ConfigError(format!(
                "cannot read the config file {}: {}{hint}",
                path.display(),
                crate::fs_error::reason(&e)
            ))
        })?;
        Self::parse(&text, path, resolve_secrets).map_err(|e| in_file(path, e))
    }

    /// The vendor adapters, in config order: this is where each kind takes
    /// its own keys and where secrets are read, so mistakes surface here.
    pub fn adapters(&self) -> Result<Vec<Box<dyn crate::vendors::Adapter>>, ConfigError> {
        self.vendors
            .iter()
            .map(|(vc, settings)| {
                crate::vendors::build(vc, settings.clone()).map_err(|e| in_file(&self.path, e))
            })
            .collect()
    }

    pub fn parse(text: &str, path: &Path, resolve_secrets: bool) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let input = raw.input.check().map_err(ConfigError)?;
        let r = raw.run;
        let retry = RetryPolicy {
            max_attempts: r.max_attempts.unwrap_or(6),
            backoff_base: duration(
                "run.backoff_base",
                r.backoff_base.as_deref(),
                Duration::from_millis(250),
            )?,
            backoff_cap: duration(
                "run.backoff_cap",
                r.backoff_cap.as_deref(),
                Duration::from_secs(60),
            )?,
            retry_after_cap: duration(
                "run.retry_after_cap",
                r.retry_after_cap.as_deref(),
                Duration::from_secs(300),
            )?,
        };
        if retry.max_attempts == 0 {
            return err("run.max_attempts: must be at least 1");
        }
        let concurrency = r.concurrency.unwrap_or(64);
        if concurrency == 0 {
            return err("run.concurrency: must be at least 1");
        }
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let run = RunConfig {
            concurrency,
            request_timeout: duration(
                "run.request_timeout",
                r.request_timeout.as_deref(),
                Duration::from_secs(30),
            )?,
            retry,
            grace_period: duration(
                "run.grace_period",
                r.grace_period.as_deref(),
                Duration::from_secs(10),
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
        for (name, v) in raw.vendors {
            let table = format!("vendors.{name}");
            let Some(kind) = v.kind else {
                return err(format!(
                    "{table}: missing `kind`; one of {}",
                    crate::vendors::KINDS.join(", ")
                ));
            };
            if !crate::vendors::KINDS.contains(&kind.as_str()) {
                return err(format!(
                    "{table}.kind: unknown kind `{kind}`; one of {}",
                    crate::vendors::KINDS.join(", ")
                ));
            }
            let Some(base) = v.base_url else {
                return err(format!("{table}: missing `base_url`"));
            };
            let base_url = check_base_url(&format!("{table}.base_url"), &base)?;
            if v.concurrency == Some(0) {
                return err(format!("{table}.concurrency: must be at least 1"));
            }
            let rate_limit = v
                .rate_limit
                .as_deref()
                .map(RateLimit::parse)
                .transpose()
                .map_err(|e| ConfigError(format!("{table}.rate_limit: {e}")))?;
            let vretry = RetryPolicy {
                max_attempts: v.max_attempts.unwrap_or(run.retry.max_attempts),
                backoff_base: duration(
                    &format!("{table}.backoff_base"),
                    v.backoff_base.as_deref(),
                    run.retry.backoff_base,
                )?,
                backoff_cap: duration(
                    &format!("{table}.backoff_cap"),
                    v.backoff_cap.as_deref(),
                    run.retry.backoff_cap,
                )?,
                retry_after_cap: run.retry.retry_after_cap,
            };
            if vretry.max_attempts == 0 {
                return err(format!("{table}.max_attempts: must be at least 1"));
            }
            let settings = VendorSettings {
                table: table.clone(),
                rest: v.rest,
                resolve_secrets,
                base_dir: base_dir.clone(),
            };
            vendors.push((
                VendorConfig {
                    name,
                    kind,
                    base_url,
                    concurrency: v.concurrency,
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
        let e = parse("[vendors.m]\nkind = \"nope\"\nbase_url = \"https://x\"\n").unwrap_err();
        assert!(
            e.0.starts_with("vendors.m.kind: unknown kind `nope`"),
            "{e}"
        );
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
