//! The pipeline's threads and tasks, started and joined: the reader thread,
//! the dispatcher and its per-row tasks on the runtime, the state writer's
//! thread (docs/ARCHITECTURE.md, "Data flow").

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{Semaphore, mpsc};

use super::prepare::Prepared;
use super::{JobError, RunOptions};
use crate::dispatch::{AppliedKeys, DispatchReport, Dispatcher, LedgerPolicy, Ready};
use crate::latency::Latency;
use crate::progress::{Expected, Progress};
use crate::shutdown::Shutdown;
use crate::state::{LedgerReader, StateError, Writer, WriterStats};
use crate::tally::Tally;

/// How the pipeline ended.
pub(super) struct Ended {
    pub report: DispatchReport,
    pub tally: Arc<Tally>,
    /// `vendor: why` for each vendor whose circuit opened.
    pub stopped: Vec<String>,
    /// Stopped on request (a signal) or cut short after the grace period.
    pub interrupted: bool,
    /// Round-trip percentiles per vendor name, in config order.
    pub latency: Vec<(String, Latency)>,
    /// Rows left unsent by this attempt.
    pub pending_live: u64,
    /// The state writer, every row committed, closing its connection and its
    /// checkpoint thread on its way out.
    pub writer: Option<WriterThread>,
}

/// The state writer's thread after its last row: joined by
/// [`WriterThread::join`] before the run is recorded finished, and by drop
/// on every other way out, so the process never ends in the middle of the
/// writer's last transaction.
pub(super) struct WriterThread(Option<std::thread::JoinHandle<Result<WriterStats, StateError>>>);

impl WriterThread {
    /// Waits for the writer to end; its error, if it had one.
    pub(super) fn join(mut self) -> Result<(), String> {
        self.0.take().map_or(Ok(()), join_writer)
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = join_writer(thread);
        }
    }
}

fn join_writer(
    thread: std::thread::JoinHandle<Result<WriterStats, StateError>>,
) -> Result<(), String> {
    match thread.join() {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the state writer stopped unexpectedly".into()),
    }
}

/// Sends every row `p` leaves to send; an error is a problem of the state
/// file or of the pipeline's own threads, never of a row.
pub(super) async fn run(
    opts: &RunOptions,
    p: &mut Prepared,
    shutdown: &Shutdown,
) -> Result<Ended, JobError> {
    let targets = p.targets.clone();
    let tally = Arc::new(Tally::new(targets.len()));
    let stop = shutdown.token();

    let writer = match (p.run_id, &p.state) {
        (Some(id), Some(_)) => Some(
            Writer::spawn(&p.state_path, id, p.names.clone())
                .map_err(|e| stopped_on(e.to_string(), p.state.as_ref()))?,
        ),
        _ => None,
    };
    let ledger = if p.state_path.exists() {
        Some(
            LedgerReader::open(&p.state_path)
                .map_err(|e| stopped_on(e.to_string(), p.state.as_ref()))?,
        )
    } else {
        None
    };
    // An empty ledger can only come to hold this run's own changes: they are
    // marked as they are applied, and only marked keys are looked up.
    let applied_keys = match &ledger {
        Some(l)
            if l.is_empty()
                .map_err(|e| stopped_on(e.to_string(), p.state.as_ref()))? =>
        {
            Some(Arc::new(AppliedKeys::new()))
        }
        _ => None,
    };
    let done = std::mem::take(&mut p.done);
    let expected = Expected {
        total: p.total_rows,
        done_before: done.len(),
        shards: opts.shard.map_or(1, |(_, n)| n),
    };
    let progress = Progress::start(
        opts.progress,
        tally.clone(),
        targets.clone(),
        expected,
        opts.dry_run,
    );
    if let Some(metrics) = &opts.metrics {
        metrics.watch(
            &p.config,
            tally.clone(),
            targets.clone(),
            expected,
            opts.progress,
        );
    }

    // Batches of rows: 16 of 64 is the 1,024 rows the reader may run ahead.
    let (row_tx, row_rx) = mpsc::channel::<Vec<Ready>>(16);
    let writer_handle = writer.as_ref().map(|(h, _)| h.clone());

    // Reader thread: parse, plan, look up the ledger, hand on.
    let reader = {
        let input = opts.input.clone();
        let layout = p.layout.clone();
        let targets = targets.clone();
        let tally = tally.clone();
        let stop = stop.clone();
        let writer = writer_handle.clone();
        let shard = opts.shard;
        let ledger = ledger.map(|reader| crate::reader::Ledger {
            reader,
            marked: applied_keys.clone(),
        });
        std::thread::Builder::new()
            .name("invitesync-reader".into())
            .spawn(move || {
                crate::reader::read_rows(
                    &input, &layout, &targets, done, ledger, writer, shard, row_tx, &stop, &tally,
                )
            })
            .map_err(|e| stopped_on(format!("cannot start the reader: {e}"), None))?
    };

    let dispatcher = Dispatcher {
        targets: targets.clone(),
        client: p.client.clone(),
        global: Arc::new(Semaphore::new(p.concurrency)),
        stop: stop.clone(),
        tally: tally.clone(),
        policy: LedgerPolicy {
            force: opts.force,
            recheck_after: opts.recheck_after,
            dry_run: opts.dry_run,
        },
        window: (p.concurrency * 16).clamp(1024, 16384),
        applied_keys,
    };
    let grace = p.config.run.grace_period;
    // On the runtime's workers rather than on this thread (which, under the
    // CLI's block_on, is not one of them): the tasks the dispatcher starts
    // and the answers they send back then mostly stay on one worker instead
    // of waking another thread for every row.
    let mut dispatch = tokio::spawn(dispatcher.run(row_rx, writer_handle));
    let mut cut_short = false;
    let report = tokio::select! {
        r = &mut dispatch => match r {
            Ok(report) => report,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => DispatchReport::default(),
        },
        _ = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
            dispatch.abort();
            cut_short = true;
            DispatchReport::default()
        }
    };
    let read_problem = reader
        .join()
        .unwrap_or_else(|_| Err("the reader stopped unexpectedly".into()));
    let forward_problem = match &report.writer_failed {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    };
    // Every row committed, the writer is let go: it ends (its connection
    // and its checkpoint thread closed) while the results are written; the
    // ledger journal it leaves is the next writer's to merge
    // (docs/ARCHITECTURE.md, "The runner's cost").
    let mut writer_problem = None;
    let mut writer_thread = None;
    if let Some((handle, thread)) = writer {
        let committed = handle.flush();
        drop(handle);
        match committed {
            Ok(()) => writer_thread = Some(WriterThread(Some(thread))),
            Err(e) => writer_problem = Some(join_writer(thread).err().unwrap_or(e.to_string())),
        }
    }
    progress.finish().await;
    // The writer's own error first: the others only say that it stopped.
    if let Some(problem) = [writer_problem, read_problem.err(), forward_problem.err()]
        .into_iter()
        .flatten()
        .next()
    {
        return Err(stopped_on(problem, p.state.as_ref()));
    }

    let stopped: Vec<String> = targets
        .iter()
        .filter_map(|t| t.circuit.reason().map(|r| format!("{}: {r}", t.name)))
        .collect();
    let interrupted = shutdown.is_requested() || cut_short;
    let latency: Vec<(String, Latency)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.latency.snapshot()))
        .collect();
    let pending_live: u64 = targets
        .iter()
        .map(|t| tally.vendor(Some(t.id)).pending.load(Ordering::Relaxed))
        .sum();

    Ok(Ended {
        report,
        tally,
        stopped,
        interrupted,
        latency,
        pending_live,
        writer: writer_thread,
    })
}

/// A run that stopped on a problem of the state file or of its own threads.
/// If the file turns out damaged, running again cannot help (exit 2, and
/// what to do); otherwise what was committed is safe and a resume goes on
/// (exit 3), which a scheduler may retry once the disk is fixed.
pub(super) fn stopped_on(problem: String, state: Option<&crate::state::StateFile>) -> JobError {
    if let Some(Err(e)) = state.map(crate::state::StateFile::check)
        && e.is_damaged()
    {
        return super::usage(e.to_string());
    }
    // The state file's own hint may already say to run again (a full disk).
    let message = if problem.ends_with("to resume") {
        format!("{problem} (what was committed is safe)")
    } else {
        format!("{problem}; what was committed is safe: run the same command again to resume")
    };
    JobError {
        code: crate::exit::Exit::Resumable.code(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::stopped_on;

    #[test]
    fn a_stop_says_to_run_again_once() {
        let full = stopped_on(
            "state file st.db: cannot commit rows: database or disk is full; free some disk \
             space, then run the same command again to resume"
                .into(),
            None,
        );
        assert_eq!(full.code, crate::exit::Exit::Resumable.code());
        assert_eq!(
            full.message.matches("run the same command again").count(),
            1
        );
        assert!(full.message.ends_with("(what was committed is safe)"));
        let other = stopped_on("the state writer stopped".into(), None);
        assert_eq!(
            other.message,
            "the state writer stopped; what was committed is safe: run the same command again to resume"
        );
    }
}
