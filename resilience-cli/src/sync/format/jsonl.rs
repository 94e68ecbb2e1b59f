//! JSON lines: one object per row, keys in column order, values as `to_json` renders them.
//!
//! Numbers are JSON numbers at full precision (`bigint` and `numeric` included, exactly as
//! PostgreSQL prints them); a float or numeric `NaN` / `Infinity` / `-Infinity` is a string,
//! as `to_json` writes it. Booleans are `true` / `false`, NULL is `null`, `json` and `jsonb`
//! values are embedded as JSON (a line break between the tokens of a `json` value becomes a
//! space, since a JSON line cannot hold one; strings inside never hold raw line breaks).
//! Timestamps are ISO 8601 (`2024-01-01T12:00:00.5+00:00`, UTC for `timestamptz`), BC dates
//! and `infinity` as PostgreSQL writes them, `bytea` as `"\\xdeadbeef"`, and every other type
//! as a string of its PostgreSQL text (arrays as `"{1,2,NULL}"`). A line loads back with
//! `json_populate_record` into the same values.

use std::fs::File;
use std::io::{BufWriter, Write};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use connector_postgres::arrow::render::{JsonShape, Syntax};

use super::{BatchWriter, FormatError, check_schema, columns};

const FLUSH_AT: usize = 128 * 1024;

/// A JSON-lines file being written.
pub struct JsonlWriter {
    out: BufWriter<File>,
    schema: SchemaRef,
    /// `"name":` for each column, escaped once.
    keys: Vec<Vec<u8>>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl JsonlWriter {
    /// Starts the file.
    pub fn new(out: BufWriter<File>, schema: &SchemaRef) -> Result<Self, FormatError> {
        let keys = schema
            .fields()
            .iter()
            .map(|f| {
                let mut key = Vec::new();
                push_string(&mut key, f.name().as_bytes());
                key.push(b':');
                key
            })
            .collect();
        Ok(Self {
            out,
            schema: schema.clone(),
            keys,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            scratch: Vec::new(),
        })
    }
}

impl BatchWriter for JsonlWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        check_schema(&self.schema, batch)?;
        let columns = columns(&self.schema, batch)?;
        for row in 0..batch.num_rows() {
            self.buf.push(b'{');
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                self.buf.extend_from_slice(&self.keys[i]);
                if column.is_null(row) {
                    self.buf.extend_from_slice(b"null");
                    continue;
                }
                match column.json_shape(row) {
                    JsonShape::Number | JsonShape::Bool => {
                        column.write(row, Syntax::Json, &mut self.buf);
                    }
                    JsonShape::Json => {
                        let start = self.buf.len();
                        column.write(row, Syntax::Json, &mut self.buf);
                        for b in &mut self.buf[start..] {
                            if matches!(*b, b'\n' | b'\r') {
                                *b = b' ';
                            }
                        }
                    }
                    JsonShape::String => {
                        self.scratch.clear();
                        column.write(row, Syntax::Json, &mut self.scratch);
                        push_string(&mut self.buf, &self.scratch);
                    }
                }
            }
            self.buf.extend_from_slice(b"}\n");
            if self.buf.len() >= FLUSH_AT {
                self.out.write_all(&self.buf)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<File, FormatError> {
        self.out.write_all(&self.buf)?;
        self.out.into_inner().map_err(|e| e.into_error().into())
    }
}

/// `text` (UTF-8) as a JSON string: quotes, backslashes and control characters escaped.
fn push_string(buf: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.reserve(text.len() + 2);
    buf.push(b'"');
    for &b in text {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            0x00..=0x1f => {
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
            }
            _ => buf.push(b),
        }
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_json_requires() {
        let mut buf = Vec::new();
        push_string(&mut buf, "a\"b\\c\nd\te\u{1}f é \u{2028}".as_bytes());
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "\"a\\\"b\\\\c\\nd\\te\\u0001f é \u{2028}\""
        );
    }
}
