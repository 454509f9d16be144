//! The simulated vendors (DESIGN §7): the four vendor APIs on 127.0.0.1, with
//! statistics that prove what arrived and fault knobs that make them misbehave.
//!
//! [`Sandbox`] runs it in-process for tests; [`serve`] (or the blocking
//! [`run`]) is the `invitesync sandbox` command. Both serve:
//!
//! - the vendor routes of DESIGN §1 at their real paths;
//! - `GET /_sandbox/stats[?invites=false]` ([`StatsSnapshot`]),
//!   `POST /_sandbox/reset-stats`, `GET`/`POST /_sandbox/faults`
//!   ([`FaultSettings`]) and `GET /_sandbox/health`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod admin;
mod conn;
mod ctrl_hub;
mod digest;
mod faults;
mod mighty;
mod ops_manager;
mod options;
mod securegate;
mod stats;
mod store;
pub mod tls;
mod wire;

#[cfg(test)]
mod samples_test;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use faults::{FaultSettings, Faults};
pub use options::{Credentials, SandboxOptions};
pub use stats::{Applied, AppliedValue, InviteStats, StatsSnapshot, VendorStats};
pub use store::SeedError;

use conn::{ConnHandle, ResetListener};
use faults::{FaultBoard, Gate};
use stats::Stats;
use store::{Mode, Table};

/// Request bodies larger than this are answered 413 without being read.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long [`Sandbox::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A vendor kind, as written in configs, seeds and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    MightyNetworks,
    Securegate,
    OpsManager,
    CtrlHub,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::MightyNetworks,
        Kind::Securegate,
        Kind::OpsManager,
        Kind::CtrlHub,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MightyNetworks => "mighty_networks",
            Kind::Securegate => "securegate",
            Kind::OpsManager => "ops_manager",
            Kind::CtrlHub => "ctrl_hub",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text.trim())
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{0}")]
    Options(String),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: io::Error },
    #[error("cannot read seed {path}: {source}")]
    SeedFile { path: String, source: io::Error },
    #[error("seed {path}: {error}")]
    Seed { path: String, error: SeedError },
    #[error("cannot start the runtime: {0}")]
    Runtime(io::Error),
}

/// Everything a request handler reaches.
pub(crate) struct Shared {
    pub(crate) creds: Credentials,
    pub(crate) faults: FaultBoard,
    pub(crate) stats: Stats,
    pub(crate) mighty: Table<mighty::Invite>,
    pub(crate) securegate: Table<securegate::Invite>,
    pub(crate) ops_manager: Table<ops_manager::Invite>,
    pub(crate) ctrl_hub: Table<ctrl_hub::Invite>,
    pub(crate) digest: digest::Digest,
    pub(crate) shutdown: CancellationToken,
}

impl Shared {
    fn new(options: &SandboxOptions, seeded: bool) -> Result<Shared, SandboxError> {
        options.check().map_err(SandboxError::Options)?;
        let faults = FaultBoard::new(options.fault_settings().map_err(SandboxError::Options)?)
            .map_err(SandboxError::Options)?;
        let mode = if seeded {
            Mode::Seeded
        } else if options.stateless {
            Mode::Stateless
        } else {
            Mode::OnDemand
        };
        let rec = !options.no_invite_stats;
        Ok(Shared {
            creds: options.credentials(),
            faults,
            stats: Stats::new(),
            mighty: Table::new(Kind::MightyNetworks, mode, rec),
            securegate: Table::new(Kind::Securegate, mode, rec),
            ops_manager: Table::new(Kind::OpsManager, mode, rec),
            ctrl_hub: Table::new(Kind::CtrlHub, mode, rec),
            digest: digest::Digest::new(
                &options.om_public_key,
                &options.om_private_key,
                options.nonce_max_uses,
                options.nonce_max_age(),
            ),
            shutdown: CancellationToken::new(),
        })
    }

    fn seed(&self, path: &str, input: impl io::Read) -> Result<u64, SandboxError> {
        let now = wire::now_secs();
        store::read_seed(input, |kind, row| match kind {
            Kind::MightyNetworks => mighty::seed(row, now).map(|(k, v)| self.mighty.insert(k, v)),
            Kind::Securegate => {
                securegate::seed(row, now).map(|(k, v)| self.securegate.insert(k, v))
            }
            Kind::OpsManager => {
                ops_manager::seed(row, now).map(|(k, v)| self.ops_manager.insert(k, v))
            }
            Kind::CtrlHub => ctrl_hub::seed(row, now).map(|(k, v)| self.ctrl_hub.insert(k, v)),
        })
        .map_err(|error| SandboxError::Seed {
            path: path.to_string(),
            error,
        })
    }

    /// The path every vendor request takes: counted, run through the fault
    /// knobs, then answered by `handle` (which gets the `reject_auth` knob).
    pub(crate) async fn vendor(
        &self,
        kind: Kind,
        conn: &ConnHandle,
        handle: impl FnOnce(bool) -> Response,
    ) -> Response {
        self.stats.received(kind);
        let _in_flight = self.faults.enter(kind);
        match self.faults.gate(kind, &self.shutdown).await {
            Gate::Pass { reject_auth } => {
                let response = handle(reject_auth);
                self.stats.answered(kind, response.status().as_u16());
                response
            }
            Gate::Respond(response) => {
                self.stats.answered(kind, response.status().as_u16());
                response
            }
            Gate::Reset => {
                self.stats.reset_connection(kind);
                conn.reset();
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }

    pub(crate) fn snapshot(&self, invites: bool) -> StatsSnapshot {
        let mut snap = StatsSnapshot {
            vendors: self.stats.vendors(),
            ..StatsSnapshot::default()
        };
        for (kind, v) in snap.vendors.iter_mut() {
            v.in_flight = self.faults.in_flight(*kind);
        }
        if invites {
            self.mighty.snapshot_into(&mut snap.invites);
            self.securegate.snapshot_into(&mut snap.invites);
            self.ops_manager.snapshot_into(&mut snap.invites);
            self.ctrl_hub.snapshot_into(&mut snap.invites);
        }
        // Read last, so every sequence number listed is at most this.
        snap.last_seq = self.stats.last_seq();
        snap
    }

    pub(crate) fn reset_stats(&self) {
        self.stats.reset();
        self.mighty.reset_stats();
        self.securegate.reset_stats();
        self.ops_manager.reset_stats();
        self.ctrl_hub.reset_stats();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/admin/v1/networks/{network_id}/invites/{id}/",
            patch(mighty::update).put(mighty::update),
        )
        .route(
            "/events/{event_id}/invites/{invite_id}",
            put(securegate::update),
        )
        .route(
            "/api/public/v1.0/orgs/{org_id}/invites",
            patch(ops_manager::update),
        )
        .route("/v3/user-invitations/{id}", patch(ctrl_hub::update))
        .route("/_sandbox/stats", get(admin::stats))
        .route("/_sandbox/reset-stats", post(admin::reset_stats))
        .route(
            "/_sandbox/faults",
            get(admin::get_faults).post(admin::set_faults),
        )
        .route("/_sandbox/health", get(admin::health))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

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
                shared.seed(&shown, io::BufReader::new(file))?;
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
        shared.seed("(text)", seed_csv.as_bytes())?;
        Self::listen(options.port, shared, None).await
    }

    async fn listen(
        port: u16,
        shared: Shared,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|source| SandboxError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { port, source })?;
        let shared = Arc::new(shared);
        let app = router(Arc::clone(&shared)).into_make_service_with_connect_info::<ConnHandle>();
        let stop = shared.shutdown.clone();
        let https = tls.is_some();
        let server = tokio::spawn(async move {
            // Accept errors are retried inside the listener, so serving only
            // ends at shutdown.
            match tls {
                None => {
                    let _ = axum::serve(ResetListener(listener), app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await;
                }
                Some(config) => {
                    if let Ok(listener) = tls::TlsListener::new(listener, config) {
                        let _ = axum::serve(listener, app)
                            .with_graceful_shutdown(stop.cancelled_owned())
                            .await;
                    }
                }
            }
        });
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
        &self.shared.creds
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
        self.shared.faults.get()
    }

    /// Replaces every fault knob; an invalid setting changes nothing.
    pub fn set_faults(&self, settings: FaultSettings) -> Result<(), String> {
        self.shared.faults.set(settings)
    }

    /// Stops accepting, ends hung and sleeping requests, and waits (up to a
    /// few seconds) for connections to close.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
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
        self.shared.shutdown.cancel();
    }
}

/// `invitesync sandbox`: serves until Ctrl-C or SIGTERM, after printing where
/// and with which credentials.
pub async fn serve(options: SandboxOptions) -> Result<(), SandboxError> {
    serve_tls(options, tls::TlsOptions::default()).await
}

/// [`serve`], over HTTPS when `tls` says so.
pub async fn serve_tls(options: SandboxOptions, tls: tls::TlsOptions) -> Result<(), SandboxError> {
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
    let c = sandbox.credentials();
    let invites = match (&options.seed, options.stateless) {
        (Some(path), _) => format!("invites from {}", path.display()),
        (None, true) => "every well-formed invite exists; nothing is kept (stateless)".into(),
        (None, false) => "every well-formed invite exists (created on first use)".into(),
    };
    format!(
        "invitesync sandbox listening on {url}\n\
         \x20 {invites}\n\
         \x20 mighty_networks  Authorization: Bearer {mighty}\n\
         \x20 securegate       x-api-key: {gate}\n\
         \x20 ops_manager      digest user {om_pub}, password {om_priv}\n\
         \x20 ctrl_hub         X-Session-Token: {hub}\n\
         \x20 stats: GET {url}/_sandbox/stats   faults: POST {url}/_sandbox/faults\n\
         \x20 Ctrl-C to stop",
        url = sandbox.base_url(),
        mighty = c.mighty_token,
        gate = c.securegate_api_key,
        om_pub = c.om_public_key,
        om_priv = c.om_private_key,
        hub = c.ctrl_hub_token,
    )
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
