//! The validated, vendor-neutral change: what one input row asks of a vendor.
//!
//! Everything the pipeline needs to send, order, checkpoint and compare a
//! change lives here, so the dispatcher never looks at vendor details: the
//! invite key (to keep two changes to one invite apart), the request body
//! already built (so a retry rebuilds nothing), and a fingerprint (so the
//! ledger can tell a change it has already applied).

use bytes::Bytes;
use http::Method;

/// Which configured vendor account a row goes to: its index in
/// [`crate::config::Config::vendors`] (sorted by name).
pub type VendorId = u16;

/// Why a row cannot be sent, naming the input column (or vendor field) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// What a vendor adapter makes of a valid row: the request without its
/// credentials, and the invite it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Identifies the invite within the vendor account, e.g. `"acme/1234"`.
    pub key: String,
    pub method: Method,
    /// Path and query, starting with `/`, appended to the vendor's base URL.
    pub path: String,
    pub body: Bytes,
}

/// The identity of one invite across the whole configuration, e.g.
/// `"mighty/acme/1234"`. Two rows with equal keys are never in flight together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InviteKey {
    pub text: String,
    /// A stable 64-bit hash of `text`: the ledger's lookup key and the basis of
    /// `--shard`. Stable across releases and machines (BLAKE3), unlike std's hasher.
    pub hash: u64,
}

impl InviteKey {
    pub fn new(vendor_name: &str, key: &str) -> Self {
        let text = format!("{vendor_name}/{key}");
        let h = blake3::hash(text.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.as_bytes()[..8]);
        InviteKey {
            hash: u64::from_le_bytes(first),
            text,
        }
    }

    /// `--shard K/N`: whether this invite belongs to shard `k` (0-based) of `n`.
    pub fn in_shard(&self, k: u32, n: u32) -> bool {
        n <= 1 || self.hash % u64::from(n) == u64::from(k)
    }
}

/// A map keyed by [`InviteKey::hash`]. The key is already a uniform hash,
/// so hashing it again with std's keyed SipHash (for every row, twice per
/// map) buys nothing. It is not used as it is, though: the keys of one
/// `--shard` share their remainder (`hash % n`), which sits in the low bits
/// a hash table indexes by; the halves are swapped so the index comes from
/// the high bits.
pub type KeyMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The hasher of [`KeyMap`]: see there.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach here through `write_u64`; anything else is
        // folded in so the hasher stays correct if that ever changes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key.rotate_left(32);
    }
}

/// `--shard (k, n)`: whether this process owns a row. A row that plans to a
/// change goes by its invite (so every change to one invite lands in one
/// shard, in order); an invalid row, which has no invite, by its number.
/// The one rule for the reader, which sends, and the results, which report.
pub fn owns_row((k, n): (u32, u32), key: Option<&InviteKey>, row_index: u64) -> bool {
    match key {
        Some(key) => key.in_shard(k, n),
        None => n <= 1 || row_index % u64::from(n) == u64::from(k),
    }
}

/// The identity of a change's content (method, path, body), so that the ledger
/// can say "this exact change was applied already".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    pub fn of(method: &Method, path: &str, body: &[u8]) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(method.as_str().as_bytes());
        h.update(b" ");
        h.update(path.as_bytes());
        h.update(b"\n");
        h.update(body);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Fingerprint(out)
    }
}

/// A row ready to send.
#[derive(Debug, Clone)]
pub struct Change {
    pub vendor: VendorId,
    pub key: InviteKey,
    pub method: Method,
    pub path: String,
    pub body: Bytes,
    pub fingerprint: Fingerprint,
}

impl Change {
    pub fn new(vendor: VendorId, vendor_name: &str, planned: Planned) -> Self {
        let fingerprint = Fingerprint::of(&planned.method, &planned.path, &planned.body);
        Change {
            vendor,
            key: InviteKey::new(vendor_name, &planned.key),
            method: planned.method,
            path: planned.path,
            body: planned.body,
            fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One shard's keys share their low bits; the map must not index by them.
    #[test]
    fn a_shards_keys_spread_over_the_key_maps_index_bits() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let build = BuildHasherDefault::<KeyHasher>::default();
        let shard: Vec<u64> = (0..20_000)
            .map(|i| InviteKey::new("gate", &format!("ev/{i}")).hash)
            .filter(|h| h % 16 == 3)
            .collect();
        assert!(shard.len() > 500);
        let low_nibbles: std::collections::HashSet<u64> =
            shard.iter().map(|h| build.hash_one(*h) & 0xf).collect();
        assert_eq!(
            low_nibbles.len(),
            16,
            "index bits taken from the shard's remainder"
        );
        let mut map = KeyMap::default();
        for (i, h) in shard.iter().enumerate() {
            map.insert(*h, i);
        }
        assert!(
            shard
                .iter()
                .enumerate()
                .all(|(i, h)| map.get(h) == Some(&i))
        );
    }

    #[test]
    fn keys_are_stable_and_shards_cover_once() {
        let a = InviteKey::new("gate", "ev1/inv1");
        assert_eq!(a, InviteKey::new("gate", "ev1/inv1"));
        assert_ne!(a.hash, InviteKey::new("gate", "ev1/inv2").hash);
        for i in 0..200 {
            let k = InviteKey::new("v", &i.to_string());
            let owners = (0..5).filter(|s| k.in_shard(*s, 5)).count();
            assert_eq!(owners, 1);
        }
    }

    #[test]
    fn fingerprint_covers_method_path_and_body() {
        let f = Fingerprint::of(&Method::PATCH, "/a", b"{}");
        assert_eq!(f, Fingerprint::of(&Method::PATCH, "/a", b"{}"));
        assert_ne!(f, Fingerprint::of(&Method::PUT, "/a", b"{}"));
        assert_ne!(f, Fingerprint::of(&Method::PATCH, "/b", b"{}"));
        assert_ne!(f, Fingerprint::of(&Method::PATCH, "/a", b"{ }"));
    }
}
