//! The simulated vendors: every vendor kind's API on 127.0.0.1, with
//! statistics that prove what arrived and fault knobs that make them
//! misbehave.
//!
//! [`Sandbox`] runs it in-process for tests; [`serve`] (or the blocking
//! [`run`]) is the `invitesync sandbox` command. Both serve:
//!
//! - each kind's routes at the vendor's real paths (its simulation lives in
//!   its folder, `vendors/<name>/sandbox.rs`, built from the parts in `sim/`);
//! - `GET /_sandbox/stats[?invites=false]` ([`StatsSnapshot`]),
//!   `POST /_sandbox/reset-stats`, `GET`/`POST /_sandbox/faults`
//!   ([`FaultSettings`]) and `GET /_sandbox/health`.
//!
//! Which kinds there are, what credentials each expects (the command's
//! flags) and in which order they are listed all come from the list of
//! kinds in `vendors/mod.rs`.

mod admin;
mod error;
mod knobs;
mod options;
mod server;
mod shared;
mod snapshot;
pub mod tls;

#[cfg(test)]
mod kinds_test;
#[cfg(test)]
mod samples_test;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use crate::sim::faults::Faults;
pub use crate::sim::seed::SeedError;
pub use crate::sim::stats::{Applied, AppliedValue, InviteStats, VendorStats};
pub use crate::sim::wire::MAX_BODY;
pub use crate::vendors::Kind;
pub use error::SandboxError;
pub use knobs::FaultSettings;
pub use options::{Credentials, SandboxOptions};
pub use server::{Sandbox, run, serve, serve_tls};
pub use snapshot::StatsSnapshot;
