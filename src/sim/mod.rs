//! What every simulated vendor is built from, whichever vendor it is: the
//! door each request goes through ([`gate`]: counters and fault knobs),
//! invites in memory ([`store`]), the seed file ([`seed`]), the per-vendor
//! and per-invite statistics ([`stats`]), connections a fault can reset
//! ([`conn`]) and small wire helpers ([`wire`]).
//!
//! Nothing here knows a vendor: a kind is a number given at start. The
//! vendors' simulations (`vendors/<name>/sandbox.rs`) are built on these
//! parts, and the sandbox (`sandbox/`) puts them together.

pub mod conn;
pub mod faults;
pub mod gate;
pub mod seed;
pub mod server;
pub mod simulation;
pub mod stats;
pub mod store;
pub mod wire;

#[cfg(test)]
pub mod testkit;
