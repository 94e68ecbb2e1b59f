//! Keeping passwords out of everything the command prints.
//!
//! The connector never puts a password in an error, but connection strings travel through
//! flags, config files and third-party messages. As a last line of defence every log line
//! and error message passes through [`redact_secrets`], which replaces with `***` the
//! password of any `scheme://user:password@host`, and the value of a `password=` (or
//! `sslpassword=`) setting, as libpq keyword strings (`host=h password='x y'`) and URL
//! query strings (`?password=x`) write them.

use std::borrow::Cow;
use std::io;

/// Replaces every password in `text` (URL user info, `password=` settings) with `***`.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    let urls = redact_urls(text);
    match redact_keywords(&urls) {
        Cow::Borrowed(_) => urls,
        Cow::Owned(both) => Cow::Owned(both),
    }
}

/// The value of every `password=` / `sslpassword=` setting (any case, spaces around `=`,
/// a value quoted with `'` and `\'` escapes, or bare up to a space, `&`, `;` or `#`).
fn redact_keywords(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("password") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let start = from + found;
        let mut i = start + "password".len();
        from = i;
        let key_start = if lower[..start].ends_with("ssl") {
            start - 3
        } else {
            start
        };
        let boundary = key_start == 0
            || matches!(
                bytes[key_start - 1],
                b' ' | b'\t' | b'\n' | b'?' | b'&' | b';' | b',' | b'"' | b'('
            );
        if !boundary {
            continue;
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let value_start = i;
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len()
                && !matches!(
                    bytes[i],
                    b' ' | b'\t' | b'\n' | b'&' | b';' | b'#' | b'"' | b')'
                )
            {
                i += 1;
            }
        }
        if i == value_start {
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = i;
        from = i;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Replaces the password in every `scheme://user:password@` of `text` with `***`.
fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; the last '@' in it
        // separates user info from the host (a password may itself contain '@').
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A writer that redacts passwords in what passes through it (one log line per write).
pub struct RedactingWriter<W>(pub W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact_secrets(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_replaced() {
        assert_eq!(
            redact_urls("connect postgres://app:s3cr3t@db:5432/x failed"),
            "connect postgres://app:***@db:5432/x failed"
        );
        assert_eq!(
            redact_urls("a postgres://u:p@ss@h/d and http://h:80/x"),
            "a postgres://u:***@h/d and http://h:80/x"
        );
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        let text = "postgres://postgres@127.0.0.1:5432/test and http://127.0.0.1:9/metrics";
        assert_eq!(redact_urls(text), text);
        assert!(matches!(redact_urls("no url"), Cow::Borrowed(_)));
    }

    #[test]
    fn keyword_and_query_passwords_are_replaced() {
        for (text, want) in [
            (
                "host=db user=app password=s3cr3t dbname=x",
                "host=db user=app password=*** dbname=x",
            ),
            (
                "host=db PASSWORD = 'two words \\' quote' port=5",
                "host=db PASSWORD = *** port=5",
            ),
            (
                "sslpassword=k3y sslmode=require",
                "sslpassword=*** sslmode=require",
            ),
            (
                "postgres://h/db?user=u&password=p4ss&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            (
                "postgres://u:pw@h/db?password=again",
                "postgres://u:***@h/db?password=***",
            ),
        ] {
            assert_eq!(redact_secrets(text), want, "{text}");
        }
        for text in ["no_password=1 here", "password is wrong", "password="] {
            assert_eq!(redact_secrets(text), text);
        }
    }

    #[test]
    fn writer_redacts() {
        let mut w = RedactingWriter(Vec::new());
        io::Write::write_all(&mut w, b"url=postgres://a:hunter2@h/d\n").unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "url=postgres://a:***@h/d\n"
        );
    }
}
