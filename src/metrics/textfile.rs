//! `--metrics-file`: the node exporter's textfile-collector format, written to
//! a temporary file in the same directory and renamed over the old one, so
//! that a scrape reads the previous file or the new one whole, never half of
//! one. The temporary name does not end in `.prom`, so the collector never
//! reads it either.
//!
//! Like a Pushgateway group, the file is replaced whole only by a run that
//! succeeded; otherwise the families written replace theirs and the old
//! file's other families stay, the last success's time among them.

use std::io::Write;
use std::path::Path;

/// Writes `text` to `path` atomically; `replace = false` keeps the families of
/// the file there now that `text` does not have.
pub fn write(path: &Path, text: &str, replace: bool) -> Result<(), String> {
    ours_to_replace(path)?;
    let text = if replace {
        text.to_string()
    } else {
        match std::fs::read_to_string(path) {
            Ok(old) => merge(&old, text),
            Err(_) => text.to_string(),
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "cannot write the metrics file {}: {}",
            path.display(),
            crate::fs_error::reason(&e)
        )
    })
}

/// The file there now may be replaced only if it is an earlier metrics file
/// of ours (or empty, or absent): `--metrics-file` pointed by mistake at
/// the input, the state file, a secret or any other file must not destroy
/// it, even in a run that failed before it knew its other files.
fn ours_to_replace(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(PREFIX.len());
    let read =
        std::fs::File::open(path).and_then(|f| f.take(PREFIX.len() as u64).read_to_end(&mut head));
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(_) if head.is_empty() || head == PREFIX.as_bytes() => Ok(()),
        Ok(_) => Err(format!(
            "the metrics file {} was not written: that file holds something else than \
             invitesync's metrics, and is left as it is; give --metrics-file a file of its own",
            path.display()
        )),
        Err(e) => Err(format!(
            "cannot write the metrics file {}: {}",
            path.display(),
            crate::fs_error::reason(&e)
        )),
    }
}

/// How a metrics file of ours begins: its first family's `# HELP` line.
const PREFIX: &str = "# HELP invitesync_";

/// `new`, then the families of `old` that `new` does not have. A family is its
/// `# HELP` line and what follows up to the next one.
pub fn merge(old: &str, new: &str) -> String {
    let have: Vec<&str> = new.lines().filter_map(help_name).collect();
    let mut out = new.to_string();
    let mut keep = false;
    for line in old.lines() {
        if let Some(name) = help_name(line) {
            keep = !have.contains(&name);
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn help_name(line: &str) -> Option<&str> {
    line.strip_prefix("# HELP ")
        .and_then(|rest| rest.split(' ').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\
                       # HELP last Last.\n# TYPE last gauge\nlast 5\n";

    #[test]
    fn only_an_earlier_metrics_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let ours = "# HELP invitesync_rows_total Rows.\n# TYPE invitesync_rows_total counter\n";
        let fresh = dir.path().join("fresh.prom");
        write(&fresh, ours, true).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), ours);
        write(&fresh, ours, false).unwrap();
        let empty = dir.path().join("empty.prom");
        std::fs::write(&empty, "").unwrap();
        write(&empty, ours, true).unwrap();
        for other in [
            "vendor,invite_id\ngate,1\n",
            "SQLite format 3\0",
            "# HELP node_load1 x\n",
        ] {
            let path = dir.path().join("other");
            std::fs::write(&path, other).unwrap();
            for replace in [true, false] {
                let e = write(&path, ours, replace).unwrap_err();
                assert!(e.contains("holds something else"), "{e}");
                assert_eq!(std::fs::read_to_string(&path).unwrap(), other);
            }
        }
    }

    #[test]
    fn a_merge_keeps_the_families_the_new_text_lacks() {
        let new = "# HELP a_total A.\n# TYPE a_total counter\na_total 2\n";
        let merged = merge(OLD, new);
        assert_eq!(
            merged,
            format!("{new}# HELP last Last.\n# TYPE last gauge\nlast 5\n")
        );
        // Lines before any family (not ours) are dropped.
        assert_eq!(merge("junk\n", new), new);
    }

    #[test]
    fn the_file_is_renamed_into_place_and_no_temporary_is_left() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invitesync.prom");
        write(&path, &OLD.replace("a_total", "invitesync_a"), true).unwrap();
        let first = std::fs::metadata(&path).unwrap().ino();
        write(
            &path,
            "# HELP invitesync_a A.\n# TYPE invitesync_a counter\ninvitesync_a 3\n",
            false,
        )
        .unwrap();
        // A new file took the name (a rename), rather than the old one being
        // truncated and rewritten where a reader could see it half done.
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), first);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(
                "# HELP invitesync_a A.\n# TYPE invitesync_a counter\ninvitesync_a 3\n"
            )
        );
        assert!(text.ends_with("last 5\n"), "{text}");
        write(
            &path,
            "# HELP invitesync_b B.\n# TYPE invitesync_b gauge\ninvitesync_b 1\n",
            true,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# HELP invitesync_b B.\n# TYPE invitesync_b gauge\ninvitesync_b 1\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["invitesync.prom"]);
    }

    #[test]
    fn an_unwritable_place_is_an_error_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("invitesync.prom");
        let e = write(&path, "x 1\n", true).unwrap_err();
        assert!(e.contains("missing/invitesync.prom"), "{e}");
        assert!(!dir.path().join("missing").exists());
    }
}
