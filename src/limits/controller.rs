//! The rules that size a vendor's concurrency limit: pure, given the time,
//! so they are tested against a simulated vendor without a clock.
//!
//! A vendor has a capacity knee: up to some number of requests in flight its
//! round trips stay at their quiet value; past it, every extra request only
//! waits in the vendor's queue, so throughput stays flat while round trips
//! (for us and for every other client of the vendor) grow. The controller
//! aims just past the knee, the way TCP Vegas sizes a congestion window:
//!
//! - **Queue estimate.** Once per round trip (a *window*: a round trip's
//!   worth of answers from the first one that describes the current limit;
//!   during slow start, for a steady vendor, those of the round trip after
//!   the limit changed),
//!   the window's typical round trip (`low`) is compared with the quiet
//!   round trip (`base`). `queued = in_flight × (low − base − tolerance) /
//!   low` is how many of our requests are waiting rather than being served.
//!   For a vendor whose round trips are steady at low load, `low` is the
//!   window's mean (of its fastest nine tenths): by Little's law it grows
//!   with every request that waits, even when the vendor's workers answer in
//!   waves and some requests still find one free at once; the tolerance then
//!   also covers what chance alone does to two means. For a vendor whose
//!   round trips jitter, `low` is the window's 10th percentile (of two
//!   limits' worth of answers, 16 to 64), which jitter does not move (and
//!   which a queue moves once nearly every request waits).
//! - **Rules.** Fewer than `alpha` queued: grow (doubling per window during
//!   slow start; then by `alpha`, or by an eighth while no request waits at
//!   all). More than `beta = 2 × alpha`: shrink straight to the estimated
//!   knee (`in_flight × base / low`) plus `alpha`, at most halving at a
//!   time, so a large overshoot is undone in one or two round trips rather
//!   than by a tenth per window. In between: hold. `alpha` grows with the
//!   logarithm of the limit, as in Netflix's Vegas limiter, but is at most
//!   15 % of the estimated knee (and at least half a request, or for a
//!   steady vendor a quarter of the knee if that is less: at a knee of one,
//!   a band of half a request to one holds 2 in flight): two requests
//!   waiting is little for a vendor that serves a hundred at once, and half
//!   again the load of one that serves four. A steady vendor's band
//!   narrower than one request may hold no whole limit; after a drop there,
//!   growth stops one short of the limit that showed the queue (`ceiling`).
//! - **Starting low.** A new vendor starts at 4 in flight. The first window
//!   also opened the connections and is left out; the second, still at 4,
//!   judges whether the vendor is steady or jittery and
//!   measures `base` below the knee of all but the smallest vendors (one
//!   that looks jittery is judged again at 2: see `EARLY_SAMPLES`).
//! - **An honest baseline.** `base` is the lowest window value seen, never
//!   a running average, so a standing queue cannot drag it upwards. A vendor can
//!   become slower for good, though; when no window has come near `base`
//!   for a while, the limit is halved for one round trip (BBR's ProbeRTT) to
//!   drain our share of the queue and measure the quiet round trip again.
//! - **One decision per round trip.** A window counts only answers to
//!   requests sent after the last change of the limit, with no more in
//!   flight than it allows: answers to older requests describe the old limit
//!   and would make it shrink twice.
//! - **Back-pressure.** A 429 shrinks the limit by a tenth at once and ends
//!   slow start, and growth then stops one short of the limit it came at
//!   for a while (`TOO_MANY_HOLD_*`). A window whose answers are a tenth
//!   503s or timeouts (two at least; a whole limit's worth of them does not
//!   wait for the window's end) shrinks it by a tenth too: a flaky vendor's
//!   few random 503s, whatever the load, once cut the limit nearly every
//!   round trip, and 5 % of them kept a knee of 24 at a quarter of its
//!   capacity. A refused slot is reused
//!   only a round trip later (see `adaptive.rs`), so a vendor shedding load
//!   does not see refused requests spin within a round trip.
//!
//! A steady judgement is checked again by answers to requests sent alone
//! (`check_steady_alone`): a jittery vendor that passed for steady by
//! chance would otherwise be held at one request.
//!
//! Jitter without a knee leaves the window's low at `base`, so it never
//! drives the limit down; the margin (`tolerance`, of which chance may make
//! at most a tenth of `base`) keeps scheduling noise on a fast vendor from
//! reading as a queue.
//!
//! A jittery vendor's low is a 10th percentile, itself a noisy estimate, and
//! `base` is the lowest of hundreds of them, well under a typical one; with
//! round trips from 10 to 90 ms that alone once read as a queue and sank
//! the limit to a few requests. So its tolerance takes in three standard
//! errors of each of the two percentiles (`JITTER_CHANCE_MAX`), a shrink
//! needs two windows over `beta` in a row, and it takes away only the queue
//! seen (`in_flight − queued`): `base / low` of 10th percentiles says
//! nothing of how many requests the vendor serves at once.

use std::time::{Duration, Instant};

use super::Signal;

/// Whether a vendor's round trips are steady is judged once, from the
/// second window, which stays at the starting limit until it holds
/// `EARLY_SAMPLES` answers. (The first window is left out: its requests also
/// opened the connections.) Those are answered before any growth, so a
/// vendor whose knee is at or above the starting limit is judged by its
/// quiet round trips, not by a queue's waves. They are steady when their
/// spread, (p90 − p10) / p50, is at most `STEADY_SPREAD`. A steady vendor's
/// queue is read from a window's mean (see [`Stats`]); one whose round trips
/// jitter more than that, from a window's low (its 10th percentile), which
/// jitter cannot move. A pool of workers smaller than the starting limit
/// answers in waves there (three workers at 4 in flight: 20, 20, 20 and
/// 40 ms), which looks like jitter and would hide its queue from the 10th
/// percentile. So a second window that looks jittery is judged again by a
/// third at half the limit, of half as many answers (two round trips at
/// 2): the vendor is steady if that one is, and its slowest answers are
/// quicker by `WAVES` or more (the queue is gone: 20 ms where they were
/// 40). Jitter does not get quicker at a lower limit; then the climb goes
/// on from the starting limit, two round trips later.
const EARLY_SAMPLES: usize = 8;
const STEADY_SPREAD: f64 = 0.2;
/// How many answers to requests sent alone check a steady judgement again
/// (see `Controller::check_steady_alone`): twice the second window's.
const SOLO_SAMPLES: usize = 2 * EARLY_SAMPLES;
const WAVES: f64 = 1.5;
/// The fewest and the most answers a window of a vendor whose round trips
/// jitter needs: two limits' worth between them, so that its 10th
/// percentile is not a handful of answers' (its standard error shrinks with
/// the square root of their number), yet a window at a small limit ends
/// within a few round trips.
const JITTERY_SAMPLES: usize = 16;
const JITTERY_SAMPLES_MAX: usize = 64;
/// The limit a new vendor starts at: low enough that a vendor whose knee
/// is small has its quiet round trip measured below the knee from the start.
pub const INITIAL: usize = 4;
/// Decrease factor on back-pressure.
const BACKOFF: f64 = 0.9;
/// A window whose answers are this share 503s (or timeouts), two at least,
/// ends in a decrease.
const REFUSED_SHARE: f64 = 0.10;
/// Window lows within `base + tolerance` count as quiet: at least this much...
const TOLERANCE_MIN: Duration = Duration::from_millis(1);
/// ...or this share of `base`, whichever is larger.
const TOLERANCE_SHARE: f64 = 0.05;
/// What chance may add to the tolerance is at most this share of `base`: a
/// quiet window of few answers (the one that re-measures `base` at half the
/// limit) can have a large standard error, which would otherwise hide a
/// queue of that size until the next re-measurement.
const CHANCE_SHARE_MAX: f64 = 0.10;
/// A jittery vendor's window low is the 10th percentile of a few dozen
/// round trips, itself a noisy estimate, and `base` is the lowest of many:
/// chance alone puts a window's low three of its standard errors above
/// `base` now and then. What that adds to the tolerance is at most this
/// share of the window's median round trip, so that a queue the size of a
/// quarter of it is still seen. (The quiet window's median, which a queue
/// does not inflate, held more in flight against a jittery knee in the
/// simulation, and let jitter without a knee read as a queue.)
const JITTER_CHANCE_MAX: f64 = 0.25;
/// The queue held (`alpha`) is at most this share of the estimated knee, and
/// never below `ALPHA_MIN` requests: two requests waiting is little for a
/// vendor that serves a hundred at once, but half again the load of one that
/// serves four.
const ALPHA_KNEE_SHARE: f64 = 0.15;
const ALPHA_MIN: f64 = 0.5;
/// ...or a quarter of the estimated knee, when that is less: at a knee of
/// one worker, half a request is half the load again, and the band it
/// leaves (half a request to one) holds 2 in flight, where one request
/// always waits a whole service behind the other.
const ALPHA_MIN_KNEE_SHARE: f64 = 0.25;
/// Re-measure `base` when no window came near it for this long...
const PROBE_AFTER_MIN: Duration = Duration::from_secs(5);
/// After a 429, growth stops short of the limit it came at for this many
/// quiet round trips, a second at least (see `back_off`): long enough that
/// a vendor that takes some number at once is met once per hold, not every
/// few round trips; short enough that a rate limit, which the limit
/// can only hold to whole requests in flight (10 at 52 ms is 192 a second
/// against a limit of 200), is not held under its rate by a whole request
/// for long.
const TOO_MANY_HOLD_TRIPS: u32 = 20;
const TOO_MANY_HOLD_MIN: Duration = Duration::from_secs(1);
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
    /// The standard error of the 10th percentile that set `base`.
    base_p10_noise: Duration,
    /// A jittery vendor's last window showed more than `beta` queued: a
    /// second one in a row is needed to shrink, which chance alone seldom
    /// gives twice.
    over: bool,
    /// The same for the windows' means, with the standard error of the
    /// window that set it: see `EARLY_SAMPLES`.
    base_mean: Option<(Duration, Duration)>,
    /// Whether the first window, whose requests also opened the
    /// connections, has ended: it is left out of everything.
    warmed: bool,
    /// What the second window's spread said: see `EARLY_SAMPLES`.
    steady: bool,
    judged: bool,
    /// The second window looked jittery and a third, at half the limit, is
    /// judging again (see `EARLY_SAMPLES`): the limit, the 90th percentile
    /// and the most requests in flight before it.
    rejudging: Option<(usize, Duration, usize)>,
    /// Round trips of a vendor judged steady, each sent alone (nothing of
    /// ours in flight beside it), to check that judgement (see `SOLO_SAMPLES`).
    solo: Vec<Duration>,
    /// When a window's low last came within tolerance of `base`.
    base_seen: Instant,
    /// A smoothed round trip: how long a window lasts.
    srtt: Option<Duration>,
    /// Answers to requests sent before this do not describe the current limit.
    changed_at: Instant,
    window: Window,
    /// During a re-measurement of `base`: the limit to go back to.
    probing: Option<usize>,
    /// The limit at which the last shrink saw a queue, when the margin held
    /// (`alpha` to `beta`) of a steady vendor is narrower than one request,
    /// or the last 429 came, and until when growth stops short of it
    /// (`probe_after` after a queue, `TOO_MANY_HOLD_*` after a 429). At a
    /// knee of 2, that margin (half a request to one) contains no whole limit: 2
    /// has no queue, 3 has one too many, and without this the limit would
    /// go back and forth between them, half the requests waiting a whole
    /// service.
    ceiling: Option<(usize, Instant)>,
}

#[derive(Debug)]
struct Window {
    /// When its first answer came. A window spans a round trip of answers
    /// from then, not just the first few: from a pool of workers answering
    /// in waves, the first answers are those that found a worker free.
    first: Option<Instant>,
    /// When it opened (the limit's last change, or the last window's end).
    opened: Instant,
    /// Round trips of this window's answers, reused from window to window.
    rtts: Vec<Duration>,
    peak_in_flight: usize,
    /// Answers that said "slow down" since it opened.
    refused: usize,
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
            base_p10_noise: Duration::ZERO,
            over: false,
            base_mean: None,
            warmed: false,
            steady: false,
            judged: false,
            rejudging: None,
            solo: Vec::new(),
            base_seen: now,
            srtt: None,
            changed_at: now,
            window: Window {
                first: None,
                opened: now,
                rtts: Vec::with_capacity(INITIAL),
                peak_in_flight: 0,
                refused: 0,
            },
            probing: None,
            ceiling: None,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A smoothed round trip, once a window has ended.
    pub fn round_trip(&self) -> Option<Duration> {
        self.srtt
    }

    #[cfg(test)]
    pub fn set_round_trip(&mut self, rt: Duration) {
        self.srtt = Some(rt);
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

    /// An answer to a request sent at `started`, with `sent_with` requests
    /// in flight (itself included), arrived at `now`.
    pub fn on_answer(&mut self, started: Instant, sent_with: usize, now: Instant, signal: Signal) {
        if !self.adaptive || started < self.changed_at {
            return;
        }
        match signal {
            Signal::Ignore => return,
            Signal::TooMany => {
                // "Too many", said outright: cut at once, and do not grow
                // back to the limit that was too many for a while.
                self.window.refused += 1;
                self.back_off(now, true);
                return;
            }
            Signal::Backpressure => {
                // A vendor that sheds load with 503s refuses a growing share
                // of requests past its capacity; a flaky one, a small share
                // whatever the load. The window's share decides, at its end;
                // a whole limit's worth of refusals does not wait for it.
                self.window.refused += 1;
                if self.window.refused >= self.limit.max(2) {
                    self.back_off(now, false);
                    return;
                }
            }
            // Sent with more in flight than the limit allows now: it got
            // its slot just before a decrease, and its round trip describes
            // the old load.
            Signal::Ok if sent_with > self.limit => return,
            Signal::Ok => {
                let rtt = now.saturating_duration_since(started);
                if sent_with == 1 && self.judged && self.steady {
                    self.check_steady_alone(rtt);
                }
                self.window.rtts.push(rtt);
            }
        }
        // A window lasts a round trip from its first answer and holds
        // answers to about half the requests one limit's worth sends, so its
        // low is not one sample's. In slow start, a steady vendor's window
        // lasts a round trip from when it opened, so the limit can double
        // every round trip: the first answers may hide a queue in waves, but
        // the next doubling shows it (a jittery vendor's 10th percentile
        // needs the whole round).
        let first = *self.window.first.get_or_insert(now);
        let from = if self.slow_start && self.steady {
            self.window.opened
        } else {
            first
        };
        let length = self.srtt.unwrap_or(Duration::ZERO);
        let enough = if self.warmed && !self.judged {
            if self.rejudging.is_some() {
                EARLY_SAMPLES / 2
            } else {
                EARLY_SAMPLES
            }
        } else if self.judged && !self.steady {
            // A jittery vendor's queue is read from a 10th percentile,
            // which a handful of answers cannot give.
            (self.limit * 2).clamp(JITTERY_SAMPLES, JITTERY_SAMPLES_MAX)
        } else {
            (self.limit / 2).clamp(1, 32)
        };
        let answers = self.window.rtts.len() + self.window.refused;
        if answers >= enough && now.saturating_duration_since(from) >= length {
            self.end_window(now);
        }
    }

    fn end_window(&mut self, now: Instant) {
        let n = self.window.rtts.len();
        let refused = self.window.refused;
        if refused >= 2 && refused as f64 >= REFUSED_SHARE * (n + refused) as f64 {
            self.back_off(now, false);
            return;
        }
        if n == 0 {
            return;
        }
        if !self.warmed {
            // Its round trips include opening the connections: the limit
            // stays, and the next window is the first to count.
            self.warmed = true;
            self.set(self.limit, now);
            return;
        }
        let mean = self.window.rtts.iter().sum::<Duration>() / n as u32;
        let stats = Stats::of(&mut self.window.rtts);
        if !self.judged {
            // Once, before any growth can blur the picture with a queue.
            let steady = stats.spread <= STEADY_SPREAD;
            let steady = match self.rejudging {
                None if !steady && self.limit > 1 => {
                    // Perhaps a knee under the starting limit rather than
                    // jitter: judged again at half the limit, and nothing
                    // learnt from this window's queue.
                    self.rejudging = Some((self.limit, stats.p90, self.window.peak_in_flight));
                    let half = self.limit / 2;
                    self.set(half, now);
                    return;
                }
                // Steady below the starting limit, and the slowest answers
                // of the window before were a queue's, not jitter's.
                Some((_, p90, _)) if steady && stats.p90.mul_f64(WAVES) <= p90 => true,
                Some((from, _, peak)) => {
                    // Jitter after all: the climb goes on from where it was,
                    // as full as that window was (requests the pace sent one
                    // at a time did not fill it, and do not grow it).
                    self.window.peak_in_flight = peak;
                    self.limit = from;
                    false
                }
                None => steady,
            };
            self.steady = steady;
            self.judged = true;
        }
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
            self.base_p10_noise = stats.p10_noise;
            self.base_mean = Some((stats.mean, stats.noise));
            self.base_seen = now;
            self.set(restore, now);
            return;
        }
        if self.base.is_none_or(|b| stats.p10 < b) {
            self.base = Some(stats.p10);
            self.base_p10_noise = stats.p10_noise;
        }
        if self.base_mean.is_none_or(|(b, _)| stats.mean < b) {
            self.base_mean = Some((stats.mean, stats.noise));
        }
        let (base, base_noise) = match (steady, self.base, self.base_mean) {
            (true, _, Some(m)) => m,
            (_, Some(b), _) => (b, Duration::ZERO),
            _ => (low, Duration::ZERO),
        };
        let tolerance = if steady {
            tolerance(base, Some(base_noise))
        } else {
            // Two noisy 10th percentiles compared: three standard errors of
            // their difference, within `JITTER_CHANCE_MAX`.
            let chance = (self.base_p10_noise + stats.p10_noise).mul_f64(3.0);
            tolerance(base, None).max(chance.min(stats.p50.mul_f64(JITTER_CHANCE_MAX)))
        };
        let waiting = low.saturating_sub(base + tolerance);
        if waiting.is_zero() {
            self.base_seen = now;
        }
        let queued = in_flight as f64 * waiting.as_secs_f64() / low.as_secs_f64();
        // By Little's law, the requests in flight that are being served.
        let knee = in_flight as f64 * base.as_secs_f64() / low.as_secs_f64();
        // A jittery vendor's knee from 10th percentiles is no count of
        // workers (see `served` below): its floor stays half a request.
        let alpha_min = if steady {
            ALPHA_MIN.min(ALPHA_MIN_KNEE_SHARE * knee)
        } else {
            ALPHA_MIN
        };
        let alpha = (2.0 * (self.limit as f64).log10())
            .max(2.0)
            .min((ALPHA_KNEE_SHARE * knee).max(alpha_min));
        let beta = 2.0 * alpha;

        let probe_after = PROBE_AFTER_MIN.max(base * PROBE_AFTER_TRIPS);
        let over = queued > beta;
        let confirmed = steady || self.over;
        self.over = over && !confirmed;
        let next = if over && !confirmed {
            // A jittery vendor's first window over `beta`: hold, and see.
            self.slow_start = false;
            self.limit
        } else if over {
            self.slow_start = false;
            // A jittery vendor's knee is not `base / low` of its in-flight
            // count: those are 10th percentiles, far under the round trip a
            // request takes to serve. Only the queue seen beyond chance goes.
            let served = if steady {
                knee
            } else {
                in_flight as f64 - queued
            };
            let target = (served + alpha).ceil() as usize;
            if steady && alpha < 1.0 {
                self.ceiling = Some((self.limit, now + probe_after));
            }
            target.max(self.limit / 2).min(self.limit - 1).max(1)
        } else if queued >= alpha {
            self.slow_start = false;
            self.limit
        } else if saturated && self.slow_start {
            self.limit * 2
        } else if saturated {
            // By the queue we would hold: from fewer than `alpha` waiting,
            // that cannot reach `beta` in one step. With no wait at all, by
            // an eighth, so that a limit chance took out of slow start early
            // climbs back in tens of round trips, not hundreds; that cannot
            // overshoot a knee by more than an eighth either.
            let step = if waiting.is_zero() {
                alpha.max(self.limit as f64 / 8.0)
            } else {
                alpha
            };
            let grown = self.limit + (step as usize).max(1);
            match self.ceiling {
                Some((at, until)) if now < until => grown.min(at - 1).max(self.limit),
                // Then the limit that was too many is tried again first,
                // not stepped over.
                Some((at, _)) if self.limit < at => grown.min(at),
                _ => grown,
            }
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

    /// A vendor judged steady is checked again by requests sent alone: with
    /// nothing of ours in flight beside them, their spread is the vendor's
    /// own, not a queue's. The judgement rests on a handful of answers, and
    /// round trips of 2 to 42 ms once passed for steady about one run in
    /// seventy; read by its windows' means, such a vendor's every window
    /// past the lowest looked like a queue, and the limit sank to one
    /// request and stayed there (43 requests a second where 64 in flight
    /// make 2,700). Alone, its spread shows: it is jittery after all.
    fn check_steady_alone(&mut self, rtt: Duration) {
        self.solo.push(rtt);
        if self.solo.len() < SOLO_SAMPLES {
            return;
        }
        let spread = Stats::of(&mut self.solo).spread;
        self.solo.clear();
        if spread > STEADY_SPREAD {
            self.steady = false;
            self.ceiling = None;
        }
    }

    /// Back-pressure: a tenth off, slow start over, a re-measurement of
    /// `base` called off. With `too_many` (a 429), growth also stops short
    /// of the limit cut from for a while, as after a queue seen at a small
    /// knee: a vendor that takes some number at once and answers 429
    /// past it says so only when we pass it, and climbing back to the same
    /// limit every few round trips meets it again and again. The limit
    /// then settles one below the lowest that met a 429, and tries higher
    /// once a while has passed.
    fn back_off(&mut self, now: Instant, too_many: bool) {
        self.slow_start = false;
        if let Some(restore) = self.probing.take() {
            self.limit = restore;
        }
        if too_many {
            let trips = self.base.or(self.srtt).unwrap_or_default() * TOO_MANY_HOLD_TRIPS;
            self.ceiling = Some((self.limit, now + trips.max(TOO_MANY_HOLD_MIN)));
        }
        let shrunk = ((self.limit as f64 * BACKOFF).floor() as usize).max(1);
        self.set(shrunk, now);
    }

    /// Applies a new limit (capped) and starts a new window; a change also
    /// makes answers to requests sent before it stale.
    fn set(&mut self, limit: usize, now: Instant) {
        let limit = limit.clamp(1, self.cap);
        if limit != self.limit {
            self.changed_at = now;
        }
        self.limit = limit;
        self.window.first = None;
        self.window.opened = now;
        self.window.rtts.clear();
        self.window.peak_in_flight = 0;
        self.window.refused = 0;
    }
}

/// How far above `base` a window's value may be and still count as quiet.
///
/// Chance alone moves a quiet window's mean by up to about three standard
/// errors (`mean_noise`, of the quiet window that set `base`; `None` when
/// the value is a 10th percentile, not a mean); only more than that is a
/// queue. Not the current window's own error: a queue is what spreads it,
/// into the answered-at-once and the waiting. What chance adds is capped at
/// `CHANCE_SHARE_MAX` of `base`.
fn tolerance(base: Duration, mean_noise: Option<Duration>) -> Duration {
    let chance = mean_noise.map_or(Duration::ZERO, |noise| {
        noise.mul_f64(3.0).min(base.mul_f64(CHANCE_SHARE_MAX))
    });
    TOLERANCE_MIN.max(base.mul_f64(TOLERANCE_SHARE)).max(chance)
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
    /// The 10th percentile's standard error, from the order statistics
    /// around it: the ranks chance moves it by are `sqrt(n × 0.1 × 0.9)`.
    p10_noise: Duration,
    p50: Duration,
    p90: Duration,
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
                p10_noise: Duration::ZERO,
                p50: Duration::ZERO,
                p90: Duration::ZERO,
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
        let d = (0.1 * 0.9 / n as f64).sqrt();
        let p10_noise = (at((0.1 + d).min(1.0)).saturating_sub(at((0.1 - d).max(0.0)))) / 2;
        let p90 = at(0.9);
        Stats {
            p10: rtts[n / 10],
            p10_noise,
            p50: at(0.5),
            p90,
            mean: Duration::from_secs_f64(mean),
            noise: Duration::from_secs_f64((var / k).sqrt()),
            spread: (p90.as_secs_f64() - at(0.1).as_secs_f64()) / p50,
        }
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
