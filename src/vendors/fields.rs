//! Checks of a row's cells that more than one vendor needs.

use crate::change::Invalid;
use crate::text::shown;

/// A light check that a string is shaped like an email address: one `@`,
/// something before it, a dotted domain after it, no spaces or controls.
/// Vendors run their own stricter checks; this catches column mix-ups.
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && s.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && s.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && c != '"' && c != '<' && c != '>' && c != ','
        })
}

/// An unsigned 64-bit id written in plain decimal digits. `u64::from_str`
/// alone would take a leading `+`; the vendors' `uint64` does not.
pub fn unsigned_id(field: &str, value: &str) -> Result<u64, Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(field, "required: an unsigned integer"));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(
            field,
            format!("{} is not an unsigned integer", shown(value)),
        ));
    }
    value.parse().map_err(|_| {
        Invalid::new(
            field,
            format!("{} is larger than {}", shown(value), u64::MAX),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(looks_like_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.d", "a@b..c", "a@@b.c", "a@.b.c", "a@b.c.",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    #[test]
    fn unsigned_ids_are_plain_digits() {
        assert_eq!(unsigned_id("f", "0").unwrap(), 0);
        assert_eq!(unsigned_id("f", "18446744073709551615").unwrap(), u64::MAX);
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1_000",
            "0x10",
            "١",
            "18446744073709551616",
        ] {
            assert_eq!(unsigned_id("f", bad).unwrap_err().field, "f", "{bad:?}");
        }
        let e = unsigned_id("f", &"9".repeat(10_000)).unwrap_err();
        assert!(e.reason.len() < 100, "{}", e.reason);
    }
}
