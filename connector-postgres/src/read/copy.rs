//! Pages fetched as `COPY (SELECT ...) TO STDOUT (FORMAT binary)`, decoded into Arrow.
//!
//! A binary COPY carries each value in the same binary wire format as a query's binary
//! result, so the page's [`BatchBuilder`] decodes it unchanged: the two paths give identical
//! batches. What differs is the client's work around the values: a query result arrives as
//! one `DataRow` message per row, which the driver turns into a row object with its own
//! allocations before a value can be read; a COPY stream is a run of bytes that is walked
//! once. COPY takes no parameters, so positions are written into the statement as quoted
//! literals ([`literal`]).
//!
//! The stream is `PGCOPY\n\377\r\n\0`, a flags word, a header extension, then per row a
//! field count (`i16`) and per field a length (`i32`, `-1` for NULL) and the value's bytes,
//! and finally a field count of `-1`. The server sends a row per message, but the parser
//! does not depend on it: a row split across chunks is carried over.

use crate::arrow::BatchBuilder;
use crate::error::PgError;

/// The 11-byte signature that starts a binary COPY stream.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// `value` as an escaped string literal (`E'...'`), read back by PostgreSQL as exactly
/// `value` whatever `standard_conforming_strings` says.
pub(crate) fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    out.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Where the parser is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Rows,
    Done,
}

/// Decodes a binary COPY stream, chunk by chunk, into a [`BatchBuilder`].
pub(crate) struct CopyParser {
    stage: Stage,
    columns: usize,
    /// Bytes of an incomplete header or row, waiting for the next chunk.
    carry: Vec<u8>,
}

impl CopyParser {
    /// A parser for rows of `columns` fields.
    pub(crate) fn new(columns: usize) -> Self {
        CopyParser {
            stage: Stage::Header,
            columns,
            carry: Vec::new(),
        }
    }

    /// Decodes every complete row of `chunk` (after any carried-over bytes).
    pub(crate) fn feed(&mut self, chunk: &[u8], builder: &mut BatchBuilder) -> Result<(), PgError> {
        if self.carry.is_empty() {
            let used = self.parse(chunk, builder)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(chunk);
            let used = self.parse(&carry, builder)?;
            carry.drain(..used);
            self.carry = carry;
        }
        Ok(())
    }

    /// Checks that the stream ended with its trailer and nothing after it.
    pub(crate) fn finish(&self) -> Result<(), PgError> {
        if self.stage != Stage::Done || !self.carry.is_empty() {
            return Err(PgError::data(
                "a binary COPY stream ended before its trailer".to_owned(),
            ));
        }
        Ok(())
    }

    /// Parses what `buf` holds completely; returns the bytes used.
    fn parse(&mut self, buf: &[u8], builder: &mut BatchBuilder) -> Result<usize, PgError> {
        let mut at = 0;
        if self.stage == Stage::Header {
            match header_len(buf)? {
                Some(len) => {
                    at = len;
                    self.stage = Stage::Rows;
                }
                None => return Ok(0),
            }
        }
        while self.stage == Stage::Rows {
            let Some(count) = buf
                .get(at..at + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
            else {
                break;
            };
            if count == -1 {
                self.stage = Stage::Done;
                at += 2;
                break;
            }
            if count as usize != self.columns || count < 0 {
                return Err(PgError::data(format!(
                    "a binary COPY row has {count} fields, expected {}",
                    self.columns
                )));
            }
            let Some(len) = row_len(&buf[at + 2..], self.columns) else {
                break;
            };
            builder.append_copy_tuple(&buf[at + 2..at + 2 + len])?;
            at += 2 + len;
        }
        if self.stage == Stage::Done && at < buf.len() {
            return Err(PgError::data("bytes after the end of a binary COPY stream"));
        }
        Ok(at)
    }
}

/// The length of the header at the start of `buf`, `None` when it is not complete yet.
fn header_len(buf: &[u8]) -> Result<Option<usize>, PgError> {
    let fixed = SIGNATURE.len() + 8;
    if buf.len() < fixed {
        if !SIGNATURE.starts_with(&buf[..buf.len().min(SIGNATURE.len())]) {
            return Err(not_binary_copy());
        }
        return Ok(None);
    }
    if &buf[..SIGNATURE.len()] != SIGNATURE {
        return Err(not_binary_copy());
    }
    let ext = &buf[SIGNATURE.len() + 4..fixed];
    let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]) as usize;
    Ok((buf.len() >= fixed + ext).then_some(fixed + ext))
}

fn not_binary_copy() -> PgError {
    PgError::data("the server's COPY output does not start with the binary COPY signature")
}

/// The length of the `columns` fields at the start of `buf`, `None` when incomplete.
fn row_len(buf: &[u8], columns: usize) -> Option<usize> {
    let mut at = 0;
    for _ in 0..columns {
        let len = buf.get(at..at + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4 + usize::try_from(len).unwrap_or(0);
    }
    (at <= buf.len()).then_some(at)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int32Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::arrow::PgKind;

    fn stream(rows: &[(Option<i32>, Option<&str>)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&4u32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        for (n, s) in rows {
            out.extend_from_slice(&2i16.to_be_bytes());
            match n {
                Some(n) => {
                    out.extend_from_slice(&4i32.to_be_bytes());
                    out.extend_from_slice(&n.to_be_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
            match s {
                Some(s) => {
                    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn builder() -> BatchBuilder {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        BatchBuilder::new(schema, vec![PgKind::Int4, PgKind::Text], 4)
    }

    #[test]
    fn rows_split_anywhere_across_chunks_decode_the_same() {
        let rows = [(Some(7), Some("it's")), (None, Some("")), (Some(-1), None)];
        let bytes = stream(&rows);
        for chunk in 1..bytes.len() {
            let mut parser = CopyParser::new(2);
            let mut b = builder();
            for piece in bytes.chunks(chunk) {
                parser.feed(piece, &mut b).unwrap();
            }
            parser.finish().unwrap();
            let batch = b.into_batch().unwrap();
            let n = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            let s = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            assert_eq!(batch.num_rows(), 3, "chunks of {chunk}");
            assert_eq!((n.value(0), s.value(0)), (7, "it's"));
            assert!(n.is_null(1) && s.value(1).is_empty());
            assert!(n.value(2) == -1 && s.is_null(2));
        }
    }

    #[test]
    fn a_stream_cut_short_or_foreign_is_an_error() {
        let bytes = stream(&[(Some(1), Some("a"))]);
        let mut parser = CopyParser::new(2);
        let mut b = builder();
        parser.feed(&bytes[..bytes.len() - 3], &mut b).unwrap();
        assert!(parser.finish().is_err());
        let mut parser = CopyParser::new(2);
        assert!(parser.feed(b"id,name\n1,a\n", &mut builder()).is_err());
        let mut parser = CopyParser::new(3);
        assert!(parser.feed(&bytes, &mut builder()).is_err());
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("a'b\\c"), "E'a''b\\\\c'");
        assert_eq!(literal(""), "E''");
    }
}
