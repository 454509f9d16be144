//! Adaptive concurrency per vendor (AIMD), in the manner of Vector's adaptive
//! request concurrency.
//!
//! The limit starts small and doubles every round trip while the vendor keeps
//! up (slow start), then grows by one per round trip. It shrinks by a tenth
//! when the vendor pushes back (429, 503, timeouts) or when round trips grow
//! well past their quiet baseline, which is how a vendor's capacity knee shows
//! before it starts refusing. The configured cap is never exceeded.
//!
//! Lowering the limit cannot take back permits already handed out, so the
//! surplus is "forgotten" as those permits come back.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one request's round trip says about the vendor's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered normally (any status that is not back-pressure).
    Ok,
    /// 429, 503 or a timeout: slow down.
    Backpressure,
    /// No usable round trip (connection refused, reset): not a latency sample.
    Ignore,
}

/// Decrease factor on back-pressure.
const DECREASE: f64 = 0.9;
/// Round trips this much above the baseline count as congestion...
const RTT_RATIO: f64 = 1.5;
/// ...when they are also at least this much above it in absolute terms, so
/// sub-millisecond jitter on a fast vendor never reads as congestion.
const RTT_MARGIN: Duration = Duration::from_millis(5);
const INITIAL: usize = 8;

#[derive(Debug)]
struct State {
    limit: usize,
    /// Permits to drop instead of returning, after a decrease.
    to_forget: usize,
    in_flight: usize,
    slow_start: bool,
    /// The quiet round-trip time: follows decreases quickly, increases slowly.
    baseline: Option<f64>,
    window_start: Instant,
    window_sum: f64,
    window_n: u32,
    window_peak: usize,
    window_pushback: bool,
}

/// One vendor's adaptive limit.
#[derive(Debug)]
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
    cap: usize,
    adaptive: bool,
}

/// A slot to send one request; give it back with [`AdaptiveLimit::release`].
#[derive(Debug)]
pub struct VendorPermit {
    permit: OwnedSemaphorePermit,
    pub started: Instant,
}

impl AdaptiveLimit {
    /// `adaptive = false` keeps the limit fixed at `cap` (benchmarks, or a
    /// vendor whose capacity is known).
    pub fn new(cap: usize, adaptive: bool) -> Arc<Self> {
        let cap = cap.max(1);
        let limit = if adaptive { INITIAL.min(cap) } else { cap };
        Arc::new(AdaptiveLimit {
            semaphore: Arc::new(Semaphore::new(limit)),
            state: Mutex::new(State {
                limit,
                to_forget: 0,
                in_flight: 0,
                slow_start: true,
                baseline: None,
                window_start: Instant::now(),
                window_sum: 0.0,
                window_n: 0,
                window_peak: 0,
                window_pushback: false,
            }),
            cap,
            adaptive,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only counters behind; carry on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot; `None` once the vendor is stopped ([`AdaptiveLimit::close`]).
    pub async fn acquire(&self) -> Option<VendorPermit> {
        let permit = self.semaphore.clone().acquire_owned().await.ok()?;
        let mut s = self.state();
        s.in_flight += 1;
        s.window_peak = s.window_peak.max(s.in_flight);
        Some(VendorPermit {
            permit,
            started: Instant::now(),
        })
    }

    /// Stops handing out slots and wakes every waiter with `None`: the vendor's
    /// circuit opened, or the run is stopping.
    pub fn close(&self) {
        self.semaphore.close();
    }

    /// The current limit, for progress displays.
    pub fn limit(&self) -> usize {
        self.state().limit
    }

    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// Returns a slot and learns from its round trip.
    pub fn release(&self, permit: VendorPermit, signal: Signal) {
        let rtt = permit.started.elapsed();
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.to_forget > 0 {
            s.to_forget -= 1;
            permit.permit.forget();
        } else {
            drop(permit.permit);
        }
        if !self.adaptive {
            return;
        }
        match signal {
            Signal::Ok => {
                s.window_sum += rtt.as_secs_f64();
                s.window_n += 1;
            }
            Signal::Backpressure => s.window_pushback = true,
            Signal::Ignore => {}
        }
        let window = s
            .baseline
            .map_or(Duration::from_millis(1), Duration::from_secs_f64)
            .max(Duration::from_millis(1));
        if s.window_start.elapsed() >= window && (s.window_n > 0 || s.window_pushback) {
            self.end_window(&mut s);
        }
    }

    fn end_window(&self, s: &mut State) {
        let mean = if s.window_n > 0 {
            Some(s.window_sum / f64::from(s.window_n))
        } else {
            None
        };
        let congested = match (mean, s.baseline) {
            (Some(m), Some(b)) => m > b * RTT_RATIO && m > b + RTT_MARGIN.as_secs_f64(),
            _ => false,
        };
        let new_limit = if s.window_pushback || congested {
            s.slow_start = false;
            ((s.limit as f64 * DECREASE).floor() as usize).max(1)
        } else if s.window_peak >= s.limit {
            if s.slow_start {
                s.limit * 2
            } else {
                s.limit + 1
            }
        } else {
            s.limit
        }
        .min(self.cap);
        if let Some(m) = mean {
            s.baseline = Some(match s.baseline {
                None => m,
                Some(b) if m < b => b + (m - b) * 0.5,
                Some(b) => b + (m - b) * 0.05,
            });
        }
        self.set_limit(s, new_limit);
        s.window_start = Instant::now();
        s.window_sum = 0.0;
        s.window_n = 0;
        s.window_peak = s.in_flight;
        s.window_pushback = false;
    }

    fn set_limit(&self, s: &mut State, new_limit: usize) {
        if new_limit > s.limit {
            let mut grow = new_limit - s.limit;
            let cancel = grow.min(s.to_forget);
            s.to_forget -= cancel;
            grow -= cancel;
            self.semaphore.add_permits(grow);
        } else if new_limit < s.limit {
            let mut shrink = s.limit - new_limit;
            // Take idle permits back at once; the rest as they are released.
            while shrink > 0 {
                match self.semaphore.try_acquire() {
                    Ok(p) => {
                        p.forget();
                        shrink -= 1;
                    }
                    Err(_) => break,
                }
            }
            s.to_forget += shrink;
        }
        s.limit = new_limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fixed_limit_never_moves() {
        let l = AdaptiveLimit::new(4, false);
        let mut ps = Vec::new();
        for _ in 0..4 {
            ps.push(l.acquire().await.unwrap());
        }
        assert!(l.semaphore.try_acquire().is_err());
        for p in ps {
            l.release(p, Signal::Backpressure);
        }
        assert_eq!(l.limit(), 4);
    }

    #[tokio::test]
    async fn grows_while_quiet_and_halves_on_pushback() {
        // Round trips of 20 ms, not 2, and as many rounds as it takes: on a
        // loaded machine, scheduling delay reads as congestion (RTT_RATIO)
        // now and then, and each costs a tenth of the limit and the slow start.
        let l = AdaptiveLimit::new(64, true);
        assert_eq!(l.limit(), INITIAL);
        for _ in 0..200 {
            if l.limit() == 64 {
                break;
            }
            let n = l.limit();
            let mut ps = Vec::new();
            for _ in 0..n {
                ps.push(l.acquire().await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            for p in ps {
                l.release(p, Signal::Ok);
            }
        }
        assert_eq!(l.limit(), 64, "reaches the cap and stays under it");
        let n = l.limit();
        let mut ps = Vec::new();
        for _ in 0..n {
            ps.push(l.acquire().await.unwrap());
        }
        // Longer than the baseline, so the window surely ends on these.
        tokio::time::sleep(Duration::from_millis(60)).await;
        for p in ps {
            l.release(p, Signal::Backpressure);
        }
        assert!(l.limit() < 64, "{}", l.limit());
        assert_eq!(
            l.semaphore.available_permits(),
            l.limit(),
            "surplus permits were forgotten"
        );
        l.close();
        assert!(l.acquire().await.is_none());
    }
}
