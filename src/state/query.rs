//! Reading recorded rows back: resume, `status`, `export` and the results file.

use rusqlite::types::ValueRef;

use super::error::{Result, StateError};
use super::runs::RunId;
use super::{StateFile, outcome_from_code};
use crate::outcome::Outcome;

/// The row indices recorded for a run, one bit each: 1 M rows take 128 KiB
/// and a lookup is a shift and a mask, so resume can skip done rows as it
/// streams the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoneSet {
    words: Vec<u64>,
    len: u64,
}

impl DoneSet {
    pub fn new() -> DoneSet {
        DoneSet::default()
    }

    pub fn contains(&self, index: u64) -> bool {
        let word = (index / 64) as usize;
        self.words
            .get(word)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// Adds an index; returns whether it was new.
    pub fn insert(&mut self, index: u64) -> bool {
        let word = (index / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1 << (index % 64);
        let new = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.len += u64::from(new);
        new
    }

    /// The number of indices in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A recorded row, borrowed from the query that reads it (no allocation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowRecordView<'a> {
    /// The row's 0-based data index in the input.
    pub index: u64,
    pub line: u64,
    pub vendor: Option<&'a str>,
    pub invite_key: Option<&'a str>,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub attempts: u32,
    pub error: Option<&'a str>,
    pub remote_id: Option<&'a str>,
    pub remote_updated_at: Option<&'a str>,
    /// Unix milliseconds.
    pub finished_at: i64,
}

/// A run's recorded rows of one vendor account, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorCounts {
    /// `None` for rows that never got as far as a known vendor (invalid rows).
    pub vendor: Option<String>,
    /// Indexed by [`Outcome::index`].
    pub by_outcome: [u64; Outcome::ALL.len()],
}

impl VendorCounts {
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.by_outcome[outcome.index()]
    }

    pub fn total(&self) -> u64 {
        self.by_outcome.iter().sum()
    }
}

/// Tallies recorded rows per vendor and outcome as they go by, for
/// [`StateFile::counts`] or for any other scan of a run's rows (the results
/// file's, which then needs no scan of its own).
#[derive(Debug, Default)]
pub struct Counter {
    out: Vec<VendorCounts>,
    last: usize,
}

impl Counter {
    pub fn add(&mut self, vendor: Option<&str>, outcome: Outcome) {
        // Rows of one vendor tend to come together: check the last first.
        if self
            .out
            .get(self.last)
            .is_none_or(|c| c.vendor.as_deref() != vendor)
        {
            self.last = match self.out.iter().position(|c| c.vendor.as_deref() == vendor) {
                Some(i) => i,
                None => {
                    self.out.push(VendorCounts {
                        vendor: vendor.map(str::to_owned),
                        ..VendorCounts::default()
                    });
                    self.out.len() - 1
                }
            };
        }
        self.out[self.last].by_outcome[outcome.index()] += 1;
    }

    /// The counts sorted as `ORDER BY vendor` would give them: rows without
    /// a vendor first, then by the bytes of the name.
    pub fn finish(mut self) -> Vec<VendorCounts> {
        self.out.sort_by(|a, b| a.vendor.cmp(&b.vendor));
        self.out
    }
}

const SELECT_ROWS: &str = "SELECT row_index, line, vendor, invite_key, outcome, http_status,
        attempts, error, remote_id, remote_updated_at, finished_at
    FROM run_rows WHERE run_id = ?1 ORDER BY row_index";

impl StateFile {
    /// The indices already recorded for a run: what a resume skips.
    pub fn done_rows(&self, run: RunId) -> Result<DoneSet> {
        let err = self.err("read the rows done");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT row_index FROM run_rows WHERE run_id = ?1")
            .map_err(&err)?;
        let mut rows = stmt.query([run.0]).map_err(&err)?;
        let mut done = DoneSet::new();
        while let Some(row) = rows.next().map_err(&err)? {
            let index: i64 = row.get(0).map_err(&err)?;
            done.insert(index.max(0) as u64);
        }
        Ok(done)
    }

    /// Calls `f` with each recorded row of a run, in row-index order, reading
    /// as it goes (memory stays flat for any number of rows). Stops at the
    /// first error, from the file or from `f`.
    pub fn for_each_row<E, F>(&self, run: RunId, mut f: F) -> Result<(), E>
    where
        E: From<StateError>,
        F: FnMut(&RowRecordView<'_>) -> Result<(), E>,
    {
        let err = self.err("read the recorded rows");
        let mut stmt = self.conn.prepare_cached(SELECT_ROWS).map_err(&err)?;
        let mut rows = stmt.query([run.0]).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            let view = self.view(row).map_err(&err)??;
            f(&view)?;
        }
        Ok(())
    }

    /// The number of rows recorded for a run.
    pub fn row_count(&self, run: RunId) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM run_rows WHERE run_id = ?1",
                [run.0],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err("count the recorded rows"))
    }

    /// A run's recorded rows per vendor and outcome, sorted by vendor name
    /// (rows without a vendor first).
    pub fn counts(&self, run: RunId) -> Result<Vec<VendorCounts>> {
        // Tallied here from a plain scan of the run's rows: `GROUP BY vendor,
        // outcome` would sort every row (through temporary files at a
        // million rows) to form a handful of groups.
        let err = self.err("count the recorded rows");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT vendor, outcome FROM run_rows WHERE run_id = ?1")
            .map_err(&err)?;
        let mut rows = stmt.query([run.0]).map_err(&err)?;
        let mut counter = Counter::default();
        while let Some(row) = rows.next().map_err(&err)? {
            let vendor = row
                .get_ref(0)
                .and_then(|v| Ok(v.as_str_or_null()?))
                .map_err(&err)?;
            counter.add(vendor, self.outcome(row.get(1).map_err(&err)?)?);
        }
        Ok(counter.finish())
    }

    /// Decodes a row of [`SELECT_ROWS`]. The outer error is SQLite's, the
    /// inner one a value this release does not know.
    fn view<'r>(&self, row: &'r rusqlite::Row<'_>) -> rusqlite::Result<Result<RowRecordView<'r>>> {
        let text =
            |i| -> rusqlite::Result<Option<&'r str>> { Ok(row.get_ref(i)?.as_str_or_null()?) };
        let int = |i| -> rusqlite::Result<i64> { row.get::<_, i64>(i) };
        let outcome = match self.outcome(int(4)?) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let http_status = match row.get_ref(5)? {
            ValueRef::Null => None,
            v => u16::try_from(v.as_i64()?).ok(),
        };
        Ok(Ok(RowRecordView {
            index: int(0)?.max(0) as u64,
            line: int(1)?.max(0) as u64,
            vendor: text(2)?,
            invite_key: text(3)?,
            outcome,
            http_status,
            attempts: u32::try_from(int(6)?).unwrap_or(0),
            error: text(7)?,
            remote_id: text(8)?,
            remote_updated_at: text(9)?,
            finished_at: int(10)?,
        }))
    }

    fn outcome(&self, code: i64) -> Result<Outcome> {
        outcome_from_code(code).ok_or_else(|| StateError::Corrupt {
            path: self.path.clone(),
            what: "outcome",
            detail: format!("code {code} is not one this release knows"),
        })
    }
}
