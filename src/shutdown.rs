//! Stopping on request, as a value the pipeline can pass around.
//!
//! The first Ctrl-C (or SIGTERM, as sent by systemd and Kubernetes, or
//! SIGHUP, when the terminal or SSH session closes) asks the run to stop: no
//! new rows are read or sent, requests already in flight may finish within
//! the grace period, everything finished is committed, and the run can be
//! resumed. A second Ctrl-C or SIGTERM stops at once: SQLite's transactions
//! keep the state file consistent, and the rows whose answer was not
//! committed are simply sent again on resume.

use tokio_util::sync::CancellationToken;

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

    /// Listens for Ctrl-C, SIGTERM and SIGHUP for the rest of the process's
    /// life. The handlers are in place when this returns, not when a task
    /// first runs: a signal that arrives as the run starts (a closed
    /// terminal, a scheduler stopping a pod) must find them, or its default
    /// action ends the process without a clean stop.
    pub fn listen_for_signals(&self) {
        let token = self.token.clone();
        let mut signals = Signals::register();
        tokio::spawn(async move {
            let mut stopping = false;
            loop {
                let Some(signal) = signals.next().await else {
                    return;
                };
                if !stopping {
                    stopping = true;
                    crate::logs::notice(crate::logs::Level::Warn, signal.stopping());
                    token.cancel();
                } else if signal != Signal::Hangup {
                    crate::logs::notice(
                        crate::logs::Level::Warn,
                        "\nStopped at once. Run the same command again to resume.",
                    );
                    std::process::exit(crate::exit::Exit::Resumable.code());
                }
            }
        });
    }
}

/// The signals that stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// systemd, Kubernetes, `kill`.
    Terminate,
    /// The terminal went away: a closed SSH session or terminal window. It
    /// stops the run cleanly like SIGTERM, never at once: the kernel and the
    /// shell may both send it, and nobody is left to mean "now".
    Hangup,
}

impl Signal {
    fn stopping(self) -> &'static str {
        match self {
            Signal::Hangup => {
                "\nStopping: the terminal closed (SIGHUP); no new requests; waiting for those in flight."
            }
            _ => {
                "\nStopping: no new requests; waiting for those in flight. Press Ctrl-C again to stop at once."
            }
        }
    }
}

/// The signal streams, registered with the OS once.
struct Signals {
    #[cfg(unix)]
    unix: Option<UnixSignals>,
}

#[cfg(unix)]
struct UnixSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    /// `None` under `nohup`: the run is meant to outlive the terminal, and
    /// listening would replace the ignoring it inherited.
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers now (inside the runtime, on the caller's thread).
    fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(interrupt), Ok(terminate)) => Some(UnixSignals {
                    interrupt,
                    terminate,
                    hangup: match hangup_ignored() {
                        true => None,
                        false => signal(SignalKind::hangup()).ok(),
                    },
                }),
                _ => None,
            };
            Signals { unix }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal; `None` if signals cannot be listened to.
    async fn next(&mut self) -> Option<Signal> {
        #[cfg(unix)]
        {
            let Some(s) = self.unix.as_mut() else {
                return ctrl_c().await;
            };
            let hangup = async {
                match s.hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = s.interrupt.recv() => r.map(|()| Signal::Interrupt),
                r = s.terminate.recv() => r.map(|()| Signal::Terminate),
                r = hangup => r.map(|()| Signal::Hangup),
            }
        }
        #[cfg(not(unix))]
        {
            ctrl_c().await
        }
    }
}

/// Ctrl-C alone, where the other signals cannot be listened to.
async fn ctrl_c() -> Option<Signal> {
    tokio::signal::ctrl_c()
        .await
        .ok()
        .map(|()| Signal::Interrupt)
}

/// Whether the process started with SIGHUP ignored (`nohup`), as the
/// kernel reports it. Where that cannot be read, SIGHUP is listened to.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        // Signal n is bit n - 1; SIGHUP is 1.
        .is_some_and(|mask| mask & 1 != 0)
}
