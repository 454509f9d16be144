//! Settings and sizes.

use std::path::PathBuf;

use crate::Res;

pub(crate) struct Settings {
    pub(crate) bin: PathBuf,
    pub(crate) quick: bool,
    pub(crate) only: Option<Vec<String>>,
    pub(crate) out: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) sizes: Sizes,
}

/// How much each scenario does; `--quick` (or `BENCH_QUICK=1`) shrinks it.
pub(crate) struct Sizes {
    pub(crate) overhead_rows: usize,
    pub(crate) overhead_rounds: usize,
    pub(crate) mixed_rows: usize,
    pub(crate) mixed_rounds: usize,
    pub(crate) latency_rows: usize,
    pub(crate) latency_rounds: usize,
    pub(crate) adaptive_rows: usize,
    pub(crate) adaptive_fixed: Vec<usize>,
    pub(crate) rate_rows: usize,
    /// Rows of the configured rate limit (100/s), sent whole then as one shard of two.
    pub(crate) told_rate_rows: usize,
    pub(crate) memory_small: usize,
    pub(crate) memory_large: usize,
    pub(crate) writer_rows: usize,
    pub(crate) writer_rounds: usize,
}

pub(crate) const SCENARIOS: [&str; 8] = [
    "overhead",
    "curl",
    "latency",
    "adaptive",
    "ratelimit",
    "memory",
    "resume",
    "checkpoint",
];

impl Settings {
    pub(crate) fn from_args(args: &[String]) -> Res<Settings> {
        let mut bin = PathBuf::from("target/release/invitesync");
        let mut quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut only = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--bin" => bin = PathBuf::from(it.next().ok_or("--bin needs a path")?),
                "--quick" => quick = true,
                "--only" => {
                    let list: Vec<String> = it
                        .next()
                        .ok_or("--only needs a list")?
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    for s in &list {
                        if !SCENARIOS.contains(&s.as_str()) {
                            return Err(format!(
                                "unknown scenario `{s}`; one of {}",
                                SCENARIOS.join(", ")
                            ));
                        }
                    }
                    only = Some(list);
                }
                // cargo bench passes --bench; a filter may follow. Ignore both.
                _ => {}
            }
        }
        if !bin.exists() {
            return Err(format!(
                "{} does not exist: build it first (cargo build --release)",
                bin.display()
            ));
        }
        let bin = std::fs::canonicalize(&bin).map_err(|e| e.to_string())?;
        let sizes = if quick {
            Sizes {
                overhead_rows: 20_000,
                overhead_rounds: 2,
                mixed_rows: 20_000,
                mixed_rounds: 1,
                latency_rows: 5_000,
                latency_rounds: 1,
                adaptive_rows: 4_000,
                adaptive_fixed: vec![24, 48],
                rate_rows: 3_000,
                told_rate_rows: 300,
                memory_small: 10_000,
                memory_large: 100_000,
                writer_rows: 100_000,
                writer_rounds: 2,
            }
        } else {
            Sizes {
                overhead_rows: 100_000,
                overhead_rounds: 3,
                mixed_rows: 100_000,
                mixed_rounds: 2,
                latency_rows: 20_000,
                latency_rounds: 1,
                adaptive_rows: 12_000,
                adaptive_fixed: vec![16, 24, 32, 48],
                rate_rows: 4_000,
                told_rate_rows: 1_000,
                memory_small: 10_000,
                memory_large: 1_000_000,
                writer_rows: 200_000,
                writer_rounds: 3,
            }
        };
        let out = PathBuf::from("target/bench");
        let work = out.join("work");
        Ok(Settings {
            bin,
            quick,
            only,
            out,
            work,
            sizes,
        })
    }

    pub(crate) fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|s| s == scenario))
    }
}
