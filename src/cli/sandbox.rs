//! `invitesync sandbox`: placeholder until the sandbox lands.

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
}

pub async fn execute(_args: SandboxArgs) -> i32 {
    super::fail(super::exit::USAGE, "the sandbox is not built yet")
}
