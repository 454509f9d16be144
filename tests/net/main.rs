//! Real networks, all on 127.0.0.1 with certificates made by the test: a run
//! through a CONNECT proxy ([`proxy`]), trust and its failures ([`trust`]),
//! client certificates ([`mtls`]), HTTP/2 ([`http2`]), a vendor that cannot be reached and
//! configuration mistakes ([`failures`]), and `invitesync check` ([`check`]).

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod check;
mod failures;
mod http2;
mod mtls;
mod proxy;
mod trust;
