//! The results file: the input's rows, in input order, each followed by how
//! it ended; and the failed-rows file, in the input's own format, to fix and
//! feed back.
//!
//! Both are written from the state file joined with a second read of the
//! input (verified unchanged by its fingerprint), so they are complete across
//! any number of resumes and can be written again at any time (`export`).
//! Each goes to a temporary file beside the target and is renamed into place,
//! so a reader never sees half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use crate::input::{InputRow, Reader};
use crate::outcome::{Outcome, format_millis};
use crate::plan::Router;
use crate::send::Target;
use crate::state::{RunId, StateFile};

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

/// Spreadsheets run a cell that starts with one of these as a formula; a
/// leading apostrophe makes it text (OWASP's advice for CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Makes a cell safe to open in a spreadsheet.
pub fn neutralise(cell: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match cell.first() {
        Some(b) if FORMULA_START.contains(&char::from(*b)) => {
            let mut v = Vec::with_capacity(cell.len() + 1);
            v.push(b'\'');
            v.extend_from_slice(cell);
            std::borrow::Cow::Owned(v)
        }
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// Undoes [`neutralise`] on a value read back from a failed-rows file, so a
/// fixed file feeds back exactly what was meant.
pub fn unneutralise(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_START) => rest,
        _ => text,
    }
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
    out: Option<csv::Writer<BufWriter<File>>>,
    tmp: PathBuf,
    path: PathBuf,
    select: Select,
    /// Whether an input row without an ending belongs to this run (shards:
    /// another shard's rows are left out, not reported pending).
    ours: F,
    width: usize,
    cells: ByteRecord,
    pub written: u64,
    pub pending: u64,
}

/// Named after the file the user asked for, not the temporary one beside it.
fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!(
        "cannot write {}: {}",
        path.display(),
        crate::fs_error::plain(&e.to_string())
    )
}

impl<F: FnMut(&InputRow) -> bool> ResultsWriter<F> {
    pub fn create(input: &Path, path: &Path, select: Select, ours: F) -> Result<Self, String> {
        let input = Reader::open(input).map_err(|e| e.to_string())?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| io_err(path, e))?;
        let mut out = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::with_capacity(256 * 1024, file));
        let mut header = ByteRecord::new();
        for c in input.header().record.iter() {
            header.push_field(&neutralise(c));
        }
        let width = header.len();
        match select {
            Select::All => OUTCOME_COLUMNS
                .iter()
                .for_each(|c| header.push_field(c.as_bytes())),
            Select::Failed => {
                if !input
                    .header()
                    .record
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(b"error"))
                {
                    header.push_field(b"error");
                }
            }
        }
        out.write_byte_record(&header)
            .map_err(|e| io_err(path, e))?;
        Ok(ResultsWriter {
            input,
            out: Some(out),
            tmp,
            path: path.to_path_buf(),
            select,
            ours,
            width,
            cells: ByteRecord::new(),
            written: 0,
            pending: 0,
        })
    }

    /// Writes the row at `index` with its ending, and every earlier row that
    /// has none as pending.
    pub fn row(&mut self, index: u64, ending: &Ending<'_>) -> Result<(), String> {
        while let Some(row) = self.input.next() {
            if row.index == index {
                return self.write(&row, Some(ending));
            }
            if row.index > index {
                return Err(format!("the input has changed: row {index} is missing"));
            }
            if (self.ours)(&row) {
                self.write(&row, None)?;
            }
        }
        Err(format!(
            "the input has changed: it ends before row {index} (line numbers no longer match the state file)"
        ))
    }

    fn write(&mut self, row: &InputRow, ending: Option<&Ending<'_>>) -> Result<(), String> {
        let failed = |e: &Ending<'_>| Outcome::parse(e.outcome).is_some_and(|o| !o.is_success());
        if matches!(self.select, Select::Failed) && !ending.is_some_and(failed) {
            return Ok(());
        }
        self.cells.clear();
        for i in 0..self.width {
            let cell = row.record.get(i).unwrap_or(b"");
            self.cells.push_field(&neutralise(cell));
        }
        match (&self.select, ending) {
            (Select::All, Some(e)) => {
                let status = e.http_status.map(|s| s.to_string()).unwrap_or_default();
                let attempts = e.attempts.to_string();
                let finished = e.finished_at.map(format_millis).unwrap_or_default();
                for v in [
                    e.outcome,
                    &status,
                    &attempts,
                    e.error.unwrap_or(""),
                    e.remote_id.unwrap_or(""),
                    e.remote_updated_at.unwrap_or(""),
                    &finished,
                ] {
                    self.cells.push_field(&neutralise(v.as_bytes()));
                }
            }
            (Select::All, None) => {
                self.pending += 1;
                for v in ["pending", "", "0", "", "", "", ""] {
                    self.cells.push_field(v.as_bytes());
                }
            }
            (Select::Failed, e) => {
                let error = e.and_then(|e| e.error).unwrap_or("");
                self.cells.push_field(&neutralise(error.as_bytes()));
            }
        }
        self.written += 1;
        match self.out.as_mut() {
            Some(out) => out
                .write_byte_record(&self.cells)
                .map_err(|e| io_err(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Writes the rows after the last ending, flushes, syncs and renames.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        while let Some(row) = self.input.next() {
            if (self.ours)(&row) {
                self.write(&row, None)?;
            }
        }
        let Some(out) = self.out.take() else {
            return Ok(self.path.clone());
        };
        let file = out
            .into_inner()
            .map_err(|e| io_err(&self.path, e.error()))?
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
pub fn default_path(input: &Path, shard: Option<(u32, u32)>) -> PathBuf {
    let stem = input
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

/// Writes the results or failed-rows file of a run being run: rows of other
/// shards are left out, this shard's unfinished rows are `pending`.
pub fn write_file(
    state: &StateFile,
    run: RunId,
    input: &Path,
    path: &Path,
    select: Select,
    shard: Option<(u32, u32)>,
    targets: &[Target],
) -> Result<PathBuf, String> {
    let router = Router::new(targets.iter().map(|t| (t.name.as_str(), &*t.adapter)));
    let header = Reader::open(input).map_err(|e| e.0)?.header().clone();
    let ours = |row: &crate::input::InputRow| match shard {
        None => true,
        Some((k, n)) => match router.plan(&header, row) {
            Ok(change) => change.key.in_shard(k, n),
            Err(_) => row.index % u64::from(n) == u64::from(k),
        },
    };
    write_rows(state, run, input, path, select, ours)
}

/// [`write_file`] for `export`, which has no config: in a sharded run, the
/// rows without a record are left out, since whose they are is unknown.
pub fn export_file(
    state: &StateFile,
    run: RunId,
    input: &Path,
    path: &Path,
    select: Select,
    shard: Option<(u32, u32)>,
) -> Result<PathBuf, String> {
    write_rows(state, run, input, path, select, |_| shard.is_none())
}

fn write_rows<F: FnMut(&crate::input::InputRow) -> bool>(
    state: &StateFile,
    run: RunId,
    input: &Path,
    path: &Path,
    select: Select,
    ours: F,
) -> Result<PathBuf, String> {
    let mut out = ResultsWriter::create(input, path, select, ours)?;
    state
        .for_each_row(run, |r| -> Result<(), FileError> {
            Ok(out.row(
                r.index,
                &Ending {
                    outcome: r.outcome.as_str(),
                    http_status: r.http_status,
                    attempts: r.attempts,
                    error: r.error,
                    remote_id: r.remote_id,
                    remote_updated_at: r.remote_updated_at,
                    finished_at: Some(r.finished_at),
                },
            )?)
        })
        .map_err(|e| e.0)?;
    out.finish()
}

/// A results-file problem, from the state file or the output.
struct FileError(String);

impl From<crate::state::StateError> for FileError {
    fn from(e: crate::state::StateError) -> Self {
        FileError(e.to_string())
    }
}

impl From<String> for FileError {
    fn from(e: String) -> Self {
        FileError(e)
    }
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

    #[test]
    fn writes_in_input_order_with_pending_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "vendor,note\ngate,=cmd\ngate,b\ngate,c\n").unwrap();
        let out = dir.path().join("out.csv");
        let mut w = ResultsWriter::create(&input, &out, Select::All, |_| true).unwrap();
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
    fn failed_rows_file_is_in_the_input_format() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "vendor,status\ngate,sent\ngate,maybe\n").unwrap();
        let out = dir.path().join("failed.csv");
        let mut w = ResultsWriter::create(&input, &out, Select::Failed, |_| true).unwrap();
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
