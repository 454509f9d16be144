//! File-system errors in the words a message to a person needs.
//!
//! `std::io::Error` prints as `No such file or directory (os error 2)`: the
//! number helps nobody who reads a one-line error, and the capital sits oddly
//! after `cannot open FILE: `. Every message that quotes an I/O error about a
//! file the user named goes through [`reason`].

/// `No such file or directory (os error 2)` → `no such file or directory`.
pub fn reason(e: &std::io::Error) -> String {
    plain(&e.to_string())
}

/// [`reason`] for any error text that may end in an OS error (csv's, say).
pub fn plain(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn os_errors_read_as_plain_words() {
        let e = Error::from_raw_os_error(2);
        assert_eq!(reason(&e), "no such file or directory");
        let e = Error::new(ErrorKind::InvalidData, "stream did not contain valid UTF-8");
        assert_eq!(reason(&e), "stream did not contain valid UTF-8");
        let e = Error::other("EOF while parsing");
        assert_eq!(reason(&e), "EOF while parsing");
    }
}
