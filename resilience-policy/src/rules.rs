//! Every rule a policy must keep, in one place: the loader checks each value against these
//! rules where it is written (so the error points at its line and column), and
//! [`Policy::validate`](crate::Policy::validate) checks a policy built in code, or handed
//! to a running engine, against the same rules.
//!
//! Why a policy built in code needs the check as much as a file: the engine adds durations
//! to the current instant, multiplies delays by `multiplier` and divides by rates. A NaN
//! multiplier, a deadline ten thousand years away or a per-attempt timeout longer than the
//! whole call would panic, overflow or never fire; a rule here turns each into an error
//! that names the policy and the key.

use std::time::Duration;

use crate::error::PolicyError;
use crate::model::Policy;
use crate::schema::{FIELDS, Kind, Value, to_values};

/// The longest duration a policy may name: deadlines are added to the current instant,
/// and a wait of more than a year is a typo, not a setting.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// How durations are written, for messages.
pub(crate) const DURATION_HINT: &str = "a duration string such as \"500ms\", \"1s\" or \"2m\"";

/// Pairs of duration keys where the first must not exceed the second.
pub(crate) const ORDERED: [(&str, &str); 2] = [
    ("retry.initial_delay", "retry.max_delay"),
    ("timeout.attempt", "timeout.total"),
];

/// A rule one value breaks; `got` is how the value was written.
pub(crate) fn value(kind: Kind, value: Value, got: &str) -> Result<(), String> {
    match (kind, value) {
        (Kind::Duration { zero }, Value::Duration(d)) => {
            if d.is_zero() && !zero {
                Err(format!(
                    "must be greater than zero, got {got}; expected {DURATION_HINT}"
                ))
            } else if d > MAX_DURATION {
                Err(format!(
                    "duration {got} is longer than the longest allowed, 365 days; expected {DURATION_HINT}"
                ))
            } else {
                Ok(())
            }
        }
        (Kind::Multiplier, Value::Float(f)) if !(f.is_finite() && f >= 1.0) => Err(format!(
            "must be a finite number of at least 1.0, got {got}"
        )),
        (Kind::Ratio, Value::Float(f)) if !(0.0..=1000.0).contains(&f) => {
            Err(format!("must be from 0.0 to 1000.0, got {got}"))
        }
        (Kind::Fraction, Value::Float(f)) if !(f > 0.0 && f <= 1.0) => Err(format!(
            "must be above 0.0 and at most 1.0 (0.5: half the attempts failed), got {got}"
        )),
        _ => Ok(()),
    }
}

/// A rule a policy breaks: the key (a dotted path below `policy.NAME`), the key it is
/// compared with for rules between two keys, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    pub(crate) key: &'static str,
    pub(crate) other: Option<&'static str>,
    pub(crate) message: String,
}

/// Checks every rule; the first broken one, in schema order, is returned.
pub(crate) fn check(policy: &Policy) -> Result<(), Violation> {
    let values = to_values(policy);
    for &(key, kind) in FIELDS.iter() {
        let v = values[key];
        value(kind, v, &written(v)).map_err(|message| Violation {
            key,
            other: None,
            message,
        })?;
    }
    for (low, high) in ORDERED {
        let (lo, hi) = (duration(values[low]), duration(values[high]));
        if lo > hi {
            return Err(Violation {
                key: low,
                other: Some(high),
                message: format!(
                    "must not be above `{high}` ({}), got {}",
                    humantime::format_duration(hi),
                    humantime::format_duration(lo)
                ),
            });
        }
    }
    Ok(())
}

/// A value as a policy file would write it.
fn written(value: Value) -> String {
    match value {
        Value::Duration(d) => format!("\"{}\"", humantime::format_duration(d)),
        Value::Float(f) => format!("{f}"),
        other => format!("{other:?}"),
    }
}

/// The duration a duration key holds.
pub(crate) fn duration(value: Value) -> Duration {
    match value {
        Value::Duration(d) => d,
        other => unreachable!("a duration key holds {other:?}"),
    }
}

impl Policy {
    /// Checks `name` and every value of this policy against the rules the loader applies
    /// to policy files: durations within a year (and above zero where zero means nothing),
    /// a finite `multiplier` of at least 1.0, `initial_delay` not above `max_delay`,
    /// `timeout.attempt` not above `timeout.total`, and so on. The error names the policy
    /// and the key, and says what would be valid.
    ///
    /// ```
    /// use resilience_policy::Policy;
    ///
    /// let mut policy = Policy::default();
    /// policy.retry.multiplier = f64::NAN;
    /// let err = policy.validate("db").unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "`policy.db.retry.multiplier`: must be a finite number of at least 1.0, got NaN"
    /// );
    /// ```
    pub fn validate(&self, name: &str) -> Result<(), PolicyError> {
        if !crate::raw::is_identifier(name) {
            return Err(PolicyError::InvalidPolicy {
                policy: name.to_owned(),
                key: format!("policy.{name}"),
                message: format!(
                    "invalid policy name `{name}`: a name starts with a lower-case letter and holds only a-z, 0-9, `_` and `-`"
                ),
            });
        }
        check(self).map_err(|v| PolicyError::InvalidPolicy {
            policy: name.to_owned(),
            key: format!("policy.{name}.{}", v.key),
            message: v.message,
        })
    }
}
