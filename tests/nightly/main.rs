//! Nightly reconciliation, end to end: the full desired state is exported
//! every night, most rows have not changed, and only what changed may reach
//! the vendors, in order, with no terminal, from cron, a systemd timer or a
//! Kubernetes Indexed Job.
//!
//! Every test counts what the sandbox received, per invite, and compares it
//! with a model of what should have been sent ([`model`]): the last value
//! each invite was given (what the ledger should hold). By subject: the
//! ledger, `--force` and `--recheck-after` ([`ledger`]), `--dry-run`
//! ([`dry_run`]), per-invite order ([`order`]), shards ([`shards`]), logs and
//! summary without a terminal ([`unattended`]), and nights in a row
//! ([`week`]).

#[path = "../common/mod.rs"]
mod common;

mod dry_run;
mod ledger;
mod model;
mod order;
mod shards;
mod unattended;
mod week;

use std::process::{Command, Output, Stdio};

use common::World;

/// The binary in the world's directory with `env` set, stdout and stderr
/// captured, for a test that spawns several at once.
pub(crate) fn piped(world: &World, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = world.command(args);
    cmd.envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every line of `stderr` parsed as JSON; fails naming the first that is not.
pub(crate) fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nwhole stderr:\n{stderr}"))
        })
        .collect()
}

pub(crate) fn text_of(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        lossy(&out.stdout),
        lossy(&out.stderr)
    )
}
