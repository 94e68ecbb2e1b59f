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

use super::float;
use super::types::{EXTENSION_NAME_KEY, PG_BASE_TYPE_METADATA_KEY};

const MICROS_PER_DAY: i64 = 86_400_000_000;

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
    /// quotes or line breaks): only text does; numbers, dates and the like never do.
    pub fn is_text(&self) -> bool {
        matches!(self.values, Values::Utf8(..))
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

#[inline]
fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A `float8` as PostgreSQL prints it: the shortest digits that read back exactly (never a
/// decimal halfway between two floats), fixed notation for decimal exponents in `-4..15`,
/// else `d.ddde+XX`; `NaN`, `Infinity`, `-Infinity`, `-0`.
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    if !write_special(
        out,
        value.is_nan(),
        value.is_infinite(),
        value.is_sign_negative(),
        value == 0.0,
    ) {
        float::write(out, value.abs(), value.is_sign_negative());
    }
}

/// A `float4` as PostgreSQL prints it: as [`write_f64`], fixed notation for exponents in
/// `-4..6`.
pub fn write_f32(out: &mut Vec<u8>, value: f32) {
    if !write_special(
        out,
        value.is_nan(),
        value.is_infinite(),
        value.is_sign_negative(),
        value == 0.0,
    ) {
        float::write(out, value.abs(), value.is_sign_negative());
    }
}

/// `NaN`, `±Infinity` and `±0`; `false` for any other value.
fn write_special(out: &mut Vec<u8>, nan: bool, infinite: bool, negative: bool, zero: bool) -> bool {
    let text: &[u8] = match (nan, infinite, zero, negative) {
        (true, ..) => b"NaN",
        (_, true, _, false) => b"Infinity",
        (_, true, _, true) => b"-Infinity",
        (_, _, true, false) => b"0",
        (_, _, true, true) => b"-0",
        _ => return false,
    };
    out.extend_from_slice(text);
    true
}

/// A scaled integer as decimal text: `1234567` at scale 2 is `12345.67`; a negative scale
/// appends zeros (`12` at scale -2 is `1200`).
pub fn write_decimal(out: &mut Vec<u8>, value: i128, scale: i8) {
    if value < 0 {
        out.push(b'-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value.unsigned_abs()).as_bytes();
    let scale = i32::from(scale);
    if scale <= 0 {
        out.extend_from_slice(digits);
        if value != 0 {
            out.resize(out.len() + (-scale) as usize, b'0');
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - digits.len(), b'0');
        out.extend_from_slice(digits);
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (`YYYY-MM-DD BC` before year 1), or
/// `infinity` / `-infinity` for `i32::MAX` / `i32::MIN`.
pub fn write_date(out: &mut Vec<u8>, days: i32) {
    match days {
        i32::MAX => out.extend_from_slice(b"infinity"),
        i32::MIN => out.extend_from_slice(b"-infinity"),
        _ => {
            let bc = write_ymd(out, i64::from(days));
            if bc {
                out.extend_from_slice(b" BC");
            }
        }
    }
}

/// Microseconds since midnight as `HH:MM:SS[.ffffff]` (`24:00:00` is a valid `time`).
pub fn write_time(out: &mut Vec<u8>, micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    two_digits(out, secs / 3600);
    out.push(b':');
    two_digits(out, secs / 60 % 60);
    out.push(b':');
    two_digits(out, secs % 60);
    write_fraction(out, micros.rem_euclid(1_000_000));
}

/// Microseconds since 1970-01-01 as `YYYY-MM-DD HH:MM:SS[.ffffff]`, with `+00` when the
/// value is a UTC instant (`timestamptz`), ` BC` before year 1, or `infinity` /
/// `-infinity` for `i64::MAX` / `i64::MIN`. In [`Syntax::Json`]: `T` between date and
/// time, and `+00:00`.
pub fn write_timestamp(out: &mut Vec<u8>, micros: i64, utc: bool, syntax: Syntax) {
    match micros {
        i64::MAX => return out.extend_from_slice(b"infinity"),
        i64::MIN => return out.extend_from_slice(b"-infinity"),
        _ => {}
    }
    let days = micros.div_euclid(MICROS_PER_DAY);
    let bc = write_ymd(out, days);
    out.push(match syntax {
        Syntax::Text => b' ',
        Syntax::Json => b'T',
    });
    write_time(out, micros.rem_euclid(MICROS_PER_DAY));
    if utc {
        out.extend_from_slice(match syntax {
            Syntax::Text => b"+00",
            Syntax::Json => b"+00:00",
        });
    }
    if bc {
        out.extend_from_slice(b" BC");
    }
}

/// `\x` and the bytes in lower-case hex (`bytea_output = hex`).
pub fn write_bytea(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + 2 * bytes.len());
    out.extend_from_slice(b"\\x");
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// A UUID in its canonical lower-case 8-4-4-4-12 form.
pub fn write_uuid(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// `YYYY-MM-DD` for days since 1970-01-01 (the year as PostgreSQL counts it: 1 BC is
/// year 0 in the proleptic Gregorian count); returns whether the date is BC.
fn write_ymd(out: &mut Vec<u8>, days: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    let bc = year <= 0;
    let year = if bc { 1 - year } else { year };
    if year < 1000 {
        out.resize(out.len() + 4 - digit_count(year), b'0');
    }
    write_int(out, year);
    out.push(b'-');
    two_digits(out, i64::from(month));
    out.push(b'-');
    two_digits(out, i64::from(day));
    bc
}

fn digit_count(n: i64) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        _ => 4,
    }
}

#[inline]
fn two_digits(out: &mut Vec<u8>, n: i64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// `.ffffff` without trailing zeros; nothing for a whole second.
fn write_fraction(out: &mut Vec<u8>, micros: i64) {
    if micros == 0 {
        return;
    }
    let mut digits = [b'0'; 6];
    let mut rest = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut end = 6;
    while digits[end - 1] == b'0' {
        end -= 1;
    }
    out.push(b'.');
    out.extend_from_slice(&digits[..end]);
}

/// Proleptic Gregorian date for days since 1970-01-01 (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_print_as_postgres_does() {
        for (value, want) in [
            (1e14, "100000000000000"),
            (1e15, "1e+15"),
            (1.5e15, "1.5e+15"),
            (123_456_789_012_345.6, "123456789012345.6"),
            (1_234_567_890_123_456.7, "1.2345678901234568e+15"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (100.0, "100"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(show(|o| write_f64(o, value)), want, "{value:e}");
        }
        for (value, want) in [
            (100_000.0f32, "100000"),
            (1e6, "1e+06"),
            (1_234_567.8, "1.2345678e+06"),
            (1e-45, "1e-45"),
            (3.402_823_5e38, "3.4028235e+38"),
            (1.0 / 3.0, "0.33333334"),
        ] {
            assert_eq!(show(|o| write_f32(o, value)), want, "{value:e}");
        }
    }

    #[test]
    fn dates_and_times_print_as_postgres_does() {
        assert_eq!(show(|o| write_date(o, 0)), "1970-01-01");
        assert_eq!(show(|o| write_date(o, -719_163)), "0001-12-31 BC");
        assert_eq!(show(|o| write_date(o, -719_162)), "0001-01-01");
        assert_eq!(show(|o| write_date(o, 2_932_896)), "9999-12-31");
        assert_eq!(show(|o| write_date(o, 2_932_897)), "10000-01-01");
        assert_eq!(show(|o| write_date(o, i32::MAX)), "infinity");
        assert_eq!(show(|o| write_date(o, i32::MIN)), "-infinity");
        assert_eq!(show(|o| write_time(o, 86_400_000_000)), "24:00:00");
        assert_eq!(show(|o| write_time(o, 1_500_000)), "00:00:01.5");
        let micros = 1_709_164_800_123_456; // 2024-02-29 00:00:00.123456
        assert_eq!(
            show(|o| write_timestamp(o, micros, false, Syntax::Text)),
            "2024-02-29 00:00:00.123456"
        );
        assert_eq!(
            show(|o| write_timestamp(o, micros, true, Syntax::Json)),
            "2024-02-29T00:00:00.123456+00:00"
        );
        // 0044-03-15 12:00:01.5 BC
        let bc = days_from_civil(-43, 3, 15) * MICROS_PER_DAY + 43_201_500_000;
        assert_eq!(
            show(|o| write_timestamp(o, bc, true, Syntax::Text)),
            "0044-03-15 12:00:01.5+00 BC"
        );
        assert_eq!(
            show(|o| write_timestamp(o, i64::MIN, true, Syntax::Json)),
            "-infinity"
        );
    }

    #[test]
    fn decimals_bytes_and_uuids() {
        assert_eq!(show(|o| write_decimal(o, 1_234_567, 2)), "12345.67");
        assert_eq!(show(|o| write_decimal(o, -5, 2)), "-0.05");
        assert_eq!(show(|o| write_decimal(o, 0, 3)), "0.000");
        assert_eq!(show(|o| write_decimal(o, 12, -2)), "1200");
        assert_eq!(show(|o| write_decimal(o, 0, -2)), "0");
        assert_eq!(
            show(|o| write_decimal(o, i128::MIN + 1, 0)),
            (i128::MIN + 1).to_string()
        );
        assert_eq!(show(|o| write_bytea(o, &[0xde, 0xad, 0x00])), "\\xdead00");
        assert_eq!(show(|o| write_bytea(o, &[])), "\\x");
        let uuid = [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        assert_eq!(
            show(|o| write_uuid(o, &uuid)),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
    }
}
