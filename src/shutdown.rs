//! Stopping on request, as a value the pipeline can pass around.
//!
//! The first Ctrl-C (or SIGTERM, as sent by systemd and Kubernetes) asks the
//! run to stop: no new rows are read or sent, requests already in flight may
//! finish within the grace period, everything finished is committed, and the
//! run can be resumed. A second one stops at once: SQLite's transactions keep
//! the state file consistent, and the rows whose answer was not committed are
//! simply sent again on resume.

use tokio_util::sync::CancellationToken;

/// Exit code of a run that stopped early and can be resumed.
pub const EXIT_RESUMABLE: i32 = 3;

#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Listens for Ctrl-C and SIGTERM for the rest of the process's life.
    pub fn listen_for_signals(&self) {
        let token = self.token.clone();
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                if !next_signal().await {
                    return;
                }
                count += 1;
                if count == 1 {
                    crate::logs::notice(
                        crate::logs::Level::Warn,
                        "\nStopping: no new requests; waiting for those in flight. Press Ctrl-C again to stop at once.",
                    );
                    token.cancel();
                } else {
                    crate::logs::notice(
                        crate::logs::Level::Warn,
                        "\nStopped at once. Run the same command again to resume.",
                    );
                    std::process::exit(EXIT_RESUMABLE);
                }
            }
        });
    }
}

/// Waits for Ctrl-C or SIGTERM; false if signals cannot be listened to.
async fn next_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            r = term.recv() => r.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
