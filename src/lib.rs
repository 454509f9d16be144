//! invitesync: apply a CSV of invite changes to SaaS vendors, safely.
//!
//! Data flows one way: [`input`] reads rows, a [`vendors`] adapter turns each
//! into a [`change::Change`], the dispatcher sends them under per-invite order
//! and per-vendor limits, each ends as an [`outcome::Outcome`] that the state
//! file records, and the results file is written from there.

pub mod change;
pub mod cli;
pub mod client;
pub mod config;
pub mod digest;
pub mod dispatch;
pub mod fs_error;
pub mod input;
pub mod job;
pub mod latency;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod net;
pub mod outcome;
pub mod plan;
pub mod progress;
pub mod reader;
pub mod results;
pub mod retry;
pub mod sandbox;
pub mod secret;
pub mod send;
pub mod shutdown;
pub mod state;
pub mod tally;
pub mod vendors;
