//! The policy schema as data: every key, its kind, and the mapping to and from [`Policy`].
//!
//! Nothing here names a key: the tables and the conversions are generated from the one
//! declaration of each key in `model.rs` (see `table.rs`).
//!
//! The loader walks the spanned TOML document against this table instead of deriving
//! `Deserialize` for partial structs: merging profiles key by key, inheriting through
//! `extends` and reporting cross-field errors all need each value's origin, and a table
//! gives unknown-key errors with the full key path and a "did you mean". Unknown keys are
//! rejected exactly as `deny_unknown_fields` would.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::Duration;

use crate::class::ClassSet;
use crate::model::{BreakerMode, Jitter, Policy, WhenLimited};
use crate::table::Table;

/// What a key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An integer, at least 1.
    Count,
    /// An integer, at least 0.
    Uint,
    /// A humantime string; `zero` says whether `"0s"` is allowed.
    Duration { zero: bool },
    /// A finite number, at least 1.0.
    Multiplier,
    /// A number from 0.0 to 1000.0.
    Ratio,
    /// A number above 0.0, at most 1.0.
    Fraction,
    /// `true` or `false`.
    Bool,
    /// `none | full | equal | decorrelated`.
    Jitter,
    /// `wait | reject`.
    WhenLimited,
    /// `consecutive | ratio`.
    BreakerMode,
    /// An array of error class names.
    Classes,
}

/// One checked value of a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Count(NonZeroU32),
    Uint(u32),
    Duration(Duration),
    Float(f64),
    Bool(bool),
    Jitter(Jitter),
    WhenLimited(WhenLimited),
    BreakerMode(BreakerMode),
    Classes(ClassSet),
}

/// Tables inside a policy, as dotted paths, each before its own sub-tables.
pub(crate) static SECTIONS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut sections = Vec::new();
    Policy::sections(&mut sections);
    sections
});

/// Every key of a policy, as a dotted path below `policy.NAME`, and its kind, in the order
/// `model.rs` declares them.
pub(crate) static FIELDS: LazyLock<Vec<(&'static str, Kind)>> = LazyLock::new(|| {
    let mut fields = Vec::new();
    Policy::fields(&mut fields);
    fields
});

/// The keys and sub-tables allowed directly in the table at `section` (`""` for the
/// policy itself), in schema order.
pub(crate) fn keys_of(section: &str) -> Vec<&'static str> {
    let prefix = if section.is_empty() {
        String::new()
    } else {
        format!("{section}.")
    };
    let mut keys: Vec<&'static str> = Vec::new();
    if section.is_empty() {
        keys.push("extends");
    }
    let paths = FIELDS
        .iter()
        .map(|(p, _)| *p)
        .chain(SECTIONS.iter().copied());
    // The policy's own tables read first, its few plain keys (`shared`) after them.
    let paths: Vec<&'static str> = if section.is_empty() {
        let (nested, plain): (Vec<_>, Vec<_>) = paths.partition(|p| p.contains('.'));
        nested.into_iter().chain(plain).collect()
    } else {
        paths.collect()
    };
    for path in paths {
        if let Some(rest) = path.strip_prefix(prefix.as_str()) {
            let key = rest.split('.').next().unwrap_or(rest);
            if !key.is_empty() && !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// A policy's values by key path.
pub(crate) type Values = BTreeMap<&'static str, Value>;

/// Every key of `policy` with its value.
pub(crate) fn to_values(policy: &Policy) -> Values {
    let mut values = Values::new();
    policy.to_values(&mut values);
    values
}

/// Builds a policy from a lookup that has a value for every key of [`FIELDS`].
pub(crate) fn from_values(get: &dyn Fn(&str) -> Value) -> Policy {
    Policy::from_values(get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_the_model_agree() {
        let values = to_values(&Policy::default());
        let fields: Vec<&str> = FIELDS.iter().map(|(path, _)| *path).collect();
        assert_eq!(values.keys().copied().collect::<Vec<_>>(), {
            let mut sorted = fields.clone();
            sorted.sort_unstable();
            sorted
        });
        let rebuilt = from_values(&|path| values[path]);
        assert_eq!(rebuilt, Policy::default());
    }

    #[test]
    fn keys_of_each_table() {
        assert_eq!(
            keys_of(""),
            [
                "extends",
                "retry",
                "circuit_breaker",
                "rate_limit",
                "recovery",
                "timeout",
                "shared"
            ]
        );
        assert_eq!(
            keys_of("retry.budget"),
            ["enabled", "ratio", "min_per_second", "ttl"]
        );
        assert!(keys_of("retry").contains(&"budget"));
    }
}
