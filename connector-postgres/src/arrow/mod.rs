//! PostgreSQL to Arrow: type mapping and row decoding into record batches.
//!
//! [`PgKind`] decides, per column, how a value is selected and which Arrow type it becomes;
//! [`BatchBuilder`] decodes streamed rows straight from their binary wire bytes into Arrow
//! builders; [`text`] prints key values back as PostgreSQL input text for resumable positions.

mod binary;
mod decode;
pub mod text;
mod types;

pub use decode::BatchBuilder;
pub use types::{PG_TYPE_METADATA_KEY, PgKind, field};
