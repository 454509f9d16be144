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

    /// The file exists but is not ours: garbage, or another program's database.
    #[error(
        "{} is not an invitesync state file ({detail}); pass another --state file \
         or move this one away",
        .path.display()
    )]
    NotAStateFile { path: PathBuf, detail: String },

    /// A file-system operation failed (creating the file, the lock, permissions).
    #[error("cannot {action} {}: {source}{}", .path.display(), io_hint(.source))]
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
        if matches!(
            source.sqlite_error_code(),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
        ) {
            return StateError::NotAStateFile {
                path: path.to_path_buf(),
                detail: source.to_string(),
            };
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

    /// Whether another process holds the state file: the CLI's exit code 4.
    pub fn is_locked(&self) -> bool {
        matches!(self, StateError::Locked { .. })
    }
}

fn holder_text(pid: &Option<u32>, host: &Option<String>) -> String {
    match (pid, host) {
        (Some(pid), Some(host)) => format!(" (pid {pid} on {host})"),
        (Some(pid), None) => format!(" (pid {pid})"),
        _ => String::new(),
    }
}

fn io_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "; create the directory or pass another --state file",
        std::io::ErrorKind::PermissionDenied => {
            "; check the permissions or pass another --state file"
        }
        std::io::ErrorKind::StorageFull => "; free some disk space and run again to resume",
        _ => "",
    }
}

fn sqlite_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "; free some disk space and run again to resume",
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            "; check that the file and its directory are writable, or pass another --state file"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "; another program is holding the file, wait for it to finish"
        }
        Some(ErrorCode::SystemIoFailure) => "; check the disk, then run again to resume",
        _ => "",
    }
}
