//! invitesync: apply a CSV of invite changes to SaaS vendors, safely.
//!
//! Data flows one way: [`input`] reads rows, a [`vendors`] adapter turns each
//! into a [`change::Change`], the dispatcher sends them under per-invite order
//! and per-vendor limits, each ends as an [`outcome::Outcome`] that the state
//! file records, and the results file is written from there.

// First, so that its `println!` and friends replace the standard ones in
// every module below: no print can panic on a closed pipe.
#[macro_use]
pub mod stdio;

pub mod cells;
pub mod change;
pub mod cli;
pub mod client;
pub mod config;
pub mod digest;
pub mod dispatch;
pub mod exit;
pub mod fs_error;
pub mod input;
pub mod job;
pub mod latency;
pub mod limits;
pub mod logs;
pub mod metrics;
pub mod net;
pub mod outcome;
pub mod outputs;
pub mod plan;
pub mod progress;
pub mod ranges;
pub mod reader;
pub mod redact;
pub mod results;
pub mod retry;
pub mod sandbox;
pub mod secret;
pub mod send;
pub mod shell;
pub mod shutdown;
pub mod sim;
pub mod small_file;
pub mod state;
pub mod tally;
pub mod text;
pub mod vendors;
