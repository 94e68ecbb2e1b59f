//! PostgreSQL to Arrow: type mapping and row decoding into record batches.
//!
//! [`PgKind`] decides, per column, how a value is selected and which Arrow type it becomes;
//! [`BatchBuilder`] decodes streamed rows straight from their binary wire bytes into Arrow
//! builders; [`render`] prints Arrow values the way PostgreSQL prints them, so output files
//! read back as the same values; [`text`] prints key values back as PostgreSQL input text for
//! resumable positions.

mod binary;
mod decode;
pub mod render;
pub mod text;
mod types;

pub use decode::BatchBuilder;
pub use types::{
    EXTENSION_METADATA_KEY, EXTENSION_NAME_KEY, NumericMapping, PG_BASE_TYPE_METADATA_KEY,
    PG_TYPE_METADATA_KEY, PgKind, field,
};
