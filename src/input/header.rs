//! The header row: where each column invitesync reads sits, and warnings
//! for names that look like misspellings of one.

use std::path::Path;

use csv::ByteRecord;

use super::{InputError, KNOWN_COLUMNS, shown};

/// Where each known column sits in the header, if present.
#[derive(Debug, Clone)]
pub struct Header {
    /// The header row as written, for the results file.
    pub record: ByteRecord,
    /// For each of [`KNOWN_COLUMNS`], its position in the record.
    pub known: [Option<usize>; 9],
    /// Whether the last column is named `error`, as in a rows-to-fix file:
    /// a row may leave it out (lines that could not be read are copied there
    /// as written, without it, and stay one field short once fixed).
    pub error_last: bool,
}

impl Header {
    /// Reads the header record, found on `line`.
    pub fn parse(path: &Path, line: u64, record: ByteRecord) -> Result<Header, InputError> {
        if record
            .get(0)
            .is_some_and(|n| n.starts_with(b"\xff\xfe") || n.starts_with(b"\xfe\xff"))
        {
            return Err(InputError::at(
                path,
                line,
                "the file is UTF-16 text (it starts with a UTF-16 byte order mark); \
                 save it as CSV in UTF-8"
                    .into(),
            ));
        }
        if record.iter().any(|n| n.contains(&b'\r')) {
            return Err(InputError::at(
                path,
                line,
                "the header holds a carriage return (CR) without a line feed: the file's lines \
                 seem to end with CR alone (an old Mac format); save it with LF or CRLF line ends"
                    .into(),
            ));
        }
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
                        line,
                        format!("the header names `{name}` twice"),
                    ));
                }
                known[k] = Some(i);
            }
        }
        if known[0].is_none() {
            let names: Vec<String> = record
                .iter()
                .map(|n| shown(&String::from_utf8_lossy(n)).into_owned())
                .collect();
            return Err(InputError::at(
                path,
                line,
                format!(
                    "no `vendor` column in the header (it has: {}); the first line must name the columns, e.g. vendor,scope,invite_id,email,status",
                    names.join(", ")
                ),
            ));
        }
        let error_last = record
            .iter()
            .next_back()
            .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(b"error"));
        Ok(Header {
            record,
            known,
            error_last,
        })
    }

    /// Whether a record of `fields` fields is a row of this header.
    pub fn fits(&self, fields: usize) -> bool {
        let width = self.record.len();
        fields == width || (self.error_last && fields + 1 == width)
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

impl Header {
    /// A warning per [`Header::suspicious_columns`], for `run` and `validate`
    /// alike: a misspelt column is read as missing, so every row would come
    /// out invalid (or, for an optional column, silently without it).
    pub fn column_warnings(&self) -> Vec<String> {
        self.suspicious_columns()
            .into_iter()
            .map(|(found, meant)| {
                let found = shown(&found);
                format!(
                    "the input has a column `{found}` but no `{meant}`: did you mean `{meant}`? \
                     (`{found}` is not read, only copied to the results)"
                )
            })
            .collect()
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
