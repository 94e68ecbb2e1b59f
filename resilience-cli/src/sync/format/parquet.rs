//! Parquet through the `parquet` crate of arrow-rs.
//!
//! The Arrow schema goes into the file as is (and is recorded in its metadata, field
//! metadata included: `postgres.type` names each column's PostgreSQL type), so readers see
//! logical types they understand: `DECIMAL(p, s)` for bounded numerics, `DATE`,
//! `TIME(MICROS)`, `TIMESTAMP(MICROS)` adjusted to UTC for `timestamptz`, `UUID`, `JSON`,
//! `STRING` for text and for types Parquet has no form for. Pages are zstd-compressed, and a
//! row group is closed at [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] encoded bytes,
//! whichever comes first, which bounds the memory the writer holds.

use std::fs::File;
use std::io::BufWriter;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{BatchWriter, FormatError, check_schema};

/// Most rows in one row group.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;
/// Most encoded bytes held for one row group before it is written out.
pub const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// zstd's level: its default, a good ratio at several hundred MB/s.
const ZSTD_LEVEL: i32 = 3;

/// A Parquet file being written.
pub struct ParquetWriter {
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
}

impl ParquetWriter {
    /// Starts the file.
    pub fn new(out: BufWriter<File>, schema: &SchemaRef) -> Result<Self, FormatError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_created_by(format!("resilient {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            writer: ArrowWriter::try_new(out, schema.clone(), Some(props))?,
            schema: schema.clone(),
        })
    }
}

impl BatchWriter for ParquetWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        check_schema(&self.schema, batch)?;
        self.writer.write(batch)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<File, FormatError> {
        let out = self.writer.into_inner()?;
        out.into_inner().map_err(|e| e.into_error().into())
    }
}
