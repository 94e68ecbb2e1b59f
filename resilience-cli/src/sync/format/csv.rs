//! CSV exactly as PostgreSQL's `COPY ... TO (FORMAT csv, HEADER)` writes it.
//!
//! Each value is its PostgreSQL text ([`Syntax::Text`]); a field is quoted (`"`, inner
//! quotes doubled) when it holds a comma, a quote or a line break, when it is the empty
//! string (so that `""` is the empty string and an unquoted empty field is NULL), or when it
//! is `\.` alone on a line (which `COPY ... FROM` would take for the end of the data).
//! Lines end in `\n`.
//! The file therefore loads back with `COPY table FROM 'file' (FORMAT csv, HEADER)` into
//! the same values, and other CSV readers see the same text.

use std::fs::File;
use std::io::{BufWriter, Write};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use connector_postgres::arrow::render::Syntax;

use super::{BatchWriter, FormatError, check_schema, columns};

/// Rows are printed into a buffer, which goes to the file when it holds this much.
const FLUSH_AT: usize = 128 * 1024;

/// A CSV file being written.
pub struct CsvWriter {
    out: BufWriter<File>,
    schema: SchemaRef,
    buf: Vec<u8>,
    /// One column: a `\.` field would be alone on its line.
    single: bool,
}

impl CsvWriter {
    /// Starts the file with its header line.
    pub fn new(out: BufWriter<File>, schema: &SchemaRef) -> Result<Self, FormatError> {
        let mut buf = Vec::with_capacity(FLUSH_AT + 4096);
        let single = schema.fields().len() == 1;
        for (i, field) in schema.fields().iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let start = buf.len();
            buf.extend_from_slice(field.name().as_bytes());
            quote_if_needed(&mut buf, start, single);
        }
        buf.push(b'\n');
        Ok(Self {
            out,
            schema: schema.clone(),
            buf,
            single,
        })
    }
}

impl BatchWriter for CsvWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        check_schema(&self.schema, batch)?;
        let columns = columns(&self.schema, batch)?;
        for row in 0..batch.num_rows() {
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                if column.is_null(row) {
                    continue;
                }
                let start = self.buf.len();
                column.write(row, Syntax::Text, &mut self.buf);
                if column.may_need_quotes() {
                    quote_if_needed(&mut self.buf, start, self.single);
                }
            }
            self.buf.push(b'\n');
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

/// The bytes that make a field need quotes: comma, quote, line feed, carriage return.
/// (A table, not a search: fields are short, and a byte loop beats a vectorised search.)
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b',' as usize] = true;
    table[b'"' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

/// Quotes the field that starts at `start` (and runs to the end of `buf`) when it needs it;
/// `single`: the field is the only one on its line.
fn quote_if_needed(buf: &mut Vec<u8>, start: usize, single: bool) {
    let field = &buf[start..];
    let needs = field.is_empty()
        || (single && field == b"\\.")
        || field.iter().any(|b| SPECIAL[usize::from(*b)]);
    if !needs {
        return;
    }
    let value = buf.split_off(start);
    buf.reserve(value.len() + 2);
    buf.push(b'"');
    for b in value {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(value: &str) -> String {
        let mut buf = b"x,".to_vec();
        buf.extend_from_slice(value.as_bytes());
        quote_if_needed(&mut buf, 2, false);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn quotes_what_copy_quotes() {
        assert_eq!(quoted(""), "x,\"\"");
        assert_eq!(quoted("plain text "), "x,plain text ");
        assert_eq!(quoted("a,b"), "x,\"a,b\"");
        assert_eq!(quoted("say \"hi\""), "x,\"say \"\"hi\"\"\"");
        assert_eq!(quoted("two\nlines"), "x,\"two\nlines\"");
        assert_eq!(quoted("cr\r"), "x,\"cr\r\"");
        assert_eq!(quoted("\\."), "x,\\.", "not alone on its line");
        let mut alone = b"\\.".to_vec();
        quote_if_needed(&mut alone, 0, true);
        assert_eq!(alone, b"\"\\.\"");
        assert_eq!(quoted("tab\there\\"), "x,tab\there\\");
    }
}
