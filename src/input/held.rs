//! A run's input, held open from the moment the run first reads it.
//!
//! A run reads its input three times: to count and fingerprint it, to send
//! its rows, and to write the results file. Read by its path each time, a
//! file moved over it meanwhile (`mv new.csv invites.csv`) would give the
//! results another file's rows beside the records of the rows sent. While a
//! [`Held`] lives, every read of its path in this process (they all open the
//! input through [`super::source`]) reads the file it opened instead, each
//! from its own offset, whatever the path names by then, and only as many
//! bytes as it had when it was opened: rows appended while the run goes are
//! neither counted nor sent, so putting the file back lets the run resume,
//! and the results tell that the file grew ([`grown`]). What can still
//! happen to those bytes, an edit in place or a cut, is what the fingerprint
//! checked before the results file is renamed into place catches
//! (docs/ARCHITECTURE.md, §4).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::InputError;

/// The inputs held in this process, by the path they were opened by. A
/// process runs one run, but tests run several side by side, on their own
/// paths.
static HELD: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

struct Entry {
    path: PathBuf,
    file: Weak<File>,
    /// The file's length when it was opened: reads end there.
    len: u64,
}

/// The input file a run opened first; reads of its path go to it until it
/// is dropped.
#[derive(Debug)]
pub struct Held {
    path: PathBuf,
    file: Arc<File>,
}

impl Held {
    /// Opens `path` and holds it: from now on, reading `path` (as given,
    /// not resolved) reads this file.
    pub fn open(path: &Path) -> Result<Held, InputError> {
        let unreadable = |e: io::Error| InputError(super::unreadable(path, &e));
        let file = File::open(path).map_err(unreadable)?;
        let len = file.metadata().map_err(unreadable)?.len();
        let file = Arc::new(file);
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        held.push(Entry {
            path: path.to_path_buf(),
            file: Arc::downgrade(&file),
            len,
        });
        Ok(Held {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = Arc::downgrade(&self.file);
        held.retain(|e| !(e.path == self.path && e.file.ptr_eq(&mine)));
    }
}

/// The file held for `path`, if one is, and where its reads end.
fn find(path: &Path) -> Option<(Arc<File>, u64)> {
    let held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    held.iter()
        .rev()
        .filter(|e| e.path == path)
        .find_map(|e| e.file.upgrade().map(|f| (f, e.len)))
}

/// A new read, from its first byte, of the file held for `path`, if one is.
pub(super) fn reopen(path: &Path) -> Option<At> {
    let (file, end) = find(path)?;
    Some(At { file, pos: 0, end })
}

/// How many bytes the file held for `path` has past the ones its reads
/// give, if it grew since it was opened (rows appended: never read).
pub fn grown(path: &Path) -> Option<u64> {
    let (file, end) = find(path)?;
    let now = file.metadata().ok()?.len();
    (now > end).then(|| now - end)
}

/// One read of a held file: positional, so that reads of the same file
/// never move each other's place, and ending where the file ended when it
/// was opened.
pub(super) struct At {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        let mut text = String::new();
        super::super::source::open_raw(path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn a_held_path_reads_the_file_it_opened_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "vendor\nold\n").unwrap();
        let held = Held::open(&path).unwrap();
        let other = dir.path().join("new.csv");
        std::fs::write(&other, "vendor\nnew\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(read(&path), "vendor\nold\n");
        assert_eq!(read(&path), "vendor\nold\n", "each read from the start");
        let scan = |p: &Path| super::super::scan(p, &Default::default()).unwrap();
        let copy = dir.path().join("copy.csv");
        std::fs::write(&copy, "vendor\nold\n").unwrap();
        assert_eq!(
            scan(&path),
            scan(&copy),
            "the count reads the held file too"
        );
        drop(held);
        assert_eq!(read(&path), "vendor\nnew\n");
        assert_ne!(scan(&path), scan(&copy));
    }

    #[test]
    fn bytes_appended_to_a_held_file_are_not_read_but_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "vendor\nold\n").unwrap();
        let _held = Held::open(&path).unwrap();
        assert_eq!(grown(&path), None);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"late\n").unwrap();
        assert_eq!(read(&path), "vendor\nold\n");
        assert_eq!(grown(&path), Some(5));
        assert_eq!(grown(&dir.path().join("other.csv")), None, "not held");
    }

    #[test]
    fn reads_of_one_held_file_keep_their_own_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "abcdef").unwrap();
        let _held = Held::open(&path).unwrap();
        let (mut a, mut b) = (reopen(&path).unwrap(), reopen(&path).unwrap());
        let mut buf = [0; 3];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"def");
    }
}
