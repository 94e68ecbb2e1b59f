//! Copying one source: a full snapshot, or the next incremental parts.
//!
//! Both paths follow the same rule: write a file, make it durable, then advance the state;
//! never the other way round ([`commit`](super::commit)).

use std::path::Path;
use std::pin::pin;

use connector_postgres::arrow::NumericMapping;
use connector_postgres::{PgError, PostgresConnector};
use futures_util::StreamExt;
use resilience_core::Engine;

use crate::args::Format;
use crate::connect;
use crate::echo::clip;
use crate::error::CliError;
use crate::sync::commit::{self, Parts, Position};
use crate::sync::config::{Source, SyncMode};
use crate::sync::ownership::{Claim, remove_orphans};
use crate::sync::progress::Progress;
use crate::sync::source_error;
use crate::sync::state::{SourceState, StateFile};
use crate::sync::writer::{self, AtomicFile};

/// What every source of a run shares.
pub struct Context<'a> {
    /// The engine all connectors run on (one breaker and limiter per host).
    pub engine: &'a Engine,
    /// The output folder.
    pub output: &'a Path,
    /// The output format.
    pub format: Format,
    /// Incremental: rows per committed part.
    pub commit_rows: usize,
    /// The output folder, owned by this run.
    pub claim: &'a Claim,
}

/// What a run of one source reports for the run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Rows written by this run.
    pub rows: u64,
    /// Rows of the table left out because their cursor is NULL (`null_cursor = "skip"`).
    pub null_cursor_rows: u64,
}

/// How to start a source over, for the consistency errors.
pub(crate) fn reset_hint(source: &str, state: &Path) -> String {
    format!(
        "to start over, delete the entry \"{source}\" under \"sources\" in {} and the \
         source's files `{source}.*` in the output folder, or use a new --state and --output",
        state.display()
    )
}

/// Refuses to run `source` in incremental mode over the full snapshot its state records.
pub(super) fn synced_in_full(source: &Source, state: &StateFile) -> CliError {
    source.at.source.error(format!(
        "source `{}` was synced in full mode with this state; {}",
        source.name,
        reset_hint(&source.name, state.path())
    ))
}

/// Refuses to run `source` in full mode over a state entry written for something else:
/// an incremental entry (its checkpoint would be dropped and its part files would sit next
/// to the snapshot, every row twice), another table, or another format (the old snapshot
/// would stay behind as a stale file).
pub(super) fn check_full(source: &Source, format: &str, state: &StateFile) -> Result<(), CliError> {
    match state.state.sources.get(&source.name) {
        None => Ok(()),
        Some(SourceState::Full {
            table, format: f, ..
        }) if *table == source.table && f == format => Ok(()),
        Some(SourceState::Full {
            table, format: f, ..
        }) => Err(source.at.table.error(format!(
            "source `{}`: the state was written for a full sync of table {} in format {f}; \
             the pipeline now says table {}, format {format}; {}",
            source.name,
            clip(table),
            clip(&source.table),
            reset_hint(&source.name, state.path())
        ))),
        Some(SourceState::Incremental { next_part, .. }) => Err(source.at.source.error(format!(
            "source `{}` was synced in incremental mode with this state ({} committed part files); \
             a full sync would drop its checkpoint and leave those parts next to the snapshot; {}",
            source.name,
            next_part.saturating_sub(1),
            reset_hint(&source.name, state.path())
        ))),
    }
}

/// Copies `source` and advances `state`.
pub async fn source(
    ctx: &Context<'_>,
    source: &Source,
    state: &mut StateFile,
) -> Result<Outcome, CliError> {
    if let Some(api) = &source.api {
        return crate::sync::copy_api::source(ctx, source, api, state).await;
    }
    if source.mode == SyncMode::Full {
        // Before connecting: a state mismatch is the operator's to fix, whatever the server.
        check_full(source, ctx.format.extension(), state)?;
    }
    let mut pg = connect::connector(source.params.clone(), ctx.engine.clone())?;
    pg.set_numeric_mapping(numeric_mapping(ctx.format));
    connect::preflight(ctx.engine, &source.params)
        .await
        .map_err(|e| source_error::connect(source, e))?;
    let state_path = state.path().to_owned();
    if source.mode == SyncMode::Incremental {
        source_error::check_incremental(&pg, source, &state_path).await?;
    }
    let invalid_at = source_error::invalid_at(source);
    let fail = |e: &PgError| match e.cause() {
        PgError::Unrepresentable { value, .. } => CliError::Usage(format!(
            "{}, declared at {}: {e}; {}",
            source_error::what(source),
            source.at.source,
            unrepresentable_hint(ctx.format, value)
        )),
        _ => source_error::read(source, &state_path, e, invalid_at),
    };
    match source.mode {
        SyncMode::Full => full(ctx, &pg, source, state, &fail).await,
        SyncMode::Incremental => incremental(ctx, &pg, source, state, &fail).await,
    }
}

/// How numeric columns reach the encoder: exact text for the text formats (which can write
/// `NaN`), decimals for Parquet (whose `DECIMAL` readers understand, and which cannot).
fn numeric_mapping(format: Format) -> NumericMapping {
    match format {
        Format::Csv | Format::Jsonl => NumericMapping::Text,
        Format::Parquet => NumericMapping::Decimal,
    }
}

/// What to do about a value the read cannot hold: a numeric `NaN` read as a Parquet
/// decimal, a timestamp beyond 294247 AD.
fn unrepresentable_hint(format: Format, value: &str) -> &'static str {
    match format {
        Format::Parquet if value == "NaN" => {
            "nothing was committed for this source; to keep such values, sync with --format \
             csv or --format jsonl, or sync a view that casts the column (to text, or \
             `NULLIF(column, 'NaN')` where NaN means no value)"
        }
        _ => {
            "nothing was committed for this source; to keep such values, sync a view that \
             casts the column to text"
        }
    }
}

async fn full(
    ctx: &Context<'_>,
    pg: &PostgresConnector,
    source: &Source,
    state: &mut StateFile,
    fail: &impl Fn(&connector_postgres::PgError) -> CliError,
) -> Result<Outcome, CliError> {
    remove_orphans(ctx.output, &source.name, None)?;
    tracing::info!(source = %source.name, table = %clip(&source.table), "full sync started");
    let schema = pg.get_schema(&source.table).await.map_err(|e| fail(&e))?;
    let mut file = AtomicFile::create(
        ctx.output,
        &writer::full_name(&source.name, ctx.format),
        ctx.format,
        &schema.arrow,
    )?;
    let mut progress = Progress::new(&source.name);
    let mut chunks = pin!(pg.read_with(&source.table, None, source.read.clone()));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| fail(&e))?;
        file.write(&chunk.batch)?;
        progress.add(chunk.batch.num_rows() as u64);
    }
    // An empty table still gets a file (a header, a schema), so "no rows" is
    // distinguishable from "never synced".
    commit::full(ctx, source, state, file, &mut progress).await
}

async fn incremental(
    ctx: &Context<'_>,
    pg: &PostgresConnector,
    source: &Source,
    state: &mut StateFile,
    fail: &impl Fn(&connector_postgres::PgError) -> CliError,
) -> Result<Outcome, CliError> {
    let cursor = source.cursor_field.clone().unwrap_or_default();
    let format = ctx.format.extension().to_owned();
    let (mut checkpoint, next_part, total, mut null_rows) = match state
        .state
        .sources
        .get(&source.name)
    {
        None => (None, 1, 0, 0),
        Some(SourceState::Incremental {
            table,
            cursor_field,
            format: f,
            checkpoint,
            api_checkpoint,
            next_part,
            rows,
            null_cursor_rows,
            ..
        }) => {
            if api_checkpoint.is_some() {
                return Err(source.at.source.error(format!(
                    "source `{}`: the state holds a REST API checkpoint, and the pipeline now \
                     says type = \"postgres\"; {}",
                    source.name,
                    reset_hint(&source.name, state.path())
                )));
            }
            if *table != source.table || *cursor_field != cursor || *f != format {
                let (table, cursor_field) = (clip(table), clip(cursor_field));
                return Err(source.at.table.error(format!(
                    "source `{}`: the state was written for table {table}, cursor {cursor_field}, format {f}; \
                     the pipeline now says table {}, cursor {}, format {format}; {}",
                    source.name,
                    clip(&source.table),
                    clip(&cursor),
                    reset_hint(&source.name, state.path())
                )));
            }
            (checkpoint.clone(), *next_part, *rows, *null_cursor_rows)
        }
        Some(SourceState::Full { .. }) => return Err(synced_in_full(source, state)),
    };
    for name in remove_orphans(ctx.output, &source.name, Some(next_part))? {
        tracing::warn!(source = %source.name, file = %name, "removed output of an interrupted run (not in the state)");
    }
    let schema = pg.get_schema(&source.table).await.map_err(|e| fail(&e))?;
    if let (Format::Parquet, Some(from)) = (ctx.format, &checkpoint) {
        // Refuse before writing: a NaN met halfway would commit some parts, then stop at
        // the same row on every later run.
        if let Some((column, pg_type)) = pg
            .find_decimal_nan(&source.table, Some(&from.cursor))
            .await
            .map_err(|e| fail(&e))?
        {
            return Err(CliError::Usage(format!(
                "{}, declared at {}: column {column:?} ({pg_type}) holds NaN in the rows to \
                 sync, which a parquet decimal cannot hold; {}",
                source_error::what(source),
                source.at.source,
                unrepresentable_hint(ctx.format, "NaN")
            )));
        }
    }
    tracing::info!(source = %source.name, table = %clip(&source.table), cursor = %clip(&cursor),
        resume = checkpoint.is_some(), "incremental sync started");
    let mut parts = Parts::new(ctx, source, &schema.arrow, next_part, total);
    let mut pending = None;
    let mut chunks = pin!(pg.read_incremental(
        &source.table,
        &cursor,
        checkpoint.clone(),
        source.batch_size,
        source.incremental.clone(),
    ));
    loop {
        let next = chunks.next().await;
        let done = next.is_none();
        if let Some(chunk) = next {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) if parts.untouched() => {
                    let bad = source_error::bad_checkpoint(
                        pg,
                        source,
                        state.path(),
                        checkpoint.as_ref(),
                        &e,
                    );
                    return Err(bad.await.unwrap_or_else(|| fail(&e)));
                }
                Err(e) => return Err(fail(&e)),
            };
            parts.write(&chunk.batch)?;
            pending = Some(chunk.checkpoint);
            null_rows = chunk.null_cursor_rows;
        }
        if parts.due(done) {
            checkpoint = pending.take();
            let position = Position {
                checkpoint: checkpoint.clone(),
                api_checkpoint: None,
                null_cursor_rows: null_rows,
            };
            parts.commit(state, position).await?;
        }
        if done {
            break;
        }
    }
    Ok(parts.finish(Some(null_rows)))
}

pub(super) fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
