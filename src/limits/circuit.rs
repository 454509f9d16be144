//! A vendor's circuit: stop sending to a vendor that keeps refusing our
//! credentials or cannot be reached, instead of failing every remaining row.
//!
//! Its rows stay pending, so that a resume after the credential is fixed (or
//! the vendor is back) carries on; the other vendors are not affected.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// 401/403 in a row, with no success between, before the circuit opens.
pub const CREDENTIAL_TRIPS: u32 = 3;
/// Connection failures in a row, with no answer between, before it opens.
pub const UNREACHABLE_TRIPS: u32 = 20;

/// What a round trip says to the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// The vendor answered (any status but 401/403).
    Answered,
    /// 401 or 403.
    Credentials,
    /// No answer: refused, reset, timed out.
    Unreachable,
}

#[derive(Debug, Default)]
pub struct Circuit {
    open: AtomicBool,
    credentials: AtomicU32,
    unreachable: AtomicU32,
    reason: Mutex<Option<String>>,
}

impl Circuit {
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Why it opened, for the summary and the exit message.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Opens the circuit with a reason; returns true for the call that opened it.
    pub fn open(&self, reason: String) -> bool {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if self.open.swap(true, Ordering::AcqRel) {
            return false;
        }
        *r = Some(reason);
        true
    }

    /// Counts a round trip; returns true when this one should open the circuit.
    pub fn record(&self, trip: Trip) -> bool {
        match trip {
            Trip::Answered => {
                self.credentials.store(0, Ordering::Relaxed);
                self.unreachable.store(0, Ordering::Relaxed);
                false
            }
            Trip::Credentials => {
                self.unreachable.store(0, Ordering::Relaxed);
                self.credentials.fetch_add(1, Ordering::Relaxed) + 1 >= CREDENTIAL_TRIPS
            }
            Trip::Unreachable => {
                self.unreachable.fetch_add(1, Ordering::Relaxed) + 1 >= UNREACHABLE_TRIPS
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_refusals_only() {
        let c = Circuit::default();
        assert!(!c.record(Trip::Credentials));
        assert!(!c.record(Trip::Credentials));
        assert!(!c.record(Trip::Answered));
        assert!(!c.record(Trip::Credentials));
        assert!(!c.record(Trip::Credentials));
        assert!(c.record(Trip::Credentials));
        assert!(c.open("credentials refused".into()));
        assert!(!c.open("again".into()));
        assert!(c.is_open());
        assert_eq!(c.reason().as_deref(), Some("credentials refused"));
        let c = Circuit::default();
        assert!(!(0..UNREACHABLE_TRIPS - 1).any(|_| c.record(Trip::Unreachable)));
        assert!(c.record(Trip::Unreachable));
    }
}
