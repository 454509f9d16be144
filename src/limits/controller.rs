//! The rules that size a vendor's concurrency limit: pure, given the time,
//! so they are tested against a simulated vendor without a clock.
//!
//! A vendor has a capacity knee: up to some number of requests in flight its
//! round trips stay at their quiet value; past it, every extra request only
//! waits in the vendor's queue, so throughput stays flat while round trips
//! (for us and for every other client of the vendor) grow. The controller
//! aims just past the knee, the way TCP Vegas sizes a congestion window:
//!
//! - **Queue estimate.** Once per round trip (a *window*), the window's
//!   typical round trip (`low`) is compared with the quiet round trip
//!   (`base`). `queued = in_flight × (low − base − tolerance) / low` is how
//!   many of our requests are waiting rather than being served. For a
//!   vendor whose round trips are steady at low load, `low` is the window's
//!   mean (of its fastest nine tenths): by Little's law it grows with every
//!   request that waits, even when the vendor's workers answer in waves and
//!   some requests still find one free at once; the tolerance then also
//!   covers what chance alone does to two means. For a vendor whose round
//!   trips jitter, `low` is the window's 10th percentile, which jitter does
//!   not move (and which a queue moves once nearly every request waits).
//! - **Rules.** Fewer than `alpha` queued: grow (doubling per window during
//!   slow start, then by one). More than `beta`: shrink straight to the
//!   estimated knee (`in_flight × base / low`) plus `alpha`, at most halving
//!   at a time, so a large overshoot is undone in one or two round trips
//!   rather than by a tenth per window. In between: hold. `alpha` and `beta`
//!   grow with the logarithm of the limit, as in Netflix's Vegas limiter.
//! - **An honest baseline.** `base` is the lowest window value seen, never
//!   a running average, so a standing queue cannot drag it upwards. A vendor can
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

/// Whether a vendor's round trips are steady is judged once, from the first
/// `EARLY_SAMPLES` answered while the limit was at most `EARLY_LIMIT` (the
/// first round trips of slow start), leaving out the first window, whose
/// requests also opened the connections. The answers that come first are
/// those that found a free worker, so a vendor already past its knee is
/// judged by its quiet round trips too. They are steady when their spread,
/// (p90 − p10) / p50, is at most `STEADY_SPREAD`. A steady vendor's queue
/// is read from a window's mean (see [`Stats`]); one whose round trips
/// jitter more than that, from a window's low (its 10th percentile), which
/// jitter cannot move.
const EARLY_LIMIT: usize = 16;
const EARLY_SAMPLES: usize = 8;
const STEADY_SPREAD: f64 = 0.2;
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
    /// The same for the windows' means, with the standard error of the
    /// window that set it: see `EARLY_LIMIT`.
    base_mean: Option<(Duration, Duration)>,
    /// Round trips answered while the limit was still low, and what their
    /// spread says: see `EARLY_LIMIT`.
    early: Vec<Duration>,
    steady: bool,
    judged: bool,
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
            base_mean: None,
            early: Vec::new(),
            steady: false,
            judged: false,
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
        // The first window is left out: its requests also opened the
        // connections. Judged once, before queueing can blur the picture.
        if self.srtt.is_some() && !self.judged && self.limit <= EARLY_LIMIT {
            self.early.extend(self.window.rtts.iter().copied());
            if self.early.len() >= EARLY_SAMPLES {
                self.steady = Stats::of(&mut self.early).spread <= STEADY_SPREAD;
                self.judged = true;
                self.early = Vec::new();
            }
        }
        let stats = Stats::of(&mut self.window.rtts);
        let steady = self.steady;
        let low = if steady { stats.mean } else { stats.p10 };
        self.srtt = Some(match self.srtt {
            None => mean,
            Some(s) => s.mul_f64(0.75) + mean.mul_f64(0.25),
        });
        let in_flight = self.window.peak_in_flight.min(self.limit).max(1);
        let saturated = self.window.peak_in_flight >= self.limit;

        if let Some(restore) = self.probing.take() {
            // The round trip at half the limit is the quiet one now.
            self.base = Some(stats.p10);
            self.base_mean = Some((stats.mean, stats.noise));
            self.base_seen = now;
            self.set(restore, now);
            return;
        }
        if self.base.is_none_or(|b| stats.p10 < b) {
            self.base = Some(stats.p10);
        }
        if self.base_mean.is_none_or(|(b, _)| stats.mean < b) {
            self.base_mean = Some((stats.mean, stats.noise));
        }
        let (base, base_noise) = match (steady, self.base, self.base_mean) {
            (true, _, Some(m)) => m,
            (_, Some(b), _) => (b, Duration::ZERO),
            _ => (low, Duration::ZERO),
        };
        // Chance alone moves a quiet window's mean by up to about three
        // standard errors of the quiet window that set `base`; only more
        // than that is a queue. (Not this window's own error: a queue is
        // what spreads it, into the answered-at-once and the waiting.)
        let chance = if steady {
            base_noise.mul_f64(3.0)
        } else {
            Duration::ZERO
        };
        let tolerance = TOLERANCE_MIN.max(base.mul_f64(TOLERANCE_SHARE)).max(chance);
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

/// What one window's round trips say.
///
/// Its mean (of the fastest nine tenths, so that one outlier does not read
/// as a queue) grows, by Little's law, with every request that waits in the
/// vendor's queue, even when the vendor's workers answer in waves and some
/// requests still find one free at once; its 10th percentile then stays at
/// the quiet value while most requests wait a whole extra round. The mean
/// moves with jitter, though, which the 10th percentile does not.
struct Stats {
    p10: Duration,
    mean: Duration,
    /// The mean's standard error: how far chance alone moves it.
    noise: Duration,
    /// (p90 − p10) / p50.
    spread: f64,
}

impl Stats {
    fn of(rtts: &mut [Duration]) -> Stats {
        rtts.sort_unstable();
        let n = rtts.len();
        if n == 0 {
            return Stats {
                p10: Duration::ZERO,
                mean: Duration::ZERO,
                noise: Duration::ZERO,
                spread: f64::INFINITY,
            };
        }
        let at = |q: f64| rtts[((n - 1) as f64 * q) as usize];
        let kept: Vec<f64> = rtts[..n - n / 10]
            .iter()
            .map(Duration::as_secs_f64)
            .collect();
        let k = kept.len().max(1) as f64;
        let mean = kept.iter().sum::<f64>() / k;
        let var = kept.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / k;
        let p50 = at(0.5).as_secs_f64().max(f64::MIN_POSITIVE);
        Stats {
            p10: rtts[n / 10],
            mean: Duration::from_secs_f64(mean),
            noise: Duration::from_secs_f64((var / k).sqrt()),
            spread: (at(0.9).as_secs_f64() - at(0.1).as_secs_f64()) / p50,
        }
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
