//! The input's bytes cut into records, one at a time, by one rule that both
//! the row count and every read of the rows follow (so the count can never
//! disagree with what is read):
//!
//! - Lines end at `\n`; a `\r` before it (CRLF) belongs to the line end,
//!   except inside quotes. A UTF-8 byte order mark at the start is skipped.
//! - A blank line (nothing, or only `\r`, before the line end) is not a
//!   record, and neither is an empty row: an unquoted line of nothing but
//!   spaces, tabs and delimiters (`,,,` as spreadsheets leave after the last
//!   row). Skipping an empty row numbers the rows after it otherwise than
//!   the earlier rule did, which read it as a row; the splitter says whether
//!   it skipped one ([`Splitter::skipped_empty_rows`]), and the fingerprint
//!   names the rule by it (`fingerprint.rs`).
//! - A field that starts with `"` is quoted: `""` inside it is one quote, and
//!   it may hold delimiters and line breaks, so one record may span lines.
//! - A quote left open is told apart from a line break inside a quoted cell
//!   by what follows: the end of the file still inside the quotes, or a
//!   quote that "closes" it and is followed by more text (`"a⏎b"c`, the
//!   next row's opening quote). Such a record is broken: only its first line
//!   becomes a row, and the lines after it are read again as rows of their
//!   own. The reader adds checks that need the header (see `Reader::step`).
//! - No record spans more than [`MAX_RECORD_BYTES`]: memory stays bounded
//!   whatever the file holds, and a quote left open near the top costs one
//!   bounded look-ahead, not the rest of the file.

use std::io::{self, BufRead, Read};

use csv::ByteRecord;

/// The most bytes one record may span (an id of a megabyte is still read,
/// and refused by the vendor's rules with its line number).
pub const MAX_RECORD_BYTES: usize = 16 << 20;

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why a record could not be cut out cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// A quoted field is still open at the end of the file.
    Unclosed,
    /// A quoted field running over lines "closes" and goes on with more text.
    StrayQuote,
    /// The record runs over more than [`MAX_RECORD_BYTES`].
    TooLong,
}

/// Where the record just read lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The 1-based line it starts on.
    pub line: u64,
    /// How many lines it took.
    pub lines: u64,
    pub broken: Option<Broken>,
}

/// How a line read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    /// End of the file; nothing read.
    Nothing,
    /// A whole line, with its `\n`.
    Line,
    /// The file's last line, without a `\n`.
    Last,
    /// The byte budget ran out before the line ended.
    Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    Unquoted,
    Quoted,
    /// Just after a `"` inside a quoted field.
    QuoteInQuoted,
}

/// Cuts records out of a byte stream.
pub struct Splitter<R> {
    src: R,
    /// Lines read ahead and given back (a broken record's later lines), read
    /// again before `src`.
    again: Vec<u8>,
    again_at: usize,
    /// The number of the next line to read.
    next_line: u64,
    bom_checked: bool,
    /// The record being read, as bytes, line ends included.
    buf: Vec<u8>,
    /// Where its first line ends in `buf`.
    first_end: usize,
    field: Vec<u8>,
    consumed: u64,
    /// The byte between fields (`,` unless the input says otherwise).
    delimiter: u8,
    /// Whether the source started with a UTF-8 byte order mark.
    had_bom: bool,
    /// Whether an empty row (not a blank line) was skipped.
    skipped_empty: bool,
}

impl<R: BufRead> Splitter<R> {
    /// A splitter of fields separated by `delimiter` (never `"`, CR or LF).
    pub fn new(src: R, delimiter: u8) -> Self {
        Splitter {
            src,
            again: Vec::new(),
            again_at: 0,
            next_line: 1,
            bom_checked: false,
            buf: Vec::with_capacity(4096),
            first_end: 0,
            field: Vec::new(),
            consumed: 0,
            delimiter,
            had_bom: false,
            skipped_empty: false,
        }
    }

    /// The byte between fields.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Whether the source started with a UTF-8 byte order mark (a file
    /// written back for the same tool gets one too).
    pub fn had_bom(&self) -> bool {
        self.had_bom
    }

    /// Whether a line of nothing but spaces, tabs and delimiters (and not
    /// nothing at all) was skipped so far: a line an earlier release read
    /// as a row, so the rows after it are numbered otherwise than it did.
    pub fn skipped_empty_rows(&self) -> bool {
        self.skipped_empty
    }

    /// Bytes taken from the source so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The number of the line the next record would start on (if no blank
    /// line comes first).
    pub fn next_line(&self) -> u64 {
        self.next_line
    }

    /// The first line of the record just read, without its line end (empty
    /// for a line too long to keep).
    pub fn first_line(&self) -> &[u8] {
        trim_line_end(&self.buf[..self.first_end])
    }

    /// Reads the next record. Its fields go to `fields`; with `want` false,
    /// a one-line record without quotes is only counted, not split (the
    /// decision where records end is the same either way).
    pub fn next(&mut self, fields: &mut ByteRecord, want: bool) -> io::Result<Option<Span>> {
        fields.clear();
        let line = loop {
            self.buf.clear();
            self.first_end = 0;
            let line = self.next_line;
            match self.read_line(MAX_RECORD_BYTES)? {
                Got::Nothing => return Ok(None),
                Got::Cut => {
                    self.skip_line()?;
                    self.buf.clear();
                    return Ok(Some(Span {
                        line,
                        lines: 1,
                        broken: Some(Broken::TooLong),
                    }));
                }
                Got::Line | Got::Last if is_blank(&self.buf) => continue,
                Got::Line | Got::Last if is_empty_row(&self.buf, self.delimiter) => {
                    self.skipped_empty = true;
                    continue;
                }
                Got::Line | Got::Last => break line,
            }
        };
        self.first_end = self.buf.len();
        if !self.buf.contains(&b'"') {
            if want {
                let d = self.delimiter;
                for f in trim_line_end(&self.buf).split(|b| *b == d) {
                    fields.push_field(f);
                }
            }
            return Ok(Some(Span {
                line,
                lines: 1,
                broken: None,
            }));
        }
        let (lines, broken) = self.quoted(fields)?;
        let span = Span {
            line,
            lines,
            broken,
        };
        if broken.is_some() {
            self.give_back(&span);
        }
        Ok(Some(span))
    }

    /// Splits a record with quotes in it, reading more lines while a quoted
    /// field is open: how many lines it took, and whether it is broken.
    fn quoted(&mut self, fields: &mut ByteRecord) -> io::Result<(u64, Option<Broken>)> {
        let mut state = State::Start;
        let mut stray = false;
        let mut lines = 1u64;
        let mut from = 0;
        let d = self.delimiter;
        self.field.clear();
        loop {
            let end = self.buf.len();
            let newline = self.buf[end - 1] == b'\n';
            let body = if newline { end - 1 } else { end };
            let (body, cr) = if body > from && self.buf[body - 1] == b'\r' {
                (body - 1, true)
            } else {
                (body, false)
            };
            for &b in &self.buf[from..body] {
                state = match (state, b) {
                    (State::Start, b'"') => State::Quoted,
                    (State::Start | State::Unquoted | State::QuoteInQuoted, b) if b == d => {
                        fields.push_field(&self.field);
                        self.field.clear();
                        State::Start
                    }
                    (State::Start | State::Unquoted, b) => {
                        self.field.push(b);
                        State::Unquoted
                    }
                    (State::Quoted, b'"') => State::QuoteInQuoted,
                    (State::Quoted, b) => {
                        self.field.push(b);
                        State::Quoted
                    }
                    (State::QuoteInQuoted, b'"') => {
                        self.field.push(b'"');
                        State::Quoted
                    }
                    // `"a"b`: read as `ab`, as the csv crate does, but a sign
                    // of a quote gone wrong if the record spans lines.
                    (State::QuoteInQuoted, b) => {
                        stray = true;
                        self.field.push(b);
                        State::Unquoted
                    }
                };
            }
            if state != State::Quoted {
                fields.push_field(&self.field);
                self.field.clear();
                let broken = (stray && lines > 1).then_some(Broken::StrayQuote);
                return Ok((lines, broken));
            }
            // Inside quotes the line end is part of the value.
            if cr {
                self.field.push(b'\r');
            }
            if !newline {
                return Ok((lines, Some(Broken::Unclosed)));
            }
            self.field.push(b'\n');
            from = end;
            let budget = MAX_RECORD_BYTES.saturating_sub(end);
            if budget == 0 {
                return Ok((lines, Some(Broken::TooLong)));
            }
            match self.read_line(budget)? {
                Got::Nothing => return Ok((lines, Some(Broken::Unclosed))),
                Got::Cut => return Ok((lines + 1, Some(Broken::TooLong))),
                Got::Line | Got::Last => lines += 1,
            }
        }
    }

    /// Puts the lines of a broken record after its first back, to be read
    /// again as records of their own.
    fn give_back(&mut self, span: &Span) {
        if span.lines <= 1 {
            return;
        }
        let mut again = self.buf[self.first_end..].to_vec();
        again.extend_from_slice(&self.again[self.again_at..]);
        self.again = again;
        self.again_at = 0;
        self.next_line = span.line + 1;
        self.buf.truncate(self.first_end);
    }

    /// Gives back the lines after the first of a record the reader found
    /// broken (by a rule that needs the header).
    pub fn reject(&mut self, span: &Span) {
        self.give_back(span);
    }

    /// Appends one line (at most `budget` bytes of it) to `buf`.
    fn read_line(&mut self, budget: usize) -> io::Result<Got> {
        let start = self.buf.len();
        if self.again_at < self.again.len() {
            let rest = &self.again[self.again_at..];
            let n = rest.len().min(budget);
            if let Some(i) = rest[..n].iter().position(|b| *b == b'\n') {
                self.buf.extend_from_slice(&rest[..=i]);
                self.again_at += i + 1;
                self.next_line += 1;
                return Ok(Got::Line);
            }
            self.buf.extend_from_slice(&rest[..n]);
            self.again_at += n;
            if self.again_at == self.again.len() {
                self.again.clear();
                self.again_at = 0;
            }
            if n == budget {
                self.next_line += 1;
                return Ok(Got::Cut);
            }
            // The rest of this line is still in the source.
        }
        if !self.bom_checked {
            self.bom_checked = true;
            if self.src.fill_buf()?.starts_with(BOM) {
                self.had_bom = true;
                self.src.consume(BOM.len());
                self.consumed += BOM.len() as u64;
            }
        }
        let left = budget - (self.buf.len() - start);
        let n = (&mut self.src)
            .take(left as u64)
            .read_until(b'\n', &mut self.buf)?;
        self.consumed += n as u64;
        let total = self.buf.len() - start;
        let got = if total == 0 {
            return Ok(Got::Nothing);
        } else if self.buf.last() == Some(&b'\n') {
            Got::Line
        } else if total == budget && !self.src.fill_buf()?.is_empty() {
            Got::Cut
        } else {
            Got::Last
        };
        self.next_line += 1;
        Ok(got)
    }

    /// Skips the rest of a line that was cut short.
    fn skip_line(&mut self) -> io::Result<()> {
        if self.again_at < self.again.len() {
            let rest = &self.again[self.again_at..];
            if let Some(i) = rest.iter().position(|b| *b == b'\n') {
                self.again_at += i + 1;
                return Ok(());
            }
            self.again.clear();
            self.again_at = 0;
        }
        loop {
            let chunk = self.src.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            let (n, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            self.src.consume(n);
            self.consumed += n as u64;
            if done {
                return Ok(());
            }
        }
    }
}

/// A line with nothing on it but its line end.
fn is_blank(line: &[u8]) -> bool {
    matches!(line, b"\n" | b"\r\n" | b"\r")
}

/// An unquoted line of nothing but spaces, tabs and `delimiter`s before its
/// line end: a row left empty, not a row.
fn is_empty_row(line: &[u8], delimiter: u8) -> bool {
    trim_line_end(line)
        .iter()
        .all(|&b| b == b' ' || b == b'\t' || b == delimiter)
}

/// A line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &[u8]) -> Vec<(Span, Vec<String>, String)> {
        split_by(text, b',')
    }

    fn split_by(text: &[u8], delimiter: u8) -> Vec<(Span, Vec<String>, String)> {
        let mut s = Splitter::new(text, delimiter);
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while let Some(span) = s.next(&mut rec, true).unwrap() {
            let fields = rec
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            let first = String::from_utf8_lossy(s.first_line()).into_owned();
            out.push((span, fields, first));
        }
        out
    }

    fn counted(text: &[u8]) -> usize {
        counted_by(text, b',').0
    }

    /// The records counted without splitting them, and whether an empty row
    /// was skipped on the way.
    fn counted_by(text: &[u8], delimiter: u8) -> (usize, bool) {
        let mut s = Splitter::new(text, delimiter);
        let mut rec = ByteRecord::new();
        let mut n = 0;
        while s.next(&mut rec, false).unwrap().is_some() {
            n += 1;
        }
        (n, s.skipped_empty_rows())
    }

    #[test]
    fn empty_rows_are_skipped_like_blank_lines_in_any_delimiter() {
        for d in [b',', b';', b'\t', b'|'] {
            let d_ = char::from(d).to_string();
            let text = [
                "a,b,c\n",
                ",,\n",
                "d,e,f\r\n",
                " \t \n",
                ",, \t,\r\n",
                "\t\n",
                "g,h,i\n",
                ",,,",
            ]
            .concat()
            .replace(',', &d_);
            let got = split_by(text.as_bytes(), d);
            let seen: Vec<(u64, Vec<String>)> =
                got.into_iter().map(|(span, f, _)| (span.line, f)).collect();
            let row = |line, f: [&str; 3]| (line, f.map(String::from).to_vec());
            assert_eq!(
                seen,
                [
                    row(1, ["a", "b", "c"]),
                    row(3, ["d", "e", "f"]),
                    row(7, ["g", "h", "i"])
                ],
                "delimiter {d_:?}: the real rows, at their own lines"
            );
            assert_eq!(counted_by(text.as_bytes(), d), (3, true), "{d_:?}");
        }
        // The lines a broken record gives back are read by the same rule.
        let text = b"a,\"b\n,,\nc,d\n";
        let lines: Vec<u64> = split(text).iter().map(|g| g.0.line).collect();
        assert_eq!(lines, [1, 3]);
        assert_eq!(counted_by(text, b','), (2, true));
    }

    #[test]
    fn only_blank_lines_leave_the_numbering_as_it_was() {
        let text = b"a,b\n\r\n\nc,d\n\n";
        assert_eq!(counted_by(text, b','), (2, false));
        assert_eq!(counted_by(b"a,b\nc,d\n", b','), (2, false));
        // A comma is no delimiter in a `;` file: `,,` is a row of one field.
        assert_eq!(counted_by(b"a;b\n,,\n", b';'), (2, false));
        assert_eq!(split_by(b"a;b\n,,\n", b';')[1].1, [",,"]);
    }

    #[test]
    fn a_line_with_quotes_is_a_row_however_empty() {
        for text in [&b"a,b\n\"\",\"\"\n"[..], b"a,b\n ,\"\"\n", b"a,b\n\"\"\n"] {
            let got = split(text);
            assert_eq!(got.len(), 2, "{:?}", String::from_utf8_lossy(text));
            assert_eq!(got[1].0.line, 2);
            assert!(got[1].1.iter().all(|f| f.trim().is_empty()));
            assert_eq!(counted_by(text, b','), (2, false));
        }
    }

    #[test]
    fn a_line_with_anything_else_is_a_row() {
        for text in [&b"a,b\n,x\n"[..], b"a,b\n\r,\n", b"a,b\n\x0b\n"] {
            assert_eq!(counted_by(text, b','), (2, false));
            assert_eq!(split(text).len(), 2);
        }
    }

    #[test]
    fn blank_lines_are_skipped_and_line_numbers_kept() {
        let text = b"\xef\xbb\xbfa,b\r\n\r\n\nc,d\r\n\r\n";
        let got = split(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, ["a", "b"]);
        assert_eq!(
            (got[1].0.line, got[1].1.clone()),
            (4, vec!["c".into(), "d".into()])
        );
        assert_eq!(counted(text), 2);
    }

    #[test]
    fn quoted_fields_hold_delimiters_quotes_and_line_breaks() {
        let text = b"a,\"x,\"\"y\"\"\r\nz\"\r\nb,\"\"\n\"\"\n";
        let got = split(text);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1, ["a", "x,\"y\"\r\nz"]);
        assert_eq!(
            (got[0].0.line, got[0].0.lines, got[0].0.broken),
            (1, 2, None)
        );
        assert_eq!(got[1].1, ["b", ""]);
        assert_eq!((got[1].0.line, got[1].0.lines), (3, 1));
        assert_eq!(got[2].1, [""], "a quoted empty line is a record");
        assert_eq!(counted(text), 3);
    }

    #[test]
    fn an_open_quote_breaks_one_line_wherever_it_is() {
        for text in [
            &b"\"a,b\nc,d\ne,f\n"[..],
            b"a,\"b\nc,d\ne,f\n",
            b"a,\"b\nc,\"d\"\ne,f\n",
            b"a,\"b\r\nc,d\r\ne,f",
        ] {
            let got = split(text);
            let lines: Vec<u64> = got.iter().map(|g| g.0.line).collect();
            assert_eq!(lines, [1, 2, 3], "{:?}", String::from_utf8_lossy(text));
            assert!(got[0].0.broken.is_some());
            assert!(
                got[0].2.ends_with('b'),
                "the first line is kept: {}",
                got[0].2
            );
            assert!(got[1].0.broken.is_none() && got[2].0.broken.is_none());
            assert_eq!(got[1].1, ["c", "d"]);
            assert_eq!(got[2].1, ["e", "f"]);
            assert_eq!(counted(text), 3);
        }
        let got = split(b"a,b\nc,\"d");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0.broken, Some(Broken::Unclosed));
        assert_eq!(got[1].2, "c,\"d");
    }

    #[test]
    fn records_are_bounded() {
        let mut text = b"a,\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES));
        text.extend_from_slice(b"\nb,c\n");
        let got = split(&text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.broken, Some(Broken::TooLong));
        assert_eq!(
            (got[1].0.line, got[1].1.clone()),
            (2, vec!["b".into(), "c".into()])
        );
        let mut text = b"a,\"b\n".to_vec();
        for _ in 0..(MAX_RECORD_BYTES / 1000 + 2) {
            text.extend(std::iter::repeat_n(b'y', 999));
            text.push(b'\n');
        }
        let n = MAX_RECORD_BYTES / 1000 + 3;
        assert_eq!(
            counted(&text),
            n,
            "an open quote costs a bounded look-ahead"
        );
        assert_eq!(split(&text)[0].0.broken, Some(Broken::TooLong));
    }
}
