//! One vendor kind as the rest of the program sees it: a [`Vendor`] value
//! that the kind's folder defines and the list in `vendors/mod.rs` names.

use std::sync::Arc;

use super::adapter::Adapter;
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::sim::simulation::{Context, Simulation};

/// Builds one account's adapter from its config table.
pub type BuildAdapter = fn(&VendorConfig, VendorSettings) -> Result<Box<dyn Adapter>, ConfigError>;

/// Everything the program knows of one vendor kind.
pub struct Vendor {
    /// The `kind` of a `[vendors.NAME]` table; also how the sandbox names the
    /// kind in its statistics, fault settings and seed files.
    pub name: &'static str,
    /// Builds the adapter of one configured account. It takes the kind's own
    /// keys (credentials, settings) out of the settings table and finishes it,
    /// so a key of another kind is refused.
    pub build: BuildAdapter,
    /// The credentials an account needs, in the order the config lists them;
    /// the sandbox expects one value of each (a flag of `invitesync sandbox`).
    pub credentials: &'static [Credential],
    /// What the sandbox's start-up banner says it expects: each `{}` is the
    /// value of the next credential.
    pub banner: &'static str,
    /// Starts the kind's simulated API in the sandbox.
    pub simulate: fn(&Context) -> Arc<dyn Simulation>,
    /// A valid change as `(column, value)` cells of an input row: the
    /// adapter accepts it and the sandbox applies it.
    pub example: &'static [(&'static str, &'static str)],
}

/// One credential of a vendor kind.
pub struct Credential {
    /// The key of a `[vendors.NAME]` table that holds it (`api_key`).
    pub key: &'static str,
    /// The `invitesync sandbox` flag that sets the value the sandbox expects,
    /// without its dashes (`securegate-api-key`).
    pub flag: &'static str,
    /// The flag's value name in `--help` (`KEY`).
    pub value_name: &'static str,
    /// The sandbox's value when the flag is not given.
    pub default: &'static str,
    /// The flag's `--help` line.
    pub help: &'static str,
}

impl Vendor {
    /// The banner's line for this kind, with the credentials' values.
    pub fn banner_line(&self, values: &[&str]) -> String {
        let mut line = String::new();
        let mut values = values.iter();
        let mut parts = self.banner.split("{}").peekable();
        while let Some(part) = parts.next() {
            line.push_str(part);
            if parts.peek().is_some() {
                line.push_str(values.next().copied().unwrap_or(""));
            }
        }
        line
    }
}
