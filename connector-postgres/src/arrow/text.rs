//! Key values read back out of a record batch as PostgreSQL input text.
//!
//! A resumable position (the last primary key, an incremental checkpoint) is stored as text
//! that PostgreSQL parses back into the column's type at full precision (`$1::timestamptz`),
//! so it survives JSON and never goes through a float. This module prints Arrow values in
//! PostgreSQL's input syntax and, for lag windows, gives time and integer keys an ordinal.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, TimeUnit};

use super::render::{Column, Syntax, days_from_civil};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The value at `row` as PostgreSQL input text; `None` for NULL or an unsupported type.
pub fn value_text(array: &ArrayRef, row: usize) -> Option<String> {
    value_text_of(array, &Field::new("", array.data_type().clone(), true), row)
}

/// As [`value_text`], for a column described by `field` (its metadata says when a `Utf8`
/// or `FixedSizeBinary` column holds numeric, JSON or UUID values).
pub fn value_text_of(array: &ArrayRef, field: &Field, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let column = Column::new(array.as_ref(), field).ok()?;
    let mut out = Vec::new();
    column.write(row, Syntax::Text, &mut out);
    String::from_utf8(out).ok()
}

/// An integer position for the value at `row`: the value of an integer, microseconds since
/// 1970 for a date or a microsecond timestamp. `None` for other types and NULL.
pub fn value_ordinal(array: &ArrayRef, row: usize) -> Option<i64> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Int16 => Some(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Some(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Some(array.as_primitive::<Int64Type>().value(row)),
        DataType::Date32 => {
            let days = i64::from(array.as_primitive::<Date32Type>().value(row));
            Some(days.saturating_mul(MICROS_PER_DAY))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Some(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        _ => None,
    }
}

/// Parses text printed by [`value_text`] for an integer, date or timestamp back into its
/// [`value_ordinal`].
pub fn parse_ordinal(text: &str) -> Option<i64> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let text = text.strip_suffix("+00").unwrap_or(text);
    let (date, time) = text.split_once(' ').unwrap_or((text, "00:00:00"));
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let micros: i64 = format!("{frac:0<6}").get(..6)?.parse().ok()?;
    let day_micros = ((h * 60 + m) * 60 + s) * 1_000_000 + micros;
    Some(days_from_civil(year, month, day) * MICROS_PER_DAY + day_micros)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        Date32Array, Decimal128Array, TimestampMicrosecondArray, TimestampSecondArray,
    };

    use super::*;

    fn text(array: ArrayRef) -> Option<String> {
        value_text(&array, 0)
    }

    #[test]
    fn keys_print_in_postgres_syntax() {
        assert_eq!(
            text(Arc::new(Date32Array::from(vec![-719_163]))).unwrap(),
            "0001-12-31 BC"
        );
        let micros = 1_709_164_800_123_456; // 2024-02-29 00:00:00.123456
        let ts = TimestampMicrosecondArray::from(vec![micros]);
        assert_eq!(
            text(Arc::new(ts.clone())).unwrap(),
            "2024-02-29 00:00:00.123456"
        );
        assert_eq!(
            text(Arc::new(ts.with_timezone("UTC"))).unwrap(),
            "2024-02-29 00:00:00.123456+00"
        );
        let dec = Decimal128Array::from(vec![-5i128])
            .with_precision_and_scale(5, 2)
            .unwrap();
        assert_eq!(text(Arc::new(dec)).unwrap(), "-0.05");
    }

    #[test]
    fn other_timestamp_units_are_not_keys() {
        let ts: ArrayRef = Arc::new(TimestampSecondArray::from(vec![1]));
        assert_eq!(value_text(&ts, 0), None);
        assert_eq!(value_ordinal(&ts, 0), None);
    }

    #[test]
    fn timestamps_print_and_parse_back() {
        for value in [
            1_709_164_800_123_456,
            -1,
            0,
            86_399_999_999,
            946_684_800_000_001,
        ] {
            let array: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![value]));
            let printed = value_text(&array, 0).unwrap();
            assert_eq!(parse_ordinal(&printed), Some(value), "{printed}");
            assert_eq!(parse_ordinal(&(printed + "+00")), Some(value));
        }
        assert_eq!(parse_ordinal("2024-02-29"), Some(19_782 * MICROS_PER_DAY));
        assert_eq!(parse_ordinal("-42"), Some(-42));
        assert_eq!(parse_ordinal("abc"), None);
    }

    #[test]
    fn bc_dates_count_years_as_postgres_does() {
        // 1 BC is year 0 of the proleptic Gregorian count.
        assert_eq!(days_from_civil(0, 12, 31), -719_163);
    }
}
