//! Names and values echoed into error messages, within bounds.
//!
//! An error quotes the table, column or value it refuses so the caller can find it, but a
//! name or a checkpoint value can be megabytes long, and the server quotes a value it
//! cannot parse whole (`invalid input syntax for type timestamp: "..."`). Both are shown
//! up to [`ECHO_MAX`] characters, then cut with an ellipsis that says how long they were.

/// Characters of a name or value shown in a message.
pub(crate) const ECHO_MAX: usize = 200;

/// `value` quoted (control characters escaped), cut when long:
/// `"xxxx…" (20000000 characters)`.
pub(crate) fn quoted(value: &str) -> String {
    match cut(value) {
        None => format!("{value:?}"),
        Some(head) => format!(
            "\"{}…\" ({} characters)",
            escaped(head),
            value.chars().count()
        ),
    }
}

/// `message` with every double-quoted run longer than [`ECHO_MAX`] cut, and an unquoted
/// tail cut the same way: for messages the server builds around a value it was sent.
pub(crate) fn clip_quoted(message: &str) -> String {
    let mut out = String::new();
    let segments: Vec<&str> = message.split('"').collect();
    for (i, segment) in segments.iter().enumerate() {
        let closed = i + 1 < segments.len();
        let Some(head) = cut(segment) else {
            out.push_str(segment);
            if closed {
                out.push('"');
            }
            continue;
        };
        let n = segment.chars().count();
        out.push_str(head);
        out.push('…');
        if i % 2 == 1 && closed {
            // A quoted value: the length goes after the closing quote.
            out.push_str(&format!("\" ({n} characters)"));
        } else {
            out.push_str(&format!(" ({n} characters)"));
            if closed {
                out.push('"');
            }
        }
    }
    out
}

fn escaped(text: &str) -> String {
    let debug = format!("{text:?}");
    debug[1..debug.len() - 1].to_owned()
}

/// The first [`ECHO_MAX`] characters of `text` when it is longer, else `None`.
fn cut(text: &str) -> Option<&str> {
    let (end, _) = text.char_indices().nth(ECHO_MAX)?;
    Some(&text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_quoted_whole_and_long_ones_cut_with_their_length() {
        assert_eq!(quoted("items"), "\"items\"");
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        let long = "x".repeat(5000);
        assert_eq!(
            quoted(&long),
            format!("\"{}…\" (5000 characters)", "x".repeat(ECHO_MAX))
        );
    }

    #[test]
    fn server_messages_keep_their_words_and_cut_the_value() {
        let short = "invalid input syntax for type timestamp: \"soon\"";
        assert_eq!(clip_quoted(short), short);
        let long = format!(
            "invalid input syntax for type timestamp: \"{}\"",
            "x".repeat(20_000)
        );
        assert_eq!(
            clip_quoted(&long),
            format!(
                "invalid input syntax for type timestamp: \"{}…\" (20000 characters)",
                "x".repeat(ECHO_MAX)
            )
        );
        let bare = "y".repeat(1000);
        assert_eq!(
            clip_quoted(&bare),
            format!("{}… (1000 characters)", "y".repeat(ECHO_MAX))
        );
    }
}
