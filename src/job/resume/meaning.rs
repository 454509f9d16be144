//! What of the config decides what a row becomes, recorded with each run so
//! that a resume can tell whether its rows would still mean the same and,
//! when they would not, say exactly what changed.
//!
//! A row becomes a request through its vendor account's name (the `vendor`
//! column routes by it, and the ledger keys every invite by it), that
//! account's kind (whose adapter checks the row and builds the path and
//! body) and the kind's own settings that change the request (Mighty's
//! `method`). Those are recorded. Everything else in a vendor table is how
//! the request travels or how fast: `base_url` (the planned path is appended
//! to it, and neither the ledger's fingerprint of a change nor its invite key
//! includes it), proxies, certificates, credentials, timeouts, rate limits,
//! concurrency and retries. Those are what a stopped vendor's message asks
//! the user to fix, so they may change before a resume.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::vendors::Adapter;

/// One vendor account as far as what its rows become.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Account {
    name: String,
    kind: String,
    /// The adapter's [`Adapter::settings_fingerprint`], e.g. `method=PATCH`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    settings: String,
}

/// The recorded form: JSON, so that a refusal can name the account and the
/// key that changed (nothing secret is in it).
#[derive(Debug, Serialize, Deserialize)]
struct Recorded {
    row_meaning: u32,
    vendors: Vec<Account>,
    /// What an earlier release would have recorded of the same config
    /// ([`legacy`]): a run it interrupted resumes after an upgrade when this
    /// matches. Never compared between two records of this form.
    #[serde(default)]
    earlier: String,
}

/// The version of [`Recorded`]; runs recorded before it hold a BLAKE3 digest
/// of every account's name, kind, base URL and settings ([`legacy`]).
const VERSION: u32 = 2;

fn accounts(config: &Config, adapters: &[Box<dyn Adapter>]) -> Vec<Account> {
    config
        .vendors
        .iter()
        .zip(adapters)
        .map(|((vc, _), a)| Account {
            name: vc.name.clone(),
            kind: vc.kind.clone(),
            settings: a.settings_fingerprint(),
        })
        .collect()
}

/// What a run records of `config` (its `config_fingerprint`).
pub fn record(config: &Config, adapters: &[Box<dyn Adapter>]) -> String {
    let doc = Recorded {
        row_meaning: VERSION,
        vendors: accounts(config, adapters),
        earlier: legacy(config, adapters),
    };
    // Serialising strings and numbers cannot fail; an empty record would only
    // make a resume refuse, never accept a different config.
    serde_json::to_string(&doc).unwrap_or_default()
}

/// What an earlier release recorded: a digest that took `base_url` in too.
fn legacy(config: &Config, adapters: &[Box<dyn Adapter>]) -> String {
    let mut h = blake3::Hasher::new();
    for ((vc, _), a) in config.vendors.iter().zip(adapters) {
        h.update(
            format!(
                "{}\0{}\0{}\0{}\n",
                vc.name,
                vc.kind,
                vc.base_url,
                a.settings_fingerprint()
            )
            .as_bytes(),
        );
    }
    h.finalize().to_hex().to_string()
}

/// What changed between what a run recorded (`before`, with `before_names`,
/// the accounts the run listed) and what this config records (`now`, from
/// [`record`]), one phrase per change; empty when its rows would become the
/// same requests.
pub fn changes(before: &str, before_names: &[String], now: &str) -> Vec<String> {
    let now = match serde_json::from_str::<Recorded>(now) {
        Ok(doc) => doc,
        Err(_) => return vec!["the vendors (this config could not be recorded)".to_string()],
    };
    match serde_json::from_str::<Recorded>(before) {
        Ok(doc) => compare(&doc.vendors, &now.vendors),
        Err(_) if before == now.earlier => Vec::new(),
        Err(_) => {
            let names: Vec<String> = now.vendors.iter().map(|a| a.name.clone()).collect();
            let mut found = compare_names(before_names, &names);
            if found.is_empty() {
                found.push(
                    "a vendor's kind, `base_url` or `method` (the run was recorded by an earlier \
                     release, which kept only a digest of them, so which one cannot be told)"
                        .to_string(),
                );
            }
            found
        }
    }
}

fn compare(before: &[Account], now: &[Account]) -> Vec<String> {
    let mut found = Vec::new();
    for b in before {
        match now.iter().find(|n| n.name == b.name) {
            None => found.push(format!("[vendors.{}] was removed", b.name)),
            Some(n) if n.kind != b.kind => found.push(format!(
                "[vendors.{}] kind was `{}`, is now `{}`",
                b.name, b.kind, n.kind
            )),
            Some(n) if n.settings != b.settings => {
                found.push(settings_change(&b.name, &b.settings, &n.settings))
            }
            Some(_) => {}
        }
    }
    for n in now {
        if !before.iter().any(|b| b.name == n.name) {
            found.push(format!("[vendors.{}] was added", n.name));
        }
    }
    found
}

fn compare_names(before: &[String], now: &[String]) -> Vec<String> {
    let removed = before
        .iter()
        .filter(|b| !now.contains(b))
        .map(|b| format!("[vendors.{b}] was removed"));
    let added = now
        .iter()
        .filter(|n| !before.contains(n))
        .map(|n| format!("[vendors.{n}] was added"));
    removed.chain(added).collect()
}

/// `method=PATCH` → `method=PUT` reads as "`method` was PATCH, is now PUT".
fn settings_change(name: &str, before: &str, now: &str) -> String {
    match (before.split_once('='), now.split_once('=')) {
        (Some((k, b)), Some((k2, n))) if k == k2 => {
            format!("[vendors.{name}] `{k}` was {b}, is now {n}")
        }
        _ => format!("[vendors.{name}] settings were `{before}`, are now `{now}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (Config, Vec<Box<dyn Adapter>>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "secret\n").unwrap();
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(dir.path().join("t"), private).unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path, true).unwrap();
        let adapters = crate::vendors::build::adapters(&config).unwrap();
        (config, adapters)
    }

    const BASE: &str = "[vendors.gate]\nkind = \"securegate\"\nbase_url = \"https://a.example\"\n\
         api_key = { file = \"t\" }\n\
         [vendors.mn]\nkind = \"mighty_networks\"\nbase_url = \"https://m.example\"\n\
         token = { file = \"t\" }\n";

    fn changes_to(text: &str) -> Vec<String> {
        let (c0, a0) = config(BASE);
        let (c1, a1) = config(text);
        let names = vec!["gate".to_string(), "mn".to_string()];
        changes(&record(&c0, &a0), &names, &record(&c1, &a1))
    }

    #[test]
    fn connection_and_pacing_settings_do_not_count() {
        let text = BASE.replace("https://a.example", "https://b.example:8443/v1")
            + "[run]\nconcurrency = 3\nrequest_timeout = \"2s\"\nmax_attempts = 9\n";
        let text = text.replace(
            "kind = \"securegate\"",
            "kind = \"securegate\"\nrate_limit = \"5/s\"\nconcurrency = 2\nproxy = \"none\"",
        );
        assert_eq!(changes_to(&text), Vec::<String>::new());
    }

    #[test]
    fn what_a_row_becomes_is_named() {
        let text = BASE.replace(
            "token = { file = \"t\" }",
            "token = { file = \"t\" }\nmethod = \"PUT\"",
        );
        assert_eq!(
            changes_to(&text),
            ["[vendors.mn] `method` was PATCH, is now PUT"]
        );
        let text = BASE.replace("[vendors.gate]", "[vendors.gate2]");
        assert_eq!(
            changes_to(&text),
            ["[vendors.gate] was removed", "[vendors.gate2] was added"]
        );
        let text = BASE
            .replace("kind = \"securegate\"", "kind = \"ctrl_hub\"")
            .replace("api_key", "session_token");
        assert_eq!(
            changes_to(&text),
            ["[vendors.gate] kind was `securegate`, is now `ctrl_hub`"]
        );
    }

    #[test]
    fn an_earlier_releases_digest_still_resumes_an_unchanged_config() {
        let (c, a) = config(BASE);
        let names = vec!["gate".to_string(), "mn".to_string()];
        assert!(changes(&legacy(&c, &a), &names, &record(&c, &a)).is_empty());
        let (c1, a1) = config(&BASE.replace("https://a.example", "https://b.example"));
        let now = record(&c1, &a1);
        let found = changes(&legacy(&c, &a), &names, &now);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("earlier release"), "{found:?}");
        let found = changes(&legacy(&c, &a), &["gate".to_string()], &now);
        assert_eq!(found, ["[vendors.mn] was added"]);
    }
}
