//! PostgreSQL binary wire values decoded without allocating.
//!
//! sqlx asks for binary results on prepared statements, so a value arrives as a few
//! big-endian bytes. Decoding them here (instead of through `Decode` into owned Rust values)
//! is what lets a row go straight into Arrow buffers with no per-value allocation.

use std::fmt::Write;

/// Microseconds from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
pub(crate) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_DAYS: i32 = 10_957;

/// `10^n` for `n` in `0..=38`.
const POW10: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// A `uuid` as its 16 bytes.
#[inline]
pub(crate) fn uuid(bytes: &[u8]) -> Result<[u8; 16], String> {
    fixed(bytes)
}

/// A `jsonb` value's text: binary format version 1, then the text.
#[inline]
pub(crate) fn jsonb(bytes: &[u8]) -> Result<&str, String> {
    match bytes.split_first() {
        Some((1, text)) => std::str::from_utf8(text).map_err(|e| e.to_string()),
        Some((version, _)) => Err(format!("unsupported jsonb binary format version {version}")),
        None => Err("empty jsonb value".into()),
    }
}

/// Why a binary value could not be decoded into its Arrow column.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A valid PostgreSQL value the column's Arrow type cannot hold: the value, and why.
    Unrepresentable(&'static str, &'static str),
    /// Bytes that are not a valid value of the type.
    Invalid(String),
}

impl From<String> for DecodeError {
    fn from(message: String) -> Self {
        DecodeError::Invalid(message)
    }
}

/// Reads exactly `N` bytes, or explains how many were expected.
#[inline]
pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    <[u8; N]>::try_from(bytes)
        .map_err(|_| format!("expected {N} bytes in a binary value, got {}", bytes.len()))
}

/// A `date` (days since 2000-01-01) as days since 1970-01-01; `±infinity` (stored as
/// `i32::MAX` / `i32::MIN`) stay the largest and smallest values.
#[inline]
pub(crate) fn date(bytes: &[u8]) -> Result<i32, String> {
    Ok(match i32::from_be_bytes(fixed(bytes)?) {
        i32::MAX => i32::MAX,
        i32::MIN => i32::MIN,
        // Finite dates end in 5874897 AD, far below the sentinel after the shift.
        days => days.saturating_add(PG_EPOCH_DAYS),
    })
}

/// A `timestamp[tz]` (µs since 2000-01-01) as µs since 1970-01-01; `±infinity` (stored as
/// `i64::MAX` / `i64::MIN`) stay the largest and smallest values. PostgreSQL's last
/// timestamps (after 294247-01-10 04:00:54.775806 AD) do not fit the 1970 epoch: refused.
#[inline]
pub(crate) fn timestamp(bytes: &[u8]) -> Result<i64, DecodeError> {
    match i64::from_be_bytes(fixed(bytes)?) {
        i64::MAX => Ok(i64::MAX),
        i64::MIN => Ok(i64::MIN),
        micros => match micros.checked_add(PG_EPOCH_MICROS) {
            Some(shifted) if shifted != i64::MAX => Ok(shifted),
            _ => Err(DecodeError::Unrepresentable(
                "a timestamp after 294247 AD",
                "a 64-bit count of microseconds since 1970 ends before it",
            )),
        },
    }
}

/// The parts of a binary `numeric`: `ndigits`, `weight`, `sign`, `dscale` (16 bits each),
/// then `ndigits` base-10000 digits, the first worth `10000^weight`.
struct Numeric<'a> {
    weight: i32,
    sign: u16,
    dscale: u16,
    digits: &'a [u8],
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

impl<'a> Numeric<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.len() < 8 {
            return Err(format!("numeric value too short: {} bytes", bytes.len()));
        }
        let ndigits = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        let digits = &bytes[8..];
        if digits.len() != ndigits * 2 {
            return Err(format!(
                "numeric value has {} digit bytes for {ndigits} digits",
                digits.len()
            ));
        }
        Ok(Self {
            weight: i32::from(i16::from_be_bytes([bytes[2], bytes[3]])),
            sign: u16::from_be_bytes([bytes[4], bytes[5]]),
            dscale: u16::from_be_bytes([bytes[6], bytes[7]]),
            digits,
        })
    }

    /// Base-10000 digit `i` (0 beyond the stored digits).
    fn digit(&self, i: i32) -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.digits.get(2 * i..2 * i + 2))
            .map_or(0, |d| u16::from_be_bytes([d[0], d[1]]))
    }
}

/// A binary `numeric` as PostgreSQL prints it (`numeric_out`): every stored digit, exactly
/// `dscale` digits after the point, and `NaN`, `Infinity`, `-Infinity`.
pub(crate) fn numeric_text(bytes: &[u8], out: &mut String) -> Result<(), String> {
    let n = Numeric::parse(bytes)?;
    match n.sign {
        NUMERIC_NAN => out.push_str("NaN"),
        NUMERIC_PINF => out.push_str("Infinity"),
        NUMERIC_NINF => out.push_str("-Infinity"),
        0 | NUMERIC_NEG => {
            if n.sign == NUMERIC_NEG {
                out.push('-');
            }
            if n.weight < 0 {
                out.push('0');
            } else {
                let _ = write!(out, "{}", n.digit(0));
                for i in 1..=n.weight {
                    push_digits(out, n.digit(i), 4);
                }
            }
            if n.dscale > 0 {
                out.push('.');
                let mut left = usize::from(n.dscale);
                let mut i = n.weight + 1;
                while left > 0 {
                    let take = left.min(4);
                    push_digits(out, n.digit(i), take);
                    left -= take;
                    i += 1;
                }
            }
        }
        other => return Err(format!("numeric value has an unknown sign {other:#06x}")),
    }
    Ok(())
}

/// The first `take` of the four decimal digits of a base-10000 digit.
fn push_digits(out: &mut String, digit: u16, take: usize) {
    let all = [digit / 1000, digit / 100 % 10, digit / 10 % 10, digit % 10];
    for d in &all[..take] {
        out.push(char::from(b'0' + (*d % 10) as u8));
    }
}

/// Why a numeric `NaN` or infinity cannot be read as a decimal.
const NOT_DECIMAL: &str = "a decimal cannot hold it";

/// A binary `numeric` as an integer count of `10^-scale` units.
///
/// Digits below the scale must be zero (PostgreSQL rounds to the column's scale on write),
/// so the result is exact or an error, never rounded.
pub(crate) fn numeric(bytes: &[u8], scale: i8) -> Result<i128, DecodeError> {
    let n = Numeric::parse(bytes)?;
    let (weight, digits) = (n.weight, n.digits);
    let negative = match n.sign {
        0 => false,
        NUMERIC_NEG => true,
        NUMERIC_NAN => return Err(DecodeError::Unrepresentable("NaN", NOT_DECIMAL)),
        NUMERIC_PINF => return Err(DecodeError::Unrepresentable("Infinity", NOT_DECIMAL)),
        NUMERIC_NINF => return Err(DecodeError::Unrepresentable("-Infinity", NOT_DECIMAL)),
        other => return Err(format!("numeric value has an unknown sign {other:#06x}").into()),
    };
    let mut value: i128 = 0;
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let digit = i128::from(i16::from_be_bytes([pair[0], pair[1]]));
        if digit == 0 {
            continue;
        }
        // This digit is worth 10000^(weight - i) = 10^exp units of 10^-scale.
        let exp = 4 * (weight - i as i32) + i32::from(scale);
        let part = if exp >= 0 {
            let factor = usize::try_from(exp).ok().and_then(|e| POW10.get(e));
            factor.and_then(|f| digit.checked_mul(*f))
        } else {
            let divisor = POW10[usize::try_from(-exp).unwrap_or(39).min(38)];
            if digit % divisor != 0 {
                return Err(format!("numeric value has more than {scale} decimal places").into());
            }
            Some(digit / divisor)
        };
        value = part
            .and_then(|p| value.checked_add(p))
            .ok_or_else(|| "numeric value overflows a 38-digit decimal".to_owned())?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ndigits: &[i16], weight: i16, negative: bool) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(ndigits.len() as u16).to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        for d in ndigits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_is_scaled_exactly() {
        // 12345.67 = [1, 2345, 6700] with weight 1
        assert_eq!(
            numeric(&encode(&[1, 2345, 6700], 1, false), 2).unwrap(),
            1_234_567
        );
        assert_eq!(
            numeric(&encode(&[1, 2345, 6700], 1, true), 2).unwrap(),
            -1_234_567
        );
        // 0.05 = [500] weight -1
        assert_eq!(numeric(&encode(&[500], -1, false), 2).unwrap(), 5);
        // zero has no digits
        assert_eq!(numeric(&encode(&[], 0, false), 4).unwrap(), 0);
        // 1200 with scale -2 is 12 hundreds
        assert_eq!(numeric(&encode(&[1200], 0, false), -2).unwrap(), 12);
    }

    #[test]
    fn numeric_refuses_lost_digits_nan_and_overflow() {
        assert!(numeric(&encode(&[1234], -1, false), 2).is_err());
        let mut nan = encode(&[], 0, false);
        nan[4] = 0xC0;
        assert_eq!(
            numeric(&nan, 2),
            Err(DecodeError::Unrepresentable("NaN", NOT_DECIMAL))
        );
        assert!(numeric(&encode(&[9999; 11], 10, false), 0).is_err());
    }

    fn with_sign_and_scale(mut bytes: Vec<u8>, sign: u16, dscale: u16) -> Vec<u8> {
        bytes[4..6].copy_from_slice(&sign.to_be_bytes());
        bytes[6..8].copy_from_slice(&dscale.to_be_bytes());
        bytes
    }

    fn text(bytes: &[u8]) -> String {
        let mut out = String::new();
        numeric_text(bytes, &mut out).unwrap();
        out
    }

    #[test]
    fn numeric_text_prints_like_postgres() {
        // 12345.6700 = [1, 2345, 6700] weight 1, dscale 4
        let v = with_sign_and_scale(encode(&[1, 2345, 6700], 1, false), 0, 4);
        assert_eq!(text(&v), "12345.6700");
        let v = with_sign_and_scale(encode(&[1, 2345, 6700], 1, true), NUMERIC_NEG, 2);
        assert_eq!(text(&v), "-12345.67");
        // 0.00000000000000000001 = [1] weight -5, dscale 20
        let v = with_sign_and_scale(encode(&[1], -5, false), 0, 20);
        assert_eq!(text(&v), "0.00000000000000000001");
        // 10^12 = [1] weight 3 (trailing zero digits are not stored)
        assert_eq!(text(&encode(&[1], 3, false)), "1000000000000");
        assert_eq!(text(&encode(&[], 0, false)), "0");
        let v = with_sign_and_scale(encode(&[], 0, false), 0, 3);
        assert_eq!(text(&v), "0.000");
        for (sign, want) in [
            (NUMERIC_NAN, "NaN"),
            (NUMERIC_PINF, "Infinity"),
            (NUMERIC_NINF, "-Infinity"),
        ] {
            assert_eq!(
                text(&with_sign_and_scale(encode(&[], 0, false), sign, 0)),
                want
            );
        }
    }

    #[test]
    fn dates_and_timestamps_shift_epochs_and_keep_infinities() {
        assert_eq!(date(&0i32.to_be_bytes()).unwrap(), 10_957);
        assert_eq!(date(&i32::MAX.to_be_bytes()).unwrap(), i32::MAX);
        assert_eq!(date(&i32::MIN.to_be_bytes()).unwrap(), i32::MIN);
        assert_eq!(timestamp(&i64::MAX.to_be_bytes()).unwrap(), i64::MAX);
        assert_eq!(timestamp(&i64::MIN.to_be_bytes()).unwrap(), i64::MIN);
        assert_eq!(timestamp(&1i64.to_be_bytes()).unwrap(), PG_EPOCH_MICROS + 1);
        assert!(timestamp(&[0, 1]).is_err());
        // 294276-12-31 23:59:59.999999, PostgreSQL's last timestamp, has no 1970-based count.
        let last = 9_224_318_015_999_999_999i128 - i128::from(PG_EPOCH_MICROS);
        let last = i64::try_from(last).unwrap();
        assert!(matches!(
            timestamp(&last.to_be_bytes()),
            Err(DecodeError::Unrepresentable(..))
        ));
    }
}
