//! Checkpointing the WAL off the writer's path.
//!
//! A checkpoint copies committed pages from the `-wal` file into the database
//! and fsyncs both. Left to SQLite's default (the committing connection
//! checkpoints every 1,000 pages), that fsync stalls the writer every 4 MB,
//! which measured as ~40 % of its time. So a helper thread with its own
//! connection runs passive checkpoints (they never block the writer) after
//! the writer's commits, at most every [`MIN_INTERVAL`].
//!
//! A passive checkpoint cannot catch up while commits keep arriving, and the
//! WAL restarts from its beginning only once it has, so the writer keeps a
//! large automatic checkpoint of its own ([`WRITER_AUTOCHECKPOINT_PAGES`]) as
//! a bound on the WAL's size; by then the helper has copied most pages, and
//! the writer's checkpoint only has the tail to do.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{Result, StateError};

/// The shortest time between two background checkpoints: each costs two
/// fsyncs, so they are worth grouping.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The writer's own checkpoint threshold, in pages (4 KiB): a WAL of 32 MiB.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8_192;

/// The helper thread; it ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    tx: Option<SyncSender<()>>,
    join: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn spawn(path: &Path) -> Result<Checkpointer> {
        let conn = super::connect(path)?;
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let join = std::thread::Builder::new()
            .name("state-checkpoint".into())
            .spawn(move || {
                let mut wanted = rx.recv().is_ok();
                while wanted {
                    // Failures are not fatal here: the writer's own checkpoint
                    // and commits report a disk that fails.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!("background checkpoint: {e}");
                    }
                    // Commits during the pause are folded into one more round.
                    wanted = false;
                    let until = Instant::now() + MIN_INTERVAL;
                    loop {
                        let left = until.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(()) => wanted = true,
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    if !wanted {
                        wanted = rx.recv().is_ok();
                    }
                }
            })
            .map_err(|e| StateError::io(path, "start the checkpoint thread for", e))?;
        Ok(Checkpointer {
            tx: Some(tx),
            join: Some(join),
        })
    }

    /// Asks for a checkpoint soon; never blocks.
    pub(crate) fn poke(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}
