//! Helpers for in-process tests: an HTTP client, and one simulated vendor
//! served alone on an ephemeral 127.0.0.1 port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use tokio::task::JoinHandle;

use super::faults::{Effective, Faults};
use super::gate::{Front, Gate};
use super::seed::read_seed;
use super::server::listen;
use super::simulation::{Context, Simulation};
use super::stats::{InviteStats, VendorStats};
use super::store::Mode;
use super::wire::{MAX_BODY, now_secs};

pub(crate) fn client() -> reqwest::Client {
    // reqwest wants a TLS provider even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// reqwest's `json` needs a feature the crate does not enable.
pub(crate) trait BodyJson {
    async fn body_json<T: serde::de::DeserializeOwned>(self) -> Result<T, String>;
}

impl BodyJson for reqwest::Response {
    async fn body_json<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        let bytes = self.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }
}

/// What to start one vendor with.
pub(crate) struct Setup {
    pub(crate) name: &'static str,
    pub(crate) simulate: fn(&Context) -> Arc<dyn Simulation>,
    /// `(sandbox flag, value)` of each credential expected.
    pub(crate) credentials: Vec<(&'static str, String)>,
    /// Seed CSV: only its invites exist. Without one, every invite does.
    pub(crate) seed: Option<&'static str>,
    pub(crate) nonce_max_uses: u64,
}

/// One simulated vendor on 127.0.0.1, and a client for it.
pub(crate) struct Kit {
    pub(crate) client: reqwest::Client,
    addr: SocketAddr,
    front: Arc<Front>,
    sim: Arc<dyn Simulation>,
    server: JoinHandle<()>,
}

impl Kit {
    pub(crate) async fn start(setup: Setup) -> Kit {
        let front = Front::new(1);
        let context = Context {
            name: setup.name,
            gate: Gate::new(0, Arc::clone(&front)),
            mode: if setup.seed.is_some() {
                Mode::Seeded
            } else {
                Mode::OnDemand
            },
            recording: true,
            credentials: setup.credentials,
            nonce_max_uses: setup.nonce_max_uses,
            nonce_max_age: Duration::from_secs(300),
        };
        let sim = (setup.simulate)(&context);
        if let Some(seed) = setup.seed {
            read_seed(seed.as_bytes(), |row| {
                assert_eq!(row.kind, setup.name, "a seed for another kind");
                sim.seed(row, now_secs())
            })
            .unwrap();
        }
        let app = Arc::clone(&sim)
            .routes()
            .layer(DefaultBodyLimit::max(MAX_BODY));
        let (addr, server) = listen(0, app, front.shutdown.clone(), None).await.unwrap();
        Kit {
            client: client(),
            addr,
            front,
            sim,
            server,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The vendor's counters.
    pub(crate) fn vendor(&self) -> VendorStats {
        VendorStats {
            in_flight: self.front.faults.in_flight(0),
            ..self.front.stats.vendor(0)
        }
    }

    /// The record of one invite, keyed as the sandbox's statistics key it.
    pub(crate) fn invite(&self, key: &str) -> Option<InviteStats> {
        let mut all = BTreeMap::new();
        self.sim.snapshot_into(&mut all);
        all.remove(key)
    }

    /// Sets the vendor's fault knobs.
    pub(crate) fn set_faults(&self, faults: &Faults) {
        faults.check("test").unwrap();
        self.front
            .faults
            .set(vec![Effective::resolve(&Faults::default(), Some(faults))]);
    }

    pub(crate) async fn stop(self) {
        self.front.shutdown.cancel();
        let _ = self.server.await;
    }
}
