//! A simulated vendor as the sandbox drives it: its routes, its invites and
//! their records. Each vendor's folder implements [`Simulation`]; the
//! sandbox starts one per kind with a [`Context`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use super::gate::Gate;
use super::seed::SeedRow;
use super::stats::InviteStats;
use super::store::{Invite, Invites, Mode, Table};

/// One vendor's API, served by the sandbox.
pub trait Simulation: Send + Sync + 'static {
    /// The vendor's routes, at its real paths, with their state.
    fn routes(self: Arc<Self>) -> Router;

    /// The vendor's invites.
    fn invites(&self) -> &dyn Invites;

    /// Adds the invite a seed row of this kind describes.
    fn seed(&self, row: &SeedRow, now: u64) -> Result<(), String> {
        self.invites().seed(row, now)
    }

    /// Adds the per-invite records to `out`, keyed `KIND/...`.
    fn snapshot_into(&self, out: &mut BTreeMap<String, InviteStats>) {
        self.invites().snapshot_into(out);
    }

    /// Forgets the per-invite records (the invites stay).
    fn reset_stats(&self) {
        self.invites().reset_stats();
    }
}

/// What a simulation is started with.
pub struct Context {
    /// The kind's name, as statistics and seeds write it.
    pub(crate) name: &'static str,
    pub(crate) gate: Gate,
    pub(crate) mode: Mode,
    /// Whether per-invite records are kept.
    pub(crate) recording: bool,
    /// The credentials expected, by the sandbox flag that sets each.
    pub(crate) credentials: Vec<(&'static str, String)>,
    /// HTTP Digest nonces go stale after this many uses (0: never) ...
    pub(crate) nonce_max_uses: u64,
    /// ... or this long after they were issued (zero: never).
    pub(crate) nonce_max_age: Duration,
}

impl Context {
    pub(crate) fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// A table for the kind's invites.
    pub(crate) fn table<V: Invite>(&self) -> Table<V> {
        Table::new(self.name, self.gate(), self.mode, self.recording)
    }

    /// The credential the sandbox flag `flag` sets (empty if there is none).
    pub(crate) fn credential(&self, flag: &str) -> String {
        self.credentials
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}
