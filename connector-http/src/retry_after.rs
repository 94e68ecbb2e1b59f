//! `Retry-After`, both forms (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
//!
//! The moment is turned into the engine's clock at the time the answer arrived, so the
//! wait counts from the answer, never from a later point that would send the next
//! request early. `0`, or a date already past, names "now": the engine then falls back
//! to the policy's backoff. A value that is neither form is ignored, as if absent.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The moment `value` names, given the wall-clock and engine-clock times of arrival.
pub fn parse(value: &str, wall: SystemTime, now: Instant) -> Option<Instant> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Delay-seconds: a huge number means "much later", not an error.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX).min(u64::MAX / 4);
        return now.checked_add(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let wait = date.duration_since(wall).unwrap_or(Duration::ZERO);
    now.checked_add(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_and_the_edges() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse("7", wall, now), Some(now + Duration::from_secs(7)));
        assert_eq!(
            parse(" 0 ", wall, now),
            Some(now),
            "0 is now: the backoff decides"
        );
        let date = httpdate::fmt_http_date(wall + Duration::from_secs(90));
        assert_eq!(parse(&date, wall, now), Some(now + Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(wall - Duration::from_secs(5));
        assert_eq!(parse(&past, wall, now), Some(now), "a past date is now");
        assert_eq!(parse("soon", wall, now), None);
        assert_eq!(parse("-3", wall, now), None);
        assert_eq!(parse("", wall, now), None);
        assert!(parse("99999999999999999999999", wall, now).is_some());
    }
}
