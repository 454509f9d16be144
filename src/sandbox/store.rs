//! Invites in memory, one table per vendor, and the seed file that fills them.
//!
//! A table is split into shards, each behind its own short-held mutex, so
//! concurrent requests for different invites rarely meet on a lock. The
//! invite's statistics live in the same slot, so an update and its record
//! are one lookup under one lock.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::io::Read;
use std::sync::{Mutex, MutexGuard};

use serde::Deserialize;

use super::Kind;
use super::stats::{InviteRecord, InviteStats, Record, Stats};

const SHARDS: usize = 64;

/// Where invites come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only the seeded invites exist; others are 404.
    Seeded,
    /// Every well-formed invite exists, created on first use and kept.
    OnDemand,
    /// Every well-formed invite exists and nothing is kept: each request
    /// sees a fresh invite. For benchmarks of millions of rows.
    Stateless,
}

/// A vendor's stored invite.
pub(crate) trait Invite: Send + 'static {
    /// The invite a well-formed key names when no seed says otherwise.
    fn fresh(key: &str, now: u64) -> Self;
}

struct Slot<V> {
    invite: V,
    record: InviteRecord,
}

type Shard<V> = Mutex<HashMap<Box<str>, Slot<V>>>;

pub(crate) struct Table<V> {
    kind: Kind,
    mode: Mode,
    recording: bool,
    hasher: std::hash::RandomState,
    shards: Box<[Shard<V>]>,
}

/// A poisoned shard only means a handler panicked mid-update; the map itself
/// is still sound, so keep serving rather than fail every later request.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<V: Invite> Table<V> {
    pub(crate) fn new(kind: Kind, mode: Mode, recording: bool) -> Self {
        Table {
            kind,
            mode,
            recording: recording && mode != Mode::Stateless,
            hasher: std::hash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Whether per-invite records are kept (so a vendor can skip building one).
    pub(crate) fn recording(&self) -> bool {
        self.recording
    }

    fn shard(&self, key: &str) -> &Shard<V> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) % SHARDS]
    }

    /// Adds or replaces an invite (seeding).
    pub(crate) fn insert(&self, key: String, invite: V) {
        let slot = Slot {
            invite,
            record: InviteRecord::default(),
        };
        lock(self.shard(&key)).insert(key.into_boxed_str(), slot);
    }

    /// Applies an update to the invite `key` names and counts it. `apply`
    /// returns the answer and, when recording, what it set. `None` when the
    /// invite does not exist (a seeded table that lacks it).
    pub(crate) fn update<R>(
        &self,
        stats: &Stats,
        key: &str,
        now: u64,
        apply: impl FnOnce(&mut V) -> (R, Option<Record>),
    ) -> Option<R> {
        if self.mode == Mode::Stateless {
            let mut invite = V::fresh(key, now);
            let (reply, _) = apply(&mut invite);
            stats.applied(self.kind);
            return Some(reply);
        }
        let mut shard = lock(self.shard(key));
        let slot = match shard.get_mut(key) {
            Some(slot) => slot,
            None if self.mode == Mode::OnDemand => {
                let slot = Slot {
                    invite: V::fresh(key, now),
                    record: InviteRecord::default(),
                };
                shard.entry(key.into()).or_insert(slot)
            }
            None => return None,
        };
        let (reply, record) = apply(&mut slot.invite);
        // Taken under the shard lock: for one invite, sequence order is the
        // order of application.
        let seq = stats.applied(self.kind);
        if self.recording {
            slot.record.requests = slot.record.requests.saturating_add(1);
            if let Some(r) = record {
                slot.record.applied.push((seq, r));
            }
        }
        Some(reply)
    }

    /// Counts a request that named an existing invite but was refused
    /// (credentials, validation).
    pub(crate) fn count(&self, key: &str) {
        if !self.recording {
            return;
        }
        if let Some(slot) = lock(self.shard(key)).get_mut(key) {
            slot.record.requests = slot.record.requests.saturating_add(1);
        }
    }

    pub(crate) fn snapshot_into(&self, out: &mut BTreeMap<String, InviteStats>) {
        if !self.recording {
            return;
        }
        for shard in self.shards.iter() {
            for (key, slot) in lock(shard).iter() {
                if slot.record.requests > 0 || !slot.record.applied.is_empty() {
                    out.insert(
                        format!("{}/{key}", self.kind.as_str()),
                        slot.record.snapshot(),
                    );
                }
            }
        }
    }

    pub(crate) fn reset_stats(&self) {
        for shard in self.shards.iter() {
            for slot in lock(shard).values_mut() {
                slot.record = InviteRecord::default();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// One line of a seed file. Columns are matched by name, case-insensitively;
/// missing columns read as empty.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct SeedRow {
    pub(crate) kind: String,
    pub(crate) scope: String,
    pub(crate) invite_id: String,
    pub(crate) email: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) status: String,
    pub(crate) roles: String,
}

/// A broken seed, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads a seed CSV, calling `add` for each row with its kind. Stops at the
/// first bad row: a seed is test data, and a silently skipped invite would
/// turn into a confusing 404 later.
pub(crate) fn read_seed(
    input: impl Read,
    mut add: impl FnMut(Kind, &SeedRow) -> Result<(), String>,
) -> Result<u64, SeedError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| SeedError {
            line: 1,
            message: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect::<csv::StringRecord>();
    if !header.iter().any(|h| h == "kind") {
        return Err(SeedError {
            line: 1,
            message: "the header has no `kind` column (expected kind,scope,invite_id,email,first_name,last_name,status,roles)"
                .into(),
        });
    }
    let mut rows = 0;
    for result in reader.records() {
        let record = result.map_err(|e| SeedError {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row: SeedRow = record.deserialize(Some(&header)).map_err(|e| SeedError {
            line,
            message: e.to_string(),
        })?;
        rows += 1;
        let Some(kind) = Kind::parse(&row.kind) else {
            return Err(SeedError {
                line,
                message: format!(
                    "unknown kind `{}`; one of mighty_networks, securegate, ops_manager, ctrl_hub",
                    row.kind
                ),
            });
        };
        add(kind, &row).map_err(|message| SeedError { line, message })?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Dummy(u32);
    impl Invite for Dummy {
        fn fresh(_key: &str, _now: u64) -> Self {
            Dummy(0)
        }
    }

    #[test]
    fn modes_decide_what_exists() {
        let stats = Stats::new();
        let seeded: Table<Dummy> = Table::new(Kind::Securegate, Mode::Seeded, true);
        seeded.insert("a".into(), Dummy(1));
        assert_eq!(seeded.update(&stats, "b", 0, |d| (d.0, None)), None);
        assert_eq!(
            seeded.update(&stats, "a", 0, |d| {
                d.0 += 1;
                (d.0, Some(Record::Status("sent")))
            }),
            Some(2)
        );
        seeded.count("a");
        seeded.count("b");
        let mut out = BTreeMap::new();
        seeded.snapshot_into(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out["securegate/a"].requests, 2);
        assert_eq!(out["securegate/a"].applied[0].seq, 1);

        let lazy: Table<Dummy> = Table::new(Kind::CtrlHub, Mode::OnDemand, true);
        assert_eq!(lazy.update(&stats, "x", 0, |d| (d.0, None)), Some(0));
        assert_eq!(lazy.len(), 1);

        let none: Table<Dummy> = Table::new(Kind::CtrlHub, Mode::Stateless, true);
        assert_eq!(none.update(&stats, "x", 0, |d| (d.0, None)), Some(0));
        assert_eq!(none.len(), 0);
        assert!(!none.recording());
    }

    #[test]
    fn seeds_report_their_line() {
        let text = "Kind,scope,invite_id,status\nsecuregate,e,i,sent\nnope,e,i,sent\n";
        let mut seen = Vec::new();
        let err = read_seed(text.as_bytes(), |k, r| {
            seen.push((k, r.status.clone()));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(seen, vec![(Kind::Securegate, "sent".to_string())]);
        assert_eq!(err.line, 3);
        assert!(read_seed("a,b\n1,2\n".as_bytes(), |_, _| Ok(())).is_err());
    }
}
