//! Copying one source: a full snapshot, or the next incremental parts.
//!
//! Both paths follow the same rule: write a file, make it durable, then advance the state;
//! never the other way round. Nothing here awaits between a file's commit and the state's
//! commit, so a cancelled run (Ctrl-C) cannot separate them either.

use std::path::Path;
use std::pin::pin;

use arrow_array::RecordBatch;
use connector_postgres::{IncrementalOptions, PostgresConnector};
use futures_util::StreamExt;
use resilience_core::Engine;

use crate::args::Format;
use crate::connect;
use crate::error::CliError;
use crate::sync::config::{Source, SyncMode};
use crate::sync::progress::Progress;
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
}

/// Copies `source` and advances `state`.
pub async fn source(
    ctx: &Context<'_>,
    source: &Source,
    state: &mut StateFile,
) -> Result<(), CliError> {
    let what = format!("source `{}` (table {})", source.name, source.table);
    let pg = connect::connector(source.params.clone(), ctx.engine.clone())?;
    connect::preflight(ctx.engine, &source.params)
        .await
        .map_err(|e| e.into_cli(&format!("{what}: cannot connect")))?;
    let fail = |e: &connector_postgres::PgError| CliError::connector(&what, e);
    match source.mode {
        SyncMode::Full => full(ctx, &pg, source, state, &fail).await,
        SyncMode::Incremental => incremental(ctx, &pg, source, state, &fail).await,
    }
}

async fn full(
    ctx: &Context<'_>,
    pg: &PostgresConnector,
    source: &Source,
    state: &mut StateFile,
    fail: &impl Fn(&connector_postgres::PgError) -> CliError,
) -> Result<(), CliError> {
    writer::remove_uncommitted(ctx.output, &source.name, u64::MAX)?;
    tracing::info!(source = %source.name, table = %source.table, "full sync started");
    let mut file = AtomicFile::create(
        ctx.output,
        &writer::full_name(&source.name, ctx.format),
        ctx.format,
    )?;
    let mut progress = Progress::new(&source.name);
    let mut chunks = pin!(pg.read(&source.table, None, source.batch_size));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| fail(&e))?;
        file.write(&chunk.batch)?;
        progress.add(chunk.batch.num_rows() as u64);
    }
    if file.rows() == 0 {
        // An empty table still gets a file with a header, so "no rows" is distinguishable
        // from "never synced".
        let schema = pg.get_schema(&source.table).await.map_err(|e| fail(&e))?;
        let columns: Vec<_> = schema.columns.iter().collect();
        file.write(&RecordBatch::new_empty(schema.arrow_for(&columns)))?;
    }
    let rows = file.rows();
    let path = file.commit()?;
    state.commit(
        &source.name,
        SourceState::Full {
            table: source.table.clone(),
            format: ctx.format.extension().to_owned(),
            rows,
            completed_at: now(),
        },
    )?;
    progress.clear();
    tracing::info!(source = %source.name, rows, rate = format!("{:.0}", progress.rate()),
        file = %path.display(), "full sync committed");
    Ok(())
}

async fn incremental(
    ctx: &Context<'_>,
    pg: &PostgresConnector,
    source: &Source,
    state: &mut StateFile,
    fail: &impl Fn(&connector_postgres::PgError) -> CliError,
) -> Result<(), CliError> {
    let cursor = source.cursor_field.clone().unwrap_or_default();
    let format = ctx.format.extension().to_owned();
    let (mut checkpoint, mut next_part, mut total) = match state.state.sources.get(&source.name) {
        None => (None, 1, 0),
        Some(SourceState::Incremental {
            table,
            cursor_field,
            format: f,
            checkpoint,
            next_part,
            rows,
            ..
        }) => {
            if *table != source.table || *cursor_field != cursor || *f != format {
                return Err(CliError::Usage(format!(
                    "source `{}`: the state was written for table {table}, cursor {cursor_field}, format {f}; \
                     the pipeline now says table {}, cursor {cursor}, format {format}; use a new --state to start over",
                    source.name, source.table
                )));
            }
            (checkpoint.clone(), *next_part, *rows)
        }
        Some(SourceState::Full { .. }) => {
            return Err(CliError::Usage(format!(
                "source `{}` was synced in full mode with this state; use a new --state for incremental mode",
                source.name
            )));
        }
    };
    for name in writer::remove_uncommitted(ctx.output, &source.name, next_part)? {
        tracing::warn!(source = %source.name, file = %name, "removed output of an interrupted run (not in the state)");
    }
    tracing::info!(source = %source.name, table = %source.table, cursor = %cursor,
        resume = checkpoint.is_some(), "incremental sync started");
    let mut progress = Progress::new(&source.name);
    let mut part: Option<AtomicFile> = None;
    let mut pending = None;
    let mut chunks = pin!(pg.read_incremental(
        &source.table,
        &cursor,
        checkpoint.clone(),
        source.batch_size,
        IncrementalOptions::new(),
    ));
    loop {
        let next = chunks.next().await;
        let done = next.is_none();
        if let Some(chunk) = next {
            let chunk = chunk.map_err(|e| fail(&e))?;
            let file = match part.as_mut() {
                Some(file) => file,
                None => part.insert(AtomicFile::create(
                    ctx.output,
                    &writer::part_name(&source.name, next_part, ctx.format),
                    ctx.format,
                )?),
            };
            file.write(&chunk.batch)?;
            pending = Some(chunk.checkpoint);
            progress.add(chunk.batch.num_rows() as u64);
        }
        let full = part
            .as_ref()
            .is_some_and(|f| f.rows() >= ctx.commit_rows as u64);
        if (full || done) && part.is_some() {
            let file = part.take().expect("checked above");
            let rows = file.rows();
            let path = file.commit()?;
            checkpoint = pending.take();
            next_part += 1;
            total += rows;
            state.commit(
                &source.name,
                SourceState::Incremental {
                    table: source.table.clone(),
                    cursor_field: cursor.clone(),
                    format: format.clone(),
                    checkpoint: checkpoint.clone(),
                    next_part,
                    rows: total,
                    updated_at: now(),
                },
            )?;
            metrics::counter!("sync_parts_committed_total", "source" => source.name.clone())
                .increment(1);
            progress.clear();
            tracing::info!(source = %source.name, rows, total, file = %path.display(), "committed part; state advanced");
        }
        if done {
            break;
        }
    }
    progress.clear();
    tracing::info!(source = %source.name, rows = progress.rows(), total,
        rate = format!("{:.0}", progress.rate()), "incremental sync done");
    Ok(())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
