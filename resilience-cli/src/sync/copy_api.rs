//! Copying one REST API source (`type = "http"`): a full snapshot, or the next
//! incremental parts, by the same rule as a PostgreSQL source ([`copy`](super::copy)):
//! a file is written and made durable, then the state advances; never the other way.
//!
//! The connector runs on the run's engine, so its requests are under the source's policy
//! (`api` by default) keyed by `host:port`, and its events reach the run's journal. The
//! checkpoint is the connector's (the largest cursor delivered and the records delivered
//! within the lookback window), stored as the source's `api_checkpoint` in the same state
//! file as the PostgreSQL sources; a resumed run re-reads from it and drops what was
//! already delivered, so every record is written once.

use std::pin::pin;

use connector_http::{HttpConnector, HttpError};
use futures_util::StreamExt;
use resilience_core::ResilientError;

use crate::echo::clip;
use crate::error::CliError;
use crate::sync::api_source::ApiSource;
use crate::sync::commit::{self, Parts, Position};
use crate::sync::config::{Source, SyncMode};
use crate::sync::copy::{Context, Outcome, check_full, reset_hint, synced_in_full};
use crate::sync::format;
use crate::sync::ownership::remove_orphans;
use crate::sync::progress::Progress;
use crate::sync::state::{SourceState, StateFile};
use crate::sync::writer::{self, AtomicFile};

/// Copies the API source `source` and advances `state`.
pub async fn source(
    ctx: &Context<'_>,
    source: &Source,
    api: &ApiSource,
    state: &mut StateFile,
) -> Result<Outcome, CliError> {
    if source.mode == SyncMode::Full {
        check_full(source, ctx.format.extension(), state)?;
    }
    let settings_at = source.at.connection.as_ref().unwrap_or(&source.at.source);
    let what = format!(
        "source `{}` (stream `{}` of {})",
        source.name,
        clip(&source.table),
        api.settings.display()
    );
    let fail = |e: &HttpError| match e {
        // The settings (or the credential they name) are wrong: the line to change.
        HttpError::Config { .. } | HttpError::Credential(_) => {
            settings_at.error(format!("{what}: {e}"))
        }
        _ => CliError::of_class(
            e.class(),
            format!("{what}, declared at {}: {e}", source.at.source),
        ),
    };
    let mut conn = HttpConnector::with_engine(ctx.engine.clone());
    conn.configure(api.params.clone()).map_err(|e| fail(&e))?;
    let schema = conn.get_schema(&source.table).await.map_err(|e| fail(&e))?;
    format::check_types(ctx.format, &schema).map_err(|e| {
        CliError::Usage(format!(
            "{what}, declared at {}: {e}; nothing was written for this source; declare the \
             stream's schema in its settings (integer, number, string, boolean, timestamp) \
             or sync with another --format",
            source.at.source
        ))
    })?;
    match source.mode {
        SyncMode::Full => full(ctx, &conn, source, state, &schema, &fail).await,
        SyncMode::Incremental => incremental(ctx, &conn, source, api, state, &schema, &fail).await,
    }
}

async fn full(
    ctx: &Context<'_>,
    conn: &HttpConnector,
    source: &Source,
    state: &mut StateFile,
    schema: &arrow_schema::SchemaRef,
    fail: &impl Fn(&HttpError) -> CliError,
) -> Result<Outcome, CliError> {
    remove_orphans(ctx.output, &source.name, None)?;
    tracing::info!(source = %source.name, stream = %clip(&source.table), "full sync started");
    let mut file = AtomicFile::create(
        ctx.output,
        &writer::full_name(&source.name, ctx.format),
        ctx.format,
        schema,
    )?;
    let mut progress = Progress::new(&source.name);
    let mut pages = pin!(conn.read(&source.table, None));
    while let Some(batch) = pages.next().await {
        let batch = batch.map_err(|e| fail(&e))?;
        file.write(&batch)?;
        progress.add(batch.num_rows() as u64);
    }
    commit::full(ctx, source, state, file, &mut progress).await
}

async fn incremental(
    ctx: &Context<'_>,
    conn: &HttpConnector,
    source: &Source,
    api: &ApiSource,
    state: &mut StateFile,
    schema: &arrow_schema::SchemaRef,
    fail: &impl Fn(&HttpError) -> CliError,
) -> Result<Outcome, CliError> {
    let cursor = source.cursor_field.clone().unwrap_or_default();
    let format = ctx.format.extension().to_owned();
    let (mut checkpoint, next_part, total) = match state.state.sources.get(&source.name) {
        None => (None, 1, 0),
        Some(SourceState::Incremental {
            table,
            cursor_field,
            format: f,
            checkpoint,
            api_checkpoint,
            next_part,
            rows,
            ..
        }) => {
            if *table != source.table || *cursor_field != cursor || *f != format {
                return Err(source.at.table.error(format!(
                    "source `{}`: the state was written for stream {}, cursor {}, format {f}; \
                     the pipeline now says stream {}, cursor {}, format {format}; {}",
                    source.name,
                    clip(table),
                    clip(cursor_field),
                    clip(&source.table),
                    clip(&cursor),
                    reset_hint(&source.name, state.path())
                )));
            }
            if checkpoint.is_some() {
                return Err(source.at.source.error(format!(
                    "source `{}`: the state holds a PostgreSQL checkpoint, and the pipeline now \
                     says type = \"http\"; {}",
                    source.name,
                    reset_hint(&source.name, state.path())
                )));
            }
            (api_checkpoint.as_deref().cloned(), *next_part, *rows)
        }
        Some(SourceState::Full { .. }) => return Err(synced_in_full(source, state)),
    };
    for name in remove_orphans(ctx.output, &source.name, Some(next_part))? {
        tracing::warn!(source = %source.name, file = %name, "removed output of an interrupted run (not in the state)");
    }
    tracing::info!(source = %source.name, stream = %clip(&source.table), cursor = %clip(&cursor),
        resume = checkpoint.is_some(), "incremental sync started");
    let mut parts = Parts::new(ctx, source, schema, next_part, total);
    let mut pending = None;
    let mut chunks = pin!(conn.read_incremental(
        &source.table,
        &cursor,
        checkpoint.clone(),
        api.options.clone(),
    ));
    loop {
        let next = chunks.next().await;
        let done = next.is_none();
        if let Some(chunk) = next {
            let chunk = chunk.map_err(|e| fail(&e))?;
            parts.write(&chunk.batch)?;
            pending = Some(chunk.checkpoint);
        }
        if parts.due(done) {
            checkpoint = pending.take();
            let position = Position {
                checkpoint: None,
                api_checkpoint: checkpoint.clone(),
                null_cursor_rows: 0,
            };
            parts.commit(state, position).await?;
        }
        if done {
            break;
        }
    }
    Ok(parts.finish(None))
}
