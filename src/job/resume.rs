//! Resume or start afresh: a run continues only when the same input, the
//! same vendors and the same options make it safe.

use super::{JobError, RunOptions, usage};
use crate::config::Config;
use crate::exit::Exit;
use crate::input::Layout;
use crate::state::{DoneSet, NewRun, RunId, RunStatus, StateFile};

/// The run this invocation records into.
pub(super) struct Chosen {
    pub id: RunId,
    pub resumed: bool,
    /// Rows the earlier attempts finished.
    pub done: DoneSet,
}

/// What of the config decides what is sent. Secrets, concurrency and rates may
/// change between a crash and its resume (that is how a refused credential is
/// fixed); vendor names, kinds, URLs and kind settings may not.
pub fn config_fingerprint(
    config: &Config,
    adapters: &[Box<dyn crate::vendors::Adapter>],
) -> String {
    let mut h = blake3::Hasher::new();
    for ((vc, _), a) in config.vendors.iter().zip(adapters) {
        h.update(
            format!(
                "{}\0{}\0{}\0{}\n",
                vc.name,
                vc.kind,
                vc.base_url,
                a.settings_fingerprint()
            )
            .as_bytes(),
        );
    }
    h.finalize().to_hex().to_string()
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
    input_fp: &str,
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
            if prev.input_fingerprint != input_fp {
                return Err(usage(format!(
                    "{} changed since run {} was interrupted, so it cannot be resumed safely \
                     (row numbers may no longer match). Run again with --new-run to start afresh; \
                     rows the ledger already holds will end `unchanged`.",
                    opts.input.display(),
                    prev.id.0
                )));
            }
            if prev.config_fingerprint != config_fp {
                return Err(usage(format!(
                    "the vendors in {} (names, kinds, base URLs or methods) changed since run {} was interrupted, \
                     so it cannot be resumed safely. Restore them, or run again with --new-run.",
                    opts.config.display(),
                    prev.id.0
                )));
            }
            if prev.options != *options {
                return Err(usage(format!(
                    "run {} of {} was started with {}, and this command has {}; \
                     resume it with the same options, or pass --new-run to start afresh",
                    prev.id.0,
                    opts.input.display(),
                    describe_options(&prev.options),
                    describe_options(options)
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
                    input_fingerprint: input_fp.to_string(),
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
