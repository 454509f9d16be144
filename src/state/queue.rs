//! The writer's inbox: a bounded queue that wakes the writer once per batch.
//!
//! `std::sync::mpsc::sync_channel` wakes a parked receiver on every send and
//! a parked sender on every receive: with a writer that batches anyway, that
//! is a futex call per row on the senders' threads (the async runtime's) and
//! measured as 15 % of the writer's time. Here the writer is woken only when
//! [`Queue::wake_at`] rows are waiting, the oldest has waited the batch time,
//! a flush asks for it, or the last sender is gone; it then takes everything
//! at once. Senders block while `capacity` rows wait (back-pressure) and are
//! woken together when the writer empties the queue; an async sender (the
//! dispatcher) waits on a [`Notify`] instead of blocking a runtime thread.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    writer: Condvar,
    senders: Condvar,
    /// Async senders waiting for room.
    room: Notify,
    capacity: usize,
    wake_at: usize,
}

#[derive(Debug)]
struct State<T> {
    items: Vec<T>,
    /// When the oldest waiting item arrived.
    oldest: Option<Instant>,
    /// An item that must not wait for a full batch (a flush) is waiting.
    urgent: bool,
    senders: usize,
    senders_waiting: usize,
    async_waiting: bool,
    receiver_alive: bool,
    receiver_waiting: bool,
}

/// What [`Queue::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Items were moved out; the oldest of them arrived at this instant.
    Items(Instant),
    /// The deadline passed with nothing to take.
    Timeout,
    /// Empty, and every sender is gone.
    Closed,
}

impl<T> Queue<T> {
    /// A queue with one sender registered.
    pub(crate) fn new(capacity: usize, wake_at: usize) -> Queue<T> {
        let capacity = capacity.max(1);
        Queue {
            state: Mutex::new(State {
                items: Vec::new(),
                oldest: None,
                urgent: false,
                senders: 1,
                senders_waiting: 0,
                async_waiting: false,
                receiver_alive: true,
                receiver_waiting: false,
            }),
            writer: Condvar::new(),
            senders: Condvar::new(),
            room: Notify::new(),
            capacity,
            wake_at: wake_at.clamp(1, capacity),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state consistent: carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add_sender(&self) {
        self.lock().senders += 1;
    }

    pub(crate) fn remove_sender(&self) {
        let mut s = self.lock();
        s.senders -= 1;
        if s.senders == 0 {
            self.writer.notify_one();
        }
    }

    /// The receiver is gone: wake blocked senders so they can fail.
    pub(crate) fn close_receiver(&self) {
        let mut s = self.lock();
        s.receiver_alive = false;
        s.items = Vec::new();
        self.senders.notify_all();
        self.room.notify_waiters();
    }

    /// Waits until the receiver is gone (it publishes why before that).
    pub(crate) fn wait_closed(&self) {
        let mut s = self.lock();
        while s.receiver_alive {
            s = self.senders.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Queues an item, blocking while the queue is full. Gives the item back
    /// if the receiver is gone.
    pub(crate) fn send(&self, item: T, urgent: bool) -> Result<(), T> {
        let mut s = self.lock();
        while s.items.len() >= self.capacity && s.receiver_alive {
            s.senders_waiting += 1;
            s = self.senders.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.senders_waiting -= 1;
        }
        if !s.receiver_alive {
            return Err(item);
        }
        self.push(&mut s, item, urgent);
        Ok(())
    }

    /// Queues an item, waiting (without blocking the thread) while the queue
    /// is full. Gives the item back if the receiver is gone.
    pub(crate) async fn send_async(&self, item: T) -> Result<(), T> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a writer that empties the
            // queue between the check and the wait still wakes this sender.
            room.as_mut().enable();
            {
                let mut s = self.lock();
                if !s.receiver_alive {
                    return Err(item);
                }
                if s.items.len() < self.capacity {
                    self.push(&mut s, item, false);
                    return Ok(());
                }
                s.async_waiting = true;
            }
            room.await;
        }
    }

    fn push(&self, s: &mut State<T>, item: T, urgent: bool) {
        let first = s.items.is_empty();
        if first {
            s.oldest = Some(Instant::now());
        }
        s.items.push(item);
        s.urgent |= urgent;
        // The first item lets a parked writer start its batch clock.
        if s.receiver_waiting && (first || urgent || s.items.len() >= self.wake_at) {
            self.writer.notify_one();
        }
    }

    /// Waits until a batch is worth taking (see the module doc), `deadline`
    /// passes, or the queue is closed; moves the waiting items into `out`.
    pub(crate) fn take(
        &self,
        out: &mut Vec<T>,
        deadline: Option<Instant>,
        max_age: Duration,
    ) -> Taken {
        let mut s = self.lock();
        loop {
            let now = Instant::now();
            let aged_at = s.oldest.map(|t| t + max_age);
            let timed_out = deadline.is_some_and(|d| now >= d);
            if !s.items.is_empty()
                && (s.items.len() >= self.wake_at
                    || s.urgent
                    || s.senders == 0
                    || timed_out
                    || aged_at.is_some_and(|a| now >= a))
            {
                std::mem::swap(out, &mut s.items);
                let oldest = s.oldest.take().unwrap_or(now);
                s.urgent = false;
                if s.senders_waiting > 0 {
                    self.senders.notify_all();
                }
                if s.async_waiting {
                    s.async_waiting = false;
                    self.room.notify_waiters();
                }
                return Taken::Items(oldest);
            }
            if s.items.is_empty() && s.senders == 0 {
                return Taken::Closed;
            }
            if timed_out {
                return Taken::Timeout;
            }
            let wake = match (deadline, aged_at) {
                (Some(d), Some(a)) => Some(d.min(a)),
                (d, a) => d.or(a),
            };
            s.receiver_waiting = true;
            s = match wake {
                Some(w) => {
                    self.writer
                        .wait_timeout(s, w.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self.writer.wait(s).unwrap_or_else(PoisonError::into_inner),
            };
            s.receiver_waiting = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const AGE: Duration = Duration::from_secs(60);

    fn take_all(q: &Queue<u32>, deadline: Option<Instant>, age: Duration) -> (Taken, Vec<u32>) {
        let mut out = Vec::new();
        let taken = q.take(&mut out, deadline, age);
        (taken, out)
    }

    #[test]
    fn state_queue_wakes_per_batch_deadline_age_or_flush() {
        let q = Queue::new(8, 3);
        for i in 1..=3 {
            q.send(i, false).unwrap();
        }
        let (taken, out) = take_all(&q, None, AGE);
        assert!(matches!(taken, Taken::Items(_)));
        assert_eq!(out, [1, 2, 3]);

        // Nothing waiting: the deadline ends the wait.
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(take_all(&q, Some(soon), AGE).0, Taken::Timeout);

        // Fewer than `wake_at`: taken at the deadline, or once old enough.
        q.send(4, false).unwrap();
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(take_all(&q, Some(soon), AGE).1, [4]);
        q.send(5, false).unwrap();
        assert_eq!(take_all(&q, None, Duration::from_millis(10)).1, [5]);

        // An urgent item is taken at once.
        q.send(6, false).unwrap();
        q.send(7, true).unwrap();
        assert_eq!(take_all(&q, None, AGE).1, [6, 7]);

        // The last sender leaving releases what is left, then closes.
        q.send(8, false).unwrap();
        q.remove_sender();
        assert_eq!(take_all(&q, None, AGE).1, [8]);
        assert_eq!(take_all(&q, None, AGE).0, Taken::Closed);
    }

    #[test]
    fn state_queue_blocks_full_senders_and_fails_them_when_closed() {
        let q = Arc::new(Queue::new(2, 2));
        q.add_sender();
        let sender = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                for i in 0..100 {
                    q.send(i, false).unwrap();
                }
                q.remove_sender();
            })
        };
        let mut got = Vec::new();
        loop {
            let (taken, out) = take_all(&q, None, Duration::from_millis(5));
            if taken == Taken::Closed {
                break;
            }
            assert!(out.len() <= 2);
            got.extend(out);
            if got.len() == 100 {
                q.remove_sender();
            }
        }
        sender.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());

        let q = Arc::new(Queue::new(1, 1));
        q.send(1, false).unwrap();
        let blocked = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || q.send(2, false))
        };
        std::thread::sleep(Duration::from_millis(20));
        q.close_receiver();
        assert_eq!(blocked.join().unwrap(), Err(2));
        assert_eq!(q.send(3, false), Err(3));
    }

    #[tokio::test]
    async fn state_queue_async_sender_waits_for_room_in_order() {
        let q = Arc::new(Queue::new(2, 2));
        let taker = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let (taken, out) = take_all(&q, None, Duration::from_millis(5));
                    if taken == Taken::Closed {
                        return got;
                    }
                    assert!(out.len() <= 2);
                    got.extend(out);
                }
            })
        };
        for i in 0..100 {
            q.send_async(i).await.unwrap();
        }
        q.remove_sender();
        assert_eq!(taker.join().unwrap(), (0..100).collect::<Vec<_>>());
        q.close_receiver();
        assert_eq!(q.send_async(7).await, Err(7));
    }
}
