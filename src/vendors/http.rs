//! Building a vendor's request: its URL from a base and escaped ids, its
//! headers and body.

use bytes::Bytes;
use url::Url;

use crate::change::Invalid;

/// The base URL with a vendor path appended (the base keeps any path prefix).
pub fn url(base: &Url, path: &str) -> String {
    let base = base.as_str().trim_end_matches('/');
    let mut s = String::with_capacity(base.len() + path.len());
    s.push_str(base);
    s.push_str(path);
    s
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
mod tests {
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
