//! What arrived: counters per vendor and, per invite, the updates applied in
//! arrival order, so a test can prove "nothing lost, nothing applied twice,
//! nothing reordered".
//!
//! Vendor counters are atomics (every request touches them); per-invite
//! records live beside the invite in its store shard (see `store.rs`), so
//! recording costs no extra lock. The global sequence number is taken while
//! the invite's shard is locked, so for one invite, sequence order is the
//! order in which updates were applied.
//!
//! A vendor kind is its index in the sandbox's list of kinds: the counters
//! know nothing of which vendor is which.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Status codes are counted in a flat array; anything outside is folded into 599.
const STATUS_SLOTS: usize = 600;

pub(crate) struct Stats {
    seq: AtomicU64,
    vendors: Box<[VendorCounters]>,
}

struct VendorCounters {
    requests: AtomicU64,
    updates: AtomicU64,
    resets: AtomicU64,
    statuses: Box<[AtomicU64]>,
}

impl VendorCounters {
    fn new() -> Self {
        VendorCounters {
            requests: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            statuses: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Stats {
    /// Counters for `kinds` vendor kinds, numbered from 0.
    pub(crate) fn new(kinds: usize) -> Self {
        Stats {
            seq: AtomicU64::new(0),
            vendors: (0..kinds).map(|_| VendorCounters::new()).collect(),
        }
    }

    pub(crate) fn received(&self, kind: usize) {
        self.vendors[kind].requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn answered(&self, kind: usize, status: u16) {
        let slot = usize::from(status).min(STATUS_SLOTS - 1);
        self.vendors[kind].statuses[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reset_connection(&self, kind: usize) {
        self.vendors[kind].resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an applied update and returns its global sequence number (from 1).
    pub(crate) fn applied(&self, kind: usize) -> u64 {
        self.vendors[kind].updates.fetch_add(1, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn reset(&self) {
        self.seq.store(0, Ordering::Relaxed);
        for v in &self.vendors {
            v.requests.store(0, Ordering::Relaxed);
            v.updates.store(0, Ordering::Relaxed);
            v.resets.store(0, Ordering::Relaxed);
            for s in v.statuses.iter() {
                s.store(0, Ordering::Relaxed);
            }
        }
    }

    /// One vendor kind's counters (`in_flight` is the fault board's to fill).
    pub(crate) fn vendor(&self, kind: usize) -> VendorStats {
        let v = &self.vendors[kind];
        let statuses = v
            .statuses
            .iter()
            .enumerate()
            .filter_map(|(code, n)| {
                let n = n.load(Ordering::Relaxed);
                (n > 0).then_some((code as u16, n))
            })
            .collect();
        VendorStats {
            requests: v.requests.load(Ordering::Relaxed),
            updates: v.updates.load(Ordering::Relaxed),
            resets: v.resets.load(Ordering::Relaxed),
            in_flight: 0,
            statuses,
        }
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorStats {
    /// Requests that reached the vendor's routes, faults included.
    pub requests: u64,
    /// Updates applied (2xx answers that changed an invite).
    pub updates: u64,
    /// Connections reset instead of answered (injected faults).
    pub resets: u64,
    /// Requests being handled at the moment of the snapshot (sleeping in
    /// injected latency or hangs included): the concurrency a client reached.
    pub in_flight: u64,
    /// Answers by HTTP status, e.g. `{"200": 950, "429": 12}`.
    pub statuses: BTreeMap<u16, u64>,
}

impl VendorStats {
    pub fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteStats {
    /// Requests for this invite that got past the injected faults and named
    /// it (answered 2xx, or refused by the vendor's checks).
    pub requests: u64,
    pub updates: u64,
    /// The updates applied, in arrival order.
    pub applied: Vec<Applied>,
}

/// One applied update: its global arrival sequence number and what it set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub seq: u64,
    #[serde(flatten)]
    pub value: AppliedValue,
}

/// What an update set: a status, roles, or the fields of the body as sent
/// (only those the body had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AppliedValue {
    Roles { roles: Vec<String> },
    Status { status: String },
    Fields(serde_json::Map<String, serde_json::Value>),
}

/// The compact form kept in memory: statuses and roles are static strings,
/// other fields are boxed so the common case stays two words.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Status(&'static str),
    Roles(Box<[&'static str]>),
    Fields(Box<[(&'static str, Field)]>),
}

/// One field of a [`Record::Fields`].
#[derive(Debug, Clone)]
pub(crate) enum Field {
    Text(Box<str>),
    Number(u64),
}

impl Record {
    pub(crate) fn to_value(&self) -> AppliedValue {
        match self {
            Record::Status(s) => AppliedValue::Status {
                status: s.to_string(),
            },
            Record::Roles(r) => AppliedValue::Roles {
                roles: r.iter().map(|s| s.to_string()).collect(),
            },
            Record::Fields(fields) => AppliedValue::Fields(
                fields
                    .iter()
                    .map(|(name, value)| {
                        let value = match value {
                            Field::Text(t) => serde_json::Value::from(t.as_ref()),
                            Field::Number(n) => serde_json::Value::from(*n),
                        };
                        (name.to_string(), value)
                    })
                    .collect(),
            ),
        }
    }
}

/// The per-invite record kept in the store.
#[derive(Debug, Default)]
pub(crate) struct InviteRecord {
    pub(crate) requests: u32,
    pub(crate) applied: Vec<(u64, Record)>,
}

impl InviteRecord {
    pub(crate) fn snapshot(&self) -> InviteStats {
        InviteStats {
            requests: u64::from(self.requests),
            updates: self.applied.len() as u64,
            applied: self
                .applied
                .iter()
                .map(|(seq, r)| Applied {
                    seq: *seq,
                    value: r.to_value(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialize_flat_and_round_trip() {
        let rec = InviteRecord {
            requests: 2,
            applied: vec![
                (1, Record::Status("sent")),
                (4, Record::Roles(vec!["ORG_OWNER"].into())),
                (
                    7,
                    Record::Fields(
                        vec![
                            ("recipient_email", Field::Text("a@b.co".into())),
                            ("user_id", Field::Number(5)),
                        ]
                        .into(),
                    ),
                ),
            ],
        };
        let stats = rec.snapshot();
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json["applied"][0],
            serde_json::json!({"seq": 1, "status": "sent"})
        );
        assert_eq!(
            json["applied"][1],
            serde_json::json!({"seq": 4, "roles": ["ORG_OWNER"]})
        );
        assert_eq!(
            json["applied"][2],
            serde_json::json!({"seq": 7, "recipient_email": "a@b.co", "user_id": 5})
        );
        let back: InviteStats = serde_json::from_value(json).unwrap();
        assert_eq!(back, stats);
    }

    #[test]
    fn counters_are_per_kind() {
        let s = Stats::new(2);
        s.received(1);
        s.answered(1, 204);
        s.answered(1, 9999);
        assert_eq!(s.applied(1), 1);
        assert_eq!(s.vendor(0), VendorStats::default());
        let v = s.vendor(1);
        assert_eq!(
            (v.requests, v.updates, v.status(204), v.status(599)),
            (1, 1, 1, 1)
        );
        s.reset();
        assert_eq!(s.vendor(1), VendorStats::default());
        assert_eq!(s.last_seq(), 0);
    }
}
