//! Rules that relate two keys, checked on the resolved policy before it is built.
//!
//! The two values may come from different layers or from a parent policy; the error points
//! at whichever was set last, since that is the edit that broke the rule.

use std::time::Duration;

use crate::error::PolicyError;
use crate::location::Sourced;
use crate::model::Policy;
use crate::resolve::Resolved;
use crate::schema::{self, Value};

/// Checks cross-field rules and builds the policy `name`.
pub(crate) fn build(name: &str, values: &Resolved) -> Result<Policy, PolicyError> {
    ordered(name, values, "retry.initial_delay", "retry.max_delay")?;
    ordered(name, values, "timeout.attempt", "timeout.total")?;
    Ok(schema::from_values(&|path| values[path].value))
}

/// Requires `values[low] <= values[high]` (both durations).
fn ordered(name: &str, values: &Resolved, low: &str, high: &str) -> Result<(), PolicyError> {
    let (lo, hi) = (&values[low], &values[high]);
    let (lo_d, hi_d) = (duration(lo), duration(hi));
    if lo_d <= hi_d {
        return Ok(());
    }
    // Blame the value set last; a schema default is never the culprit.
    let (blamed, other, other_key, relation) = if hi.is_after(lo) {
        (hi, lo, low, "below")
    } else {
        (lo, hi, high, "above")
    };
    let (Some(at), got) = (&blamed.origin, duration(blamed)) else {
        unreachable!("the schema defaults satisfy `{low}` <= `{high}`")
    };
    let other_at = other.origin.as_ref().map_or("the default".to_owned(), |o| {
        format!("set at {}", o.location())
    });
    let inherited = if at.key.starts_with(&format!("policy.{name}.")) {
        String::new()
    } else {
        format!(" (inherited by policy `{name}`)")
    };
    Err(at.error(format!(
        "must not be {relation} `{other_key}` ({}, {other_at}), got {}{inherited}",
        humantime::format_duration(duration(other)),
        humantime::format_duration(got),
    )))
}

fn duration(value: &Sourced<Value>) -> Duration {
    match value.value {
        Value::Duration(d) => d,
        other => unreachable!("a duration key holds {other:?}"),
    }
}
