//! Checking one TOML value against its key's [`Kind`].
//!
//! Range checks live here, next to the type checks, so a bad value is reported at its own
//! line and column with what would be valid. Rules that relate two keys live in
//! `validate.rs`.

use std::num::NonZeroU32;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use crate::class::{ClassSet, ErrorClass};
use crate::error::PolicyError;
use crate::location::Origin;
use crate::model::{BreakerMode, Jitter, WhenLimited};
use crate::rules::{self, DURATION_HINT};
use crate::schema::{Kind, Value};
use crate::suggest;
const JITTERS: [&str; 4] = ["none", "full", "equal", "decorrelated"];
const WHEN_LIMITED: [&str; 2] = ["wait", "reject"];
const BREAKER_MODES: [&str; 2] = ["consecutive", "ratio"];

/// Checks `value` (written at `origin`) against `kind` and the rules of [`rules::value`].
pub(crate) fn check(
    kind: Kind,
    value: &Spanned<DeValue<'_>>,
    origin: &Origin,
) -> Result<Value, PolicyError> {
    let checked = typed(kind, value, origin)?;
    rules::value(kind, checked, origin.text()).map_err(|why| origin.error(why))?;
    Ok(checked)
}

/// Reads `value` as `kind`: the type, and what the type itself cannot hold (counts below 1).
fn typed(kind: Kind, value: &Spanned<DeValue<'_>>, origin: &Origin) -> Result<Value, PolicyError> {
    let got = || format!("got {} {}", value.get_ref().type_str(), origin.text());
    match kind {
        Kind::Count => {
            let n = integer(value).ok_or_else(|| {
                origin.error(format!("expected an integer of at least 1, {}", got()))
            })?;
            u32::try_from(n)
                .ok()
                .and_then(NonZeroU32::new)
                .map(Value::Count)
                .ok_or_else(|| origin.error(out_of_range(n, 1)))
        }
        Kind::Uint => {
            let n = integer(value).ok_or_else(|| {
                origin.error(format!("expected an integer of at least 0, {}", got()))
            })?;
            u32::try_from(n)
                .map(Value::Uint)
                .map_err(|_| origin.error(out_of_range(n, 0)))
        }
        Kind::Duration { .. } => {
            let text = string(value)
                .ok_or_else(|| origin.error(format!("expected {DURATION_HINT}, {}", got())))?;
            let d = duration(text).map_err(|why| origin.error(why))?;
            Ok(Value::Duration(d))
        }
        Kind::Multiplier => {
            let f = number(value).ok_or_else(|| {
                origin.error(format!("expected a number of at least 1.0, {}", got()))
            })?;
            Ok(Value::Float(f))
        }
        Kind::Ratio => {
            let f = number(value).ok_or_else(|| {
                origin.error(format!("expected a number from 0.0 to 1000.0, {}", got()))
            })?;
            Ok(Value::Float(f))
        }
        Kind::Fraction => {
            let f = number(value).ok_or_else(|| {
                origin.error(format!(
                    "expected a number above 0.0 and at most 1.0, {}",
                    got()
                ))
            })?;
            Ok(Value::Float(f))
        }
        Kind::BreakerMode => {
            let name = one_of(value, origin, "breaker mode", &BREAKER_MODES)?;
            Ok(Value::BreakerMode(if name == "ratio" {
                BreakerMode::Ratio
            } else {
                BreakerMode::Consecutive
            }))
        }
        Kind::Bool => match value.get_ref() {
            DeValue::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(origin.error(format!("expected true or false, {}", got()))),
        },
        Kind::Jitter => {
            let name = one_of(value, origin, "jitter", &JITTERS)?;
            Ok(Value::Jitter(match name {
                "none" => Jitter::None,
                "full" => Jitter::Full,
                "equal" => Jitter::Equal,
                _ => Jitter::Decorrelated,
            }))
        }
        Kind::WhenLimited => {
            let name = one_of(value, origin, "when_limited value", &WHEN_LIMITED)?;
            Ok(Value::WhenLimited(if name == "wait" {
                WhenLimited::Wait
            } else {
                WhenLimited::Reject
            }))
        }
        Kind::Classes => classes(value, origin).map(Value::Classes),
    }
}

fn out_of_range(n: i64, min: i64) -> String {
    if n < min {
        format!("must be at least {min}, got {n}")
    } else {
        format!("must be at most {}, got {n}", u32::MAX)
    }
}

fn integer(value: &Spanned<DeValue<'_>>) -> Option<i64> {
    match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

fn number(value: &Spanned<DeValue<'_>>) -> Option<f64> {
    match value.get_ref() {
        DeValue::Float(f) => f.as_str().parse().ok(),
        DeValue::Integer(_) => integer(value).map(|n| n as f64),
        _ => None,
    }
}

fn string<'a>(value: &'a Spanned<DeValue<'_>>) -> Option<&'a str> {
    value.get_ref().as_str()
}

/// Parses a humantime duration, explaining negative and malformed input.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err(format!(
            "durations cannot be negative, got \"{text}\"; expected {DURATION_HINT}"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration \"{text}\" ({e}); expected {DURATION_HINT}"))
}

fn one_of<'a>(
    value: &Spanned<DeValue<'_>>,
    origin: &Origin,
    what: &str,
    valid: &[&'a str],
) -> Result<&'a str, PolicyError> {
    let Some(text) = string(value) else {
        return Err(origin.error(format!(
            "expected one of: {}, got {} {}",
            valid.join(", "),
            value.get_ref().type_str(),
            origin.text()
        )));
    };
    valid
        .iter()
        .find(|v| **v == text)
        .copied()
        .ok_or_else(|| origin.error(suggest::unknown(what, text, valid)))
}

fn classes(value: &Spanned<DeValue<'_>>, origin: &Origin) -> Result<ClassSet, PolicyError> {
    let names: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
    let DeValue::Array(items) = value.get_ref() else {
        return Err(origin.error(format!(
            "expected an array of error classes (any of: {}), got {} {}",
            names.join(", "),
            value.get_ref().type_str(),
            origin.text()
        )));
    };
    let mut set = Vec::new();
    for item in items {
        let at = Origin::new(&origin.source, item.span(), origin.key.clone());
        let class = match item.get_ref().as_str() {
            Some(text) => text
                .parse::<ErrorClass>()
                .map_err(|_| at.error(suggest::unknown("error class", text, &names)))?,
            None => {
                return Err(at.error(format!(
                    "expected an error class name (one of: {}), got {} {}",
                    names.join(", "),
                    item.get_ref().type_str(),
                    at.text()
                )));
            }
        };
        set.push(class);
    }
    Ok(set.into_iter().collect())
}
