//! Text from the input as it may be shown on a terminal or in a log line.
//!
//! A cell or a header name is whatever the file's author wrote: an escape
//! sequence in it would retitle, clear or rewrite the operator's terminal,
//! a line break would forge a log line, and a bidirectional override would
//! make a message read differently from what it says. So every message that
//! quotes the input escapes such characters, visibly, as Rust writes them
//! (`\u{1b}`, `\n`); the files invitesync writes keep the bytes as they were.

use std::borrow::Cow;

/// A path as `shown` shows text: a file name holding an escape sequence or
/// a line break cannot rewrite the terminal or forge a log line either.
pub fn shown_path(path: &std::path::Path) -> String {
    shown(&path.display().to_string()).into_owned()
}

/// `text` with control and invisible formatting characters escaped.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the zero-width and bidirectional
/// formatting characters that change how the text around them reads.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(shown("plain, ok é"), "plain, ok é");
        assert_eq!(
            shown("\u{1b}]0;pwned\u{7}gate\u{1b}[2J"),
            "\\u{1b}]0;pwned\\u{7}gate\\u{1b}[2J"
        );
        assert_eq!(shown("a\nb\r\tc\u{9b}d"), "a\\nb\\r\\tc\\u{9b}d");
        assert_eq!(shown("x\u{202e}y\u{7f}"), "x\\u{202e}y\\u{7f}");
    }
}
