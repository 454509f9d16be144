//! The range of every number a user can set, in the config or on the
//! command line, and the parsers that hold to it.
//!
//! Beyond these a setting is a mistake (a timeout of years keeps a hung
//! request forever), and far beyond them the arithmetic on instants,
//! semaphores and intervals panics; so each is refused with its key or flag
//! and its range instead.

use std::time::Duration;

use serde::Deserialize;

/// The range a duration setting accepts, and the range in words for messages.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
    pub words: &'static str,
}

const fn bounds(min_ms: u64, max_s: u64, words: &'static str) -> Bounds {
    Bounds {
        min: Duration::from_millis(min_ms),
        max: Duration::from_secs(max_s),
        words,
    }
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

pub const REQUEST_TIMEOUT: Bounds = bounds(1, HOUR, "from 1ms to 1h");
pub const BACKOFF: Bounds = bounds(0, HOUR, "from 0s to 1h");
pub const BACKOFF_CAP: Bounds = bounds(0, DAY, "from 0s to 24h");
pub const RETRY_AFTER_CAP: Bounds = bounds(0, DAY, "from 0s to 24h");
pub const GRACE_PERIOD: Bounds = bounds(0, HOUR, "from 0s to 1h");
/// `--log-interval`.
pub const LOG_INTERVAL: Bounds = bounds(1, DAY, "from 1ms to 24h");
/// `--recheck-after`: compared with the age of ledger entries, in milliseconds.
pub const RECHECK_AFTER: Bounds = bounds(0, 36_500 * DAY, "from 0s to 36500d");

/// Requests in flight (`[run]`, per vendor, `--concurrency`).
pub const CONCURRENCY: std::ops::RangeInclusive<u64> = 1..=10_000;
/// Attempts per row (`[run]` and per vendor).
pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u64> = 1..=100;

/// `--shard K/N`: the most shards a file can be split into (as many as a
/// Kubernetes Indexed Job can have pods).
pub const MAX_SHARDS: u32 = 100_000;

/// A duration written as text (`"30s"`, `"250ms"`), checked against its bounds.
pub fn parse_duration(text: &str, b: &Bounds) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "`{text}` is not a duration ({e}); use one {}, written e.g. \"30s\", \"250ms\", \"2m\"",
            b.words
        )
    })?;
    if d < b.min || d > b.max {
        return Err(format!(
            "`{text}` is out of range; use a duration {}",
            b.words
        ));
    }
    Ok(d)
}

/// A whole number from the command line, checked against its range.
pub fn parse_whole(text: &str, range: &std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "`{text}` is not a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

/// `--concurrency`.
pub fn parse_concurrency(text: &str) -> Result<usize, String> {
    parse_whole(text, &CONCURRENCY).map(|n| n as usize)
}

/// An integer as TOML holds it, of any size TOML can write, so that a
/// number out of range is reported with its key and range rather than as a
/// type error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Whole(i128);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Whole;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Whole, E> {
                Ok(Whole(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Whole, E> {
                Ok(Whole(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Whole, E> {
                Ok(Whole(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole-number setting: its value within `range`, or `default`.
pub(crate) fn whole(
    where_: &str,
    value: Option<Whole>,
    range: &std::ops::RangeInclusive<u64>,
    default: u64,
) -> Result<u64, String> {
    match value {
        None => Ok(default),
        Some(Whole(n)) => u64::try_from(n)
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                format!(
                    "{where_}: {n} is out of range; use a whole number from {} to {}",
                    range.start(),
                    range.end()
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_to_their_ranges() {
        assert_eq!(
            parse_duration("30s", &REQUEST_TIMEOUT),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("0s", &REQUEST_TIMEOUT).unwrap_err(),
            "`0s` is out of range; use a duration from 1ms to 1h"
        );
        assert!(parse_duration("584942417355y", &LOG_INTERVAL).is_err());
        assert_eq!(parse_concurrency("10000"), Ok(10_000));
        for bad in ["0", "10001", "-1", "18446744073709551616", "1.5", ""] {
            assert!(parse_concurrency(bad).is_err(), "{bad}");
        }
        assert_eq!(whole("k", None, &MAX_ATTEMPTS, 6).unwrap(), 6);
        assert_eq!(
            whole("k", Some(Whole(-1)), &MAX_ATTEMPTS, 6).unwrap_err(),
            "k: -1 is out of range; use a whole number from 1 to 100"
        );
    }
}
