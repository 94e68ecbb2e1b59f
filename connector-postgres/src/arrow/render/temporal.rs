//! Dates, times and timestamps in PostgreSQL's output syntax (ISO, UTC, `BC`, `infinity`).
//!
//! These run once per value of a sync, so they print into stack buffers and remember the
//! last date they printed: rows of one table usually come in runs of the same day, and
//! the calendar arithmetic is then skipped.

use std::cell::Cell;

use super::Syntax;

const MICROS_PER_DAY: i64 = 86_400_000_000;

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
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = *b"00:00:00.000000";
    put_two(&mut text[0..2], hours);
    put_two(&mut text[3..5], minutes);
    put_two(&mut text[6..8], seconds);
    let mut fraction = micros.rem_euclid(1_000_000);
    if fraction == 0 {
        out.extend_from_slice(&text[..8]);
        return;
    }
    // Six digits, then the trailing zeros dropped.
    for d in text[9..].iter_mut().rev() {
        *d = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    let mut end = text.len();
    while text[end - 1] == b'0' {
        end -= 1;
    }
    out.extend_from_slice(&text[..end]);
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

/// The text of one date: `YYYY-MM-DD` (more year digits after 9999), and whether it is BC.
#[derive(Clone, Copy)]
struct DateText {
    days: i64,
    text: [u8; 16],
    len: u8,
    bc: bool,
}

thread_local! {
    /// The date printed last on this thread.
    static LAST_DATE: Cell<Option<DateText>> = const { Cell::new(None) };
}

/// `YYYY-MM-DD` for days since 1970-01-01 (the year as PostgreSQL counts it: 1 BC is
/// year 0 in the proleptic Gregorian count); returns whether the date is BC.
fn write_ymd(out: &mut Vec<u8>, days: i64) -> bool {
    let date = match LAST_DATE.get() {
        Some(last) if last.days == days => last,
        _ => {
            let date = date_text(days);
            LAST_DATE.set(Some(date));
            date
        }
    };
    out.extend_from_slice(&date.text[..usize::from(date.len)]);
    date.bc
}

fn date_text(days: i64) -> DateText {
    let (year, month, day) = civil_from_days(days);
    let bc = year <= 0;
    let year = if bc { 1 - year } else { year };
    let mut text = [b'0'; 16];
    // The year: at least four digits, zero-padded (years reach 294277 at most).
    let mut digits = [b'0'; 8];
    let mut n = year;
    let mut count = 0;
    while n > 0 || count < 4 {
        digits[7 - count] = b'0' + (n % 10) as u8;
        n /= 10;
        count += 1;
    }
    text[..count].copy_from_slice(&digits[8 - count..]);
    text[count] = b'-';
    put_two(&mut text[count + 1..count + 3], i64::from(month));
    text[count + 3] = b'-';
    put_two(&mut text[count + 4..count + 6], i64::from(day));
    DateText {
        days,
        text,
        len: (count + 6) as u8,
        bc,
    }
}

/// Two decimal digits of `n` (0 to 99) into `to`.
#[inline]
fn put_two(to: &mut [u8], n: i64) {
    to[0] = b'0' + (n / 10 % 10) as u8;
    to[1] = b'0' + (n % 10) as u8;
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
}
