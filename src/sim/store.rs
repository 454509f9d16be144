//! Invites in memory, one table per vendor.
//!
//! A table is split into shards, each behind its own short-held mutex, so
//! concurrent requests for different invites rarely meet on a lock. The
//! invite's statistics live in the same slot, so an update and its record
//! are one lookup under one lock.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use super::gate::Gate;
use super::seed::SeedRow;
use super::stats::{InviteRecord, InviteStats, Record};

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

    /// The key and invite a seed row of this kind describes.
    fn seed(row: &SeedRow, now: u64) -> Result<(String, Self), String>
    where
        Self: Sized;
}

/// A vendor's table as the sandbox drives it, whatever the invites in it:
/// every simulation answers seeding and statistics through its table.
pub trait Invites: Send + Sync {
    /// Adds the invite a seed row describes.
    fn seed(&self, row: &SeedRow, now: u64) -> Result<(), String>;
    /// Adds the per-invite records to `out`, keyed `KIND/...`.
    fn snapshot_into(&self, out: &mut BTreeMap<String, InviteStats>);
    /// Forgets the per-invite records (the invites stay).
    fn reset_stats(&self);
}

impl<V: Invite> Invites for Table<V> {
    fn seed(&self, row: &SeedRow, now: u64) -> Result<(), String> {
        let (key, invite) = V::seed(row, now)?;
        self.insert(key, invite);
        Ok(())
    }

    fn snapshot_into(&self, out: &mut BTreeMap<String, InviteStats>) {
        Table::snapshot_into(self, out);
    }

    fn reset_stats(&self) {
        Table::reset_stats(self);
    }
}

struct Slot<V> {
    invite: V,
    record: InviteRecord,
}

type Shard<V> = Mutex<HashMap<Box<str>, Slot<V>>>;

pub(crate) struct Table<V> {
    /// The kind's name, the first part of every key in the statistics.
    name: &'static str,
    gate: Gate,
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
    pub(crate) fn new(name: &'static str, gate: Gate, mode: Mode, recording: bool) -> Self {
        Table {
            name,
            gate,
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
        key: &str,
        now: u64,
        apply: impl FnOnce(&mut V) -> (R, Option<Record>),
    ) -> Option<R> {
        if self.mode == Mode::Stateless {
            let mut invite = V::fresh(key, now);
            let (reply, _) = apply(&mut invite);
            self.gate.stats().applied(self.gate.kind());
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
        let seq = self.gate.stats().applied(self.gate.kind());
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
                    out.insert(format!("{}/{key}", self.name), slot.record.snapshot());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::gate::Front;

    #[derive(Debug, PartialEq)]
    struct Dummy(u32);
    impl Invite for Dummy {
        fn fresh(_key: &str, _now: u64) -> Self {
            Dummy(0)
        }

        fn seed(row: &SeedRow, _now: u64) -> Result<(String, Self), String> {
            Ok((row.invite_id.clone(), Dummy(1)))
        }
    }

    #[test]
    fn modes_decide_what_exists() {
        let front = Front::new(1);
        let table = |mode| Table::<Dummy>::new("k", Gate::new(0, front.clone()), mode, true);
        let seeded = table(Mode::Seeded);
        seeded.insert("a".into(), Dummy(1));
        assert_eq!(seeded.update("b", 0, |d| (d.0, None)), None);
        assert_eq!(
            seeded.update("a", 0, |d| {
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
        assert_eq!(out["k/a"].requests, 2);
        assert_eq!(out["k/a"].applied[0].seq, 1);

        let lazy = table(Mode::OnDemand);
        assert_eq!(lazy.update("x", 0, |d| (d.0, None)), Some(0));
        assert_eq!(lazy.len(), 1);

        let none = table(Mode::Stateless);
        assert_eq!(none.update("x", 0, |d| (d.0, None)), Some(0));
        assert_eq!(none.len(), 0);
        assert!(!none.recording());
        assert_eq!(front.stats.vendor(0).updates, 3);
    }
}
