//! One run per state file: an exclusive lock on `<state>.lock`.
//!
//! The lock is an OS file lock (`flock` on Unix), not the mere existence of a
//! file, so the kernel releases it when the holder exits in any way: a run
//! killed with SIGKILL never leaves a stale lock behind. The holder's pid,
//! host and start time are written into the file only to make the refusal
//! message useful. The file itself is never deleted: removing a lock file
//! while another process has it open would let two processes lock two
//! different inodes of the same name.
//!
//! Readers (`status`, `export`) need no lock: SQLite's WAL mode lets them read
//! while a run writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StateError};

/// How often, and how long apart, [`StateLock::acquire`] tries again when
/// the lock is held: long enough for a `status` to let go of it, short
/// enough that a real overlap is reported at once.
const HOLDER_RETRIES: u32 = 5;
const HOLDER_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Who holds a lock, as written in its lock file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockHolder {
    pub pid: Option<u32>,
    pub host: Option<String>,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
}

/// The exclusive right to run against one state file; released on drop.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// The lock file of a state file: `invitesync.db` → `invitesync.db.lock`.
    pub fn lock_path(state_path: &Path) -> PathBuf {
        let mut name = state_path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock without waiting. If another process (or another
    /// `StateLock` in this one) holds it, fails with [`StateError::Locked`]
    /// naming the holder's pid when its lock file says so.
    pub fn acquire(state_path: &Path) -> Result<StateLock> {
        // Before the lock file is created beside a path that cannot be one.
        super::usable::check(state_path)?;
        let path = Self::lock_path(state_path);
        let mut file = open_lock_file(&path)?;
        // `status` takes the lock shared for an instant to see whether a run
        // is alive ([`StateLock::holder`]); a run starting at that instant
        // tries again for a moment rather than report an overlapping run.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < HOLDER_RETRIES => {
                    tries += 1;
                    std::thread::sleep(HOLDER_PAUSE);
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    return Err(StateError::Locked {
                        state: state_path.to_path_buf(),
                        pid: holder.pid,
                        host: holder.host,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(StateError::io(&path, "lock", e)),
            }
        }
        let me = format!(
            "pid={}\nhost={}\nstarted_at={}\n",
            std::process::id(),
            hostname().unwrap_or_default(),
            crate::outcome::now_millis()
        );
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(me.as_bytes())
        };
        write(&mut file).map_err(|e| StateError::io(&path, "write the lock file", e))?;
        Ok(StateLock { file, path })
    }

    /// Who holds the lock of `state_path` right now, if anyone. For `status`,
    /// to tell a live run from one whose process died. It takes a shared lock
    /// for an instant, which a run starting at that very instant waits out
    /// ([`StateLock::acquire`] tries a few times).
    pub fn holder(state_path: &Path) -> Result<Option<LockHolder>> {
        let path = Self::lock_path(state_path);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io(&path, "open", e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
            Err(TryLockError::Error(e)) => Err(StateError::io(&path, "lock", e)),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Clear our pid first so nobody reads a stale one; closing the file
        // (right after this) releases the lock even if `unlock` failed.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The lock file holds no secret, but 0600 keeps it like the state file.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StateError::io(path, "open the lock file", e))
}

fn read_holder(file: &mut File) -> LockHolder {
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
        return LockHolder::default();
    }
    parse_holder(&text)
}

fn parse_holder(text: &str) -> LockHolder {
    let mut holder = LockHolder::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", v)) => holder.pid = v.trim().parse().ok(),
            Some(("host", v)) if !v.trim().is_empty() => holder.host = Some(v.trim().to_owned()),
            Some(("started_at", v)) => holder.started_at = v.trim().parse().ok(),
            _ => {}
        }
    }
    holder
}

/// The host name, so a lock on a shared file system names the machine too.
fn hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_with_the_pid_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("invitesync.db");
        let first = StateLock::acquire(&state).unwrap();
        assert_eq!(first.path(), dir.path().join("invitesync.db.lock"));

        let err = StateLock::acquire(&state).unwrap_err();
        assert!(err.is_locked());
        let StateError::Locked { pid, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*pid, Some(std::process::id()));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("invitesync.db"), "{msg}");
        assert_eq!(
            StateLock::holder(&state).unwrap().and_then(|h| h.pid),
            Some(std::process::id())
        );

        drop(first);
        assert_eq!(StateLock::holder(&state).unwrap(), None);
        let again = StateLock::acquire(&state).unwrap();
        drop(again);
    }

    #[test]
    fn holder_text_is_parsed_leniently() {
        let h = parse_holder("pid=42\nhost=box\nstarted_at=7\nother=1\n");
        assert_eq!(h.pid, Some(42));
        assert_eq!(h.host.as_deref(), Some("box"));
        assert_eq!(h.started_at, Some(7));
        assert_eq!(parse_holder(""), LockHolder::default());
    }
}
