//! The header row: where each column invitesync reads sits, and warnings
//! for names that look like misspellings of one.

use std::path::Path;

use csv::ByteRecord;

use super::mapping::{Layout, delimiter_flag};
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
    /// The vendor of every row (`--vendor`, `[input] vendor`); a row's own
    /// vendor cell, if the file has one, must then be empty or the same.
    pub fixed_vendor: Option<String>,
}

impl Header {
    /// Reads the header record, found on `line`.
    pub fn parse(
        path: &Path,
        line: u64,
        record: ByteRecord,
        layout: &Layout,
    ) -> Result<Header, InputError> {
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
        let keys: Vec<Vec<u8>> = record.iter().map(name_key).collect();
        let mut known = [None; 9];
        // Mapped columns first: the header names they claim are theirs, even
        // one that is another column's own name.
        for (k, mapped) in layout.columns.iter().enumerate() {
            let Some((wanted, given)) = mapped else {
                continue;
            };
            let want = name_key(wanted.as_bytes());
            let mut at = keys.iter().enumerate().filter(|(_, n)| **n == want);
            let Some((i, _)) = at.next() else {
                return Err(InputError::at(
                    path,
                    line,
                    format!(
                        "{}: the file has no column `{}` (its columns: {}){}",
                        given.mapping(KNOWN_COLUMNS[k], wanted),
                        shown(wanted),
                        listed(&record),
                        delimiter_hint(layout, &keys)
                    ),
                ));
            };
            if at.next().is_some() {
                return Err(InputError::at(
                    path,
                    line,
                    format!("the header names `{}` twice", shown(wanted)),
                ));
            }
            known[k] = Some(i);
        }
        let claimed: Vec<usize> = known.iter().flatten().copied().collect();
        for (i, name) in keys.iter().enumerate() {
            if claimed.contains(&i) {
                continue;
            }
            let Some(k) = KNOWN_COLUMNS.iter().position(|c| c.as_bytes() == name) else {
                continue;
            };
            if layout.columns[k].is_some() {
                // Mapped elsewhere: this one is carried, not read.
                continue;
            }
            if known[k].is_some() {
                return Err(InputError::at(
                    path,
                    line,
                    format!("the header names `{}` twice", KNOWN_COLUMNS[k]),
                ));
            }
            known[k] = Some(i);
        }
        if known[0].is_none() && layout.vendor.is_none() {
            if let Some(taken) = taken_by_mapping(&keys, &known, layout, KNOWN_COLUMNS[0]) {
                return Err(InputError::at(
                    path,
                    line,
                    format!(
                        "the header's `vendor` column is {taken}, so no column gives each row's \
                         vendor: map another column to {}, name the vendor column with \
                         --column vendor=NAME, or say whose the rows are with --vendor NAME",
                        KNOWN_COLUMNS[taken.column]
                    ),
                ));
            }
            let hint = delimiter_hint(layout, &keys);
            let advice = if hint.is_empty() {
                "; the first line must name the columns, e.g. vendor,scope,invite_id,email,status; \
                 another name for the vendor column can be mapped with --column vendor=NAME, and \
                 a file of one vendor's rows can say which with --vendor NAME"
            } else {
                ""
            };
            return Err(InputError::at(
                path,
                line,
                format!(
                    "no `vendor` column in the header (it has: {}){hint}{advice}",
                    listed(&record),
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
            fixed_vendor: layout.vendor.as_ref().map(|(v, _)| v.clone()),
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
            for (i, raw) in self.record.iter().enumerate() {
                if self.known.contains(&Some(i)) {
                    continue;
                }
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

/// A header name as compared with others: trimmed, without a byte order
/// mark, lower case (header names are matched case-insensitively).
pub fn name_key(name: &[u8]) -> Vec<u8> {
    let name = String::from_utf8_lossy(name);
    let name = name.trim().trim_start_matches('\u{feff}').trim();
    name.to_ascii_lowercase().into_bytes()
}

/// A column of the header named after a column invitesync reads, which a
/// mapping gave to another (`--column status=vendor`): read as that one.
pub(super) struct Taken<'a> {
    /// The column of [`KNOWN_COLUMNS`] it is read as.
    pub column: usize,
    /// Its position in the header.
    pub at: usize,
    layout: &'a Layout,
}

impl std::fmt::Display for Taken<'_> {
    /// `mapped to status (--column status=vendor)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = KNOWN_COLUMNS[self.column];
        match &self.layout.columns[self.column] {
            Some((header, given)) => {
                write!(f, "mapped to {name} ({})", given.mapping(name, header))
            }
            None => write!(f, "read as {name}"),
        }
    }
}

/// Whether the header's column named `own` was taken by a mapping of another
/// column (see [`Taken`]). `keys` are the header's [`name_key`]s and `known`
/// where each column was found.
pub(super) fn taken_by_mapping<'a>(
    keys: &[Vec<u8>],
    known: &[Option<usize>; 9],
    layout: &'a Layout,
    own: &str,
) -> Option<Taken<'a>> {
    let at = keys.iter().position(|k| k.as_slice() == own.as_bytes())?;
    let column = known
        .iter()
        .position(|&k| k == Some(at))
        .filter(|&c| KNOWN_COLUMNS[c] != own)?;
    Some(Taken { column, at, layout })
}

/// The header's names, escaped, for a message.
fn listed(record: &ByteRecord) -> String {
    let names: Vec<String> = record
        .iter()
        .map(|n| shown(&String::from_utf8_lossy(n)).into_owned())
        .collect();
    names.join(", ")
}

/// When the header line, cut at another of the usual delimiters, names the
/// columns it should: which `--delimiter` to pass.
fn delimiter_hint(layout: &Layout, keys: &[Vec<u8>]) -> String {
    let line = keys.join(&layout.delimiter);
    // Excel's hint line (`sep=;`), which some exports put above the header.
    if let Some(&[d]) = line.trim_ascii().strip_prefix(b"sep=") {
        let value = match d {
            b'\t' => "tab".to_string(),
            d => char::from(d).to_string(),
        };
        return format!(
            ": the first line `sep={}` is a spreadsheet's note of the delimiter, not a \
             header; remove that line{}",
            shown(&char::from(d).to_string()),
            if d == layout.delimiter {
                String::new()
            } else {
                format!(
                    " and pass --delimiter {} (or set `delimiter = \"{value}\"` in the \
                     config's [input] table)",
                    delimiter_flag(d)
                )
            }
        );
    }
    let wanted = |name: &[u8]| {
        KNOWN_COLUMNS.iter().any(|c| c.as_bytes() == name)
            || layout
                .columns
                .iter()
                .flatten()
                .any(|(h, _)| name_key(h.as_bytes()) == name)
    };
    for d in [b';', b'\t', b'|', b','] {
        if d == layout.delimiter {
            continue;
        }
        let found = line
            .split(|b| *b == d)
            .filter(|name| wanted(name.trim_ascii()))
            .count();
        if found >= 2 {
            let value = match d {
                b'\t' => "tab".to_string(),
                d => char::from(d).to_string(),
            };
            return format!(
                ": its names are separated by {}, so pass --delimiter {} (or set \
                 `delimiter = \"{value}\"` in the config's [input] table)",
                if d == b'\t' {
                    "tabs".to_string()
                } else {
                    format!("`{value}`")
                },
                delimiter_flag(d),
            );
        }
    }
    String::new()
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

#[cfg(test)]
mod tests {
    use super::super::mapping::{Given, InputConfig, InputFlags, parse_column_flag};
    use super::*;

    fn layout(flag: &str) -> Layout {
        let flags = InputFlags {
            columns: vec![parse_column_flag(flag).unwrap()],
            ..InputFlags::default()
        };
        Layout::resolve(&InputConfig::default(), &flags, &["gate"]).unwrap()
    }

    fn record(names: &str) -> ByteRecord {
        ByteRecord::from(names.split(',').collect::<Vec<_>>())
    }

    #[test]
    fn a_spreadsheets_sep_line_is_named_for_what_it_is() {
        let parse = |names: &str| {
            Header::parse(Path::new("a.csv"), 1, record(names), &Layout::default())
                .unwrap_err()
                .0
        };
        let e = parse("sep=;");
        assert!(
            e.ends_with(
                "the first line `sep=;` is a spreadsheet's note of the delimiter, not a header; \
                 remove that line and pass --delimiter ';' (or set `delimiter = \";\"` in the \
                 config's [input] table)"
            ),
            "{e}"
        );
        // The file's delimiter already: only the line is in the way.
        assert!(
            parse("sep=,").ends_with("not a header; remove that line"),
            "{e}"
        );
    }

    #[test]
    fn a_vendor_column_mapped_to_another_is_not_called_missing() {
        let e = Header::parse(
            Path::new("a.csv"),
            1,
            record("vendor,scope,invite_id,status"),
            &layout("status=vendor"),
        )
        .unwrap_err();
        assert!(
            e.0.contains(
                "the header's `vendor` column is mapped to status (--column status=vendor), so \
                 no column gives each row's vendor"
            ),
            "{e}"
        );
        assert!(!e.0.contains("no `vendor` column"), "{e}");
        let mut l = layout("status=vendor");
        l.columns[7] = Some(("vendor".into(), Given::Config));
        let e = Header::parse(Path::new("a.csv"), 1, record("vendor,status"), &l).unwrap_err();
        assert!(e.0.contains("([input.columns] status = \"vendor\")"), "{e}");
        let e = Header::parse(
            Path::new("a.csv"),
            1,
            record("scope,status"),
            &layout("status=scope"),
        )
        .unwrap_err();
        assert!(e.0.contains("no `vendor` column in the header"), "{e}");
    }
}
