//! Small pieces every simulated vendor shares: JSON responses, media types,
//! timestamps, invite keys.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Request bodies larger than this are answered 413 without being read.
pub const MAX_BODY: usize = 1024 * 1024;

pub(crate) const JSON: &str = "application/json";
pub(crate) const JSON_API: &str = "application/vnd.api+json";

/// A response with a JSON body already serialised.
pub(crate) fn body(status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Serialises `value` as the body. A value that cannot be serialised is a bug
/// of the sandbox, answered with a bare 500 rather than a panic.
pub(crate) fn json<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    value: &T,
    pretty: bool,
) -> Response {
    let bytes = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    };
    match bytes {
        Ok(b) => body(status, content_type, b),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The media type of the request body, without parameters, if there is one.
/// Returns the parameters too, for JSON:API's rule about them.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<(&str, &str)> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (essence, params) = v.split_once(';').unwrap_or((v, ""));
    Some((essence.trim(), params.trim()))
}

/// Whether the body is declared as JSON (`application/json`, any charset).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|(essence, _)| essence.eq_ignore_ascii_case(JSON))
}

/// The value of a header, if present and printable.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 in UTC, `2026-06-26T21:14:11` followed by `zone` (`Z` or
/// `+00:00`, as each vendor writes it). Written by hand because the crate has
/// no date library and this is the only date arithmetic the sandbox needs.
pub(crate) fn timestamp(secs: u64, zone: &str) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{zone}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A loose email check, deliberately independent of the client's validator so
/// that the sandbox can catch a client that lets a bad address through.
pub(crate) fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// One component of an invite key. `/` and `%` are percent-encoded so that
/// `a/b` + `c` and `a` + `b/c` stay two different invites.
pub(crate) fn key_part(s: &str) -> Cow<'_, str> {
    if s.contains(['/', '%']) {
        Cow::Owned(s.replace('%', "%25").replace('/', "%2F"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Deterministic hex digits derived from `seed` (FNV-1a, then a mixer), for
/// the ids a vendor would have assigned itself (Ops Manager invitation ids,
/// Ctrl-Hub's related resources): stable across restarts, so a test can
/// compare two runs.
pub(crate) fn pseudo_hex(seed: &str, len: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(len);
    while out.len() < len {
        // splitmix64 step, so consecutive words differ.
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.push_str(&format!("{z:016x}"));
    }
    out.truncate(len);
    out
}

/// A UUID-shaped id derived from `seed`.
pub(crate) fn pseudo_uuid(seed: &str) -> String {
    let h = pseudo_hex(seed, 32);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(timestamp(0, "Z"), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_613_682_340, "Z"), "2021-02-18T21:05:40Z");
        assert_eq!(
            timestamp(951_782_400, "+00:00"),
            "2000-02-29T00:00:00+00:00"
        );
        assert_eq!(timestamp(4_102_444_799, "Z"), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn keys_and_ids() {
        assert_eq!(key_part("ev1"), "ev1");
        assert_eq!(key_part("a/b%c"), "a%2Fb%25c");
        assert_eq!(pseudo_hex("x", 24).len(), 24);
        assert_eq!(pseudo_hex("x", 24), pseudo_hex("x", 24));
        assert_ne!(pseudo_hex("x", 24), pseudo_hex("y", 24));
        assert_eq!(pseudo_uuid("x").len(), 36);
        assert!(is_email("a@b.co"));
        for bad in ["", "a", "a@b", "@b.co", "a b@c.de", "a@b.c."] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
