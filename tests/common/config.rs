//! The config the end-to-end tests and `make bench` write: one account for
//! each vendor kind their inputs name, all on one base URL, each credential
//! in a file of its own. Shared as a file (`#[path]`) by the tests' harness
//! and the bench. (That every kind of the list parses, builds and is served
//! is proven once, in the library's `sandbox::kinds_test`.)

use std::io;
use std::path::Path;

use invitesync::sandbox::Credentials;
use invitesync::vendors::{Credential, Kind};

/// The account of a kind in the tests' inputs and in `samples/`: what their
/// `vendor` column says. These are data, the names the test files use; a
/// kind they do not use gets no account.
pub fn account(kind: Kind) -> Option<&'static str> {
    match kind.as_str() {
        "mighty_networks" => Some("mighty"),
        "securegate" => Some("gate"),
        "ops_manager" => Some("om"),
        "ctrl_hub" => Some("hub"),
        _ => None,
    }
}

/// The kinds that have an account, with it, in the list's order.
fn accounts() -> impl Iterator<Item = (Kind, &'static str)> {
    Kind::ALL
        .into_iter()
        .filter_map(|kind| account(kind).map(|a| (kind, a)))
}

/// Where a credential's file is, relative to the config: `secrets/ACCOUNT`,
/// or `secrets/ACCOUNT-NAME` (`om-public`) for a kind with several.
pub fn secret_file(kind: Kind, account: &str, credential: &Credential) -> String {
    if kind.vendor().credentials.len() == 1 {
        format!("secrets/{account}")
    } else {
        let name = credential.key.trim_end_matches("_key").replace('_', "-");
        format!("secrets/{account}-{name}")
    }
}

/// Writes every credential's file under `dir` with the value in `creds`.
pub fn write_secrets(dir: &Path, creds: &Credentials) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("secrets"))?;
    for (kind, account) in accounts() {
        for c in kind.vendor().credentials {
            let value = creds.get(c.flag).unwrap_or_default();
            let file = dir.join(secret_file(kind, account, c));
            std::fs::write(&file, format!("{value}\n"))?;
            // As a credential file should be: readable by its owner alone.
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// A `[vendors.ACCOUNT]` table for every kind with an account, on `base`,
/// each one followed by a blank line but the last.
pub fn vendor_tables(base: &str) -> String {
    vendor_tables_with(base, &|_| String::new())
}

/// [`vendor_tables`] with `extra(kind)` appended to each kind's table.
pub fn vendor_tables_with(base: &str, extra: &dyn Fn(Kind) -> String) -> String {
    let tables: Vec<String> = accounts()
        .map(|(kind, account)| {
            let mut t = format!(
                "[vendors.{account}]\nkind = \"{}\"\nbase_url = \"{base}\"\n",
                kind.as_str()
            );
            for c in kind.vendor().credentials {
                t.push_str(&format!(
                    "{} = {{ file = \"{}\" }}\n",
                    c.key,
                    secret_file(kind, account, c)
                ));
            }
            t.push_str(&extra(kind));
            t
        })
        .collect();
    tables.join("\n")
}
