//! Errors of the state file. Each message names the file and says what the
//! user can do about it, because these reach the terminal as they are.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Result of a state-file operation.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Everything that can go wrong with the state file or its lock.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process holds `<state>.lock`. The CLI maps this to exit code 4.
    #[error(
        "another invitesync{} is using {}; wait for it to finish or stop it",
        holder_text(.pid, .host),
        .state.display()
    )]
    Locked {
        state: PathBuf,
        /// The holder's pid, when its lock file could be read.
        pid: Option<u32>,
        host: Option<String>,
    },

    /// The file was written by a release with a newer state format.
    #[error(
        "{} was written by a newer invitesync (state format {found}, this release \
         reads up to {supported}); upgrade invitesync or pass another --state file",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// The file is another program's SQLite database.
    #[error(
        "{} is not an invitesync state file ({detail}); pass another --state file \
         or move this one away",
        .path.display()
    )]
    NotAStateFile { path: PathBuf, detail: String },

    /// The file is not an SQLite database at all: some other file, or a state
    /// file whose first page was overwritten. Which, only its owner knows.
    #[error(
        "{} is not an SQLite database ({detail}): if it is not the state file, pass the \
         right --state file; if it is, it is damaged: restore it from a backup, or move it \
         aside to start a fresh ledger (rows applied before are then sent again): {}",
        .path.display(),
        move_aside(.path, *.wal)
    )]
    NotADatabase {
        path: PathBuf,
        detail: String,
        /// Whether a `-wal` file with content lies beside it (it must move too).
        wal: bool,
    },

    /// An SQLite database whose pages are damaged (a disk fault, a partial
    /// copy, a truncated file): SQLite's own check says what is wrong.
    #[error(
        "state file {} is damaged ({detail}); restore it from a backup, or move it aside to \
         start a fresh ledger (rows applied before are then sent again): {}",
        .path.display(),
        move_aside(.path, *.wal)
    )]
    Damaged {
        path: PathBuf,
        detail: String,
        /// Whether a `-wal` file with content lies beside it (it must move too).
        wal: bool,
    },

    /// A `-wal` file without its database: the state file was moved or
    /// deleted and its log left behind.
    #[error(
        "{} does not exist but its log {} does: the state file was moved or deleted \
         without it. Put the state file back, or move the log aside too: mv {} {}",
        .path.display(),
        .wal.display(),
        crate::shell::quote(&.wal.display().to_string()),
        crate::shell::quote(&format!("{}.orphaned", .wal.display()))
    )]
    OrphanLog { path: PathBuf, wal: PathBuf },

    /// The path cannot hold a state file: a directory, a device, a missing
    /// directory (see `usable.rs`).
    #[error("cannot use {} as the state file: {why}; {fix}", crate::input::shown_path(.path))]
    Unusable {
        path: PathBuf,
        why: String,
        fix: String,
    },

    /// A file-system operation failed (creating the file, the lock, permissions).
    #[error(
        "cannot {action} {}: {}{}",
        crate::input::shown_path(.path),
        crate::fs_error::reason(.source),
        io_hint(.path, .source)
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// SQLite failed; the message adds a hint for the causes a user can fix.
    #[error("state file {}: cannot {action}: {source}{}", .path.display(), sqlite_hint(.source))]
    Sqlite {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// The background writer stopped on an earlier error; `message` is that error.
    #[error("the state writer for {} stopped: {message}", .path.display())]
    WriterStopped { path: PathBuf, message: String },

    /// A run id that the state file does not hold (e.g. `export 17`).
    #[error("{} holds no run {run}; `invitesync status` lists the runs", .path.display())]
    NoSuchRun { path: PathBuf, run: i64 },

    /// A stored value that this release cannot read back (hand-edited file).
    #[error("{} holds an unreadable {what}: {detail}; the file may have been edited by hand",
        .path.display())]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
}

impl StateError {
    pub(crate) fn sqlite(path: &Path, action: &'static str, source: rusqlite::Error) -> Self {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt) => {
                return StateError::damaged(path, format!("SQLite: {source}"));
            }
            Some(ErrorCode::NotADatabase) => {
                // SQLite says this of garbage and of a state file whose
                // header is broken; the magic string tells them apart.
                return if has_sqlite_magic(path) {
                    StateError::damaged(path, format!("SQLite: {source}"))
                } else {
                    StateError::NotADatabase {
                        path: path.to_path_buf(),
                        detail: format!("SQLite: {source}"),
                        wal: has_log(path),
                    }
                };
            }
            _ => {}
        }
        StateError::Sqlite {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        StateError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// A damaged state file; `detail` says what SQLite found.
    pub(crate) fn damaged(path: &Path, detail: String) -> Self {
        StateError::Damaged {
            path: path.to_path_buf(),
            detail,
            wal: has_log(path),
        }
    }

    /// Whether another process holds the state file: the CLI's exit code 4.
    pub fn is_locked(&self) -> bool {
        matches!(self, StateError::Locked { .. })
    }

    /// Whether the file is damaged (or is not a database): running again
    /// cannot help, a person must restore it or move it aside.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            StateError::Damaged { .. } | StateError::NotADatabase { .. }
        )
    }
}

/// `invitesync.db` → `invitesync.db-wal`, SQLite's name for its log.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Whether a log with content lies beside the database (an empty one is
/// only what opening it created).
fn has_log(path: &Path) -> bool {
    std::fs::metadata(wal_path(path)).is_ok_and(|m| m.len() > 0)
}

/// Whether the file begins as every SQLite database does.
fn has_sqlite_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// The command that moves a damaged file aside, its `-wal` with it: a log
/// left behind would be replayed into the fresh file created in its place.
/// The `-shm` beside them is only an index, rebuilt from the log.
fn move_aside(path: &Path, wal: bool) -> String {
    let text = path.display().to_string();
    let quote = crate::shell::quote;
    let mut cmd = format!("mv {} {}", quote(&text), quote(&format!("{text}.damaged")));
    if wal {
        cmd.push_str(&format!(
            " && mv {} {}",
            quote(&format!("{text}-wal")),
            quote(&format!("{text}.damaged-wal"))
        ));
    }
    cmd
}

fn holder_text(pid: &Option<u32>, host: &Option<String>) -> String {
    match (pid, host) {
        (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
        (Some(pid), None) => format!(" (pid {pid})"),
        _ => String::new(),
    }
}

/// What to do, for the file-system errors a person can act on. A missing
/// file's directory may exist and refuse new files (`/proc`): then creating
/// it is not the advice.
fn io_hint(path: &Path, e: &std::io::Error) -> String {
    let dir = super::usable::directory(path);
    let dir_shown = crate::input::shown_path(&dir);
    match e.kind() {
        std::io::ErrorKind::NotFound if !dir.is_dir() => format!(
            "; its directory {dir_shown} does not exist: create it or pass another --state file"
        ),
        std::io::ErrorKind::NotFound => {
            format!("; {dir_shown} does not let files be created in it: pass another --state file")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "; check the permissions of it and of {dir_shown}, or pass another --state file"
        ),
        std::io::ErrorKind::ReadOnlyFilesystem => {
            format!("; {dir_shown} is on a read-only file system: pass another --state file")
        }
        std::io::ErrorKind::StorageFull => {
            "; free some disk space, then run the same command again to resume".to_string()
        }
        _ => String::new(),
    }
}

fn sqlite_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => {
            "; free some disk space, then run the same command again to resume"
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            "; check that the file and its directory are writable, or pass another --state file"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "; another program is holding the file, wait for it to finish"
        }
        Some(ErrorCode::SystemIoFailure) => {
            "; check the disk, then run the same command again to resume"
        }
        _ => "",
    }
}
