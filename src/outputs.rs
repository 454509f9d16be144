//! The files a run writes (results, rows to fix, summary), checked before
//! anything is sent: none may be a file the run reads or keeps (the input,
//! the config, the state file and its siblings) or another of its outputs,
//! and each must be writable where it goes. A run that fails these checks
//! sends nothing; one that passes them is unlikely to fail at the end, when
//! every row has been sent and only the files are left to write.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// A file and what it is to the run, as a message names it: `the input
/// in.csv`, `--results out.csv`.
#[derive(Debug, Clone)]
pub struct Named {
    pub label: String,
    pub path: PathBuf,
}

impl Named {
    pub fn new(label: impl Into<String>, path: impl Into<PathBuf>) -> Named {
        Named {
            label: label.into(),
            path: path.into(),
        }
    }

    fn describe(&self) -> String {
        format!("{} {}", self.label, crate::input::shown_path(&self.path))
    }
}

/// The files a config names that a run reads, as [`Named`] for messages:
/// `` `vendors.gate.api_key`'s file secrets/gate ``.
pub fn config_files(config: &crate::config::Config) -> Vec<Named> {
    config
        .files_read()
        .into_iter()
        .map(|(key, path)| Named::new(format!("`{key}`'s file"), path))
        .collect()
}

/// The state file and the files SQLite and the lock keep beside it.
pub fn state_files(state: &Path) -> Vec<Named> {
    let beside = |suffix: &str| {
        let mut name = state.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    vec![
        Named::new("the state file", state),
        Named::new("the state file's log", beside("-wal")),
        Named::new("the state file's index", beside("-shm")),
        Named::new("the state file's journal", beside("-journal")),
        Named::new("the state file's lock", beside(".lock")),
    ]
}

/// The checks of a run's outputs: the state file is not the input, the
/// config or a file the config names (`reads`: secrets, certificates); no
/// output is any of those, the state file's siblings or another output;
/// each can be written.
pub fn check_run(
    outputs: &[Named],
    input: &Path,
    config: &Path,
    reads: &[Named],
    state: &Named,
) -> Result<(), String> {
    let mut protected = vec![
        Named::new("the input", input),
        Named::new("the config", config),
    ];
    protected.extend_from_slice(reads);
    check_distinct(std::slice::from_ref(state), &protected)?;
    protected.extend(state_files(&state.path));
    check_distinct(outputs, &protected)?;
    outputs.iter().try_for_each(check_writable)
}

/// Refuses an output that is, or resolves to (through symbolic links, `.`
/// and `..`, or a hard link), a protected file or another output.
pub fn check_distinct(outputs: &[Named], protected: &[Named]) -> Result<(), String> {
    let ids: Vec<Identity> = outputs.iter().map(|o| Identity::of(&o.path)).collect();
    for (out, id) in outputs.iter().zip(&ids) {
        if let Some(p) = protected.iter().find(|p| id.same(&Identity::of(&p.path))) {
            return Err(format!(
                "{} is {}: writing it would destroy that file; choose another file name",
                out.describe(),
                p.describe()
            ));
        }
    }
    for (i, (a, ida)) in outputs.iter().zip(&ids).enumerate() {
        for (b, idb) in outputs.iter().zip(&ids).skip(i + 1) {
            if ida.same(idb) {
                return Err(format!(
                    "{} and {} are the same file; give them different names",
                    a.describe(),
                    b.describe()
                ));
            }
        }
    }
    Ok(())
}

/// Refuses an output whose directory is missing or cannot be written, or
/// that is a directory or a device: the run would only find out after every
/// row was sent.
pub fn check_writable(out: &Named) -> Result<(), String> {
    let path = &out.path;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(format!(
                "{} is a directory; give a file name",
                out.describe()
            ));
        }
        if !meta.is_file() {
            return Err(format!(
                "{} is not a regular file (a device or a pipe); it is written to a \
                 temporary file and renamed into place, so give a file name",
                out.describe()
            ));
        }
    }
    let dir = parent_dir(path);
    let dir_shown = crate::input::shown_path(dir);
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "cannot write {}: {} is not a directory",
                out.describe(),
                dir_shown
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot write {}: its directory {}: {}; create it first or choose another place",
                out.describe(),
                dir_shown,
                crate::fs_error::reason(&e)
            ));
        }
    }
    // Only trying tells: permissions, ACLs, read-only mounts, quotas.
    let probe = dir.join(format!(
        ".{}.{}.probe",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            // The advice fits the refusal: `/proc` has no permission to fix.
            let fix = match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "check the directory's permissions or choose another place"
                }
                _ => "choose another place",
            };
            // A directory that is there but "has no such file" for a new
            // one (`/proc`) refuses new files, whatever its mode says.
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "it does not let files be created in it".into(),
                _ => crate::fs_error::reason(&e),
            };
            Err(format!(
                "cannot write {} (in {}): {why}; {fix}",
                out.describe(),
                dir_shown,
            ))
        }
    }
}

/// Where an output named `path` really goes: through a symbolic link to the
/// file it points to, so that writing it (to a temporary file renamed into
/// place) replaces that file and leaves the link a link. A link that points
/// nowhere yet goes where it points; one to a device or a directory stays
/// as given, for [`check_writable`] to refuse.
pub fn through_links(path: &Path) -> PathBuf {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return path.to_path_buf();
    }
    if let Ok(real) = std::fs::canonicalize(path) {
        return if real.is_file() {
            real
        } else {
            path.to_path_buf()
        };
    }
    // Dangling: follow the links by hand to the name the last one gives.
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&at) {
            Ok(target) => at = parent_dir(&at).join(target),
            Err(_) => break,
        }
    }
    if std::fs::metadata(parent_dir(&at)).is_ok_and(|m| m.is_dir()) {
        at
    } else {
        path.to_path_buf()
    }
}

/// The directory a file goes into: `out.csv` → `.`.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `text` beside `path` and renames it into place, so that a reader
/// (a monitoring agent polling a summary) never sees half of it. The
/// temporary name is one no user file has.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = parent_dir(path).join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!(
                "cannot write {}: {}",
                path.display(),
                crate::fs_error::reason(&e)
            )
        })
}

/// The summary of a run that ended on an error: `{"exit_code", "error",
/// ...}`. Not written where it may not or cannot be (over `keep`, the state
/// file or its siblings, or where no file can go): the run's error already says
/// why, or is the one to fix first. An existing file is replaced only if it
/// is an earlier summary, since the error may come before the run knew
/// every file it must keep.
pub fn error_summary(
    path: &Path,
    code: i32,
    message: &str,
    started_at: std::time::SystemTime,
    keep: &[&Path],
    state: &Path,
) -> Result<(), String> {
    if !may_write_early(path, keep, state) {
        return Ok(());
    }
    let doc = serde_json::json!({
        "exit_code": code,
        "error": message,
        "started_at": rfc3339(started_at),
        "finished_at": rfc3339(std::time::SystemTime::now()),
    });
    replace_summary(path, &doc)
}

/// Whether a file written on the way out of a run that stopped on an error
/// (the summary, the metrics file) may go to `path`: not over `keep`, the
/// state file or its siblings, and only where a file can go.
pub fn may_write_early<P: AsRef<Path>>(path: &Path, keep: &[P], state: &Path) -> bool {
    let out = Named::new("", path);
    let mut protected: Vec<Named> = keep.iter().map(|p| Named::new("", p.as_ref())).collect();
    protected.extend(state_files(state));
    check_distinct(std::slice::from_ref(&out), &protected).is_ok() && check_writable(&out).is_ok()
}

/// A time as the summary writes it: `2026-01-31T02:30:00.123Z`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Writes a summary where only an earlier summary (or nothing) may be:
/// used when it is not known that `path` is safe to write.
fn replace_summary(path: &Path, doc: &serde_json::Value) -> Result<(), String> {
    let ours = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get("exit_code").is_some())
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Ok(meta)
            if meta.is_file()
                && meta.len() < 1 << 20
                && std::fs::read_to_string(path).is_ok_and(|t| ours(&t)) => {}
        _ => {
            return Err(format!(
                "{} was not replaced by the error summary: it is not a summary file",
                path.display()
            ));
        }
    }
    write_json(path, doc)
}

/// A JSON document, pretty, renamed into place.
pub fn write_json(path: &Path, doc: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| doc.to_string());
    write_atomically(path, &(text + "\n"))
}

/// Removes a file an earlier run wrote that this run does not replace, so
/// that it cannot pass for this run's. Only a regular file is removed.
pub fn remove_stale(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => std::fs::remove_file(path).map_err(|e| {
            format!(
                "cannot remove the earlier {}: {}",
                path.display(),
                crate::fs_error::reason(&e)
            )
        }),
        _ => Ok(()),
    }
}

/// What makes two paths one file: the same place once every link and `..`
/// is resolved, or, for files that exist, the same device and inode (hard
/// links have different names).
struct Identity {
    place: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Identity {
        let inode = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        Identity {
            place: resolved(path),
            inode,
        }
    }

    fn same(&self, other: &Identity) -> bool {
        self.place == other.place || (self.inode.is_some() && self.inode == other.inode)
    }
}

/// The absolute path with links resolved as far as the file system has
/// them: the file itself, else its nearest existing ancestor plus the rest.
fn resolved(path: &Path) -> PathBuf {
    let absolute = lexical(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let mut rest = Vec::new();
    let mut at = absolute.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent;
            }
            _ => return absolute,
        }
    }
}

/// `a/./b/../c` → `a/c`, without asking the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_under_other_names_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("in.csv"), "x").unwrap();
        std::fs::hard_link(d.join("in.csv"), d.join("hard.csv")).unwrap();
        std::os::unix::fs::symlink(d.join("in.csv"), d.join("soft.csv")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("subl")).unwrap();
        let input = [Named::new("the input", d.join("in.csv"))];
        for same in [
            d.join("in.csv"),
            d.join("sub/../in.csv"),
            d.join("./in.csv"),
            d.join("hard.csv"),
            d.join("soft.csv"),
        ] {
            let out = [Named::new("--results", &same)];
            let err = check_distinct(&out, &input).unwrap_err();
            assert!(err.contains("is the input"), "{err}");
        }
        // Not yet existing, through a linked directory.
        let outs = [
            Named::new("--results", d.join("sub/new.csv")),
            Named::new("--summary-json", d.join("subl/new.csv")),
        ];
        let err = check_distinct(&outs, &input).unwrap_err();
        assert!(err.contains("the same file"), "{err}");
        let outs = [Named::new("--results", d.join("sub/other.csv"))];
        assert!(check_distinct(&outs, &input).is_ok());
    }

    #[test]
    fn an_output_through_a_link_goes_where_the_link_points() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let target = shared.join("res.csv");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("shared/res.csv", &link).unwrap();
        assert_eq!(
            through_links(&link),
            std::fs::canonicalize(&target).unwrap()
        );
        // A link to a link, pointing nowhere yet.
        let gone = dir.path().join("gone.csv");
        std::os::unix::fs::symlink("shared/new.csv", &gone).unwrap();
        let chain = dir.path().join("chain.csv");
        std::os::unix::fs::symlink("gone.csv", &chain).unwrap();
        assert_eq!(through_links(&chain), dir.path().join("shared/new.csv"));
        // A plain name, a link to a directory or into nowhere: as given.
        let plain = dir.path().join("plain.csv");
        assert_eq!(through_links(&plain), plain);
        let to_dir = dir.path().join("to-dir");
        std::os::unix::fs::symlink("shared", &to_dir).unwrap();
        assert_eq!(through_links(&to_dir), to_dir);
        let nowhere = dir.path().join("nowhere.csv");
        std::os::unix::fs::symlink("no/such/dir/x.csv", &nowhere).unwrap();
        assert_eq!(through_links(&nowhere), nowhere);
    }

    #[test]
    fn an_output_must_have_a_writable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("file"), "x").unwrap();
        let ok = Named::new("--results", d.join("out.csv"));
        assert!(check_writable(&ok).is_ok());
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1, "no probe left");
        for bad in [
            d.join("missing/out.csv"),
            d.join("file/out.csv"),
            d.to_path_buf(),
        ] {
            let err = check_writable(&Named::new("--results", &bad)).unwrap_err();
            assert!(err.contains("--results"), "{err}");
        }
    }
}
