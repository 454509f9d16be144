//! Every kind in the list is whole: the config parser takes it, its adapter
//! builds from its credential keys, and the sandbox serves it: a request
//! built by the adapter from the kind's example row, with the credentials
//! the sandbox expects by default, is applied (a 2xx, not a 404) and
//! counted under the kind.

use std::path::Path;

use super::testkit::*;
use super::*;
use crate::change::Change;
use crate::client::{Client, DigestAuth};
use crate::config::Config;
use crate::digest::DigestSession;
use crate::input::Reader;

/// A config with one account, `v`, of `kind` on `base`, its secrets in files
/// in `dir` holding the sandbox's defaults.
fn config(kind: Kind, base: &str, dir: &Path) -> Config {
    let vendor = kind.vendor();
    let mut text = format!(
        "[vendors.v]\nkind = \"{}\"\nbase_url = \"{base}\"\n",
        vendor.name
    );
    for c in vendor.credentials {
        std::fs::write(dir.join(c.flag), c.default).unwrap();
        text.push_str(&format!("{} = {{ file = \"{}\" }}\n", c.key, c.flag));
    }
    Config::parse(&text, &dir.join("invitesync.toml"), true)
        .unwrap_or_else(|e| panic!("{}: {e}", vendor.name))
}

/// The kind's example row as an input file of one row.
fn example(kind: Kind, dir: &Path) -> Reader {
    let example = kind.vendor().example;
    let columns: Vec<&str> = example.iter().map(|(c, _)| *c).collect();
    let values: Vec<&str> = example.iter().map(|(_, v)| *v).collect();
    let path = dir.join(format!("{kind}.csv"));
    let text = format!("vendor,{}\nv,{}\n", columns.join(","), values.join(","));
    std::fs::write(&path, text).unwrap();
    Reader::open(&path).unwrap()
}

#[tokio::test]
async fn every_kind_is_parsed_built_and_served() {
    let t = Kit::open().await;
    let dir = tempfile::tempdir().unwrap();
    for kind in Kind::ALL {
        let name = kind.as_str();
        let config = config(kind, &t.sandbox.base_url(), dir.path());
        let adapters =
            crate::vendors::build::adapters(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let adapter = &adapters[0];
        let client = Client::new(&config, 1).unwrap();
        let mut reader = example(kind, dir.path());
        let header = reader.header().clone();
        let row = reader.next().expect("the example row");
        let fields = crate::input::Fields::from_record(&header, &row.record).unwrap();
        let planned = adapter
            .plan(&fields)
            .unwrap_or_else(|e| panic!("{name}: its example is invalid: {e:?}"));
        let change = Change::new(0, "v", planned);
        let digest = adapter
            .digest_credentials()
            .map(|(u, p)| DigestAuth::new(DigestSession::new(u.clone(), p.clone())));
        let answer = client
            .send(0, adapter.request(&change), digest.as_ref())
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, 200, "{name}: {body}");
        assert_eq!(
            adapter.read(answer.status, &answer.body).error,
            None,
            "{name}"
        );
        let stats = t.sandbox.vendor_stats();
        assert_eq!(stats.vendor(kind).updates, 1, "{name}: counted as itself");
        let updates: u64 = stats.vendors.values().map(|v| v.updates).sum();
        assert_eq!(updates, 1, "{name}: and as nothing else");
        t.sandbox.reset_stats();
    }
    t.stop().await;
}
