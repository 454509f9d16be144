//! How a row ended, and the record of it that the state file keeps.

use crate::change::{Fingerprint, VendorId};

/// Every input row ends with exactly one of these (README, "Outcomes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The vendor accepted the change (2xx).
    Updated,
    /// The ledger says this exact change was applied already; not sent.
    Unchanged,
    /// The row breaks a rule of the input or of the vendor's documents; not sent.
    Invalid,
    /// The vendor refused it for good (a 4xx other than 408 and 429).
    Rejected,
    /// Retries ran out, or the vendor could not be reached.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Invalid,
        Outcome::Rejected,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Invalid => "invalid",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the row needs no attention (exit code 0 if all rows are so).
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Updated | Outcome::Unchanged)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// A person must look at a row that ended so: it is in the rows to fix.
    pub fn needs_attention(self) -> bool {
        matches!(self, Outcome::Invalid | Outcome::Rejected | Outcome::Failed)
    }

    /// Whether counts by outcome (indexed by [`Outcome::index`]) hold a row
    /// that needs attention.
    pub fn any_need_attention(counts: &[u64; 5]) -> bool {
        Outcome::ALL
            .iter()
            .any(|o| o.needs_attention() && counts[o.index()] > 0)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the state file records for a finished row. Holds nothing secret: no
/// request body, no header, only what the vendor said and what we decided.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRecord {
    /// The row's 0-based data index in the input (its identity within a run).
    pub index: u64,
    pub line: u64,
    /// The vendor account, when the row got as far as naming a known one.
    pub vendor: Option<VendorId>,
    /// The invite key's text and hash, for valid rows.
    pub key: Option<(String, u64)>,
    pub fingerprint: Option<Fingerprint>,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<String>,
    pub remote_id: Option<String>,
    pub remote_updated_at: Option<String>,
    /// Unix time in milliseconds.
    pub finished_at: i64,
}

/// Milliseconds since the Unix epoch, for `finished_at` and ledger ages.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC with seconds, e.g. `2026-11-23T03:08:43Z`, for the results file.
pub fn format_millis(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("pending"), None);
        assert_eq!(format_millis(0), "1970-01-01T00:00:00Z");
    }
}
