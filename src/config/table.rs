//! A vendor table's own keys, which its kind takes apart.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, err};
use crate::secret::{Registry, Secret, Source};

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
    /// Where each secret read is remembered, shared by all vendor tables.
    found: Registry,
}

impl VendorSettings {
    /// A settings table for tests and for code that builds adapters directly.
    pub fn from_table(table: &str, rest: toml::Table) -> Self {
        VendorSettings {
            table: table.to_string(),
            rest,
            resolve_secrets: true,
            base_dir: PathBuf::from("."),
            found: Registry::default(),
        }
    }

    /// The table `table` of a config being loaded: a vendor's own keys, or
    /// the network keys of `[run]` and of vendor tables (`network.rs`).
    pub(crate) fn scoped(
        table: &str,
        rest: toml::Table,
        resolve_secrets: bool,
        base_dir: &Path,
        found: &Registry,
    ) -> Self {
        VendorSettings {
            table: table.to_string(),
            rest,
            resolve_secrets,
            base_dir: base_dir.to_path_buf(),
            found: found.clone(),
        }
    }

    /// Whether the table holds `key`.
    pub fn has(&self, key: &str) -> bool {
        self.rest.contains_key(key)
    }

    /// `vendors.NAME`, for messages.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A required secret: `{ env = "VAR" }` or `{ file = "PATH" }`, read and
    /// checked (see [`crate::secret::read`]). When the config was loaded
    /// without secrets (tests of the vendors' rules), the source is only
    /// checked for its form and an empty placeholder is returned.
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
        let path = self.base_dir.join(file.unwrap_or_default());
        if file.is_some() {
            self.found.add_file(&where_, &path);
        }
        if !self.resolve_secrets {
            return Ok(Secret::new(""));
        }
        let from = match env {
            Some(var) => Source::Env(var),
            None => Source::File(&path),
        };
        let read = crate::secret::read(from).map_err(|e| ConfigError(format!("{where_}: {e}")))?;
        if let Some(w) = read.warning {
            crate::logs::notice(crate::logs::Level::Warn, &format!("warning: {where_}: {w}"));
        }
        self.found.add(&read.secret);
        Ok(read.secret)
    }

    /// Where a secret comes from, for messages that ask the user to check it:
    /// `environment variable MIGHTY_TOKEN` or `file /etc/invitesync/om.key`.
    /// Never the value.
    pub fn secret_source(&self, key: &str) -> Option<String> {
        let source = self.rest.get(key)?.as_table()?;
        if let Some(var) = source.get("env").and_then(|v| v.as_str()) {
            return Some(Source::Env(var).to_string());
        }
        let file = source.get("file").and_then(|v| v.as_str())?;
        Some(Source::File(&self.base_dir.join(file)).to_string())
    }

    /// The file a secret setting names (`{ file = "PATH" }`), relative to
    /// the config file, without reading it.
    pub fn secret_file(&self, key: &str) -> Option<PathBuf> {
        let file = self.rest.get(key)?.as_table()?.get("file")?.as_str()?;
        Some(self.base_dir.join(file))
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
