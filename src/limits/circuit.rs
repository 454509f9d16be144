//! A vendor's circuit: stop sending to a vendor that keeps refusing our
//! credentials, cannot be reached, or is unavailable, instead of failing
//! every remaining row.
//!
//! Its rows stay pending, so that a resume after the credential is fixed (or
//! the vendor is back) carries on; the other vendors are not affected.
//!
//! Unavailable is told from busy by time, not by a count: a vendor that
//! sheds load answers some requests 503 and others for itself, while a
//! vendor that is down (or behind a gateway that cannot reach it) answers
//! only 502, 503 or 504. The circuit keeps the instant of the vendor's last
//! answer of its own; a row that has used all its attempts on such answers
//! asks whether any request got one since its first of them
//! ([`Circuit::unavailable_throughout`]). If none did, the whole retry
//! budget of a row went by without a sign of the vendor itself, and its
//! rows wait for a resume rather than fail one after another, each after
//! its own retries, against a vendor that is down. The vendor's last
//! [`UNAVAILABLE_TRIPS`] answers must be such answers too: the last row of a
//! run, alone in flight, may meet a busy vendor's 503s on all its attempts,
//! and that alone says nothing of the vendor. A vendor that answers only
//! 429 (its quota used up for the day, say) is told apart from one that
//! throttles yet serves some the same way, and stopped the same way.
//!
//! Answers that are not the vendor's API's (a web page at its address, a
//! redirect) are counted like refused credentials: three in a row stop it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// 401/403 in a row, with no success between, before the circuit opens.
pub const CREDENTIAL_TRIPS: u32 = 3;
/// Answers in a row that are not the vendor's API's (a success that is a
/// web page or plain text: see `vendors::answer::not_an_api_answer`; a
/// redirect, which is not followed), with no answer of its own between,
/// before it opens: a `base_url` that points at a web site or at an API
/// that has moved, or a proxy answering for the vendor, answers every row so.
pub const NOT_THE_API_TRIPS: u32 = 3;
/// Connection failures in a row, with no answer between, before it opens.
pub const UNREACHABLE_TRIPS: u32 = 20;
/// 502/503/504 answers in a row, with no other answer between, before a row
/// that used all its attempts on them may open it.
pub const UNAVAILABLE_TRIPS: u32 = 20;
/// The instant of the vendor's last answer of its own is kept to within
/// this many nanoseconds (a millisecond): written at most once per step
/// rather than on each of tens of thousands of answers a second.
const ANSWERED_STEP: u64 = 1_000_000;

/// What a round trip says to the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// The vendor answered for itself (any status but 401/403, 429 and 502/503/504).
    Answered,
    /// 401 or 403.
    Credentials,
    /// A success (2xx) whose body is not an answer of a JSON API, or a
    /// redirect.
    NotTheApi,
    /// 502, 503 or 504: unavailable, for now or for good; or 429: taking no
    /// more, for now (a quota used up).
    Unavailable,
    /// No answer: refused, reset, timed out.
    Unreachable,
}

#[derive(Debug)]
pub struct Circuit {
    open: AtomicBool,
    credentials: AtomicU32,
    not_the_api: AtomicU32,
    unreachable: AtomicU32,
    unavailable: AtomicU32,
    reason: Mutex<Option<String>>,
    /// Cancelled when the circuit opens: rows backing off stop waiting.
    opened: CancellationToken,
    /// What [`Circuit::answered_at`] counts from.
    epoch: Instant,
    /// The vendor's last answer of its own (anything but 502/503/504, 401
    /// and 403 included), in nanoseconds after `epoch`, plus one; 0 if none.
    answered_at: AtomicU64,
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            open: AtomicBool::new(false),
            credentials: AtomicU32::new(0),
            not_the_api: AtomicU32::new(0),
            unreachable: AtomicU32::new(0),
            unavailable: AtomicU32::new(0),
            reason: Mutex::new(None),
            opened: CancellationToken::new(),
            epoch: Instant::now(),
            answered_at: AtomicU64::new(0),
        }
    }
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
        self.opened.cancel();
        true
    }

    /// Resolves once the circuit is open.
    pub async fn opened(&self) {
        self.opened.cancelled().await
    }

    /// Counts a round trip that ended `at`; returns true when this one
    /// should open the circuit.
    pub fn record(&self, trip: Trip, at: Instant) -> bool {
        match trip {
            Trip::Answered => {
                self.answered(at);
                reset(&self.credentials);
                reset(&self.not_the_api);
                false
            }
            Trip::Credentials => {
                self.answered(at);
                self.credentials.fetch_add(1, Ordering::Relaxed) + 1 >= CREDENTIAL_TRIPS
            }
            Trip::NotTheApi => {
                // Something answered at the vendor's address, if not the
                // vendor: not unreachable, not unavailable.
                self.answered(at);
                self.not_the_api.fetch_add(1, Ordering::Relaxed) + 1 >= NOT_THE_API_TRIPS
            }
            Trip::Unavailable => {
                reset(&self.unreachable);
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                false
            }
            Trip::Unreachable => {
                self.unreachable.fetch_add(1, Ordering::Relaxed) + 1 >= UNREACHABLE_TRIPS
            }
        }
    }

    /// The vendor answered for itself.
    fn answered(&self, at: Instant) {
        reset(&self.unreachable);
        reset(&self.unavailable);
        let at = self.nanos(at) + 1;
        let known = self.answered_at.load(Ordering::Relaxed);
        if known == 0 || at >= known + ANSWERED_STEP {
            self.answered_at.fetch_max(at, Ordering::Relaxed);
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX / 2)
    }

    /// True if the vendor has not answered for itself at or after `since`
    /// (every answer from then on was 502, 503, 504 or 429), and its last
    /// [`UNAVAILABLE_TRIPS`] answers were all such; see the module docs.
    pub fn unavailable_throughout(&self, since: Instant) -> bool {
        let known = self.answered_at.load(Ordering::Relaxed);
        // The last answer may have come up to a step after the one known.
        let silent = known == 0 || known + ANSWERED_STEP <= self.nanos(since) + 1;
        silent && self.unavailable.load(Ordering::Relaxed) >= UNAVAILABLE_TRIPS
    }
}

/// Zeroes a counter, writing only if it is not zero already: every answer
/// resets the counters, and a write makes the other worker threads fetch
/// the line again.
fn reset(counter: &AtomicU32) {
    if counter.load(Ordering::Relaxed) != 0 {
        counter.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn opens_after_repeated_refusals_only() {
        let c = Circuit::default();
        let record = |trip| c.record(trip, Instant::now());
        assert!(!record(Trip::Credentials));
        assert!(!record(Trip::Credentials));
        assert!(!record(Trip::Answered));
        assert!(!record(Trip::Credentials));
        assert!(!record(Trip::Credentials));
        assert!(!record(Trip::Unavailable), "no success between");
        assert!(record(Trip::Credentials));
        assert!(c.open("credentials refused".into()));
        assert!(!c.open("again".into()));
        assert!(c.is_open());
        assert_eq!(c.reason().as_deref(), Some("credentials refused"));
        let c = Circuit::default();
        let now = Instant::now();
        assert!(!(0..UNREACHABLE_TRIPS - 1).any(|_| c.record(Trip::Unreachable, now)));
        assert!(!c.record(Trip::Unavailable, now), "an answer, though a 503");
        assert!(!(0..UNREACHABLE_TRIPS - 1).any(|_| c.record(Trip::Unreachable, now)));
        assert!(c.record(Trip::Unreachable, now));

        let c = Circuit::default();
        let record = |trip| c.record(trip, Instant::now());
        assert!(!record(Trip::NotTheApi));
        assert!(!record(Trip::NotTheApi));
        assert!(!record(Trip::Answered), "an answer of its own between");
        assert!(!record(Trip::NotTheApi));
        assert!(!record(Trip::Credentials), "counted apart");
        assert!(!record(Trip::NotTheApi));
        assert!(record(Trip::NotTheApi));
    }

    #[test]
    fn unavailable_means_no_answer_of_its_own_since() {
        let c = Circuit::default();
        let t = |ms| c.epoch + Duration::from_millis(ms);
        let unavailable = |n: u32, at| (0..n).for_each(|_| _ = c.record(Trip::Unavailable, at));
        unavailable(UNAVAILABLE_TRIPS, t(1));
        assert!(c.unavailable_throughout(t(0)), "never answered for itself");
        c.record(Trip::Answered, t(10));
        unavailable(UNAVAILABLE_TRIPS, t(12));
        assert!(
            !c.unavailable_throughout(t(10)),
            "an answer at that very instant"
        );
        assert!(!c.unavailable_throughout(t(5)));
        assert!(c.unavailable_throughout(t(11)));
        // Connection failures are no sign of the vendor itself either.
        c.record(Trip::Unreachable, t(30));
        assert!(c.unavailable_throughout(t(11)));
        // A refused credential is the vendor's own answer; answers that end
        // out of order keep the latest.
        c.record(Trip::Credentials, t(40));
        c.record(Trip::Answered, t(35));
        unavailable(UNAVAILABLE_TRIPS, t(45));
        assert!(!c.unavailable_throughout(t(40)));
        assert!(c.unavailable_throughout(t(41)));
    }

    #[test]
    fn an_answer_between_two_recorded_ones_is_never_missed() {
        let c = Circuit::default();
        let t = |us| c.epoch + Duration::from_micros(us);
        (0..UNAVAILABLE_TRIPS).for_each(|_| _ = c.record(Trip::Unavailable, t(1)));
        c.record(Trip::Answered, t(10_000));
        // Within a step of the last one kept: not written, yet allowed for.
        c.record(Trip::Answered, t(10_500));
        (0..UNAVAILABLE_TRIPS).for_each(|_| _ = c.record(Trip::Unavailable, t(10_600)));
        assert!(!c.unavailable_throughout(t(10_400)));
        assert!(
            !c.unavailable_throughout(t(10_900)),
            "a step's doubt counts as an answer"
        );
        assert!(c.unavailable_throughout(t(11_000)));
    }

    #[test]
    fn a_few_unavailable_answers_are_not_an_outage() {
        // The last row of a run, alone in flight, meeting a busy vendor's
        // 503s on all its attempts: too few to tell busy from down.
        let c = Circuit::default();
        let t = |ms| c.epoch + Duration::from_millis(ms);
        c.record(Trip::Answered, t(1));
        (0..UNAVAILABLE_TRIPS - 1)
            .for_each(|i| _ = c.record(Trip::Unavailable, t(2 + u64::from(i))));
        assert!(!c.unavailable_throughout(t(2)));
        c.record(Trip::Unavailable, t(100));
        assert!(c.unavailable_throughout(t(2)));
        c.record(Trip::Answered, t(101));
        c.record(Trip::Unavailable, t(102));
        assert!(!c.unavailable_throughout(t(102)), "the count starts again");
    }
}
