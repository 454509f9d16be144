//! A vendor kind by name: parsing, and the name in JSON (the sandbox's fault
//! settings and statistics are keyed by it).

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Kind;

impl Kind {
    /// The kind's name, as configs, seeds and statistics write it.
    pub fn as_str(self) -> &'static str {
        self.vendor().name
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text.trim())
    }

    /// Every kind's name, in the list's order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Kind::ALL.into_iter().map(Kind::as_str)
    }

    /// The names as a sentence's list: `a, b, c`.
    pub fn list() -> String {
        Kind::names().collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Kind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a vendor kind")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
                Kind::ALL
                    .into_iter()
                    .find(|k| k.as_str() == v)
                    .ok_or_else(|| E::unknown_variant(v, Kind::NAMES))
            }
        }
        d.deserialize_str(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
        }
        assert_eq!(Kind::NAMES.len(), Kind::ALL.len());
        assert_eq!(Kind::parse("nope"), None);
        let e = serde_json::from_str::<Kind>("\"nope\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown variant `nope`, expected one of"),
            "{e}"
        );
    }
}
