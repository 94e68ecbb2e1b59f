//! Arrow values printed the way PostgreSQL prints them.
//!
//! A value read from PostgreSQL must leave as the same value, so output goes through
//! PostgreSQL's own syntax rather than Arrow's display: [`Syntax::Text`] is what the type's
//! output function prints with ISO dates in UTC (what `COPY ... TO` writes, and what every
//! input function reads back as the same value: `0044-03-15 BC`, `infinity`, `\xdeadbeef`,
//! `1e+300`, `-0`, `NaN`); [`Syntax::Json`] differs only where `to_json` does, in the
//! timestamps (`2024-01-01T12:00:00+00:00`) and booleans (`true`). Floats print their
//! shortest exact digits with PostgreSQL's switch to exponents, so a printed float reads
//! back bit for bit.
//!
//! [`Column`] binds one array for printing row by row into a byte buffer, without
//! allocating per value.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Time64MicrosecondType, TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, PrimitiveArray, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, TimeUnit};

use super::types::{EXTENSION_NAME_KEY, PG_BASE_TYPE_METADATA_KEY};

mod float;
mod scalar;
mod temporal;

use scalar::write_int;
pub use scalar::{write_bytea, write_decimal, write_f32, write_f64, write_uuid};
pub(crate) use temporal::days_from_civil;
pub use temporal::{write_date, write_time, write_timestamp};

/// Which of PostgreSQL's two renderings of a value to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// The type's output function with ISO dates in UTC, as `COPY ... TO` writes it.
    Text,
    /// As `to_json` writes it (timestamps with `T` and `+00:00`, `true` / `false`); the
    /// caller quotes it as [`Column::json_shape`] says.
    Json,
}

/// How a value sits in a JSON document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonShape {
    /// A JSON number, printed as is.
    Number,
    /// `true` or `false`, printed as is.
    Bool,
    /// A JSON document (`json`, `jsonb`), embedded as is.
    Json,
    /// A JSON string: the printed text, quoted and escaped.
    String,
}

/// One array, ready to print row by row.
#[derive(Debug)]
pub struct Column<'a> {
    array: &'a dyn Array,
    values: Values<'a>,
}

#[derive(Debug)]
enum Values<'a> {
    Int8(&'a PrimitiveArray<Int8Type>),
    Int16(&'a PrimitiveArray<Int16Type>),
    Int32(&'a PrimitiveArray<Int32Type>),
    Int64(&'a PrimitiveArray<Int64Type>),
    UInt8(&'a PrimitiveArray<UInt8Type>),
    UInt16(&'a PrimitiveArray<UInt16Type>),
    UInt32(&'a PrimitiveArray<UInt32Type>),
    UInt64(&'a PrimitiveArray<UInt64Type>),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Bool(&'a BooleanArray),
    Utf8(&'a StringArray, TextKind),
    Decimal(&'a Decimal128Array, i8),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray, bool),
    Binary(&'a BinaryArray),
    Uuid(&'a FixedSizeBinaryArray),
}

/// What a `Utf8` column holds, from its field metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextKind {
    Plain,
    Numeric,
    Json,
}

impl<'a> Column<'a> {
    /// Binds `array`, described by `field` (whose metadata says when a `Utf8` column holds
    /// numeric or JSON text). An Arrow type PostgreSQL values never arrive as is refused
    /// with a message naming it.
    pub fn new(array: &'a dyn Array, field: &Field) -> Result<Self, String> {
        let values = match array.data_type() {
            DataType::Int8 => Values::Int8(array.as_primitive()),
            DataType::Int16 => Values::Int16(array.as_primitive()),
            DataType::Int32 => Values::Int32(array.as_primitive()),
            DataType::Int64 => Values::Int64(array.as_primitive()),
            DataType::UInt8 => Values::UInt8(array.as_primitive()),
            DataType::UInt16 => Values::UInt16(array.as_primitive()),
            DataType::UInt32 => Values::UInt32(array.as_primitive()),
            DataType::UInt64 => Values::UInt64(array.as_primitive()),
            DataType::Float32 => Values::Float32(array.as_primitive::<Float32Type>()),
            DataType::Float64 => Values::Float64(array.as_primitive::<Float64Type>()),
            DataType::Boolean => Values::Bool(array.as_boolean()),
            DataType::Utf8 => Values::Utf8(array.as_string::<i32>(), text_kind(field)),
            DataType::Decimal128(_, scale) => {
                Values::Decimal(array.as_primitive::<Decimal128Type>(), *scale)
            }
            DataType::Date32 => Values::Date(array.as_primitive::<Date32Type>()),
            DataType::Time64(TimeUnit::Microsecond) => {
                Values::Time(array.as_primitive::<Time64MicrosecondType>())
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Values::Timestamp(
                array.as_primitive::<TimestampMicrosecondType>(),
                tz.is_some(),
            ),
            DataType::Binary => Values::Binary(array.as_binary::<i32>()),
            DataType::FixedSizeBinary(16) if is_uuid(field) => {
                Values::Uuid(array.as_fixed_size_binary())
            }
            other => {
                return Err(format!(
                    "column {:?} has Arrow type {other}, which has no PostgreSQL text form here",
                    field.name()
                ));
            }
        };
        Ok(Self { array, values })
    }

    /// Whether the value at `row` is NULL.
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.array.is_null(row)
    }

    /// Whether a printed value may need quoting in CSV (may be empty or hold separators,
    /// quotes or line breaks): only text does; numbers (numeric text included), dates and
    /// the like never do.
    pub fn may_need_quotes(&self) -> bool {
        matches!(
            self.values,
            Values::Utf8(_, TextKind::Plain | TextKind::Json)
        )
    }

    /// Prints the (non-NULL) value at `row` in `syntax`.
    #[inline]
    pub fn write(&self, row: usize, syntax: Syntax, out: &mut Vec<u8>) {
        match &self.values {
            Values::Int8(a) => write_int(out, a.value(row)),
            Values::Int16(a) => write_int(out, a.value(row)),
            Values::Int32(a) => write_int(out, a.value(row)),
            Values::Int64(a) => write_int(out, a.value(row)),
            Values::UInt8(a) => write_int(out, a.value(row)),
            Values::UInt16(a) => write_int(out, a.value(row)),
            Values::UInt32(a) => write_int(out, a.value(row)),
            Values::UInt64(a) => write_int(out, a.value(row)),
            Values::Float32(a) => write_f32(out, a.value(row)),
            Values::Float64(a) => write_f64(out, a.value(row)),
            Values::Bool(a) => out.extend_from_slice(match (a.value(row), syntax) {
                (true, Syntax::Text) => b"t",
                (false, Syntax::Text) => b"f",
                (true, Syntax::Json) => b"true",
                (false, Syntax::Json) => b"false",
            }),
            Values::Utf8(a, _) => out.extend_from_slice(a.value(row).as_bytes()),
            Values::Decimal(a, scale) => write_decimal(out, a.value(row), *scale),
            Values::Date(a) => write_date(out, a.value(row)),
            Values::Time(a) => write_time(out, a.value(row)),
            Values::Timestamp(a, tz) => write_timestamp(out, a.value(row), *tz, syntax),
            Values::Binary(a) => write_bytea(out, a.value(row)),
            Values::Uuid(a) => write_uuid(out, a.value(row)),
        }
    }

    /// How the (non-NULL) value at `row` sits in JSON: numbers as numbers (a float or
    /// numeric `NaN` or infinity as a string, as `to_json` writes them), `json` and
    /// `jsonb` embedded, booleans as booleans, everything else as a string.
    #[inline]
    pub fn json_shape(&self, row: usize) -> JsonShape {
        match &self.values {
            Values::Int8(_)
            | Values::Int16(_)
            | Values::Int32(_)
            | Values::Int64(_)
            | Values::UInt8(_)
            | Values::UInt16(_)
            | Values::UInt32(_)
            | Values::UInt64(_)
            | Values::Decimal(..) => JsonShape::Number,
            Values::Float32(a) if a.value(row).is_finite() => JsonShape::Number,
            Values::Float64(a) if a.value(row).is_finite() => JsonShape::Number,
            Values::Bool(_) => JsonShape::Bool,
            Values::Utf8(_, TextKind::Json) => JsonShape::Json,
            Values::Utf8(a, TextKind::Numeric) => match a.value(row) {
                "NaN" | "Infinity" | "-Infinity" => JsonShape::String,
                _ => JsonShape::Number,
            },
            _ => JsonShape::String,
        }
    }
}

fn text_kind(field: &Field) -> TextKind {
    let metadata = field.metadata();
    if metadata.get(EXTENSION_NAME_KEY).map(String::as_str) == Some("arrow.json") {
        TextKind::Json
    } else if metadata.get(PG_BASE_TYPE_METADATA_KEY).map(String::as_str) == Some("numeric") {
        TextKind::Numeric
    } else {
        TextKind::Plain
    }
}

fn is_uuid(field: &Field) -> bool {
    field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str) == Some("arrow.uuid")
}
