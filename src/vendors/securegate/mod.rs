//! Securegate.ai: `PUT /events/{event_id}/invites/{invite_id}`, an `x-api-key`
//! header, `{"status": ...}`.

mod adapter;
mod sandbox;

pub use adapter::Securegate;

use crate::vendors::vendor::Vendor;

pub const VENDOR: Vendor = Vendor {
    name: "securegate",
    build: adapter::build,
    credentials: sandbox::CREDENTIALS,
    banner: "x-api-key: {}",
    simulate: sandbox::start,
    example: &[
        ("scope", "event-456"),
        ("invite_id", "invite-123"),
        ("status", "accepted"),
    ],
};
