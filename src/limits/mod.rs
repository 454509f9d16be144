//! Everything that decides when the next request to a vendor may leave:
//! a concurrency limit that adapts to the vendor, a pace that honours the
//! configured rate and learns an unknown one from 429s, and a circuit that
//! stops a vendor which refuses our credentials or cannot be reached.
//! Shared by all vendors, as Vector shares its retry and adaptive request
//! concurrency among sinks.

pub mod adaptive;
pub mod circuit;
mod controller;
pub mod pace;

pub use adaptive::{AdaptiveLimit, Signal, VendorPermit};
pub use circuit::{Circuit, Trip};
pub use pace::Pace;
