//! What differs between two versions of a policy, key by key, as a policy file would write
//! each value: what a reload logs, so an operator sees what the new files changed.

use crate::model::Policy;
use crate::schema::{FIELDS, Value, to_values};

/// One key whose value differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The key, a dotted path below `policy.NAME` (`retry.max_attempts`).
    pub key: &'static str,
    /// The value before, as a policy file writes it.
    pub old: String,
    /// The value after.
    pub new: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.key, self.old, self.new)
    }
}

impl Policy {
    /// The keys whose values differ from `other`'s, in schema order.
    ///
    /// ```
    /// use resilience_policy::Policy;
    ///
    /// let mut patient = Policy::default();
    /// patient.retry.max_attempts = 5.try_into().unwrap();
    /// let changes = Policy::default().differences(&patient);
    /// assert_eq!(changes.len(), 1);
    /// assert_eq!(changes[0].to_string(), "retry.max_attempts 3 -> 5");
    /// ```
    pub fn differences(&self, other: &Policy) -> Vec<Difference> {
        let (old, new) = (to_values(self), to_values(other));
        FIELDS
            .iter()
            .filter(|(key, _)| old[key] != new[key])
            .map(|(key, _)| Difference {
                key,
                old: written(old[key]),
                new: written(new[key]),
            })
            .collect()
    }
}

/// A value as a policy file writes it.
fn written(value: Value) -> String {
    match value {
        Value::Count(n) => n.to_string(),
        Value::Uint(n) => n.to_string(),
        Value::Duration(d) => format!("\"{}\"", humantime::format_duration(d)),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Jitter(j) => format!("\"{}\"", j.as_str()),
        Value::WhenLimited(w) => format!("\"{}\"", w.as_str()),
        Value::BreakerMode(m) => format!("\"{}\"", m.as_str()),
        Value::Classes(c) => {
            let names: Vec<String> = c.iter().map(|c| format!("\"{c}\"")).collect();
            format!("[{}]", names.join(", "))
        }
    }
}
