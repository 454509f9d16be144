//! Round-trip times per vendor, for the summary's percentiles.
//!
//! Recording sits on the hot path of every request, so it is one relaxed
//! atomic increment into a fixed array of buckets: no lock, no allocation, no
//! sample kept. The buckets are log-linear (each power of two of microseconds
//! split in four), so any percentile read back is within an eighth of the
//! true value, from microseconds to hours, in 140 counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two (as a shift: 2 bits, 4 sub-buckets).
const SUB_BITS: u32 = 2;
const SUB: u64 = 1 << SUB_BITS;
/// The largest power of two kept apart: 2^35 µs is about 9.5 hours; slower
/// round trips (none, given the request timeout) land in the last bucket.
const MAX_EXP: u32 = 35;
/// Bucket count: exact values below [`SUB`], then [`SUB`] per power of two.
pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as usize) * SUB as usize;

/// The upper bounds, in seconds, of the round-trip histogram that monitoring
/// reads ([`Histogram::export`]): Prometheus' defaults, up to the longest
/// request timeout worth having.
pub const EXPORT_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// [`EXPORT_BOUNDS`] in microseconds, for comparing without floats.
const EXPORT_BOUNDS_US: [u64; 14] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
];

/// One vendor's histogram of round-trip times.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    /// Counts per [`EXPORT_BOUNDS`] bucket (not cumulative), the last one past
    /// the largest bound: the log-linear buckets' edges fall between round
    /// numbers of seconds, so these are counted apart to be exact.
    export: [AtomicU64; EXPORT_BOUNDS.len() + 1],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            export: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }
}

/// A histogram for monitoring: counts at or under each of [`EXPORT_BOUNDS`]
/// (cumulative, as Prometheus' `le` buckets are), the count and the sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exported {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.snapshot().count)
            .finish()
    }
}

/// The bucket of a time in microseconds.
fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = (63 - us.leading_zeros()).min(MAX_EXP);
    let us = us.min((1u64 << (MAX_EXP + 1)) - 1);
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The middle of a bucket, in microseconds: what a percentile reports.
fn midpoint(index: usize) -> f64 {
    let i = index as u64;
    if i < SUB {
        return i as f64;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let width = 1u64 << (exp - SUB_BITS);
    let low = (SUB + i % SUB) * width;
    low as f64 + width as f64 / 2.0
}

impl Histogram {
    /// Counts one round trip.
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        let export = EXPORT_BOUNDS_US.partition_point(|bound| *bound < us);
        self.export[export].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The histogram as monitoring reads it. Read while requests record, the
    /// count is the sum of the buckets read, so the two always agree.
    pub fn export(&self) -> Exported {
        let mut cumulative = Vec::with_capacity(EXPORT_BOUNDS.len());
        let mut seen = 0u64;
        for b in &self.export {
            seen += b.load(Ordering::Relaxed);
            cumulative.push(seen);
        }
        cumulative.truncate(EXPORT_BOUNDS.len());
        Exported {
            cumulative,
            count: seen,
            sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    /// The percentiles as of now (requests still recording may or may not be in).
    pub fn snapshot(&self) -> Latency {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let at = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_secs_f64(midpoint(i) / 1e6);
                }
            }
            Duration::ZERO
        };
        Latency {
            count,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
        }
    }
}

/// A histogram read back: how many round trips and their percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
}

/// A duration for people: `850µs`, `12ms`, `1.4s`, `2m05s`.
pub fn human(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else if us < 1_000_000 {
        format!("{}ms", (us as f64 / 1e3).round())
    } else if us < 60_000_000 {
        format!("{:.1}s", us as f64 / 1e6)
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_cover_every_value() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            last = b;
        }
        for us in [1 << 34, (1 << 36) - 1, 1 << 40, u64::MAX] {
            assert!(bucket(us) < BUCKETS, "{us}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn midpoints_are_within_an_eighth() {
        for us in [5u64, 17, 999, 12_345, 1_000_000, 30_000_000, 1 << 35] {
            let m = midpoint(bucket(us));
            let err = (m - us as f64).abs() / us as f64;
            assert!(err <= 0.125, "{us}: {m} ({err})");
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let l = h.snapshot();
        assert_eq!(l.count, 100);
        let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1e3 - ms).abs() / ms <= 0.125;
        assert!(near(l.p50, 50.0), "{:?}", l.p50);
        assert!(near(l.p90, 90.0), "{:?}", l.p90);
        assert!(near(l.p99, 99.0), "{:?}", l.p99);
        assert_eq!(Histogram::default().snapshot(), Latency::default());
    }

    #[test]
    fn the_export_counts_each_round_trip_under_its_bound() {
        assert_eq!(EXPORT_BOUNDS_US.len(), EXPORT_BOUNDS.len());
        for (us, s) in EXPORT_BOUNDS_US.iter().zip(EXPORT_BOUNDS) {
            assert_eq!(*us as f64 / 1e6, s);
        }
        let h = Histogram::default();
        // At a bound counts under it (`le`); just past it, under the next.
        h.record(Duration::from_millis(5));
        h.record(Duration::from_micros(5_001));
        h.record(Duration::from_millis(300));
        h.record(Duration::from_secs(3600));
        let e = h.export();
        assert_eq!(e.count, 4);
        assert_eq!(e.cumulative[0], 1);
        assert_eq!(e.cumulative[1], 2);
        assert_eq!(e.cumulative[5], 2);
        assert_eq!(e.cumulative[6], 3);
        assert_eq!(*e.cumulative.last().unwrap(), 3);
        assert!(
            (e.sum_seconds - 3600.310001).abs() < 1e-6,
            "{}",
            e.sum_seconds
        );
        assert_eq!(Histogram::default().export().count, 0);
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human(Duration::from_micros(850)), "850µs");
        assert_eq!(human(Duration::from_micros(2_500)), "2.5ms");
        assert_eq!(human(Duration::from_millis(120)), "120ms");
        assert_eq!(human(Duration::from_millis(1_400)), "1.4s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
    }
}
