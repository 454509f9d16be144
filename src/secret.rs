//! Credentials that must never leak.
//!
//! A [`Secret`] prints as `***` through `Debug` and `Display`, so a secret that
//! ends up in a log line, an error or a panic message by accident shows
//! nothing. The only way to the value is [`Secret::expose`], which is easy to
//! grep for.
//!
//! Secrets come from an environment variable or a file ([`read`]) and are
//! checked there, once, to be something that can travel in an HTTP header:
//! a credential with a line break would otherwise be dropped from the request
//! (an invalid header value) and the request would go out unauthenticated.
//! Every secret read is remembered in a [`Registry`], from which the run's
//! [`crate::redact::Redactor`] is built.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The most read from a secret file. A credential is a few hundred bytes at
/// most; the cap keeps a wrong path (a log, a disk image) from filling memory.
pub const FILE_CAP: u64 = 64 * 1024;

/// Where a secret comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Env(&'a str),
    File(&'a Path),
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A secret that was read, and a warning about where it came from if there
/// is one to give (a file that others may read).
pub struct Read {
    pub secret: Secret,
    pub warning: Option<String>,
}

/// Reads and checks a secret. Errors are one sentence that names the source
/// (never the value) and what to do; the caller puts the config key in front.
pub fn read(source: Source<'_>) -> Result<Read, String> {
    let (raw, warning) = match source {
        Source::Env(var) => match std::env::var(var) {
            Ok(v) => (v, None),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!(
                    "{source} is not set; export it (or read the credential from a file with `{{ file = \"PATH\" }}`)"
                ));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!(
                    "{source} is not valid UTF-8; set it to the credential as text"
                ));
            }
        },
        Source::File(path) => {
            let bytes = crate::small_file::read(path, FILE_CAP).map_err(|e| {
                let hint = match e {
                    crate::small_file::SmallFileError::Io(_) => {
                        "check the path (relative paths start at the config file) and that this user may read it"
                    }
                    _ => "point the key at a file that holds only the credential",
                };
                format!("cannot read {}: {e}; {hint}", path.display())
            })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                format!(
                    "{source} is not UTF-8 text; put the credential in it as text (a binary key must be encoded, e.g. in base64, as the vendor issues it)"
                )
            })?;
            let warning = crate::small_file::readable_by_others(path).map(|mode| {
                format!(
                    "{source} may be read by other users (mode {mode:04o}); restrict it with `chmod 600 {}`",
                    path.display()
                )
            });
            (text, warning)
        }
    };
    let value = check(raw).map_err(|why| format!("{source} {why}"))?;
    Ok(Read {
        secret: Secret::new(value),
        warning,
    })
}

/// The value a credential's text stands for, or why it cannot be one. Exactly
/// one line ending is removed (`echo key > file` writes one); anything else
/// must already be what goes into the HTTP header, since HTTP would strip or
/// refuse what does not fit there and the vendor would see something else.
fn check(mut text: String) -> Result<String, &'static str> {
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
    if text.trim().is_empty() {
        return Err("is empty; put the credential in it");
    }
    if text.contains(['\n', '\r']) {
        return Err(
            "holds more than one line; a credential is one line (one line ending at the end is fine)",
        );
    }
    if text.chars().any(char::is_control) {
        return Err(
            "contains a control character (a tab, an escape, ...); a credential is printable text",
        );
    }
    if !text.is_ascii() {
        return Err(
            "contains a non-ASCII character; credentials travel in HTTP headers, which carry ASCII only",
        );
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return Err(
            "begins or ends with a space, which HTTP would strip from the header; remove it",
        );
    }
    Ok(text)
}

/// The secrets read so far, shared by every vendor table of one config, so
/// that what any vendor answers can be cleaned of all of them; and the files
/// they come from, which no output of a run may overwrite.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    secrets: Arc<Mutex<Vec<Secret>>>,
    /// `vendors.NAME.KEY` and the file it names.
    files: Arc<Mutex<Vec<(String, PathBuf)>>>,
}

impl Registry {
    pub fn add(&self, secret: &Secret) {
        let mut all = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if !all.contains(secret) {
            all.push(secret.clone());
        }
    }

    pub fn all(&self) -> Vec<Secret> {
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Remembers that the setting `key` names the secret file `path`.
    pub fn add_file(&self, key: &str, path: &Path) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if !files.iter().any(|(k, p)| k == key && p == path) {
            files.push((key.to_string(), path.to_path_buf()));
        }
    }

    /// The secret files named so far, with the setting that names each.
    pub fn files(&self) -> Vec<(String, PathBuf)> {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn one_line_ending_is_removed_and_nothing_else_is_forgiven() {
        assert_eq!(check("k3y\n".into()).unwrap(), "k3y");
        assert_eq!(check("k3y\r\n".into()).unwrap(), "k3y");
        assert_eq!(check("k 3y".into()).unwrap(), "k 3y");
        for bad in [
            "", "\n", " ", "  \n", "k3y\n\n", "a\nb", "a\rb", "k3y\r", "a\tb", "a\u{1b}b",
            "a\u{7f}", "a\u{85}b", "clé", " k3y", "k3y ", "k3y \n",
        ] {
            assert!(check(bad.into()).is_err(), "{bad:?}");
        }
        assert!(
            check("a\nb".into())
                .unwrap_err()
                .contains("more than one line")
        );
    }

    #[test]
    fn files_are_capped_and_others_may_not_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "x".repeat(FILE_CAP as usize + 1)).unwrap();
        let e = read(Source::File(&p)).err().unwrap();
        assert!(e.contains("larger than 64 KiB"), "{e}");
        std::fs::write(&p, "k3y\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            let r = read(Source::File(&p)).unwrap();
            assert_eq!((r.secret.expose(), r.warning), ("k3y", None));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let w = read(Source::File(&p)).unwrap().warning.unwrap();
            assert!(w.contains("mode 0644") && w.contains("chmod 600"), "{w}");
        }
    }

    #[test]
    fn the_registry_keeps_each_secret_once() {
        let r = Registry::default();
        let shared = r.clone();
        r.add(&Secret::new("a"));
        shared.add(&Secret::new("a"));
        shared.add(&Secret::new("b"));
        assert_eq!(r.all().len(), 2);
    }
}
