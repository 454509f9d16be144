//! The sandbox's settings, as command-line options and as a struct for tests.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use super::knobs::FaultSettings;
use crate::vendors::Kind;

/// `invitesync sandbox`'s options. Every field has a flag; `Default` gives the
/// same values as the command line without flags.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SandboxOptions {
    /// Port to listen on, on 127.0.0.1 only (0 picks a free port)
    #[arg(long, default_value_t = 8787)]
    pub port: u16,

    /// Serve only the invites in this CSV (header kind,scope,invite_id,email,
    /// first_name,last_name,status,roles); others answer 404. Without a seed,
    /// every well-formed invite exists and is created on first use
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,

    /// Keep no invites at all: every well-formed invite exists and each
    /// request sees it fresh. For benchmarks of millions of rows; implies
    /// --no-invite-stats
    #[arg(long, conflicts_with = "seed")]
    pub stateless: bool,

    /// Keep only per-vendor statistics, not the per-invite record of updates
    #[arg(long)]
    pub no_invite_stats: bool,

    /// The credentials each vendor kind expects: a flag per credential
    /// (`--mighty-token`, `--securegate-api-key`, ...), from the list of kinds.
    #[command(flatten)]
    pub credentials: Credentials,

    /// A digest nonce goes stale after this many accepted requests (0: never)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub nonce_max_uses: u64,

    /// A digest nonce goes stale this many seconds after it was issued (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub nonce_max_age_s: u64,

    /// Fault: latency added to every request, in milliseconds
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,

    /// Fault: random extra latency of up to this many milliseconds
    #[arg(long, value_name = "MS")]
    pub jitter_ms: Option<u64>,

    /// Fault: share (0 to 1) of requests answered 500, 502, 503 or 504
    #[arg(long, value_name = "SHARE")]
    pub error_rate: Option<f64>,

    /// Fault: share of requests whose connection is reset without an answer
    #[arg(long, value_name = "SHARE")]
    pub reset_rate: Option<f64>,

    /// Fault: share of requests that hang (see --hang-ms)
    #[arg(long, value_name = "SHARE")]
    pub hang_rate: Option<f64>,

    /// Fault: how long a hang lasts, in milliseconds [default: one hour]
    #[arg(long, value_name = "MS")]
    pub hang_ms: Option<u64>,

    /// Fault: requests per second each vendor admits; past it, 429 with Retry-After
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit: Option<f64>,

    /// Fault: the rate limit's burst [default: one second's worth]
    #[arg(long, value_name = "REQUESTS")]
    pub burst: Option<f64>,

    /// Fault: past this many requests in flight to a vendor, latency grows
    /// in proportion (needs --latency-ms)
    #[arg(long, value_name = "N")]
    pub knee: Option<u32>,

    /// Fault: refuse every credential with 401
    #[arg(long)]
    pub reject_auth: bool,

    /// Fault for one vendor kind or all, as [KIND.]KEY=VALUE, e.g.
    /// securegate.rate_limit=200 or ops_manager.reject_auth=true (repeatable;
    /// keys as the long options above, with underscores, and error_status:
    /// the one status, 500, 502, 503 or 504, of the errors error_rate injects)
    #[arg(long = "fault", value_name = "[KIND.]KEY=VALUE")]
    pub faults: Vec<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 8787,
            seed: None,
            stateless: false,
            no_invite_stats: false,
            credentials: Credentials::default(),
            nonce_max_uses: 0,
            nonce_max_age_s: 300,
            latency_ms: None,
            jitter_ms: None,
            error_rate: None,
            reset_rate: None,
            hang_rate: None,
            hang_ms: None,
            rate_limit: None,
            burst: None,
            knee: None,
            reject_auth: false,
            faults: Vec::new(),
        }
    }
}

impl SandboxOptions {
    /// The defaults on an ephemeral port, for in-process tests.
    pub fn ephemeral() -> Self {
        SandboxOptions {
            port: 0,
            ..SandboxOptions::default()
        }
    }

    /// The credentials the sandbox expects.
    pub fn credentials(&self) -> Credentials {
        self.credentials.clone()
    }

    pub(crate) fn nonce_max_age(&self) -> Duration {
        Duration::from_secs(self.nonce_max_age_s)
    }

    /// The fault flags as settings: the dedicated flags are global, then each
    /// `--fault` in order.
    pub fn fault_settings(&self) -> Result<FaultSettings, String> {
        let mut s = FaultSettings::default();
        let g = &mut s.global;
        g.latency_ms = self.latency_ms;
        g.jitter_ms = self.jitter_ms;
        g.error_rate = self.error_rate;
        g.reset_rate = self.reset_rate;
        g.hang_rate = self.hang_rate;
        g.hang_ms = self.hang_ms;
        g.rate_limit = self.rate_limit;
        g.burst = self.burst;
        g.knee = self.knee;
        g.reject_auth = self.reject_auth.then_some(true);
        for spec in &self.faults {
            s.apply(spec)?;
        }
        s.validate()?;
        Ok(s)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        for (flag, value) in self.credentials.iter() {
            if value.is_empty() || value.chars().any(|c| c.is_control() || c == '"') {
                return Err(format!(
                    "--{flag}: must be non-empty printable text without quotes"
                ));
            }
        }
        if self.stateless && self.seed.is_some() {
            return Err("--stateless keeps no invites, so it cannot take --seed".into());
        }
        Ok(())
    }
}

/// What the sandbox expects from clients, one value per credential of each
/// vendor kind, by the flag that sets it (`securegate-api-key`); print these
/// or put them in a config's secret files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    values: Vec<(&'static str, String)>,
}

impl Default for Credentials {
    /// Each credential's default, as the command line without flags.
    fn default() -> Self {
        let values = Kind::ALL
            .iter()
            .flat_map(|k| k.vendor().credentials)
            .map(|c| (c.flag, c.default.to_string()))
            .collect();
        Credentials { values }
    }
}

impl Credentials {
    /// The value the flag `flag` (without dashes) sets.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.as_str())
    }

    /// Changes one value; false if no credential has that flag.
    pub fn set(&mut self, flag: &str, value: &str) -> bool {
        match self.values.iter_mut().find(|(f, _)| *f == flag) {
            Some((_, v)) => {
                *v = value.to_string();
                true
            }
            None => false,
        }
    }

    /// `(flag, value)` of every credential, kinds in the list's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(f, v)| (*f, v.as_str()))
    }

    /// The values a kind's credentials have, in the kind's order.
    pub fn of(&self, kind: Kind) -> Vec<(&'static str, String)> {
        kind.vendor()
            .credentials
            .iter()
            .map(|c| (c.flag, self.get(c.flag).unwrap_or_default().to_string()))
            .collect()
    }
}

impl clap::Args for Credentials {
    fn augment_args(mut cmd: Command) -> Command {
        for c in Kind::ALL.iter().flat_map(|k| k.vendor().credentials) {
            cmd = cmd.arg(
                Arg::new(c.flag)
                    .long(c.flag)
                    .value_name(c.value_name)
                    .default_value(c.default)
                    .help(c.help)
                    .action(ArgAction::Set)
                    .value_parser(clap::value_parser!(String)),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Credentials {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut c = Credentials::default();
        c.update_from_arg_matches(matches)?;
        Ok(c)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for (flag, value) in &mut self.values {
            if let Some(v) = matches.get_one::<String>(flag) {
                value.clone_from(v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: SandboxOptions,
    }

    #[test]
    fn defaults_match_the_command_line() {
        let cli = Cli::try_parse_from(["sandbox"]).unwrap();
        assert_eq!(cli.options, SandboxOptions::default());
        assert_eq!(
            SandboxOptions::default().fault_settings().unwrap(),
            FaultSettings::default()
        );
    }

    #[test]
    fn flags_become_fault_settings() {
        let cli = Cli::try_parse_from([
            "sandbox",
            "--latency-ms",
            "50",
            "--fault",
            "securegate.rate_limit=200",
            "--fault",
            "ctrl_hub.latency_ms=0",
            "--reject-auth",
        ])
        .unwrap();
        let s = cli.options.fault_settings().unwrap();
        assert_eq!(s.global.latency_ms, Some(50));
        assert_eq!(s.global.reject_auth, Some(true));
        assert_eq!(s.vendors[&Kind::Securegate].rate_limit, Some(200.0));
        assert!(Cli::try_parse_from(["sandbox", "--seed", "x.csv", "--stateless"]).is_err());
        let bad = Cli::try_parse_from(["sandbox", "--error-rate", "2"]).unwrap();
        assert!(bad.options.fault_settings().is_err());
    }

    /// Every credential of every kind is a flag of its own.
    #[test]
    fn every_credential_is_a_flag() {
        let mut args = vec!["sandbox".to_string()];
        for c in Kind::ALL.iter().flat_map(|k| k.vendor().credentials) {
            args.push(format!("--{}", c.flag));
            args.push(format!("x-{}", c.flag));
        }
        let cli = Cli::try_parse_from(&args).unwrap();
        let creds = cli.options.credentials();
        assert_eq!(creds.iter().count(), (args.len() - 1) / 2);
        for (flag, value) in creds.iter() {
            assert_eq!(value, format!("x-{flag}"));
        }
        let mut empty = SandboxOptions::default();
        assert!(empty.credentials.set("om-private-key", ""));
        assert_eq!(
            empty.check().unwrap_err(),
            "--om-private-key: must be non-empty printable text without quotes"
        );
    }
}
