//! The seed file: the invites a sandbox serves when it is not to invent them.

use std::io::Read;

use serde::Deserialize;

/// One line of a seed file. Columns are matched by name, case-insensitively;
/// missing columns read as empty.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SeedRow {
    pub(crate) kind: String,
    pub(crate) scope: String,
    pub(crate) invite_id: String,
    pub(crate) email: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) status: String,
    pub(crate) roles: String,
}

/// A broken seed, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads a seed CSV, calling `add` for each row (which finds the row's kind
/// by its `kind` column). Stops at the first bad row: a seed is test data,
/// and a silently skipped invite would turn into a confusing 404 later.
pub(crate) fn read_seed(
    input: impl Read,
    mut add: impl FnMut(&SeedRow) -> Result<(), String>,
) -> Result<u64, SeedError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| SeedError {
            line: 1,
            message: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect::<csv::StringRecord>();
    if !header.iter().any(|h| h == "kind") {
        return Err(SeedError {
            line: 1,
            message: "the header has no `kind` column (expected kind,scope,invite_id,email,first_name,last_name,status,roles)"
                .into(),
        });
    }
    let mut rows = 0;
    for result in reader.records() {
        let record = result.map_err(|e| SeedError {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row: SeedRow = record.deserialize(Some(&header)).map_err(|e| SeedError {
            line,
            message: e.to_string(),
        })?;
        rows += 1;
        add(&row).map_err(|message| SeedError { line, message })?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_report_their_line() {
        let text = "Kind,scope,invite_id,status\nsecuregate,e,i,sent\nnope,e,i,sent\n";
        let mut seen = Vec::new();
        let err = read_seed(text.as_bytes(), |r| {
            if r.kind == "nope" {
                return Err("unknown".into());
            }
            seen.push((r.kind.clone(), r.status.clone()));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(seen, vec![("securegate".to_string(), "sent".to_string())]);
        assert_eq!(err.line, 3);
        assert!(read_seed("a,b\n1,2\n".as_bytes(), |_| Ok(())).is_err());
    }
}
