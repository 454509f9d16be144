//! The input CSV, read one row at a time.
//!
//! Memory stays flat whatever the file's size: one record is parsed, handed
//! on, and forgotten. A broken line never stops the run: it becomes one row
//! with the reason and its line number, and the lines after it are rows of
//! their own, whatever its open quote would otherwise swallow. Where one
//! record ends and the next begins is decided in one place ([`records`] and
//! `Reader::step`), which both the row count and every read of the rows go
//! through.

mod fingerprint;
mod header;
mod held;
pub mod mapping;
mod records;
mod shown;
pub mod source;
pub mod spool;

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use crate::change::Invalid;
pub use fingerprint::{Fingerprint, Fingerprinted};
pub use header::Header;
pub use held::{Held, grown};
pub use mapping::{InputConfig, InputFlags, Layout};
use records::{Broken, MAX_RECORD_BYTES, Splitter};
pub use shown::{shown, shown_path};
pub use source::{Compression, Source};

/// The columns invitesync reads; others are carried to the results untouched.
pub const KNOWN_COLUMNS: [&str; 9] = [
    "vendor",
    "scope",
    "invite_id",
    "email",
    "first_name",
    "last_name",
    "sender_id",
    "status",
    "roles",
];

/// The known columns of one row, trimmed. A missing column reads as empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    pub vendor: &'a str,
    pub scope: &'a str,
    pub invite_id: &'a str,
    pub email: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub sender_id: &'a str,
    pub status: &'a str,
    pub roles: &'a str,
}

impl<'a> Fields<'a> {
    /// Reads the known columns; one that is not UTF-8 makes the row invalid,
    /// and so does a vendor cell that says otherwise than a fixed vendor.
    pub fn from_record(header: &'a Header, record: &'a ByteRecord) -> Result<Fields<'a>, Invalid> {
        let mut v = [""; 9];
        for (k, slot) in v.iter_mut().enumerate() {
            if let Some(i) = header.known[k]
                && let Some(raw) = record.get(i)
            {
                *slot = cell(raw).map_err(|e| not_utf8(KNOWN_COLUMNS[k], i, raw, &e))?;
            }
        }
        v[0] = vendor(header, v[0])?;
        Ok(Fields {
            vendor: v[0],
            scope: v[1],
            invite_id: v[2],
            email: v[3],
            first_name: v[4],
            last_name: v[5],
            sender_id: v[6],
            status: v[7],
            roles: v[8],
        })
    }

    /// The vendor a row names, as [`Fields::from_record`] reads it, when its
    /// vendor cell can be read, whatever its other cells hold: a row invalid
    /// for another column still counts under its vendor.
    pub fn vendor_of(header: &'a Header, record: &'a ByteRecord) -> Option<&'a str> {
        let given = match header.known[0].and_then(|i| record.get(i)) {
            Some(raw) => cell(raw).ok()?,
            None => "",
        };
        vendor(header, given).ok()
    }
}

/// A known column's cell as text: trimmed, and read back as the value it was
/// written from if invitesync wrote it (a rows-to-fix file fed back).
fn cell(raw: &[u8]) -> Result<&str, std::str::Utf8Error> {
    let text = std::str::from_utf8(raw)?.trim();
    Ok(crate::cells::unneutralise(text).trim())
}

/// Why the cell `raw` of `column` (at 0-based position `at`) is not read:
/// which bytes are not UTF-8, and where.
fn not_utf8(column: &str, at: usize, raw: &[u8], e: &std::str::Utf8Error) -> Invalid {
    let from = e.valid_up_to();
    let len = e.error_len().unwrap_or(raw.len() - from).clamp(1, 4);
    let bad: Vec<String> = raw[from..]
        .iter()
        .take(len)
        .map(|b| format!("0x{b:02X}"))
        .collect();
    Invalid::new(
        column,
        format!(
            "not valid UTF-8: column {} holds {} {} (at byte {} of the cell), which UTF-8 text \
             cannot; save the file as UTF-8 (in Excel: CSV UTF-8)",
            at + 1,
            crate::text::plural(bad.len() as u64, "the byte", "the bytes"),
            bad.join(" "),
            from + 1
        ),
    )
}

/// The vendor of a row whose vendor cell reads `given`: the fixed vendor,
/// if there is one, which the cell may only repeat or leave empty.
fn vendor<'a>(header: &'a Header, given: &'a str) -> Result<&'a str, Invalid> {
    let Some(fixed) = &header.fixed_vendor else {
        return Ok(given);
    };
    if !given.is_empty() && !given.eq_ignore_ascii_case(fixed) {
        return Err(Invalid::new(
            "vendor",
            format!(
                "`{given}` here, but every row's vendor is `{fixed}` (--vendor or [input] vendor)"
            ),
        ));
    }
    Ok(fixed)
}

/// A problem with the file as a whole (unreadable, no header).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// `cannot read the input NAME: why`, the name shown escaped: what every
/// read of the input says when the file itself fails it.
pub fn unreadable(path: &Path, e: &std::io::Error) -> String {
    format!(
        "cannot read the input {}: {}",
        shown_path(path),
        crate::fs_error::reason(e)
    )
}

impl InputError {
    pub(crate) fn at(path: &Path, line: u64, msg: String) -> Self {
        InputError(format!("{}:{line}: {msg}", shown_path(path)))
    }
}

/// One data row of the input.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// 0-based number of the data row: the row's identity in the state file.
    pub index: u64,
    /// 1-based line where the row starts, for messages.
    pub line: u64,
    /// The fields as read. For a line that could not be read as a row: what
    /// could be read of it (for an open quote, the line cut at each
    /// delimiter), to show in the results.
    pub record: ByteRecord,
    /// Why the line could not be read as a row, if it could not.
    pub problem: Option<String>,
    /// The line as written, when it could not be read as a row (an open
    /// quote, a wrong number of fields), without its line end: the
    /// rows-to-fix file keeps it as it was, to be fixed in place.
    pub raw: Option<Vec<u8>>,
}

/// Why a record is not a row, by the rule that cuts records (see
/// [`records`]) or by the header.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flaw {
    Open(Broken),
    /// Spans lines and has a different number of fields from the header.
    Spills,
    /// Spans lines inside a column invitesync reads (no invite field holds
    /// a line break).
    SpansKnown,
    /// One line with a different number of fields from the header.
    Fields(usize),
    Unreadable(String),
}

impl Flaw {
    /// What is wrong, for a header of `width` names (`error` last or not).
    fn reason(&self, width: usize, error_last: bool) -> String {
        let open = "a quoted field is not closed on this line";
        match self {
            Flaw::Open(Broken::Unclosed) => format!("{open} (it runs to the end of the file)"),
            Flaw::Open(Broken::StrayQuote) => {
                format!("{open} (a quote further down closes it, followed by more text)")
            }
            Flaw::Open(Broken::TooLong) => format!(
                "the line is longer than {} MiB, or {open}",
                MAX_RECORD_BYTES >> 20
            ),
            Flaw::Spills => format!("{open} (fields spill into the lines below)"),
            Flaw::SpansKnown => format!("{open} (a column we read spans several lines)"),
            Flaw::Fields(found) if error_last => format!(
                "expected {width} fields as in the header (or {} without `error`), found {found}",
                width - 1
            ),
            Flaw::Fields(found) => {
                format!("expected {width} fields as in the header, found {found}")
            }
            Flaw::Unreadable(e) => format!("cannot read the input here: {e}"),
        }
    }
}

/// Streams the data rows of an input file.
pub struct Reader<R = Source<'static>> {
    split: Splitter<R>,
    header: Header,
    next_index: u64,
    record: ByteRecord,
    /// The input as messages name it.
    name: PathBuf,
    compression: Compression,
    /// Why reading stopped early (the file could not be read on), if it did.
    failed: Option<String>,
}

impl Reader {
    /// Opens a comma-separated input with invitesync's own column names.
    pub fn open(path: &Path) -> Result<Reader, InputError> {
        Reader::open_as(path, &Layout::default())
    }

    /// Opens an input (`-`: standard input), decompressing it if it is
    /// compressed, to read it with `layout`.
    pub fn open_as(path: &Path, layout: &Layout) -> Result<Reader, InputError> {
        Reader::open_named(path, &source::display_name(path), layout)
    }

    /// [`Reader::open_as`], naming the input `name` in messages (the copy of
    /// piped input is named as what was piped).
    pub fn open_named(path: &Path, name: &Path, layout: &Layout) -> Result<Reader, InputError> {
        let raw = source::open_raw(path).map_err(InputError)?;
        Reader::from_raw(raw, name, layout)
    }

    /// [`Reader::open_named`], with the fingerprint of the bytes it reads,
    /// computed as [`scan`] computes it, to be finished once the rows are
    /// read: what joins the rows with a run's records checks that they are
    /// the rows the run read.
    pub fn open_fingerprinted(
        path: &Path,
        name: &Path,
        layout: &Layout,
    ) -> Result<(Reader, Fingerprint<'static>), InputError> {
        let raw = source::open_raw(path).map_err(InputError)?;
        let (through, fingerprint) = fingerprint::fingerprinted(raw);
        Ok((Reader::from_raw(through, name, layout)?, fingerprint))
    }

    /// Reads the header from the input's raw bytes, decompressed if they are.
    fn from_raw(
        raw: impl Read + Send + 'static,
        name: &Path,
        layout: &Layout,
    ) -> Result<Reader, InputError> {
        let (src, compression) = source::decoded(raw).map_err(|e| {
            InputError::at(
                name,
                1,
                format!("cannot read the header: {}", crate::fs_error::reason(&e)),
            )
        })?;
        let mut reader = Reader::from_source(name, src, layout)?;
        reader.compression = compression;
        Ok(reader)
    }
}

impl<R: BufRead> Reader<R> {
    /// Reads the header from `src` (CSV text); `path` names it in messages.
    pub fn from_source(path: &Path, src: R, layout: &Layout) -> Result<Reader<R>, InputError> {
        let mut split = Splitter::new(src, layout.delimiter);
        let mut first = ByteRecord::new();
        let span = split
            .next(&mut first, true)
            .map_err(|e| InputError::at(path, 1, format!("cannot read the header: {e}")))?;
        let Some(span) = span else {
            return Err(InputError(format!(
                "{}: the file is empty; it needs a header line naming the columns",
                shown_path(path)
            )));
        };
        if let Some(broken) = span.broken {
            return Err(InputError::at(
                path,
                span.line,
                format!(
                    "cannot read the header: {}",
                    Flaw::Open(broken).reason(0, false)
                ),
            ));
        }
        let header = Header::parse(path, span.line, first, layout)?;
        Ok(Reader {
            split,
            header,
            next_index: 0,
            record: ByteRecord::new(),
            name: path.to_path_buf(),
            compression: Compression::None,
            failed: None,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How the input was compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Whether the input started with a UTF-8 byte order mark.
    pub fn had_bom(&self) -> bool {
        self.split.had_bom()
    }

    /// Why the input could not be read to its end (a damaged or truncated
    /// compressed file, a disk error), once that happened: the last row
    /// read stands for that place.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Whether an empty row (spaces, tabs and delimiters only) was skipped so
    /// far: what the input's fingerprint must name ([`Fingerprint::finish`]).
    pub fn skipped_empty_rows(&self) -> bool {
        self.split.skipped_empty_rows()
    }

    /// Bytes consumed so far, for progress on inputs whose row count is unknown.
    pub fn bytes_read(&self) -> u64 {
        self.split.consumed()
    }

    /// The data rows from here to the end, counted by the very rule that
    /// reads them, without keeping them. An input that cannot be read to its
    /// end is an error naming the line and how many rows came before.
    pub fn count_rows(&mut self) -> Result<u64, InputError> {
        let mut n = 0;
        while let Some((line, flaw)) = self.step(false) {
            if let Some(Flaw::Unreadable(e)) = flaw {
                return Err(InputError::at(
                    &self.name,
                    line,
                    format!(
                        "cannot read the input from this line on: {e}; {n} rows came before it \
                         (`invitesync validate` lists them; get the whole file again)"
                    ),
                ));
            }
            n += 1;
        }
        Ok(n)
    }

    /// Reads the next record into `self.record`: its line and what, if
    /// anything, keeps it from being a row. The one place that decides what
    /// a row is, for reading and counting alike. With `want` false the
    /// fields of a plain line are not split (and its field count is not
    /// checked: it is a row either way).
    fn step(&mut self, want: bool) -> Option<(u64, Option<Flaw>)> {
        if self.failed.is_some() {
            return None;
        }
        let span = match self.split.next(&mut self.record, want) {
            Ok(Some(span)) => span,
            Ok(None) => return None,
            Err(e) => {
                let e = crate::fs_error::reason(&e);
                self.failed = Some(e.clone());
                return Some((self.split.next_line(), Some(Flaw::Unreadable(e))));
            }
        };
        let fits = self.header.fits(self.record.len());
        let flaw = if let Some(broken) = span.broken {
            Some(Flaw::Open(broken))
        } else if span.lines > 1 && !fits {
            Some(Flaw::Spills)
        } else if span.lines > 1 && self.spans_known() {
            Some(Flaw::SpansKnown)
        } else if want && !fits {
            Some(Flaw::Fields(self.record.len()))
        } else {
            None
        };
        if matches!(flaw, Some(Flaw::Spills | Flaw::SpansKnown)) {
            self.split.reject(&span);
        }
        Some((span.line, flaw))
    }

    /// Whether a column invitesync reads holds a line break.
    fn spans_known(&self) -> bool {
        self.header.known.iter().flatten().any(|&i| {
            self.record
                .get(i)
                .is_some_and(|f| f.contains(&b'\n') || f.contains(&b'\r'))
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = InputRow;

    fn next(&mut self) -> Option<InputRow> {
        let (line, flaw) = self.step(true)?;
        let index = self.next_index;
        self.next_index += 1;
        let width = self.header.record.len();
        let first = self.split.first_line();
        let (record, raw) = match &flaw {
            None => (self.record.clone(), None),
            Some(Flaw::Fields(_)) => (self.record.clone(), Some(first.to_vec())),
            Some(Flaw::Unreadable(_)) => (ByteRecord::new(), None),
            Some(_) if first.is_empty() => (ByteRecord::new(), None),
            Some(_) => {
                let mut cut = ByteRecord::new();
                let d = self.split.delimiter();
                for f in first.split(|b| *b == d) {
                    cut.push_field(f);
                }
                (cut, Some(first.to_vec()))
            }
        };
        Some(InputRow {
            index,
            line,
            record,
            problem: flaw.map(|f| f.reason(width, self.header.error_last)),
            raw,
        })
    }
}

/// The input's fingerprint ([`Fingerprint`]: BLAKE3 of the row-numbering
/// rule's name and of its bytes as given, compressed or not; by the earlier
/// rule too when it numbered the rows otherwise) and its number of data
/// rows, in one pass: the count comes from the same reader that
/// reads the rows, so a run can always tell when it has recorded every one.
/// A header the reader refuses counts no rows (it is reported where it is
/// read); an input that cannot be read to its end (a truncated or damaged
/// compressed file) is an error, before anything is sent. A path a run
/// holds open reads the file it holds ([`Held`]).
pub fn scan(path: &Path, layout: &Layout) -> Result<(Fingerprinted, u64), InputError> {
    let raw = source::open_file(path).map_err(|e| InputError(unreadable(path, &e)))?;
    scan_stream(raw, path, layout)
}

/// [`scan`] of any stream of the input's bytes; `name` names it in messages.
pub fn scan_stream<R: Read + Send>(
    raw: R,
    name: &Path,
    layout: &Layout,
) -> Result<(Fingerprinted, u64), InputError> {
    let (through, fingerprint) = fingerprint::fingerprinted(raw);
    let (rows, skipped_empty_rows) = match source::decoded(through) {
        Ok((src, _)) => match Reader::from_source(name, src, layout) {
            Ok(mut reader) => (reader.count_rows()?, reader.skipped_empty_rows()),
            Err(_) => (0, false),
        },
        // A stream that fails at once is reported where it is read.
        Err(_) => (0, false),
    };
    // What the reader left unread (after a header it refused) is hashed too.
    let fingerprint = fingerprint
        .finish(skipped_empty_rows)
        .map_err(|e| InputError(unreadable(name, &e)))?;
    Ok((fingerprint, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rows(text: &[u8]) -> (Header, Vec<InputRow>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        let r = Reader::open(f.path()).unwrap();
        let h = r.header().clone();
        (h, r.collect())
    }

    #[test]
    fn header_is_case_insensitive_and_keeps_unknown_columns() {
        let (h, rows) = rows(b"Vendor,NOTE,Email\ngate,hi,a@b.c\n");
        assert_eq!(h.known[0], Some(0));
        assert_eq!(h.known[3], Some(2));
        let rec = &rows[0].record;
        let f = Fields::from_record(&h, rec).unwrap();
        assert_eq!((f.vendor, f.email, f.status), ("gate", "a@b.c", ""));
        assert_eq!(&rec[1], b"hi");
    }

    #[test]
    fn broken_lines_become_rows_with_their_line_numbers() {
        let text = b"vendor,scope,status\ngate,e1,sent\ngate,e2\ngate,\"e3,sent\ngate,e4,sent\ngate,e5,\xff\n";
        let (h, rows) = rows(text);
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(rows[0].problem.is_none());
        assert!(
            rows[1]
                .problem
                .as_ref()
                .unwrap()
                .contains("expected 3 fields")
        );
        assert_eq!(&rows[1].record[1], b"e2", "what could be read is kept");
        assert!(
            rows[2]
                .problem
                .as_ref()
                .unwrap()
                .contains("quoted field is not closed")
        );
        assert!(
            rows[3].problem.is_none(),
            "reading resumes after the open quote"
        );
        assert_eq!(&rows[3].record[1], b"e4");
        let bad = &rows[4].record;
        assert_eq!(Fields::from_record(&h, bad).unwrap_err().field, "status");
        let idx: Vec<u64> = rows.iter().map(|r| r.index).collect();
        assert_eq!(idx, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn empty_rows_are_neither_rows_nor_the_header_and_renumber_the_fingerprint() {
        let text = b",,,\n \t\nvendor,scope,status\ngate,e1,sent\n,,\n\ngate,e2,sent\n , ,\r\n";
        let (h, rows) = rows(text);
        assert_eq!(
            h.known[0],
            Some(0),
            "the header is the first line with names"
        );
        let at: Vec<(u64, u64)> = rows.iter().map(|r| (r.index, r.line)).collect();
        assert_eq!(at, [(0, 4), (1, 7)]);
        assert!(rows.iter().all(|r| r.problem.is_none()));

        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        let (fp, n) = scan(f.path(), &Layout::default()).unwrap();
        assert_eq!(n, 2, "the count reads by the same rule");
        let mut h = blake3::Hasher::new();
        h.update(b"invitesync rows 2\0");
        h.update(text);
        let earlier = h.finalize().to_hex().to_string();
        assert_eq!(fp.earlier.as_deref(), Some(earlier.as_str()));
        assert_ne!(fp.now, earlier);

        // Without empty rows (blank lines are no news), the fingerprint is
        // the one the earlier rule gave.
        let plain = b"vendor,scope,status\ngate,e1,sent\n\r\n\ngate,e2,sent\n";
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(plain).unwrap();
        let (fp, n) = scan(f.path(), &Layout::default()).unwrap();
        let mut h = blake3::Hasher::new();
        h.update(b"invitesync rows 2\0");
        h.update(plain);
        assert_eq!(
            (fp.now, fp.earlier, n),
            (h.finalize().to_hex().to_string(), None, 2)
        );
    }

    #[test]
    fn open_quote_in_last_column_does_not_swallow_the_file() {
        let (_, rows) = rows(b"vendor,status\ngate,\"sent\ngate,sent\ngate,sent\n");
        assert_eq!(rows.len(), 3);
        assert!(rows[0].problem.is_some());
        assert!(rows[1].problem.is_none() && rows[2].problem.is_none());
    }

    #[test]
    fn quoted_line_breaks_in_other_columns_are_fine() {
        let (_, rows) = rows(b"vendor,notes\ngate,\"two\nlines\"\ngate,x\n");
        assert_eq!(rows.len(), 2);
        assert!(rows[0].problem.is_none());
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn utf16_and_cr_only_files_are_named() {
        for (text, what) in [
            (&b"\xff\xfev\x00e\x00n\x00\n\x00"[..], "UTF-16"),
            (b"vendor,status\rgate,sent\r", "CR alone"),
        ] {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(text).unwrap();
            let e = Reader::open(f.path()).err().unwrap();
            assert!(e.0.contains(what), "{e}");
        }
    }

    #[test]
    fn header_needs_a_vendor_column() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"vendr,scope\n").unwrap();
        let e = Reader::open(f.path()).err().unwrap();
        assert!(e.0.contains("no `vendor` column"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"vendor,emial,Status\n").unwrap();
        let r = Reader::open(f.path()).unwrap();
        assert_eq!(
            r.header().suspicious_columns(),
            vec![("emial".to_string(), "email")]
        );
    }
}

#[cfg(test)]
mod crlf_tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn crlf_files_number_lines_like_lf_files() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"vendor,status\r\ngate,a\r\ngate,\"b\r\ngate,c\r\ngate,d")
            .unwrap();
        let rows: Vec<InputRow> = Reader::open(f.path()).unwrap().collect();
        let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        assert!(rows[1].problem.is_some());
        assert!(rows[2].problem.is_none() && rows[3].problem.is_none());
    }
}
