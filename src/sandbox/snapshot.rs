//! `GET /_sandbox/stats`: what every vendor kind received.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sim::stats::{Applied, InviteStats, VendorStats};
use crate::vendors::Kind;

/// `GET /_sandbox/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Per vendor kind, in the list's order.
    pub vendors: BTreeMap<Kind, VendorStats>,
    /// Per invite that received at least one request since the last reset,
    /// keyed `kind/...` by each kind's own invite key (e.g.
    /// `securegate/event_id/invite_id`). Empty when per-invite statistics are
    /// off or `?invites=false` was asked.
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
        let invite: InviteStats = serde_json::from_value(serde_json::json!({
            "requests": 2, "updates": 1, "applied": [{"seq": 1, "status": "sent"}]
        }))
        .unwrap();
        s.invites.insert("securegate/ev/inv".into(), invite);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["vendors"]["securegate"]["statuses"]["404"], 1);
        assert_eq!(
            json["invites"]["securegate/ev/inv"]["applied"][0],
            serde_json::json!({"seq": 1, "status": "sent"})
        );
        let back: StatsSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
