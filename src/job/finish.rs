//! After the pipeline: what the state file recorded, the exit code, the
//! results, the rows to fix and the summary, and the run closed.

use std::path::Path;
use std::time::Instant;

use super::pipeline::{Ended, stopped_on};
use super::prepare::Prepared;
use super::{JobError, RunOptions, RunReport, usage};
use crate::exit::Exit;
use crate::outcome::Outcome;
use crate::results::{Select, WriteError};
use crate::state::{RunId, RunStatus, StateFile};
use crate::tally::Tally;

pub(super) fn finish(
    opts: &RunOptions,
    p: Prepared,
    ended: Ended,
    started: Instant,
    started_at: std::time::SystemTime,
) -> Result<RunReport, JobError> {
    let Prepared {
        names,
        total_rows,
        empty_input,
        state_path,
        files,
        lock,
        state,
        run_id,
        resumed,
        targets,
        layout,
        mut spooled,
        held,
        ..
    } = p;
    let Ended {
        report,
        tally,
        stopped,
        interrupted,
        latency,
        pending_live,
        writer,
    } = ended;
    let Some(state) = state.filter(|_| !opts.dry_run) else {
        // Dry run: nothing recorded; report the live tally.
        let counts = live_counts(&tally, &names);
        let any_bad = counts.iter().any(|(_, c)| Outcome::any_need_attention(c));
        let run_report = RunReport {
            run_id: None,
            exit_code: Exit::for_run(false, any_bad || empty_input).code(),
            counts,
            pending: 0,
            dry_run: report,
            stopped,
            interrupted,
            results: None,
            failed_rows: None,
            elapsed: started.elapsed(),
            resumed,
            state: state_path,
            latency,
        };
        if let Some(path) = &opts.summary_json {
            write_summary(path, &run_report, opts, started_at).map_err(usage)?;
        }
        return Ok(run_report);
    };
    let run_id = run_id.ok_or_else(|| usage("no run was recorded"))?;
    let unwritten = |problem: WriteError, file: &Path| {
        let rows_to_fix = file == files.failed;
        unwritten(
            problem,
            file,
            rows_to_fix,
            &state,
            run_id,
            opts,
            &state_path,
        )
    };
    let router = crate::plan::Router::new(targets.iter().map(|t| (t.name.as_str(), &*t.adapter)));
    let results = crate::results::write_file(
        &state,
        run_id,
        &opts.input,
        &layout,
        &files.results,
        Select::All,
        opts.shard,
        &router,
    )
    .map_err(|e| unwritten(e, &files.results))?;
    // The scan that writes the results also counts the run's records.
    let counts: Vec<(Option<String>, [u64; 5])> = results
        .counts
        .into_iter()
        .map(|c| (c.vendor, c.by_outcome))
        .collect();
    let results = results.path;
    let recorded: u64 = counts.iter().flat_map(|(_, c)| c.iter()).sum();
    let ours_total = if opts.shard.is_some() {
        recorded + pending_live
    } else {
        total_rows
    };
    let pending = ours_total.saturating_sub(recorded).max(pending_live);
    let any_bad = counts.iter().any(|(_, c)| Outcome::any_need_attention(c));
    let unfinished = interrupted || !stopped.is_empty() || pending > 0;
    let exit_code = Exit::for_run(unfinished, any_bad || empty_input).code();

    let failed_rows = if any_bad {
        Some(
            crate::results::write_file(
                &state,
                run_id,
                &opts.input,
                &layout,
                &files.failed,
                Select::Failed,
                opts.shard,
                &router,
            )
            .map_err(|e| unwritten(e, &files.failed))?
            .path,
        )
    } else {
        // An earlier run's rows to fix are not this run's.
        crate::outputs::remove_stale(&files.failed)
            .map_err(|e| unwritten(WriteError::Failed(e), &files.failed))?;
        None
    };
    // Both files are written from the input the run held open since it
    // first read it (docs/ARCHITECTURE.md, §4).
    drop(held);
    // The writer ended beside the results; a run is recorded finished only
    // once its writer has, with its last commit in place.
    if let Some(thread) = writer {
        thread.join().map_err(|e| stopped_on(e, Some(&state)))?;
    }
    let run_report = RunReport {
        run_id: Some(run_id),
        exit_code,
        counts,
        pending,
        dry_run: report,
        stopped,
        interrupted,
        results: Some(results),
        failed_rows,
        elapsed: started.elapsed(),
        resumed,
        state: state_path.clone(),
        latency,
    };
    // Before the run is recorded finished: if the summary cannot be written,
    // the run stays resumable, and running the same command again writes
    // every file without sending anything.
    if let Some(path) = &opts.summary_json {
        write_summary(path, &run_report, opts, started_at)
            .map_err(|e| unwritten(WriteError::Failed(e), path))?;
    }
    let status = if unfinished {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    state
        .finish_run(run_id, status, exit_code)
        .map_err(|e| stopped_on(e.to_string(), Some(&state)))?;
    if let Some(copy) = &mut spooled {
        copy.keep(unfinished);
        if unfinished {
            tracing::info!(
                "the data piped in is kept at {} until the run finishes: pipe the same data \
                 again to resume",
                copy.path.display()
            );
        }
    }
    drop(lock);
    Ok(run_report)
}

/// `--summary-json`: the report as JSON, renamed into place.
fn write_summary(
    path: &Path,
    report: &RunReport,
    opts: &RunOptions,
    started_at: std::time::SystemTime,
) -> Result<(), String> {
    crate::outputs::write_json(
        path,
        &report.summary_json(opts.dry_run, opts.shard, started_at),
    )
}

/// An output that could not be written after every row was recorded: the
/// run is left resumable (exit 3), so the same command sends nothing and
/// writes the files; an earlier file of that name is removed rather than
/// left to pass for this run's. An input that changed while the run went is
/// not this run's to join with its records: it must be put back first.
#[allow(clippy::too_many_arguments)]
fn unwritten(
    problem: WriteError,
    file: &Path,
    rows_to_fix: bool,
    state: &StateFile,
    run: RunId,
    opts: &RunOptions,
    state_path: &Path,
) -> JobError {
    let _ = state.finish_run(run, RunStatus::Interrupted, Exit::Resumable.code());
    let _ = crate::outputs::remove_stale(file);
    let q = |p: &Path| crate::shell::quote(&p.display().to_string());
    let export = if opts.summary_json.as_deref() == Some(file) {
        String::new()
    } else {
        let only = if rows_to_fix { " --only failed" } else { "" };
        format!(
            ", or write it with `invitesync export {}{only} --state {} --output {}`",
            run.0,
            q(state_path),
            q(file)
        )
    };
    let again = if opts.new_run {
        "the same command without --new-run"
    } else {
        "the same command again"
    };
    let message = match problem {
        WriteError::InputChanged(how) => format!(
            "the input {} changed while the run was going (it is not the file the rows were \
             read from: {how}), so {} was not written; every row sent is recorded in {}: put \
             back the file the run started with and run {again} (it resumes and writes the \
             files){export}",
            opts.input.display(),
            file.display(),
            state_path.display()
        ),
        problem => format!(
            "{problem}; every row is recorded in {} and nothing needs sending again: fix that \
             and run {again} (it resumes, sends nothing and writes the files){export}",
            state_path.display()
        ),
    };
    JobError {
        code: Exit::Resumable.code(),
        message,
    }
}

fn live_counts(tally: &Tally, names: &[String]) -> Vec<(Option<String>, [u64; 5])> {
    let mut out = Vec::new();
    let row = |t: &crate::tally::VendorTally| {
        let mut c = [0u64; 5];
        for o in Outcome::ALL {
            c[o.index()] = t.count(o);
        }
        c
    };
    if tally.unrouted().finished() > 0 {
        out.push((None, row(tally.unrouted())));
    }
    for (i, t) in tally.vendors().iter().enumerate() {
        out.push((names.get(i).cloned(), row(t)));
    }
    out
}
