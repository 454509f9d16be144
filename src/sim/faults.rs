//! Fault knobs: what a misbehaving vendor does to its clients.
//!
//! Every knob applies to each vendor kind separately: a global value is each
//! vendor's default, a per-vendor value overrides it (so `rate_limit = 200`
//! globally means 200 requests a second to *each* vendor). A request meets the
//! knobs in this order: the rate limit (answered at once, as an edge proxy
//! would), then latency (stretched past the capacity knee), then one draw
//! deciding between a reset, a hang, a 5xx, or going through.
//!
//! Requests to a vendor with no knob set skip all of this after one atomic
//! load. Everything sleeps at most `hang_ms` and wakes at shutdown, so tests
//! end by themselves.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::wire;

/// The knobs of one scope (global or a vendor). `None` means "not set here":
/// a vendor falls back to the global value, the global value to off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// A uniform random extra of 0..=jitter_ms milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    /// Share (0..=1) of requests answered 500, 502, 503 or 504.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// The one status those answers get (500, 502, 503 or 504) instead of
    /// a random one of them: 502 or 503 to everything is an outage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// Share of requests whose connection is reset without an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_rate: Option<f64>,
    /// Share of requests that hang for `hang_ms` (then go through).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hang_rate: Option<f64>,
    /// How long a hang lasts; default one hour (shutdown ends it sooner).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<u64>,
    /// Requests per second admitted (token bucket); past it, 429 with
    /// `Retry-After`. 0 is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// The token bucket's size; default one second's worth of `rate_limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<f64>,
    /// Capacity knee: past this many requests in flight to the vendor,
    /// latency grows as `latency * in_flight / knee`. 0 is off. Needs
    /// `latency_ms` > 0 to have an effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knee: Option<u32>,
    /// Refuse every credential with 401 (a revoked key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_auth: Option<bool>,
    /// The `Retry-After` seconds sent with some 503s; default 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u32>,
}

/// What an injected server error answers with.
const ERROR_STATUSES: [StatusCode; 4] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

const DEFAULT_HANG: Duration = Duration::from_secs(3600);

impl Faults {
    /// Sets one knob from text, for `--fault KEY=VALUE`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<Option<T>, String> {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("fault `{key}`: `{v}` is not a number"))
        }
        match key {
            "latency_ms" => self.latency_ms = num(key, value)?,
            "jitter_ms" => self.jitter_ms = num(key, value)?,
            "error_rate" => self.error_rate = num(key, value)?,
            "error_status" => self.error_status = num(key, value)?,
            "reset_rate" => self.reset_rate = num(key, value)?,
            "hang_rate" => self.hang_rate = num(key, value)?,
            "hang_ms" => self.hang_ms = num(key, value)?,
            "rate_limit" => self.rate_limit = num(key, value)?,
            "burst" => self.burst = num(key, value)?,
            "knee" => self.knee = num(key, value)?,
            "retry_after_s" => self.retry_after_s = num(key, value)?,
            "reject_auth" => {
                self.reject_auth = Some(match value.trim() {
                    "" | "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => {
                        return Err(format!(
                            "fault `reject_auth`: `{other}` is not true or false"
                        ));
                    }
                })
            }
            other => {
                return Err(format!(
                    "unknown fault `{other}`; one of latency_ms, jitter_ms, error_rate, error_status, reset_rate, hang_rate, hang_ms, rate_limit, burst, knee, reject_auth, retry_after_s"
                ));
            }
        }
        Ok(())
    }

    /// Checks the knobs set here; `scope` (`global` or a kind) names them in
    /// the message.
    pub(crate) fn check(&self, scope: &str) -> Result<(), String> {
        let shares = [
            ("error_rate", self.error_rate),
            ("reset_rate", self.reset_rate),
            ("hang_rate", self.hang_rate),
        ];
        for (name, v) in shares {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                return Err(format!(
                    "{scope}.{name}: {v} is not a share between 0 and 1"
                ));
            }
        }
        if let Some(status) = self.error_status
            && !ERROR_STATUSES.iter().any(|s| s.as_u16() == status)
        {
            return Err(format!(
                "{scope}.error_status: {status} is not one of 500, 502, 503 or 504"
            ));
        }
        for (name, v) in [("rate_limit", self.rate_limit), ("burst", self.burst)] {
            if let Some(v) = v
                && (!v.is_finite() || v < 0.0)
            {
                return Err(format!("{scope}.{name}: {v} must be a finite number >= 0"));
            }
        }
        Ok(())
    }
}

impl Effective {
    /// A vendor's knobs: its own where set, else the global ones, else off.
    pub(crate) fn resolve(global: &Faults, vendor: Option<&Faults>) -> Effective {
        let g = global;
        let v = vendor.cloned().unwrap_or_default();
        let rate = v.rate_limit.or(g.rate_limit).unwrap_or(0.0);
        let e = Effective {
            latency_ms: v.latency_ms.or(g.latency_ms).unwrap_or(0),
            jitter_ms: v.jitter_ms.or(g.jitter_ms).unwrap_or(0),
            error_rate: v.error_rate.or(g.error_rate).unwrap_or(0.0),
            error_status: v
                .error_status
                .or(g.error_status)
                .and_then(|s| StatusCode::from_u16(s).ok()),
            reset_rate: v.reset_rate.or(g.reset_rate).unwrap_or(0.0),
            hang_rate: v.hang_rate.or(g.hang_rate).unwrap_or(0.0),
            hang: v
                .hang_ms
                .or(g.hang_ms)
                .map_or(DEFAULT_HANG, Duration::from_millis),
            rate,
            burst: v.burst.or(g.burst).unwrap_or(rate).max(1.0),
            knee: v.knee.or(g.knee).unwrap_or(0),
            reject_auth: v.reject_auth.or(g.reject_auth).unwrap_or(false),
            retry_after_s: v.retry_after_s.or(g.retry_after_s).unwrap_or(1),
            active: false,
        };
        Effective {
            active: e.latency_ms > 0
                || e.jitter_ms > 0
                || e.error_rate > 0.0
                || e.reset_rate > 0.0
                || e.hang_rate > 0.0
                || e.rate > 0.0
                || e.reject_auth,
            ..e
        }
    }

    /// Shares of requests that fail one way or another; at most 1.
    pub(crate) fn failure_share(&self) -> f64 {
        self.error_rate + self.reset_rate + self.hang_rate
    }

    /// The latency before jitter, in milliseconds, with `in_flight` requests
    /// at the vendor: past the knee it grows in proportion.
    fn latency(&self, in_flight: usize) -> f64 {
        let ms = self.latency_ms as f64;
        if self.knee == 0 {
            return ms;
        }
        let (in_flight, knee) = (in_flight as f64, f64::from(self.knee));
        if in_flight > knee {
            ms * in_flight / knee
        } else {
            ms
        }
    }
}

/// One vendor's knobs, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Effective {
    pub(crate) active: bool,
    pub(crate) latency_ms: u64,
    pub(crate) jitter_ms: u64,
    pub(crate) error_rate: f64,
    pub(crate) error_status: Option<StatusCode>,
    pub(crate) reset_rate: f64,
    pub(crate) hang_rate: f64,
    pub(crate) hang: Duration,
    pub(crate) rate: f64,
    pub(crate) burst: f64,
    pub(crate) knee: u32,
    pub(crate) reject_auth: bool,
    pub(crate) retry_after_s: u32,
}

#[derive(Default)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// Takes a token, or says how many seconds until one is there.
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), f64> {
        self.tokens = match self.last {
            None => burst,
            Some(last) => (self.tokens + now.duration_since(last).as_secs_f64() * rate).min(burst),
        };
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / rate)
        }
    }
}

#[derive(Default)]
struct VendorFaults {
    active: AtomicBool,
    current: RwLock<Arc<Effective>>,
    bucket: Mutex<Bucket>,
    in_flight: AtomicUsize,
}

/// The knobs in force, per vendor kind (numbered from 0).
pub(crate) struct FaultBoard {
    vendors: Box<[VendorFaults]>,
}

/// What the fault stage decided.
pub(crate) enum Verdict {
    /// Serve the request; `reject_auth` says whether to refuse its credentials.
    Pass {
        reject_auth: bool,
    },
    Respond(Response),
    /// Drop the connection without an answer.
    Reset,
}

/// Counts a request in flight to a vendor while it lives.
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn injected(status: StatusCode, retry_after: Option<u32>) -> Response {
    let text = format!("{{\"error\":\"sandbox: injected {}\"}}", status.as_u16());
    let mut r = wire::body(status, wire::JSON, text.into_bytes());
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

impl FaultBoard {
    /// No knob set, for `kinds` vendor kinds.
    pub(crate) fn new(kinds: usize) -> Self {
        FaultBoard {
            vendors: (0..kinds).map(|_| VendorFaults::default()).collect(),
        }
    }

    /// Replaces all knobs, one [`Effective`] per kind in order (a missing one
    /// is off); rate-limit buckets start full again. The caller validates.
    pub(crate) fn set(&self, knobs: Vec<Effective>) {
        let mut knobs = knobs.into_iter();
        for v in self.vendors.iter() {
            let e = knobs.next().unwrap_or_default();
            *v.bucket.lock().unwrap_or_else(|e| e.into_inner()) = Bucket::default();
            v.active.store(e.active, Ordering::Release);
            *v.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(e);
        }
    }

    pub(crate) fn enter(&self, kind: usize) -> InFlight<'_> {
        let n = &self.vendors[kind].in_flight;
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }

    pub(crate) fn in_flight(&self, kind: usize) -> u64 {
        self.vendors[kind].in_flight.load(Ordering::Relaxed) as u64
    }

    /// Runs the request through the knobs. Returns early at `shutdown`.
    pub(crate) async fn check(&self, kind: usize, shutdown: &CancellationToken) -> Verdict {
        let v = &self.vendors[kind];
        if !v.active.load(Ordering::Acquire) {
            return Verdict::Pass { reject_auth: false };
        }
        let e = Arc::clone(&v.current.read().unwrap_or_else(|e| e.into_inner()));

        if e.rate > 0.0 {
            let taken = v.bucket.lock().unwrap_or_else(|e| e.into_inner()).take(
                e.rate,
                e.burst,
                Instant::now(),
            );
            if let Err(wait) = taken {
                let secs = wait.ceil().clamp(1.0, 3600.0) as u32;
                return Verdict::Respond(injected(StatusCode::TOO_MANY_REQUESTS, Some(secs)));
            }
        }

        let mut ms = e.latency(v.in_flight.load(Ordering::Relaxed));
        if e.jitter_ms > 0 {
            ms += fastrand::u64(0..=e.jitter_ms) as f64;
        }
        if ms >= 1.0 && !pause(Duration::from_secs_f64(ms / 1000.0), shutdown).await {
            return Verdict::Respond(injected(StatusCode::SERVICE_UNAVAILABLE, None));
        }

        let draw = fastrand::f64();
        if draw < e.reset_rate {
            return Verdict::Reset;
        }
        if draw < e.reset_rate + e.hang_rate {
            if !pause(e.hang, shutdown).await {
                return Verdict::Respond(injected(StatusCode::SERVICE_UNAVAILABLE, None));
            }
        } else if draw < e.reset_rate + e.hang_rate + e.error_rate {
            let status = e
                .error_status
                .unwrap_or_else(|| ERROR_STATUSES[fastrand::usize(..ERROR_STATUSES.len())]);
            let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE && fastrand::bool())
                .then_some(e.retry_after_s);
            return Verdict::Respond(injected(status, retry_after));
        }
        Verdict::Pass {
            reject_auth: e.reject_auth,
        }
    }
}

/// Sleeps, unless shutdown comes first; true if the sleep ran its course.
async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_knobs_override_global_ones() {
        let mut global = Faults::default();
        global.set("latency_ms", "5").unwrap();
        let mut gate = Faults::default();
        gate.set("latency_ms", "0").unwrap();
        let mut hub = Faults::default();
        hub.set("rate_limit", "200").unwrap();
        assert_eq!(Effective::resolve(&global, None).latency_ms, 5);
        let e = Effective::resolve(&global, Some(&gate));
        assert_eq!(e.latency_ms, 0);
        assert!(!e.active);
        assert_eq!(Effective::resolve(&global, Some(&hub)).burst, 200.0);
        assert!(global.set("nope", "1").is_err());
        assert!(global.set("latency_ms", "soon").is_err());
        global.set("error_rate", "1.5").unwrap();
        assert!(global.check("global").is_err());
        assert!(serde_json::from_str::<Faults>(r#"{"latncy_ms":1}"#).is_err());
    }

    #[test]
    fn latency_grows_past_the_knee() {
        let mut f = Faults::default();
        f.set("latency_ms", "100").unwrap();
        f.set("knee", "2").unwrap();
        let e = Effective::resolve(&f, None);
        assert_eq!(e.latency(1), 100.0);
        assert_eq!(e.latency(2), 100.0);
        assert_eq!(e.latency(4), 200.0);
        let flat = Effective::resolve(&Faults::default(), None);
        assert_eq!(flat.latency(50), 0.0);
    }

    #[test]
    fn bucket_refills_at_its_rate() {
        let mut b = Bucket::default();
        let t0 = Instant::now();
        assert!(b.take(10.0, 2.0, t0).is_ok());
        assert!(b.take(10.0, 2.0, t0).is_ok());
        let wait = b.take(10.0, 2.0, t0).unwrap_err();
        assert!((wait - 0.1).abs() < 1e-9, "{wait}");
        assert!(b.take(10.0, 2.0, t0 + Duration::from_millis(100)).is_ok());
    }
}
