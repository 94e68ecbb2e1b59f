//! What the user wrote, echoed into messages within bounds and in the user's words.
//!
//! Messages quote the value they refuse, so the user can find it; but a value can be
//! anything a file holds (a 20 MB table name, a checkpoint edited by a script), and an
//! error line that long buries the message and floods logs. Values are therefore shown up
//! to [`ECHO_MAX`] characters, then cut with an ellipsis that says how long they were.
//!
//! Messages of libraries that parse the user's files (serde, toml) describe what they
//! expected with Rust type names (`struct RawSource`, `nonzero usize`, `u16`); [`plain`]
//! rewrites those in the words of the file format.

use std::borrow::Cow;

/// Characters of a user value shown in a message.
pub const ECHO_MAX: usize = 200;

/// Characters of a whole message before it is cut (a backstop for paths that echo
/// without [`echo`]).
const MESSAGE_MAX: usize = 4000;

/// `value` as is when short, else its first [`ECHO_MAX`] characters, an ellipsis and the
/// length: `xxxx… (20000000 characters)`. For values shown without quotes.
pub fn clip(value: &str) -> Cow<'_, str> {
    match cut(value, ECHO_MAX) {
        None => Cow::Borrowed(value),
        Some(head) => Cow::Owned(format!("{head}… ({} characters)", value.chars().count())),
    }
}

/// `value` in backticks, cut like [`clip`] with the length after the closing backtick:
/// `` `xxxx…` (20000000 characters) ``.
pub fn echo(value: &str) -> String {
    match cut(value, ECHO_MAX) {
        None => format!("`{value}`"),
        Some(head) => format!("`{head}…` ({} characters)", value.chars().count()),
    }
}

/// `message` with every run quoted in backticks or double quotes longer than
/// [`ECHO_MAX`] cut, for messages built by libraries that echo values whole.
pub fn clip_quoted(message: &str) -> Cow<'_, str> {
    if message.chars().count() <= ECHO_MAX {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len().min(4 * ECHO_MAX));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        let Some(close) = inner.find(quote) else {
            rest = inner;
            break;
        };
        let value = &inner[..close];
        match cut(value, ECHO_MAX) {
            None => out.push_str(value),
            Some(head) => {
                out.push_str(head);
                out.push('…');
                out.push(quote);
                out.push_str(&format!(" ({} characters)", value.chars().count()));
                rest = &inner[close + 1..];
                continue;
            }
        }
        out.push(quote);
        rest = &inner[close + 1..];
    }
    match cut(rest, ECHO_MAX) {
        None => out.push_str(rest),
        Some(head) => {
            out.push_str(head);
            out.push_str(&format!("… ({} characters)", rest.chars().count()));
        }
    }
    Cow::Owned(out)
}

/// The whole message, cut at a few thousand characters: the last line of defence for a
/// message that echoes a value no site bounded.
pub fn bounded(message: &str) -> Cow<'_, str> {
    match cut(message, MESSAGE_MAX) {
        None => Cow::Borrowed(message),
        Some(head) => Cow::Owned(format!(
            "{head}… (message of {} characters cut)",
            message.chars().count()
        )),
    }
}

/// A serde or toml message in the words of the file format: `object` names what a
/// struct or map is written as, with and without its article (`("a table", "table")` in
/// TOML, `("an object", "object")` in JSON). Only the library's own phrases are rewritten,
/// never the values it quotes.
pub fn plain(message: &str, object: (&str, &str)) -> String {
    let (article, bare) = object;
    let mut text = message
        .replace("wanted string or table", "expected a string")
        .replace(" as i128, expected", ", expected")
        .replace(
            "expected a nonzero usize",
            "expected a whole number of at least 1",
        )
        .replace(
            "expected a nonzero u32",
            "expected a whole number of at least 1",
        )
        .replace("invalid type: sequence", "invalid type: array")
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: map", &format!("invalid type: {bare}"))
        .replace("expected a map", &format!("expected {article}"));
    for prefix in [
        "expected internally tagged enum ",
        "expected struct ",
        "expected enum ",
    ] {
        text = replace_named(&text, prefix, &format!("expected {article}"));
    }
    for (word, with) in [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number of at least 0"),
        ("usize", "a whole number of at least 0"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ] {
        text = replace_word(
            &text,
            &format!("expected {word}"),
            &format!("expected {with}"),
        );
    }
    text
}

/// Replaces `<prefix><Name>[ with N elements]` by `with`, for every occurrence.
fn replace_named(text: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.push_str(&rest[..at + prefix.len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..at]);
        out.push_str(with);
        let mut tail = &after[name_len..];
        if let Some(elements) = tail.strip_prefix(" with ") {
            let digits = elements
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(elements.len());
            if digits > 0
                && let Some(t) = elements[digits..]
                    .strip_prefix(" elements")
                    .or_else(|| elements[digits..].strip_prefix(" element"))
            {
                tail = t;
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Replaces `word` where it is not followed by more of a word.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let after = &rest[at + word.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The first `max` characters of `text` when it is longer, else `None`.
fn cut(text: &str, max: usize) -> Option<&str> {
    let (end, _) = text.char_indices().nth(max)?;
    Some(&text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_shown_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(clip("items"), "items");
        assert_eq!(echo("items"), "`items`");
        let long = "é".repeat(20_000);
        let shown = echo(&long);
        assert_eq!(
            shown,
            format!("`{}…` (20000 characters)", "é".repeat(ECHO_MAX))
        );
        assert_eq!(
            clip(&long),
            format!("{}… (20000 characters)", "é".repeat(ECHO_MAX))
        );
        assert_eq!(clip(&"x".repeat(ECHO_MAX)), "x".repeat(ECHO_MAX));
    }

    #[test]
    fn quoted_runs_of_library_messages_are_cut() {
        let value = "v".repeat(1000);
        let message = format!("unknown variant `{value}`, expected `full` or `incremental`");
        assert_eq!(
            clip_quoted(&message),
            format!(
                "unknown variant `{}…` (1000 characters), expected `full` or `incremental`",
                "v".repeat(ECHO_MAX)
            )
        );
        let server = format!("invalid input syntax for type timestamp: \"{value}\"");
        assert!(clip_quoted(&server).ends_with("…\" (1000 characters)"));
        assert_eq!(clip_quoted("short `x`"), "short `x`");
        let unclosed = format!("value `{value}");
        assert!(clip_quoted(&unclosed).chars().count() < 300);
        assert!(bounded(&"m".repeat(50_000)).ends_with("(message of 50000 characters cut)"));
    }

    #[test]
    fn rust_type_names_become_file_words() {
        const TOML: (&str, &str) = ("a table", "table");
        const JSON: (&str, &str) = ("an object", "object");
        for (message, words, want) in [
            (
                "invalid type: integer `3`, expected struct RawSource",
                TOML,
                "invalid type: integer `3`, expected a table",
            ),
            (
                "invalid length 0, expected struct State with 2 elements at line 1",
                JSON,
                "invalid length 0, expected an object at line 1",
            ),
            (
                "invalid type: integer `3`, expected internally tagged enum SourceState",
                JSON,
                "invalid type: integer `3`, expected an object",
            ),
            (
                "invalid value: integer `0`, expected a nonzero usize",
                TOML,
                "invalid value: integer `0`, expected a whole number of at least 1",
            ),
            (
                "invalid type: integer `99999999999999999999` as i128, expected a nonzero usize",
                TOML,
                "invalid type: integer `99999999999999999999`, expected a whole number of at least 1",
            ),
            (
                "invalid value: integer `99999`, expected u16",
                TOML,
                "invalid value: integer `99999`, expected a whole number from 0 to 65535",
            ),
            (
                "invalid type: string \"1\", expected u32 at line 1 column 14",
                JSON,
                "invalid type: string \"1\", expected a whole number from 0 to 4294967295 at line 1 column 14",
            ),
            (
                "invalid type: sequence, expected a map",
                JSON,
                "invalid type: array, expected an object",
            ),
            (
                "invalid type: map, expected a string",
                TOML,
                "invalid type: table, expected a string",
            ),
            ("wanted string or table", TOML, "expected a string"),
            // Values the library quotes are left alone.
            (
                "unknown variant `struct Point sequence u16`, expected `full`",
                TOML,
                "unknown variant `struct Point sequence u16`, expected `full`",
            ),
            ("expected u16x", TOML, "expected u16x"),
        ] {
            assert_eq!(plain(message, words), want, "{message}");
        }
    }
}
