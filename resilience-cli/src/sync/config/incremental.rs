//! The keys of an incremental source: `null_cursor` and `lag`.

use std::ops::Range;

use connector_postgres::{IncrementalOptions, Lag, NullCursor};
use toml::Spanned;

use crate::echo;
use crate::error::CliError;
use crate::sync::config::raw::{RawNullCursor, RawSource};
use crate::sync::config::{DEFAULT_NULL_CURSOR, SyncMode};

/// `null_cursor` and `lag` of an incremental source; set on a full source, an error.
pub(super) fn options(
    src: &RawSource,
    name: &str,
    at: &impl Fn(Range<usize>, String) -> CliError,
) -> Result<IncrementalOptions, CliError> {
    if src.sync_mode == SyncMode::Full {
        for (key, span) in [
            ("null_cursor", src.null_cursor.as_ref().map(Spanned::span)),
            ("lag", src.lag.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                return Err(at(
                    span,
                    format!("source `{name}`: `{key}` only applies to sync_mode = \"incremental\""),
                ));
            }
        }
    }
    let null_cursor = match src.null_cursor.as_ref().map(|n| *n.get_ref()) {
        None => DEFAULT_NULL_CURSOR,
        Some(RawNullCursor::Skip) => NullCursor::Skip,
        Some(RawNullCursor::Error) => NullCursor::Error,
    };
    let mut options = IncrementalOptions::new()
        .null_cursor(null_cursor)
        .adaptive_pages(true);
    if let Some(lag) = &src.lag {
        let expected = "expected a duration such as \"30s\" or \"5m\" (date and timestamp \
                        cursors) or a whole number of units (integer cursors)";
        let value = match lag.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Lag::Units(*n),
            toml::Value::Integer(n) => {
                return Err(at(
                    lag.span(),
                    format!("source `{name}`: lag must not be negative, got {n}; {expected}"),
                ));
            }
            toml::Value::String(text) => {
                Lag::Time(humantime::parse_duration(text.trim()).map_err(|e| {
                    at(
                        lag.span(),
                        format!(
                            "source `{name}`: invalid lag {}: {e}; {expected}",
                            echo::echo(text)
                        ),
                    )
                })?)
            }
            other => {
                return Err(at(
                    lag.span(),
                    format!(
                        "source `{name}`: invalid lag {}, a {}; {expected}",
                        echo::clip(&other.to_string()),
                        other.type_str()
                    ),
                ));
            }
        };
        options = options.lag(value);
    }
    Ok(options)
}
