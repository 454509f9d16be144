//! The dispatcher: admits planned rows in file order, keeps two changes to
//! one invite apart, and starts a task per row that may go.
//!
//! Per-invite order without holding the file: an invite with a row in flight
//! has a queue; later rows for it wait there while rows for other invites go
//! ahead. Rows admitted but unfinished (in flight, backing off, or queued
//! behind their invite) are bounded by a window, so memory stays flat on any
//! input; a file that is one invite repeated a million times degrades to one
//! row at a time, which is what order requires.
//!
//! The ledger decides `unchanged` when a row is started, not when it is read,
//! because an earlier row for the same invite may have been applied in
//! between. Rows applied during this run are remembered here until the state
//! writer has committed them and the reader's lookups can see them (the
//! reader tags each row with the commit watermark its lookup saw). An entry
//! outlives that point while its invite is busy: the rows queued behind it
//! were looked up before it was committed, so for them it is the only news.
//!
//! A dry run applies nothing and commits nothing, yet it should count a row
//! that repeats the change of the row before it as `unchanged`, as a real run
//! would. It remembers the changes it would have sent for as long as a real
//! run keeps rows admitted (the window), which covers a file's repeats
//! unless they lie further apart than that, and keeps memory flat.
//!
//! When the ledger is empty as a run starts (a first run, the usual case for
//! a migration), the only entries it can come to hold are this run's own:
//! the dispatcher marks each applied key in [`AppliedKeys`], and the reader
//! looks up only marked keys instead of asking SQLite about every row.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::change::{Change, Fingerprint, KeyMap};
use crate::client::Client;
use crate::outcome::{Outcome, RowRecord, now_millis};
use crate::send::{Target, send};
use crate::state::WriterHandle;
use crate::tally::Tally;

/// The last applied change of an invite, as the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub fingerprint: Fingerprint,
    /// Unix milliseconds.
    pub applied_at: i64,
}

/// A valid row on its way in.
#[derive(Debug)]
pub struct Ready {
    pub index: u64,
    pub line: u64,
    pub change: Change,
    /// What the ledger held for the invite when the row was read.
    pub ledger: Option<Applied>,
    /// The writer's committed ledger sequence when that lookup was made.
    pub watermark: u64,
}

/// How `unchanged` is decided.
#[derive(Debug, Clone, Copy, Default)]
pub struct LedgerPolicy {
    /// `--force`: send even when the ledger has the change.
    pub force: bool,
    /// `--recheck-after`: send again when the ledger entry is older than this.
    pub recheck_after: Option<Duration>,
    /// `--dry-run`: decide, count, send nothing.
    pub dry_run: bool,
}

impl LedgerPolicy {
    fn already_applied(&self, change: &Change, known: Option<Applied>, now: i64) -> bool {
        let Some(a) = known else { return false };
        if self.force || a.fingerprint != change.fingerprint {
            return false;
        }
        match self.recheck_after {
            Some(age) => now.saturating_sub(a.applied_at) < age.as_millis() as i64,
            None => true,
        }
    }
}

/// The keys applied during this run, one bit per key hash (false
/// positives, never false negatives): a key whose bit is clear has no ledger
/// entry from this run. A key is marked before its row goes to the state
/// writer, so every row committed by the time the reader reads the writer's
/// watermark is marked by then too, and a reader that reads the watermark
/// first and the mark second still sees every entry up to the watermark,
/// which is all the dispatcher relies on.
#[derive(Debug)]
pub struct AppliedKeys {
    bits: Box<[AtomicU64]>,
    shift: u32,
}

impl AppliedKeys {
    /// 2^23 bits (1 MiB): a million applied keys mark about a tenth of them.
    pub fn new() -> Self {
        Self::with_bits_log2(23)
    }

    /// 2^`log2` bits (at least 64).
    pub fn with_bits_log2(log2: u32) -> Self {
        let log2 = log2.clamp(6, 32);
        AppliedKeys {
            bits: (0..1usize << (log2 - 6))
                .map(|_| AtomicU64::new(0))
                .collect(),
            shift: 64 - log2,
        }
    }

    /// The hash's high bits: `--shard` takes `hash % n`, which would crowd a
    /// shard's keys into a fraction of the low bits.
    fn slot(&self, hash: u64) -> (usize, u64) {
        let bit = hash >> self.shift;
        ((bit / 64) as usize, 1 << (bit % 64))
    }

    pub fn insert(&self, hash: u64) {
        let (word, mask) = self.slot(hash);
        self.bits[word].fetch_or(mask, Ordering::Release);
    }

    /// False only if `hash` was never inserted.
    pub fn may_contain(&self, hash: u64) -> bool {
        let (word, mask) = self.slot(hash);
        self.bits[word].load(Ordering::Acquire) & mask != 0
    }
}

impl Default for AppliedKeys {
    fn default() -> Self {
        Self::new()
    }
}

struct Done {
    key: u64,
    record: Option<RowRecord>,
    fingerprint: Fingerprint,
}

/// The pipeline's middle stage; see the module docs.
pub struct Dispatcher {
    pub targets: Arc<Vec<Target>>,
    pub client: Client,
    pub global: Arc<Semaphore>,
    pub stop: CancellationToken,
    pub tally: Arc<Tally>,
    pub policy: LedgerPolicy,
    /// Rows admitted and not yet finished, at most.
    pub window: usize,
    /// Where applied keys are marked, when the run started with an empty ledger.
    pub applied_keys: Option<Arc<AppliedKeys>>,
}

/// What the dispatcher leaves behind.
#[derive(Debug, Default, Clone)]
pub struct DispatchReport {
    /// Rows not finished: their vendor was stopped, or the run was interrupted.
    pub pending: u64,
    /// Rows a dry run would send.
    pub would_send: u64,
    /// Why the state writer stopped taking rows, if it did (the run stops).
    pub writer_failed: Option<String>,
}

/// Where finished rows go: the state writer, straight from the dispatcher.
struct Records<'a> {
    writer: Option<WriterHandle>,
    stop: &'a CancellationToken,
}

impl Records<'_> {
    async fn send(&self, rec: RowRecord, ledger_seq: Option<u64>, report: &mut DispatchReport) {
        let Some(w) = &self.writer else { return };
        if report.writer_failed.is_some() {
            return;
        }
        if let Err(e) = w.record_async(rec, ledger_seq).await {
            report.writer_failed = Some(e.to_string());
            self.stop.cancel();
        }
    }
}

/// Invites with a row in flight, each with the rows queued behind it.
type Queues = KeyMap<VecDeque<Ready>>;

/// Changes applied (or, in a dry run, that would be) during this run, per
/// invite key, with their ledger sequence numbers.
#[derive(Default)]
struct Recent {
    map: KeyMap<(Applied, u64)>,
    order: VecDeque<(u64, u64)>,
    /// The highest watermark of a row admitted so far: rows admitted from
    /// now on looked the ledger up after every sequence up to it was committed.
    seen: u64,
}

impl Recent {
    fn remember(&mut self, key: u64, applied: Applied, seq: u64) {
        self.map.insert(key, (applied, seq));
        self.order.push_back((seq, key));
    }

    /// Forgets rows whose commit every later lookup will see, except those
    /// of busy invites: a row queued behind one may have been looked up
    /// before the commit. [`Recent::idle`] forgets those later.
    fn prune(&mut self, watermark: u64, busy: &Queues) {
        self.seen = self.seen.max(watermark);
        while let Some(&(seq, key)) = self.order.front() {
            if seq > self.seen {
                break;
            }
            self.order.pop_front();
            if !busy.contains_key(&key) && self.map.get(&key).is_some_and(|(_, s)| *s == seq) {
                self.map.remove(&key);
            }
        }
    }

    /// The invite `key` has nothing in flight or queued any more. Its entry
    /// goes if every later lookup sees it; otherwise it is still in `order`
    /// and a later [`Recent::prune`] takes it.
    fn idle(&mut self, key: u64) {
        if self.map.get(&key).is_some_and(|(_, s)| *s <= self.seen) {
            self.map.remove(&key);
        }
    }
}

impl Dispatcher {
    /// Runs until the reader is done and every admitted row has ended.
    /// Finished rows go to the state writer in the order they finish.
    pub async fn run(
        self,
        rows: mpsc::Receiver<Vec<Ready>>,
        writer: Option<WriterHandle>,
    ) -> DispatchReport {
        Arc::new(self).dispatch(rows, writer).await
    }

    async fn dispatch(
        self: Arc<Self>,
        mut rows: mpsc::Receiver<Vec<Ready>>,
        writer: Option<WriterHandle>,
    ) -> DispatchReport {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut queues = Queues::default();
        let mut recent = Recent::default();
        let mut seq = 0u64;
        let mut admitted = 0usize;
        let mut reading = true;
        let mut report = DispatchReport::default();
        // The reader hands rows over in batches (one wake-up per batch, not
        // per row); they wait here until the window lets them in.
        let mut batch: VecDeque<Ready> = VecDeque::new();
        let records = Records {
            writer,
            stop: &self.stop,
        };
        loop {
            if !reading && admitted == 0 && batch.is_empty() {
                break;
            }
            let next = match done_rx.try_recv() {
                Ok(done) => Err(done),
                Err(_) if admitted < self.window && !batch.is_empty() => Ok(batch.pop_front()),
                Err(_) => tokio::select! {
                    biased;
                    Some(done) = done_rx.recv() => Err(done),
                    rows = rows.recv(), if reading && admitted < self.window => {
                        match rows {
                            Some(rows) => {
                                batch.extend(rows);
                                continue;
                            }
                            None => Ok(None),
                        }
                    }
                },
            };
            let mut start: Option<Ready> = match next {
                Ok(None) => {
                    reading = false;
                    None
                }
                Ok(Some(row)) => {
                    recent.prune(row.watermark, &queues);
                    admitted += 1;
                    match queues.get_mut(&row.change.key.hash) {
                        Some(q) => {
                            q.push_back(row);
                            None
                        }
                        None => {
                            queues.insert(row.change.key.hash, VecDeque::new());
                            Some(row)
                        }
                    }
                }
                Err(done) => {
                    admitted -= 1;
                    let applied = done
                        .record
                        .as_ref()
                        .is_some_and(|r| r.outcome == Outcome::Updated);
                    let pending = done.record.is_none();
                    if let Some(rec) = done.record {
                        let ledger_seq = if applied {
                            if let Some(marks) = &self.applied_keys {
                                marks.insert(done.key);
                            }
                            seq += 1;
                            let a = Applied {
                                fingerprint: done.fingerprint,
                                applied_at: rec.finished_at,
                            };
                            recent.remember(done.key, a, seq);
                            Some(seq)
                        } else {
                            None
                        };
                        self.tally.add(rec.vendor, rec.outcome);
                        records.send(rec, ledger_seq, &mut report).await;
                    } else {
                        report.pending += 1;
                    }
                    self.next_for(
                        &mut queues,
                        &mut recent,
                        done.key,
                        pending,
                        &mut admitted,
                        &mut report,
                    )
                }
            };
            // Start the row, and while rows end at once (unchanged, dry run)
            // go on down their invite's queue.
            while let Some(row) = start.take() {
                let key = row.change.key.hash;
                let known = recent.map.get(&key).map(|(a, _)| *a).or(row.ledger);
                let now = now_millis();
                let unchanged = self.policy.already_applied(&row.change, known, now);
                if unchanged || self.policy.dry_run {
                    let outcome = if unchanged {
                        Outcome::Unchanged
                    } else {
                        report.would_send += 1;
                        // What a real run would now hold for the invite.
                        seq += 1;
                        let a = Applied {
                            fingerprint: row.change.fingerprint,
                            applied_at: now,
                        };
                        recent.remember(key, a, seq);
                        recent.prune(seq.saturating_sub(self.window as u64), &queues);
                        Outcome::Updated
                    };
                    admitted -= 1;
                    let rec = record(row, outcome, None, now);
                    self.tally.add(rec.vendor, rec.outcome);
                    if !self.policy.dry_run {
                        records.send(rec, None, &mut report).await;
                    }
                    start = self.next_for(
                        &mut queues,
                        &mut recent,
                        key,
                        false,
                        &mut admitted,
                        &mut report,
                    );
                    continue;
                }
                self.spawn(row, done_tx.clone());
            }
        }
        report
    }

    /// The next row queued behind `key`, or none (and the invite is free).
    /// After a pending row, the rows behind it stay pending too: applying them
    /// first would reorder the invite's changes.
    fn next_for(
        &self,
        queues: &mut Queues,
        recent: &mut Recent,
        key: u64,
        pending: bool,
        admitted: &mut usize,
        report: &mut DispatchReport,
    ) -> Option<Ready> {
        let q = queues.get_mut(&key)?;
        if pending {
            for row in q.iter() {
                self.tally
                    .vendor(Some(row.change.vendor))
                    .pending
                    .fetch_add(1, Ordering::Relaxed);
            }
            *admitted -= q.len();
            report.pending += q.len() as u64;
            queues.remove(&key);
            recent.idle(key);
            return None;
        }
        match q.pop_front() {
            Some(next) => Some(next),
            None => {
                queues.remove(&key);
                recent.idle(key);
                None
            }
        }
    }

    /// One task per row, holding one reference to the dispatcher (the
    /// targets, client, slots and tally it shares with every other row).
    fn spawn(self: &Arc<Self>, row: Ready, done: mpsc::UnboundedSender<Done>) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let key = row.change.key.hash;
            let fingerprint = row.change.fingerprint;
            let vendor = row.change.vendor;
            let record = match me.targets.get(usize::from(row.change.vendor)) {
                Some(target) => send(
                    target,
                    &me.client,
                    &me.global,
                    &row.change,
                    &me.stop,
                    &me.tally,
                )
                .await
                .map(|sent| {
                    let mut rec = record(row, sent.outcome, sent.http_status, now_millis());
                    rec.attempts = sent.attempts;
                    rec.error = sent.reply.error;
                    rec.remote_id = sent.reply.remote_id;
                    rec.remote_updated_at = sent.reply.remote_updated_at;
                    rec
                }),
                None => None,
            };
            if record.is_none() {
                me.tally
                    .vendor(Some(vendor))
                    .pending
                    .fetch_add(1, Ordering::Relaxed);
            }
            let _ = done.send(Done {
                key,
                record,
                fingerprint,
            });
        });
    }
}

/// The row's record, taking its key's text (the row ends here).
fn record(row: Ready, outcome: Outcome, http_status: Option<u16>, now: i64) -> RowRecord {
    RowRecord {
        index: row.index,
        line: row.line,
        vendor: Some(row.change.vendor),
        key: Some((row.change.key.text, row.change.key.hash)),
        fingerprint: Some(row.change.fingerprint),
        outcome,
        http_status,
        attempts: 0,
        error: None,
        remote_id: None,
        remote_updated_at: None,
        finished_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Fingerprint;

    fn applied(n: u8) -> Applied {
        Applied {
            fingerprint: Fingerprint([n; 16]),
            applied_at: 0,
        }
    }

    #[test]
    fn applied_keys_never_forget() {
        let marks = AppliedKeys::with_bits_log2(10);
        let keys: Vec<u64> = (0..200u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for k in &keys[..100] {
            marks.insert(*k);
        }
        assert!(keys[..100].iter().all(|k| marks.may_contain(*k)));
        let false_positives = keys[100..]
            .iter()
            .filter(|k| marks.may_contain(**k))
            .count();
        assert!(false_positives < 30, "{false_positives} of 100");
        // Keys of one shard share their low bits (`hash % n`); the marks are
        // taken from the high bits, so such keys still spread out.
        let marks = AppliedKeys::with_bits_log2(10);
        marks.insert(4 << 60);
        assert!(!marks.may_contain(5 << 60));
        assert!(!AppliedKeys::new().may_contain(u64::MAX));
    }

    #[test]
    fn a_busy_invite_keeps_its_entry_until_it_is_idle() {
        let mut recent = Recent::default();
        let mut busy = Queues::default();
        busy.insert(7, VecDeque::new());
        recent.remember(7, applied(1), 1);
        recent.remember(8, applied(2), 2);
        // Committed and seen by every later lookup, but 7 has rows queued
        // that were looked up before: only 8 may go.
        recent.prune(2, &busy);
        assert!(recent.map.contains_key(&7));
        assert!(!recent.map.contains_key(&8));
        busy.remove(&7);
        recent.idle(7);
        assert!(recent.map.is_empty());
    }

    #[test]
    fn an_idle_invite_keeps_an_entry_no_lookup_has_seen() {
        let mut recent = Recent::default();
        let busy = Queues::default();
        recent.prune(1, &busy);
        recent.remember(7, applied(1), 2);
        recent.idle(7);
        assert!(recent.map.contains_key(&7), "sequence 2 is not committed");
        recent.prune(1, &busy);
        assert!(recent.map.contains_key(&7));
        recent.prune(2, &busy);
        assert!(recent.map.is_empty());
        assert!(recent.order.is_empty());
    }

    #[test]
    fn a_newer_entry_outlives_the_older_one_of_its_invite() {
        let mut recent = Recent::default();
        let busy = Queues::default();
        recent.remember(7, applied(1), 1);
        recent.remember(7, applied(2), 2);
        recent.prune(1, &busy);
        assert_eq!(recent.map.get(&7).map(|(a, _)| *a), Some(applied(2)));
    }
}
