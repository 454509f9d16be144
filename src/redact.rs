//! Credentials kept out of what the program stores and shows.
//!
//! A vendor may quote back what it was sent: a 401 body that repeats the
//! token, a 422 that lists the headers, a proxy page that echoes the
//! `Authorization` line. Everything a vendor answers passes through a
//! [`Redactor`] before it reaches the state file, the results, the logs or
//! the screen, and every configured secret is cut out of it, whichever
//! vendor it belongs to, in the forms a server is likely to echo it in:
//! as sent, percent-encoded, form-encoded and JSON-escaped, in any ASCII case.
//!
//! [`url`] and [`urls_in`] do the same for the `user:password@` part of a
//! URL that a message quotes.

use std::borrow::Cow;

use crate::secret::Secret;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// A redacted text that was cut (by [`crate::vendors::one_line`]) ends with
/// this; a secret cut in two there must not leave its beginning behind.
const CUT: char = '…';

/// The shortest beginning of a secret, at the end of a cut text, that is
/// taken for that secret. Shorter ones say too little to matter and are too
/// often ordinary words.
const MIN_CUT_PREFIX: usize = 4;

/// Removes every configured secret from vendor text.
#[derive(Clone)]
pub struct Redactor {
    /// Each secret in every form it is looked for, longest first so that a
    /// longer form is cut whole before a shorter one inside it.
    patterns: Vec<Vec<u8>>,
    /// The bytes a pattern can begin with (both cases), so that most of a
    /// text is passed over with one look-up a byte.
    first: Box<[bool; 256]>,
}

/// The patterns are the secrets themselves: never printed.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} patterns)", self.patterns.len())
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new([])
    }
}

/// Percent-encoding as a URL path or query encoder does it: everything but
/// RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            for form in forms(secret.expose()) {
                if !form.is_empty() && !patterns.contains(&form) {
                    patterns.push(form);
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut first = Box::new([false; 256]);
        for p in &patterns {
            first[usize::from(p[0].to_ascii_lowercase())] = true;
            first[usize::from(p[0].to_ascii_uppercase())] = true;
        }
        Redactor { patterns, first }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` without any secret; borrowed when there was none.
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.patterns.is_empty() {
            return digest_responses(Cow::Borrowed(text));
        }
        let bytes = text.as_bytes();
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if !self.first[usize::from(bytes[i])] {
                i += 1;
                continue;
            }
            match self
                .patterns
                .iter()
                .find(|p| starts_with_ci(&bytes[i..], p))
            {
                Some(p) => {
                    let o = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
                    o.extend_from_slice(&bytes[copied..i]);
                    o.extend_from_slice(REDACTED.as_bytes());
                    i += p.len();
                    copied = i;
                }
                None => i += 1,
            }
        }
        let text = match out {
            None => Cow::Borrowed(text),
            Some(mut o) => {
                o.extend_from_slice(&bytes[copied..]);
                // Patterns begin and end on character boundaries (they are
                // whole strings, matched ASCII-case-insensitively), so the
                // result is still UTF-8; if it somehow were not, nothing of
                // it is shown.
                Cow::Owned(String::from_utf8(o).unwrap_or_else(|_| REDACTED.to_string()))
            }
        };
        self.cut_tail(digest_responses(text))
    }

    /// A text cut short right inside a secret ends with the secret's first
    /// characters and then `…`: those go too.
    fn cut_tail<'t>(&self, text: Cow<'t, str>) -> Cow<'t, str> {
        let Some(body) = text.strip_suffix(CUT) else {
            return text;
        };
        let b = body.as_bytes();
        let longest = self
            .patterns
            .iter()
            .filter_map(|p| {
                (MIN_CUT_PREFIX.min(p.len())..p.len().min(b.len()) + 1)
                    .rev()
                    .find(|&n| b[b.len() - n..].eq_ignore_ascii_case(&p[..n]))
            })
            .max();
        match longest {
            Some(n) if body.is_char_boundary(body.len() - n) => {
                Cow::Owned(format!("{}{REDACTED}{CUT}", &body[..body.len() - n]))
            }
            _ => text,
        }
    }
}

/// An echoed digest `Authorization` line carries `response="<hex>"`, a hash
/// that proves knowledge of the private key for that nonce: it goes too.
fn digest_responses(text: Cow<'_, str>) -> Cow<'_, str> {
    const KEY: &[u8] = b"response=";
    let bytes = text.as_bytes();
    let mut cuts = Vec::new();
    let mut i = 0;
    while i + KEY.len() <= bytes.len() {
        if !starts_with_ci(&bytes[i..], KEY) {
            i += 1;
            continue;
        }
        let mut start = i + KEY.len();
        if bytes.get(start) == Some(&b'"') {
            start += 1;
        }
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
        if end - start >= 32 {
            cuts.push((start, end));
        }
        i = end.max(i + 1);
    }
    if cuts.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in cuts {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn starts_with_ci(text: &[u8], pattern: &[u8]) -> bool {
    text.len() >= pattern.len() && text[..pattern.len()].eq_ignore_ascii_case(pattern)
}

/// RFC 8187's `attr-char`, kept as is in an extended parameter such as a
/// digest `username*=UTF-8''...`; everything else is percent-encoded.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// The forms a server may echo a secret in.
fn forms(secret: &str) -> Vec<Vec<u8>> {
    let json = |s: &str| {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or_default()
            .to_string()
    };
    let escaped = json(secret);
    let collapsed = secret.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        secret.to_string(),
        percent_encoding::utf8_percent_encode(secret, UNRESERVED).to_string(),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        percent_encoding::utf8_percent_encode(secret, ATTR_CHAR).to_string(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        escaped.replace('/', "\\/"),
        json(&escaped),
        escaped,
        collapsed,
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// A URL as a message may show it: without its `user:password@`.
/// Text that does not parse as a URL loses everything from the scheme (or the
/// start) to its last `@`: better a message too vague than a password shown.
pub fn url(text: &str) -> String {
    if let Ok(mut u) = url::Url::parse(text.trim())
        && u.has_host()
    {
        if u.username().is_empty() && u.password().is_none() {
            return text.to_string();
        }
        let _ = u.set_username("");
        let _ = u.set_password(None);
        let s = u.to_string();
        if let Some(i) = s.find("://") {
            return format!("{}{REDACTED}@{}", &s[..i + 3], &s[i + 3..]);
        }
    }
    match text.rfind('@') {
        None => text.to_string(),
        Some(at) => {
            let start = text.find("://").map_or(0, |i| i + 3).min(at);
            format!("{}{REDACTED}{}", &text[..start], &text[at..])
        }
    }
}

/// `text` with the `user:password@` of every `scheme://` in it redacted, up
/// to the last `@` of the word it is in (a word ends at whitespace or a
/// quote). For messages that may quote a URL the user wrote.
pub fn urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>'))
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secrets: &[&str]) -> Redactor {
        let s: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        Redactor::new(&s)
    }

    #[test]
    fn every_form_of_every_secret_goes() {
        let red = r(&["s3cr/et+\"k\" ey", "tok-123"]);
        for echoed in [
            "s3cr/et+\"k\" ey",
            "S3CR/ET+\"K\" EY",
            "s3cr%2Fet%2B%22k%22%20ey",
            "s3cr%2fet%2b%22k%22%20ey",
            "s3cr%2Fet%2B%22k%22+ey",
            "s3cr/et+\\\"k\\\" ey",
            "s3cr\\/et+\\\"k\\\" ey",
            "s3cr/et+\\\\\\\"k\\\\\\\" ey",
        ] {
            let text = format!("bad key {echoed}; and tok-123 and TOK%2D123 too");
            assert_eq!(
                red.text(&text),
                "bad key [redacted]; and [redacted] and [redacted] too",
                "{echoed}"
            );
        }
        assert!(matches!(red.text("nothing here"), Cow::Borrowed(_)));
        assert!(!format!("{red:?}").contains("tok"));
        assert_eq!(r(&[]).text("tok-123"), "tok-123");
        assert_eq!(r(&["k"]).text("kéK"), "[redacted]é[redacted]");
        assert_eq!(r(&["a  b"]).text("x a b y"), "x [redacted] y");
    }

    #[test]
    fn echoed_digest_responses_go() {
        let red = r(&["pub"]);
        assert_eq!(
            red.text(r#"Digest username="pub", nc=00000001, response="659df5ef0863298731c9fe210f6b247c", x"#),
            r#"Digest username="[redacted]", nc=00000001, response="[redacted]", x"#
        );
        assert_eq!(
            r(&[]).text("RESPONSE=659df5ef0863298731c9fe210f6b247c0000"),
            "RESPONSE=[redacted]"
        );
        assert_eq!(r(&[]).text("response=\"ok\""), "response=\"ok\"");
    }

    #[test]
    fn a_secret_cut_at_the_end_leaves_nothing() {
        let red = r(&["sandbox-token-123"]);
        assert_eq!(red.text("bad key sandbox-to…"), "bad key [redacted]…");
        assert_eq!(red.text("bad key SAND…"), "bad key [redacted]…");
        assert_eq!(red.text("bad key san…"), "bad key san…");
        assert_eq!(red.text("sandbox-to"), "sandbox-to");
    }

    #[test]
    fn userinfo_is_never_shown() {
        assert_eq!(
            url("http://u:PASSWORD@api.example.com/x"),
            "http://[redacted]@api.example.com/x"
        );
        assert_eq!(
            url("https://api.example.com/x"),
            "https://api.example.com/x"
        );
        assert_eq!(url("http://u:PASS@[zz"), "http://[redacted]@[zz");
        assert_eq!(url("u:p/a@ss@host"), "[redacted]@host");
        assert_eq!(
            urls_in("a `http://u:PASS@h/p` and https://x:y@z, ftp://h"),
            "a `http://[redacted]@h/p` and https://[redacted]@z, ftp://h"
        );
        assert_eq!(urls_in("no url @ all"), "no url @ all");
    }
}
