//! One sandbox's state: a simulation per vendor kind in the list, the door
//! they share (counters and fault knobs), and the knobs as last set.

use std::io;
use std::sync::{Arc, Mutex};

use axum::Router;
use tokio_util::sync::CancellationToken;

use super::error::SandboxError;
use super::knobs::FaultSettings;
use super::options::{Credentials, SandboxOptions};
use super::snapshot::StatsSnapshot;
use crate::sim::gate::{Front, Gate};
use crate::sim::seed::{SeedError, read_seed};
use crate::sim::simulation::{Context, Simulation};
use crate::sim::store::Mode;
use crate::sim::wire;
use crate::vendors::Kind;

/// Everything a request handler of the sandbox reaches.
pub(crate) struct Shared {
    front: Arc<Front>,
    /// One per kind, at the kind's index.
    sims: Vec<Arc<dyn Simulation>>,
    faults: Mutex<FaultSettings>,
    creds: Credentials,
}

impl Shared {
    pub(crate) fn new(options: &SandboxOptions, seeded: bool) -> Result<Shared, SandboxError> {
        options.check().map_err(SandboxError::Options)?;
        let faults = options.fault_settings().map_err(SandboxError::Options)?;
        let mode = if seeded {
            Mode::Seeded
        } else if options.stateless {
            Mode::Stateless
        } else {
            Mode::OnDemand
        };
        let front = Front::new(Kind::ALL.len());
        let creds = options.credentials();
        let sims = Kind::ALL
            .into_iter()
            .map(|kind| {
                let vendor = kind.vendor();
                let context = Context {
                    name: vendor.name,
                    gate: Gate::new(kind.index(), Arc::clone(&front)),
                    mode,
                    recording: !options.no_invite_stats,
                    credentials: creds.of(kind),
                    nonce_max_uses: options.nonce_max_uses,
                    nonce_max_age: options.nonce_max_age(),
                };
                (vendor.simulate)(&context)
            })
            .collect();
        let shared = Shared {
            front,
            sims,
            faults: Mutex::new(FaultSettings::default()),
            creds,
        };
        shared.set_faults(faults).map_err(SandboxError::Options)?;
        Ok(shared)
    }

    /// Adds the invites of a seed CSV, each to its kind's simulation.
    pub(crate) fn seed(&self, input: impl io::Read) -> Result<u64, SeedError> {
        let now = wire::now_secs();
        read_seed(input, |row| {
            let kind = Kind::parse(&row.kind)
                .ok_or_else(|| format!("unknown kind `{}`; one of {}", row.kind, Kind::list()))?;
            self.sims[kind.index()].seed(row, now)
        })
    }

    /// Every kind's routes.
    pub(crate) fn vendor_routes(&self) -> Router {
        self.sims.iter().fold(Router::new(), |app, sim| {
            app.merge(Arc::clone(sim).routes())
        })
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.creds
    }

    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.front.shutdown
    }

    pub(crate) fn snapshot(&self, invites: bool) -> StatsSnapshot {
        let mut snap = StatsSnapshot::default();
        for kind in Kind::ALL {
            let mut v = self.front.stats.vendor(kind.index());
            v.in_flight = self.front.faults.in_flight(kind.index());
            snap.vendors.insert(kind, v);
        }
        if invites {
            for sim in &self.sims {
                sim.snapshot_into(&mut snap.invites);
            }
        }
        // Read last, so every sequence number listed is at most this.
        snap.last_seq = self.front.stats.last_seq();
        snap
    }

    pub(crate) fn reset_stats(&self) {
        self.front.stats.reset();
        for sim in &self.sims {
            sim.reset_stats();
        }
    }

    pub(crate) fn faults(&self) -> FaultSettings {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces every fault knob; an invalid setting changes nothing, and
    /// rate-limit buckets start full again.
    pub(crate) fn set_faults(&self, settings: FaultSettings) -> Result<(), String> {
        settings.validate()?;
        let mut current = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        self.front.faults.set(settings.effective_all());
        *current = settings;
        Ok(())
    }
}
