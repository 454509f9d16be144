//! The adapters of a config's vendor accounts: each `[vendors.NAME]` table's
//! `kind` picks its entry in the list of kinds, whose `build` takes the
//! table's own keys.

use super::Kind;
use super::adapter::Adapter;
use crate::config::{Config, ConfigError, VendorConfig, VendorSettings, in_file};

/// Builds the adapter of one configured vendor account.
pub fn adapter(
    config: &VendorConfig,
    settings: VendorSettings,
) -> Result<Box<dyn Adapter>, ConfigError> {
    let table = settings.table();
    if config.kind.is_empty() {
        return Err(ConfigError(format!(
            "{table}: missing `kind`; one of {}",
            Kind::list()
        )));
    }
    let Some(kind) = Kind::ALL.into_iter().find(|k| k.as_str() == config.kind) else {
        return Err(ConfigError(format!(
            "{table}.kind: unknown kind `{}`; one of {}",
            config.kind,
            Kind::list()
        )));
    };
    (kind.vendor().build)(config, settings)
}

/// The adapters of every vendor account, in config order: this is where each
/// kind takes its own keys and where secrets are read, so mistakes surface
/// here.
pub fn adapters(config: &Config) -> Result<Vec<Box<dyn Adapter>>, ConfigError> {
    config
        .vendors
        .iter()
        .map(|(vc, settings)| adapter(vc, settings.clone()).map_err(|e| in_file(&config.path, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn adapters_of(text: &str) -> Result<Vec<Box<dyn Adapter>>, ConfigError> {
        adapters(&Config::parse(text, Path::new("t.toml"), false)?)
    }

    #[test]
    fn the_kind_names_an_entry_of_the_list() {
        let e = adapters_of("[vendors.m]\nkind = \"nope\"\nbase_url = \"https://x\"\n")
            .err()
            .unwrap();
        assert!(
            e.0.starts_with("t.toml: vendors.m.kind: unknown kind `nope`; one of "),
            "{e}"
        );
        let e = adapters_of("[vendors.m]\nbase_url = \"https://x\"\n")
            .err()
            .unwrap();
        assert!(
            e.0.starts_with("t.toml: vendors.m: missing `kind`; one of "),
            "{e}"
        );
    }

    /// Every kind in the list is accepted as a `kind` and builds an adapter
    /// from its own credential keys, and from nothing else.
    #[test]
    fn every_kind_builds_from_its_credential_keys() {
        for kind in Kind::ALL {
            let vendor = kind.vendor();
            let mut text = format!(
                "[vendors.v]\nkind = \"{}\"\nbase_url = \"https://x\"\n",
                vendor.name
            );
            for c in vendor.credentials {
                text.push_str(&format!("{} = {{ env = \"UNREAD\" }}\n", c.key));
            }
            let built = adapters_of(&text).unwrap_or_else(|e| panic!("{}: {e}", vendor.name));
            assert_eq!(built.len(), 1);
            let extra = format!("{text}not_a_key = \"x\"\n");
            assert!(adapters_of(&extra).is_err(), "{}", vendor.name);
        }
    }
}
