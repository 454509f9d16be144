//! The nightly file and what the sandbox should receive from it: invite `i`
//! at version `v` as a row of one of the vendors, the whole desired state as
//! a file, a few invites changed, and the sandbox's counts to compare with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use invitesync::sandbox::{FaultSettings, Faults, Kind};

use crate::common::{HEADER, ORG, World, column, read_csv};

pub(crate) const ROWS: usize = 2000;
pub(crate) const GATE: [&str; 4] = ["pending", "sent", "accepted", "rejected"];
pub(crate) const HUB: [&str; 2] = ["accepted", "rejected"];
pub(crate) const ROLES: [&str; 3] = ["ORG_MEMBER", "ORG_OWNER;ORG_MEMBER", "ORG_READ_ONLY"];

/// Invite `i` at version `v`, as an input row (its `note` is `r{i}`), and
/// the invite's key in the sandbox's statistics. Every vendor takes a share;
/// any two versions of one invite differ in what is sent.
pub(crate) fn row(i: usize, v: u32) -> (String, String) {
    let v = v as usize;
    match i % 4 {
        0 => (
            format!(
                "mighty,acme,{},u{i}@example.com,First{v},Last,,,,r{i}",
                100_000 + i
            ),
            format!("mighty_networks/acme/{}", 100_000 + i),
        ),
        1 => (
            format!("gate,ev1,inv{i},,,,,{},,r{i}", GATE[v % 4]),
            format!("securegate/ev1/inv{i}"),
        ),
        2 => (
            format!("om,{ORG},,u{i}@example.com,,,,,{},r{i}", ROLES[v % 3]),
            format!("ops_manager/{ORG}/u{i}@example.com"),
        ),
        _ => (
            format!("hub,,uuid-{i},,,,,{},,r{i}", HUB[v % 2]),
            format!("ctrl_hub/uuid-{i}"),
        ),
    }
}

pub(crate) fn key(i: usize) -> String {
    row(i, 0).1
}

/// The whole desired state: one row per invite, at its version.
pub(crate) fn file(versions: &[u32]) -> String {
    let mut text = String::from(HEADER) + "\n";
    for (i, v) in versions.iter().enumerate() {
        text.push_str(&row(i, *v).0);
        text.push('\n');
    }
    text
}

/// Bumps the version of `count` distinct invites picked by `seed`; returns them.
pub(crate) fn change(versions: &mut [u32], count: usize, seed: u64) -> BTreeSet<usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut picked = BTreeSet::new();
    while picked.len() < count {
        picked.insert(rng.usize(..versions.len()));
    }
    for &i in &picked {
        versions[i] += 1;
    }
    picked
}

/// Updates the sandbox applied per invite since its statistics were reset.
pub(crate) fn updates(world: &World) -> BTreeMap<String, u64> {
    world
        .sandbox
        .stats()
        .invites
        .into_iter()
        .filter(|(_, s)| s.updates > 0)
        .map(|(k, s)| (k, s.updates))
        .collect()
}

/// Each of `rows` applied exactly once, and nothing else.
pub(crate) fn once_each(rows: impl IntoIterator<Item = usize>) -> BTreeMap<String, u64> {
    rows.into_iter().map(|i| (key(i), 1)).collect()
}

/// Requests that reached any vendor since the statistics were reset, not
/// counting digest challenges (a 401 that only hands out a nonce).
pub(crate) fn requests(world: &World) -> u64 {
    let stats = world.sandbox.vendor_stats();
    Kind::ALL
        .iter()
        .map(|k| {
            let v = stats.vendor(*k);
            v.requests - v.status(401)
        })
        .sum()
}

pub(crate) fn outcomes(path: &Path) -> Vec<String> {
    column(&read_csv(path), "outcome")
}

pub(crate) fn count(list: &[String], outcome: &str) -> usize {
    list.iter().filter(|o| o.as_str() == outcome).count()
}

pub(crate) fn set_faults(world: &World, global: Faults, vendors: &[(Kind, Faults)]) {
    world
        .sandbox
        .set_faults(FaultSettings {
            global,
            vendors: vendors.iter().cloned().collect(),
        })
        .expect("faults");
}

pub(crate) fn latency(ms: u64) -> Faults {
    Faults {
        latency_ms: Some(ms),
        ..Faults::default()
    }
}

/// What the vendors should hold: the last value each invite was given.
pub(crate) struct Model {
    pub(crate) applied: HashMap<usize, u32>,
}

impl Model {
    /// The rows a run of `versions` should send, vendors in `down` excepted;
    /// records them as applied.
    pub(crate) fn send(&mut self, versions: &[u32], down: Option<usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for (i, v) in versions.iter().enumerate() {
            if Some(i % 4) == down {
                continue;
            }
            if self.applied.get(&i) != Some(v) {
                self.applied.insert(i, *v);
                out.insert(i);
            }
        }
        out
    }
}

pub(crate) fn gate_refuses(world: &World) {
    set_faults(
        world,
        Faults::default(),
        &[(
            Kind::Securegate,
            Faults {
                reject_auth: Some(true),
                ..Faults::default()
            },
        )],
    );
}
