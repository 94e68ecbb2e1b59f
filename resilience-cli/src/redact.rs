//! Keeping passwords out of everything the command prints.
//!
//! The connector never puts a password in an error, but URLs travel through flags, config
//! files and third-party messages. As a last line of defence every log line and error
//! message passes through [`redact_urls`], which replaces the password of any
//! `scheme://user:password@host` with `***`.

use std::borrow::Cow;
use std::io;

/// Replaces the password in every `scheme://user:password@` of `text` with `***`.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
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

/// A writer that redacts URLs in what passes through it (one log line per write).
pub struct RedactingWriter<W>(pub W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact_urls(text).as_bytes())?,
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
    fn writer_redacts() {
        let mut w = RedactingWriter(Vec::new());
        io::Write::write_all(&mut w, b"url=postgres://a:hunter2@h/d\n").unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "url=postgres://a:***@h/d\n"
        );
    }
}
