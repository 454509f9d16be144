//! `invitesync validate`: every row checked against the vendors' rules,
//! offline. The credentials are read (a missing one is a config error, as
//! in `run`) but nothing is sent.
//!
//! Problems go to stdout (they are the command's output, to be piped or
//! saved), one per line as `FILE:LINE: [VENDOR] COLUMN: REASON`, the form
//! editors and `grep` understand; then a table of them grouped by vendor and
//! column with counts and the first lines of each, then the totals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use indicatif::HumanCount;

use crate::config::Config;
use crate::input::{Compression, Layout, Reader, shown};
use crate::plan::Router;

use super::{ConfigArg, exit, fail};

const VALIDATE_HELP: &str = "\
Each problem is printed as FILE:LINE: [VENDOR] COLUMN: REASON (LINE counts the header as
line 1, as a spreadsheet numbers its rows), then the problems grouped by vendor and column.

Examples:
  invitesync validate invites.csv --config invitesync.toml
  invitesync validate invites.csv --max-lines 0      # only the groups and totals
  gunzip -c invites.csv.gz | invitesync validate -   # standard input (gzip and zstd are read as is)
  invitesync validate export.csv --delimiter tab --vendor gate --column invite_id='Invitation ID'

With --delimiter, --column, --vendor or their [input] table in the config, it first prints which of
the file's columns it reads for each of invitesync's.

Control characters in cells and names are shown escaped (\\u{1b}, \\n), never sent to the terminal.

Exit code 0 when every row is valid, 1 when some are not or the file has no data rows (only a
header), 2 when the file or config cannot be read (a truncated or damaged compressed file: the
rows before the damage are still checked and listed). The config's credentials must be readable
(as for `run`); nothing is sent.";

#[derive(Debug, clap::Args)]
#[command(after_help = VALIDATE_HELP)]
pub struct ValidateArgs {
    /// The input CSV; gzip and zstd are decompressed as read; `-` reads standard input
    #[arg(value_name = "INPUT.csv")]
    pub input: PathBuf,

    #[command(flatten)]
    pub config: ConfigArg,

    #[command(flatten)]
    pub layout: super::input::InputArgs,

    /// Print at most this many problems one by one (all are counted)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_lines: usize,
}

/// How many example line numbers a group lists.
const EXAMPLES: usize = 5;

/// Problems of one vendor and column: how many, and the first lines.
#[derive(Default)]
struct Group {
    rows: u64,
    lines: Vec<u64>,
}

pub fn execute(args: ValidateArgs) -> i32 {
    let config = match Config::load(&args.config.config, true) {
        Ok(c) => c,
        Err(e) => return fail(exit::USAGE, e),
    };
    let adapters = match crate::vendors::build::adapters(&config) {
        Ok(a) => a,
        Err(e) => return fail(exit::USAGE, e),
    };
    let router = Router::of(&config, &adapters);
    let names: Vec<&str> = config
        .vendors
        .iter()
        .map(|(v, _)| v.name.as_str())
        .collect();
    let layout = match Layout::resolve(&config.input, &args.layout.flags(), &names) {
        Ok(l) => l,
        Err(e) => return fail(exit::USAGE, e),
    };
    let mut reader = match Reader::open_as(&args.input, &layout) {
        Ok(r) => r,
        Err(e) => return fail(exit::USAGE, e),
    };
    for warning in reader.header().column_warnings() {
        crate::logs::notice(crate::logs::Level::Warn, &format!("warning: {warning}"));
    }
    let header = reader.header().clone();
    let name = crate::input::source::display_name(&args.input);
    let path = crate::input::shown_path(&name);
    if layout != Layout::default() || reader.compression() != Compression::None {
        print!(
            "{}",
            crate::input::mapping::describe(&path, &header, &layout, reader.compression())
        );
    }
    let (mut rows, mut bad, mut printed) = (0u64, 0u64, 0usize);
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut damage = None;
    while let Some(row) = reader.next() {
        if let Some(e) = reader.failed() {
            damage = Some((row.line, e.to_string()));
            break;
        }
        rows += 1;
        let Err(p) = router.plan(&header, &row) else {
            continue;
        };
        bad += 1;
        let vendor = p.vendor.map(|v| router.name(v).to_string());
        if printed < args.max_lines {
            let tag = vendor
                .as_ref()
                .map(|v| format!("[{v}] "))
                .unwrap_or_default();
            println!(
                "{path}:{}: {}",
                row.line,
                shown(&format!("{tag}{}", p.invalid))
            );
            printed += 1;
        }
        let g = groups
            .entry((
                shown(&vendor.unwrap_or_default()).into_owned(),
                shown(&p.invalid.field).into_owned(),
            ))
            .or_default();
        g.rows += 1;
        if g.lines.len() < EXAMPLES {
            g.lines.push(row.line);
        }
    }
    if bad as usize > printed {
        println!(
            "... and {} more (--max-lines N prints more)",
            HumanCount(bad - printed as u64)
        );
    }
    if let Some((line, e)) = damage {
        // The rows before the damage were checked and listed; the rest of
        // the file cannot be read, and `run` refuses it whole.
        println!(
            "{path}:{line}: cannot read the input from this line on: {}",
            shown(&e)
        );
        print!("{}", grouped(&groups));
        println!(
            "\n{} before the damage, {} valid, {} invalid; the rest of the file cannot be \
             read, and `run` sends nothing from it: get the whole file again",
            crate::text::counted(rows, "row", "rows"),
            HumanCount(rows - bad),
            HumanCount(bad)
        );
        return exit::USAGE;
    }
    if rows == 0 {
        println!(
            "{path} has a header but no data rows: nothing to check. An export that lost its \
             rows looks like this; `run` ends such an input with exit code 1 unless given --allow-empty."
        );
        return exit::ROWS_NEED_ATTENTION;
    }
    print!("{}", grouped(&groups));
    println!(
        "\n{}, {} valid, {} invalid",
        crate::text::counted(rows, "row", "rows"),
        HumanCount(rows - bad),
        HumanCount(bad)
    );
    if bad > 0 {
        println!(
            "fix them and validate again; or run anyway: invalid rows are not sent, \
             and they are listed in the results and the rows-to-fix file"
        );
        exit::ROWS_NEED_ATTENTION
    } else {
        exit::OK
    }
}

/// The table of problems by vendor and column.
fn grouped(groups: &BTreeMap<(String, String), Group>) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let vendor = |v: &str| if v.is_empty() { "-" } else { v }.to_string();
    // Broken lines are reported under the pseudo-column `csv`.
    let column = |c: &str| if c == "csv" { "(the line)" } else { c }.to_string();
    let vw = groups
        .keys()
        .map(|(v, _)| vendor(v).len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let cw = groups
        .keys()
        .map(|(_, c)| column(c).len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let mut s = String::from("\nproblems by vendor and column:\n");
    let _ = writeln!(
        s,
        "  {:<vw$}  {:<cw$}  {:>8}  lines",
        "vendor", "column", "rows"
    );
    for ((v, c), g) in groups {
        let lines: Vec<String> = g.lines.iter().map(u64::to_string).collect();
        let more = if g.rows as usize > g.lines.len() {
            ", ..."
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {:<vw$}  {:<cw$}  {:>8}  {}{more}",
            vendor(v),
            column(c),
            HumanCount(g.rows).to_string(),
            lines.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_line_up_and_name_broken_lines() {
        let mut groups = BTreeMap::new();
        groups.insert(
            (String::new(), "csv".to_string()),
            Group {
                rows: 1,
                lines: vec![5],
            },
        );
        groups.insert(
            ("gate".to_string(), "status".to_string()),
            Group {
                rows: 1200,
                lines: vec![2, 3, 4, 6, 7],
            },
        );
        let t = grouped(&groups);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], "  vendor  column          rows  lines");
        assert_eq!(lines[3], "  -       (the line)         1  5");
        assert_eq!(
            lines[4],
            "  gate    status         1,200  2, 3, 4, 6, 7, ..."
        );
    }
}
