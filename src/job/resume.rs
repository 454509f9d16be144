//! Resume or start afresh: a run continues only when the same input, the
//! same vendors and the same options make it safe.

use super::{JobError, RunOptions, usage};
use crate::config::Config;
use crate::exit::Exit;
use crate::input::{Fingerprinted, Layout};
use crate::state::{DoneSet, NewRun, RunId, RunStatus, StateFile};

mod meaning;

/// The run this invocation records into.
pub(super) struct Chosen {
    pub id: RunId,
    pub resumed: bool,
    /// Rows the earlier attempts finished.
    pub done: DoneSet,
}

/// What a run records of the config: what its rows become (each vendor
/// account's name, kind and request-shaping settings), never how they travel
/// or how fast ([`meaning`] says which is which and why).
pub fn config_fingerprint(
    config: &Config,
    adapters: &[Box<dyn crate::vendors::Adapter>],
) -> String {
    meaning::record(config, adapters)
}

/// What this invocation continues or starts: the newest unfinished run of the
/// same input if the input, the vendors and the options are unchanged (a
/// resume), otherwise a new run, retiring an interrupted one when
/// `--new-run` says so. A resume that would be unsafe is refused with what
/// changed and what to do.
#[allow(clippy::too_many_arguments)]
pub(super) fn choose_run(
    state: &StateFile,
    opts: &RunOptions,
    layout: &Layout,
    input_fp: &Fingerprinted,
    config_fp: &str,
    names: &[String],
    total_rows: u64,
) -> Result<Chosen, JobError> {
    let options = &run_options(opts, layout);
    let previous = state
        .latest_unfinished_run(&opts.input)
        .map_err(|e| usage(e.to_string()))?;
    match previous {
        Some(prev) if !opts.new_run => {
            let input = crate::input::shown_path(&opts.input);
            if prev.input_fingerprint != input_fp.now {
                if input_fp.earlier.as_ref() == Some(&prev.input_fingerprint) {
                    return Err(usage(renumbered(&input, prev.id)));
                }
                return Err(usage(format!(
                    "{input} changed since run {id} was interrupted, so it cannot be resumed safely \
                     (row numbers may no longer match). Put the file back as run {id} read it to \
                     resume it, or {}",
                    new_run_means(prev.id),
                    id = prev.id.0
                )));
            }
            let changed = meaning::changes(&prev.config_fingerprint, &prev.vendors, config_fp);
            if !changed.is_empty() {
                let config = crate::input::shown_path(&opts.config);
                return Err(usage(format!(
                    "{config} changed what the rows of {input} become since run {id} was \
                     interrupted ({}), so it cannot be resumed safely; only connection and pacing \
                     settings (`base_url`, proxies, certificates, credentials, timeouts, rates, \
                     concurrency, retries) may change under a resume. Put that back to resume \
                     run {id}, or {}",
                    changed.join("; "),
                    new_run_means(prev.id),
                    id = prev.id.0
                )));
            }
            if prev.options != *options {
                return Err(usage(format!(
                    "run {} of {input} was started with {}, and this command has {}; \
                     resume it with the same options, or {}",
                    prev.id.0,
                    describe_options(&prev.options),
                    describe_options(options),
                    new_run_means(prev.id)
                )));
            }
            let done = state.done_rows(prev.id).map_err(|e| usage(e.to_string()))?;
            // A run recorded by an older count of the same bytes gets the right total.
            state
                .set_total_rows(prev.id, total_rows)
                .map_err(|e| usage(e.to_string()))?;
            state
                .set_status(prev.id, RunStatus::Running)
                .map_err(|e| usage(e.to_string()))?;
            Ok(Chosen {
                id: prev.id,
                resumed: true,
                done,
            })
        }
        prev => {
            if let Some(prev) = prev {
                state
                    .finish_run(prev.id, RunStatus::Abandoned, Exit::Resumable.code())
                    .map_err(|e| usage(e.to_string()))?;
            }
            let id = state
                .create_run(&NewRun {
                    input_path: opts.input.clone(),
                    input_fingerprint: input_fp.now.clone(),
                    config_fingerprint: config_fp.to_string(),
                    options: options.clone(),
                    vendors: names.to_vec(),
                    total_rows: Some(total_rows),
                })
                .map_err(|e| usage(e.to_string()))?;
            Ok(Chosen {
                id,
                resumed: false,
                done: DoneSet::new(),
            })
        }
    }
}

/// Why a run of the same bytes, recorded by a release that read the input's
/// empty rows as rows, is not resumed: its row numbers are not this
/// release's.
fn renumbered(input: &str, prev: RunId) -> String {
    format!(
        "run {id} of {input} was recorded by an earlier release of invitesync, which numbered \
         this file's rows differently: the file has empty rows (lines of nothing but spaces, \
         tabs or delimiters), which that release read as rows and this one skips, so run {id} \
         cannot be resumed safely by this release. Finish it with the release that started \
         it, or {}",
        new_run_means(prev),
        id = prev.0
    )
}

/// The other way out of a refused resume, and what it means for the ledger:
/// nothing applied is sent again, everything else is.
fn new_run_means(prev: RunId) -> String {
    format!(
        "pass --new-run to start a new run of the whole input instead, leaving run {prev} \
         unfinished for good: rows whose change the ledger holds as applied (run {prev}'s \
         `updated` rows among them) end `unchanged` without being sent; every other row is sent."
    )
}

/// The options that change what a run sends, as recorded with the run.
fn run_options(opts: &RunOptions, layout: &Layout) -> serde_json::Value {
    let mut options = serde_json::json!({
        "shard": opts.shard.map(|(k, n)| format!("{k}/{n}")),
        "force": opts.force,
        "recheck_after": opts.recheck_after.map(|d| humantime::format_duration(d).to_string()),
    });
    // Only a layout other than the default is recorded, so that runs of
    // plain files record (and resume) what they always did.
    if let (Some(map), Some(input)) = (options.as_object_mut(), layout.to_json()) {
        map.insert("input".into(), input);
    }
    options
}

/// The options a resume must repeat, as the flags that set them:
/// `--shard 0/4 --force`, or `no --shard, --force or --recheck-after`.
fn describe_options(options: &serde_json::Value) -> String {
    let mut flags = Vec::new();
    if let Some(shard) = options.get("shard").and_then(|v| v.as_str()) {
        flags.push(format!("--shard {shard}"));
    }
    if options.get("force").and_then(|v| v.as_bool()) == Some(true) {
        flags.push("--force".to_string());
    }
    if let Some(age) = options.get("recheck_after").and_then(|v| v.as_str()) {
        flags.push(format!("--recheck-after {age}"));
    }
    if let Some(input) = options.get("input") {
        flags.extend(Layout::flags_of(input));
    }
    if flags.is_empty() {
        "no --shard, --force or --recheck-after".to_string()
    } else {
        format!("`{}`", flags.join(" "))
    }
}
