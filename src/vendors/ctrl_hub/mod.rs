//! Ctrl-Hub: `PATCH /v3/user-invitations/{id}`, an `X-Session-Token` header,
//! a JSON:API document.

mod adapter;
mod sandbox;

pub use adapter::CtrlHub;

use crate::vendors::vendor::Vendor;

pub const VENDOR: Vendor = Vendor {
    name: "ctrl_hub",
    build: adapter::build,
    credentials: sandbox::CREDENTIALS,
    banner: "X-Session-Token: {}",
    simulate: sandbox::start,
    example: &[
        ("invite_id", "3c90c3cc-0d44-4b50-8888-8dd25736052a"),
        ("status", "accepted"),
    ],
};
