//! When the next request to a vendor may leave: the configured rate limit
//! (governor), and a rate learned from the vendor's 429s when it has a limit
//! nobody told us about.
//!
//! The learned rate changes every quarter second, and a governor limiter
//! cannot change its quota in place: swapping limiters would let the waiters
//! of the old one and the new one through side by side, a burst that a
//! vendor's token bucket answers with 429s. So the learned pace is one
//! virtual clock under a lock: each request books the next free instant and
//! sleeps until it, and a new rate applies from the next booking on.
//!
//! The learned rate starts at what the vendor accepted in the last second
//! when it first answers 429, grows by a quarter every quarter second until
//! the next 429 (slow start), then settles: on each 429 for a request sent
//! after the last change it drops to 95% of the rate the vendor accepted
//! since that change (a token bucket accepts exactly its rate once drained,
//! so that is the vendor's limit), and it grows by 1% a second while no 429
//! comes. Steady state sits just under the limit with a 429 every five
//! seconds or so, instead of a storm of them (at 2% a second, twice as
//! often, for the same throughput: a cut to 95% averages 97.5% either way).

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

/// Growth per tick: quick before the first cut, slow after it.
const SLOW_START_GROWTH: f64 = 1.25;
const STEADY_GROWTH: f64 = 1.0025;
const TICK: Duration = Duration::from_millis(250);
const FLOOR: f64 = 0.5;
/// After a change, 429s are ignored this long: the vendor's bucket is still
/// empty from before, and the accepted rate needs time to be measured.
const SETTLE: Duration = Duration::from_millis(300);
/// Accepted answers are counted in ten buckets of a tenth of a second.
const BUCKET: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Learned {
    rate: Option<f64>,
    /// The next instant a request may leave at the learned rate.
    next_slot: Instant,
    slow_start: bool,
    changed_at: Instant,
    grown_at: Instant,
    /// Accepted answers since the last change of rate.
    ok_since_change: u32,
    /// Accepted answers per bucket over the last second, and where "now" is.
    buckets: [u32; 10],
    /// The most requests in flight any of those was sent with.
    peaks: [usize; 10],
    bucket_at: Instant,
    bucket: usize,
    throttled: u64,
}

impl Learned {
    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.bucket_at) > BUCKET * 20 {
            self.buckets = [0; 10];
            self.peaks = [0; 10];
            self.bucket_at = now;
            return;
        }
        while now.duration_since(self.bucket_at) >= BUCKET {
            self.bucket = (self.bucket + 1) % self.buckets.len();
            self.buckets[self.bucket] = 0;
            self.peaks[self.bucket] = 0;
            self.bucket_at += BUCKET;
        }
    }

    fn set(&mut self, rate: f64, now: Instant) {
        let rate = rate.max(FLOOR);
        self.rate = Some(rate);
        self.changed_at = now;
        self.grown_at = now;
        self.ok_since_change = 0;
    }
}

/// One vendor's pace.
#[derive(Debug)]
pub struct Pace {
    configured: Option<DefaultDirectRateLimiter>,
    /// The configured rate in requests per second, for monitoring.
    configured_rate: Option<f64>,
    learned: Mutex<Learned>,
}

impl Pace {
    pub fn new(configured: Option<RateLimit>) -> Self {
        let configured_rate = configured.map(|r| r.per_second());
        let configured = configured.map(|r| {
            let period = r.per / r.requests.max(1);
            let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
            RateLimiter::direct(quota)
        });
        let now = Instant::now();
        Pace {
            configured,
            configured_rate,
            learned: Mutex::new(Learned {
                rate: None,
                next_slot: now,
                slow_start: true,
                changed_at: now,
                grown_at: now,
                ok_since_change: 0,
                buckets: [0; 10],
                peaks: [0; 10],
                bucket_at: now,
                bucket: 0,
                throttled: 0,
            }),
        }
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request may leave now without waiting: no rate configured
    /// and none learnt (the usual case, which then costs one lock).
    pub fn free_now(&self) -> bool {
        self.configured.is_none() && self.learned().rate.is_none()
    }

    /// Waits until a request may leave.
    pub async fn ready(&self) {
        if let Some(c) = &self.configured {
            c.until_ready().await;
        }
        let slot = {
            let mut l = self.learned();
            l.rate.map(|rate| {
                let at = l.next_slot.max(Instant::now());
                l.next_slot = at + Duration::from_secs_f64(1.0 / rate);
                at
            })
        };
        if let Some(at) = slot {
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// The learned rate in requests per second, if the vendor has pushed back.
    pub fn learned_rate(&self) -> Option<f64> {
        self.learned().rate
    }

    /// The rate requests leave at most, in requests per second: the lower of
    /// the configured and the learned rate; `None` when neither holds them back.
    pub fn rate(&self) -> Option<f64> {
        match (self.configured_rate, self.learned_rate()) {
            (Some(c), Some(l)) => Some(c.min(l)),
            (c, l) => c.or(l),
        }
    }

    /// How many 429s the vendor has answered so far.
    pub fn throttled(&self) -> u64 {
        self.learned().throttled
    }

    /// Learns from an answer to a request that left at `sent` with
    /// `sent_with` requests in flight (itself included).
    pub fn on_answer(&self, status: u16, sent: Instant, sent_with: usize) {
        let now = Instant::now();
        let mut l = self.learned();
        l.roll(now);
        if let Some(rate) = l.rate
            && now.duration_since(l.grown_at) >= TICK
        {
            let factor = if l.slow_start {
                SLOW_START_GROWTH
            } else {
                STEADY_GROWTH
            };
            let grown = rate * factor + 0.1;
            l.rate = Some(grown);
            l.grown_at = now;
        }
        if status != 429 {
            if (200..300).contains(&status) {
                let b = l.bucket;
                l.buckets[b] += 1;
                l.peaks[b] = l.peaks[b].max(sent_with);
                l.ok_since_change += 1;
            }
            return;
        }
        l.throttled += 1;
        if l.peaks.iter().all(|&peak| sent_with > peak) {
            // Refused with more requests in flight than any the vendor
            // accepted in the last second (or before it accepted any): a
            // limit on requests at once, which the concurrency limit learns
            // from this 429, not on their rate. A rate learnt from it would
            // be what a ramp or a start had time to send: a fraction of
            // what the vendor takes, or nothing at all.
            return;
        }
        match l.rate {
            None => {
                // First push-back: start from what the vendor took in the last second.
                let last_second: u32 = l.buckets.iter().sum();
                tracing::debug!(
                    "a rate limit learnt from 429s: {last_second} requests a second to start with"
                );
                l.set(f64::from(last_second), now);
            }
            Some(_) if sent < l.changed_at || now.duration_since(l.changed_at) < SETTLE => {
                // Sent before the last change, or too soon after it for the
                // vendor's bucket to have refilled: says nothing new.
            }
            Some(rate) => {
                let since = now.duration_since(l.changed_at).as_secs_f64();
                // What the vendor took lately: over the last second when the
                // rate has held that long (a ramp would average too low).
                let accepted = if since >= 1.0 {
                    let window = 0.9 + now.duration_since(l.bucket_at).as_secs_f64();
                    f64::from(l.buckets.iter().sum::<u32>()) / window
                } else {
                    f64::from(l.ok_since_change) / since
                };
                l.slow_start = false;
                l.set((accepted * 0.95).min(rate * 0.95), now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn configured_rate_spaces_requests() {
        // One an hour, no burst: the first request leaves at once (the bound
        // is only there so that a broken pace fails instead of hanging), the
        // next one waits its turn.
        let p = Pace::new(Some(RateLimit::parse("1/h").unwrap()));
        tokio::time::timeout(Duration::from_secs(30), p.ready())
            .await
            .expect("the first request leaves at once");
        let second = tokio::time::timeout(Duration::from_millis(50), p.ready()).await;
        assert!(second.is_err(), "the second request waits for its turn");
    }

    #[test]
    fn learns_from_429_and_ignores_stale_refusals() {
        let p = Pace::new(None);
        assert_eq!(p.learned_rate(), None);
        let before = Instant::now();
        for _ in 0..50 {
            p.on_answer(200, before, 4);
        }
        p.on_answer(429, Instant::now(), 4);
        let first = p.learned_rate().unwrap();
        assert_eq!(
            first, 50.0,
            "starts at what was accepted in the last second"
        );
        // A refusal of a request sent before that change changes nothing.
        p.on_answer(429, before, 4);
        assert_eq!(p.learned_rate(), Some(first));
        // Nor does one that comes before the vendor could have refilled.
        p.on_answer(429, Instant::now(), 4);
        assert_eq!(p.learned_rate(), Some(first));
        std::thread::sleep(SETTLE);
        p.on_answer(200, Instant::now(), 4);
        p.on_answer(429, Instant::now(), 4);
        assert!(p.learned_rate().unwrap() < first);
        assert_eq!(p.throttled(), 4);
    }

    #[test]
    fn a_limit_on_requests_at_once_is_not_learnt_as_a_rate() {
        // Refused before anything was accepted: the first requests of a
        // run that sends more at once than the vendor serves.
        let p = Pace::new(None);
        p.on_answer(429, Instant::now(), 32);
        assert_eq!(p.learned_rate(), None);
        // Accepted with up to 24 in flight, refused with 32: the same.
        for _ in 0..100 {
            p.on_answer(200, Instant::now(), 24);
        }
        p.on_answer(429, Instant::now(), 32);
        assert_eq!(p.learned_rate(), None);
        assert_eq!(p.throttled(), 2);
        // Refused with no more in flight than some it accepted: a rate.
        p.on_answer(429, Instant::now(), 24);
        assert_eq!(p.learned_rate(), Some(100.0));
    }
}
