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
//! ```
//!
//! Unknown keys are errors, and every error names `file:line:column`. Passwords are only
//! ever named (`password_env`), so a pipeline file can be committed and printed safely.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};

use connector_postgres::PgParams;
use resilience_core::policy::PolicySet;
use serde::Deserialize;
use toml::Spanned;

use crate::error::CliError;
use crate::sync::connection::{RawConnection, connection};

/// How a source is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// The whole table, rewritten atomically each run.
    Full,
    /// Only rows after the last checkpoint, appended as new part files.
    Incremental,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SourceType {
    Postgres,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    batch_size: Option<NonZeroUsize>,
    commit_rows: Option<NonZeroUsize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    #[serde(rename = "type")]
    _kind: SourceType,
    connection: Spanned<String>,
    table: String,
    sync_mode: SyncMode,
    cursor_field: Option<String>,
    policy: Option<Spanned<String>>,
    batch_size: Option<NonZeroUsize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    #[serde(default)]
    pipeline: RawSettings,
    #[serde(default)]
    connections: BTreeMap<String, Spanned<RawConnection>>,
    sources: Vec<Spanned<RawSource>>,
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
    /// Rows per page.
    pub batch_size: usize,
}

/// A loaded pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The sources, in file order.
    pub sources: Vec<Source>,
    /// Incremental: rows per committed part file.
    pub commit_rows: usize,
}

const DEFAULT_BATCH: usize = 5000;
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
    let raw: RawPipeline = toml::from_str(&text)
        .map_err(|e| at(e.span().unwrap_or(0..0), e.message().trim_end().to_owned()))?;
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
                format!("source name `{name}` must be letters, digits, `_` or `-`"),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(at(
                src.name.span(),
                format!("source `{name}` is declared twice"),
            ));
        }
        let mut params = match override_url {
            Some(url) => crate::connect::params_from_url(url, "--database-url")?,
            None => connections
                .get(src.connection.get_ref().as_str())
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = connections.keys().copied().collect();
                    at(
                        src.connection.span(),
                        format!(
                            "unknown connection `{}`, expected one of: {}",
                            src.connection.get_ref(),
                            if known.is_empty() {
                                "(none declared under [connections.NAME])".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })?,
        };
        if let Some(policy) = &src.policy {
            if policies.get(policy.get_ref()).is_none() {
                let known: Vec<&str> = policies.names().collect();
                return Err(at(
                    policy.span(),
                    format!(
                        "unknown policy `{}`, expected one of: {}",
                        policy.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            params.policy = policy.get_ref().clone();
        }
        if src.sync_mode == SyncMode::Incremental && src.cursor_field.is_none() {
            return Err(at(
                spanned.span(),
                format!("source `{name}`: sync_mode = \"incremental\" needs cursor_field"),
            ));
        }
        sources.push(Source {
            name: name.clone(),
            params,
            table: src.table.clone(),
            mode: src.sync_mode,
            cursor_field: src.cursor_field.clone(),
            batch_size: src
                .batch_size
                .or(raw.pipeline.batch_size)
                .map_or(DEFAULT_BATCH, NonZeroUsize::get),
        });
    }
    Ok(Pipeline {
        sources,
        commit_rows: raw
            .pipeline
            .commit_rows
            .map_or(DEFAULT_COMMIT, NonZeroUsize::get),
    })
}

/// A `file:line:column` error for byte offset `offset` of `text`.
fn located(file: &Path, text: &str, offset: usize, message: String) -> CliError {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    CliError::ConfigAt {
        file: PathBuf::from(file),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use connector_postgres::Credential;

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
        }
    }

    #[test]
    fn connection_fields_and_password_env() {
        let path = std::env::temp_dir().join(format!("pipeline-{}.toml", std::process::id()));
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
