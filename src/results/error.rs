//! Why a results or rows-to-fix file was not written. The callers say what
//! to do, and that depends on which side failed: an input that is no longer
//! the file the run read must be put back, an unreadable one read again, a
//! file that could not be written given room.

/// Why a file of a run's rows was not written. No half-written file is left
/// in its place, and no earlier file is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The input is not the file the run read (edited in place, appended
    /// to, cut short): its rows cannot be matched with the run's records.
    /// Says how it differs.
    InputChanged(String),
    /// The input could not be opened or read, with where and why.
    InputUnreadable(String),
    /// The file itself, or the state file, could not be written or read.
    Failed(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::InputChanged(how) => write!(
                f,
                "the input has changed since the run read it ({how}); its rows no longer \
                 match the state file"
            ),
            WriteError::InputUnreadable(e) | WriteError::Failed(e) => f.write_str(e),
        }
    }
}

impl From<String> for WriteError {
    /// Output and state-file errors, which the writer's helpers give as text.
    fn from(e: String) -> Self {
        WriteError::Failed(e)
    }
}

/// `n` data rows, in words.
pub(super) fn rows(n: u64) -> String {
    match n {
        0 => "no rows".into(),
        n => format!("{n} {}", crate::text::plural(n, "row", "rows")),
    }
}
