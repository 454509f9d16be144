//! The reader thread: the first stage of the pipeline. It streams the input,
//! plans each row into a change (or an invalid record, which goes straight to
//! the state writer), skips what an earlier attempt finished or another
//! shard owns, looks the change up in the ledger and hands it on. It runs on
//! its own OS thread so that parsing and SQLite lookups never block the async
//! workers that send.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Applied, AppliedKeys, Ready};
use crate::input::{Layout, Reader};
use crate::outcome::{Outcome, RowRecord, now_millis};
use crate::plan::Router;
use crate::send::Target;
use crate::state::{DoneSet, LedgerReader, WriterHandle};
use crate::tally::Tally;

/// Rows handed to the dispatcher at once.
const BATCH: usize = 64;

/// The reader thread's ledger: the reader and, when the run started with an
/// empty ledger, the keys this run applied (no other key can have an entry).
pub struct Ledger {
    pub reader: LedgerReader,
    pub marked: Option<Arc<AppliedKeys>>,
}

/// The reader thread's work.
#[allow(clippy::too_many_arguments)]
pub fn read_rows(
    input: &Path,
    layout: &Layout,
    targets: &[Target],
    done: DoneSet,
    ledger: Option<Ledger>,
    writer: Option<WriterHandle>,
    shard: Option<(u32, u32)>,
    tx: mpsc::Sender<Vec<Ready>>,
    stop: &CancellationToken,
    tally: &Tally,
) -> Result<(), String> {
    let reader = Reader::open_as(input, layout).map_err(|e| e.0)?;
    let header = reader.header().clone();
    let router = Router::new(targets.iter().map(|t| (t.name.as_str(), &*t.adapter)));
    // Rows go to the dispatcher in batches: a hand-off wakes the other side,
    // and one wake-up per row cost more than planning the row.
    let mut batch = Vec::with_capacity(BATCH);
    for row in reader {
        if stop.is_cancelled() {
            break;
        }
        tally.read.fetch_add(1, Ordering::Relaxed);
        if done.contains(row.index) {
            tally.already_done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match router.plan(&header, &row) {
            Ok(change) => {
                if let Some(shard) = shard
                    && !crate::change::owns_row(shard, Some(&change.key), row.index)
                {
                    tally.elsewhere.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // The watermark before the mark: every entry up to it is
                // committed, so already marked.
                let watermark = writer.as_ref().map_or(0, |w| w.committed_ledger_seq());
                let known = match &ledger {
                    Some(l)
                        if l.marked
                            .as_ref()
                            .is_none_or(|m| m.may_contain(change.key.hash)) =>
                    {
                        l.reader
                            .get(change.key.hash)
                            .map_err(|e| e.to_string())?
                            .map(|e| Applied {
                                fingerprint: e.fingerprint,
                                applied_at: e.applied_at,
                            })
                    }
                    _ => None,
                };
                let ready = Ready {
                    index: row.index,
                    line: row.line,
                    change,
                    ledger: known,
                    watermark,
                };
                batch.push(ready);
                if batch.len() >= BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.blocking_send(full).is_err() {
                        return Ok(());
                    }
                }
            }
            Err(problem) => {
                if let Some(shard) = shard
                    && !crate::change::owns_row(shard, None, row.index)
                {
                    tally.elsewhere.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                tally.add(problem.vendor, Outcome::Invalid);
                let rec = RowRecord {
                    index: row.index,
                    line: row.line,
                    vendor: problem.vendor,
                    key: None,
                    fingerprint: None,
                    outcome: Outcome::Invalid,
                    http_status: None,
                    attempts: 0,
                    error: Some(format!("line {}: {}", row.line, problem.invalid)),
                    remote_id: None,
                    remote_updated_at: None,
                    finished_at: now_millis(),
                };
                if let Some(w) = &writer {
                    w.record(rec, None).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    if !batch.is_empty() && !stop.is_cancelled() {
        let _ = tx.blocking_send(batch);
    }
    Ok(())
}
