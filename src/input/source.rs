//! Where an input's bytes come from and how they become CSV text: a file,
//! standard input or a named pipe; plain, gzip or zstd, told apart by their
//! first bytes rather than by the file's name. Everything streams: a
//! compressed file is never decompressed whole, and memory stays flat
//! whatever the input's size.
//!
//! The reader that counts an input's rows and every reader that reads them
//! open it here, so they decompress it the same way and see the same lines.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// A decoded input, ready for the record splitter.
pub type Source<'a> = Box<dyn BufRead + Send + 'a>;

/// How the input's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";

impl Compression {
    /// By the magic bytes a stream starts with.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// `-`: standard input, as the command line names it.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How messages name an input: its path, or `(standard input)` for `-`.
pub fn display_name(path: &Path) -> PathBuf {
    if is_stdin(path) {
        PathBuf::from("(standard input)")
    } else {
        path.to_path_buf()
    }
}

/// Whether the input can only be read once (standard input, a named pipe,
/// `<(command)`): `run` then copies it first. A directory or a path that
/// cannot be read is an error, in words for the user.
pub fn is_piped(path: &Path) -> Result<bool, String> {
    if is_stdin(path) {
        return Ok(true);
    }
    let meta = std::fs::metadata(path).map_err(|e| super::unreadable(path, &e))?;
    if meta.is_dir() {
        return Err(format!(
            "the input {} is a directory; give the CSV file",
            super::shown_path(path)
        ));
    }
    Ok(!meta.is_file())
}

/// Opens the input's raw bytes: the file, or standard input for `-`. A
/// path a run holds open reads the file it holds ([`super::held`]).
pub fn open_raw(path: &Path) -> Result<Box<dyn Read + Send>, String> {
    if is_stdin(path) {
        if io::IsTerminal::is_terminal(&io::stdin()) {
            return Err("standard input is a terminal: pipe the CSV into `-` \
                        (`... | invitesync run - ...`), or name its file"
                .into());
        }
        return Ok(Box::new(io::stdin()));
    }
    open_file(path).map_err(|e| {
        format!(
            "cannot open the input {}: {}",
            super::shown_path(path),
            crate::fs_error::reason(&e)
        )
    })
}

/// The file at `path`, or the one held for it ([`super::held`]).
pub(super) fn open_file(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    if let Some(held) = super::held::reopen(path) {
        return Ok(Box::new(held));
    }
    Ok(Box::new(File::open(path)?))
}

/// Reads up to `N` bytes (fewer only at the end of the stream) and gives
/// them back in front of the rest, so that a look at a stream's first bytes
/// does not depend on how a pipe happens to cut its reads.
fn peek<const N: usize, R: Read>(mut r: R) -> io::Result<([u8; N], usize, impl Read)> {
    let mut head = [0u8; N];
    let mut n = 0;
    while n < N {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let front = Cursor::new(head);
    Ok((head, n, front.take(n as u64).chain(r)))
}

/// The CSV text of `raw`, decompressed if its first bytes say it is gzip
/// (concatenated members too) or zstd (several frames too). Its first
/// `fill_buf` holds at least the first 4 bytes of text, so a byte order mark
/// is always seen whole.
pub fn decoded<'a, R: Read + Send + 'a>(raw: R) -> io::Result<(Source<'a>, Compression)> {
    let (head, n, raw) = peek::<4, _>(raw)?;
    let compression = Compression::detect(&head[..n]);
    let raw = BufReader::with_capacity(256 * 1024, raw);
    let text: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(Damage {
            inner: flate2::bufread::MultiGzDecoder::new(raw),
            what: compression,
        }),
        Compression::Zstd => Box::new(Damage {
            inner: zstd::stream::read::Decoder::with_buffer(raw)?,
            what: compression,
        }),
    };
    let (_, _, text) = peek::<4, _>(text)?;
    Ok((
        Box::new(BufReader::with_capacity(256 * 1024, text)),
        compression,
    ))
}

/// A decompressor whose errors say, in words, that the file is damaged or
/// cut short; errors of the file itself (the disk) pass unchanged.
struct Damage<R> {
    inner: R,
    what: Compression,
}

impl<R: Read> Read for Damage<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.raw_os_error().is_some() || e.kind() == io::ErrorKind::Interrupted {
                return e;
            }
            let what = self.what.name();
            let reason = crate::fs_error::reason(&e);
            io::Error::new(
                e.kind(),
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    format!(
                        "the {what} data ends early ({reason}): the file is truncated \
                         (cut short while written, copied or downloaded)"
                    )
                } else {
                    format!("the {what} data is damaged ({reason})")
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(p).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn text(raw: &[u8]) -> (io::Result<Vec<u8>>, Compression) {
        let (mut src, c) = decoded(raw).unwrap();
        let mut out = Vec::new();
        (src.read_to_end(&mut out).map(|_| out), c)
    }

    #[test]
    fn compressed_streams_are_told_by_their_first_bytes() {
        let (t, c) = text(b"vendor\ngate\n");
        assert_eq!(
            (t.unwrap(), c),
            (b"vendor\ngate\n".to_vec(), Compression::None)
        );
        let (t, c) = text(&gzip(&[b"vendor\n", b"gate\n"]));
        assert_eq!(
            (t.unwrap(), c),
            (b"vendor\ngate\n".to_vec(), Compression::Gzip)
        );
        let z = [
            zstd::encode_all(&b"vendor\n"[..], 1).unwrap(),
            zstd::encode_all(&b"gate\n"[..], 1).unwrap(),
        ]
        .concat();
        let (t, c) = text(&z);
        assert_eq!(
            (t.unwrap(), c),
            (b"vendor\ngate\n".to_vec(), Compression::Zstd)
        );
        let (t, _) = text(b"");
        assert_eq!(t.unwrap(), b"");
    }

    #[test]
    fn a_truncated_stream_is_an_error_that_says_so() {
        let g = gzip(&[b"vendor,status\ngate,sent\n"]);
        let z = zstd::encode_all(&b"vendor,status\ngate,sent\n"[..], 1).unwrap();
        for cut in [&g[..g.len() - 3], &z[..z.len() - 3]] {
            let e = text(cut).0.unwrap_err();
            assert!(e.to_string().contains("the file is truncated"), "{e}");
        }
        let mut bad = g.clone();
        let at = bad.len() - 6;
        bad[at] ^= 0xff;
        let e = text(&bad).0.unwrap_err();
        assert!(e.to_string().contains("gzip data is damaged"), "{e}");
    }
}
