//! Scenarios 6 and 7: memory at 10 k and 1 M rows, then resume the 1 M run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use invitesync::change::InviteKey;
use tokio::runtime::Runtime;

use crate::Res;
use crate::inputs::{plain, write_config, write_input};
use crate::report::Report;
use crate::run::{Job, run_pipeline};
use crate::sandbox::{SandboxProc, check_all_ok, first_request};
use crate::settings::Settings;

pub(crate) fn memory_and_resume(s: &Settings, rt: &Runtime, report: &mut Report) -> Res<()> {
    let (small, large) = (s.sizes.memory_small, s.sizes.memory_large);
    println!("\n== memory: peak RSS of invitesync run at {small} and {large} rows");
    let sandbox = Arc::new(SandboxProc::start(s, "memory", &[])?);
    let dir = s.work.join("memory");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = write_config(&dir, "config", &sandbox.base, 64, &plain)?;
    let mut rss = Vec::new();
    let mut large_run = None;
    for n in [small, large] {
        let input = dir.join(format!("gate-{n}.csv"));
        write_input(&input, n, false)?;
        let state = dir.join(format!("state-{n}.db"));
        let results = dir.join(format!("results-{n}.csv"));
        rt.block_on(sandbox.reset())?;
        let job = Job {
            input: &input,
            config: &config,
            state: &state,
            results: &results,
            args: &[],
            fresh: true,
        };
        let p = run_pipeline(s, &job)?;
        check_all_ok(rt, &sandbox, n)?;
        println!(
            "  {n} rows: peak RSS {:.1} MiB, {:.1} s ({:.0} rows/s)",
            p.peak_rss_kib as f64 / 1024.0,
            p.elapsed.as_secs_f64(),
            n as f64 / p.elapsed.as_secs_f64()
        );
        rss.push((n, p.peak_rss_kib as f64 / 1024.0, p.elapsed));
        large_run = Some((input, state, results));
    }
    if s.wants("memory") {
        let (_, small_mib, _) = rss[0];
        let (_, large_mib, large_t) = rss[1];
        report.detail(format!(
            "memory (default config, concurrency 64, zero latency; ru_maxrss of the `invitesync run` process): {small} rows {small_mib:.1} MiB, {large} rows {large_mib:.1} MiB in {:.1} s",
            large_t.as_secs_f64()
        ));
        report.row(
            &format!("memory: peak RSS at {}", human(large)),
            format!("{large_mib:.1} MiB"),
            "< 64 MiB",
            Some(large_mib < 64.0),
        );
        let growth = large_mib - small_mib;
        report.row(
            &format!("memory: {} minus {}", human(large), human(small)),
            format!("{growth:+.1} MiB ({small_mib:.1} -> {large_mib:.1})"),
            "<= 10 MiB",
            Some(growth <= 10.0),
        );
    }
    if s.wants("resume") {
        let (input, state, results) = large_run.ok_or("no large run")?;
        resume(
            s, rt, report, &sandbox, &input, &config, &state, &results, large,
        )?;
    }
    Ok(())
}

pub(crate) fn human(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} M rows", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{} k rows", n / 1_000)
    } else {
        format!("{n} rows")
    }
}

/// Takes the last `undone` rows of the run back out of the state file (and
/// their ledger entries, merged or still in the journal, or they would end
/// `unchanged`), and marks the run interrupted, as if it had been killed
/// near its end.
pub(crate) fn undo_rows(state: &Path, total: usize, undone: usize) -> Res<()> {
    let sql = |e: rusqlite::Error| e.to_string();
    let mut conn = rusqlite::Connection::open(state).map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    let run: i64 = tx
        .query_row("SELECT max(id) FROM runs", [], |r| r.get(0))
        .map_err(sql)?;
    let from = (total - undone) as i64;
    let keys: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT invite_key FROM run_rows WHERE run_id = ?1 AND row_index >= ?2")
            .map_err(sql)?;
        stmt.query_map(rusqlite::params![run, from], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    for key in &keys {
        let (vendor, rest) = key.split_once('/').ok_or("odd invite key")?;
        let hash = InviteKey::new(vendor, rest).hash;
        for table in ["ledger", "ledger_journal"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE key_hash = ?1"),
                [hash as i64],
            )
            .map_err(sql)?;
        }
    }
    let deleted = tx
        .execute(
            "DELETE FROM run_rows WHERE run_id = ?1 AND row_index >= ?2",
            rusqlite::params![run, from],
        )
        .map_err(sql)?;
    if deleted != undone {
        return Err(format!("deleted {deleted} rows, meant {undone}"));
    }
    tx.execute(
        "UPDATE runs SET status = 'interrupted', exit_code = 3 WHERE id = ?1",
        [run],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn resume(
    s: &Settings,
    rt: &Runtime,
    report: &mut Report,
    sandbox: &Arc<SandboxProc>,
    input: &Path,
    config: &Path,
    state: &Path,
    results: &Path,
    total: usize,
) -> Res<()> {
    let undone = 1_000;
    println!("\n== resume: the {total}-row run with its last {undone} rows undone");
    undo_rows(state, total, undone)?;
    rt.block_on(sandbox.reset())?;
    let origin = Instant::now();
    let (stop, task) = sandbox.poll(rt, origin, Duration::from_millis(2));
    let job = Job {
        input,
        config,
        state,
        results,
        args: &[],
        fresh: false,
    };
    // Started only once the poller is polling.
    std::thread::sleep(Duration::from_millis(20));
    let spawn_at = origin.elapsed();
    let run = run_pipeline(s, &job);
    stop.cancel();
    let samples = rt.block_on(task).map_err(|e| e.to_string())?;
    let p = run?;
    check_all_ok(rt, sandbox, undone)?;
    let first = first_request(&samples)
        .ok_or("no request seen")?
        .saturating_sub(spawn_at);
    let finished = p.elapsed;
    report.detail(format!(
        "resume ({total}-row run, last {undone} rows and their ledger entries removed, run marked interrupted; the same command again): first request {:.0} ms after start, finished (results file of {total} rows written) in {:.2} s, exit {}",
        first.as_secs_f64() * 1000.0,
        finished.as_secs_f64(),
        p.code
    ));
    report.row(
        "resume: first new request after start",
        format!("{:.2} s", first.as_secs_f64()),
        "< 1 s",
        Some(first < Duration::from_secs(1)),
    );
    report.row(
        "resume: finished",
        format!("{:.2} s", finished.as_secs_f64()),
        "< 3 s",
        Some(finished < Duration::from_secs(3)),
    );
    Ok(())
}
