//! Starting, serving and stopping a sandbox, in-process ([`Sandbox`]) or as
//! the `invitesync sandbox` command ([`serve`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use tokio::task::JoinHandle;

use super::admin;
use super::error::SandboxError;
use super::knobs::FaultSettings;
use super::options::{Credentials, SandboxOptions};
use super::shared::Shared;
use super::snapshot::StatsSnapshot;
use crate::sim::server::listen;
use crate::sim::wire::MAX_BODY;
use crate::vendors::Kind;

/// How long [`Sandbox::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running sandbox. Dropping it stops the server too, without waiting.
pub struct Sandbox {
    addr: SocketAddr,
    /// Served over HTTPS.
    https: bool,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts on 127.0.0.1:`options.port`, seeded from `options.seed` if set.
    pub async fn start(options: &SandboxOptions) -> Result<Sandbox, SandboxError> {
        Self::start_tls(options, None).await
    }

    /// [`Sandbox::start`], serving HTTPS with `tls` when given.
    pub async fn start_tls(
        options: &SandboxOptions,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Sandbox, SandboxError> {
        let shared = Shared::new(options, options.seed.is_some())?;
        let shared = match options.seed.clone() {
            None => shared,
            // A seed of millions of rows takes a while: off the async threads.
            Some(path) => tokio::task::spawn_blocking(move || {
                let shown = path.display().to_string();
                let file = std::fs::File::open(&path).map_err(|source| SandboxError::SeedFile {
                    path: shown.clone(),
                    source,
                })?;
                shared
                    .seed(io::BufReader::new(file))
                    .map_err(|error| SandboxError::Seed { path: shown, error })?;
                Ok(shared)
            })
            .await
            .map_err(|e| SandboxError::Options(format!("loading the seed failed: {e}")))??,
        };
        Self::listen(options.port, shared, tls).await
    }

    /// Starts seeded from CSV text instead of a file (`options.seed` is ignored).
    pub async fn start_with_seed(
        options: &SandboxOptions,
        seed_csv: &str,
    ) -> Result<Sandbox, SandboxError> {
        let shared = Shared::new(options, true)?;
        shared
            .seed(seed_csv.as_bytes())
            .map_err(|error| SandboxError::Seed {
                path: "(text)".into(),
                error,
            })?;
        Self::listen(options.port, shared, None).await
    }

    async fn listen(
        port: u16,
        shared: Shared,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Sandbox, SandboxError> {
        let https = tls.is_some();
        let shared = Arc::new(shared);
        let app = admin::routes(Arc::clone(&shared))
            .merge(shared.vendor_routes())
            .layer(DefaultBodyLimit::max(MAX_BODY));
        let (addr, server) = listen(port, app, shared.shutdown().clone(), tls)
            .await
            .map_err(|source| SandboxError::Bind { port, source })?;
        Ok(Sandbox {
            addr,
            https,
            shared,
            server: Some(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving HTTPS), the
    /// `base_url` of every vendor.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn credentials(&self) -> &Credentials {
        self.shared.credentials()
    }

    /// Statistics including the per-invite record.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.snapshot(true)
    }

    /// Per-vendor statistics only (cheap however many invites there are).
    pub fn vendor_stats(&self) -> StatsSnapshot {
        self.shared.snapshot(false)
    }

    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    pub fn faults(&self) -> FaultSettings {
        self.shared.faults()
    }

    /// Replaces every fault knob; an invalid setting changes nothing.
    pub fn set_faults(&self, settings: FaultSettings) -> Result<(), String> {
        self.shared.set_faults(settings)
    }

    /// Stops accepting, ends hung and sleeping requests, and waits (up to a
    /// few seconds) for connections to close.
    pub async fn shutdown(mut self) {
        self.shared.shutdown().cancel();
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shared.shutdown().cancel();
    }
}

/// `invitesync sandbox`: serves until Ctrl-C or SIGTERM, after printing where
/// and with which credentials.
pub async fn serve(options: SandboxOptions) -> Result<(), SandboxError> {
    serve_tls(options, super::tls::TlsOptions::default()).await
}

/// [`serve`], over HTTPS when `tls` says so.
pub async fn serve_tls(
    options: SandboxOptions,
    tls: super::tls::TlsOptions,
) -> Result<(), SandboxError> {
    let tls = tls.server_config().map_err(SandboxError::Options)?;
    let note = tls.as_ref().map(|(_, note)| note.clone());
    let sandbox = Sandbox::start_tls(&options, tls.map(|(config, _)| config)).await?;
    println!("{}", banner(&sandbox, &options));
    if let Some(note) = note.filter(|n| !n.is_empty()) {
        println!("{note}");
    }
    wait_for_signal().await;
    eprintln!("sandbox: shutting down");
    sandbox.shutdown().await;
    Ok(())
}

/// [`serve`] on a runtime of its own, for a caller without one.
pub fn run(options: SandboxOptions) -> Result<(), SandboxError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SandboxError::Runtime)?
        .block_on(serve(options))
}

fn banner(sandbox: &Sandbox, options: &SandboxOptions) -> String {
    let creds = sandbox.credentials();
    let invites = match (&options.seed, options.stateless) {
        (Some(path), _) => format!("invites from {}", path.display()),
        (None, true) => "every well-formed invite exists; nothing is kept (stateless)".into(),
        (None, false) => "every well-formed invite exists (created on first use)".into(),
    };
    let url = sandbox.base_url();
    let mut text = format!("invitesync sandbox listening on {url}\n  {invites}\n");
    for kind in Kind::ALL {
        let values = creds.of(kind);
        let values: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
        let vendor = kind.vendor();
        text.push_str(&format!(
            "  {:<16} {}\n",
            vendor.name,
            vendor.banner_line(&values)
        ));
    }
    text.push_str(&format!(
        "  stats: GET {url}/_sandbox/stats   faults: POST {url}/_sandbox/faults\n  Ctrl-C to stop"
    ));
    text
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
