//! Rows into record batches: one typed Arrow builder per column, filled straight from the
//! binary bytes of each `PgRow`.
//!
//! The hot loop is `append_row`: for each column it borrows the raw value from the row and
//! appends it to the builder. No `String`, `Vec` or boxed error is created per value, so the
//! cost is the wire decoding itself; memory is the builders' buffers for one batch.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{Row, ValueRef};

use super::binary::{self, DecodeError};
use super::types::PgKind;
use crate::error::PgError;

/// Bytes reserved per text value when a batch starts.
const TEXT_BYTES_HINT: usize = 16;

/// One column's builder.
enum Column {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt32(UInt32Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Utf8(StringBuilder),
    /// A binary `numeric` printed as text; the `String` is a reused scratch buffer.
    NumericText(StringBuilder, String),
    Jsonb(StringBuilder),
    Decimal(Decimal128Builder, i8),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Binary(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

impl Column {
    fn new(kind: PgKind, rows: usize) -> Self {
        match kind {
            PgKind::Int2 => Self::Int16(Int16Builder::with_capacity(rows)),
            PgKind::Int4 => Self::Int32(Int32Builder::with_capacity(rows)),
            PgKind::Int8 => Self::Int64(Int64Builder::with_capacity(rows)),
            PgKind::Oid => Self::UInt32(UInt32Builder::with_capacity(rows)),
            PgKind::Float4 => Self::Float32(Float32Builder::with_capacity(rows)),
            PgKind::Float8 => Self::Float64(Float64Builder::with_capacity(rows)),
            PgKind::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
            PgKind::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_data_type(DataType::Decimal128(precision, scale)),
                scale,
            ),
            PgKind::Date => Self::Date(Date32Builder::with_capacity(rows)),
            PgKind::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            PgKind::Timestamp | PgKind::TimestampTz => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_data_type(kind.data_type()),
            ),
            PgKind::Bytea => {
                Self::Binary(BinaryBuilder::with_capacity(rows, rows * TEXT_BYTES_HINT))
            }
            PgKind::Uuid => Self::Uuid(FixedSizeBinaryBuilder::with_capacity(rows, 16)),
            PgKind::Text | PgKind::Json | PgKind::Inet | PgKind::CastText => {
                Self::Utf8(StringBuilder::with_capacity(rows, rows * TEXT_BYTES_HINT))
            }
            PgKind::Jsonb => {
                Self::Jsonb(StringBuilder::with_capacity(rows, rows * TEXT_BYTES_HINT))
            }
            PgKind::NumericText => Self::NumericText(
                StringBuilder::with_capacity(rows, rows * TEXT_BYTES_HINT),
                String::new(),
            ),
        }
    }

    #[inline]
    fn append_null(&mut self) {
        match self {
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::UInt32(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Utf8(b) | Self::Jsonb(b) | Self::NumericText(b, _) => b.append_null(),
            Self::Decimal(b, _) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
        }
    }

    #[inline]
    fn append(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        match self {
            Self::Int16(b) => b.append_value(i16::from_be_bytes(binary::fixed(bytes)?)),
            Self::Int32(b) => b.append_value(i32::from_be_bytes(binary::fixed(bytes)?)),
            Self::Int64(b) => b.append_value(i64::from_be_bytes(binary::fixed(bytes)?)),
            Self::UInt32(b) => b.append_value(u32::from_be_bytes(binary::fixed(bytes)?)),
            Self::Float32(b) => b.append_value(f32::from_be_bytes(binary::fixed(bytes)?)),
            Self::Float64(b) => b.append_value(f64::from_be_bytes(binary::fixed(bytes)?)),
            Self::Bool(b) => b.append_value(binary::fixed::<1>(bytes)?[0] != 0),
            Self::Utf8(b) => b.append_value(std::str::from_utf8(bytes).map_err(|e| e.to_string())?),
            Self::Jsonb(b) => b.append_value(binary::jsonb(bytes)?),
            Self::NumericText(b, scratch) => {
                scratch.clear();
                binary::numeric_text(bytes, scratch)?;
                b.append_value(scratch.as_str());
            }
            Self::Decimal(b, scale) => b.append_value(binary::numeric(bytes, *scale)?),
            Self::Date(b) => b.append_value(binary::date(bytes)?),
            Self::Time(b) => b.append_value(i64::from_be_bytes(binary::fixed(bytes)?)),
            Self::Timestamp(b) => b.append_value(binary::timestamp(bytes)?),
            Self::Binary(b) => b.append_value(bytes),
            Self::Uuid(b) => b
                .append_value(binary::uuid(bytes)?)
                .map_err(|e| e.to_string())?,
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::UInt32(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Utf8(b) | Self::Jsonb(b) | Self::NumericText(b, _) => Arc::new(b.finish()),
            Self::Decimal(b, _) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
        }
    }
}

/// A binary COPY tuple ended before its field `column`.
fn truncated_tuple(column: usize) -> PgError {
    PgError::data(format!(
        "a binary COPY tuple ended inside field {}",
        column + 1
    ))
}

/// Accumulates rows of one query into Arrow arrays, one batch at a time.
///
/// The query's SELECT list must match `kinds` column for column (build it with
/// [`PgKind::select_expr`]), so that cast-to-text columns arrive as text.
pub struct BatchBuilder {
    schema: SchemaRef,
    kinds: Vec<PgKind>,
    columns: Vec<Column>,
    capacity: usize,
    rows: usize,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("columns", &self.kinds)
            .field("rows", &self.rows)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl BatchBuilder {
    /// A builder for `schema`, whose fields are decoded as `kinds`, sized for `capacity` rows.
    pub fn new(schema: SchemaRef, kinds: Vec<PgKind>, capacity: usize) -> Self {
        let columns = kinds.iter().map(|k| Column::new(*k, capacity)).collect();
        Self {
            schema,
            kinds,
            columns,
            capacity,
            rows: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Decodes one row into the builders.
    pub fn append_row(&mut self, row: &PgRow) -> Result<(), PgError> {
        for i in 0..self.columns.len() {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                self.columns[i].append_null();
                continue;
            }
            if raw.format() != PgValueFormat::Binary {
                return Err(PgError::data(format!(
                    "column {:?} arrived in text format; only binary results are decoded",
                    self.schema.field(i).name()
                )));
            }
            let bytes = raw.as_bytes().map_err(|e| PgError::data(e.to_string()))?;
            self.append_value(i, bytes)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Decodes one tuple of a binary `COPY ... TO STDOUT (FORMAT binary)` stream: the
    /// bytes after the tuple's field count, that is per field a big-endian `i32` length
    /// (`-1` for NULL) and that many bytes of the value's binary wire format, the same bytes
    /// a query's binary result carries. Returns the bytes the tuple took.
    pub fn append_copy_tuple(&mut self, fields: &[u8]) -> Result<usize, PgError> {
        let mut at = 0;
        for i in 0..self.columns.len() {
            let len = fields
                .get(at..at + 4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| truncated_tuple(i))?;
            at += 4;
            if len < 0 {
                self.columns[i].append_null();
                continue;
            }
            let end = at + len as usize;
            let bytes = fields.get(at..end).ok_or_else(|| truncated_tuple(i))?;
            self.append_value(i, bytes)?;
            at = end;
        }
        self.rows += 1;
        Ok(at)
    }

    /// Appends the binary value `bytes` to column `i`, naming the column in any error.
    #[inline]
    fn append_value(&mut self, i: usize, bytes: &[u8]) -> Result<(), PgError> {
        self.columns[i].append(bytes).map_err(|e| {
            let field = self.schema.field(i);
            let pg_type = field
                .metadata()
                .get(super::PG_TYPE_METADATA_KEY)
                .cloned()
                .unwrap_or_default();
            match e {
                DecodeError::Unrepresentable(value, reason) => PgError::Unrepresentable {
                    column: field.name().clone(),
                    pg_type,
                    value,
                    reason,
                },
                DecodeError::Invalid(e) => {
                    PgError::data(format!("column {:?} ({pg_type}): {e}", field.name()))
                }
            }
        })
    }

    /// The rows appended so far as one batch, leaving the builder empty and without
    /// reserved capacity (for a builder that is not used again).
    pub fn into_batch(mut self) -> Result<RecordBatch, PgError> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| PgError::data(format!("building a record batch: {e}")))
    }

    /// The rows appended so far as one batch; the builder starts a fresh batch.
    pub fn finish(&mut self) -> Result<RecordBatch, PgError> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        self.rows = 0;
        // Builders keep no capacity after `finish`; reserve again for the next batch.
        self.columns = self
            .kinds
            .iter()
            .map(|k| Column::new(*k, self.capacity))
            .collect();
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
            .map_err(|e| PgError::data(format!("building a record batch: {e}")))
    }
}
