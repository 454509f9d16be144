//! What `run` prints when it ends: a table per vendor and outcome, the
//! slowest vendor's round trips, where the files are, and the command to
//! type next (resume, feed the fixed rows back, or apply a dry run). The
//! same facts go to `--summary-json` for machines.

use std::fmt::Write as _;
use std::path::Path;

use indicatif::HumanCount;

use crate::input::shown_path;
use crate::job::RunReport;
use crate::latency::{Latency, human};
use crate::outcome::Outcome;
use crate::outputs::rfc3339;
use crate::text::counted;

use super::exit;

/// The command line as the summary should repeat it: the options that must
/// be the same for a resume to be accepted, and those that say where the
/// files are.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub input: String,
    pub config: String,
    /// `--state`, `--results`, `--shard`, `--force`, `--recheck-after`, as given.
    pub options: Vec<String>,
    /// `--delimiter`, `--column`, `--vendor`: how the input, and so the rows
    /// to fix, are read.
    pub layout: Vec<String>,
}

impl Invocation {
    /// `invitesync run INPUT --config CONFIG [options]`, quoted for a shell.
    pub fn command(&self) -> String {
        let mut words = vec!["invitesync", "run", &self.input, "--config", &self.config];
        words.extend(self.options.iter().map(String::as_str));
        words.extend(self.layout.iter().map(String::as_str));
        words.into_iter().map(typed).collect::<Vec<_>>().join(" ")
    }
}

pub use crate::shell::quote as shell_quote;

/// A word of a command the summary tells someone to type, quoted for the
/// shell. A word with a control or invisible formatting character (a file
/// named with an escape sequence or a line break) is written in bash's and
/// zsh's `$'...'` form with that character escaped, so that the terminal
/// shows it rather than acting on it and the command still pastes.
fn typed(word: &str) -> String {
    if crate::input::shown(word) == word {
        return shell_quote(word);
    }
    let mut s = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\'' => s.push_str("\\'"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if crate::input::shown(c.encode_utf8(&mut [0; 4])) != c.to_string() => {
                if u32::from(c) < 0x80 {
                    let _ = write!(s, "\\x{:02x}", u32::from(c));
                } else {
                    let _ = write!(s, "\\u{:04x}", u32::from(c));
                }
            }
            c => s.push(c),
        }
    }
    s.push('\'');
    s
}

/// The table printed at the end of a run, then the lines that say what next.
pub fn text(r: &RunReport, dry_run: bool, how: &Invocation) -> String {
    let mut s = String::from("\n");
    table(&mut s, r, dry_run);
    if r.pending > 0 {
        let _ = writeln!(
            s,
            "pending: {} not finished{}",
            counted(r.pending, "row", "rows"),
            if r.interrupted {
                " (the run was interrupted)"
            } else {
                ""
            }
        );
    }
    for why in &r.stopped {
        let _ = writeln!(s, "stopped {why}");
    }
    let _ = write!(s, "took {}", human(r.elapsed));
    if r.resumed {
        s.push_str(" (resumed)");
    }
    s.push('\n');
    if let Some((name, l)) = slowest(&r.latency) {
        let _ = writeln!(
            s,
            "round trips to {name} (the slowest vendor): p50 {}, p90 {}, p99 {} over {}",
            human(l.p50),
            human(l.p90),
            human(l.p99),
            counted(l.count, "answer", "answers")
        );
    }
    if let Some(p) = &r.results {
        let _ = writeln!(s, "results: {}", shown_path(p));
    }
    if let Some(p) = &r.failed_rows {
        let _ = writeln!(s, "rows to fix: {}", shown_path(p));
        let _ = writeln!(s, "  fix them, then: {}", fix_command(p, r, how));
    }
    if r.run_id.is_some() {
        let _ = writeln!(s, "state: {}", shown_path(&absolute(&r.state)));
    }
    if r.exit_code == exit::RESUMABLE {
        let how_to = if how.input == "-" {
            "to resume, pipe the same data again into"
        } else {
            "to resume"
        };
        let _ = writeln!(s, "{how_to}: {}", how.command());
    }
    if dry_run {
        let _ = writeln!(s, "dry run: nothing was sent; to send: {}", how.command());
    }
    s
}

/// The per-vendor table: one column per outcome, a total line.
fn table(s: &mut String, r: &RunReport, dry_run: bool) {
    let heads: &[(&str, Outcome)] = if dry_run {
        &[
            ("would send", Outcome::Updated),
            ("unchanged", Outcome::Unchanged),
            ("invalid", Outcome::Invalid),
        ]
    } else {
        &[
            ("updated", Outcome::Updated),
            ("unchanged", Outcome::Unchanged),
            ("invalid", Outcome::Invalid),
            ("rejected", Outcome::Rejected),
            ("failed", Outcome::Failed),
        ]
    };
    let name = |v: &Option<String>| v.clone().unwrap_or_else(|| "(no vendor)".into());
    let name_w = r
        .counts
        .iter()
        .map(|(v, _)| name(v).len())
        .chain(["vendor".len(), "total".len()])
        .max()
        .unwrap_or(6);
    let cell_w = r
        .counts
        .iter()
        .flat_map(|(_, c)| c.iter())
        .map(|n| HumanCount(*n).to_string().len())
        .chain(heads.iter().map(|(h, _)| h.len()))
        .max()
        .unwrap_or(9);
    let _ = write!(s, "{:<name_w$}", "vendor");
    for (h, _) in heads {
        let _ = write!(s, "  {h:>cell_w$}");
    }
    s.push('\n');
    let mut row = |label: String, count: &dyn Fn(Outcome) -> u64| {
        let _ = write!(s, "{label:<name_w$}");
        for (_, o) in heads {
            let _ = write!(s, "  {:>cell_w$}", HumanCount(count(*o)).to_string());
        }
        s.push('\n');
    };
    for (vendor, c) in &r.counts {
        row(name(vendor), &|o: Outcome| c[o.index()]);
    }
    row("total".into(), &|o: Outcome| r.total(o));
}

/// The vendor whose round trips were slowest (by p90), if any were made.
pub fn slowest(latency: &[(String, Latency)]) -> Option<(&str, Latency)> {
    latency
        .iter()
        .filter(|(_, l)| l.count > 0)
        .max_by_key(|(_, l)| l.p90)
        .map(|(n, l)| (n.as_str(), *l))
}

/// The command that feeds the rows to fix back, against the same state file
/// (and so the same ledger) as this run.
fn fix_command(failed: &Path, r: &RunReport, how: &Invocation) -> String {
    let mut words = vec![
        "invitesync".to_string(),
        "run".into(),
        failed.display().to_string(),
        "--config".into(),
        how.config.clone(),
    ];
    // The same config gives the fix command the same `[run] state`; only a
    // state file named otherwise must be repeated.
    if r.state != Path::new(&crate::state::default_name(None)) {
        words.push("--state".into());
        words.push(r.state.display().to_string());
    }
    words.extend(how.layout.iter().cloned());
    words.iter().map(|w| typed(w)).collect::<Vec<_>>().join(" ")
}

impl RunReport {
    /// The `--summary-json` document: [`json`] with what the report does not
    /// hold itself.
    pub fn summary_json(
        &self,
        dry_run: bool,
        shard: Option<(u32, u32)>,
        started_at: std::time::SystemTime,
    ) -> serde_json::Value {
        let mut doc = json(self);
        if let Some(map) = doc.as_object_mut() {
            map.insert("dry_run".into(), dry_run.into());
            map.insert(
                "shard".into(),
                shard.map(|(k, n)| format!("{k}/{n}")).into(),
            );
            map.insert("would_send".into(), self.dry_run.would_send.into());
            map.insert("started_at".into(), rfc3339(started_at).into());
            map.insert(
                "finished_at".into(),
                rfc3339(std::time::SystemTime::now()).into(),
            );
        }
        doc
    }
}

/// Where a file is, for a reader who may be elsewhere (cron mail, a log).
fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `--summary-json`: counts per vendor and outcome, round trips, files, exit code.
pub fn json(r: &RunReport) -> serde_json::Value {
    let by_outcome = |count: &dyn Fn(Outcome) -> u64| -> serde_json::Value {
        Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_string(), serde_json::json!(count(*o))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let vendors: serde_json::Map<String, serde_json::Value> = r
        .counts
        .iter()
        .map(|(v, c)| {
            (
                v.clone().unwrap_or_else(|| "(no vendor)".into()),
                by_outcome(&|o: Outcome| c[o.index()]),
            )
        })
        .collect();
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let latency: serde_json::Map<String, serde_json::Value> = r
        .latency
        .iter()
        .filter(|(_, l)| l.count > 0)
        .map(|(v, l)| {
            (
                v.clone(),
                serde_json::json!({
                    "round_trips": l.count,
                    "p50_ms": ms(l.p50),
                    "p90_ms": ms(l.p90),
                    "p99_ms": ms(l.p99),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "run_id": r.run_id.map(|id| id.0),
        "exit_code": r.exit_code,
        "resumed": r.resumed,
        "interrupted": r.interrupted,
        "duration_seconds": r.elapsed.as_secs_f64(),
        "pending": r.pending,
        "stopped_vendors": r.stopped,
        "totals": by_outcome(&|o| r.total(o)),
        "vendors": vendors,
        "latency": latency,
        "results": r.results.as_ref().map(|p| p.display().to_string()),
        "failed_rows": r.failed_rows.as_ref().map(|p| p.display().to_string()),
        "state": r.state.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn report() -> RunReport {
        RunReport {
            run_id: None,
            exit_code: 3,
            counts: vec![
                (Some("gate".into()), [1200, 3, 1, 0, 0]),
                (None, [0, 0, 2, 0, 0]),
            ],
            pending: 7,
            dry_run: Default::default(),
            stopped: vec!["gate: credentials refused; check vendors.gate.api_key".into()],
            interrupted: false,
            results: Some(PathBuf::from("in.results.csv")),
            failed_rows: Some(PathBuf::from("in.failed.csv")),
            elapsed: Duration::from_millis(1500),
            resumed: false,
            state: PathBuf::from("invitesync.db"),
            latency: vec![
                (
                    "gate".into(),
                    Latency {
                        count: 1200,
                        p50: Duration::from_millis(12),
                        p90: Duration::from_millis(30),
                        p99: Duration::from_millis(80),
                    },
                ),
                ("hub".into(), Latency::default()),
            ],
        }
    }

    #[test]
    fn the_summary_says_what_happened_and_what_next() {
        let how = Invocation {
            input: "my invites.csv".into(),
            config: "c.toml".into(),
            options: vec!["--shard".into(), "auto/4".into()],
            layout: Vec::new(),
        };
        let t = text(&report(), false, &how);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[1],
            "vendor         updated  unchanged    invalid   rejected     failed"
        );
        assert_eq!(
            lines[2],
            "gate             1,200          3          1          0          0"
        );
        assert!(lines[3].starts_with("(no vendor)"), "{t}");
        assert!(lines[4].starts_with("total            1,200"), "{t}");
        assert!(t.contains("pending: 7 rows not finished\n"), "{t}");
        assert!(t.contains("check vendors.gate.api_key"), "{t}");
        assert!(
            t.contains("round trips to gate (the slowest vendor): p50 12ms, p90 30ms, p99 80ms over 1,200 answers"),
            "{t}"
        );
        assert!(
            t.contains(
                "to resume: invitesync run 'my invites.csv' --config c.toml --shard auto/4\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("fix them, then: invitesync run in.failed.csv --config c.toml\n"),
            "{t}"
        );
    }

    #[test]
    fn one_is_not_plural() {
        let mut r = report();
        r.pending = 1;
        r.latency[0].1.count = 1;
        let t = text(&r, false, &Invocation::default());
        assert!(t.contains("pending: 1 row not finished\n"), "{t}");
        assert!(t.contains("over 1 answer\n"), "{t}");
        assert_eq!(counted(1_200, "row", "rows"), "1,200 rows");
    }

    #[test]
    fn file_names_cannot_reach_the_terminal_raw() {
        let mut r = report();
        r.results = Some(PathBuf::from("in\u{1b}]0;x\u{7}.results.csv"));
        r.failed_rows = Some(PathBuf::from("in\n.failed.csv"));
        r.state = PathBuf::from("/s\u{1b}[2J.db");
        r.run_id = Some(crate::state::RunId(1));
        let how = Invocation {
            input: "in\u{1b}[2J\n'x'.csv".into(),
            config: "c.toml".into(),
            ..Invocation::default()
        };
        let t = text(&r, false, &how);
        assert!(!t.contains('\u{1b}') && !t.contains('\u{7}'), "{t:?}");
        assert_eq!(t.lines().filter(|l| l.contains(".csv")).count(), 4, "{t}");
        assert!(
            t.contains("results: in\\u{1b}]0;x\\u{7}.results.csv\n"),
            "{t}"
        );
        assert!(t.contains("rows to fix: in\\n.failed.csv\n"), "{t}");
        assert!(t.contains("state: /s\\u{1b}[2J.db\n"), "{t}");
        assert!(
            t.contains("to resume: invitesync run $'in\\x1b[2J\\n\\'x\\'.csv' --config c.toml\n"),
            "{t}"
        );
        assert!(
            t.contains("fix them, then: invitesync run $'in\\n.failed.csv'"),
            "{t}"
        );
    }

    #[test]
    fn json_has_counts_and_round_trips() {
        let j = json(&report());
        assert_eq!(j["vendors"]["gate"]["updated"], 1200);
        assert_eq!(j["totals"]["invalid"], 3);
        assert_eq!(j["latency"]["gate"]["p90_ms"], 30.0);
        assert!(
            j["latency"].get("hub").is_none(),
            "no round trips, no entry"
        );
    }
}
