//! What to do with a response: keep it, retry it, or give up; and how long
//! to wait before the next attempt.
//!
//! The schedule is backon's exponential backoff, cut with full jitter
//! (a uniform draw between zero and the exponential delay) so that many rows
//! refused at the same moment do not come back at the same moment. A vendor's
//! `Retry-After` wins over the schedule, up to a ceiling.

use std::time::{Duration, SystemTime};

use backon::BackoffBuilder;

use crate::config::RetryPolicy;

/// How one attempt ended, from the dispatcher's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx: the change is applied.
    Success,
    /// Worth another attempt: connection trouble, timeouts, 408, 425, 429, 5xx of a passing kind.
    Transient,
    /// 401 or 403: the credentials are refused. Retrying will not help and
    /// hammering may lock the account; the vendor's circuit counts these.
    Credentials,
    /// Any other status: the vendor refused this change for good.
    Final,
}

/// Classifies an HTTP status code (docs/ARCHITECTURE.md, §4: retry).
pub fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Success,
        408 | 425 | 429 | 500 | 502 | 503 | 504 => Class::Transient,
        401 | 403 => Class::Credentials,
        _ => Class::Final,
    }
}

/// Whether a status says "unavailable": a gateway that cannot reach the
/// vendor (502, 504) or a vendor that cannot serve (503). All three are
/// retried; only an unbroken run of them stops the vendor (see
/// `limits::circuit`).
pub fn is_unavailable(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// Whether a status refuses every request for now, whatever it holds: a
/// vendor unavailable (502, 503, 504) or one that takes no more (429: a
/// quota used up, a rate limit). Both are retried; only an unbroken run of
/// them, to every request, for all of a row's attempts, stops the vendor
/// (see `limits::circuit`): a vendor that throttles yet serves some is
/// busy, one that serves none would otherwise see every row's every retry.
pub fn is_refused_for_now(status: u16) -> bool {
    is_unavailable(status) || status == 429
}

/// Reads `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past means "now"; an unreadable value is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The waits between one row's attempts.
pub struct Backoff {
    delays: backon::ExponentialBackoff,
    retry_after_cap: Duration,
}

impl Backoff {
    pub fn new(policy: &RetryPolicy) -> Self {
        let delays = backon::ExponentialBuilder::default()
            .with_min_delay(policy.backoff_base)
            .with_max_delay(policy.backoff_cap.max(policy.backoff_base))
            .with_factor(2.0)
            .without_max_times()
            .build();
        Backoff {
            delays,
            retry_after_cap: policy.retry_after_cap,
        }
    }

    /// The wait before the next attempt: the vendor's `Retry-After` if it sent
    /// one (capped), otherwise a full-jitter draw under the exponential delay.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.delays.next().unwrap_or(Duration::ZERO);
        match retry_after {
            Some(d) => d.min(self.retry_after_cap),
            None => ceiling.mul_f64(fastrand::f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_design() {
        for s in [200, 201, 204] {
            assert_eq!(classify(s), Class::Success);
        }
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s), Class::Transient, "{s}");
        }
        for s in [401, 403] {
            assert_eq!(classify(s), Class::Credentials);
        }
        for s in [400, 404, 409, 415, 422, 501, 505] {
            assert_eq!(classify(s), Class::Final, "{s}");
        }
    }

    #[test]
    fn unavailable_statuses() {
        let unavailable: Vec<u16> = (100..600).filter(|s| is_unavailable(*s)).collect();
        assert_eq!(unavailable, [502, 503, 504]);
    }

    #[test]
    fn retry_after_in_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_is_jittered_under_an_exponential_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            retry_after_cap: Duration::from_secs(5),
        };
        let mut b = Backoff::new(&policy);
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for c in ceilings {
            let d = b.next_delay(None);
            assert!(d <= Duration::from_millis(c), "{d:?} > {c}ms");
        }
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
    }
}
