//! Writing to stderr while bars are drawn there.
//!
//! The bars are redrawn in place with cursor movements; a log line written
//! straight to stderr in between lands in the middle of them and is then
//! partly overdrawn. Every line for stderr therefore goes through here: while
//! bars are shown, the bars are cleared, the line is written, and they are
//! drawn again below it ([`MultiProgress::suspend`]). Without bars, it is a
//! plain write.

use std::io::Write;
use std::sync::RwLock;

use indicatif::MultiProgress;
use tracing_subscriber::fmt::MakeWriter;

/// The bars being drawn, if any. A read lock per log line costs nothing next
/// to formatting the line.
static BARS: RwLock<Option<MultiProgress>> = RwLock::new(None);

/// Makes `bars` the display that stderr writes go around.
pub(super) fn show(bars: &MultiProgress) {
    *BARS.write().unwrap_or_else(|p| p.into_inner()) = Some(bars.clone());
}

/// Stops going around the bars (they are finished and cleared).
pub(super) fn hide() {
    *BARS.write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Writes `bytes` to stderr, around the bars if they are shown. Errors are
/// ignored: there is nowhere left to report a broken stderr, and a closed
/// one silences the rest ([`crate::stdio`]).
pub fn write_stderr(bytes: &[u8]) {
    let bars = BARS.read().unwrap_or_else(|p| p.into_inner()).clone();
    let write = || crate::stdio::write_stderr(bytes);
    match bars {
        Some(bars) => bars.suspend(write),
        None => write(),
    }
}

/// `eprintln!` that does not collide with the bars.
pub fn eprintln(line: impl std::fmt::Display) {
    write_stderr(format!("{line}\n").as_bytes());
}

/// The `tracing` writer: one buffer per event, written whole when the event
/// is formatted, so a line is never split by a redraw.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrThroughBars;

impl<'a> MakeWriter<'a> for StderrThroughBars {
    type Writer = EventBuffer;

    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer(Vec::new())
    }
}

/// One event's text, written out on drop.
pub struct EventBuffer(Vec<u8>);

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write_stderr(&self.0);
        }
    }
}
