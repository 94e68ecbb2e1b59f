//! Committing a source's output, the same way for a PostgreSQL and a REST API source:
//! the file is made durable first, then the state advances; never the other way round.
//!
//! A run cancelled (Ctrl-C) between a file's commit and the state's (which awaits the
//! store when the state is shared) leaves what a SIGKILL there leaves: one file the state
//! does not list, removed by the next run.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use connector_postgres::Checkpoint;

use crate::error::CliError;
use crate::sync::config::Source;
use crate::sync::copy::{Context, Outcome, now};
use crate::sync::progress::Progress;
use crate::sync::state::{SourceState, StateFile};
use crate::sync::writer::{self, AtomicFile};

/// Commits the full snapshot `file` of `source`, then its state entry, and logs it.
pub(super) async fn full(
    ctx: &Context<'_>,
    source: &Source,
    state: &mut StateFile,
    file: AtomicFile,
    progress: &mut Progress,
) -> Result<Outcome, CliError> {
    let rows = file.rows();
    let path = publish(ctx, state, file)?;
    state
        .commit(
            &source.name,
            SourceState::Full {
                table: source.table.clone(),
                format: ctx.format.extension().to_owned(),
                rows,
                completed_at: now(),
            },
        )
        .await?;
    progress.clear();
    tracing::info!(source = %source.name, rows, rate = format!("{:.0}", progress.rate()),
        file = %path.display(), "full sync committed");
    Ok(Outcome {
        rows,
        null_cursor_rows: 0,
    })
}

/// Renames `file` into place once the run may: its output folder is claimed and, with a
/// shared state, this worker still holds the source's lease. A rename that fails after
/// the lease lapsed (the worker was paused past its TTL, and the worker that took the
/// source over removed the unfinished file) is reported as the lapse it is.
fn publish(
    ctx: &Context<'_>,
    state: &mut StateFile,
    file: AtomicFile,
) -> Result<PathBuf, CliError> {
    ctx.claim.before_commit(state)?;
    file.commit().map_err(|e| state.lease_lapsed().unwrap_or(e))
}

/// The part files of one incremental run of a source: the part being written, the
/// counts its state entry records, and the run's progress.
pub(super) struct Parts<'c, 'a> {
    ctx: &'c Context<'a>,
    source: &'c Source,
    schema: &'c SchemaRef,
    open: Option<AtomicFile>,
    /// The number the next part file gets.
    next_part: u64,
    /// Rows in all committed parts, of every run.
    total: u64,
    /// Rows this run committed.
    run_rows: u64,
    progress: Progress,
}

/// Where a committed part leaves an incremental source, besides its counts.
pub(super) struct Position {
    /// A PostgreSQL source's checkpoint.
    pub checkpoint: Option<Checkpoint>,
    /// A REST API source's checkpoint.
    pub api_checkpoint: Option<connector_http::Checkpoint>,
    /// Rows left out because their cursor is NULL (`null_cursor = "skip"`).
    pub null_cursor_rows: u64,
}

impl<'c, 'a> Parts<'c, 'a> {
    /// Resumes after the committed parts `1..next_part`, holding `total` rows.
    pub fn new(
        ctx: &'c Context<'a>,
        source: &'c Source,
        schema: &'c SchemaRef,
        next_part: u64,
        total: u64,
    ) -> Self {
        Parts {
            ctx,
            source,
            schema,
            open: None,
            next_part,
            total,
            run_rows: 0,
            progress: Progress::new(&source.name),
        }
    }

    /// Whether this run has written nothing yet (no part open, none committed).
    pub fn untouched(&self) -> bool {
        self.run_rows == 0 && self.open.is_none()
    }

    /// Writes `batch` to the open part, starting the next part file when none is open.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), CliError> {
        let file = match self.open.as_mut() {
            Some(file) => file,
            None => self.open.insert(AtomicFile::create(
                self.ctx.output,
                &writer::part_name(&self.source.name, self.next_part, self.ctx.format),
                self.ctx.format,
                self.schema,
            )?),
        };
        file.write(batch)?;
        self.progress.add(batch.num_rows() as u64);
        Ok(())
    }

    /// Whether the open part is to be committed now: it holds `commit_rows` rows, or the
    /// read is `done` and it holds any.
    pub fn due(&self, done: bool) -> bool {
        self.open
            .as_ref()
            .is_some_and(|f| done || f.rows() >= self.ctx.commit_rows as u64)
    }

    /// Commits the open part, then the source's state entry with the counts after it
    /// and `position`; counts and logs the part. Does nothing when no part is open.
    pub async fn commit(
        &mut self,
        state: &mut StateFile,
        position: Position,
    ) -> Result<(), CliError> {
        let Some(file) = self.open.take() else {
            return Ok(());
        };
        let rows = file.rows();
        let path = publish(self.ctx, state, file)?;
        self.next_part += 1;
        self.total += rows;
        self.run_rows += rows;
        let (source, total) = (self.source, self.total);
        let entry = SourceState::Incremental {
            table: source.table.clone(),
            cursor_field: source.cursor_field.clone().unwrap_or_default(),
            format: self.ctx.format.extension().to_owned(),
            checkpoint: position.checkpoint,
            api_checkpoint: position.api_checkpoint.map(Box::new),
            next_part: self.next_part,
            rows: total,
            null_cursor_rows: position.null_cursor_rows,
            updated_at: now(),
        };
        state.commit(&source.name, entry).await?;
        metrics::counter!("sync_parts_committed_total", "source" => source.name.clone())
            .increment(1);
        self.progress.clear();
        tracing::info!(source = %source.name, rows, total, file = %path.display(), "committed part; state advanced");
        Ok(())
    }

    /// Ends the run and logs it; `null_cursor_rows` are the rows left out because their
    /// cursor is NULL, for a source that counts them.
    pub fn finish(mut self, null_cursor_rows: Option<u64>) -> Outcome {
        self.progress.clear();
        let (source, progress, total) = (&self.source.name, &self.progress, self.total);
        let rate = format!("{:.0}", progress.rate());
        match null_cursor_rows {
            Some(skipped) => tracing::info!(source = %source, rows = progress.rows(), total,
                null_cursor_rows_skipped = skipped, rate, "incremental sync done"),
            None => tracing::info!(source = %source, rows = progress.rows(), total, rate,
                "incremental sync done"),
        }
        Outcome {
            rows: self.run_rows,
            null_cursor_rows: null_cursor_rows.unwrap_or(0),
        }
    }
}
