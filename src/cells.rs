//! Cells as invitesync writes them: neutralised for spreadsheets, quoted for
//! CSV, and read back as exactly the values they were written from, however
//! many times a rows-to-fix file goes round.

use std::borrow::Cow;
use std::io::{self, Write};

use csv::ByteRecord;

/// Spreadsheets run a cell that starts with one of these as a formula; a
/// leading apostrophe makes it text (OWASP's advice for CSV injection).
const FORMULA_START: [u8; 6] = [b'=', b'+', b'-', b'@', b'\t', b'\r'];

/// Whether a cell, past any leading apostrophes, starts like a formula.
fn formula_like(cell: &[u8]) -> bool {
    cell.iter()
        .find(|b| **b != b'\'')
        .is_some_and(|b| FORMULA_START.contains(b))
}

/// Makes a cell safe to open in a spreadsheet: one apostrophe more in front
/// of a cell that starts like a formula, past any apostrophes it already
/// has, so that [`unneutralise`] gives back every value exactly (`=1` is
/// written `'=1`, and a real `'=1` is written `''=1`).
pub fn neutralise(cell: &[u8]) -> Cow<'_, [u8]> {
    if formula_like(cell) {
        let mut v = Vec::with_capacity(cell.len() + 1);
        v.push(b'\'');
        v.extend_from_slice(cell);
        Cow::Owned(v)
    } else {
        Cow::Borrowed(cell)
    }
}

/// Undoes [`neutralise`] on a value read back, so that a fixed rows-to-fix
/// file feeds back exactly what was meant.
pub fn unneutralise(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if formula_like(rest.as_bytes()) => rest,
        _ => text,
    }
}

/// [`unneutralise`] for a cell that need not be UTF-8.
pub fn unneutralise_bytes(cell: &[u8]) -> &[u8] {
    match cell.strip_prefix(b"'") {
        Some(rest) if formula_like(rest) => rest,
        _ => cell,
    }
}

/// An input cell as it goes into a file: read as a value, then neutralised.
/// Writing a file's own cells again gives the same cells.
pub fn copied(cell: &[u8]) -> Cow<'_, [u8]> {
    neutralise(unneutralise_bytes(cell))
}

/// A CSV file being written: quoted only where needed, `\n` line ends,
/// fields separated by the input's own delimiter.
pub struct CsvOut<W: Write> {
    w: W,
    delimiter: u8,
}

impl<W: Write> CsvOut<W> {
    pub fn new(w: W, delimiter: u8) -> Self {
        CsvOut { w, delimiter }
    }

    pub fn record(&mut self, record: &ByteRecord) -> io::Result<()> {
        // Cells of nothing but spaces and tabs, not a blank line or an empty
        // row (which readers skip): the first one is quoted.
        let empty = record
            .iter()
            .all(|cell| cell.iter().all(|b| matches!(b, b' ' | b'\t')));
        let d = self.delimiter;
        for (i, cell) in record.iter().enumerate() {
            if i > 0 {
                self.w.write_all(&[d])?;
            }
            if (empty && i == 0)
                || cell
                    .iter()
                    .any(|b| *b == d || matches!(b, b'"' | b'\r' | b'\n'))
            {
                self.w.write_all(b"\"")?;
                for part in cell.split_inclusive(|b| *b == b'"') {
                    self.w.write_all(part)?;
                    if part.ends_with(b"\"") {
                        self.w.write_all(b"\"")?;
                    }
                }
                self.w.write_all(b"\"")?;
            } else {
                self.w.write_all(cell)?;
            }
        }
        self.w.write_all(b"\n")
    }

    /// A line that could not be read as a row, as it was written, so that it
    /// can be fixed in place; only what a spreadsheet would run as a formula
    /// is neutralised, piece by piece between delimiters (an apostrophe added
    /// after an opening quote if there is one). Written again, it is the same.
    pub fn raw_line(&mut self, line: &[u8]) -> io::Result<()> {
        let d = self.delimiter;
        for (i, piece) in line.split(|b| *b == d).enumerate() {
            if i > 0 {
                self.w.write_all(&[d])?;
            }
            let (quote, rest) = match piece.strip_prefix(b"\"") {
                Some(rest) => (&b"\""[..], rest),
                None => (&b""[..], piece),
            };
            self.w.write_all(quote)?;
            self.w.write_all(&copied(rest))?;
        }
        self.w.write_all(b"\n")
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_comes_back_exactly() {
        for value in [
            "=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'=1", "''-2", "'quoted", "'", "''",
            "plain", "",
        ] {
            let n = neutralise(value.as_bytes());
            assert!(
                !n.first().is_some_and(|b| FORMULA_START.contains(b)),
                "{value:?}"
            );
            assert_eq!(unneutralise(std::str::from_utf8(&n).unwrap()), value);
            assert_eq!(copied(&n), n, "written again, the same: {value:?}");
        }
        assert_eq!(&*neutralise(b"=x"), b"'=x");
        assert_eq!(&*neutralise(b"'=x"), b"''=x");
        assert_eq!(&*neutralise(b"'x"), b"'x");
    }

    #[test]
    fn quotes_only_where_needed() {
        let mut out = CsvOut::new(Vec::new(), b',');
        out.record(&ByteRecord::from(vec!["a", "b,c", "d\"e", "f\ng", ""]))
            .unwrap();
        out.record(&ByteRecord::from(vec![""])).unwrap();
        out.raw_line(b"=cmd,\"@x,'-y,plain").unwrap();
        out.raw_line(b"'=cmd,\"'@x,'-y,plain").unwrap();
        assert_eq!(
            String::from_utf8(out.into_inner()).unwrap(),
            "a,\"b,c\",\"d\"\"e\",\"f\ng\",\n\"\"\n'=cmd,\"'@x,'-y,plain\n'=cmd,\"'@x,'-y,plain\n"
        );
        let mut out = CsvOut::new(Vec::new(), b';');
        out.record(&ByteRecord::from(vec!["a,b", "c;d"])).unwrap();
        out.record(&ByteRecord::from(vec!["", " ", "\t"])).unwrap();
        out.raw_line(b"=x;\"y").unwrap();
        assert_eq!(
            String::from_utf8(out.into_inner()).unwrap(),
            "a,b;\"c;d\"\n\"\"; ;\t\n'=x;\"y\n",
            "cells that would read as an empty row are not one"
        );
    }
}
