//! The checkpoint benchmark of DESIGN §10: the [`Writer`] against a bare
//! batched rusqlite insert loop writing the same rows with the same SQL, in
//! one process, so the ratio means something on a noisy shared machine.
//!
//! The bare loop is the best the writer could do: it pays for no channel, no
//! thread hand-off and no batching clock. Both write to fresh state files
//! with the same pragmas, commit every 1,000 rows and update the ledger for
//! `updated` rows. Run it with
//! `cargo test --release --lib state::bench -- --ignored --nocapture`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::params;

use super::error::{Result, StateError};
use super::writer::{INSERT_ROW, UPSERT_LEDGER};
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
    /// The figure DESIGN §10 sets a target for (≥ 0.70).
    pub fn ratio(&self) -> f64 {
        self.writer_rows_per_s / self.bare_rows_per_s
    }
}

/// Measures both over `rows` rows, best of `rounds` alternating rounds, in
/// fresh files under the system's temporary directory (removed afterwards).
pub fn bench_writer(rows: usize, rounds: usize) -> Result<WriterBench> {
    let dir = std::env::temp_dir().join(format!(
        "invitesync-bench-{}-{}",
        std::process::id(),
        crate::outcome::now_millis()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| StateError::io(&dir, "create", e))?;
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
    let conn = super::connect_current(path)?;
    drop(state);
    let err = |e| StateError::sqlite(path, "run the bare loop", e);
    let start = Instant::now();
    let mut insert = conn.prepare(INSERT_ROW).map_err(err)?;
    let mut upsert = conn.prepare(UPSERT_LEDGER).map_err(err)?;
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
            if let (Outcome::Updated, Some((text, hash)), Some(fp)) =
                (r.outcome, key, r.fingerprint)
            {
                upsert
                    .execute(params![
                        *hash as i64,
                        text,
                        vendor,
                        &fp.0[..],
                        r.finished_at,
                        run.0
                    ])
                    .map_err(err)?;
            }
        }
        conn.execute_batch("COMMIT").map_err(err)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
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
    }

    #[test]
    fn bench_runs_on_a_few_rows() {
        let b = bench_writer(2_000, 1).unwrap();
        assert!(b.writer_rows_per_s > 0.0 && b.bare_rows_per_s > 0.0);
    }
}
