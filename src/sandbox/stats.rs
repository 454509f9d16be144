//! What arrived: counters per vendor and, per invite, the updates applied in
//! arrival order, so a test can prove "nothing lost, nothing applied twice,
//! nothing reordered".
//!
//! Vendor counters are atomics (every request touches them); per-invite
//! records live beside the invite in its store shard (see `store.rs`), so
//! recording costs no extra lock. The global sequence number is taken while
//! the invite's shard is locked, so for one invite, sequence order is the
//! order in which updates were applied.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::Kind;

/// Status codes are counted in a flat array; anything outside is folded into 599.
const STATUS_SLOTS: usize = 600;

pub(crate) struct Stats {
    seq: AtomicU64,
    vendors: [VendorCounters; 4],
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
    pub(crate) fn new() -> Self {
        Stats {
            seq: AtomicU64::new(0),
            vendors: [(); 4].map(|_| VendorCounters::new()),
        }
    }

    pub(crate) fn received(&self, kind: Kind) {
        self.vendors[kind.index()]
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn answered(&self, kind: Kind, status: u16) {
        let slot = usize::from(status).min(STATUS_SLOTS - 1);
        self.vendors[kind.index()].statuses[slot].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reset_connection(&self, kind: Kind) {
        self.vendors[kind.index()]
            .resets
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an applied update and returns its global sequence number (from 1).
    pub(crate) fn applied(&self, kind: Kind) -> u64 {
        self.vendors[kind.index()]
            .updates
            .fetch_add(1, Ordering::Relaxed);
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

    pub(crate) fn vendors(&self) -> BTreeMap<Kind, VendorStats> {
        Kind::ALL
            .iter()
            .map(|&kind| {
                let v = &self.vendors[kind.index()];
                let statuses = v
                    .statuses
                    .iter()
                    .enumerate()
                    .filter_map(|(code, n)| {
                        let n = n.load(Ordering::Relaxed);
                        (n > 0).then_some((code as u16, n))
                    })
                    .collect();
                let stats = VendorStats {
                    requests: v.requests.load(Ordering::Relaxed),
                    updates: v.updates.load(Ordering::Relaxed),
                    resets: v.resets.load(Ordering::Relaxed),
                    in_flight: 0,
                    statuses,
                };
                (kind, stats)
            })
            .collect()
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

/// `GET /_sandbox/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Per vendor kind (`mighty_networks`, `securegate`, `ops_manager`, `ctrl_hub`).
    pub vendors: BTreeMap<Kind, VendorStats>,
    /// Per invite that received at least one request since the last reset,
    /// keyed `kind/scope/invite_id` (Ops Manager: `ops_manager/org_id/username`
    /// lower-cased; Ctrl-Hub: `ctrl_hub/id`). Empty when per-invite statistics
    /// are off or `?invites=false` was asked.
    pub invites: BTreeMap<String, InviteStats>,
    /// The highest sequence number handed out so far.
    pub last_seq: u64,
}

impl StatsSnapshot {
    pub fn vendor(&self, kind: Kind) -> VendorStats {
        self.vendors.get(&kind).cloned().unwrap_or_default()
    }

    pub fn invite(&self, key: &str) -> Option<&InviteStats> {
        self.invites.get(key)
    }

    /// All applied updates, across invites, in global arrival order.
    pub fn applied_in_order(&self) -> Vec<(&str, &Applied)> {
        let mut all: Vec<(&str, &Applied)> = self
            .invites
            .iter()
            .flat_map(|(k, s)| s.applied.iter().map(move |a| (k.as_str(), a)))
            .collect();
        all.sort_by_key(|(_, a)| a.seq);
        all
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

/// What an update set, by vendor: Securegate and Ctrl-Hub a status, Ops
/// Manager the roles, Mighty Networks the body's fields as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AppliedValue {
    Mighty {
        recipient_email: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient_first_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient_last_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<u64>,
    },
    Roles {
        roles: Vec<String>,
    },
    Status {
        status: String,
    },
}

/// The compact form kept in memory: statuses and roles are static strings,
/// Mighty's fields are boxed so the common case stays two words.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Status(&'static str),
    Roles(Box<[&'static str]>),
    Mighty(Box<MightyRecord>),
}

#[derive(Debug, Clone)]
pub(crate) struct MightyRecord {
    pub(crate) email: Box<str>,
    pub(crate) first_name: Option<Box<str>>,
    pub(crate) last_name: Option<Box<str>>,
    pub(crate) user_id: Option<u64>,
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
            Record::Mighty(m) => AppliedValue::Mighty {
                recipient_email: m.email.to_string(),
                recipient_first_name: m.first_name.as_deref().map(str::to_string),
                recipient_last_name: m.last_name.as_deref().map(str::to_string),
                user_id: m.user_id,
            },
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
    fn snapshot_json_shape_round_trips() {
        let mut s = StatsSnapshot::default();
        s.vendors.insert(
            Kind::Securegate,
            VendorStats {
                requests: 3,
                updates: 2,
                resets: 0,
                in_flight: 0,
                statuses: [(200, 2), (404, 1)].into_iter().collect(),
            },
        );
        let rec = InviteRecord {
            requests: 2,
            applied: vec![
                (1, Record::Status("sent")),
                (4, Record::Roles(vec!["ORG_OWNER"].into())),
            ],
        };
        s.invites.insert("securegate/ev/inv".into(), rec.snapshot());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["vendors"]["securegate"]["statuses"]["404"], 1);
        assert_eq!(
            json["invites"]["securegate/ev/inv"]["applied"][0],
            serde_json::json!({"seq": 1, "status": "sent"})
        );
        assert_eq!(
            json["invites"]["securegate/ev/inv"]["applied"][1],
            serde_json::json!({"seq": 4, "roles": ["ORG_OWNER"]})
        );
        let back: StatsSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
