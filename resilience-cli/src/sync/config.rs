//! The pipeline file: which tables to copy, from which connection, how.
//!
//! ```toml
//! [pipeline]
//! batch_size = 5000          # rows per page (optional)
//! commit_rows = 50000        # incremental: rows per committed part file (optional)
//!
//! [connections.demo]
//! url = "postgres://postgres@127.0.0.1:5432/resilient_demo"   # or host/port/database/user
//! password_env = "PGPASSWORD"                                 # never the password itself
//!
//! [[sources]]
//! name = "customers"
//! type = "postgres"
//! connection = "demo"
//! table = "customers"
//! sync_mode = "incremental"  # or "full"
//! cursor_field = "updated_at"
//! policy = "db"              # optional, default db
//! null_cursor = "error"      # incremental: rows with a NULL cursor fail the run ("error",
//!                            # the default) or are left out and counted ("skip")
//! lag = "5m"                 # incremental, optional: re-read this window below the
//!                            # checkpoint for late commits; a duration for date/timestamp
//!                            # cursors, an integer number of units for integer cursors
//! ```
//!
//! A `type = "http"` source reads a stream of a REST API instead: it names the API's
//! settings file and a stream in it ([`api_source`](super::api_source)).
//!
//! Sources also take `page_size` and `page_memory_mb`, and full sources `partitions`, in
//! `[pipeline]` or on the source ([`read_options`](super::read_options)). A `[state]`
//! table lets several workers share the pipeline's state in Redis ([`workers`]).
//!
//! `null_cursor` defaults to `"error"`: an incremental read cannot place a row whose cursor
//! is NULL, so it would never be copied; the run refuses rather than lose rows silently.
//! With `"skip"` the rows are left out, and their count is logged, shown in the run's
//! summary and recorded in the state (`null_cursor_rows`). `lag` re-reads rows committed
//! late; rows an earlier run already delivered are recognised by the transaction that wrote
//! them (the state stays a few hundred bytes however many rows the window holds), so none
//! is repeated.
//!
//! Unknown keys are errors, and every error names `file:line:column`. Passwords are only
//! ever named (`password_env`), so a pipeline file can be committed and printed safely.

mod incremental;
mod postgres;
pub(super) mod raw;

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::Path;

use connector_postgres::{IncrementalOptions, NullCursor, PgParams, ReadOptions};
use resilience_core::policy::PolicySet;
use serde::Deserialize;

use crate::echo;
use crate::error::CliError;
use crate::sync::api_source::{self, ApiSource};
use crate::sync::connection::connection;
use crate::sync::location::{Locations, locate};
use crate::sync::workers;
use raw::{RawPipeline, SourceType};

/// How a source is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// The whole table, rewritten atomically each run.
    Full,
    /// Only rows after the last checkpoint, appended as new part files.
    Incremental,
}

/// One source, resolved and validated.
#[derive(Debug, Clone)]
pub struct Source {
    /// The source's name: output files and state entries are named after it.
    pub name: String,
    /// Connection parameters (the policy already set).
    pub params: PgParams,
    /// The table, as discovery names it.
    pub table: String,
    /// Full or incremental.
    pub mode: SyncMode,
    /// The cursor column (incremental only).
    pub cursor_field: Option<String>,
    /// Rows per batch (and the first page of a full read; every page of an incremental one).
    pub batch_size: usize,
    /// How a full source is read: page sizing and partitions.
    pub read: ReadOptions,
    /// Incremental: NULL-cursor policy and lag window.
    pub incremental: IncrementalOptions,
    /// Where the source's settings are written in the pipeline file.
    pub at: Locations,
    /// A REST API source (`type = "http"`): its settings; `None` for PostgreSQL.
    pub api: Option<ApiSource>,
}

/// The NULL-cursor policy when a source does not set `null_cursor`.
pub const DEFAULT_NULL_CURSOR: NullCursor = NullCursor::Error;

/// A loaded pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The sources, in file order.
    pub sources: Vec<Source>,
    /// Incremental: rows per committed part file.
    pub commit_rows: usize,
    /// `[state] backend = "redis"`: the state is shared by workers ([`workers`]).
    pub shared: Option<workers::Settings>,
}

pub(super) const DEFAULT_BATCH: usize = 5000;
const DEFAULT_COMMIT: usize = 50_000;

/// Reads and validates `path`; `policies` are the loaded policies a source may name, and
/// `override_url` replaces every connection.
pub fn load(
    path: &Path,
    policies: &PolicySet,
    override_url: Option<&str>,
) -> Result<Pipeline, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the pipeline file {}: {e}",
            path.display()
        ))
    })?;
    let at = |span: Range<usize>, message: String| located(path, &text, span.start, message);
    let loc = |span: Range<usize>| locate(path, &text, span.start);
    let raw: RawPipeline = toml::from_str(&text).map_err(|e| {
        let message = echo::plain(e.message().trim_end(), ("a table", "table"));
        at(
            e.span().unwrap_or(0..0),
            echo::clip_quoted(&message).into_owned(),
        )
    })?;
    let mut connections = BTreeMap::new();
    for (name, conn) in &raw.connections {
        connections.insert(name.as_str(), connection(conn, &at)?);
    }
    if raw.sources.is_empty() {
        return Err(at(0..0, "no [[sources]] declared; add at least one".into()));
    }
    let mut seen = HashSet::new();
    let mut sources = Vec::new();
    for spanned in &raw.sources {
        let src = spanned.get_ref();
        let name = src.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(at(
                src.name.span(),
                format!(
                    "source name {} must be letters, digits, `_` or `-`",
                    echo::echo(name)
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(at(
                src.name.span(),
                format!("source `{name}` is declared twice"),
            ));
        }
        let source = match src.kind {
            SourceType::Http => {
                if src.sync_mode == SyncMode::Incremental && src.cursor_field.is_none() {
                    return Err(at(
                        spanned.span(),
                        format!("source `{name}`: sync_mode = \"incremental\" needs cursor_field"),
                    ));
                }
                api_source::source(path, src, spanned.span(), policies, &at, &loc)?
            }
            SourceType::Postgres => postgres::source(
                spanned,
                &raw,
                &connections,
                policies,
                override_url,
                &at,
                &loc,
            )?,
        };
        sources.push(source);
    }
    Ok(Pipeline {
        sources,
        commit_rows: raw
            .pipeline
            .commit_rows
            .map_or(DEFAULT_COMMIT, NonZeroUsize::get),
        shared: match &raw.state {
            Some(state) => {
                workers::resolve(state.get_ref(), path).map_err(|m| at(state.span(), m))?
            }
            None => None,
        },
    })
}

/// A `file:line:column` error for byte offset `offset` of `text`.
fn located(file: &Path, text: &str, offset: usize, message: String) -> CliError {
    locate(file, text, offset).error(message)
}

#[cfg(test)]
mod tests {
    use connector_postgres::{Credential, Lag};

    use super::*;

    #[test]
    fn shipped_pipeline_declares_the_four_demo_tables() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/resilient_postgres.toml");
        let pipeline = load(&path, &PolicySet::builtin(), None).unwrap();
        let names: Vec<_> = pipeline.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["customers", "products", "orders", "order_items"]);
        for source in &pipeline.sources {
            assert_eq!(source.mode, SyncMode::Incremental);
            assert_eq!(source.cursor_field.as_deref(), Some("updated_at"));
            assert_eq!(source.params.database, "resilient_demo");
            assert_eq!(source.params.policy, "db");
            assert_eq!(source.incremental.null_cursor, NullCursor::Error);
            assert_eq!(source.incremental.lag, None);
        }
    }

    /// Loads a one-source pipeline with `extra` lines appended to the source.
    fn load_source(tag: &str, mode: &str, extra: &str) -> Result<Pipeline, CliError> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(format!("pipeline-{tag}.toml"));
        std::fs::write(
            &path,
            format!(
                "[connections.a]\nurl = \"postgres://u@127.0.0.1:1/d\"\n\n[[sources]]\n\
                 name = \"t\"\ntype = \"postgres\"\nconnection = \"a\"\ntable = \"t\"\n\
                 sync_mode = \"{mode}\"\ncursor_field = \"c\"\n{extra}"
            ),
        )
        .unwrap();
        let result = load(&path, &PolicySet::builtin(), None);
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn null_cursor_defaults_to_error_and_can_skip() {
        let p = load_source("nc-default", "incremental", "").unwrap();
        assert_eq!(p.sources[0].incremental.null_cursor, NullCursor::Error);
        assert_eq!(p.sources[0].incremental.lag, None);
        let p = load_source("nc-skip", "incremental", "null_cursor = \"skip\"\n").unwrap();
        assert_eq!(p.sources[0].incremental.null_cursor, NullCursor::Skip);
        let p = load_source("nc-error", "incremental", "null_cursor = \"error\"\n").unwrap();
        assert_eq!(p.sources[0].incremental.null_cursor, NullCursor::Error);
    }

    #[test]
    fn unknown_null_cursor_is_located() {
        let err = load_source("nc-bad", "incremental", "null_cursor = \"ignore\"\n").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains(":11:15: "), "{text}");
        assert!(
            text.contains("`skip`") && text.contains("`error`"),
            "{text}"
        );
    }

    #[test]
    fn lag_is_a_duration_or_units() {
        let p = load_source("lag-time", "incremental", "lag = \"5m\"\n").unwrap();
        assert_eq!(
            p.sources[0].incremental.lag,
            Some(Lag::Time(std::time::Duration::from_secs(300)))
        );
        let p = load_source("lag-units", "incremental", "lag = 100\n").unwrap();
        assert_eq!(p.sources[0].incremental.lag, Some(Lag::Units(100)));
        for (tag, bad, want) in [
            ("lag-word", "lag = \"soon\"", "invalid lag `soon`"),
            ("lag-neg", "lag = -3", "lag must not be negative"),
            ("lag-bool", "lag = true", "invalid lag true, a boolean"),
        ] {
            let err = load_source(tag, "incremental", &format!("{bad}\n")).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            let text = err.to_string();
            assert!(text.contains(":11:7: source `t`: "), "{bad}: {text}");
            assert!(text.contains(want), "{bad}: {text}");
        }
    }

    #[test]
    fn incremental_keys_on_a_full_source_are_errors() {
        let err = load_source("full-lag", "full", "lag = \"5m\"\n").unwrap_err();
        assert!(
            err.to_string()
                .contains(":11:7: source `t`: `lag` only applies to sync_mode = \"incremental\""),
            "{err}"
        );
    }

    #[test]
    fn connection_fields_and_password_env() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pipeline.toml");
        std::fs::write(
            &path,
            "[connections.a]\nhost = \"10.0.0.1\"\nport = 6432\ndatabase = \"d\"\nuser = \"u\"\n\
             password_env = \"APP_PW\"\n\n[[sources]]\nname = \"t\"\ntype = \"postgres\"\n\
             connection = \"a\"\ntable = \"t\"\nsync_mode = \"full\"\n",
        )
        .unwrap();
        let pipeline = load(&path, &PolicySet::builtin(), None).unwrap();
        std::fs::remove_file(&path).unwrap();
        let p = &pipeline.sources[0].params;
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str()),
            ("10.0.0.1", 6432, "u")
        );
        assert_eq!(p.password, Some(Credential::Env("APP_PW".into())));
    }
}
