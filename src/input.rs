//! The input CSV, read one row at a time.
//!
//! Memory stays flat whatever the file's size: one record is parsed, handed
//! on, and forgotten. A broken line never stops the run: it becomes one row
//! with the reason and its line number. An unterminated quote would otherwise
//! swallow the rest of the file into one field, so a record that runs over
//! several lines with a line break inside one of the columns we read (no
//! invite field legitimately holds one) is cut back to its first line, which
//! is reported, and reading starts again on the next line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use csv::{ByteRecord, Position};

use crate::change::Invalid;

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

/// Where each known column sits in the header, if present.
#[derive(Debug, Clone)]
pub struct Header {
    /// The header row as written, for the results file.
    pub record: ByteRecord,
    /// For each of [`KNOWN_COLUMNS`], its position in the record.
    pub known: [Option<usize>; 9],
}

impl Header {
    pub fn parse(path: &Path, record: ByteRecord) -> Result<Header, InputError> {
        let mut known = [None; 9];
        for (i, raw) in record.iter().enumerate() {
            let name = String::from_utf8_lossy(raw);
            let name = name
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase();
            if let Some(k) = KNOWN_COLUMNS.iter().position(|c| *c == name) {
                if known[k].is_some() {
                    return Err(InputError::at(
                        path,
                        1,
                        format!("the header names `{name}` twice"),
                    ));
                }
                known[k] = Some(i);
            }
        }
        if known[0].is_none() {
            let names: Vec<String> = record
                .iter()
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            return Err(InputError::at(
                path,
                1,
                format!(
                    "no `vendor` column in the header (it has: {}); the first line must name the columns, e.g. vendor,scope,invite_id,email,status",
                    names.join(", ")
                ),
            ));
        }
        Ok(Header { record, known })
    }

    /// Known columns the header lacks, each with a header name that looks like
    /// a misspelling of it, for a warning before the run.
    pub fn suspicious_columns(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for (k, col) in KNOWN_COLUMNS.iter().enumerate() {
            if self.known[k].is_some() {
                continue;
            }
            for raw in self.record.iter() {
                let name = String::from_utf8_lossy(raw).trim().to_ascii_lowercase();
                let squashed: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                let want: String = col.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                if !KNOWN_COLUMNS.contains(&name.as_str())
                    && (squashed == want || close(&name, col))
                {
                    out.push((name.clone(), *col));
                }
            }
        }
        out
    }
}

/// At most one edit apart, ignoring case: `emial` for `email`, `statu` for `status`.
fn close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 2 && a.len() > 3
}

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
    /// Reads the known columns; one that is not UTF-8 makes the row invalid.
    pub fn from_record(header: &Header, record: &'a ByteRecord) -> Result<Fields<'a>, Invalid> {
        let mut v = [""; 9];
        for (k, slot) in v.iter_mut().enumerate() {
            if let Some(i) = header.known[k]
                && let Some(raw) = record.get(i)
            {
                let text = std::str::from_utf8(raw)
                    .map_err(|_| Invalid::new(KNOWN_COLUMNS[k], "not valid UTF-8"))?
                    .trim();
                *slot = crate::results::unneutralise(text);
            }
        }
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
}

/// Cuts the `\r` of a CRLF line end off a record's last field.
fn strip_cr(record: &mut ByteRecord) {
    let Some(last) = record.iter().next_back() else {
        return;
    };
    if !last.ends_with(b"\r") {
        return;
    }
    let n = record.len();
    let mut fixed = ByteRecord::with_capacity(record.as_slice().len(), n);
    for (i, f) in record.iter().enumerate() {
        fixed.push_field(if i + 1 == n { &f[..f.len() - 1] } else { f });
    }
    fixed.set_position(record.position().cloned());
    *record = fixed;
}

/// A problem with the file as a whole (unreadable, no header).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl InputError {
    fn at(path: &Path, line: u64, msg: String) -> Self {
        InputError(format!("{}:{line}: {msg}", path.display()))
    }
}

/// One data row of the input.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// 0-based number of the data row: the row's identity in the state file.
    pub index: u64,
    /// 1-based line where the row starts, for messages.
    pub line: u64,
    /// The fields as read (for a broken line: what could be read of it, to
    /// carry to the results and the failed-rows file).
    pub record: ByteRecord,
    /// Why the line could not be read as a row, if it could not.
    pub problem: Option<String>,
}

/// Streams the data rows of an input file.
pub struct Reader {
    path: PathBuf,
    csv: csv::Reader<BufReader<File>>,
    header: Header,
    next_index: u64,
    record: ByteRecord,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, InputError> {
        let file = File::open(path)
            .map_err(|e| InputError(format!("cannot open {}: {e}", path.display())))?;
        // Records end at `\n` only, so that positions and line numbers are
        // exact for CRLF files too; the `\r` a CRLF leaves is cut below.
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(BufReader::with_capacity(256 * 1024, file));
        let mut first = ByteRecord::new();
        let got = csv
            .read_byte_record(&mut first)
            .map_err(|e| InputError::at(path, 1, format!("cannot read the header: {e}")))?;
        if !got {
            return Err(InputError(format!(
                "{}: the file is empty; it needs a header line naming the columns",
                path.display()
            )));
        }
        strip_cr(&mut first);
        let header = Header::parse(path, first)?;
        Ok(Reader {
            path: path.to_path_buf(),
            csv,
            header,
            next_index: 0,
            record: ByteRecord::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes consumed so far, for progress on inputs whose row count is unknown.
    pub fn bytes_read(&self) -> u64 {
        self.csv.position().byte()
    }

    /// The byte offset of the line after the one starting at `start`.
    fn next_line_after(&self, start: &Position) -> std::io::Result<u64> {
        let mut f = BufReader::new(File::open(&self.path)?);
        f.seek(SeekFrom::Start(start.byte()))?;
        let mut skipped = Vec::new();
        let n = f
            .by_ref()
            .take(64 * 1024 * 1024)
            .read_until(b'\n', &mut skipped)?;
        Ok(start.byte() + n as u64)
    }

    /// Whether a record read across several lines has a line break inside a
    /// column we read: the sign of a quote left open.
    fn runaway(&self, record: &ByteRecord, start_line: u64) -> bool {
        let end_line = self.csv.position().line();
        if end_line <= start_line + 1 {
            return false;
        }
        if record.len() != self.header.record.len() {
            return true;
        }
        self.header.known.iter().flatten().any(|&i| {
            record
                .get(i)
                .is_some_and(|f| f.contains(&b'\n') || f.contains(&b'\r'))
        })
    }

    fn resync(&mut self, start: &Position) -> Result<(), String> {
        let next = self.next_line_after(start).map_err(|e| e.to_string())?;
        let mut pos = Position::new();
        pos.set_byte(next)
            .set_line(start.line() + 1)
            .set_record(start.record() + 1);
        self.csv.seek(pos).map_err(|e| e.to_string())
    }
}

impl Iterator for Reader {
    type Item = InputRow;

    fn next(&mut self) -> Option<InputRow> {
        let start = self.csv.position().clone();
        let index = self.next_index;
        let read = self.csv.read_byte_record(&mut self.record);
        strip_cr(&mut self.record);
        let problem = match read {
            Ok(false) => return None,
            Ok(true) if self.runaway(&self.record, start.line()) => {
                let reason = if self.record.len() != self.header.record.len() {
                    "a quoted field is not closed on this line (fields spill into the lines below)"
                } else {
                    "a quoted field is not closed on this line (a column we read spans several lines)"
                };
                if let Err(e) = self.resync(&start) {
                    tracing::warn!("cannot resume reading after line {}: {e}", start.line());
                }
                // What was read ran over later lines: keep none of it.
                self.record.clear();
                Some(reason.to_string())
            }
            Ok(true) if self.record.len() != self.header.record.len() => Some(format!(
                "expected {} fields as in the header, found {}",
                self.header.record.len(),
                self.record.len()
            )),
            Ok(true) => None,
            Err(e) => {
                self.record.clear();
                Some(format!("cannot parse the line: {e}"))
            }
        };
        self.next_index += 1;
        Some(InputRow {
            index,
            line: start.line(),
            record: self.record.clone(),
            problem,
        })
    }
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
