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
//! reader tags each row with the commit watermark its lookup saw).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::change::{Change, Fingerprint};
use crate::client::Client;
use crate::outcome::{Outcome, RowRecord, now_millis};
use crate::send::{Target, send};
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

/// A finished row for the state writer, with its ledger sequence when it
/// changes the ledger (applied rows).
pub type Record = (RowRecord, Option<u64>);

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
}

/// What the dispatcher leaves behind.
#[derive(Debug, Default, Clone, Copy)]
pub struct DispatchReport {
    /// Rows not finished: their vendor was stopped, or the run was interrupted.
    pub pending: u64,
    /// Rows a dry run would send.
    pub would_send: u64,
}

struct Recent {
    map: HashMap<u64, (Applied, u64)>,
    order: VecDeque<(u64, u64)>,
}

impl Recent {
    /// Forgets rows whose commit every later lookup will see.
    fn prune(&mut self, watermark: u64) {
        while let Some(&(seq, key)) = self.order.front() {
            if seq > watermark {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|(_, s)| *s == seq) {
                self.map.remove(&key);
            }
        }
    }
}

impl Dispatcher {
    /// Runs until the reader is done and every admitted row has ended.
    /// Finished rows go to `records` in the order they finish.
    pub async fn run(
        self,
        mut rows: mpsc::Receiver<Ready>,
        records: mpsc::Sender<Record>,
    ) -> DispatchReport {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut queues: HashMap<u64, VecDeque<Ready>> = HashMap::new();
        let mut recent = Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
        };
        let mut seq = 0u64;
        let mut admitted = 0usize;
        let mut reading = true;
        let mut report = DispatchReport::default();
        loop {
            if !reading && admitted == 0 {
                break;
            }
            let next = tokio::select! {
                biased;
                Some(done) = done_rx.recv() => Err(done),
                row = rows.recv(), if reading && admitted < self.window => Ok(row),
            };
            let mut start: Option<Ready> = match next {
                Ok(None) => {
                    reading = false;
                    None
                }
                Ok(Some(row)) => {
                    recent.prune(row.watermark);
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
                            seq += 1;
                            let a = Applied {
                                fingerprint: done.fingerprint,
                                applied_at: rec.finished_at,
                            };
                            recent.map.insert(done.key, (a, seq));
                            recent.order.push_back((seq, done.key));
                            Some(seq)
                        } else {
                            None
                        };
                        self.tally.add(rec.vendor, rec.outcome);
                        if records.send((rec, ledger_seq)).await.is_err() {
                            self.stop.cancel();
                        }
                    } else {
                        report.pending += 1;
                    }
                    self.next_for(&mut queues, done.key, pending, &mut admitted, &mut report)
                }
            };
            // Start the row, and while rows end at once (unchanged, dry run)
            // go on down their invite's queue.
            while let Some(row) = start.take() {
                let key = row.change.key.hash;
                let known = recent.map.get(&key).map(|(a, _)| *a).or(row.ledger);
                let now = now_millis();
                if self.policy.already_applied(&row.change, known, now) || self.policy.dry_run {
                    let outcome = if self.policy.already_applied(&row.change, known, now) {
                        Outcome::Unchanged
                    } else {
                        report.would_send += 1;
                        Outcome::Updated
                    };
                    admitted -= 1;
                    let rec = record(&row, outcome, None, now);
                    self.tally.add(rec.vendor, rec.outcome);
                    if !self.policy.dry_run && records.send((rec, None)).await.is_err() {
                        self.stop.cancel();
                    }
                    start = self.next_for(&mut queues, key, false, &mut admitted, &mut report);
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
        queues: &mut HashMap<u64, VecDeque<Ready>>,
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
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            *admitted -= q.len();
            report.pending += q.len() as u64;
            queues.remove(&key);
            return None;
        }
        match q.pop_front() {
            Some(next) => Some(next),
            None => {
                queues.remove(&key);
                None
            }
        }
    }

    fn spawn(&self, row: Ready, done: mpsc::UnboundedSender<Done>) {
        let targets = self.targets.clone();
        let client = self.client.clone();
        let global = self.global.clone();
        let stop = self.stop.clone();
        let tally = self.tally.clone();
        tokio::spawn(async move {
            let key = row.change.key.hash;
            let fingerprint = row.change.fingerprint;
            let record = match targets.get(usize::from(row.change.vendor)) {
                Some(target) => send(target, &client, &global, &row.change, &stop, &tally)
                    .await
                    .map(|sent| {
                        let mut rec = record(&row, sent.outcome, sent.http_status, now_millis());
                        rec.attempts = sent.attempts;
                        rec.error = sent.reply.error;
                        rec.remote_id = sent.reply.remote_id;
                        rec.remote_updated_at = sent.reply.remote_updated_at;
                        rec
                    }),
                None => None,
            };
            if record.is_none() {
                tally
                    .vendor(Some(row.change.vendor))
                    .pending
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let _ = done.send(Done {
                key,
                record,
                fingerprint,
            });
        });
    }
}

fn record(row: &Ready, outcome: Outcome, http_status: Option<u16>, now: i64) -> RowRecord {
    RowRecord {
        index: row.index,
        line: row.line,
        vendor: Some(row.change.vendor),
        key: Some((row.change.key.text.clone(), row.change.key.hash)),
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
