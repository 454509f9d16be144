//! `invitesync sandbox`: the four vendor APIs on 127.0.0.1, for trying
//! invitesync out and for its tests and benchmarks.

use crate::sandbox::{self, SandboxOptions};

const SANDBOX_HELP: &str = "\
Examples:
  invitesync sandbox --seed samples/seed.csv
  invitesync sandbox --fault latency_ms=50 --fault securegate.rate_limit=200
  invitesync sandbox --tls-self-signed tls    # HTTPS; trust tls/ca.pem with ca_cert
  invitesync sandbox --tls-self-signed tls --tls-client-ca tls/ca.pem    # mutual TLS
Statistics: GET http://127.0.0.1:PORT/_sandbox/stats; faults: POST /_sandbox/faults";

#[derive(Debug, clap::Args)]
#[command(after_help = SANDBOX_HELP)]
pub struct SandboxArgs {
    #[command(flatten)]
    pub options: SandboxOptions,

    #[command(flatten)]
    pub tls: sandbox::tls::TlsOptions,
}

pub async fn execute(args: SandboxArgs) -> i32 {
    match sandbox::serve_tls(args.options, args.tls).await {
        Ok(()) => super::exit::OK,
        Err(e) => super::fail(super::exit::USAGE, e),
    }
}
