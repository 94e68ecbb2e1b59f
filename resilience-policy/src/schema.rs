//! The policy schema as data: every key, its kind, and the mapping to and from [`Policy`].
//!
//! The loader walks the spanned TOML document against this table instead of deriving
//! `Deserialize` for partial structs: merging profiles key by key, inheriting through
//! `extends` and reporting cross-field errors all need each value's origin, and a table
//! gives unknown-key errors with the full key path and a "did you mean". Unknown keys are
//! rejected exactly as `deny_unknown_fields` would.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::class::ClassSet;
use crate::model::{
    BreakerMode, BreakerPolicy, BudgetPolicy, Jitter, Policy, RateLimitPolicy, RecoveryPolicy,
    RetryPolicy, TimeoutPolicy, WhenLimited,
};

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

/// Tables inside a policy, as dotted paths.
pub(crate) const SECTIONS: [&str; 6] = [
    "retry",
    "retry.budget",
    "circuit_breaker",
    "rate_limit",
    "recovery",
    "timeout",
];

/// Every key of a policy, as a dotted path below `policy.NAME`, and its kind.
pub(crate) const FIELDS: [(&str, Kind); 31] = [
    ("retry.max_attempts", Kind::Count),
    ("retry.initial_delay", Kind::Duration { zero: true }),
    ("retry.multiplier", Kind::Multiplier),
    ("retry.max_delay", Kind::Duration { zero: true }),
    ("retry.jitter", Kind::Jitter),
    ("retry.retry_on", Kind::Classes),
    ("retry.budget.enabled", Kind::Bool),
    ("retry.budget.ratio", Kind::Ratio),
    ("retry.budget.min_per_second", Kind::Uint),
    ("retry.budget.ttl", Kind::Duration { zero: false }),
    ("circuit_breaker.enabled", Kind::Bool),
    ("circuit_breaker.mode", Kind::BreakerMode),
    ("circuit_breaker.failure_threshold", Kind::Count),
    ("circuit_breaker.failure_ratio", Kind::Fraction),
    (
        "circuit_breaker.sampling_window",
        Kind::Duration { zero: false },
    ),
    ("circuit_breaker.minimum_calls", Kind::Count),
    (
        "circuit_breaker.recovery_timeout",
        Kind::Duration { zero: false },
    ),
    ("circuit_breaker.success_threshold", Kind::Count),
    ("circuit_breaker.ignore", Kind::Classes),
    ("rate_limit.enabled", Kind::Bool),
    ("rate_limit.requests_per_minute", Kind::Count),
    ("rate_limit.burst", Kind::Count),
    ("rate_limit.when_limited", Kind::WhenLimited),
    ("rate_limit.max_wait", Kind::Duration { zero: true }),
    ("rate_limit.per_host", Kind::Bool),
    ("recovery.enabled", Kind::Bool),
    ("recovery.max_attempts", Kind::Count),
    ("recovery.check_interval", Kind::Duration { zero: false }),
    ("recovery.credential_refresh", Kind::Bool),
    ("timeout.attempt", Kind::Duration { zero: false }),
    ("timeout.total", Kind::Duration { zero: false }),
];

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
    for path in FIELDS.iter().map(|(p, _)| *p).chain(SECTIONS) {
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
    let Policy {
        retry,
        circuit_breaker: cb,
        rate_limit: rl,
        recovery: rc,
        timeout: to,
    } = policy;
    let b = &retry.budget;
    BTreeMap::from([
        ("retry.max_attempts", Value::Count(retry.max_attempts)),
        ("retry.initial_delay", Value::Duration(retry.initial_delay)),
        ("retry.multiplier", Value::Float(retry.multiplier)),
        ("retry.max_delay", Value::Duration(retry.max_delay)),
        ("retry.jitter", Value::Jitter(retry.jitter)),
        ("retry.retry_on", Value::Classes(retry.retry_on)),
        ("retry.budget.enabled", Value::Bool(b.enabled)),
        ("retry.budget.ratio", Value::Float(b.ratio)),
        ("retry.budget.min_per_second", Value::Uint(b.min_per_second)),
        ("retry.budget.ttl", Value::Duration(b.ttl)),
        ("circuit_breaker.enabled", Value::Bool(cb.enabled)),
        ("circuit_breaker.mode", Value::BreakerMode(cb.mode)),
        (
            "circuit_breaker.failure_threshold",
            Value::Count(cb.failure_threshold),
        ),
        (
            "circuit_breaker.failure_ratio",
            Value::Float(cb.failure_ratio),
        ),
        (
            "circuit_breaker.sampling_window",
            Value::Duration(cb.sampling_window),
        ),
        (
            "circuit_breaker.minimum_calls",
            Value::Count(cb.minimum_calls),
        ),
        (
            "circuit_breaker.recovery_timeout",
            Value::Duration(cb.recovery_timeout),
        ),
        (
            "circuit_breaker.success_threshold",
            Value::Count(cb.success_threshold),
        ),
        ("circuit_breaker.ignore", Value::Classes(cb.ignore)),
        ("rate_limit.enabled", Value::Bool(rl.enabled)),
        (
            "rate_limit.requests_per_minute",
            Value::Count(rl.requests_per_minute),
        ),
        ("rate_limit.burst", Value::Count(rl.burst)),
        (
            "rate_limit.when_limited",
            Value::WhenLimited(rl.when_limited),
        ),
        ("rate_limit.max_wait", Value::Duration(rl.max_wait)),
        ("rate_limit.per_host", Value::Bool(rl.per_host)),
        ("recovery.enabled", Value::Bool(rc.enabled)),
        ("recovery.max_attempts", Value::Count(rc.max_attempts)),
        (
            "recovery.check_interval",
            Value::Duration(rc.check_interval),
        ),
        (
            "recovery.credential_refresh",
            Value::Bool(rc.credential_refresh),
        ),
        ("timeout.attempt", Value::Duration(to.attempt)),
        ("timeout.total", Value::Duration(to.total)),
    ])
}

/// Reads typed values back; the walker stores only values of each key's kind.
struct Reader<'a>(&'a dyn Fn(&str) -> Value);

impl Reader<'_> {
    fn count(&self, path: &str) -> NonZeroU32 {
        match (self.0)(path) {
            Value::Count(n) => n,
            other => unreachable!("`{path}` holds {other:?}, not a count"),
        }
    }
    fn uint(&self, path: &str) -> u32 {
        match (self.0)(path) {
            Value::Uint(n) => n,
            other => unreachable!("`{path}` holds {other:?}, not an integer"),
        }
    }
    fn duration(&self, path: &str) -> Duration {
        match (self.0)(path) {
            Value::Duration(d) => d,
            other => unreachable!("`{path}` holds {other:?}, not a duration"),
        }
    }
    fn float(&self, path: &str) -> f64 {
        match (self.0)(path) {
            Value::Float(f) => f,
            other => unreachable!("`{path}` holds {other:?}, not a number"),
        }
    }
    fn bool(&self, path: &str) -> bool {
        match (self.0)(path) {
            Value::Bool(b) => b,
            other => unreachable!("`{path}` holds {other:?}, not a boolean"),
        }
    }
    fn classes(&self, path: &str) -> ClassSet {
        match (self.0)(path) {
            Value::Classes(c) => c,
            other => unreachable!("`{path}` holds {other:?}, not classes"),
        }
    }
}

/// Builds a policy from a lookup that has a value for every key of [`FIELDS`].
pub(crate) fn from_values(get: &dyn Fn(&str) -> Value) -> Policy {
    let r = Reader(get);
    let jitter = match get("retry.jitter") {
        Value::Jitter(j) => j,
        other => unreachable!("`retry.jitter` holds {other:?}"),
    };
    let when_limited = match get("rate_limit.when_limited") {
        Value::WhenLimited(w) => w,
        other => unreachable!("`rate_limit.when_limited` holds {other:?}"),
    };
    let mode = match get("circuit_breaker.mode") {
        Value::BreakerMode(m) => m,
        other => unreachable!("`circuit_breaker.mode` holds {other:?}"),
    };
    Policy {
        retry: RetryPolicy {
            max_attempts: r.count("retry.max_attempts"),
            initial_delay: r.duration("retry.initial_delay"),
            multiplier: r.float("retry.multiplier"),
            max_delay: r.duration("retry.max_delay"),
            jitter,
            retry_on: r.classes("retry.retry_on"),
            budget: BudgetPolicy {
                enabled: r.bool("retry.budget.enabled"),
                ratio: r.float("retry.budget.ratio"),
                min_per_second: r.uint("retry.budget.min_per_second"),
                ttl: r.duration("retry.budget.ttl"),
            },
        },
        circuit_breaker: BreakerPolicy {
            enabled: r.bool("circuit_breaker.enabled"),
            mode,
            failure_threshold: r.count("circuit_breaker.failure_threshold"),
            failure_ratio: r.float("circuit_breaker.failure_ratio"),
            sampling_window: r.duration("circuit_breaker.sampling_window"),
            minimum_calls: r.count("circuit_breaker.minimum_calls"),
            recovery_timeout: r.duration("circuit_breaker.recovery_timeout"),
            success_threshold: r.count("circuit_breaker.success_threshold"),
            ignore: r.classes("circuit_breaker.ignore"),
        },
        rate_limit: RateLimitPolicy {
            enabled: r.bool("rate_limit.enabled"),
            requests_per_minute: r.count("rate_limit.requests_per_minute"),
            burst: r.count("rate_limit.burst"),
            when_limited,
            max_wait: r.duration("rate_limit.max_wait"),
            per_host: r.bool("rate_limit.per_host"),
        },
        recovery: RecoveryPolicy {
            enabled: r.bool("recovery.enabled"),
            max_attempts: r.count("recovery.max_attempts"),
            check_interval: r.duration("recovery.check_interval"),
            credential_refresh: r.bool("recovery.credential_refresh"),
        },
        timeout: TimeoutPolicy {
            attempt: r.duration("timeout.attempt"),
            total: r.duration("timeout.total"),
        },
    }
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
                "timeout"
            ]
        );
        assert_eq!(
            keys_of("retry.budget"),
            ["enabled", "ratio", "min_per_second", "ttl"]
        );
        assert!(keys_of("retry").contains(&"budget"));
    }
}
