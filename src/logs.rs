//! What invitesync says on stderr, in the form its reader wants.
//!
//! People at a terminal get plain sentences; a log collector (`--log-format
//! json`, for cron mail parsers, journald forwarders, Kubernetes log
//! pipelines) gets one JSON object per line and nothing else, because a
//! single stray line of text breaks a parser that expects JSON on every line.
//! So every message meant for the operator goes through here: as text, or as
//! a `tracing` event that the JSON formatter turns into a line.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// The log filter when `RUST_LOG` is not set: invitesync's own events from
/// `info` up, and nothing from the libraries. Their lines (rustls refusing
/// a certificate, hyper losing a connection) speak of no vendor and repeat
/// per connection; what they mean reaches the operator once, from
/// invitesync, naming the vendor and what to do. `RUST_LOG` brings them back.
pub const DEFAULT_FILTER: &str = "off,invitesync=info";

/// Set once, when logging is set up (`--log-format`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// Whether stderr carries JSON lines only.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// How much a notice matters (the JSON line's `level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Tells the operator something: `text` as a line of its own on stderr, or,
/// under JSON logging, an event whose message is `text` (newlines and all,
/// escaped by the formatter).
pub fn notice(level: Level, text: &str) {
    if json() {
        let text = text.trim();
        match level {
            Level::Info => tracing::info!("{text}"),
            Level::Warn => tracing::warn!("{text}"),
            Level::Error => tracing::error!("{text}"),
        }
    } else {
        crate::progress::through::eprintln(text);
    }
}

/// Whether a command line asks for JSON logs, read before it is parsed, so
/// that even a usage error can be reported as JSON: `--log-format json`,
/// `--log-format=json`, or `INVITESYNC_LOG_FORMAT=json`.
pub fn json_requested<I, S>(args: I, env: Option<&str>) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut asked = env.map(|v| v.trim().eq_ignore_ascii_case("json"));
    let mut next_is_format = false;
    for a in args {
        let a = a.as_ref().to_string_lossy();
        if next_is_format {
            asked = Some(a.eq_ignore_ascii_case("json"));
            next_is_format = false;
        } else if a == "--log-format" {
            next_is_format = true;
        } else if let Some(v) = a.strip_prefix("--log-format=") {
            asked = Some(v.eq_ignore_ascii_case("json"));
        } else if a == "--" {
            break;
        }
    }
    asked.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_say_nothing_at_the_default_level() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "rustls::conn", "failed to verify TLS certificate");
            tracing::warn!(target: "hyper_util::client", "connection error");
            tracing::info!(target: "invitesync::job", "resuming run 1");
            tracing::debug!(target: "invitesync::job", "detail");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("resuming run 1"), "{text}");
        assert!(!text.contains("TLS certificate"), "{text}");
        assert!(
            !text.contains("connection error") && !text.contains("detail"),
            "{text}"
        );
    }

    #[test]
    fn json_is_found_before_parsing() {
        let ask = |args: &[&str], env| json_requested(args.iter(), env);
        assert!(ask(&["invitesync", "run", "--log-format", "json"], None));
        assert!(ask(&["invitesync", "--log-format=JSON", "run"], None));
        assert!(ask(&["invitesync", "run"], Some("json")));
        assert!(!ask(
            &["invitesync", "run", "--log-format", "text"],
            Some("json")
        ));
        assert!(!ask(&["invitesync", "run"], None));
        assert!(!ask(
            &["invitesync", "run", "--", "--log-format=json"],
            None
        ));
    }
}
