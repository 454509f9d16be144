//! Standard input and named pipes for `run`, which reads its input more than
//! once (to count it, to send its rows, to write the results) and must find
//! it again to resume: the stream is copied, as it is read, into a file
//! beside the state file, its fingerprint and rows counted on the way, and
//! the run works from that copy.
//!
//! The copy is named after the state file and the fingerprint of what was
//! piped (`invitesync.piped-<16 hex digits>.csv`), so the same data piped
//! again after an interruption finds the copy, and with it the run to
//! resume. It is kept while a run of it is unfinished and removed once that
//! run finishes. One state file is one run at a time (its lock), so the
//! copies of one state file are never written by two processes at once.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{Fingerprinted, InputError, Layout, source};
use crate::state::{RunInfo, RunStatus, StateFile};

/// A copy of piped input, removed when dropped unless it is still needed.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    /// The fingerprint of the bytes piped, as [`super::scan`] gives it.
    pub fingerprint: Fingerprinted,
    pub rows: u64,
    keep: bool,
}

impl Spooled {
    /// Whether the copy outlives this process: yes while a run of it is
    /// unfinished (a resume needs it), no once that run finished.
    pub fn keep(&mut self, keep: bool) {
        self.keep = keep;
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The directory and the name prefix of a state file's copies.
fn family(state: &Path) -> (PathBuf, String) {
    let dir = match state.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = state
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "invitesync".into());
    (dir, stem)
}

/// Where this process copies piped input until it has all of it. A dry
/// run's copy is named apart, so that a run starting meanwhile does not take
/// it for a leftover.
fn partial(state: &Path, locked: bool) -> PathBuf {
    let (dir, stem) = family(state);
    let kind = if locked { "piped" } else { "dry-run" };
    dir.join(format!(".{stem}.{kind}.{}.part", std::process::id()))
}

/// Whether `path` is a copy of piped input made for the state file `state`.
pub fn is_copy_for(path: &Path, state: &Path) -> bool {
    let (dir, stem) = family(state);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let same_dir = match (std::fs::canonicalize(&dir), path.parent()) {
        (Ok(d), Some(p)) => d == p || dir == p,
        _ => false,
    };
    same_dir && name.starts_with(&format!("{stem}.piped-")) && name.ends_with(".csv")
}

/// Copies the input `given` (`-` or a named pipe) beside the state file
/// `state`, counting its rows with `layout` and fingerprinting it as it
/// goes. With `locked` false (a dry run, which takes no lock), the copy is
/// private to this process and always removed; with it true, leftovers of
/// copies cut short by a killed process are removed first.
pub fn spool(
    given: &Path,
    state: &Path,
    layout: &Layout,
    locked: bool,
) -> Result<Spooled, InputError> {
    let (dir, stem) = family(state);
    if locked {
        remove_leftovers(&dir, &stem);
    }
    let tmp = partial(state, locked);
    let cannot_write = |e: &io::Error| {
        InputError(format!(
            "cannot write the copy of {} at {}: {}; `run` keeps piped input beside the state \
             file (--state) to read it again and to resume",
            super::shown_path(&source::display_name(given)),
            super::shown_path(&tmp),
            crate::fs_error::reason(e)
        ))
    };
    let raw = source::open_raw(given).map_err(InputError)?;
    let file = File::create(&tmp).map_err(|e| cannot_write(&e))?;
    // Unbuffered: the reader above reads in large chunks, and what was piped
    // is on disk as soon as it is read.
    let mut tee = Tee {
        src: raw,
        out: file,
        failed: None,
    };
    let scanned = super::scan_stream(&mut tee, &source::display_name(given), layout);
    let written = match tee.failed.take() {
        Some(e) => Err(cannot_write(&e)),
        None => tee.out.sync_all().map_err(|e| cannot_write(&e)),
    };
    let (fingerprint, rows) = match written.and(scanned) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let mut spooled = Spooled {
        path: tmp.clone(),
        fingerprint,
        rows,
        keep: false,
    };
    if !locked {
        return Ok(spooled);
    }
    let copy = dir.join(format!(
        "{stem}.piped-{}.csv",
        &spooled.fingerprint.now[..16]
    ));
    if copy.exists() {
        // The same data, piped before: its copy may belong to a run to resume.
        let _ = std::fs::remove_file(&tmp);
        spooled.keep = true;
    } else {
        std::fs::rename(&tmp, &copy).map_err(|e| cannot_write(&e))?;
    }
    spooled.path = copy;
    Ok(spooled)
}

/// [`spool`] on a thread of its own, given up (`None`) once `stop` is
/// cancelled: a stream that never ends must not keep Ctrl-C or SIGTERM from
/// stopping the command (the thread, blocked in its read, ends with the
/// process; a locked run clears what it copied). A stop that comes while the
/// data arrives, even if it then ends (Ctrl-C stops the command writing into
/// the pipe too), starts no run: the data may be cut short.
pub async fn spool_or_stop(
    given: PathBuf,
    state: PathBuf,
    layout: Layout,
    locked: bool,
    stop: CancellationToken,
) -> Result<Option<Spooled>, InputError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tmp = partial(&state, locked);
    std::thread::Builder::new()
        .name("invitesync-spool".into())
        .spawn(move || {
            let _ = tx.send(spool(&given, &state, &layout, locked));
        })
        .map_err(|e| InputError(format!("cannot start copying the input: {e}")))?;
    tokio::select! {
        copied = rx => match copied {
            Ok(Ok(_)) if stop.is_cancelled() => Ok(None),
            Ok(copied) => copied.map(Some),
            Err(_) => Err(InputError("copying the input stopped unexpectedly".into())),
        },
        _ = stop.cancelled() => {
            let _ = std::fs::remove_file(&tmp);
            Ok(None)
        }
    }
}

/// Removes copies that a killed process left half written.
fn remove_leftovers(dir: &Path, stem: &str) {
    let prefix = format!(".{stem}.piped.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Unfinished runs of other piped data in the state file: piped input is one
/// input whatever was piped, as a file is one input whatever it holds. So,
/// as for a changed file, a run of different data is refused while such a
/// run waits for its resume, and `--new-run` retires it (and its copy).
pub fn settle_other_runs(
    state: &StateFile,
    state_path: &Path,
    spooled: &Spooled,
    new_run: bool,
) -> Result<(), String> {
    let this = std::fs::canonicalize(&spooled.path).unwrap_or_else(|_| spooled.path.clone());
    let others: Vec<RunInfo> = state
        .list_runs()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| matches!(r.status, RunStatus::Running | RunStatus::Interrupted))
        .filter(|r| r.input_path != this && is_copy_for(&r.input_path, state_path))
        .collect();
    for run in others {
        if !new_run && spooled.fingerprint.earlier.as_ref() == Some(&run.input_fingerprint) {
            return Err(format!(
                "run {id} of piped input was recorded by an earlier release of invitesync, which \
                 numbered the rows of the same data differently: the data has empty rows (lines \
                 of nothing but spaces, tabs or delimiters), which that release read as rows \
                 and this one skips, so run {id} cannot be resumed safely by this release. \
                 Finish it with the release that started it (its copy is {}), or pass \
                 --new-run to start afresh: rows the ledger already holds will end `unchanged`.",
                super::shown_path(&run.input_path),
                id = run.id.0
            ));
        }
        if !new_run {
            return Err(format!(
                "run {} of piped input was interrupted, and the data piped now is different \
                 (the copy of what run {} read is {}), so it cannot be resumed with it. Pipe the \
                 same data again to resume run {}, or pass --new-run to start afresh: rows the \
                 ledger already holds will end `unchanged`.",
                run.id.0,
                run.id.0,
                super::shown_path(&run.input_path),
                run.id.0
            ));
        }
        state
            .finish_run(
                run.id,
                RunStatus::Abandoned,
                crate::exit::Exit::Resumable.code(),
            )
            .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&run.input_path);
    }
    Ok(())
}

/// Copies what is read through it; a failed write is kept for its message
/// (it is the copy that failed, not the input).
struct Tee<R, W> {
    src: R,
    out: W,
    failed: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let shown = io::Error::new(e.kind(), e.to_string());
            self.failed = Some(e);
            return Err(shown);
        }
        Ok(n)
    }
}
