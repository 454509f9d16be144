//! `samples/` against the sandbox: each row of the sample input, planned and
//! built by its vendor's adapter and sent once in file order (no runner: no
//! retries, no ledger), gets the answer `samples/expected.csv` implies: a
//! 2xx for `updated`, a 404 for `rejected`, no request for `invalid`; and
//! the invites the sample changes twice get both changes, in file order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::testkit::*;
use super::*;
use crate::client::{Client, DigestAuth};
use crate::config::Config;
use crate::digest::DigestSession;
use crate::input::Reader;
use crate::plan::Router;

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn read_csv(name: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(sample(name)).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The sample config (its secrets included), pointed at `base`.
fn sample_config(base: &str) -> Config {
    let path = sample("sandbox.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("http://127.0.0.1:8787", base);
    Config::parse(&text, &path, true).unwrap()
}

#[tokio::test]
async fn samples_apply_as_documented() {
    let options = SandboxOptions {
        seed: Some(sample("seed.csv")),
        ..SandboxOptions::ephemeral()
    };
    let t = Kit::with(options).await;
    let config = sample_config(&t.sandbox.base_url());
    let adapters = crate::vendors::build::adapters(&config).unwrap();
    let router = Router::of(&config, &adapters);
    let digests: Vec<Option<DigestAuth>> = adapters
        .iter()
        .map(|a| {
            a.digest_credentials()
                .map(|(u, p)| DigestAuth::new(DigestSession::new(u.clone(), p.clone())))
        })
        .collect();
    let client = Client::new(&config, 4).unwrap();

    let expected = read_csv("expected.csv");
    let reader = Reader::open(&sample("invites.csv")).unwrap();
    let header = reader.header().clone();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut rows = 0;
    for (row, want) in reader.zip(&expected) {
        rows += 1;
        let outcome = want["outcome"].as_str();
        *counts.entry(outcome.to_string()).or_default() += 1;
        let change = match router.plan(&header, &row) {
            Ok(change) => change,
            Err(p) => {
                assert_eq!(outcome, "invalid", "line {}: {p:?}", want["line"]);
                continue;
            }
        };
        assert_ne!(outcome, "invalid", "line {}: planned", want["line"]);
        let vendor = usize::from(change.vendor);
        let request = adapters[vendor].request(&change);
        let answer = client
            .send(change.vendor, request, digests[vendor].as_ref())
            .await
            .unwrap();
        let want_status = if outcome == "updated" { 200 } else { 404 };
        assert_eq!(
            answer.status,
            want_status,
            "line {}: {}",
            want["line"],
            String::from_utf8_lossy(&answer.body)
        );
    }
    assert!(rows >= 1000);
    assert_eq!(rows, expected.len());
    assert_eq!(counts["invalid"], 10);
    assert_eq!(counts["rejected"], 4);

    let s = t.sandbox.stats();
    let updates: u64 = s.vendors.values().map(|v| v.updates).sum();
    assert_eq!(updates as usize, counts["updated"]);
    let statuses = |key: &str| -> Vec<Value> {
        s.invite(key)
            .unwrap()
            .applied
            .iter()
            .map(|a| serde_json::to_value(&a.value).unwrap())
            .collect()
    };
    assert_eq!(
        statuses("securegate/evt-partner-day/inv-twice-1"),
        [json!({"status": "sent"}), json!({"status": "accepted"})]
    );
    assert_eq!(
        statuses("ops_manager/60af924b1c2d3e4f5a6b7c8d/twice.roles@example.com"),
        [
            json!({"roles": ["ORG_MEMBER"]}),
            json!({"roles": ["ORG_OWNER", "ORG_MEMBER"]})
        ]
    );
    assert_eq!(statuses("mighty_networks/acme/424242").len(), 2);
    let twice = s.invites.values().filter(|i| i.updates == 2).count();
    assert_eq!(twice, 3);
    assert!(s.invites.values().all(|i| i.updates <= 2));
    t.stop().await;
}

/// The sample config's secret files hold what the sandbox expects by default,
/// for every account's kind.
#[test]
fn sample_config_reads_the_sample_secrets() {
    let config = Config::load(Path::new(&sample("sandbox.toml")), true).unwrap();
    assert!(!config.vendors.is_empty());
    for (vendor, mut settings) in config.vendors {
        assert_eq!(vendor.base_url.as_str(), "http://127.0.0.1:8787/");
        let kind = Kind::parse(&vendor.kind).expect("a kind of the list");
        for c in kind.vendor().credentials {
            assert_eq!(
                settings.secret(c.key).unwrap().expose(),
                c.default,
                "{}.{}",
                vendor.name,
                c.key
            );
        }
        settings.finish().unwrap();
    }
}
