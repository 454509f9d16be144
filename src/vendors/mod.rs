//! The vendors: for each kind, one folder holding its adapter (a pure
//! translator between a row and the vendor's API: [`Adapter`]) and its
//! simulation in the sandbox, with their tests; and the list of kinds below,
//! which everything that knows the vendors is driven by: the `kind` of a
//! config table ([`build`]), the sandbox's routes, statistics, fault knobs,
//! credential flags and banner.
//!
//! Adding a vendor is a folder `vendors/<name>/` whose `mod.rs` defines a
//! [`Vendor`] named `VENDOR`, and one line in the list (README, "Adding a
//! vendor").
//!
//! The helpers every adapter may use: [`http`] (URLs, escaped ids, the
//! request), [`fields`] (cells' checks), [`answer`] (reading what came back).

pub mod adapter;
pub mod answer;
pub mod build;
pub mod fields;
pub mod http;
pub mod kind;
pub mod vendor;

#[cfg(test)]
mod testing;

pub use adapter::{Adapter, Reply};
pub use vendor::{Credential, Vendor};

/// Declares each vendor's folder as a module and the [`Kind`] enum with one
/// variant per folder, in the order given.
macro_rules! kinds {
    ($($variant:ident => $folder:ident),+ $(,)?) => {
        $(pub mod $folder;)+

        /// A vendor kind: one entry of the list of kinds.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($variant),+
        }

        impl Kind {
            /// Every kind, in the list's order (the order of `--help`, of the
            /// sandbox's banner and of its statistics).
            pub const ALL: [Kind; [$(Kind::$variant),+].len()] = [$(Kind::$variant),+];

            /// Every kind's name, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($folder::VENDOR.name),+];

            /// Everything the program knows of this kind.
            pub fn vendor(self) -> &'static Vendor {
                match self {
                    $(Kind::$variant => &$folder::VENDOR),+
                }
            }

            /// The kind's position in the list, for tables indexed by kind.
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

// The list of kinds: `Variant => folder`. A new vendor is one line here.
kinds! {
    MightyNetworks => mighty,
    Securegate => securegate,
    OpsManager => ops_manager,
    CtrlHub => ctrl_hub,
}
