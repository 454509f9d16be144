//! Writing a results file on two threads: this one reads the run's records
//! from the state file, a helper joins them with the input and writes the
//! CSV (docs/ARCHITECTURE.md, §6).
//!
//! The file is written after the last answer, while the run waits to
//! finish, and each half costs about as much as the other: reading the
//! records (SQLite), and reading the input again and formatting its rows.
//! One thread did both in turn. The state file's connection stays on this
//! thread (it may not be shared), so the records cross over in batches,
//! their text copied into one buffer a batch, and at most
//! [`BATCHES_AHEAD`] wait: memory stays flat for any number of rows.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{Ending, ResultsWriter, WriteError};
use crate::input::InputRow;
use crate::outcome::Outcome;
use crate::state::{Counter, RowRecordView, RunId, StateFile, VendorCounts};

/// Records a batch holds.
const BATCH_ROWS: usize = 1_024;
/// Batches read ahead of the writer, at most.
const BATCHES_AHEAD: usize = 4;

/// A record as it crosses over: its text is ranges of its batch's buffer.
struct Record {
    index: u64,
    outcome: Outcome,
    http_status: Option<u16>,
    attempts: u32,
    error: Option<Range<usize>>,
    remote_id: Option<Range<usize>>,
    remote_updated_at: Option<Range<usize>>,
    finished_at: i64,
}

/// Records in row-index order, with the text they own.
struct Batch {
    text: String,
    records: Vec<Record>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            text: String::new(),
            records: Vec::with_capacity(BATCH_ROWS),
        }
    }

    fn push(&mut self, r: &RowRecordView<'_>) {
        let mut keep = |t: Option<&str>| {
            t.map(|t| {
                let start = self.text.len();
                self.text.push_str(t);
                start..self.text.len()
            })
        };
        let error = keep(r.error);
        let remote_id = keep(r.remote_id);
        let remote_updated_at = keep(r.remote_updated_at);
        self.records.push(Record {
            index: r.index,
            outcome: r.outcome,
            http_status: r.http_status,
            attempts: r.attempts,
            error,
            remote_id,
            remote_updated_at,
            finished_at: r.finished_at,
        });
    }

    fn is_full(&self) -> bool {
        self.records.len() >= BATCH_ROWS
    }

    fn ending<'a>(&'a self, r: &Record) -> Ending<'a> {
        let text = |range: &Option<Range<usize>>| range.clone().and_then(|r| self.text.get(r));
        Ending {
            outcome: r.outcome.as_str(),
            http_status: r.http_status,
            attempts: r.attempts,
            error: text(&r.error),
            remote_id: text(&r.remote_id),
            remote_updated_at: text(&r.remote_updated_at),
            finished_at: Some(r.finished_at),
        }
    }
}

enum Msg {
    Records(Batch),
    /// Every record was sent: the file may be finished.
    End,
}

/// Writes `out` from the run's records and returns its path, with what the
/// records count to per vendor and outcome.
pub(super) fn write<F>(
    state: &StateFile,
    run: RunId,
    out: ResultsWriter<F>,
) -> Result<(PathBuf, Vec<VendorCounts>), WriteError>
where
    F: FnMut(&InputRow) -> bool + Send,
{
    let (tx, rx) = sync_channel::<Msg>(BATCHES_AHEAD);
    std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("invitesync-results".into())
            .spawn_scoped(scope, move || join_and_write(out, rx))
            .map_err(|e| {
                WriteError::Failed(format!(
                    "cannot start the thread that writes the results: {e}"
                ))
            })?;
        let read = read_records(state, run, &tx);
        drop(tx);
        let written = writer.join().unwrap_or_else(|_| {
            Err(WriteError::Failed(
                "the thread writing the results stopped unexpectedly".into(),
            ))
        });
        match (read, written) {
            (Ok(counts), Ok(path)) => Ok((path, counts)),
            // The reading's own problem, or the writer's: whichever side
            // stopped first says why; the other only saw it stop.
            (Err(Stop::Failed(e)), _) => Err(WriteError::Failed(e)),
            (_, Err(e)) => Err(e),
            (Err(Stop::WriterGone), Ok(_)) => Err(WriteError::Failed(
                "the results were not written: the writer ended early".into(),
            )),
        }
    })
}

/// Why the reading stopped.
enum Stop {
    /// The state file could not be read.
    Failed(String),
    /// The writer is gone (its error says why).
    WriterGone,
}

impl From<crate::state::StateError> for Stop {
    fn from(e: crate::state::StateError) -> Self {
        Stop::Failed(e.to_string())
    }
}

/// Sends every record of the run, then `End`; the counts on success.
fn read_records(
    state: &StateFile,
    run: RunId,
    tx: &SyncSender<Msg>,
) -> Result<Vec<VendorCounts>, Stop> {
    let mut counter = Counter::default();
    let mut batch = Batch::new();
    state.for_each_row(run, |r| -> Result<(), Stop> {
        counter.add(r.vendor, r.outcome);
        batch.push(r);
        if batch.is_full() {
            let full = std::mem::replace(&mut batch, Batch::new());
            tx.send(Msg::Records(full)).map_err(|_| Stop::WriterGone)?;
        }
        Ok(())
    })?;
    if !batch.records.is_empty() {
        tx.send(Msg::Records(batch)).map_err(|_| Stop::WriterGone)?;
    }
    tx.send(Msg::End).map_err(|_| Stop::WriterGone)?;
    Ok(counter.finish())
}

/// The helper thread: each record's row of the input, then the rest as
/// pending. Without `End`, the reading failed: the file is left unfinished
/// (and its temporary file removed).
fn join_and_write<F: FnMut(&InputRow) -> bool>(
    mut out: ResultsWriter<F>,
    rx: Receiver<Msg>,
) -> Result<PathBuf, WriteError> {
    for msg in rx {
        match msg {
            Msg::Records(batch) => {
                for r in &batch.records {
                    out.row(r.index, &batch.ending(r))?;
                }
            }
            Msg::End => return out.finish(),
        }
    }
    Err(WriteError::Failed(
        "the results were not written: reading the state file stopped".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Layout;
    use crate::outcome::RowRecord;
    use crate::results::{Select, write_rows};
    use crate::state::{NewRun, Writer};

    /// A state file whose run recorded every third row of `rows` (rejected
    /// with an error), the rest unrecorded, and an input of `input_rows`.
    fn recorded(dir: &std::path::Path, rows: u64, input_rows: u64) -> (StateFile, RunId) {
        let input = dir.join("in.csv");
        let mut text = String::from("vendor,invite_id\n");
        for i in 0..input_rows {
            text += &format!("gate,inv-{i}\n");
        }
        std::fs::write(&input, text).unwrap();
        let input_fingerprint = crate::input::scan(&input, &Layout::default())
            .unwrap()
            .0
            .now;
        let path = dir.join("state.db");
        let state = StateFile::open(&path).unwrap();
        let run = state
            .create_run(&NewRun {
                input_path: input,
                input_fingerprint,
                config_fingerprint: "cd34".into(),
                options: serde_json::json!({}),
                vendors: vec!["gate".into()],
                total_rows: None,
            })
            .unwrap();
        let (w, join) = Writer::spawn(&path, run, vec!["gate".into()]).unwrap();
        for index in (0..rows).step_by(3) {
            w.record(
                RowRecord {
                    index,
                    line: index + 2,
                    vendor: Some(0),
                    key: None,
                    fingerprint: None,
                    outcome: Outcome::Rejected,
                    http_status: Some(422),
                    attempts: 1,
                    error: Some(format!("row {index}, \"bad\"")),
                    remote_id: None,
                    remote_updated_at: None,
                    finished_at: 0,
                },
                None,
            )
            .unwrap();
        }
        drop(w);
        join.join().unwrap().unwrap();
        (state, run)
    }

    /// The results file of every row of `dir`'s `in.csv` at `out`.
    fn write_all(
        dir: &std::path::Path,
        state: &StateFile,
        run: RunId,
        out: &std::path::Path,
    ) -> Result<crate::results::Written, WriteError> {
        let all = |_: &InputRow| true;
        let input = dir.join("in.csv");
        write_rows(
            state,
            run,
            &input,
            &Layout::default(),
            out,
            Select::All,
            all,
        )
    }

    #[test]
    fn many_batches_are_joined_with_the_input_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let rows = 3 * BATCH_ROWS as u64 * BATCHES_AHEAD as u64 + 7;
        let (state, run) = recorded(dir.path(), rows, rows + 2);
        let out = dir.path().join("results.csv");
        let written = write_all(dir.path(), &state, run, &out).unwrap();
        let rejected = rows.div_ceil(3);
        assert_eq!(written.counts.len(), 1);
        assert_eq!(written.counts[0].get(Outcome::Rejected), rejected);
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, rows + 2 + 1);
        for (i, line) in lines[1..].iter().enumerate() {
            let expected = if i % 3 == 0 && (i as u64) < rows {
                format!("gate,inv-{i},rejected,422,1,\"row {i}, \"\"bad\"\"\",,,")
            } else {
                format!("gate,inv-{i},pending,,0,,,,")
            };
            assert!(line.starts_with(&expected), "line {}: {line}", i + 2);
        }
    }

    #[test]
    fn an_input_that_changed_is_the_error_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        // Records for rows the input no longer has, past a few batches.
        let rows = 2 * BATCH_ROWS as u64 * BATCHES_AHEAD as u64;
        let (state, run) = recorded(dir.path(), rows, BATCH_ROWS as u64);
        let out = dir.path().join("results.csv");
        let err = write_all(dir.path(), &state, run, &out).err().unwrap();
        // The first record past its end is row 1,027 (index 1,026).
        assert_eq!(
            err,
            WriteError::InputChanged(format!(
                "it now ends after {BATCH_ROWS} rows, but the run recorded row {}",
                BATCH_ROWS + 3
            ))
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("results"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    fn view<'a>(index: u64, error: Option<&'a str>, id: Option<&'a str>) -> RowRecordView<'a> {
        RowRecordView {
            index,
            line: index + 2,
            vendor: Some("gate"),
            invite_key: None,
            outcome: Outcome::Rejected,
            http_status: Some(422),
            attempts: 2,
            error,
            remote_id: id,
            remote_updated_at: None,
            finished_at: 1_000,
        }
    }

    #[test]
    fn a_batch_gives_back_each_records_own_text() {
        let mut batch = Batch::new();
        batch.push(&view(0, Some("bad email"), Some("r-1")));
        batch.push(&view(1, None, Some("")));
        batch.push(&view(2, Some("é, \"quoted\""), None));
        let endings: Vec<Ending<'_>> = batch.records.iter().map(|r| batch.ending(r)).collect();
        assert_eq!(endings[0].error, Some("bad email"));
        assert_eq!(endings[0].remote_id, Some("r-1"));
        assert_eq!(endings[1].error, None);
        assert_eq!(endings[1].remote_id, Some(""), "empty text is not no text");
        assert_eq!(endings[2].error, Some("é, \"quoted\""));
        assert_eq!(endings[2].remote_id, None);
        assert_eq!(endings[2].outcome, "rejected");
        assert_eq!(endings[2].http_status, Some(422));
        assert_eq!(endings[2].attempts, 2);
        assert_eq!(endings[2].finished_at, Some(1_000));
    }
}
