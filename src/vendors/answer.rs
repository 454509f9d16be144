//! Reading what a vendor answered: ids that come as strings or numbers, and
//! error text in the shapes APIs commonly use.

use crate::text::one_line;

/// The error text when a vendor's body has nothing better: the body itself
/// (if it is text) or just the status.
pub fn fallback_error(status: u16, body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(t) if t.trim_start().starts_with('<') => match page_text(t) {
            Some(text) => format!("HTTP {status}: {}", one_line(&text)),
            None => format!("HTTP {status}"),
        },
        Ok(t) if !t.trim().is_empty() => format!("HTTP {status}: {}", one_line(t)),
        _ => format!("HTTP {status}"),
    }
}

/// What a person reads on an HTML page (a web server's, a proxy's or a load
/// balancer's error page, where an API's JSON was expected): its text
/// without tags, scripts or styles, the title first unless the text starts
/// with it. `None` when nothing is left.
fn page_text(html: &str) -> Option<String> {
    // An error page says what matters early; a hostile body is read no
    // further than this.
    let mut cut = html.len().min(64 * 1024);
    while !html.is_char_boundary(cut) {
        cut -= 1;
    }
    let html = &html[..cut];
    // Lower case keeps every byte where it is: tags are found in `lower`,
    // text is taken from `html` at the same offsets.
    let lower = html.to_ascii_lowercase();
    let mut title = String::new();
    let mut text = String::new();
    let mut at = 0;
    // The element whose text is being read: its text goes to the title,
    // nowhere (script, style) or the text.
    let mut inside = "";
    loop {
        // A script's or style's text may hold `<` of its own: it ends only
        // at its closing tag.
        let open = match inside {
            "script" => lower[at..].find("</script"),
            "style" => lower[at..].find("</style"),
            _ => lower[at..].find('<'),
        };
        let Some(open) = open.map(|o| at + o) else {
            if inside.is_empty() {
                text.push_str(&html[at..]);
            }
            break;
        };
        let words = &html[at..open];
        match inside {
            "title" => title.push_str(words),
            "script" | "style" => {}
            _ => text.push_str(words),
        }
        text.push(' ');
        let Some(close) = lower[open..].find('>').map(|c| open + c) else {
            break;
        };
        let tag = lower[open + 1..close].trim();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let special = match name.as_str() {
            "title" => "title",
            "script" => "script",
            "style" => "style",
            _ => "",
        };
        inside = match (tag.starts_with('/'), special) {
            (_, "") => inside,
            (false, element) => element,
            (true, _) => "",
        };
        at = close + 1;
    }
    let title = one_line(&entities(&title));
    let text = one_line(&entities(&text));
    let both = match (title.is_empty(), text.is_empty()) {
        (true, true) => return None,
        (false, false) if !text.starts_with(&title) => format!("{title}: {text}"),
        (false, true) => title,
        _ => text,
    };
    Some(both)
}

/// The few character references error pages use.
fn entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// What a successful (2xx) answer is, when it is not an answer of a JSON
/// API: every vendor documents a JSON body (or none) for a success, so an
/// HTML page, plain text or binary data came from something else at that
/// address, such as a web site at a `base_url` that is not the API's, or a
/// proxy answering for the vendor (a block or sign-in page). Such an answer
/// confirms nothing, and the row is not recorded as updated on its word
/// (docs/ARCHITECTURE.md, §4: circuit). `None` for an empty body or a JSON
/// one: an object or an array costs a look at the first byte (after any
/// byte order mark and white space), anything else a parse.
pub fn not_an_api_answer(body: &[u8]) -> Option<NotJson> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let body = &body[start..];
    // A JSON scalar (`null`, `"ok"`, `true`) is an API's too: parsed only
    // in the rare case it is not an object or an array.
    if matches!(body[0], b'{' | b'[')
        || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
    {
        return None;
    }
    let short = |text: &str| crate::text::one_line_within(text, 80);
    let head = &body[..body.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    if body[0] == b'<' {
        let lower = text.to_ascii_lowercase();
        let title = lower.find("<title").and_then(|at| {
            let open = at + lower[at..].find('>')? + 1;
            let close = open + lower[open..].find("</title")?;
            Some(short(&text[open..close]))
        });
        return Some(NotJson::Page(title.filter(|t| !t.is_empty())));
    }
    Some(match std::str::from_utf8(head) {
        Ok(t) => NotJson::Text(short(t)),
        Err(_) => NotJson::Binary(body.len()),
    })
}

/// A body where a JSON API's was expected: see [`not_an_api_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotJson {
    /// An HTML page, with its title if it has one.
    Page(Option<String>),
    /// Text, its start on one line.
    Text(String),
    /// Bytes that are not text, this many.
    Binary(usize),
}

impl std::fmt::Display for NotJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotJson::Page(Some(title)) => write!(f, "an HTML page titled \"{title}\""),
            NotJson::Page(None) => f.write_str("an HTML page"),
            NotJson::Text(text) => write!(f, "text, not JSON: \"{text}\""),
            NotJson::Binary(n) => write!(f, "{n} bytes of binary data, not JSON"),
        }
    }
}

/// Where a redirect (301, 302, 303, 307, 308) points, from its `Location`:
/// on one line, at most 300 characters. Redirects are never followed, so a
/// change is sent only where the config says; this says where the vendor
/// would have had it go.
pub fn redirect_target(status: u16, location: Option<&http::HeaderValue>) -> Option<String> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = location?;
    Some(crate::text::one_line_within(
        &String::from_utf8_lossy(location.as_bytes()),
        300,
    ))
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
    fn a_success_that_is_not_json_says_what_it_is() {
        let t = |b: &[u8]| not_an_api_answer(b).map(|n| n.to_string());
        for json in [
            &b""[..],
            b"  \r\n",
            b"{}",
            b"\xef\xbb\xbf {\"id\":1}",
            b"\n[1]",
            b"null",
            b" \"ok\"\n",
            b"true",
            b"204",
        ] {
            assert_eq!(t(json), None, "{:?}", String::from_utf8_lossy(json));
        }
        assert_eq!(
            t(b"<!DOCTYPE html>\n<html><head><TITLE>\n  Access   denied\n</TITLE></head>")
                .as_deref(),
            Some("an HTML page titled \"Access denied\"")
        );
        assert_eq!(
            t(b"<html><body>hi</body></html>").as_deref(),
            Some("an HTML page")
        );
        assert_eq!(t(b"<title></title>").as_deref(), Some("an HTML page"));
        assert_eq!(t(b"OK\n").as_deref(), Some("text, not JSON: \"OK\""));
        let long = "word ".repeat(100);
        let said = t(long.as_bytes()).unwrap();
        assert!(said.ends_with("…\""), "{said}");
        assert!(said.chars().count() < 120, "{said}");
        assert_eq!(
            t(b"\x00\x01{{[\xff").as_deref(),
            Some("6 bytes of binary data, not JSON")
        );
        // A title that never closes is no title; a multi-byte title is cut
        // at a character.
        assert_eq!(t(b"<title>never closed").as_deref(), Some("an HTML page"));
        let title = format!("<title>{}</title>", "é".repeat(200));
        assert!(t(title.as_bytes()).unwrap().ends_with("é…\""));
    }

    #[test]
    fn fallback_errors_fit_on_one_line() {
        assert_eq!(fallback_error(500, b""), "HTTP 500");
        assert_eq!(fallback_error(404, b"not\nfound"), "HTTP 404: not found");
    }

    #[test]
    fn an_error_page_is_read_as_a_person_reads_it() {
        // Python's http.server, asked to PUT.
        let page = b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
            <title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n\
            <p>Error code: 501</p>\n<p>Message: Unsupported method (&#x27;PUT&#x27;).</p>\n</body>\n</html>\n";
        assert_eq!(
            fallback_error(501, page),
            "HTTP 501: Error response Error code: 501 Message: Unsupported method ('PUT')."
        );
        // nginx's, and a page whose scripts and styles are no text.
        assert_eq!(
            fallback_error(
                404,
                b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
                  <center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>"
            ),
            "HTTP 404: 404 Not Found nginx"
        );
        assert_eq!(
            fallback_error(
                403,
                b"<html><head><title>Access denied</title><style>p{color:red}</style>\
                  <script>var a = 1 < 2;</script></head><body><p>Blocked by policy &amp; rules</p></body></html>"
            ),
            "HTTP 403: Access denied: Blocked by policy & rules"
        );
        assert_eq!(
            fallback_error(502, b"<html><body></body></html>"),
            "HTTP 502"
        );
        assert_eq!(fallback_error(500, b"<p>cut off <b"), "HTTP 500: cut off");
        // A page of a million unclosed scripts is read once, as far as the
        // first 64 KiB.
        let scripts = "<script>".repeat(1 << 17);
        assert_eq!(fallback_error(500, scripts.as_bytes()), "HTTP 500");
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
