//! The config the end-to-end tests and `make bench` write: one account per
//! vendor kind, all on one base URL, each credential in a file of its own.
//! Shared as a file (`#[path]`) by the tests' harness and the bench.

use std::io;
use std::path::Path;

use invitesync::sandbox::Credentials;
use invitesync::vendors::{Credential, Kind};

/// The account name of each kind: what the `vendor` column of the tests'
/// inputs and of `samples/` says. A kind they do not know is named as itself.
pub fn account(kind: Kind) -> &'static str {
    match kind.as_str() {
        "mighty_networks" => "mighty",
        "securegate" => "gate",
        "ops_manager" => "om",
        "ctrl_hub" => "hub",
        other => other,
    }
}

/// Where a credential's file is, relative to the config: `secrets/ACCOUNT`,
/// or `secrets/ACCOUNT-NAME` (`om-public`) for a kind with several.
pub fn secret_file(kind: Kind, credential: &Credential) -> String {
    let account = account(kind);
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
    for kind in Kind::ALL {
        for c in kind.vendor().credentials {
            let value = creds.get(c.flag).unwrap_or_default();
            std::fs::write(dir.join(secret_file(kind, c)), format!("{value}\n"))?;
        }
    }
    Ok(())
}

/// A `[vendors.ACCOUNT]` table for every kind, on `base`, each one followed
/// by a blank line but the last.
pub fn vendor_tables(base: &str) -> String {
    vendor_tables_with(base, &|_| String::new())
}

/// [`vendor_tables`] with `extra(kind)` appended to each kind's table.
pub fn vendor_tables_with(base: &str, extra: &dyn Fn(Kind) -> String) -> String {
    let tables: Vec<String> = Kind::ALL
        .into_iter()
        .map(|kind| {
            let mut t = format!(
                "[vendors.{}]\nkind = \"{}\"\nbase_url = \"{base}\"\n",
                account(kind),
                kind.as_str()
            );
            for c in kind.vendor().credentials {
                t.push_str(&format!(
                    "{} = {{ file = \"{}\" }}\n",
                    c.key,
                    secret_file(kind, c)
                ));
            }
            t.push_str(&extra(kind));
            t
        })
        .collect();
    tables.join("\n")
}
