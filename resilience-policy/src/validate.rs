//! A resolved policy checked against [`rules`](crate::rules) before it is built, with a
//! broken rule reported where the offending value was written.
//!
//! The values of a rule between two keys may come from different layers or from a parent
//! policy; the error points at whichever was set last, since that is the edit that broke
//! the rule.

use crate::error::PolicyError;
use crate::location::Sourced;
use crate::model::Policy;
use crate::resolve::Resolved;
use crate::rules::{self, Violation};
use crate::schema::{self, Value};

/// Checks every rule and builds the policy `name`.
pub(crate) fn build(name: &str, values: &Resolved) -> Result<Policy, PolicyError> {
    let policy = schema::from_values(&|path| values[path].value);
    match rules::check(&policy) {
        Ok(()) => Ok(policy),
        Err(violation) => Err(locate(name, values, violation)),
    }
}

/// The violation as an error at the value that broke the rule.
fn locate(name: &str, values: &Resolved, violation: Violation) -> PolicyError {
    let Violation {
        key,
        other,
        message,
    } = violation;
    let Some(other) = other else {
        return match &values[key].origin {
            Some(at) => at.error(message),
            None => PolicyError::InvalidPolicy {
                policy: name.to_owned(),
                key: format!("policy.{name}.{key}"),
                message,
            },
        };
    };
    let (low, high) = (&values[key], &values[other]);
    // Blame the value set last; a schema default is never the culprit.
    let (blamed, unblamed, unblamed_key, relation) = if high.is_after(low) {
        (high, low, key, "below")
    } else {
        (low, high, other, "above")
    };
    let Some(at) = &blamed.origin else {
        return PolicyError::InvalidPolicy {
            policy: name.to_owned(),
            key: format!("policy.{name}.{key}"),
            message,
        };
    };
    let other_at = unblamed
        .origin
        .as_ref()
        .map_or("the default".to_owned(), |o| {
            format!("set at {}", o.location())
        });
    let inherited = if at.key.starts_with(&format!("policy.{name}.")) {
        String::new()
    } else {
        format!(" (inherited by policy `{name}`)")
    };
    at.error(format!(
        "must not be {relation} `{unblamed_key}` ({}, {other_at}), got {}{inherited}",
        humantime::format_duration(duration(unblamed)),
        humantime::format_duration(duration(blamed)),
    ))
}

fn duration(value: &Sourced<Value>) -> std::time::Duration {
    rules::duration(value.value)
}
