//! Key values read back out of a record batch as PostgreSQL input text.
//!
//! A resumable position (the last primary key, an incremental checkpoint) is stored as text
//! that PostgreSQL parses back into the column's type at full precision (`$1::timestamptz`),
//! so it survives JSON and never goes through a float. This module prints Arrow values in
//! PostgreSQL's input syntax and, for lag windows, gives time and integer keys an ordinal.

use std::fmt::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The value at `row` as PostgreSQL input text; `None` for NULL or an unsupported type.
pub fn value_text(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        DataType::Date32 => format_date(array.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            let mut text = format_timestamp(micros);
            if tz.is_some() && !text.ends_with("infinity") {
                text.push_str("+00");
            }
            text
        }
        DataType::Decimal128(_, scale) => {
            format_decimal(array.as_primitive::<Decimal128Type>().value(row), *scale)
        }
        _ => return None,
    })
}

/// An integer position for the value at `row`: the value of an integer, microseconds since
/// 1970 for a date or timestamp. `None` for other types and NULL.
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

/// Days since 1970-01-01 as `YYYY-MM-DD` (`... BC` before year 1), or ±infinity.
pub fn format_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let mut out = String::with_capacity(13);
            write_date(&mut out, i64::from(days));
            out
        }
    }
}

/// Microseconds since 1970-01-01 as `YYYY-MM-DD HH:MM:SS.ffffff`, or ±infinity.
pub fn format_timestamp(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let (days, rem) = (
                micros.div_euclid(MICROS_PER_DAY),
                micros.rem_euclid(MICROS_PER_DAY),
            );
            let mut out = String::with_capacity(26);
            write_date(&mut out, days);
            let secs = rem / 1_000_000;
            let bc = out.ends_with(" BC");
            let base = if bc { out.len() - 3 } else { out.len() };
            let time = format!(
                " {:02}:{:02}:{:02}.{:06}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                rem % 1_000_000
            );
            out.insert_str(base, &time);
            out
        }
    }
}

/// A scaled integer as decimal text: `1234567` at scale 2 is `12345.67`.
pub fn format_decimal(value: i128, scale: i8) -> String {
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    let scale = i32::from(scale);
    if scale <= 0 {
        let zeros = "0".repeat(usize::try_from(-scale).unwrap_or(0));
        return if value == 0 {
            "0".into()
        } else {
            format!("{sign}{digits}{zeros}")
        };
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

fn write_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    if year > 0 {
        let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    } else {
        let _ = write!(out, "{:04}-{month:02}-{day:02} BC", 1 - year);
    }
}

/// Proleptic Gregorian date for days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
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
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
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

    #[test]
    fn timestamps_in_another_unit_are_unsupported_not_a_panic() {
        use arrow_array::{TimestampMicrosecondArray, TimestampMillisecondArray};
        use std::sync::Arc;
        let millis: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_000]));
        assert_eq!(value_text(&millis, 0), None);
        assert_eq!(value_ordinal(&millis, 0), None);
        let micros: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![1_000_000]).with_timezone("UTC"));
        assert_eq!(
            value_text(&micros, 0).as_deref(),
            Some("1970-01-01 00:00:01.000000+00")
        );
        assert_eq!(value_ordinal(&micros, 0), Some(1_000_000));
    }

    #[test]
    fn dates_print_in_postgres_syntax() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(10_957), "2000-01-01");
        assert_eq!(format_date(19_782), "2024-02-29");
        assert_eq!(format_date(-719_163), "0001-12-31 BC");
        assert_eq!(format_date(-719_162), "0001-01-01");
        assert_eq!(format_date(i32::MAX), "infinity");
    }

    #[test]
    fn timestamps_print_and_parse_back() {
        let micros = 1_709_164_800_123_456; // 2024-02-29 00:00:00.123456
        assert_eq!(format_timestamp(micros), "2024-02-29 00:00:00.123456");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999999");
        for value in [micros, -1, 0, 86_399_999_999, 946_684_800_000_001] {
            assert_eq!(parse_ordinal(&format_timestamp(value)), Some(value));
            assert_eq!(
                parse_ordinal(&(format_timestamp(value) + "+00")),
                Some(value)
            );
        }
        assert_eq!(parse_ordinal("2024-02-29"), Some(19_782 * MICROS_PER_DAY));
        assert_eq!(parse_ordinal("-42"), Some(-42));
        assert_eq!(parse_ordinal("abc"), None);
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(format_decimal(1_234_567, 2), "12345.67");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(0, 3), "0.000");
        assert_eq!(format_decimal(12, -2), "1200");
        assert_eq!(format_decimal(i128::MAX, 0), i128::MAX.to_string());
    }
}
