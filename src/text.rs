//! Text shown to people: a foreign message cut down to one line, a value
//! quoted so that it cannot break the line that reports it, a count of
//! things in words.

/// The word for `n` things: `one` for 1, `many` for any other number.
pub fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `1 row`, `2 rows`, `1,200 rows`: `n` things, in words.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", indicatif::HumanCount(n), plural(n, one, many))
}

/// A message (a vendor's error body, a server's challenge) cut down to one
/// line of reasonable length, for the results file and logs.
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

/// [`one_line`], at most `max` characters long (`…` marks a cut): a part of
/// a longer message, such as a page's title or where a redirect points.
pub fn one_line_within(text: &str, max: usize) -> String {
    let text = one_line(text);
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_for_one_only() {
        assert_eq!(counted(0, "row", "rows"), "0 rows");
        assert_eq!(counted(1, "row", "rows"), "1 row");
        assert_eq!(counted(1_200, "answer", "answers"), "1,200 answers");
        assert_eq!(plural(2, "row", "rows"), "rows");
    }

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert!(one_line(&"é".repeat(400)).ends_with('…'));
    }

    #[test]
    fn a_part_of_a_message_is_cut_at_a_character() {
        assert_eq!(one_line_within("a\n b", 3), "a b");
        assert_eq!(one_line_within(&"é".repeat(10), 4), "éééé…");
    }

    #[test]
    fn values_are_quoted_short_and_escaped() {
        assert_eq!(shown("a\nb\u{0}"), "`a\\nb\\u{0}`");
        assert_eq!(shown(&"x".repeat(100)), format!("`{}…`", "x".repeat(40)));
    }
}
