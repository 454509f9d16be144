//! The network keys of the config, as written: `proxy`, `proxy_credentials`,
//! `ca_cert`, `client_cert` and `client_key`, in `[run]` (for every vendor)
//! and in each `[vendors.NAME]` table (for that vendor, winning over `[run]`).
//!
//! They are only checked for shape here; files and secrets are read when the
//! network is built ([`crate::net::Network::build`]), which `run` and `check`
//! do before anything is sent, and commands that send nothing never do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::table::VendorSettings;

/// One table's network keys.
#[derive(Debug, Clone)]
pub struct NetKeys {
    /// `run` or `vendors.NAME`, for messages.
    pub table: String,
    pub proxy: Option<String>,
    pub ca_cert: Option<String>,
    pub client_cert: Option<String>,
    /// `{ env }` or `{ file }`: a PEM private key, read by [`crate::net::pem`].
    pub client_key: Option<toml::Table>,
    /// Holds `proxy_credentials` (`USER:PASSWORD`), read as any other secret.
    pub secrets: VendorSettings,
}

impl NetKeys {
    /// Takes the network keys out of `rest` (the keys of a vendor table that
    /// no common key claimed, or those of `[run]`), checking their types.
    pub fn take(
        table: &str,
        rest: &mut toml::Table,
        base_dir: &Path,
        resolve_secrets: bool,
        found: &crate::secret::Registry,
    ) -> Result<NetKeys, ConfigError> {
        let string = |rest: &mut toml::Table, key: &str| match rest.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ConfigError(format!(
                "{table}.{key}: expected a string, e.g. `{key} = \"{}\"`",
                example(key)
            ))),
        };
        let proxy = string(rest, "proxy")?;
        let ca_cert = string(rest, "ca_cert")?;
        let client_cert = string(rest, "client_cert")?;
        let client_key = match rest.remove("client_key") {
            None => None,
            Some(toml::Value::Table(t)) => Some(t),
            Some(toml::Value::String(_)) => {
                return Err(ConfigError(format!(
                    "{table}.client_key: a private key is a secret; write `client_key = {{ file = \"PATH\" }}` \
                     (a PEM file) or `client_key = {{ env = \"VARIABLE\" }}`"
                )));
            }
            Some(_) => {
                return Err(ConfigError(format!(
                    "{table}.client_key: expected `{{ file = \"PATH\" }}` or `{{ env = \"VARIABLE\" }}`"
                )));
            }
        };
        let mut secrets = toml::Table::new();
        if let Some(v) = rest.remove("proxy_credentials") {
            secrets.insert("proxy_credentials".into(), v);
        }
        if client_cert.is_some() != client_key.is_some() {
            let (has, lacks) = if client_cert.is_some() {
                ("client_cert", "client_key")
            } else {
                ("client_key", "client_cert")
            };
            return Err(ConfigError(format!(
                "{table}: `{has}` is set but `{lacks}` is not; a client certificate needs both \
                 (`client_cert = \"PATH\"` for the certificate, `client_key = {{ file = \"PATH\" }}` for its key)"
            )));
        }
        Ok(NetKeys {
            table: table.to_string(),
            proxy,
            ca_cert,
            client_cert,
            client_key,
            secrets: VendorSettings::scoped(table, secrets, resolve_secrets, base_dir, found),
        })
    }

    pub fn has_proxy_credentials(&self) -> bool {
        self.secrets.has("proxy_credentials")
    }

    /// The files these keys name, each with its setting (`run.ca_cert`), as
    /// written and relative to `base_dir`: none is read here.
    fn files(&self, base_dir: &Path) -> Vec<(String, PathBuf)> {
        let table = &self.table;
        let mut out = Vec::new();
        for (key, written) in [
            ("ca_cert", &self.ca_cert),
            ("client_cert", &self.client_cert),
        ] {
            if let Some(w) = written {
                out.push((format!("{table}.{key}"), base_dir.join(w)));
            }
        }
        if let Some(file) = self
            .client_key
            .as_ref()
            .and_then(|t| t.get("file"))
            .and_then(|v| v.as_str())
        {
            out.push((format!("{table}.client_key"), base_dir.join(file)));
        }
        if let Some(path) = self.secrets.secret_file("proxy_credentials") {
            out.push((format!("{table}.proxy_credentials"), path));
        }
        out
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "proxy" => "http://proxy.example.com:3128",
        "client_cert" => "client.pem",
        _ => "ca.pem",
    }
}

/// The network keys of the whole file.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Relative paths start here (the config file's directory).
    pub base_dir: PathBuf,
    /// False for commands that send nothing: no file or secret is read.
    pub resolve: bool,
    pub run: NetKeys,
    pub vendors: BTreeMap<String, NetKeys>,
}

impl NetConfig {
    pub fn new(base_dir: &Path, resolve: bool, run: NetKeys) -> Self {
        NetConfig {
            base_dir: base_dir.to_path_buf(),
            resolve,
            run,
            vendors: BTreeMap::new(),
        }
    }

    /// Every file the network keys name (certificates, keys, credentials):
    /// files a run reads, which none of its outputs may be.
    pub fn files(&self) -> Vec<(String, PathBuf)> {
        std::iter::once(&self.run)
            .chain(self.vendors.values())
            .flat_map(|k| k.files(&self.base_dir))
            .collect()
    }

    /// A path as written in the config, relative to the config file.
    pub fn path(&self, written: &str) -> PathBuf {
        self.base_dir.join(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(text: &str) -> Result<NetKeys, ConfigError> {
        let mut t: toml::Table = toml::from_str(text).unwrap();
        NetKeys::take(
            "vendors.om",
            &mut t,
            Path::new("."),
            false,
            &crate::secret::Registry::default(),
        )
    }

    #[test]
    fn keys_are_checked_for_shape_and_named() {
        let e = take("proxy = 3128").unwrap_err();
        assert!(
            e.0.starts_with("vendors.om.proxy: expected a string"),
            "{e}"
        );
        let e = take("ca_cert = [\"a\"]").unwrap_err();
        assert!(e.0.starts_with("vendors.om.ca_cert:"), "{e}");
        let e = take("client_key = \"-----BEGIN PRIVATE KEY-----\"").unwrap_err();
        assert!(e.0.contains("a private key is a secret"), "{e}");
        assert!(!e.0.contains("BEGIN"), "{e}");
        let e = take("client_key = { file = \"k.pem\" }").unwrap_err();
        assert!(
            e.0.contains("`client_key` is set but `client_cert` is not"),
            "{e}"
        );
        let mut t: toml::Table = toml::from_str(
            "proxy = \"none\"\nkind = \"ops_manager\"\nproxy_credentials = { env = \"P\" }",
        )
        .unwrap();
        let k = NetKeys::take(
            "vendors.om",
            &mut t,
            Path::new("."),
            false,
            &crate::secret::Registry::default(),
        )
        .unwrap();
        assert_eq!(k.proxy.as_deref(), Some("none"));
        assert!(k.has_proxy_credentials());
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            ["kind"],
            "only its keys are taken"
        );
    }
}
