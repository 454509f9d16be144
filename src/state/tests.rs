//! Tests of the state file as a whole: open, runs, writer, ledger, reads.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::change::{Fingerprint, InviteKey};
use crate::outcome::{Outcome, RowRecord};

fn new_run(input: &Path) -> NewRun {
    NewRun {
        input_path: input.to_path_buf(),
        input_fingerprint: "ab12".into(),
        config_fingerprint: "cd34".into(),
        options: serde_json::json!({"shard": null, "force": false}),
        vendors: vec!["gate".into(), "hub".into()],
        total_rows: None,
    }
}

fn vendors() -> Vec<String> {
    vec!["gate".into(), "hub".into()]
}

fn row(index: u64, outcome: Outcome) -> RowRecord {
    let key = InviteKey::new("gate", &format!("ev/{index}"));
    RowRecord {
        index,
        line: index + 2,
        vendor: Some(0),
        key: Some((key.text, key.hash)),
        fingerprint: Some(Fingerprint([index as u8; 16])),
        outcome,
        http_status: Some(200),
        attempts: 1,
        error: None,
        remote_id: Some(format!("r{index}")),
        remote_updated_at: None,
        finished_at: 1_000 + index as i64,
    }
}

/// A state file with one run, in a temporary directory.
fn setup() -> (tempfile::TempDir, PathBuf, StateFile, RunId) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invitesync.db");
    let state = StateFile::open(&path).unwrap();
    let run = state
        .create_run(&new_run(&dir.path().join("in.csv")))
        .unwrap();
    (dir, path, state, run)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn state_migrates_an_empty_file_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    std::fs::File::create(&path).unwrap(); // an empty file counts as a new database
    let state = StateFile::open(&path).unwrap();
    let version: i64 = state
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = state
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let run = state.create_run(&new_run(Path::new("x.csv"))).unwrap();
    drop(state);

    let again = StateFile::open(&path).unwrap();
    assert_eq!(again.run(run).unwrap().status, RunStatus::Running);
    // Readable with the sqlite3 shell: the views name things.
    let n: i64 = again
        .conn
        .query_row("SELECT count(*) FROM run_rows_named", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn state_files_are_private() {
    let (_dir, path, _state, run) = setup();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    w.record(row(0, Outcome::Updated), None).unwrap();
    w.flush().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.clone().into_os_string();
        name.push(suffix);
        let mode = std::fs::metadata(&name).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", Path::new(&name).display());
    }
    drop(w);
    join.join().unwrap().unwrap();
}

#[test]
fn state_from_a_newer_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(StateFile::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    let err = StateFile::open(&path).unwrap_err();
    assert!(matches!(err, StateError::TooNew { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("s.db") && msg.contains("newer") && msg.contains("upgrade"),
        "{msg}"
    );
}

#[test]
fn state_refuses_garbage_and_other_databases() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "vendor,scope\n".repeat(100)).unwrap();
    let err = StateFile::open(&garbage).unwrap_err();
    assert!(matches!(err, StateError::NotADatabase { .. }), "{err:?}");
    assert!(err.is_damaged());
    let msg = err.to_string();
    assert!(
        msg.contains("garbage.db") && msg.contains("--state"),
        "{msg}"
    );
    // Untouched: we never write into a file we do not recognise.
    assert_eq!(
        std::fs::read_to_string(&garbage).unwrap(),
        "vendor,scope\n".repeat(100)
    );

    let other = dir.path().join("other.db");
    let raw = rusqlite::Connection::open(&other).unwrap();
    raw.execute_batch("CREATE TABLE notes (body TEXT)").unwrap();
    drop(raw);
    let err = StateFile::open(&other).unwrap_err();
    assert!(matches!(err, StateError::NotAStateFile { .. }), "{err}");
}

#[test]
fn state_runs_are_found_again_for_resume() {
    let (dir, _path, state, first) = setup();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "vendor\n").unwrap();
    let rel_state = StateFile::open(state.path()).unwrap();

    // Another input's run does not count; the newest unfinished one of ours does.
    let other = state
        .create_run(&new_run(&dir.path().join("other.csv")))
        .unwrap();
    let info = state.latest_unfinished_run(&input).unwrap().unwrap();
    assert_eq!(info.id, first);
    assert_eq!(info.vendors, vendors());
    assert_eq!(info.options["force"], serde_json::json!(false));
    assert_eq!(state.latest_run().unwrap().unwrap().id, other);

    state.finish_run(first, RunStatus::Interrupted, 3).unwrap();
    let info = rel_state.latest_unfinished_run(&input).unwrap().unwrap();
    assert_eq!(
        (info.status, info.exit_code),
        (RunStatus::Interrupted, Some(3))
    );
    assert!(info.finished_at.is_some());

    state.set_status(first, RunStatus::Running).unwrap();
    assert_eq!(state.run(first).unwrap().finished_at, None);
    state.set_total_rows(first, 10).unwrap();
    state.finish_run(first, RunStatus::Finished, 0).unwrap();
    assert_eq!(state.latest_unfinished_run(&input).unwrap(), None);
    assert_eq!(state.run(first).unwrap().total_rows, Some(10));

    let all = state.list_runs().unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [first, other]);
    let missing = state.run(RunId(99)).unwrap_err();
    assert!(matches!(missing, StateError::NoSuchRun { run: 99, .. }));
    assert!(state.set_status(RunId(99), RunStatus::Finished).is_err());
}

#[test]
fn state_writer_commits_50k_rows_and_flushes() {
    let (_dir, path, state, run) = setup();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    let w2 = w.clone();
    let producer = std::thread::spawn(move || {
        for i in 25_000..50_000 {
            w2.record(row(i, Outcome::Invalid), None).unwrap();
        }
    });
    for i in 0..25_000 {
        w.record(row(i, Outcome::Unchanged), None).unwrap();
    }
    producer.join().unwrap();
    w.flush().unwrap();
    assert_eq!(w.committed_rows(), 50_000);
    assert_eq!(state.row_count(run).unwrap(), 50_000);
    w.record(row(50_000, Outcome::Failed), None).unwrap();
    w.finish().unwrap();
    let stats = join.join().unwrap().unwrap();
    assert_eq!(stats.rows, 50_001);
    assert!(stats.commits >= 50, "{stats:?}");
    assert_eq!(state.row_count(run).unwrap(), 50_001);
}

#[test]
fn state_writer_commits_a_lone_row_by_time() {
    let (_dir, path, state, run) = setup();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    w.record(row(7, Outcome::Rejected), None).unwrap();
    // No flush: the 100 ms batch clock must commit it on its own.
    wait_for("the row to be committed", || {
        state.row_count(run).unwrap() == 1
    });
    assert_eq!(w.committed_rows(), 1);
    drop(w);
    assert_eq!(join.join().unwrap().unwrap().commits, 1);
}

#[test]
fn state_ledger_is_readable_while_the_writer_runs() {
    let (_dir, path, state, run) = setup();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    let reader = state.ledger_reader().unwrap();
    assert_eq!(reader.count().unwrap(), 0);
    assert!(reader.is_empty().unwrap());

    let updated = row(1, Outcome::Updated);
    let (_, hash) = updated.key.clone().unwrap();
    w.record(updated, Some(1)).unwrap();
    // Not `updated`: no ledger entry, even with a key and fingerprint.
    let failed = row(2, Outcome::Failed);
    let (_, failed_hash) = failed.key.clone().unwrap();
    w.record(failed, Some(2)).unwrap();
    w.flush().unwrap();
    assert_eq!(w.committed_ledger_seq(), 2);

    let entry = reader.get(hash).unwrap().unwrap();
    assert_eq!(entry.fingerprint, Fingerprint([1; 16]));
    assert_eq!(entry.applied_at, 1_001);
    assert_eq!(reader.get(failed_hash).unwrap(), None);
    assert_eq!(reader.count().unwrap(), 1);

    // A later change to the same invite replaces the entry.
    let mut again = row(3, Outcome::Updated);
    again.key = Some(row(1, Outcome::Updated).key.unwrap());
    w.record(again, Some(3)).unwrap();
    wait_for("the ledger to move", || w.committed_ledger_seq() == 3);
    let entry = reader.get(hash).unwrap().unwrap();
    assert_eq!(entry.fingerprint, Fingerprint([3; 16]));
    assert_eq!(reader.count().unwrap(), 1);

    // Lookups from another thread while rows keep coming.
    let looker = std::thread::spawn(move || {
        for _ in 0..1_000 {
            assert!(reader.get(hash).unwrap().is_some());
        }
    });
    for i in 10..5_000 {
        w.record(row(i, Outcome::Updated), Some(i)).unwrap();
    }
    looker.join().unwrap();
    drop(w);
    let stats = join.join().unwrap().unwrap();
    assert_eq!(stats.ledger_upserts, 2 + 4_990);
}

#[test]
fn state_done_rows_and_ordered_iteration() {
    let (_dir, path, state, run) = setup();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    // Finished out of order, as concurrent requests do.
    let indices = [5u64, 0, 3, 130, 64, 2];
    for &i in &indices {
        let mut r = row(i, Outcome::Updated);
        if i == 3 {
            r.outcome = Outcome::Failed;
            r.vendor = Some(1);
            r.http_status = None;
            r.attempts = 6;
            r.error = Some("timed out".into());
            r.remote_updated_at = Some("2026-01-01T00:00:00Z".into());
        }
        if i == 64 {
            r.outcome = Outcome::Invalid;
            r.vendor = None;
            r.key = None;
        }
        w.record(r, None).unwrap();
    }
    drop(w);
    join.join().unwrap().unwrap();

    let done = state.done_rows(run).unwrap();
    assert_eq!(done.len(), indices.len() as u64);
    for i in 0..200 {
        assert_eq!(done.contains(i), indices.contains(&i), "{i}");
    }
    assert!(!done.contains(u64::MAX));

    let mut seen = Vec::new();
    state
        .for_each_row(run, |v| -> Result<()> {
            seen.push(v.index);
            match v.index {
                3 => {
                    assert_eq!(v.outcome, Outcome::Failed);
                    assert_eq!(v.vendor, Some("hub"));
                    assert_eq!((v.http_status, v.attempts), (None, 6));
                    assert_eq!(v.error, Some("timed out"));
                    assert_eq!(v.remote_updated_at, Some("2026-01-01T00:00:00Z"));
                }
                64 => assert_eq!((v.vendor, v.invite_key), (None, None)),
                i => {
                    assert_eq!(v.line, i + 2);
                    assert_eq!(v.vendor, Some("gate"));
                    assert_eq!(v.invite_key, Some(format!("gate/ev/{i}").as_str()));
                    assert_eq!(v.remote_id, Some(format!("r{i}").as_str()));
                    assert_eq!(
                        (v.http_status, v.finished_at),
                        (Some(200), 1_000 + i as i64)
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, [0, 2, 3, 5, 64, 130]);

    // The callback's own error stops the iteration and comes back.
    let mut calls = 0;
    let err = state
        .for_each_row(run, |_| -> anyhow::Result<()> {
            calls += 1;
            anyhow::bail!("disk full")
        })
        .unwrap_err();
    assert_eq!((calls, err.to_string().as_str()), (1, "disk full"));

    let counts = state.counts(run).unwrap();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[0].vendor, None);
    assert_eq!(counts[0].get(Outcome::Invalid), 1);
    assert_eq!(counts[1].vendor.as_deref(), Some("gate"));
    assert_eq!((counts[1].get(Outcome::Updated), counts[1].total()), (4, 4));
    assert_eq!(counts[2].get(Outcome::Failed), 1);
}

#[test]
fn state_writer_reports_an_error_to_senders() {
    let (_dir, path, state, run) = setup();
    let err = Writer::spawn(&path, RunId(42), vendors()).unwrap_err();
    assert!(
        matches!(err, StateError::NoSuchRun { run: 42, .. }),
        "{err}"
    );

    // A trigger makes row 13 fail the way a full disk would fail a write.
    state
        .conn
        .execute_batch(
            "CREATE TRIGGER fail_13 BEFORE INSERT ON run_rows WHEN NEW.row_index = 13
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    w.record(row(12, Outcome::Updated), Some(1)).unwrap();
    w.flush().unwrap();
    let _ = w.record(row(13, Outcome::Updated), Some(2));
    let err = w.flush().unwrap_err();
    assert!(matches!(err, StateError::WriterStopped { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("invitesync.db") && msg.contains("disk is full"),
        "{msg}"
    );
    assert!(w.failure().is_some());
    assert!(w.record(row(14, Outcome::Updated), None).is_err());
    assert!(join.join().unwrap().is_err());
    // What was committed stays; the failed batch is gone, to be sent again.
    assert_eq!(state.row_count(run).unwrap(), 1);
    assert_eq!(w.committed_ledger_seq(), 1);
}

#[test]
fn state_ledger_journal_is_merged_and_survives_a_crash() {
    let (_dir, path, state, run) = setup();
    let options = WriterOptions {
        batch_rows: 50,
        ledger_merge_rows: 100,
        ..WriterOptions::default()
    };
    let (w, join) = Writer::spawn_with(&path, run, vendors(), options).unwrap();
    for i in 0..250 {
        w.record(row(i, Outcome::Updated), Some(i + 1)).unwrap();
    }
    // The same invite twice across a merge: the later change wins.
    let mut again = row(1_000, Outcome::Updated);
    again.key = row(3, Outcome::Updated).key;
    w.record(again, Some(251)).unwrap();
    drop(w);
    let stats = join.join().unwrap().unwrap();
    assert_eq!(stats.ledger_upserts, 251);
    assert_eq!(stats.ledger_merges, 2, "{stats:?}");
    // What came after the last merge stays in the journal: the writer does
    // not merge on its way out, the next one does on its way in.
    let journal = |state: &StateFile| -> i64 {
        state
            .conn
            .query_row("SELECT count(*) FROM ledger_journal", [], |r| r.get(0))
            .unwrap()
    };
    // Whether merged or not, every invite reads back, the later change won.
    let whole = |state: &StateFile| {
        let reader = state.ledger_reader().unwrap();
        assert_eq!(reader.count().unwrap(), 250);
        let (_, hash3) = row(3, Outcome::Updated).key.unwrap();
        assert_eq!(
            reader.get(hash3).unwrap().unwrap().fingerprint,
            Fingerprint([1_000u64 as u8; 16])
        );
    };
    assert_eq!(journal(&state), 51);
    whole(&state);
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    drop(w);
    assert_eq!(join.join().unwrap().unwrap().ledger_merges, 1);
    assert_eq!(journal(&state), 0);
    whole(&state);

    // A crash leaves committed journal entries unmerged: a reader sees them
    // at once, and the next writer merges them before anything else.
    let key = InviteKey::new("gate", "late");
    state
        .conn
        .execute(
            "INSERT INTO ledger_journal (key_hash, fingerprint, applied_at, run_id, row_index)
             VALUES (?1, ?2, 5, ?3, 7)",
            rusqlite::params![key.hash as i64, &[9u8; 16][..], run.0],
        )
        .unwrap();
    let reader = state.ledger_reader().unwrap();
    assert_eq!(reader.get(key.hash).unwrap().unwrap().applied_at, 5);
    assert!(!reader.is_empty().unwrap());
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    drop(w);
    assert_eq!(join.join().unwrap().unwrap().ledger_merges, 1);
    assert_eq!(reader.get(key.hash).unwrap().unwrap().applied_at, 5);
    assert_eq!(reader.count().unwrap(), 251);
}

#[test]
fn state_holds_nothing_but_what_it_was_given() {
    let (dir, path, state, run) = setup();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    let mut r = row(0, Outcome::Rejected);
    r.error = Some("422: status is not valid".into());
    w.record(r, None).unwrap();
    w.record(row(1, Outcome::Updated), Some(1)).unwrap();
    drop(w);
    join.join().unwrap().unwrap();

    let canonical = std::fs::canonicalize(dir.path()).unwrap().join("in.csv");
    let mut allowed: BTreeSet<String> = [
        canonical.to_string_lossy().into_owned(),
        "ab12".into(),
        "cd34".into(),
        r#"{"force":false,"shard":null}"#.into(),
        r#"["gate","hub"]"#.into(),
        "running".into(),
        "gate".into(),
        "422: status is not valid".into(),
        "r0".into(),
        "r1".into(),
    ]
    .into();
    for name in ["updated", "unchanged", "invalid", "rejected", "failed"] {
        allowed.insert(name.into());
    }
    for i in 0..2 {
        allowed.insert(format!("gate/ev/{i}"));
    }

    let tables: Vec<String> = {
        let mut stmt = state
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(tables.len(), 5, "{tables:?}");
    for table in tables {
        let mut stmt = state
            .conn
            .prepare(&format!("SELECT * FROM {table}"))
            .unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for c in 0..columns {
                if let rusqlite::types::ValueRef::Text(t) = r.get_ref(c).unwrap() {
                    let t = String::from_utf8_lossy(t).into_owned();
                    assert!(allowed.contains(&t), "{table} holds unexpected text {t:?}");
                }
            }
        }
    }
}

#[test]
fn state_reader_snapshots_never_miss_a_merge() {
    let (_dir, path, state, run) = setup();
    let options = WriterOptions {
        ledger_merge_rows: 10,
        ..WriterOptions::default()
    };
    let (w, join) = Writer::spawn_with(&path, run, vendors(), options).unwrap();
    let reader = state.ledger_reader().unwrap();
    let hash = |i: u64| row(i, Outcome::Updated).key.unwrap().1;
    for i in 0..60 {
        w.record(row(i, Outcome::Updated), Some(i + 1)).unwrap();
        w.flush().unwrap();
        // Each entry, whether still in the journal or merged since the
        // reader's snapshot began, is visible at once.
        for j in 0..=i {
            let entry = reader.get(hash(j)).unwrap();
            assert_eq!(
                entry.map(|e| e.applied_at),
                Some(1_000 + j as i64),
                "{i} {j}"
            );
        }
    }
    reader.release();
    drop(w);
    assert!(join.join().unwrap().unwrap().ledger_merges >= 5);
}

/// A state file with many rows, closed cleanly (no log beside it).
fn filled(dir: &Path) -> PathBuf {
    let path = dir.join("invitesync.db");
    let state = StateFile::open(&path).unwrap();
    let run = state.create_run(&new_run(&dir.join("in.csv"))).unwrap();
    let (w, join) = Writer::spawn(&path, run, vendors()).unwrap();
    for i in 0..5_000 {
        w.record(row(i, Outcome::Updated), Some(i + 1)).unwrap();
    }
    drop(w);
    join.join().unwrap().unwrap();
    drop(state);
    path
}

#[test]
fn a_damaged_state_file_is_refused_on_open_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(dir.path());
    let good = std::fs::read(&path).unwrap();
    let pages = good.len() / 4096;
    assert!(pages > 20, "{pages} pages");

    // One page in the middle overwritten: nothing reads it on open, only
    // the check finds it.
    let mut bad = good.clone();
    let at = (pages / 2) * 4096;
    bad[at..at + 4096].fill(0x5a);
    std::fs::write(&path, &bad).unwrap();
    let err = StateFile::open(&path).unwrap_err();
    assert!(matches!(err, StateError::Damaged { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("invitesync.db is damaged"), "{msg}");
    assert!(msg.contains("restore it from a backup"), "{msg}");
    assert!(
        msg.contains(&format!("mv {} {}.damaged", path.display(), path.display())),
        "{msg}"
    );

    // Cut short.
    std::fs::write(&path, &good[..good.len() / 3]).unwrap();
    let err = StateFile::open(&path).unwrap_err();
    assert!(err.is_damaged(), "{err:?}");

    // The first page gone: not even SQLite's.
    let mut bad = good.clone();
    bad[..4096].fill(0);
    std::fs::write(&path, &bad).unwrap();
    let err = StateFile::open(&path).unwrap_err();
    assert!(matches!(err, StateError::NotADatabase { .. }), "{err:?}");

    std::fs::write(&path, &good).unwrap();
    StateFile::open(&path).unwrap();
}

#[test]
fn a_log_without_its_state_file_is_not_replayed_into_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invitesync.db");
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    std::fs::write(&wal, [1u8; 4096]).unwrap();
    let err = StateFile::open(&path).unwrap_err();
    assert!(matches!(err, StateError::OrphanLog { .. }), "{err:?}");
    assert!(err.to_string().contains("invitesync.db-wal"), "{err}");
    assert!(!path.exists(), "no state file is created");
}
