//! The checkpoint benchmark of the README's Performance table: the [`Writer`] against a bare
//! batched rusqlite insert loop writing the same rows with the same SQL, in
//! one process, so the ratio means something on a noisy shared machine.
//!
//! The bare loop is the best the writer could do: it pays for no channel, no
//! thread hand-off and no batching clock. Both write to fresh state files,
//! commit every 1,000 rows, append `updated` rows to the ledger journal and
//! merge it every 65,536 entries and at the end. The bare loop runs on a
//! plain connection with SQLite's default checkpointing (the writer's helper
//! thread is part of what is measured). Run it with
//! `cargo test --release --lib state::bench -- --ignored --nocapture`.
//!
//! Seen on a shared 2-core machine under load from other builds, 200 k rows
//! (98 % `updated`, so each one also writes the ledger): writer 211 k rows/s,
//! bare loop 157 k rows/s (ratio 1.34; 208 k vs 201 k on a quieter run).
//! At 1 M rows: `done_rows` 0.13 to 0.27 s, `for_each_row` 0.6 to 0.8 s,
//! `LedgerReader::get` 3.8 µs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::params;

use super::error::{Result, StateError};
use super::pending::merge_journal;
use super::writer::{INSERT_JOURNAL, INSERT_ROW, WriterOptions};
use super::{NewRun, RunId, StateFile, Writer, outcome_code};
use crate::change::Fingerprint;
use crate::outcome::{Outcome, RowRecord};

/// Rows per second of the writer and of the bare loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriterBench {
    pub writer_rows_per_s: f64,
    pub bare_rows_per_s: f64,
}

impl WriterBench {
    /// The figure the Performance table sets a target for (≥ 0.70).
    pub fn ratio(&self) -> f64 {
        self.writer_rows_per_s / self.bare_rows_per_s
    }
}

/// Measures both over `rows` rows, best of `rounds` alternating rounds, in
/// fresh files under the system's temporary directory (removed afterwards).
pub fn bench_writer(rows: usize, rounds: usize) -> Result<WriterBench> {
    let dir = bench_dir("writer")?;
    let result = (|| {
        let mut best = WriterBench {
            writer_rows_per_s: 0.0,
            bare_rows_per_s: 0.0,
        };
        for round in 0..rounds.max(1) {
            let bare = bare_loop(&dir.join(format!("bare-{round}.db")), rows)?;
            let writer = writer_loop(&dir.join(format!("writer-{round}.db")), rows)?;
            best.bare_rows_per_s = best.bare_rows_per_s.max(bare);
            best.writer_rows_per_s = best.writer_rows_per_s.max(writer);
        }
        Ok(best)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Rows shaped like a real run: mostly `updated` with a key, a fingerprint
/// and the vendor's id and timestamp; some failures with an error text.
pub fn sample_rows(n: usize) -> Vec<RowRecord> {
    (0..n as u64)
        .map(|i| {
            let key = format!("gate/event-{}/invite-{i}", i % 97);
            let hash = crate::change::InviteKey::new("gate", &key).hash;
            let mut fp = [0u8; 16];
            fp[..8].copy_from_slice(&i.to_le_bytes());
            let failed = i % 50 == 0;
            RowRecord {
                index: i,
                line: i + 2,
                vendor: Some((i % 2) as u16),
                key: Some((key, hash)),
                fingerprint: Some(Fingerprint(fp)),
                outcome: if failed {
                    Outcome::Failed
                } else {
                    Outcome::Updated
                },
                http_status: Some(if failed { 503 } else { 200 }),
                attempts: if failed { 6 } else { 1 },
                error: failed.then(|| "503 Service Unavailable: try again later".to_owned()),
                remote_id: Some(format!("inv_{i:08}")),
                remote_updated_at: Some("2026-11-23T03:08:43.123Z".to_owned()),
                finished_at: 1_795_000_000_000 + i as i64,
            }
        })
        .collect()
}

fn vendor_names() -> Vec<String> {
    vec!["gate".to_owned(), "hub".to_owned()]
}

fn new_state(path: &Path) -> Result<(StateFile, RunId)> {
    let state = StateFile::open(path)?;
    let run = state.create_run(&NewRun {
        input_path: PathBuf::from("bench.csv"),
        input_fingerprint: "00".into(),
        config_fingerprint: "00".into(),
        options: serde_json::Value::Null,
        vendors: vendor_names(),
        total_rows: None,
    })?;
    Ok((state, run))
}

fn writer_loop(path: &Path, n: usize) -> Result<f64> {
    let (_state, run) = new_state(path)?;
    let rows = sample_rows(n);
    let (handle, join) = Writer::spawn(path, run, vendor_names())?;
    let start = Instant::now();
    for (seq, row) in rows.into_iter().enumerate() {
        handle.record(row, Some(seq as u64 + 1))?;
    }
    drop(handle);
    let stats = join.join().map_err(|_| StateError::WriterStopped {
        path: path.to_path_buf(),
        message: "the writer thread panicked".into(),
    })??;
    let secs = start.elapsed().as_secs_f64();
    debug_assert_eq!(stats.rows, n as u64);
    Ok(n as f64 / secs)
}

fn bare_loop(path: &Path, n: usize) -> Result<f64> {
    let (state, run) = new_state(path)?;
    let rows = sample_rows(n);
    let names = vendor_names();
    let merge_rows = WriterOptions::default().ledger_merge_rows;
    let conn = super::connect_current(path)?;
    drop(state);
    let err = |e| StateError::sqlite(path, "run the bare loop", e);
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(err)?;
    let start = Instant::now();
    let mut insert = conn.prepare(INSERT_ROW).map_err(err)?;
    let mut journal = conn.prepare(INSERT_JOURNAL).map_err(err)?;
    let mut journal_len = 0;
    for chunk in rows.chunks(1_000) {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        for r in chunk {
            let vendor = r.vendor.map(|v| names[usize::from(v)].as_str());
            let key = r.key.as_ref();
            insert
                .execute(params![
                    run.0,
                    r.index as i64,
                    r.line as i64,
                    vendor,
                    key.map(|(t, _)| t.as_str()),
                    outcome_code(r.outcome),
                    r.http_status,
                    r.attempts,
                    r.error.as_deref(),
                    r.remote_id.as_deref(),
                    r.remote_updated_at.as_deref(),
                    r.finished_at,
                ])
                .map_err(err)?;
            if let (Outcome::Updated, Some((_, hash)), Some(fp)) = (r.outcome, key, r.fingerprint) {
                journal
                    .execute(params![
                        *hash as i64,
                        &fp.0[..],
                        r.finished_at,
                        run.0,
                        r.index as i64,
                    ])
                    .map_err(err)?;
                journal_len += 1;
            }
        }
        conn.execute_batch("COMMIT").map_err(err)?;
        if journal_len >= merge_rows {
            merge_journal(&conn, path)?;
            journal_len = 0;
        }
    }
    if journal_len > 0 {
        merge_journal(&conn, path)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Timings of the reads on the resume path, over a file of `rows` rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadBench {
    /// [`StateFile::done_rows`] of the whole run (well under 0.5 s at 1 M rows, for a quick resume).
    pub done_rows_secs: f64,
    /// [`StateFile::for_each_row`] over the whole run.
    pub for_each_row_secs: f64,
    /// Mean [`super::LedgerReader::get`], hits and misses alternating.
    pub ledger_get_micros: f64,
}

/// Writes `rows` rows with the writer, then times the reads a resume makes.
pub fn bench_reads(rows: usize) -> Result<ReadBench> {
    let dir = bench_dir("reads")?;
    let result = (|| {
        let path = dir.join("reads.db");
        writer_loop(&path, rows)?;
        let state = StateFile::open(&path)?;
        let run = RunId(1);

        let start = Instant::now();
        let done = state.done_rows(run)?;
        let done_rows_secs = start.elapsed().as_secs_f64();
        debug_assert_eq!(done.len(), rows as u64);

        let start = Instant::now();
        let mut attempts = 0u64;
        state.for_each_row(run, |v| -> Result<()> {
            attempts += u64::from(v.attempts);
            Ok(())
        })?;
        let for_each_row_secs = start.elapsed().as_secs_f64();

        let reader = state.ledger_reader()?;
        let keys: Vec<u64> = sample_rows(rows.min(100_000))
            .into_iter()
            .filter_map(|r| r.key.map(|(_, h)| h))
            .collect();
        let start = Instant::now();
        let mut found = 0u64;
        for (i, k) in keys.iter().enumerate() {
            let k = if i % 2 == 0 { *k } else { !*k };
            found += u64::from(reader.get(k)?.is_some());
        }
        let ledger_get_micros = start.elapsed().as_secs_f64() * 1e6 / keys.len().max(1) as f64;
        debug_assert!(found > 0 && attempts > 0);
        Ok(ReadBench {
            done_rows_secs,
            for_each_row_secs,
            ledger_get_micros,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench_dir(what: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "invitesync-bench-{what}-{}-{}",
        std::process::id(),
        crate::outcome::now_millis()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| StateError::io(&dir, "create", e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints the figures; ignored because timings mean little in debug builds.
    #[test]
    #[ignore]
    fn state_writer_throughput() {
        let b = bench_writer(200_000, 3).unwrap();
        println!(
            "state writer: {:.0} rows/s, bare loop: {:.0} rows/s, ratio {:.2}",
            b.writer_rows_per_s,
            b.bare_rows_per_s,
            b.ratio()
        );
        let r = bench_reads(1_000_000).unwrap();
        println!(
            "1 M rows: done_rows {:.3} s, for_each_row {:.3} s, ledger get {:.2} µs",
            r.done_rows_secs, r.for_each_row_secs, r.ledger_get_micros
        );
    }

    #[test]
    fn bench_runs_on_a_few_rows() {
        let b = bench_writer(2_000, 1).unwrap();
        assert!(b.writer_rows_per_s > 0.0 && b.bare_rows_per_s > 0.0);
    }
}
