//! Adaptive concurrency per vendor: find the vendor's capacity knee and stay
//! just past it, without filling its queue.
//!
//! The semaphore that bounds requests in flight is sized by a
//! [`Controller`](controller::Controller), a delay-based controller in the
//! manner of TCP Vegas with BBR's periodic re-measurement of the quiet round
//! trip; `controller.rs` explains the rules. This file only applies its
//! decisions: it hands out and takes back permits, and shrinks without
//! taking back permits already handed out (the surplus is forgotten as those
//! permits come back). A permit whose request was refused with a 503 (or
//! timed out) comes back a round trip after it left, as a served one would.
//!
//! A slot is taken before the request waits for the run's global slot and
//! the vendor's pace, but the request is *in flight* only once it goes on
//! the wire ([`AdaptiveLimit::depart`]). Slots held while the pace holds
//! their requests back are not load on the vendor: counted as in flight,
//! they made a paced vendor's limit look full, so it grew to its cap while
//! the pace did the limiting, and the first time the pace let more through
//! than the vendor takes at once, the cap's worth left together.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::controller::Controller;

/// What one request's round trip says about the vendor's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered normally (any status that is not back-pressure).
    Ok,
    /// 429: too many requests, said outright. Cuts at once.
    TooMany,
    /// 503 or a timeout: slow down, or a flaky vendor; a share of them cuts.
    Backpressure,
    /// No usable round trip (connection refused, reset): not a latency sample.
    Ignore,
}

impl Signal {
    /// What an answer's status says of the vendor's load: 429 "too many",
    /// 503 "slow down" (or a flaky vendor). Not a gateway's 502 or 504: a
    /// flaky gateway answers a share of requests so whatever the load, and
    /// every round trip with one in it would cut the limit.
    pub fn of_status(status: u16) -> Signal {
        match status {
            429 => Signal::TooMany,
            503 => Signal::Backpressure,
            _ => Signal::Ok,
        }
    }
}

#[derive(Debug)]
struct State {
    controller: Controller,
    /// Permits to drop instead of returning, after a decrease.
    to_forget: usize,
    in_flight: usize,
}

/// One vendor's concurrency limit, adaptive or fixed.
#[derive(Debug)]
pub struct AdaptiveLimit {
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
    adaptive: bool,
}

/// A slot to send one request; give it back with [`AdaptiveLimit::release`].
#[derive(Debug)]
pub struct VendorPermit {
    permit: OwnedSemaphorePermit,
    /// When the request went on the wire (when the slot was taken, until then).
    pub started: Instant,
    /// Requests in flight to the vendor when this one left, itself included;
    /// 0 until it leaves.
    pub sent_with: usize,
}

impl AdaptiveLimit {
    /// `adaptive = false` keeps the limit fixed at `cap` (benchmarks, or a
    /// vendor whose capacity is known).
    pub fn new(cap: usize, adaptive: bool) -> Arc<Self> {
        let controller = Controller::new(cap, adaptive, Instant::now());
        Arc::new(AdaptiveLimit {
            semaphore: Arc::new(Semaphore::new(controller.limit())),
            state: Mutex::new(State {
                controller,
                to_forget: 0,
                in_flight: 0,
            }),
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
        Some(VendorPermit {
            permit,
            started: Instant::now(),
            sent_with: 0,
        })
    }

    /// A slot if one is free now, without waiting.
    pub fn try_acquire(&self) -> Result<VendorPermit, TryAcquireError> {
        let permit = self.semaphore.clone().try_acquire_owned()?;
        Ok(VendorPermit {
            permit,
            started: Instant::now(),
            sent_with: 0,
        })
    }

    /// The slot's request goes on the wire now: from here it is in flight.
    pub fn depart(&self, permit: &mut VendorPermit) {
        let mut s = self.state();
        if permit.sent_with == 0 {
            s.in_flight += 1;
        }
        let in_flight = s.in_flight;
        s.controller.on_start(in_flight);
        permit.started = Instant::now();
        permit.sent_with = in_flight;
    }

    /// Stops handing out slots and wakes every waiter with `None`: the vendor's
    /// circuit opened, or the run is stopping.
    pub fn close(&self) {
        self.semaphore.close();
    }

    /// The current limit, for progress displays.
    pub fn limit(&self) -> usize {
        self.state().controller.limit()
    }

    /// Requests on the wire to the vendor now.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// Returns a slot and learns from its round trip.
    ///
    /// The controller decides first: a returned permit would otherwise go
    /// to a waiting request before a decrease, which would then leave with
    /// more in flight than the new limit.
    pub fn release(self: &Arc<Self>, permit: VendorPermit, signal: Signal) {
        let now = Instant::now();
        let mut s = self.state();
        // A slot given back before its request left has no round trip.
        let signal = if permit.sent_with > 0 {
            s.in_flight = s.in_flight.saturating_sub(1);
            signal
        } else {
            Signal::Ignore
        };
        if self.adaptive {
            let before = s.controller.limit();
            s.controller
                .on_answer(permit.started, permit.sent_with, now, signal);
            let after = s.controller.limit();
            self.resize(&mut s, before, after);
        }
        let Some(slot) = forget_if_owed(&mut s, permit.permit) else {
            return;
        };
        // A refusal comes back at once, unserved: a slot reused at once
        // would be refused again and again within one round trip, and a
        // vendor shedding load would see requests spin in its face. A
        // refused slot costs the round trip a served one does.
        let hold = match signal {
            Signal::Backpressure if self.adaptive => s
                .controller
                .round_trip()
                .and_then(|rt| rt.checked_sub(now.saturating_duration_since(permit.started))),
            _ => None,
        };
        drop(s);
        // The runtime is looked up only for a slot to hold: every other
        // answer goes straight back.
        let runtime = hold
            .filter(|h| !h.is_zero())
            .and_then(|h| Some((h, tokio::runtime::Handle::try_current().ok()?)));
        match runtime {
            Some((hold, runtime)) => {
                let me = Arc::clone(self);
                runtime.spawn(async move {
                    tokio::time::sleep(hold).await;
                    // Forgotten instead if the limit was cut meanwhile.
                    let slot = forget_if_owed(&mut me.state(), slot);
                    drop(slot);
                });
            }
            None => drop(slot),
        }
    }

    fn resize(&self, s: &mut State, before: usize, after: usize) {
        if after > before {
            let mut grow = after - before;
            let cancel = grow.min(s.to_forget);
            s.to_forget -= cancel;
            grow -= cancel;
            self.semaphore.add_permits(grow);
        } else if after < before {
            let mut shrink = before - after;
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
    }
}

/// A returned slot, unless a cut is still owed slots: then it is forgotten
/// (the semaphore shrinks by one) and `None` comes back.
fn forget_if_owed(s: &mut State, slot: OwnedSemaphorePermit) -> Option<OwnedSemaphorePermit> {
    if s.to_forget > 0 {
        s.to_forget -= 1;
        slot.forget();
        return None;
    }
    Some(slot)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::controller::INITIAL as INITIAL_LIMIT;
    use super::*;

    /// Takes `n` slots.
    async fn acquire(l: &AdaptiveLimit, n: usize) -> Vec<VendorPermit> {
        let mut ps = Vec::with_capacity(n);
        for _ in 0..n {
            ps.push(sent(l).await);
        }
        ps
    }

    /// Takes a slot and sends its request.
    async fn sent(l: &AdaptiveLimit) -> VendorPermit {
        let mut p = l.acquire().await.unwrap();
        l.depart(&mut p);
        p
    }

    #[test]
    fn only_429_and_503_say_slow_down() {
        let slow_down: Vec<u16> = (100..600)
            .filter(|s| Signal::of_status(*s) != Signal::Ok)
            .collect();
        assert_eq!(slow_down, [429, 503]);
        assert_eq!(Signal::of_status(429), Signal::TooMany);
        assert_eq!(Signal::of_status(503), Signal::Backpressure);
    }

    #[tokio::test]
    async fn fixed_limit_never_moves() {
        let l = AdaptiveLimit::new(4, false);
        let ps = acquire(&l, 4).await;
        assert!(l.semaphore.try_acquire().is_err());
        for p in ps {
            l.release(p, Signal::Backpressure);
        }
        assert_eq!(l.limit(), 4);
    }

    #[tokio::test]
    async fn a_decrease_is_applied_before_the_returned_slot_goes_to_a_waiter() {
        let l = AdaptiveLimit::new(64, true);
        let start = l.limit();
        let mut ps = acquire(&l, start).await;
        // One refusal alone does not cut (see the controller): its slot
        // goes to the next request.
        let p = ps.pop().unwrap();
        l.release(p, Signal::Backpressure);
        assert_eq!(l.limit(), start);
        ps.push(sent(&l).await);
        // A request waiting for a slot; the second refusal cuts.
        let mut waiting = std::pin::pin!(l.acquire());
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        let p = ps.pop().unwrap();
        l.release(p, Signal::Backpressure);
        assert!(l.limit() < start);
        // The slot that came back is the one the decrease took: the waiter
        // would otherwise leave with more in flight than the new limit.
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        assert_eq!(l.in_flight(), start - 1);
        for p in ps {
            l.release(p, Signal::Ok);
        }
        assert!(waiting.await.is_some());
    }

    /// A new adaptive limit that has learnt a round trip of 200 ms, with
    /// every slot taken.
    async fn all_taken_at_a_round_trip() -> (Arc<AdaptiveLimit>, Duration, Vec<VendorPermit>) {
        let l = AdaptiveLimit::new(64, true);
        let round_trip = Duration::from_millis(200);
        l.state().controller.set_round_trip(round_trip);
        let ps = acquire(&l, l.limit()).await;
        (l, round_trip, ps)
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_slot_is_reused_a_round_trip_later() {
        let (l, round_trip, mut ps) = all_taken_at_a_round_trip().await;
        let mut waiting = std::pin::pin!(l.acquire());
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        // One refusal does not cut; its slot comes back a round trip on.
        let refused = ps.pop().unwrap();
        l.release(refused, Signal::Backpressure);
        assert_eq!(l.limit(), INITIAL_LIMIT);
        tokio::time::sleep(round_trip / 2).await;
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        tokio::time::sleep(round_trip).await;
        let std::task::Poll::Ready(Some(mut got)) = futures::poll!(waiting.as_mut()) else {
            panic!("no slot a round trip after a refusal");
        };
        l.depart(&mut got);
        ps.push(got);
        // A served slot goes to the next request at once.
        let mut next = std::pin::pin!(l.acquire());
        assert!(futures::poll!(next.as_mut()).is_pending());
        l.release(ps.pop().unwrap(), Signal::Ok);
        assert!(futures::poll!(next.as_mut()).is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_slot_is_forgotten_if_the_limit_was_cut_meanwhile() {
        let (l, round_trip, mut ps) = all_taken_at_a_round_trip().await;
        l.release(ps.pop().unwrap(), Signal::Backpressure);
        // A cut while it is held, with no idle slot to take back at once.
        l.state().to_forget = 1;
        tokio::time::sleep(round_trip * 2).await;
        assert_eq!(l.semaphore.available_permits(), 0);
        assert_eq!(l.state().to_forget, 0);
        drop(ps);
    }

    #[tokio::test]
    async fn a_request_is_in_flight_only_once_it_leaves() {
        // Every slot taken, as when the pace holds the requests back, and
        // the requests leaving one at a time, each answered before the
        // next leaves: the vendor never has more than one, and the limit
        // must not read its slots as full and grow toward its cap (from
        // where, once the pace let more through, they would all leave at
        // once).
        let l = AdaptiveLimit::new(256, true);
        for _ in 0..200 {
            let mut held = Vec::new();
            while l.semaphore.available_permits() > 0 {
                held.push(l.acquire().await.unwrap());
            }
            assert_eq!(l.in_flight(), 0, "slots held, nothing sent");
            for mut p in held {
                l.depart(&mut p);
                assert_eq!(p.sent_with, 1);
                std::thread::sleep(Duration::from_micros(200));
                l.release(p, Signal::Ok);
            }
        }
        // It may have been judged again at half the start (round trips this
        // short can look jittery on a busy machine); it has never grown.
        let limit = l.limit();
        assert!(
            limit <= INITIAL_LIMIT,
            "one at a time is not a full limit: grew to {limit}"
        );
        // A slot given back before its request left changes no count.
        let p = l.acquire().await.unwrap();
        l.release(p, Signal::TooMany);
        assert_eq!(l.in_flight(), 0);
        assert_eq!(l.limit(), limit);
    }

    #[tokio::test]
    async fn pushback_shrinks_and_forgets_the_surplus() {
        let l = AdaptiveLimit::new(64, true);
        let start = l.limit();
        for p in acquire(&l, start).await {
            l.release(p, Signal::Backpressure);
        }
        assert!(l.limit() < start, "{} after pushback", l.limit());
        assert_eq!(
            l.semaphore.available_permits(),
            l.limit(),
            "surplus permits were forgotten"
        );
        l.close();
        assert!(l.acquire().await.is_none());
    }
}
