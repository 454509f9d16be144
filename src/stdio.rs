//! Standard output and error when whoever reads them may leave.
//!
//! `invitesync status | head -1` closes the pipe after one line; a run's
//! stderr goes away with a closed SSH session or a log collector that
//! stopped. Rust ignores SIGPIPE, so the next write fails with `BrokenPipe`,
//! and `println!` panics on that. Here a closed pipe only ends the output:
//! later writes to that stream are skipped, and the command goes on with its
//! work and exits with the code the work earned.
//!
//! The crate's `println!`, `print!`, `eprintln!` and `eprint!` are these
//! macros (declared first in `lib.rs`, they shadow the standard ones in
//! every module), so no print anywhere can panic on a closed stream, and
//! stderr lines always go around the progress bars. `clippy.toml` forbids
//! the standard ones, so a module that escaped the shadowing fails the lint.
//!
//! Any other error on stdout (a full disk under `status > file`) is kept,
//! and reported once at the end by [`finish`]: the output is incomplete, so
//! the command must not exit 0.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first error other than a closed pipe met writing stdout.
static STDOUT_FAILED: OnceLock<String> = OnceLock::new();

/// Standard output that a closed pipe silences instead of failing. Other
/// errors are returned, and remembered for [`finish`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        quiet(std::io::stdout().lock().write(buf), buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return Ok(());
        }
        quiet(std::io::stdout().lock().flush(), ())
    }
}

/// A closed pipe is success from here on; other errors are kept.
fn quiet<T>(result: std::io::Result<T>, closed: T) -> std::io::Result<T> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(closed)
        }
        Err(e) => {
            let _ = STDOUT_FAILED.set(crate::fs_error::reason(&e));
            Err(e)
        }
        ok => ok,
    }
}

/// `print!`'s body: the whole text in one write, errors kept for [`finish`].
pub fn print(args: std::fmt::Arguments<'_>) {
    let _ = Stdout.write_all(std::fmt::format(args).as_bytes());
}

/// Writes to stderr unless it was found closed. Other errors are ignored:
/// there is nowhere left to report them.
pub(crate) fn write_stderr(bytes: &[u8]) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut err = std::io::stderr().lock();
    if let Err(e) = err.write_all(bytes).and_then(|()| err.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Flushes standard output; says why it failed, if it did for a reason
/// other than a closed pipe (the command's output is then not whole).
pub fn flush_stdout() -> Option<&'static str> {
    let _ = Stdout.flush();
    STDOUT_FAILED.get().map(String::as_str)
}

/// `println!` for this crate: never panics on a closed pipe.
macro_rules! println {
    () => {
        $crate::stdio::print(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdio::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for this crate: never panics on a closed pipe.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::stdio::print(format_args!($($arg)*))
    };
}

/// `eprintln!` for this crate: around the progress bars, never panics.
macro_rules! eprintln {
    () => {
        $crate::progress::through::write_stderr(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::progress::through::eprintln(format_args!($($arg)*))
    };
}

/// `eprint!` for this crate: around the progress bars, never panics.
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::progress::through::write_stderr(format!($($arg)*).as_bytes())
    };
}
