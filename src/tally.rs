//! Live counts of the run, shared by the pipeline (which counts) and the
//! progress display, log lines and summary (which read).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::change::VendorId;
use crate::outcome::Outcome;

#[derive(Debug, Default)]
pub struct VendorTally {
    outcomes: [AtomicU64; 5],
    /// Rows waiting out a backoff before their next attempt.
    pub retrying: AtomicU64,
    /// Attempts made (first sends and retries).
    pub attempts: AtomicU64,
    /// Rows left pending because the vendor was stopped or the run interrupted.
    pub pending: AtomicU64,
    /// Attempts after a row's first one.
    pub retries: AtomicU64,
    /// Attempts by how they ended, in [`ANSWER_CLASSES`] order.
    answers: [AtomicU64; 5],
}

/// How an attempt ended: the vendor's answer by HTTP status class, or no
/// answer at all (`error`: a timeout, a refused or broken connection).
pub const ANSWER_CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

impl VendorTally {
    pub fn count(&self, o: Outcome) -> u64 {
        self.outcomes[o.index()].load(Ordering::Relaxed)
    }

    pub fn finished(&self) -> u64 {
        self.outcomes
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// Counts an attempt's end: `Some(status)` answered, `None` no answer.
    pub fn answered(&self, status: Option<u16>) {
        let class = match status.map(|s| s / 100) {
            Some(2) => 0,
            Some(3) => 1,
            Some(4) => 2,
            Some(5) => 3,
            _ => 4,
        };
        self.answers[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts by how they ended, in [`ANSWER_CLASSES`] order.
    pub fn answers(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.answers[i].load(Ordering::Relaxed))
    }
}

/// Per vendor account, plus one bucket for rows that name no known vendor.
#[derive(Debug)]
pub struct Tally {
    vendors: Vec<VendorTally>,
    unrouted: VendorTally,
    /// Rows read from the input so far (including skipped ones).
    pub read: AtomicU64,
    /// Rows skipped because an earlier attempt of this run finished them.
    pub already_done: AtomicU64,
    /// Rows skipped because they belong to another shard.
    pub elsewhere: AtomicU64,
}

impl Tally {
    pub fn new(vendors: usize) -> Self {
        Tally {
            vendors: (0..vendors).map(|_| VendorTally::default()).collect(),
            unrouted: VendorTally::default(),
            read: AtomicU64::new(0),
            already_done: AtomicU64::new(0),
            elsewhere: AtomicU64::new(0),
        }
    }

    pub fn vendor(&self, v: Option<VendorId>) -> &VendorTally {
        v.and_then(|v| self.vendors.get(usize::from(v)))
            .unwrap_or(&self.unrouted)
    }

    pub fn vendors(&self) -> &[VendorTally] {
        &self.vendors
    }

    pub fn unrouted(&self) -> &VendorTally {
        &self.unrouted
    }

    pub fn add(&self, v: Option<VendorId>, o: Outcome) {
        self.vendor(v).outcomes[o.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn total(&self, o: Outcome) -> u64 {
        self.vendors
            .iter()
            .chain(std::iter::once(&self.unrouted))
            .map(|t| t.count(o))
            .sum()
    }

    pub fn finished(&self) -> u64 {
        Outcome::ALL.iter().map(|o| self.total(*o)).sum()
    }
}
