//! The process's exit codes, one enum for every command: schedulers read
//! them (docs/ARCHITECTURE.md, "Exit codes"), so each has one meaning.

/// How a command ended, as a scheduler must read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row updated or unchanged.
    Ok = 0,
    /// Finished, with invalid, rejected or failed rows (or no data rows).
    RowsNeedAttention = 1,
    /// A usage or configuration error, or a damaged state file: running
    /// again cannot help until a person fixes it. Nothing was sent.
    Usage = 2,
    /// Stopped early; running the same command again resumes.
    Resumable = 3,
    /// Another run holds the state file.
    Locked = 4,
}

impl Exit {
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The code of a run that went to its end: whether rows are left, then
    /// whether any needs a person.
    pub fn for_run(unfinished: bool, rows_need_attention: bool) -> Exit {
        if unfinished {
            Exit::Resumable
        } else if rows_need_attention {
            Exit::RowsNeedAttention
        } else {
            Exit::Ok
        }
    }
}

impl From<Exit> for i32 {
    fn from(e: Exit) -> i32 {
        e.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_wins_over_rows_to_fix() {
        assert_eq!(Exit::for_run(true, true), Exit::Resumable);
        assert_eq!(Exit::for_run(false, true), Exit::RowsNeedAttention);
        assert_eq!(Exit::for_run(false, false).code(), 0);
    }
}
