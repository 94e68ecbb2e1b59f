//! Which Arrow type a PostgreSQL column becomes, and how it is selected.
//!
//! The mapping never fails: a type without a native Arrow counterpart (uuid, json, arrays,
//! enums, domains, intervals, ...) is selected with a `::text` cast and arrives as `Utf8`,
//! so a new column type in a source table degrades to text instead of breaking a pipeline.
//! Numeric keeps its precision: `Decimal128(p, s)` when it fits, text when unbounded.

use std::sync::Arc;

use arrow_schema::{DataType, Field, TimeUnit};

use crate::PgError;
use crate::ident::quote;

/// Field-metadata key holding the PostgreSQL type as `format_type` prints it.
pub const PG_TYPE_METADATA_KEY: &str = "postgres.type";

/// Largest precision `Decimal128` holds.
const MAX_DECIMAL128_PRECISION: i32 = 38;

/// How one column is decoded: the native binary decoders, or text for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgKind {
    /// `int2` → `Int16`.
    Int2,
    /// `int4` → `Int32`.
    Int4,
    /// `int8` → `Int64`.
    Int8,
    /// `float4` → `Float32`.
    Float4,
    /// `float8` → `Float64`.
    Float8,
    /// `bool` → `Boolean`.
    Bool,
    /// `text`, `varchar`, `bpchar`, `name` → `Utf8`.
    Text,
    /// `numeric(p, s)` with `p <= 38` → `Decimal128(p, s)`.
    Decimal {
        /// Total significant digits.
        precision: u8,
        /// Digits after the decimal point (negative rounds to tens, hundreds, ...).
        scale: i8,
    },
    /// `date` → `Date32` (days since 1970-01-01).
    Date,
    /// `timestamp` → `Timestamp(Microsecond, None)`.
    Timestamp,
    /// `timestamptz` → `Timestamp(Microsecond, "UTC")`.
    TimestampTz,
    /// `bytea` → `Binary`.
    Bytea,
    /// Anything else, selected as `column::text` → `Utf8`.
    CastText,
}

impl PgKind {
    /// The decoding for a column of type `type_name` (`pg_type.typname`) and `typmod`.
    pub fn from_pg(type_name: &str, typmod: i32) -> Self {
        match type_name {
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "float4" => Self::Float4,
            "float8" => Self::Float8,
            "bool" => Self::Bool,
            "text" | "varchar" | "bpchar" | "name" => Self::Text,
            "numeric" => numeric_kind(typmod),
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::TimestampTz,
            "bytea" => Self::Bytea,
            _ => Self::CastText,
        }
    }

    /// The Arrow type this column becomes.
    pub fn data_type(self) -> DataType {
        match self {
            Self::Int2 => DataType::Int16,
            Self::Int4 => DataType::Int32,
            Self::Int8 => DataType::Int64,
            Self::Float4 => DataType::Float32,
            Self::Float8 => DataType::Float64,
            Self::Bool => DataType::Boolean,
            Self::Text | Self::CastText => DataType::Utf8,
            Self::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            Self::Bytea => DataType::Binary,
        }
    }

    /// The SELECT-list expression for a column: the quoted name, cast to text when needed,
    /// keeping the column's own name in the result.
    pub fn select_expr(self, column: &str) -> Result<String, PgError> {
        let quoted = quote(column)?;
        Ok(match self {
            Self::CastText => format!("{quoted}::text AS {quoted}"),
            _ => quoted,
        })
    }
}

/// `numeric(p, s)` typmods are `((p << 16) | (s & 0x7ff)) + 4`; `-1` means unbounded.
fn numeric_kind(typmod: i32) -> PgKind {
    if typmod < 4 {
        return PgKind::CastText;
    }
    let packed = typmod - 4;
    let precision = (packed >> 16) & 0xffff;
    // The scale is an 11-bit two's-complement field (negative scales since PostgreSQL 15).
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    let fits = (1..=MAX_DECIMAL128_PRECISION).contains(&precision)
        && scale <= precision
        && scale >= -MAX_DECIMAL128_PRECISION;
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(precision), Ok(scale)) if fits => PgKind::Decimal { precision, scale },
        _ => PgKind::CastText,
    }
}

/// One Arrow field for a column, nullable as the catalog says, with its PostgreSQL type
/// recorded in the field metadata under [`PG_TYPE_METADATA_KEY`].
pub fn field(name: &str, kind: PgKind, pg_type: &str, nullable: bool) -> Field {
    Field::new(name, kind.data_type(), nullable).with_metadata([(PG_TYPE_METADATA_KEY, pg_type)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | (scale & 0x7ff)) + 4
    }

    #[test]
    fn scalar_types_map_natively() {
        assert_eq!(PgKind::from_pg("int8", -1).data_type(), DataType::Int64);
        assert_eq!(PgKind::from_pg("bpchar", 14).data_type(), DataType::Utf8);
        assert_eq!(
            PgKind::from_pg("timestamptz", -1).data_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(PgKind::from_pg("date", -1).data_type(), DataType::Date32);
    }

    #[test]
    fn numeric_keeps_precision_or_falls_back_to_text() {
        assert_eq!(
            PgKind::from_pg("numeric", typmod(12, 2)),
            PgKind::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            PgKind::from_pg("numeric", typmod(5, -2)),
            PgKind::Decimal {
                precision: 5,
                scale: -2
            }
        );
        assert_eq!(PgKind::from_pg("numeric", -1), PgKind::CastText);
        assert_eq!(PgKind::from_pg("numeric", typmod(60, 2)), PgKind::CastText);
        assert_eq!(PgKind::from_pg("numeric", typmod(2, 5)), PgKind::CastText);
    }

    #[test]
    fn unknown_types_are_cast_to_text() {
        for name in ["uuid", "jsonb", "json", "_int4", "interval", "my_enum"] {
            let kind = PgKind::from_pg(name, -1);
            assert_eq!(kind, PgKind::CastText, "{name}");
            assert_eq!(kind.select_expr("a b").unwrap(), "\"a b\"::text AS \"a b\"");
        }
        assert_eq!(PgKind::Int4.select_expr("id").unwrap(), "\"id\"");
    }
}
