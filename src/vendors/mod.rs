//! The vendor adapters: pure translators between a row and a vendor's API.
//!
//! An adapter never touches the network. It validates a row against the
//! vendor's documented rules and builds the request body ([`Adapter::plan`]),
//! adds the URL and credentials ([`Adapter::request`]), and reads what the
//! vendor answered ([`Adapter::read`]). The I/O, retries and ordering are the
//! dispatcher's. Adding a vendor is one file here, one entry in [`KINDS`] and
//! one arm in [`build`].

use bytes::Bytes;
use reqwest::Url;

use crate::change::{Change, Invalid, Planned};
use crate::config::{ConfigError, VendorConfig, VendorSettings};
use crate::input::Fields;
use crate::secret::Secret;

pub mod ctrl_hub;
pub mod mighty;
pub mod ops_manager;
pub mod securegate;

/// The `kind` values a `[vendors.NAME]` table may have.
pub const KINDS: &[&str] = &["mighty_networks", "securegate", "ops_manager", "ctrl_hub"];

/// What a vendor's answer says beyond its status code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The invite's id as the vendor reports it.
    pub remote_id: Option<String>,
    /// The invite's last-modified time as the vendor reports it.
    pub remote_updated_at: Option<String>,
    /// The vendor's own explanation of a refusal, in one line.
    pub error: Option<String>,
}

/// One vendor kind's rules and wire format.
pub trait Adapter: Send + Sync + 'static {
    /// Checks a row against the vendor's documented constraints and builds the
    /// request body. A broken rule is an [`Invalid`] naming the column.
    fn plan(&self, row: &Fields<'_>) -> Result<Planned, Invalid>;

    /// The complete request for a planned change: absolute URL, headers
    /// (content type, accept, credentials) and body. Digest credentials are
    /// the exception: the client adds them, since they depend on the server's
    /// nonce (see [`Adapter::digest_credentials`]).
    fn request(&self, change: &Change) -> http::Request<Bytes>;

    /// `(username, password)` when the vendor uses HTTP Digest.
    fn digest_credentials(&self) -> Option<(&Secret, &Secret)> {
        None
    }

    /// Reads a response of any status. Liberal: a 2xx whose optional fields
    /// cannot be read is still a success, with fewer details.
    fn read(&self, status: u16, body: &[u8]) -> Reply;

    /// The config keys holding this vendor's credentials, for "check
    /// vendors.NAME.KEY" after a 401.
    fn credential_keys(&self) -> &'static str;

    /// The kind-specific settings that change what is sent (Mighty's
    /// `method`), so a resume can tell the config changed under it.
    fn settings_fingerprint(&self) -> String {
        String::new()
    }
}

/// Builds the adapter of a configured vendor account.
pub fn build(
    config: &VendorConfig,
    settings: VendorSettings,
) -> Result<Box<dyn Adapter>, ConfigError> {
    let adapter: Box<dyn Adapter> = match config.kind.as_str() {
        "mighty_networks" => Box::new(mighty::MightyNetworks::new(config, settings)?),
        "securegate" => Box::new(securegate::Securegate::new(config, settings)?),
        "ops_manager" => Box::new(ops_manager::OpsManager::new(config, settings)?),
        "ctrl_hub" => Box::new(ctrl_hub::CtrlHub::new(config, settings)?),
        other => {
            return Err(ConfigError(format!(
                "{}.kind: unknown kind `{other}`",
                settings.table()
            )));
        }
    };
    Ok(adapter)
}

/// The base URL with a vendor path appended (the base keeps any path prefix).
pub fn url(base: &Url, path: &str) -> String {
    let base = base.as_str().trim_end_matches('/');
    let mut s = String::with_capacity(base.len() + path.len());
    s.push_str(base);
    s.push_str(path);
    s
}

/// A vendor's error body cut down to one line of reasonable length, for the
/// results file.
pub fn one_line(text: &str) -> String {
    const MAX: usize = 500;
    let mut s: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The error text when a vendor's body has nothing better: the body itself
/// (if it is text) or just the status.
pub fn fallback_error(status: u16, body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(t) if !t.trim().is_empty() => format!("HTTP {status}: {}", one_line(t)),
        _ => format!("HTTP {status}"),
    }
}

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

/// A value quoted in a reason for the results file: shortened, and with control
/// characters shown escaped, so that a hostile cell cannot bloat or break the
/// line that reports it.
pub fn shown(value: &str) -> String {
    const MAX: usize = 40;
    let mut s = String::with_capacity(value.len().min(MAX) + 4);
    s.push('`');
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            s.push('…');
            break;
        }
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
    }
    s.push('`');
    s
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

/// An id from a vendor's answer, whether it came as a string or a number.
pub fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The text of an error body in the shapes APIs commonly use, for vendors that
/// do not document theirs: `error`, `message`, `errors` (a string, a list, or
/// a Rails-style map of field to messages) and `detail`.
pub fn common_error_text(body: &[u8]) -> Option<String> {
    let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let mut parts: Vec<String> = Vec::new();
    for key in ["error", "message", "errors", "detail"] {
        if let Some(text) = map.get(key).and_then(|v| json_text(v, 0))
            && !parts.contains(&text)
        {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(one_line(&parts.join(": ")))
    }
}

/// The human text inside an error value, however it is nested.
fn json_text(value: &serde_json::Value, depth: u8) -> Option<String> {
    use serde_json::Value;
    if depth > 4 {
        return None;
    }
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(_) | Value::Null => return None,
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|v| json_text(v, depth + 1))
                .collect();
            parts.join("; ")
        }
        Value::Object(map) => {
            // An error object names its text; a map of anything else is
            // field -> messages.
            let named = ["message", "detail", "title", "msg", "error", "description"]
                .iter()
                .find_map(|k| map.get(*k).and_then(|v| json_text(v, depth + 1)));
            match named {
                Some(t) => t,
                None => {
                    let parts: Vec<String> = map
                        .iter()
                        .filter_map(|(k, v)| json_text(v, depth + 1).map(|t| format!("{k}: {t}")))
                        .collect();
                    parts.join("; ")
                }
            }
        }
    };
    if text.is_empty() { None } else { Some(text) }
}

/// A vendor account for adapter tests.
#[cfg(test)]
pub(crate) fn test_config(kind: &str, base: &str) -> VendorConfig {
    VendorConfig {
        name: "test".into(),
        kind: kind.into(),
        base_url: Url::parse(base).expect("test base URL"),
        concurrency: None,
        rate_limit: None,
        retry: crate::config::RetryPolicy {
            max_attempts: 1,
            backoff_base: std::time::Duration::ZERO,
            backoff_cap: std::time::Duration::ZERO,
            retry_after_cap: std::time::Duration::ZERO,
        },
    }
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
    fn errors_fit_on_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert!(one_line(&"é".repeat(400)).ends_with('…'));
        assert_eq!(fallback_error(500, b""), "HTTP 500");
        assert_eq!(fallback_error(404, b"not\nfound"), "HTTP 404: not found");
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
        assert_eq!(shown("a\nb\u{0}"), "`a\\nb\\u{0}`");
    }

    #[test]
    fn common_error_shapes() {
        let t = |b: &[u8]| common_error_text(b);
        assert_eq!(
            t(br#"{"error":{"code":7,"message":"nope"}}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(
            t(br#"{"errors":{"base":["x"],"id":"y"}}"#).as_deref(),
            Some("base: x; id: y")
        );
        assert_eq!(
            t(br#"{"detail":[{"msg":"a"},{"msg":"b"}]}"#).as_deref(),
            Some("a; b")
        );
        assert_eq!(
            t(br#"{"error":"same","message":"same"}"#).as_deref(),
            Some("same")
        );
        assert_eq!(t(br#"{"errors":[]}"#), None);
        assert_eq!(t(br#"["error"]"#), None);
        assert_eq!(t(b"plain"), None);
        let deep = format!("{}\"x\"{}", r#"{"error":"#.repeat(100), "}".repeat(100));
        assert_eq!(t(deep.as_bytes()), None);
    }
}

/// An id as one URL path segment: required, percent-encoded so that no value
/// can add a segment, a query or a fragment, and never `.` or `..` (which a
/// URL parser would resolve into a different path).
pub fn path_segment(field: &str, value: &str) -> Result<String, Invalid> {
    if value.is_empty() {
        return Err(Invalid::new(field, "required"));
    }
    if value == "." || value == ".." {
        return Err(Invalid::new(field, format!("`{value}` is not an id")));
    }
    if value.len() > MAX_ID {
        // No vendor's id is this long, and a URL past a few kilobytes is refused
        // by servers and by our own HTTP stack alike.
        return Err(Invalid::new(
            field,
            format!("{} bytes long; an id is at most {MAX_ID}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "contains a control character"));
    }
    Ok(percent_encoding::utf8_percent_encode(value, SEGMENT).to_string())
}

/// The longest id accepted in a URL path.
pub const MAX_ID: usize = 512;

/// Everything but RFC 3986's unreserved characters is encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Builds a request with a body; `headers` are added after `Content-Type`
/// and `Accept`.
pub fn request_with_body(
    method: &http::Method,
    url: String,
    content_type: &'static str,
    headers: &[(&'static str, &str)],
    body: Bytes,
) -> http::Request<Bytes> {
    let mut req = http::Request::new(body);
    *req.method_mut() = method.clone();
    // The URL was built from a checked base and percent-encoded segments, so it
    // always parses; an impossible failure leaves the URI at `/`, which the
    // client then refuses as relative rather than sending elsewhere.
    if let Ok(uri) = url.parse() {
        *req.uri_mut() = uri;
    }
    let h = req.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    h.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static(content_type),
    );
    let mut unsendable = false;
    for (name, value) in headers {
        match http::HeaderValue::from_str(value) {
            Ok(mut v) => {
                v.set_sensitive(true);
                h.insert(*name, v);
            }
            Err(_) => unsendable = true,
        }
    }
    if unsendable {
        // Never send without the credential: a relative URI is refused by
        // the client. (The config refuses such secrets before this.)
        *req.uri_mut() = http::Uri::default();
    }
    req
}

#[cfg(test)]
mod segment_tests {
    use super::*;

    #[test]
    fn hostile_ids_stay_one_segment() {
        assert_eq!(
            path_segment("id", "a b/c?d#e").unwrap(),
            "a%20b%2Fc%3Fd%23e"
        );
        assert_eq!(path_segment("id", "inv-1_2.3~").unwrap(), "inv-1_2.3~");
        assert!(path_segment("id", "..").is_err());
        assert!(path_segment("id", "").is_err());
        assert!(path_segment("id", "a\u{0}b").is_err());
    }
}
