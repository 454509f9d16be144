//! The results file: the input's rows, in input order, each followed by how
//! it ended; and the failed-rows file, in the input's own format, to fix and
//! feed back.
//!
//! Both are written from the state file joined with a second read of the
//! input, so they are complete across any number of resumes and can be
//! written again at any time (`export`). That read is fingerprinted as it
//! streams, and the file is renamed into place only if the fingerprint is the
//! one the run recorded: rows of another input are never joined with the
//! run's records (docs/ARCHITECTURE.md, §4). Each file goes to a temporary
//! file beside the target, so a reader never sees half a file.
//!
//! A rows-to-fix file fed back is an input like any other, round after
//! round: its `error` column gets the new error in place, a line that could
//! not be read as a row is copied as it was written, and every cell reads
//! back as the value it was written from ([`cells`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use crate::cells::{CsvOut, copied};
pub use crate::cells::{neutralise, unneutralise};
use crate::input::{Fingerprint, InputRow, Layout, Reader};
use crate::outcome::{Outcome, format_millis};
use crate::plan::Router;
use crate::state::{RunId, StateFile};

#[cfg(test)]
mod changed_tests;
mod error;
mod handoff;

pub use error::WriteError;

/// The columns added after the input's own.
pub const OUTCOME_COLUMNS: [&str; 7] = [
    "outcome",
    "http_status",
    "attempts",
    "error",
    "remote_id",
    "remote_updated_at",
    "finished_at",
];

/// What the state file says of one row.
#[derive(Debug, Clone, Default)]
pub struct Ending<'a> {
    pub outcome: &'a str,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<&'a str>,
    pub remote_id: Option<&'a str>,
    pub remote_updated_at: Option<&'a str>,
    pub finished_at: Option<i64>,
}

/// Which rows of the input a file covers.
pub enum Select {
    /// Every row (rows without a record are `pending`).
    All,
    /// Only rows that ended invalid, rejected or failed, in the input format.
    Failed,
}

/// Writes a results or failed-rows file by walking the input alongside the
/// rows' endings, which must arrive in increasing index order.
pub struct ResultsWriter<F: FnMut(&InputRow) -> bool> {
    input: Reader,
    /// The input as given, and as messages name it.
    input_path: PathBuf,
    input_name: PathBuf,
    /// The fingerprint of what `input` reads, finished once it is read to
    /// its end, and the one the run recorded: they must be equal.
    read: Option<Fingerprint<'static>>,
    recorded: String,
    /// Rows read from the input so far.
    rows_read: u64,
    out: Option<CsvOut<BufWriter<File>>>,
    tmp: PathBuf,
    path: PathBuf,
    select: Select,
    /// Whether an input row without an ending belongs to this run (shards:
    /// another shard's rows are left out, not reported pending).
    ours: F,
    width: usize,
    /// In a rows-to-fix file, the input's own `error` column (it is one fed
    /// back), which gets the new error in place instead of a second one.
    error_at: Option<usize>,
    cells: ByteRecord,
    /// The last `finished_at` second written, as text: rows finish many to
    /// a second, and formatting a time costs more than the rest of a row.
    second: (i64, String),
    /// The input's delimiter, which the file keeps.
    delimiter: u8,
    pub written: u64,
    pub pending: u64,
}

/// Named after the file the user asked for, not the temporary one beside it.
fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!(
        "cannot write {}: {}",
        crate::input::shown_path(path),
        crate::fs_error::plain(&e.to_string())
    )
}

/// A header name as compared with others: trimmed, without a byte order
/// mark, lower case (header names are matched case-insensitively).
fn name_key(name: &[u8]) -> Vec<u8> {
    let name = name.strip_prefix(b"\xef\xbb\xbf").unwrap_or(name);
    name.trim_ascii().to_ascii_lowercase()
}

/// The results file's header: the input's names, then [`OUTCOME_COLUMNS`].
/// An input column named like one of those is renamed `input_NAME` (more
/// `input_` while that is taken too), so that every name stands for one
/// value and `outcome`, `error`... are always invitesync's.
fn results_header(input: &ByteRecord) -> ByteRecord {
    let mut taken: Vec<Vec<u8>> = input.iter().map(name_key).collect();
    taken.extend(OUTCOME_COLUMNS.iter().map(|c| c.as_bytes().to_vec()));
    let mut header = ByteRecord::new();
    for name in input.iter() {
        let name = copied(name);
        if !OUTCOME_COLUMNS
            .iter()
            .any(|c| c.as_bytes() == name_key(&name))
        {
            header.push_field(&name);
            continue;
        }
        let mut renamed = name.into_owned();
        while taken.contains(&name_key(&renamed)) {
            renamed.splice(0..0, b"input_".iter().copied());
        }
        taken.push(name_key(&renamed));
        header.push_field(&renamed);
    }
    OUTCOME_COLUMNS
        .iter()
        .for_each(|c| header.push_field(c.as_bytes()));
    header
}

impl<F: FnMut(&InputRow) -> bool> ResultsWriter<F> {
    /// A file for the rows of `input`, read with `layout`, which the run
    /// fingerprinted `recorded`: in the input's own delimiter, with its
    /// header names (and its byte order mark, if it has one), uncompressed,
    /// so that it opens in the tool the input came from and feeds back
    /// unchanged.
    pub fn create(
        input: &Path,
        layout: &Layout,
        recorded: &str,
        path: &Path,
        select: Select,
        ours: F,
    ) -> Result<Self, WriteError> {
        let input_path = input;
        let input_name = crate::input::source::display_name(input);
        let (input, read) = match Reader::open_fingerprinted(input, &input_name, layout) {
            Ok(opened) => opened,
            // The run read this header: one that cannot be read now is
            // another file's, unless the bytes are the same.
            Err(e) => {
                return Err(match crate::input::scan(input, layout) {
                    Ok((now, _)) if !now.of_same_bytes(recorded) => WriteError::InputChanged(e.0),
                    _ => WriteError::InputUnreadable(e.0),
                });
            }
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| io_err(path, e))?;
        let mut w = BufWriter::with_capacity(256 * 1024, file);
        if input.had_bom() {
            w.write_all(b"\xef\xbb\xbf").map_err(|e| io_err(path, e))?;
        }
        let mut out = CsvOut::new(w, layout.delimiter);
        let names = &input.header().record;
        let width = names.len();
        let mut error_at = None;
        let header = match select {
            Select::All => results_header(names),
            Select::Failed => {
                error_at = names.iter().rposition(|n| name_key(n) == b"error");
                let mut header = ByteRecord::new();
                names.iter().for_each(|n| header.push_field(&copied(n)));
                if error_at.is_none() {
                    header.push_field(b"error");
                }
                header
            }
        };
        out.record(&header).map_err(|e| io_err(path, e))?;
        Ok(ResultsWriter {
            input,
            input_path: input_path.to_path_buf(),
            input_name,
            read: Some(read),
            recorded: recorded.to_string(),
            rows_read: 0,
            out: Some(out),
            tmp,
            path: path.to_path_buf(),
            select,
            ours,
            width,
            error_at,
            cells: ByteRecord::new(),
            second: (i64::MIN, String::new()),
            delimiter: layout.delimiter,
            written: 0,
            pending: 0,
        })
    }

    /// Writes the row at `index` with its ending, and every earlier row that
    /// has none as pending. Rows are numbered from 0 here, from 1 in words.
    pub fn row(&mut self, index: u64, ending: &Ending<'_>) -> Result<(), WriteError> {
        while let Some(row) = self.next_row()? {
            if row.index == index {
                return Ok(self.write(&row, Some(ending))?);
            }
            if row.index > index {
                return Err(WriteError::InputChanged(format!(
                    "it has no row {}, which the run recorded",
                    index + 1
                )));
            }
            if (self.ours)(&row) {
                self.write(&row, None)?;
            }
        }
        Err(WriteError::InputChanged(format!(
            "it now ends after {}, but the run recorded row {}",
            error::rows(self.rows_read),
            index + 1
        )))
    }

    /// The input's next row; reading that stopped short of its end (a disk
    /// error, damaged compressed data) is the error: the input changed if
    /// its bytes, read to their end, are not the run's.
    fn next_row(&mut self) -> Result<Option<InputRow>, WriteError> {
        let row = self.input.next();
        self.rows_read += u64::from(row.is_some());
        let (Some(e), Some(row)) = (self.input.failed(), &row) else {
            return Ok(row);
        };
        let skipped_empty_rows = self.input.skipped_empty_rows();
        let read = self.read.take().map(|read| read.finish(skipped_empty_rows));
        Err(match read {
            // Whether the bytes are the run's, by either rule: the rows after
            // this line were not read, nor their empty rows seen.
            Some(Ok(read)) if !read.of_same_bytes(&self.recorded) => WriteError::InputChanged(
                format!("it cannot be read from line {} on: {e}", row.line),
            ),
            _ => WriteError::InputUnreadable(format!(
                "cannot read the input {} from line {} on: {e}",
                crate::input::shown_path(&self.input_name),
                row.line
            )),
        })
    }

    /// The row's own cells, one per input column: missing ones empty, extra
    /// ones joined into the last column, so no text is lost and every line
    /// has one value per header name; `error` goes in place of the input's
    /// own error column, if it has one.
    fn input_cells(&mut self, row: &InputRow, error: Option<&[u8]>) {
        self.cells.clear();
        let n = row.record.len();
        for i in 0..self.width {
            match error {
                Some(error) if Some(i) == self.error_at => self.cells.push_field(error),
                _ if i + 1 == self.width && n > self.width => {
                    let rest: Vec<&[u8]> = row.record.iter().skip(i).collect();
                    self.cells
                        .push_field(&copied(&rest.join(&[self.delimiter][..])));
                }
                _ => self
                    .cells
                    .push_field(&copied(row.record.get(i).unwrap_or(b""))),
            }
        }
    }

    fn write(&mut self, row: &InputRow, ending: Option<&Ending<'_>>) -> Result<(), String> {
        let failed = |e: &Ending<'_>| Outcome::parse(e.outcome).is_some_and(|o| !o.is_success());
        if matches!(self.select, Select::Failed) && !ending.is_some_and(failed) {
            return Ok(());
        }
        self.written += 1;
        if let (Select::Failed, Some(raw)) = (&self.select, &row.raw) {
            // A line that is not a row goes back as it was, to be fixed in
            // place (its error is in the results file).
            return match self.out.as_mut() {
                Some(out) => out.raw_line(raw).map_err(|e| io_err(&self.path, e)),
                None => Ok(()),
            };
        }
        match (&self.select, ending) {
            (Select::All, Some(e)) => {
                self.input_cells(row, None);
                let status = e.http_status.map(|s| s.to_string()).unwrap_or_default();
                let attempts = e.attempts.to_string();
                let finished = match e.finished_at {
                    Some(ms) => {
                        if ms.div_euclid(1000) != self.second.0 {
                            self.second = (ms.div_euclid(1000), format_millis(ms));
                        }
                        self.second.1.as_str()
                    }
                    None => "",
                };
                for v in [
                    e.outcome,
                    &status,
                    &attempts,
                    e.error.unwrap_or(""),
                    e.remote_id.unwrap_or(""),
                    e.remote_updated_at.unwrap_or(""),
                    finished,
                ] {
                    self.cells.push_field(&neutralise(v.as_bytes()));
                }
            }
            (Select::All, None) => {
                self.input_cells(row, None);
                self.pending += 1;
                for v in ["pending", "", "0", "", "", "", ""] {
                    self.cells.push_field(v.as_bytes());
                }
            }
            (Select::Failed, e) => {
                let error = e.and_then(|e| e.error).unwrap_or("");
                let error = neutralise(error.as_bytes());
                self.input_cells(row, Some(&error));
                if self.error_at.is_none() {
                    self.cells.push_field(&error);
                }
            }
        }
        match self.out.as_mut() {
            Some(out) => out.record(&self.cells).map_err(|e| io_err(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Writes the rows after the last ending, checks that the input read is
    /// the one the run recorded, flushes, syncs and renames.
    pub fn finish(mut self) -> Result<PathBuf, WriteError> {
        while let Some(row) = self.next_row()? {
            if (self.ours)(&row) {
                self.write(&row, None)?;
            }
        }
        if let Some(read) = self.read.take() {
            let read = read.finish(self.input.skipped_empty_rows()).map_err(|e| {
                WriteError::InputUnreadable(crate::input::unreadable(&self.input_name, &e))
            })?;
            if read.now != self.recorded {
                return Err(WriteError::InputChanged(
                    "its bytes are not the ones the run read: their fingerprint differs from \
                     the one recorded in the state file"
                        .into(),
                ));
            }
        }
        // A run reads only the bytes its input had when it started
        // (`input::Held`): rows added since were never read.
        if let Some(added) = crate::input::grown(&self.input_path) {
            return Err(WriteError::InputChanged(format!(
                "{added} bytes were added at its end after the run counted its rows, and were \
                 not sent"
            )));
        }
        let Some(out) = self.out.take() else {
            return Ok(self.path.clone());
        };
        let file = out
            .into_inner()
            .into_inner()
            .map_err(|e| io_err(&self.path, e.error()))?;
        file.sync_all().map_err(|e| io_err(&self.path, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        Ok(self.path.clone())
    }
}

impl<F: FnMut(&InputRow) -> bool> Drop for ResultsWriter<F> {
    fn drop(&mut self) {
        // After a successful finish the temporary file is gone; otherwise do not leave it behind.
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The default results path: `INPUT.results.csv` beside the input (with the
/// shard in the name when sharded, so shards never overwrite each other).
/// A compressed input's results are plain: `invites.csv.gz` gives
/// `invites.results.csv`; standard input (`-`) gives `stdin.results.csv` in
/// the current directory, and so does data piped in under a name of the
/// system's (`/dev/stdin`, `<(command)`'s `/dev/fd/63`), where no file can go.
pub fn default_path(input: &Path, shard: Option<(u32, u32)>) -> PathBuf {
    let system = input.starts_with("/dev") || input.starts_with("/proc");
    let input = if crate::input::source::is_stdin(input) || system {
        Path::new("stdin.csv")
    } else {
        input
    };
    let name = input
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plain = [".gz", ".gzip", ".zst", ".zstd"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    let stem = Path::new(plain)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let name = match shard {
        Some((k, n)) => format!("{stem}.results.shard-{k}-of-{n}.csv"),
        None => format!("{stem}.results.csv"),
    };
    input.with_file_name(name)
}

/// Flushes stdout-like writers without caring about the error twice.
pub fn flush(w: &mut impl Write) {
    let _ = w.flush();
}

// ---- The files of a recorded run, from the state file ----

/// `results.csv` → `results.failed.csv`, beside it.
pub fn failed_path(results: &Path) -> PathBuf {
    let stem = results
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".results").unwrap_or(&stem).to_string();
    results.with_file_name(format!("{stem}.failed.csv"))
}

/// A file written from a run's records, and what those records count to.
pub struct Written {
    pub path: PathBuf,
    /// Every recorded row of the run (of every shard), by vendor and
    /// outcome: what [`StateFile::counts`] gives, without a second scan.
    pub counts: Vec<crate::state::VendorCounts>,
}

/// Writes the results or failed-rows file of a run being run: rows of other
/// shards are left out, this shard's unfinished rows are `pending`.
#[allow(clippy::too_many_arguments)]
pub fn write_file(
    state: &StateFile,
    run: RunId,
    input: &Path,
    layout: &Layout,
    path: &Path,
    select: Select,
    shard: Option<(u32, u32)>,
    router: &Router<'_>,
) -> Result<Written, WriteError> {
    let header = Reader::open_as(input, layout)
        .map_err(|e| WriteError::InputUnreadable(e.0))?
        .header()
        .clone();
    let ours = |row: &crate::input::InputRow| match shard {
        None => true,
        Some(shard) => {
            let planned = router.plan(&header, row);
            crate::change::owns_row(shard, planned.as_ref().ok().map(|c| &c.key), row.index)
        }
    };
    write_rows(state, run, input, layout, path, select, ours)
}

/// [`write_file`] for `export`, which has no config: in a sharded run, the
/// rows without a record are left out, since whose they are is unknown.
pub fn export_file(
    state: &StateFile,
    run: RunId,
    input: &Path,
    layout: &Layout,
    path: &Path,
    select: Select,
    shard: Option<(u32, u32)>,
) -> Result<PathBuf, WriteError> {
    write_rows(state, run, input, layout, path, select, |_| shard.is_none()).map(|w| w.path)
}

fn write_rows<F: FnMut(&crate::input::InputRow) -> bool + Send>(
    state: &StateFile,
    run: RunId,
    input: &Path,
    layout: &Layout,
    path: &Path,
    select: Select,
    ours: F,
) -> Result<Written, WriteError> {
    // The fingerprint the run recorded, of the input it read and counted.
    let recorded = state
        .run(run)
        .map_err(|e| WriteError::Failed(e.to_string()))?
        .input_fingerprint;
    let out = ResultsWriter::create(input, layout, &recorded, path, select, ours)?;
    let (path, counts) = handoff::write(state, run, out)?;
    Ok(Written { path, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_restored() {
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            let n = neutralise(bad.as_bytes());
            assert_eq!(n[0], b'\'', "{bad}");
            assert_eq!(unneutralise(std::str::from_utf8(&n).unwrap()), bad);
        }
        assert_eq!(&*neutralise(b"plain"), b"plain");
        assert_eq!(unneutralise("'quoted"), "'quoted");
    }

    /// A writer for which every row is this run's.
    type EveryRow = ResultsWriter<fn(&InputRow) -> bool>;

    /// A writer of `select`'s file (`out.csv`) for an input `in.csv` of
    /// `text`, in `dir`.
    fn writer(dir: &Path, text: &str, select: Select) -> (PathBuf, EveryRow) {
        let input = dir.join("in.csv");
        std::fs::write(&input, text).unwrap();
        let recorded = crate::input::scan(&input, &Layout::default())
            .unwrap()
            .0
            .now;
        let out = dir.join("out.csv");
        let all: fn(&InputRow) -> bool = |_| true;
        let w = ResultsWriter::create(&input, &Layout::default(), &recorded, &out, select, all)
            .unwrap();
        (out, w)
    }

    #[test]
    fn writes_in_input_order_with_pending_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let (out, mut w) = writer(
            dir.path(),
            "vendor,note\ngate,=cmd\ngate,b\ngate,c\n",
            Select::All,
        );
        let e = Ending {
            outcome: "updated",
            http_status: Some(200),
            attempts: 1,
            finished_at: Some(0),
            ..Ending::default()
        };
        w.row(1, &e).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "vendor,note,outcome,http_status,attempts,error,remote_id,remote_updated_at,finished_at"
        );
        assert_eq!(lines[1], "gate,'=cmd,pending,,0,,,,");
        assert_eq!(lines[2], "gate,b,updated,200,1,,,,1970-01-01T00:00:00Z");
        assert_eq!(lines[3], "gate,c,pending,,0,,,,");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary file left"
        );
    }

    #[test]
    fn each_row_shows_its_own_second() {
        let dir = tempfile::tempdir().unwrap();
        let (out, mut w) = writer(dir.path(), "vendor\ngate\ngate\ngate\ngate\n", Select::All);
        for (index, ms) in [(0, 1_500), (1, 1_999), (2, 2_000), (3, 1_000)] {
            let e = Ending {
                outcome: "updated",
                finished_at: Some(ms),
                ..Ending::default()
            };
            w.row(index, &e).unwrap();
        }
        w.finish().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let seconds: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        assert_eq!(
            seconds,
            [
                "1970-01-01T00:00:01Z",
                "1970-01-01T00:00:01Z",
                "1970-01-01T00:00:02Z",
                "1970-01-01T00:00:01Z"
            ]
        );
    }

    #[test]
    fn failed_rows_file_is_in_the_input_format() {
        let dir = tempfile::tempdir().unwrap();
        let (out, mut w) = writer(
            dir.path(),
            "vendor,status\ngate,sent\ngate,maybe\n",
            Select::Failed,
        );
        w.row(
            0,
            &Ending {
                outcome: "updated",
                ..Ending::default()
            },
        )
        .unwrap();
        w.row(
            1,
            &Ending {
                outcome: "invalid",
                error: Some("status: bad"),
                ..Ending::default()
            },
        )
        .unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "vendor,status,error\ngate,maybe,status: bad\n"
        );
    }
}
