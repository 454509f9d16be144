//! Where the state file is.

use std::path::{Path, PathBuf};

/// Where the state file is, by one rule that every command shares (`run`,
/// `status`, `export`) and none needs the input for: `--state`, else
/// `[run] state` from the config, else `invitesync.db` in the current
/// directory. A shard's default is `invitesync.shard-K-of-N.db`: each shard
/// needs a state file of its own (one file is one run at a time), and shards
/// started side by side in one directory must not lock each other out.
pub fn location(
    explicit: Option<&Path>,
    configured: Option<&Path>,
    shard: Option<(u32, u32)>,
) -> PathBuf {
    explicit
        .or(configured)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(default_name(shard)))
}

/// The state file's name when nothing says otherwise.
pub fn default_name(shard: Option<(u32, u32)>) -> String {
    match shard {
        Some((k, n)) => format!("invitesync.shard-{k}-of-{n}.db"),
        None => "invitesync.db".to_string(),
    }
}

/// Earlier releases kept the default state file beside the input. The one
/// found there when `state` (the default here) does not exist, if any: a
/// ledger, and maybe a run to resume, that a fresh file would silently leave
/// behind, sending every row again.
pub fn earlier_default(input: &Path, state: &Path) -> Option<PathBuf> {
    if state.exists() {
        return None;
    }
    let earlier = input.with_file_name(state.file_name()?);
    let same = match (
        std::fs::canonicalize(&earlier),
        std::fs::canonicalize(state),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    (earlier.is_file() && !same).then_some(earlier)
}
