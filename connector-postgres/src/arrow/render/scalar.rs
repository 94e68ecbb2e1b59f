//! Numbers, bytes and UUIDs in PostgreSQL's output syntax.

use super::float;

#[inline]
pub(super) fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
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
