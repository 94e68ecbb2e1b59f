//! Which Arrow type a PostgreSQL column becomes, and how it is selected.
//!
//! The mapping never fails and never changes a value: a type with a native Arrow
//! counterpart is decoded from its binary wire form; everything else (intervals, arrays,
//! ranges, enums, network and geometric types, ...) is selected with a `::text` cast and
//! arrives as `Utf8` holding PostgreSQL's own output text, which reads back as the same
//! value. A domain maps as its base type. Numeric keeps every digit: `Decimal128(p, s)`
//! when the column is bounded and fits (the default, [`NumericMapping::Decimal`]), else its
//! exact text; `NaN` has no decimal representation, so a caller that must hold it asks for
//! [`NumericMapping::Text`].
//!
//! `±infinity` in `date` and `timestamp[tz]` columns arrive as the largest and smallest
//! value of the Arrow type (`i32::MAX`/`i32::MIN` days, `i64::MAX`/`i64::MIN`
//! microseconds), the values PostgreSQL itself stores for them; no finite date or
//! timestamp PostgreSQL accepts comes near them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, TimeUnit};

use crate::error::PgError;
use crate::ident::quote;

/// Field-metadata key holding the PostgreSQL type as `format_type` prints it
/// (`numeric(12,2)`, `timestamp with time zone`, or a domain's own name).
pub const PG_TYPE_METADATA_KEY: &str = "postgres.type";

/// Field-metadata key holding the catalog name of the column's base type
/// (`pg_type.typname` after resolving domains: `numeric`, `timestamptz`, `_int4`, ...).
pub const PG_BASE_TYPE_METADATA_KEY: &str = "postgres.base_type";

/// Field-metadata key of Arrow's extension-type name (`arrow.uuid`, `arrow.json`).
pub const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";

/// Field-metadata key of Arrow's extension-type metadata (empty for the types used here).
pub const EXTENSION_METADATA_KEY: &str = "ARROW:extension:metadata";

/// Largest precision `Decimal128` holds.
const MAX_DECIMAL128_PRECISION: i32 = 38;

/// How `numeric` columns are represented in Arrow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumericMapping {
    /// `numeric(p, s)` with `p <= 38` becomes `Decimal128(p, s)`; unbounded or wider
    /// columns become exact text. A `NaN` in a decimal column cannot be held: reading it
    /// is a data error naming the column.
    #[default]
    Decimal,
    /// Every numeric becomes its exact text, `NaN` included (`"12.50"`, `"NaN"`).
    Text,
}

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
    /// `oid` → `UInt32`.
    Oid,
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
        /// Digits after the decimal point (a column with a negative scale is read at
        /// scale 0, with the extra digits added to the precision).
        scale: i8,
    },
    /// Any other `numeric` → `Utf8` holding the exact value as PostgreSQL prints it.
    NumericText,
    /// `date` → `Date32` (days since 1970-01-01).
    Date,
    /// `time` → `Time64(Microsecond)`.
    Time,
    /// `timestamp` → `Timestamp(Microsecond, None)`.
    Timestamp,
    /// `timestamptz` → `Timestamp(Microsecond, "UTC")`.
    TimestampTz,
    /// `bytea` → `Binary`.
    Bytea,
    /// `uuid` → `FixedSizeBinary(16)`, extension type `arrow.uuid`.
    Uuid,
    /// `json` → `Utf8` (the exact text), extension type `arrow.json`.
    Json,
    /// `jsonb` → `Utf8` (PostgreSQL's text form), extension type `arrow.json`.
    Jsonb,
    /// `inet` → `Utf8` as its output function prints it (`abbrev(column)`: the explicit
    /// cast to text would add `/32` to a host address).
    Inet,
    /// Anything else, selected as `column::text` → `Utf8`.
    CastText,
}

impl PgKind {
    /// The decoding for a column whose base type is `type_name` (`pg_type.typname`) with
    /// `typmod`, under the default numeric mapping.
    pub fn from_pg(type_name: &str, typmod: i32) -> Self {
        Self::from_pg_with(type_name, typmod, NumericMapping::default())
    }

    /// The decoding for a column whose base type is `type_name` with `typmod`.
    pub fn from_pg_with(type_name: &str, typmod: i32, numeric: NumericMapping) -> Self {
        match type_name {
            "int2" => Self::Int2,
            "int4" => Self::Int4,
            "int8" => Self::Int8,
            "oid" => Self::Oid,
            "float4" => Self::Float4,
            "float8" => Self::Float8,
            "bool" => Self::Bool,
            "text" | "varchar" | "bpchar" | "name" => Self::Text,
            "numeric" => match numeric {
                NumericMapping::Decimal => numeric_kind(typmod),
                NumericMapping::Text => Self::NumericText,
            },
            "date" => Self::Date,
            "time" => Self::Time,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::TimestampTz,
            "bytea" => Self::Bytea,
            "uuid" => Self::Uuid,
            "json" => Self::Json,
            "jsonb" => Self::Jsonb,
            "inet" => Self::Inet,
            _ => Self::CastText,
        }
    }

    /// The Arrow type this column becomes.
    pub fn data_type(self) -> DataType {
        match self {
            Self::Int2 => DataType::Int16,
            Self::Int4 => DataType::Int32,
            Self::Int8 => DataType::Int64,
            Self::Oid => DataType::UInt32,
            Self::Float4 => DataType::Float32,
            Self::Float8 => DataType::Float64,
            Self::Bool => DataType::Boolean,
            Self::Text
            | Self::NumericText
            | Self::Json
            | Self::Jsonb
            | Self::Inet
            | Self::CastText => DataType::Utf8,
            Self::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            Self::Date => DataType::Date32,
            Self::Time => DataType::Time64(TimeUnit::Microsecond),
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            Self::Bytea => DataType::Binary,
            Self::Uuid => DataType::FixedSizeBinary(16),
        }
    }

    /// The Arrow extension type this column carries, if any.
    pub fn extension_name(self) -> Option<&'static str> {
        match self {
            Self::Uuid => Some("arrow.uuid"),
            Self::Json | Self::Jsonb => Some("arrow.json"),
            _ => None,
        }
    }

    /// The SELECT-list expression for a column: the quoted name, cast to text when needed,
    /// keeping the column's own name in the result.
    pub fn select_expr(self, column: &str) -> Result<String, PgError> {
        let quoted = quote(column)?;
        Ok(match self {
            Self::CastText => format!("{quoted}::text AS {quoted}"),
            Self::Inet => format!("abbrev({quoted}) AS {quoted}"),
            _ => quoted,
        })
    }
}

/// `numeric(p, s)` typmods are `((p << 16) | (s & 0x7ff)) + 4`; `-1` means unbounded.
fn numeric_kind(typmod: i32) -> PgKind {
    if typmod < 4 {
        return PgKind::NumericText;
    }
    let packed = typmod - 4;
    let precision = (packed >> 16) & 0xffff;
    // The scale is an 11-bit two's-complement field (negative scales since PostgreSQL 15).
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    // A negative scale rounds to tens, hundreds, ...: the same integers at scale 0 need
    // that many more digits (Parquet, like most readers, has no negative scale).
    let (precision, scale) = if scale < 0 {
        (precision - scale, 0)
    } else {
        (precision, scale)
    };
    let fits = (1..=MAX_DECIMAL128_PRECISION).contains(&precision) && scale <= precision;
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(precision), Ok(scale)) if fits => PgKind::Decimal { precision, scale },
        _ => PgKind::NumericText,
    }
}

/// One Arrow field for a column, nullable as the catalog says, with its PostgreSQL type
/// and base type recorded in the field metadata ([`PG_TYPE_METADATA_KEY`],
/// [`PG_BASE_TYPE_METADATA_KEY`]) and Arrow's extension type where one exists.
pub fn field(name: &str, kind: PgKind, pg_type: &str, base_type: &str, nullable: bool) -> Field {
    let mut metadata = HashMap::from([
        (PG_TYPE_METADATA_KEY.to_owned(), pg_type.to_owned()),
        (PG_BASE_TYPE_METADATA_KEY.to_owned(), base_type.to_owned()),
    ]);
    if let Some(extension) = kind.extension_name() {
        metadata.insert(EXTENSION_NAME_KEY.to_owned(), extension.to_owned());
        if kind != PgKind::Uuid {
            // `arrow.json` requires the metadata key to be present, even when empty.
            metadata.insert(EXTENSION_METADATA_KEY.to_owned(), String::new());
        }
    }
    Field::new(name, kind.data_type(), nullable).with_metadata(metadata)
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
        assert_eq!(
            PgKind::from_pg("time", -1).data_type(),
            DataType::Time64(TimeUnit::Microsecond)
        );
        assert_eq!(
            PgKind::from_pg("uuid", -1).data_type(),
            DataType::FixedSizeBinary(16)
        );
        assert_eq!(PgKind::from_pg("oid", -1).data_type(), DataType::UInt32);
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
                precision: 7,
                scale: 0
            }
        );
        assert_eq!(
            PgKind::from_pg("numeric", typmod(37, -2)),
            PgKind::NumericText
        );
        assert_eq!(PgKind::from_pg("numeric", -1), PgKind::NumericText);
        assert_eq!(
            PgKind::from_pg("numeric", typmod(60, 2)),
            PgKind::NumericText
        );
        assert_eq!(
            PgKind::from_pg("numeric", typmod(2, 5)),
            PgKind::NumericText
        );
        assert_eq!(
            PgKind::from_pg_with("numeric", typmod(12, 2), NumericMapping::Text),
            PgKind::NumericText
        );
    }

    #[test]
    fn other_types_are_cast_to_text() {
        for name in [
            "_int4",
            "interval",
            "my_enum",
            "timetz",
            "cidr",
            "int4range",
        ] {
            let kind = PgKind::from_pg(name, -1);
            assert_eq!(kind, PgKind::CastText, "{name}");
            assert_eq!(kind.select_expr("a b").unwrap(), "\"a b\"::text AS \"a b\"");
        }
        assert_eq!(PgKind::Int4.select_expr("id").unwrap(), "\"id\"");
        assert_eq!(PgKind::Jsonb.select_expr("j").unwrap(), "\"j\"");
        assert_eq!(
            PgKind::from_pg("inet", -1).select_expr("ip").unwrap(),
            "abbrev(\"ip\") AS \"ip\""
        );
    }

    #[test]
    fn fields_carry_the_types_and_extensions() {
        let f = field("u", PgKind::Uuid, "uuid", "uuid", true);
        assert_eq!(f.metadata()[EXTENSION_NAME_KEY], "arrow.uuid");
        assert_eq!(f.metadata()[PG_TYPE_METADATA_KEY], "uuid");
        let f = field("m", PgKind::NumericText, "money_domain", "numeric", false);
        assert_eq!(f.metadata()[PG_BASE_TYPE_METADATA_KEY], "numeric");
        assert!(!f.metadata().contains_key(EXTENSION_NAME_KEY));
    }
}
