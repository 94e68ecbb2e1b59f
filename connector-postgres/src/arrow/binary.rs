//! PostgreSQL binary wire values decoded without allocating.
//!
//! sqlx asks for binary results on prepared statements, so a value arrives as a few
//! big-endian bytes. Decoding them here (instead of through `Decode` into owned Rust values)
//! is what lets a row go straight into Arrow buffers with no per-value allocation.

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

/// Reads exactly `N` bytes, or explains how many were expected.
#[inline]
pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    <[u8; N]>::try_from(bytes)
        .map_err(|_| format!("expected {N} bytes in a binary value, got {}", bytes.len()))
}

/// A `date` (days since 2000-01-01) as days since 1970-01-01; ±infinity saturate.
#[inline]
pub(crate) fn date(bytes: &[u8]) -> Result<i32, String> {
    Ok(i32::from_be_bytes(fixed(bytes)?).saturating_add(PG_EPOCH_DAYS))
}

/// A `timestamp[tz]` (µs since 2000-01-01) as µs since 1970-01-01; ±infinity saturate.
#[inline]
pub(crate) fn timestamp(bytes: &[u8]) -> Result<i64, String> {
    Ok(i64::from_be_bytes(fixed(bytes)?).saturating_add(PG_EPOCH_MICROS))
}

/// A binary `numeric` as an integer count of `10^-scale` units.
///
/// Layout: `ndigits`, `weight`, `sign`, `dscale` (each 16 bits), then `ndigits` base-10000
/// digits, the first worth `10000^weight`. Digits below the scale must be zero (PostgreSQL
/// rounds to the column's scale on write), so the result is exact or an error, never rounded.
pub(crate) fn numeric(bytes: &[u8], scale: i8) -> Result<i128, String> {
    if bytes.len() < 8 {
        return Err(format!("numeric value too short: {} bytes", bytes.len()));
    }
    let ndigits = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    let weight = i32::from(i16::from_be_bytes([bytes[2], bytes[3]]));
    let sign = u16::from_be_bytes([bytes[4], bytes[5]]);
    let digits = &bytes[8..];
    if digits.len() != ndigits * 2 {
        return Err(format!(
            "numeric value has {} digit bytes for {ndigits} digits",
            digits.len()
        ));
    }
    let negative = match sign {
        0x0000 => false,
        0x4000 => true,
        0xC000 => return Err("numeric NaN has no Decimal128 representation".into()),
        _ => return Err("numeric infinity has no Decimal128 representation".into()),
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
                return Err(format!(
                    "numeric value has more than {scale} decimal places"
                ));
            }
            Some(digit / divisor)
        };
        value = part
            .and_then(|p| value.checked_add(p))
            .ok_or_else(|| "numeric value overflows Decimal128".to_owned())?;
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
        assert!(numeric(&nan, 2).unwrap_err().contains("NaN"));
        assert!(numeric(&encode(&[9999; 11], 10, false), 0).is_err());
    }

    #[test]
    fn dates_and_timestamps_shift_epochs() {
        assert_eq!(date(&0i32.to_be_bytes()).unwrap(), 10_957);
        assert_eq!(date(&i32::MAX.to_be_bytes()).unwrap(), i32::MAX);
        assert_eq!(timestamp(&1i64.to_be_bytes()).unwrap(), PG_EPOCH_MICROS + 1);
        assert!(timestamp(&[0, 1]).is_err());
    }
}
