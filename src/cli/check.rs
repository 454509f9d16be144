//! `invitesync check`: can every vendor be reached, the way a run would
//! reach it? Changes no invite and needs no vendor credential.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::Config;
use crate::net::Network;
use crate::net::probe::{self, Report};
use crate::net::proxy::Route;

use super::{ConfigArg, exit, fail};

const CHECK_HELP: &str = "\
For each vendor, without changing any invite: resolve its host (or the
proxy's), connect, open the proxy's tunnel, complete TLS showing the
certificate's subject, issuer and expiry, and send one GET to its base URL
(any HTTP answer, even 401 or 404, means it is reachable). Vendor
credentials are not needed and not sent.

Exit codes: 0 every vendor is reachable; 1 some vendor is not; 2 the config is wrong.

Examples:
  invitesync check --config invitesync.toml
  HTTPS_PROXY=http://proxy.example.com:3128 invitesync check";

#[derive(Debug, clap::Args)]
#[command(after_help = CHECK_HELP)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn execute(args: CheckArgs) -> i32 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match Config::load(&args.config.config, true) {
        Ok(c) => c,
        Err(e) => return fail(exit::USAGE, e),
    };
    let network = match Network::build(&config) {
        Ok(n) => n,
        Err(e) => return fail(exit::USAGE, e),
    };
    let wait = config.run.request_timeout.min(Duration::from_secs(10));
    let reports = futures::future::join_all(
        (0..network.vendors.len()).map(|i| probe::probe(&network, i, wait)),
    )
    .await;
    print!("{}", render(&reports));
    if reports.iter().all(|r| r.reachable) {
        exit::OK
    } else {
        exit::ROWS_NEED_ATTENTION
    }
}

/// Each vendor's steps, then a table of verdicts and the fixes.
pub fn render(reports: &[Report]) -> String {
    let mut s = String::new();
    for r in reports {
        let _ = writeln!(s, "[vendors.{}] {}", r.name, r.url);
        let _ = writeln!(s, "  {:<8} {}", "route", r.route.describe());
        for step in &r.steps {
            let mark = if step.ok { "ok" } else { "FAILED" };
            let _ = writeln!(s, "  {:<8} {mark:<6} {}", step.label, step.text);
        }
        for w in &r.warnings {
            let _ = writeln!(s, "  warning  {w}");
        }
        s.push('\n');
    }
    let rows: Vec<[String; 4]> = reports
        .iter()
        .map(|r| {
            let route = match &r.route {
                Route::Direct { .. } => "direct".to_string(),
                Route::Proxy(p) => format!("proxy {}", p.shown()),
            };
            let verdict = match &r.problem {
                None if r.reachable => "reachable".to_string(),
                None => "not reachable".to_string(),
                Some(p) => format!("NOT REACHABLE: {}", p.cause),
            };
            [r.name.clone(), r.host.clone(), route, verdict]
        })
        .collect();
    let heads = ["vendor", "host", "route", "verdict"];
    let width = |i: usize| {
        rows.iter()
            .map(|row| row[i].chars().count())
            .chain([heads[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let _ = writeln!(
        s,
        "{:<w0$}  {:<w1$}  {:<w2$}  {}",
        heads[0], heads[1], heads[2], heads[3]
    );
    for row in &rows {
        let _ = writeln!(
            s,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0], row[1], row[2], row[3]
        );
    }
    let fixes: Vec<&Report> = reports.iter().filter(|r| r.problem.is_some()).collect();
    if !fixes.is_empty() {
        s.push('\n');
        for r in fixes {
            if let Some(p) = &r.problem {
                let _ = writeln!(s, "fix [vendors.{}]: {}", r.name, p.fix);
            }
        }
    }
    s
}
