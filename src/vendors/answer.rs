//! Reading what a vendor answered: ids that come as strings or numbers, and
//! error text in the shapes APIs commonly use.

use crate::text::one_line;

/// The error text when a vendor's body has nothing better: the body itself
/// (if it is text) or just the status.
pub fn fallback_error(status: u16, body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(t) if !t.trim().is_empty() => format!("HTTP {status}: {}", one_line(t)),
        _ => format!("HTTP {status}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_errors_fit_on_one_line() {
        assert_eq!(fallback_error(500, b""), "HTTP 500");
        assert_eq!(fallback_error(404, b"not\nfound"), "HTTP 404: not found");
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
