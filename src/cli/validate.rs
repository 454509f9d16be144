//! `invitesync validate`: every row checked against the vendors' rules,
//! offline, without credentials.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::Config;
use crate::input::Reader;
use crate::plan::Router;

use super::{ConfigArg, exit, fail};

const VALIDATE_HELP: &str = "\
Example:
  invitesync validate invites.csv --config invitesync.toml

Exit code 0 when every row is valid, 1 when some are not, 2 when the file or config cannot be read.";

#[derive(Debug, clap::Args)]
#[command(after_help = VALIDATE_HELP)]
pub struct ValidateArgs {
    /// The input CSV
    #[arg(value_name = "INPUT.csv")]
    pub input: PathBuf,

    #[command(flatten)]
    pub config: ConfigArg,

    /// Print at most this many problems one by one (all are counted)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_lines: usize,
}

pub fn execute(args: ValidateArgs) -> i32 {
    let config = match Config::load(&args.config.config, false) {
        Ok(c) => c,
        Err(e) => return fail(exit::USAGE, e),
    };
    let mut adapters = Vec::new();
    for (vc, settings) in &config.vendors {
        match crate::vendors::build(vc, settings.clone()) {
            Ok(a) => adapters.push(a),
            Err(e) => return fail(exit::USAGE, e),
        }
    }
    let router = Router::new(
        config
            .vendors
            .iter()
            .map(|(v, _)| v.name.as_str())
            .zip(adapters.iter().map(|a| &**a)),
    );
    let reader = match Reader::open(&args.input) {
        Ok(r) => r,
        Err(e) => return fail(exit::USAGE, e),
    };
    for (found, meant) in reader.header().suspicious_columns() {
        crate::logs::notice(
            crate::logs::Level::Warn,
            &format!("warning: column `{found}` is not read; did you mean `{meant}`?"),
        );
    }
    let header = reader.header().clone();
    let mut rows = 0u64;
    let mut printed = 0usize;
    let mut bad = 0u64;
    // (vendor, field, reason) → count and first lines
    let mut groups: BTreeMap<(String, String), (u64, Vec<u64>)> = BTreeMap::new();
    let path = args.input.display().to_string();
    for row in reader {
        rows += 1;
        if let Err(p) = router.plan(&header, &row) {
            bad += 1;
            let vendor = p
                .vendor
                .map(|v| router.name(v).to_string())
                .unwrap_or_else(|| "-".into());
            if printed < args.max_lines {
                println!(
                    "{path}:{}: row {}: [{vendor}] {}",
                    row.line,
                    row.index + 1,
                    p.invalid
                );
                printed += 1;
            }
            let g = groups.entry((vendor, p.invalid.field.clone())).or_default();
            g.0 += 1;
            if g.1.len() < 5 {
                g.1.push(row.line);
            }
        }
    }
    if bad as usize > printed {
        println!("... and {} more", bad as usize - printed);
    }
    if !groups.is_empty() {
        println!("\nproblems by vendor and column:");
        for ((vendor, field), (n, lines)) in &groups {
            let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
            let more = if *n as usize > lines.len() {
                ", ..."
            } else {
                ""
            };
            println!(
                "  {vendor:<12} {field:<12} {n:>8}  (lines {}{more})",
                lines.join(", ")
            );
        }
    }
    println!("\n{rows} rows, {} valid, {bad} invalid", rows - bad);
    if bad > 0 {
        exit::ROWS_NEED_ATTENTION
    } else {
        exit::OK
    }
}
