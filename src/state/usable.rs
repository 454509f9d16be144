//! Whether a path can hold a state file, asked before the lock or SQLite
//! touches it. SQLite says only "disk I/O error" of a device such as
//! `/dev/null` and "unable to open database file" of a directory, and the
//! lock file would be created beside either (`/dev/null.lock`): the person
//! needs to hear what the path is and what to pass instead.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StateError};
use crate::input::shown_path;

/// Refuses a path that is a directory or not a regular file, or whose
/// directory is missing. A path that does not exist yet in an existing
/// directory is fine: the state file is created there.
pub(crate) fn check(path: &Path) -> Result<()> {
    let unusable = |why: String, fix: String| StateError::Unusable {
        path: path.to_path_buf(),
        why,
        fix,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => {
            let inside = path.join(super::default_name(None)).display().to_string();
            Err(unusable(
                "it is a directory".into(),
                format!(
                    "name a file, e.g. --state {}",
                    crate::shell::quote(&crate::input::shown(&inside))
                ),
            ))
        }
        Ok(m) => Err(unusable(
            format!("it is {}, not a regular file", what(&m.file_type())),
            "the state file is an SQLite database that is written and kept beside its `-wal` \
             and `-shm` files: name a regular file, or a new one, with --state"
                .into(),
        )),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let dir = directory(path);
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(unusable(
                    format!("{} is not a directory", shown_path(&dir)),
                    "pass another --state file".into(),
                )),
                Err(_) => Err(unusable(
                    format!("its directory {} does not exist", shown_path(&dir)),
                    format!(
                        "create it (mkdir -p {}) or pass another --state file",
                        crate::shell::quote(&shown_path(&dir))
                    ),
                )),
            }
        }
        Err(e) => Err(StateError::io(path, "look at", e)),
    }
}

/// The directory a path's file is in: `.` for a bare name.
pub(crate) fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn what(t: &std::fs::FileType) -> &'static str {
    if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something other than a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_missing_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let m = check(Path::new("/dev/null")).unwrap_err().to_string();
        assert!(
            m.starts_with("cannot use /dev/null as the state file: it is a character device, not a regular file; "),
            "{m}"
        );
        let m = check(dir.path()).unwrap_err().to_string();
        assert!(
            m.contains(": it is a directory; name a file, e.g. --state "),
            "{m}"
        );
        let missing = dir.path().join("nope").join("s.db");
        let m = check(&missing).unwrap_err().to_string();
        assert!(m.contains("does not exist; create it (mkdir -p "), "{m}");
        assert!(check(&dir.path().join("new.db")).is_ok());
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let m = check(&file.join("s.db")).unwrap_err().to_string();
        assert!(
            m.contains("f is not a directory; pass another --state file"),
            "{m}"
        );
        assert!(check(Path::new("bare.db")).is_ok());
    }
}
