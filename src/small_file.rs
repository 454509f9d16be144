//! Reading the small files a user names for the program's own use: the
//! config and secret files.
//!
//! Such a path can point anywhere: at a named pipe nobody writes to (opening
//! it would wait forever), at `/dev/zero` or a log file by mistake (reading it
//! whole would fill the memory), at a directory. So only a regular file is
//! read (a symbolic link is followed first), and at most a cap's worth of it.

use std::io::Read;
use std::path::Path;

/// Why a small file could not be read; [`std::fmt::Display`] says it in
/// words that fit after `cannot read FILE: `.
#[derive(Debug)]
pub enum SmallFileError {
    Io(std::io::Error),
    /// A directory, a named pipe, a device or a socket.
    NotAFile(&'static str),
    /// Larger than the cap, which is given in bytes.
    TooLarge(u64),
}

impl SmallFileError {
    /// Whether the file does not exist (so a message can say how to name one).
    pub fn is_not_found(&self) -> bool {
        matches!(self, SmallFileError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for SmallFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmallFileError::Io(e) => f.write_str(&crate::fs_error::reason(e)),
            SmallFileError::NotAFile(what) => write!(f, "it is {what}, not a regular file"),
            SmallFileError::TooLarge(cap) => {
                write!(
                    f,
                    "it is larger than {}, the most read from it",
                    human_size(*cap)
                )
            }
        }
    }
}

/// `64 KiB`, `1 MiB`: a cap in the words of a message.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a path that is not a regular file is, for messages.
fn kind_of(meta: &std::fs::Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a file")
}

/// Reads a regular file of at most `cap` bytes. The kind of file is checked
/// before it is opened, since opening a named pipe blocks until someone
/// writes to it, and again on the open handle, in case the path changed in
/// between.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, SmallFileError> {
    let meta = std::fs::metadata(path).map_err(SmallFileError::Io)?;
    if let Some(what) = kind_of(&meta) {
        return Err(SmallFileError::NotAFile(what));
    }
    let file = std::fs::File::open(path).map_err(SmallFileError::Io)?;
    let meta = file.metadata().map_err(SmallFileError::Io)?;
    if let Some(what) = kind_of(&meta) {
        return Err(SmallFileError::NotAFile(what));
    }
    if meta.len() > cap {
        return Err(SmallFileError::TooLarge(cap));
    }
    // The length can change after it was looked at (a file being written):
    // one byte past the cap is enough to know it is too large.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(SmallFileError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(SmallFileError::TooLarge(cap));
    }
    Ok(bytes)
}

/// Whether users other than the owner may read the file (group or others
/// have read permission). Always false where there are no such bits.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"12345");
        assert!(matches!(read(&p, 4), Err(SmallFileError::TooLarge(4))));
        let e = read(dir.path(), 10).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory, not a regular file");
        assert!(
            read(&dir.path().join("nope"), 10)
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(human_size(64 * 1024), "64 KiB");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_pipes_are_not_read() {
        let e = read(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(e.to_string(), "it is a device, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read(&fifo, 10).unwrap_err();
            assert_eq!(e.to_string(), "it is a named pipe, not a regular file");
        }
    }
}
