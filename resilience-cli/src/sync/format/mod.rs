//! Output formats: Arrow record batches into CSV, JSON lines or Parquet files whose values
//! read back as the values that were in the database.
//!
//! Every value goes out in PostgreSQL's own syntax ([`connector_postgres::arrow::render`]),
//! never Arrow's display form, so that PostgreSQL (or any standard reader) reads back the
//! same value:
//! - [`csv`]: exactly what `COPY ... TO (FORMAT csv, HEADER)` writes under ISO dates and
//!   UTC: NULL is an empty field, the empty string is `""`;
//! - [`jsonl`]: one object per line, each value as `to_json` renders it, except that types
//!   JSON has no form for (arrays, ranges, intervals, ...) are strings of their PostgreSQL
//!   text;
//! - [`parquet`]: the Arrow schema as is (decimals, dates, UTC timestamps, UUID and JSON
//!   logical types), zstd-compressed, row groups bounded in memory.
//!
//! The README's table lists the encoding of every type in every format.

pub mod csv;
pub mod jsonl;
pub mod parquet;

use std::fs::File;
use std::io::BufWriter;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::args::Format;

/// Bytes buffered between the encoder and the file.
const FILE_BUFFER: usize = 256 * 1024;

/// Why a batch could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Writing to the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A column cannot be written in this format (named in the message).
    #[error("{0}")]
    Unsupported(String),
    /// The batch does not have the columns the file was started with.
    #[error("{0}")]
    SchemaChanged(String),
    /// The Parquet writer failed.
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
}

/// An encoder writing one file.
pub trait BatchWriter: Send {
    /// Appends the rows of `batch`.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError>;
    /// Ends the file (footer, buffered rows) and hands back the flushed file.
    fn finish(self: Box<Self>) -> Result<File, FormatError>;
}

/// Starts a file of `format` holding batches of `schema`.
pub fn writer(
    format: Format,
    file: File,
    schema: &SchemaRef,
) -> Result<Box<dyn BatchWriter>, FormatError> {
    let out = BufWriter::with_capacity(FILE_BUFFER, file);
    Ok(match format {
        Format::Csv => Box::new(csv::CsvWriter::new(out, schema)?),
        Format::Jsonl => Box::new(jsonl::JsonlWriter::new(out, schema)?),
        Format::Parquet => Box::new(parquet::ParquetWriter::new(out, schema)?),
    })
}

/// Refuses a batch whose columns differ from the file's (the table changed mid-run).
fn check_schema(file: &SchemaRef, batch: &RecordBatch) -> Result<(), FormatError> {
    let same = file.fields().len() == batch.num_columns()
        && file
            .fields()
            .iter()
            .zip(batch.schema_ref().fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same {
        Ok(())
    } else {
        Err(FormatError::SchemaChanged(
            "the table's columns changed during the run (the file was started with other \
             columns); run again to write a file with the new columns"
                .into(),
        ))
    }
}

/// The columns of `batch` bound for printing.
fn columns<'a>(
    schema: &'a SchemaRef,
    batch: &'a RecordBatch,
) -> Result<Vec<connector_postgres::arrow::render::Column<'a>>, FormatError> {
    batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| {
            connector_postgres::arrow::render::Column::new(array.as_ref(), field)
                .map_err(FormatError::Unsupported)
        })
        .collect()
}

/// Refuses, before a file is started, a column `format` cannot write: the text formats
/// write the types [`connector_postgres::arrow::render`] prints (the integers, floats,
/// booleans, text, decimals, dates, times, microsecond timestamps, binary and UUID an API
/// or a database yields), Parquet every type its Arrow writer maps. The message names
/// the column and its Arrow type.
pub fn check_types(format: Format, schema: &SchemaRef) -> Result<(), String> {
    for field in schema.fields() {
        match format {
            Format::Csv | Format::Jsonl => {
                let empty = arrow_array::new_empty_array(field.data_type());
                connector_postgres::arrow::render::Column::new(empty.as_ref(), field)?;
            }
            Format::Parquet => {
                let one = arrow_schema::Schema::new(vec![field.clone()]);
                ::parquet::arrow::ArrowSchemaConverter::new()
                    .convert(&one)
                    .map_err(|e| {
                        format!(
                            "column {:?} has Arrow type {}, which parquet cannot hold: {e}",
                            field.name(),
                            field.data_type()
                        )
                    })?;
            }
        }
    }
    Ok(())
}
