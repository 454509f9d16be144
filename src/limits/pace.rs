//! When the next request to a vendor may leave: the configured rate limit
//! (governor), and a rate learned from the vendor's 429s when it has a limit
//! nobody told us about.
//!
//! The learned rate behaves like TCP's congestion window, over requests per
//! second instead of bytes: on a 429 for a request sent after the last
//! change, halve the rate, but not below nine tenths of what the vendor
//! accepted over the last full second; after every second without a cut,
//! grow by two percent. Steady state sits just under the vendor's limit with
//! a 429 every few seconds, instead of a storm of them.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

const GROWTH: f64 = 1.02;
const FLOOR: f64 = 0.5;

fn limiter(per_second: f64) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / per_second.max(FLOOR));
    let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
    Arc::new(RateLimiter::direct(quota))
}

#[derive(Debug)]
struct Learned {
    rate: Option<f64>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    changed_at: Instant,
    /// Accepted answers in the current one-second window, and the last full window's count.
    window_start: Instant,
    window_ok: u32,
    last_window_ok: Option<u32>,
    throttled: u64,
}

/// One vendor's pace.
#[derive(Debug)]
pub struct Pace {
    configured: Option<DefaultDirectRateLimiter>,
    learned: Mutex<Learned>,
}

impl Pace {
    pub fn new(configured: Option<RateLimit>) -> Self {
        let configured = configured.map(|r| {
            let period = r.per / r.requests.max(1);
            let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
            RateLimiter::direct(quota)
        });
        let now = Instant::now();
        Pace {
            configured,
            learned: Mutex::new(Learned {
                rate: None,
                limiter: None,
                changed_at: now,
                window_start: now,
                window_ok: 0,
                last_window_ok: None,
                throttled: 0,
            }),
        }
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request may leave.
    pub async fn ready(&self) {
        if let Some(c) = &self.configured {
            c.until_ready().await;
        }
        let learned = self.learned().limiter.clone();
        if let Some(l) = learned {
            l.until_ready().await;
        }
    }

    /// The learned rate in requests per second, if the vendor has pushed back.
    pub fn learned_rate(&self) -> Option<f64> {
        self.learned().rate
    }

    /// How many 429s the vendor has answered so far.
    pub fn throttled(&self) -> u64 {
        self.learned().throttled
    }

    /// Learns from an answer to a request that left at `sent`.
    pub fn on_answer(&self, status: u16, sent: Instant) {
        let now = Instant::now();
        let mut l = self.learned();
        if now.duration_since(l.window_start) >= Duration::from_secs(1) {
            l.last_window_ok = Some(l.window_ok);
            l.window_ok = 0;
            l.window_start = now;
            if let Some(rate) = l.rate
                && now.duration_since(l.changed_at) >= Duration::from_secs(1)
            {
                let grown = rate * GROWTH + 0.5;
                l.rate = Some(grown);
                l.limiter = Some(limiter(grown));
                l.changed_at = now;
            }
        }
        if status != 429 {
            if (200..300).contains(&status) {
                l.window_ok += 1;
            }
            return;
        }
        l.throttled += 1;
        if sent < l.changed_at && l.rate.is_some() {
            // Sent before the last cut: its refusal says nothing new.
            return;
        }
        let elapsed = now.duration_since(l.window_start).as_secs_f64().max(0.001);
        let current = l
            .rate
            .unwrap_or_else(|| f64::from(l.window_ok.max(1)) / elapsed);
        let floor = l.last_window_ok.map_or(FLOOR, |n| f64::from(n) * 0.9);
        let next = (current * 0.5).max(floor).min(current).max(FLOOR);
        l.rate = Some(next);
        l.limiter = Some(limiter(next));
        l.changed_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn configured_rate_spaces_requests() {
        let p = Pace::new(Some(RateLimit::parse("100/s").unwrap()));
        let t = Instant::now();
        for _ in 0..11 {
            p.ready().await;
        }
        assert!(
            t.elapsed() >= Duration::from_millis(90),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn learns_from_429_and_ignores_stale_refusals() {
        let p = Pace::new(None);
        assert_eq!(p.learned_rate(), None);
        let before = Instant::now();
        for _ in 0..50 {
            p.on_answer(200, before);
        }
        p.on_answer(429, Instant::now());
        let first = p.learned_rate().unwrap();
        assert!(first > 0.0);
        // A refusal of a request sent before that cut changes nothing.
        p.on_answer(429, before);
        assert_eq!(p.learned_rate(), Some(first));
        std::thread::sleep(Duration::from_millis(2));
        p.on_answer(429, Instant::now());
        assert!(p.learned_rate().unwrap() < first);
        assert_eq!(p.throttled(), 3);
    }
}
