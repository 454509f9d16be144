//! Mighty Networks: `PATCH` (or `PUT`) `/admin/v1/networks/{network_id}/invites/{id}/`,
//! a bearer token, the recipient's fields.

mod adapter;
mod sandbox;

pub use adapter::MightyNetworks;

use crate::vendors::vendor::Vendor;

pub const VENDOR: Vendor = Vendor {
    name: "mighty_networks",
    build: adapter::build,
    credentials: sandbox::CREDENTIALS,
    banner: "Authorization: Bearer {}",
    simulate: sandbox::start,
    example: &[
        ("scope", "acme"),
        ("invite_id", "1234"),
        ("email", "claude@example.com"),
        ("first_name", "Claude"),
    ],
};
