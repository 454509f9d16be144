//! The rules that size a vendor's concurrency limit: pure, given the time,
//! so they are tested against a simulated vendor without a clock.
//!
//! A vendor has a capacity knee: up to some number of requests in flight its
//! round trips stay at their quiet value; past it, every extra request only
//! waits in the vendor's queue, so throughput stays flat while round trips
//! (for us and for every other client of the vendor) grow. The controller
//! aims just past the knee, the way TCP Vegas sizes a congestion window:
//!
//! - **Queue estimate.** Once per round trip (a *window*), the window's low
//!   round trip (its 10th percentile: robust to one fast outlier, and, unlike
//!   the mean, not moved by jitter) is compared with the quiet round trip
//!   (`base`). `queued = in_flight × (low − base − tolerance) / low` is how
//!   many of our requests are waiting rather than being served.
//! - **Rules.** Fewer than `alpha` queued: grow (doubling per window during
//!   slow start, then by one). More than `beta`: shrink straight to the
//!   estimated knee (`in_flight × base / low`) plus `alpha`, at most halving
//!   at a time, so a large overshoot is undone in one or two round trips
//!   rather than by a tenth per window. In between: hold. `alpha` and `beta`
//!   grow with the logarithm of the limit, as in Netflix's Vegas limiter.
//! - **An honest baseline.** `base` is the lowest window low seen, never an
//!   average, so a standing queue cannot drag it upwards. A vendor can
//!   become slower for good, though; when no window has come near `base`
//!   for a while, the limit is halved for one round trip (BBR's ProbeRTT) to
//!   drain our share of the queue and measure the quiet round trip again.
//! - **One decision per round trip.** A window counts only answers to
//!   requests sent after the last change of the limit: answers to older
//!   requests describe the old limit and would make it shrink twice.
//! - **Back-pressure.** A 429, a 503 or a timeout shrinks the limit by a
//!   tenth at once and ends slow start.
//!
//! Jitter without a knee leaves the window's low at `base`, so it never
//! drives the limit down; the margin (`tolerance`) keeps scheduling noise on
//! a fast vendor from reading as a queue.

use std::time::{Duration, Instant};

use super::Signal;

/// The limit a new vendor starts at.
pub const INITIAL: usize = 8;
/// Decrease factor on back-pressure.
const BACKOFF: f64 = 0.9;
/// Window lows within `base + tolerance` count as quiet: at least this much...
const TOLERANCE_MIN: Duration = Duration::from_millis(1);
/// ...or this share of `base`, whichever is larger.
const TOLERANCE_SHARE: f64 = 0.05;
/// Re-measure `base` when no window came near it for this long...
const PROBE_AFTER_MIN: Duration = Duration::from_secs(5);
/// ...or for this many quiet round trips, whichever is longer.
const PROBE_AFTER_TRIPS: u32 = 100;

/// One vendor's limit and what it has learnt.
#[derive(Debug)]
pub struct Controller {
    cap: usize,
    limit: usize,
    adaptive: bool,
    slow_start: bool,
    /// The quiet round trip: the lowest window low seen (or re-measured).
    base: Option<Duration>,
    /// When a window's low last came within tolerance of `base`.
    base_seen: Instant,
    /// A smoothed round trip: how long a window lasts.
    srtt: Option<Duration>,
    /// Answers to requests sent before this do not describe the current limit.
    changed_at: Instant,
    window: Window,
    /// During a re-measurement of `base`: the limit to go back to.
    probing: Option<usize>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    /// Round trips of this window's answers, reused from window to window.
    rtts: Vec<Duration>,
    peak_in_flight: usize,
}

impl Controller {
    pub fn new(cap: usize, adaptive: bool, now: Instant) -> Controller {
        let cap = cap.max(1);
        Controller {
            cap,
            limit: if adaptive { INITIAL.min(cap) } else { cap },
            adaptive,
            slow_start: true,
            base: None,
            base_seen: now,
            srtt: None,
            changed_at: now,
            window: Window {
                start: now,
                rtts: Vec::with_capacity(INITIAL),
                peak_in_flight: 0,
            },
            probing: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The quiet round trip learnt so far.
    #[cfg(test)]
    pub fn base(&self) -> Option<Duration> {
        self.base
    }

    /// A request left; `in_flight` counts it.
    pub fn on_start(&mut self, in_flight: usize) {
        self.window.peak_in_flight = self.window.peak_in_flight.max(in_flight);
    }

    /// An answer to a request sent at `started` arrived at `now`.
    pub fn on_answer(&mut self, started: Instant, now: Instant, signal: Signal) {
        if !self.adaptive || started < self.changed_at {
            return;
        }
        match signal {
            Signal::Ignore => return,
            Signal::Backpressure => {
                self.slow_start = false;
                if let Some(restore) = self.probing.take() {
                    self.limit = restore;
                }
                let shrunk = ((self.limit as f64 * BACKOFF).floor() as usize).max(1);
                self.set(shrunk, now);
                return;
            }
            Signal::Ok => self
                .window
                .rtts
                .push(now.saturating_duration_since(started)),
        }
        // A window lasts a round trip and holds answers to about half the
        // requests one limit's worth sends, so its low is not one sample's.
        let length = self.srtt.unwrap_or(Duration::ZERO);
        let enough = (self.limit / 2).clamp(1, 32);
        if self.window.rtts.len() >= enough
            && now.saturating_duration_since(self.window.start) >= length
        {
            self.end_window(now);
        }
    }

    fn end_window(&mut self, now: Instant) {
        let n = self.window.rtts.len();
        if n == 0 {
            return;
        }
        let mean = self.window.rtts.iter().sum::<Duration>() / n as u32;
        let low = *self.window.rtts.select_nth_unstable(n / 10).1;
        self.srtt = Some(match self.srtt {
            None => mean,
            Some(s) => s.mul_f64(0.75) + mean.mul_f64(0.25),
        });
        let in_flight = self.window.peak_in_flight.min(self.limit).max(1);
        let saturated = self.window.peak_in_flight >= self.limit;

        if let Some(restore) = self.probing.take() {
            // The round trip at half the limit is the quiet one now.
            self.base = Some(low);
            self.base_seen = now;
            self.set(restore, now);
            return;
        }
        let base = match self.base {
            Some(b) if b <= low => b,
            _ => {
                self.base = Some(low);
                low
            }
        };
        let tolerance = TOLERANCE_MIN.max(base.mul_f64(TOLERANCE_SHARE));
        let waiting = low.saturating_sub(base + tolerance);
        if waiting.is_zero() {
            self.base_seen = now;
        }
        let queued = in_flight as f64 * waiting.as_secs_f64() / low.as_secs_f64();
        let alpha = (2.0 * (self.limit as f64).log10()).max(2.0);
        let beta = 2.0 * alpha;

        let probe_after = PROBE_AFTER_MIN.max(base * PROBE_AFTER_TRIPS);
        let next = if queued > beta {
            self.slow_start = false;
            let knee = in_flight as f64 * base.as_secs_f64() / low.as_secs_f64();
            let target = (knee + alpha).ceil() as usize;
            target.max(self.limit / 2).min(self.limit - 1).max(1)
        } else if queued >= alpha {
            self.slow_start = false;
            self.limit
        } else if saturated && self.slow_start {
            self.limit * 2
        } else if saturated {
            self.limit + 1
        } else {
            self.limit
        };
        if next == self.limit
            && !self.slow_start
            && now.saturating_duration_since(self.base_seen) >= probe_after
        {
            self.probing = Some(self.limit);
            let half = (self.limit / 2).max(1);
            self.set(half, now);
            return;
        }
        self.set(next, now);
    }

    /// Applies a new limit (capped) and starts a new window; a change also
    /// makes answers to requests sent before it stale.
    fn set(&mut self, limit: usize, now: Instant) {
        let limit = limit.clamp(1, self.cap);
        if limit != self.limit {
            self.changed_at = now;
        }
        self.limit = limit;
        self.window.start = now;
        self.window.rtts.clear();
        self.window.peak_in_flight = 0;
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
