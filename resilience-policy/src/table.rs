//! One declaration per policy key: the `policy_table!` macro.
//!
//! A key used to be written in four places (the model struct, its `Default`, the schema
//! table and the conversions to and from checked values) held together only by tests.
//! Now each table of a policy is declared once, in `model.rs`, with `policy_table!`, and
//! the macro generates everything else from that one line per key:
//!
//! - the public struct field, with its doc comment;
//! - its default (the `db` preset), in `Default`;
//! - its entry in the schema ([`FIELDS`](crate::schema::FIELDS)): the dotted path the
//!   loader accepts, and the [`Kind`](crate::schema::Kind) its value is checked against;
//! - the conversion to and from a checked [`Value`](crate::schema::Value), which is how
//!   the loader merges layers key by key, resolves `extends`, blames a value in a
//!   cross-key rule and lists what a reload changed;
//! - its serialised form (durations as humantime strings, as a policy file writes them).
//!
//! # Adding a key
//!
//! Add one line to the table it belongs to in `model.rs`:
//!
//! ```text
//! /// What the key means, for rustdoc.
//! max_wait: Duration = Duration::from_secs(10) => Kind::Duration { zero: true },
//! ```
//!
//! The type must implement [`KeyType`] (every type a key holds today does); a new kind of
//! value means a new [`Kind`](crate::schema::Kind) variant, checked in `convert.rs` and
//! `rules.rs`. Then document the key in `policies/reference.toml`: a test fails, naming
//! the key, until the reference covers the schema again. The built-in presets in
//! `policies/default.toml` need not change: a key they leave out takes the default above.
//!
//! # Adding a table
//!
//! Declare its struct with `policy_table!` at its dotted path (`at "store."`), and add it
//! under `tables { ... }` of its parent. The paths are checked at compile time: a table
//! declared at a path other than its parent's path and field name does not build.

use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::class::ClassSet;
use crate::model::{BreakerMode, Jitter, WhenLimited};
use crate::schema::{Kind, Value, Values};

/// A table of a policy (the policy itself, `[retry]`, `[retry.budget]`, ...), as the
/// schema walks it. Implemented by `policy_table!` only.
pub(crate) trait Table: Sized {
    /// The table's dotted path with a trailing dot (`"retry.budget."`), `""` for the
    /// policy itself.
    const PREFIX: &'static str;
    /// Appends every key of this table and the tables below it, in declaration order.
    fn fields(out: &mut Vec<(&'static str, Kind)>);
    /// Appends the paths of the tables below this one, each before its own sub-tables.
    fn sections(out: &mut Vec<&'static str>);
    /// Inserts the value of every key of this table and the tables below it.
    fn to_values(&self, out: &mut Values);
    /// Builds the table from a lookup that has a value for every key below it.
    fn from_values(get: &dyn Fn(&str) -> Value) -> Self;
}

/// A type a policy key may hold, and its checked [`Value`].
pub(crate) trait KeyType: Sized {
    /// The value as the loader stores it.
    fn to_value(&self) -> Value;
    /// The value back; the loader stores only values of each key's kind, so any other
    /// variant is a bug.
    fn from_value(path: &str, value: Value) -> Self;
}

macro_rules! key_types {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl KeyType for $ty {
            fn to_value(&self) -> Value {
                Value::$variant(*self)
            }
            fn from_value(path: &str, value: Value) -> Self {
                match value {
                    Value::$variant(v) => v,
                    other => unreachable!(
                        "`{path}` holds {other:?}, not {}",
                        stringify!($variant)
                    ),
                }
            }
        }
    )*};
}

key_types! {
    NonZeroU32 => Count,
    u32 => Uint,
    Duration => Duration,
    f64 => Float,
    bool => Bool,
    Jitter => Jitter,
    WhenLimited => WhenLimited,
    BreakerMode => BreakerMode,
    ClassSet => Classes,
}

/// Serialises a key as a policy file writes it (`serialize_with` of every key).
pub(crate) fn serialize_key<T: KeyType, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value.to_value() {
        Value::Count(n) => n.serialize(serializer),
        Value::Uint(n) => n.serialize(serializer),
        Value::Duration(d) => serializer.collect_str(&humantime::format_duration(d)),
        Value::Float(f) => f.serialize(serializer),
        Value::Bool(b) => b.serialize(serializer),
        Value::Jitter(j) => j.as_str().serialize(serializer),
        Value::WhenLimited(w) => w.as_str().serialize(serializer),
        Value::BreakerMode(m) => m.as_str().serialize(serializer),
        Value::Classes(c) => c.serialize(serializer),
    }
}

/// `a == b`, in a constant (for the compile-time check of table paths).
pub(crate) const fn same_path(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Declares one table of a policy; see the module docs.
///
/// ```text
/// policy_table! {
///     /// Struct docs.
///     pub struct RetryPolicy at "retry." {
///         /// Key docs.
///         key: Type = default => Kind::...,
///     } tables {
///         /// Table docs.
///         budget: BudgetPolicy,
///     }
/// }
/// ```
macro_rules! policy_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident at $prefix:literal {
            $(
                $(#[$key_meta:meta])*
                $key:ident : $ty:ty = $default:expr => $kind:expr
            ),* $(,)?
        }
        $(tables {
            $(
                $(#[$table_meta:meta])*
                $table:ident : $table_ty:ident
            ),* $(,)?
        })?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize)]
        $vis struct $name {
            $(
                $(#[$key_meta])*
                #[serde(serialize_with = "crate::table::serialize_key")]
                pub $key: $ty,
            )*
            $($(
                $(#[$table_meta])*
                pub $table: $table_ty,
            )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    $($key: $default,)*
                    $($($table: <$table_ty as Default>::default(),)*)?
                }
            }
        }

        $($(
            const _: () = assert!(
                $crate::table::same_path(
                    <$table_ty as $crate::table::Table>::PREFIX,
                    concat!($prefix, stringify!($table), "."),
                ),
                concat!(
                    "`", stringify!($table_ty), "` must be declared at \"",
                    $prefix, stringify!($table), ".\"",
                ),
            );
        )*)?

        impl $crate::table::Table for $name {
            const PREFIX: &'static str = $prefix;

            fn fields(out: &mut Vec<(&'static str, $crate::schema::Kind)>) {
                $(out.push((concat!($prefix, stringify!($key)), $kind));)*
                $($(<$table_ty as $crate::table::Table>::fields(out);)*)?
            }

            fn sections(out: &mut Vec<&'static str>) {
                let _ = &out; // a table without sub-tables
                $($(
                    out.push(concat!($prefix, stringify!($table)));
                    <$table_ty as $crate::table::Table>::sections(out);
                )*)?
            }

            fn to_values(&self, out: &mut $crate::schema::Values) {
                $(out.insert(
                    concat!($prefix, stringify!($key)),
                    $crate::table::KeyType::to_value(&self.$key),
                );)*
                $($($crate::table::Table::to_values(&self.$table, out);)*)?
            }

            fn from_values(get: &dyn Fn(&str) -> $crate::schema::Value) -> Self {
                $name {
                    $($key: {
                        let path = concat!($prefix, stringify!($key));
                        $crate::table::KeyType::from_value(path, get(path))
                    },)*
                    $($($table: <$table_ty as $crate::table::Table>::from_values(get),)*)?
                }
            }
        }
    };
}

pub(crate) use policy_table;

#[cfg(test)]
#[allow(unreachable_pub)]
mod tests {
    use super::*;
    use crate::model::Policy;

    policy_table! {
        /// A policy with a key of its own and one table, as a new key or table is added.
        pub struct Outer at "" {
            /// A key directly in the policy.
            shared: bool = false => Kind::Bool,
        } tables {
            /// A table.
            store: Store,
        }
    }

    policy_table! {
        /// The table.
        pub struct Store at "store." {
            /// A key in the table.
            limit: u32 = 7 => Kind::Uint,
            /// Another.
            ttl: Duration = Duration::from_secs(5) => Kind::Duration { zero: false },
        }
    }

    #[test]
    fn one_line_per_key_gives_the_schema_and_the_conversions() {
        let mut fields = Vec::new();
        Outer::fields(&mut fields);
        assert_eq!(
            fields,
            [
                ("shared", Kind::Bool),
                ("store.limit", Kind::Uint),
                ("store.ttl", Kind::Duration { zero: false }),
            ]
        );
        let mut sections = Vec::new();
        Outer::sections(&mut sections);
        assert_eq!(sections, ["store"]);

        let mut changed = Outer {
            shared: true,
            ..Outer::default()
        };
        changed.store.limit = 9;
        let mut values = Values::new();
        changed.to_values(&mut values);
        assert_eq!(values["shared"], Value::Bool(true));
        assert_eq!(values["store.limit"], Value::Uint(9));
        assert_eq!(values["store.ttl"], Value::Duration(Duration::from_secs(5)));
        assert_eq!(Outer::from_values(&|path| values[path]), changed);
    }

    #[test]
    fn keys_serialise_as_a_policy_file_writes_them() {
        let text = toml::to_string(&Policy::default()).unwrap();
        for line in [
            "max_attempts = 3",
            "initial_delay = \"1s\"",
            "multiplier = 2.0",
            "jitter = \"full\"",
            "retry_on = [\"connection\", \"timeout\", \"transient\", \"throttled\"]",
            "mode = \"consecutive\"",
            "total = \"2m\"",
        ] {
            assert!(text.lines().any(|l| l == line), "`{line}` in:\n{text}");
        }
        assert!(text.contains("[retry.budget]"), "{text}");
    }

    #[test]
    fn paths_compare_in_constants() {
        const { assert!(same_path("retry.budget.", "retry.budget.")) };
        assert!(!same_path("retry.", "retry.budget."));
        assert!(!same_path("retry.", "retyr."));
    }
}
