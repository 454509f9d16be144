//! MongoDB Ops Manager: `PATCH /api/public/v1.0/orgs/{org_id}/invites`, HTTP
//! Digest, `{"roles": [...], "username": email}`. The sandbox's side of the
//! digest handshake is in `digest.rs`; the client's is the crate's `digest`
//! module, which the HTTP client drives for any adapter that asks for it.

mod adapter;
mod digest;
mod sandbox;

pub use adapter::OpsManager;

use crate::vendors::vendor::Vendor;

pub const VENDOR: Vendor = Vendor {
    name: "ops_manager",
    build: adapter::build,
    credentials: sandbox::CREDENTIALS,
    banner: "digest user {}, password {}",
    simulate: sandbox::start,
    example: &[
        ("scope", "5f1a2b3c4d5e6f7a8b9c0d1e"),
        ("email", "wyatt.smith@example.com"),
        ("roles", "ORG_OWNER;ORG_MEMBER"),
    ],
};
