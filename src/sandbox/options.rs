//! The sandbox's settings, as command-line options and as a struct for tests.

use std::path::PathBuf;
use std::time::Duration;

use super::faults::FaultSettings;

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

    /// Mighty Networks bearer token expected
    #[arg(long, value_name = "TOKEN", default_value = "sandbox-mighty-token")]
    pub mighty_token: String,

    /// Securegate `x-api-key` expected
    #[arg(long, value_name = "KEY", default_value = "sandbox-securegate-key")]
    pub securegate_api_key: String,

    /// Ops Manager public key (the digest username) expected
    #[arg(long, value_name = "KEY", default_value = "sandbox-om-public")]
    pub om_public_key: String,

    /// Ops Manager private key (the digest password) expected
    #[arg(long, value_name = "KEY", default_value = "sandbox-om-private")]
    pub om_private_key: String,

    /// Ctrl-Hub `X-Session-Token` expected
    #[arg(long, value_name = "TOKEN", default_value = "sandbox-ctrlhub-token")]
    pub ctrl_hub_token: String,

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
    /// keys as the long options above, with underscores)
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
            mighty_token: "sandbox-mighty-token".into(),
            securegate_api_key: "sandbox-securegate-key".into(),
            om_public_key: "sandbox-om-public".into(),
            om_private_key: "sandbox-om-private".into(),
            ctrl_hub_token: "sandbox-ctrlhub-token".into(),
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
        Credentials {
            mighty_token: self.mighty_token.clone(),
            securegate_api_key: self.securegate_api_key.clone(),
            om_public_key: self.om_public_key.clone(),
            om_private_key: self.om_private_key.clone(),
            ctrl_hub_token: self.ctrl_hub_token.clone(),
        }
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
        let creds = [
            ("--mighty-token", &self.mighty_token),
            ("--securegate-api-key", &self.securegate_api_key),
            ("--om-public-key", &self.om_public_key),
            ("--om-private-key", &self.om_private_key),
            ("--ctrl-hub-token", &self.ctrl_hub_token),
        ];
        for (flag, value) in creds {
            if value.is_empty() || value.chars().any(|c| c.is_control() || c == '"') {
                return Err(format!(
                    "{flag}: must be non-empty printable text without quotes"
                ));
            }
        }
        if self.stateless && self.seed.is_some() {
            return Err("--stateless keeps no invites, so it cannot take --seed".into());
        }
        Ok(())
    }
}

/// What the sandbox expects from clients; print these or put them in a
/// config's secret files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub mighty_token: String,
    pub securegate_api_key: String,
    pub om_public_key: String,
    pub om_private_key: String,
    pub ctrl_hub_token: String,
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
        assert_eq!(
            s.vendors[&super::super::Kind::Securegate].rate_limit,
            Some(200.0)
        );
        assert!(Cli::try_parse_from(["sandbox", "--seed", "x.csv", "--stateless"]).is_err());
        let bad = Cli::try_parse_from(["sandbox", "--error-rate", "2"]).unwrap();
        assert!(bad.options.fault_settings().is_err());
    }
}
