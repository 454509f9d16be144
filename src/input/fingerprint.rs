//! The input's fingerprint: BLAKE3 of the name of the rule that numbers its
//! rows and of its bytes as given (compressed or not), each byte hashed once,
//! as it is read. An input with empty rows (lines of nothing but spaces, tabs
//! and delimiters, which the record rule skips since `invitesync rows 3`,
//! see `records.rs`) is numbered otherwise than the earlier rule numbered it,
//! so its fingerprint is that rule's name hashed with the earlier
//! fingerprint; any other input keeps the fingerprint it had, and a run of
//! it recorded by an earlier release still resumes.
//!
//! One computation serves both reads that must agree: the count before a run
//! ([`super::scan`]), whose fingerprint the run records, and every later read
//! that joins the input's rows with the run's records (the results and
//! rows-to-fix files, `export`), which compares its own with the recorded
//! one. Hashing while the rows stream costs no pass of its own, and memory
//! stays flat (docs/ARCHITECTURE.md, §4).

use std::io::{self, Read};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Names the rule that numbers the rows (what a record is, which lines are
/// skipped) in every input fingerprint: a run recorded under another rule
/// identifies its rows by other numbers, so it must not be resumed.
const ROW_NUMBERING: &[u8] = b"invitesync rows 2\0";

/// The rule that also skips empty rows: named, on top of the fingerprint by
/// [`ROW_NUMBERING`], only for an input whose rows it numbers otherwise.
const EMPTY_ROWS_SKIPPED: &[u8] = b"invitesync rows 3\0";

/// A finished fingerprint of the input, by the rule that numbers its rows
/// now and, when that numbers them otherwise, by the earlier rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprinted {
    /// The fingerprint a run records and every later read compares.
    pub now: String,
    /// The fingerprint an earlier release gave the same bytes, when it
    /// numbered their rows otherwise (it read their empty rows as rows).
    pub earlier: Option<String>,
}

impl Fingerprinted {
    /// Whether `recorded`, a fingerprint by either rule, is of these bytes
    /// (whatever a read that stopped short saw of their empty rows).
    pub fn of_same_bytes(&self, recorded: &str) -> bool {
        let bytes = self.earlier.as_deref().unwrap_or(&self.now);
        recorded == bytes || recorded == renumbered(bytes)
    }
}

/// The fingerprint of an input whose earlier one was `earlier`, once empty
/// rows were skipped in it.
fn renumbered(earlier: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(EMPTY_ROWS_SKIPPED);
    hasher.update(earlier.as_bytes());
    hasher.finalize().to_hex().to_string()
}

/// The raw stream and the hash of what was read of it, shared by the
/// [`Through`] a reader reads and the [`Fingerprint`] that finishes it.
struct Shared<'a> {
    raw: Box<dyn Read + Send + 'a>,
    hasher: blake3::Hasher,
}

type Cell<'a> = Arc<Mutex<Shared<'a>>>;

/// A lock that a panic elsewhere does not make unusable: the hash is only
/// ever updated whole, a read at a time.
fn lock<'s, 'a>(cell: &'s Cell<'a>) -> MutexGuard<'s, Shared<'a>> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The input's bytes, hashed as they are read; the decoder and the record
/// splitter read through it (the reader never seeks).
pub struct Through<'a>(Cell<'a>);

/// The fingerprint of what is read through its [`Through`], once the rest of
/// the stream is read too.
pub struct Fingerprint<'a>(Cell<'a>);

/// `raw`, to be read through the first half, and its fingerprint, to be
/// finished with the second once the reading is done.
pub fn fingerprinted<'a>(raw: impl Read + Send + 'a) -> (Through<'a>, Fingerprint<'a>) {
    let mut hasher = blake3::Hasher::new();
    hasher.update(ROW_NUMBERING);
    let cell = Arc::new(Mutex::new(Shared {
        raw: Box::new(raw),
        hasher,
    }));
    (Through(cell.clone()), Fingerprint(cell))
}

impl Read for Through<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = lock(&self.0);
        let n = shared.raw.read(buf)?;
        shared.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl Fingerprint<'_> {
    /// Reads what the reader left of the stream (after a header it refused,
    /// past the end of compressed data) and gives the fingerprint of all of
    /// it, as hex: `skipped_empty_rows` is whether the reader's record rule
    /// skipped an empty row (`Reader::skipped_empty_rows`).
    pub fn finish(self, skipped_empty_rows: bool) -> io::Result<Fingerprinted> {
        let mut rest = Through(self.0.clone());
        io::copy(&mut rest, &mut io::sink())?;
        let earlier = lock(&self.0).hasher.finalize().to_hex().to_string();
        Ok(if skipped_empty_rows {
            Fingerprinted {
                now: renumbered(&earlier),
                earlier: Some(earlier),
            }
        } else {
            Fingerprinted {
                now: earlier,
                earlier: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(bytes: &[u8], read_first: usize) -> String {
        finished(bytes, read_first, false).now
    }

    fn finished(bytes: &[u8], read_first: usize, skipped: bool) -> Fingerprinted {
        let (mut through, fp) = fingerprinted(bytes);
        let mut head = vec![0; read_first];
        through.read_exact(&mut head).unwrap();
        drop(through);
        fp.finish(skipped).unwrap()
    }

    #[test]
    fn every_byte_counts_once_however_much_the_reader_read() {
        let bytes = b"vendor,status\ngate,sent\n";
        let whole = of(bytes, 0);
        assert_eq!(whole, of(bytes, 5));
        assert_eq!(whole, of(bytes, bytes.len()));
        let mut h = blake3::Hasher::new();
        h.update(ROW_NUMBERING);
        h.update(bytes);
        assert_eq!(whole, h.finalize().to_hex().to_string());
        assert_ne!(whole, of(b"vendor,status\ngate,sent\ngate,x\n", 5));
    }

    #[test]
    fn empty_rows_skipped_name_the_new_rule_and_keep_the_earlier_fingerprint() {
        let bytes = b"vendor,status\ngate,sent\n,\n";
        let plain = finished(bytes, 3, false);
        assert_eq!(plain.earlier, None, "nothing renumbered: as before");
        let mut h = blake3::Hasher::new();
        h.update(ROW_NUMBERING);
        h.update(bytes);
        assert_eq!(plain.now, h.finalize().to_hex().to_string());

        let skipped = finished(bytes, 3, true);
        assert_eq!(skipped.earlier.as_deref(), Some(plain.now.as_str()));
        let mut h = blake3::Hasher::new();
        h.update(b"invitesync rows 3\0");
        h.update(plain.now.as_bytes());
        assert_eq!(skipped.now, h.finalize().to_hex().to_string());
        assert_ne!(skipped.now, plain.now);

        for fp in [&plain, &skipped] {
            assert!(fp.of_same_bytes(&plain.now) && fp.of_same_bytes(&skipped.now));
            assert!(!fp.of_same_bytes(&of(b"vendor,status\n", 0)));
        }
    }
}
