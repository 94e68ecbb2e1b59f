//! Error classes: the one vocabulary every connector maps its errors into.
//!
//! Policies speak in classes, not in error types: `retry_on = ["connection"]` retries
//! whatever a connector calls a connection failure, whichever driver it sits on. A
//! connector maps its errors with one function (PostgreSQL maps by SQLSTATE, never by
//! message text) by implementing `ResilientError` (in `resilience-core`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of failure an error is, as far as resilience is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The connection was refused, reset or lost; the server shut down or failed over.
    Connection,
    /// An attempt or a query ran out of time.
    Timeout,
    /// A conflict that succeeds when the unit of work runs again (serialization
    /// failure, deadlock, lock not available).
    Transient,
    /// The server is overloaded or asked the client to slow down.
    Throttled,
    /// Bad or expired credentials, or missing privileges.
    Auth,
    /// The configuration is wrong (unknown database, TLS set-up); retrying cannot help.
    Config,
    /// The request itself is wrong (syntax, unknown table or column).
    InvalidInput,
    /// The data broke a rule (conversion, constraint).
    Data,
    /// Anything the connector could not classify. Not retried by default.
    Unknown,
}

impl ErrorClass {
    /// Every class, in declaration order.
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::Connection,
        ErrorClass::Timeout,
        ErrorClass::Transient,
        ErrorClass::Throttled,
        ErrorClass::Auth,
        ErrorClass::Config,
        ErrorClass::InvalidInput,
        ErrorClass::Data,
        ErrorClass::Unknown,
    ];

    /// The name used in policy files and health reports (`"invalid_input"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connection => "connection",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Transient => "transient",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Auth => "auth",
            ErrorClass::Config => "config",
            ErrorClass::InvalidInput => "invalid_input",
            ErrorClass::Data => "data",
            ErrorClass::Unknown => "unknown",
        }
    }

    /// Whether the request or its set-up is wrong (`auth`, `config`, `invalid_input`):
    /// the dependency answered and refused, retrying cannot help, and the caller must
    /// change something (credentials, a database name, a table name).
    pub const fn is_caller_error(self) -> bool {
        matches!(
            self,
            ErrorClass::Auth | ErrorClass::Config | ErrorClass::InvalidInput
        )
    }

    /// A bit for [`ClassSet`].
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a class name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown error class `{0}`, expected one of: connection, timeout, transient, throttled, auth, config, invalid_input, data, unknown"
)]
pub struct UnknownClass(pub String);

impl FromStr for ErrorClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownClass(s.to_owned()))
    }
}

/// A small set of classes, copied by value (a bit set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClassSet(u16);

impl ClassSet {
    /// The empty set.
    pub const EMPTY: ClassSet = ClassSet(0);

    /// A set of the given classes.
    pub const fn of(classes: &[ErrorClass]) -> ClassSet {
        let mut bits = 0;
        let mut i = 0;
        while i < classes.len() {
            bits |= classes[i].bit();
            i += 1;
        }
        ClassSet(bits)
    }

    /// Whether `class` is in the set.
    pub const fn contains(self, class: ErrorClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// The classes in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = ErrorClass> {
        ErrorClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<ErrorClass> for ClassSet {
    fn from_iter<I: IntoIterator<Item = ErrorClass>>(iter: I) -> Self {
        ClassSet(iter.into_iter().fold(0, |bits, c| bits | c.bit()))
    }
}

impl fmt::Debug for ClassSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for ClassSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ClassSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<ErrorClass>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_request_are_the_callers_to_fix() {
        let caller: Vec<_> = ErrorClass::ALL
            .into_iter()
            .filter(|c| c.is_caller_error())
            .collect();
        assert_eq!(
            caller,
            [
                ErrorClass::Auth,
                ErrorClass::Config,
                ErrorClass::InvalidInput
            ]
        );
    }
}
