//! Floats printed digit for digit as PostgreSQL prints them.
//!
//! PostgreSQL (12 and later, `extra_float_digits > 0`) prints the shortest decimal that reads
//! back as the same float, found with the Ryu algorithm, with one twist: it never picks a
//! decimal lying exactly halfway between the float and its neighbour, even where
//! round-half-even would read it back correctly (its Ryu runs with `acceptBounds = false`).
//! The `ryu` crate accepts such a bound for floats with an even mantissa, so its answer
//! differs from PostgreSQL's in those (rare) cases.
//!
//! So: take `ryu`'s shortest digits; if they lie strictly inside the float's rounding
//! interval, they are PostgreSQL's answer too (a strictly inside candidate of the shortest
//! length is also the nearest one PostgreSQL would pick). If they sit exactly on a bound
//! (decided exactly, in integer arithmetic), search as PostgreSQL does: for each length from
//! there on, the two decimals of that length around the float's exact value, keeping those
//! strictly inside the interval, the nearer one (ties to an even last digit).
//!
//! The text layout follows PostgreSQL too: fixed notation for decimal exponents in
//! `-4..15` (`-4..6` for `real`), else `d.ddde+XX` with at least two exponent digits.

/// Digits and decimal exponent of a positive float: the value is `digits × 10^exponent`.
struct Decimal {
    digits: Vec<u8>,
    exponent: i32,
}

/// A finite, non-zero float's parts: `value = mantissa × 2^exponent`, and whether it is the
/// smallest mantissa of its binade (its lower neighbour is then half as far).
pub(super) struct Binary {
    mantissa: u64,
    exponent: i32,
    lower_closer: bool,
}

/// The two float widths, as far as this module needs them.
pub(super) trait Float:
    Copy + std::fmt::LowerExp + std::str::FromStr + PartialEq + ryu::Float
{
    /// Largest decimal exponent printed in fixed notation, plus one.
    const FIXED_BELOW: i32;
    fn binary(self) -> Binary;
}

impl Float for f64 {
    const FIXED_BELOW: i32 = 15;

    fn binary(self) -> Binary {
        let bits = self.to_bits();
        let fraction = bits & ((1 << 52) - 1);
        let biased = ((bits >> 52) & 0x7ff) as i32;
        binary_parts(fraction, biased, 52, 1075)
    }
}

impl Float for f32 {
    const FIXED_BELOW: i32 = 6;

    fn binary(self) -> Binary {
        let bits = self.to_bits();
        let fraction = u64::from(bits & ((1 << 23) - 1));
        let biased = ((bits >> 23) & 0xff) as i32;
        binary_parts(fraction, biased, 23, 150)
    }
}

fn binary_parts(fraction: u64, biased: i32, mantissa_bits: u32, bias: i32) -> Binary {
    if biased == 0 {
        // Subnormal: no implicit bit, fixed exponent, evenly spaced neighbours.
        Binary {
            mantissa: fraction,
            exponent: 1 - bias,
            lower_closer: false,
        }
    } else {
        Binary {
            mantissa: fraction | (1 << mantissa_bits),
            exponent: biased - bias,
            lower_closer: fraction == 0 && biased > 1,
        }
    }
}

/// Prints a finite, non-zero `value` (its sign included) as PostgreSQL does.
pub(super) fn write<F: Float>(out: &mut Vec<u8>, value: F, negative: bool) {
    let mut buffer = ryu::Buffer::new();
    let mut decimal = parse_repr(buffer.format_finite(value));
    if on_bound(value, &decimal) {
        decimal = strictly_inside(value, decimal.digits.len());
    }
    if negative {
        out.push(b'-');
    }
    layout(out, &decimal, F::FIXED_BELOW);
}

/// The digits and exponent of ryu's text (`1.5e-7`, `100.0`, `1e16`), without the sign,
/// leading or trailing zeros.
fn parse_repr(repr: &str) -> Decimal {
    let body = repr.trim_start_matches('-');
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let mut exponent = exp - frac_part.len() as i32;
    let leading = digits.iter().take_while(|d| **d == b'0').count();
    digits.drain(..leading);
    while digits.last() == Some(&b'0') {
        digits.pop();
        exponent += 1;
    }
    Decimal { digits, exponent }
}

/// Whether `decimal` is exactly halfway between `value` and one of its neighbours.
fn on_bound<F: Float>(value: F, decimal: &Decimal) -> bool {
    let b = value.binary();
    // Halfway points: (2m + 1) · 2^(e-1) above; below (2m - 1) · 2^(e-1), or
    // (4m - 1) · 2^(e-2) when the binade's first mantissa has a closer lower neighbour.
    let above = (2 * u128::from(b.mantissa) + 1, b.exponent - 1);
    let below = if b.lower_closer {
        (4 * u128::from(b.mantissa) - 1, b.exponent - 2)
    } else {
        (2 * u128::from(b.mantissa) - 1, b.exponent - 1)
    };
    let Some(d) = decimal_u128(&decimal.digits) else {
        return false;
    };
    equals_odd_times_pow2(d, decimal.exponent, above)
        || equals_odd_times_pow2(d, decimal.exponent, below)
}

/// Whether `d · 10^f == odd · 2^k` exactly (`odd` odd).
fn equals_odd_times_pow2(d: u128, f: i32, (odd, k): (u128, i32)) -> bool {
    if d == 0 {
        return false;
    }
    // d · 10^f = d' · 5^f · 2^(a + f) with d' odd.
    let a = d.trailing_zeros() as i32;
    let d_odd = d >> a;
    if a + f != k {
        return false;
    }
    let g = f.unsigned_abs();
    let Some(pow5) = 5u128.checked_pow(g) else {
        return false;
    };
    if f >= 0 {
        d_odd.checked_mul(pow5) == Some(odd)
    } else {
        odd.checked_mul(pow5) == Some(d_odd)
    }
}

fn decimal_u128(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, d| {
        acc.checked_mul(10)?.checked_add(u128::from(d - b'0'))
    })
}

/// The shortest decimal of at least `from` digits strictly inside `value`'s rounding
/// interval, the nearer of the two around the exact value (ties to an even last digit).
fn strictly_inside<F: Float>(value: F, from: usize) -> Decimal {
    // The exact value: every double is a finite decimal of at most 767 significant digits.
    let exact = format!("{:.800e}", value);
    let exact = parse_repr(exact.trim_start_matches('-'));
    let magnitude = exact.exponent + exact.digits.len() as i32;
    for len in from..=20 {
        let (head, rest) = exact.digits.split_at(len.min(exact.digits.len()));
        let mut low = head.to_vec();
        low.resize(len, b'0');
        let exponent = magnitude - len as i32;
        let high = increment(&low);
        let low = Decimal {
            digits: low,
            exponent,
        };
        let inside = |d: &Decimal| reads_back(value, d) && !on_bound(value, d);
        let (low_in, high_in) = (inside(&low), inside(&high.at(exponent)));
        let chosen = match (low_in, high_in) {
            (false, false) => continue,
            (true, false) => low,
            (false, true) => high.at(exponent),
            (true, true) => {
                // Compare the dropped digits with one half.
                let first = rest.first().copied().unwrap_or(b'0');
                let beyond = rest.iter().skip(1).any(|d| *d != b'0');
                let odd = (low.digits[len - 1] - b'0') % 2 == 1;
                let up = first > b'5' || (first == b'5' && (beyond || odd));
                if up { high.at(exponent) } else { low }
            }
        };
        return normalize(chosen);
    }
    // Unreachable for finite floats (17 digits always suffice); keep ryu's answer.
    parse_repr(ryu::Buffer::new().format_finite(value))
}

/// Digits one unit larger in the last place (may grow by a digit: `999` → `1000`).
struct Incremented {
    digits: Vec<u8>,
    carried: bool,
}

impl Incremented {
    fn at(&self, exponent: i32) -> Decimal {
        Decimal {
            digits: self.digits.clone(),
            exponent: if self.carried { exponent + 1 } else { exponent },
        }
    }
}

fn increment(digits: &[u8]) -> Incremented {
    let mut out = digits.to_vec();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return Incremented {
                digits: out,
                carried: false,
            };
        }
    }
    // All nines: 10^len, written with `len` digits one place up.
    out.insert(0, b'1');
    out.pop();
    Incremented {
        digits: out,
        carried: true,
    }
}

fn normalize(mut d: Decimal) -> Decimal {
    while d.digits.last() == Some(&b'0') && d.digits.len() > 1 {
        d.digits.pop();
        d.exponent += 1;
    }
    d
}

fn reads_back<F: Float>(value: F, d: &Decimal) -> bool {
    let text = format!(
        "{}e{}",
        std::str::from_utf8(&d.digits).unwrap_or("0"),
        d.exponent
    );
    text.parse::<F>().is_ok_and(|parsed| parsed == value)
}

/// Fixed notation for decimal exponents in `-4..fixed_below`, else scientific.
fn layout(out: &mut Vec<u8>, d: &Decimal, fixed_below: i32) {
    let digits = &d.digits;
    let len = digits.len() as i32;
    let exp10 = d.exponent + len - 1;
    if (-4..fixed_below).contains(&exp10) {
        if exp10 >= 0 {
            let int_len = (exp10 + 1) as usize;
            if digits.len() <= int_len {
                out.extend_from_slice(digits);
                out.resize(out.len() + int_len - digits.len(), b'0');
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-exp10 - 1) as usize, b'0');
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp10 < 0 { b'-' } else { b'+' });
        let exp = exp10.unsigned_abs();
        if exp < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(exp).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show<F: Float>(value: F) -> String {
        let mut out = Vec::new();
        write(&mut out, value, false);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_decimal_on_the_bound_gives_way_to_one_strictly_inside() {
        // ryu (bounds accepted) prints 2.308978799555876e+17; PostgreSQL one digit more.
        let x = f64::from_bits(0x4389_a283_3011_2610);
        assert_eq!(ryu::Buffer::new().format_finite(x), "2.308978799555876e17");
        assert!(on_bound(x, &parse_repr("2.308978799555876e17")));
        assert_eq!(show(x), "2.3089787995558758e+17");
    }

    #[test]
    fn exact_halfway_test() {
        // 1.5 = 3 · 2^-1 is exactly 15 · 10^-1.
        assert!(equals_odd_times_pow2(15, -1, (3, -1)));
        assert!(!equals_odd_times_pow2(15, -1, (5, -1)));
        // 2^-1 · 1 = 0.5 = 5 · 10^-1
        assert!(equals_odd_times_pow2(5, -1, (1, -1)));
        // 1e300 is no binary fraction with a small odd part.
        assert!(!equals_odd_times_pow2(1, 300, (1, 996)));
    }

    #[test]
    fn increments_carry() {
        let i = increment(b"199");
        assert_eq!((i.digits.as_slice(), i.carried), (&b"200"[..], false));
        let i = increment(b"99");
        assert_eq!((i.digits.as_slice(), i.carried), (&b"10"[..], true));
    }
}
