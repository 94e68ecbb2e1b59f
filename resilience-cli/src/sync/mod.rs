//! `resilient sync`: copy the tables a pipeline file declares to CSV, JSON-lines or Parquet
//! files holding exactly the values in the database ([`format`]), so that an interrupted
//! run never loses or repeats a row.
//!
//! The design, in one paragraph: output is only ever made visible by an atomic rename of a
//! fsynced file ([`writer`]), and the state file ([`state`]) is only advanced after that,
//! also atomically. The state is therefore the commit record: whatever it lists is
//! complete. The output folder records which state owns it ([`ownership`]); a run refuses
//! a folder holding output its state does not account for, and deletes only the one file
//! an interrupted run of its own can leave uncommitted. Full sources
//! are rewritten as one snapshot per run; incremental sources append numbered part files,
//! one per `commit_rows` rows, and resume from the `(cursor, key)` checkpoint of the last
//! committed part. Ctrl-C (or SIGTERM) drops the run between two commits, a SIGKILL can
//! land anywhere: both leave output and state consistent.
//!
//! With `[state] backend = "redis"` in the pipeline file, the state lives in the
//! profile's shared store and several workers run the pipeline together, each source
//! leased to one of them at a time ([`workers`]).

mod api_source;
mod commit;
mod config;
mod connection;
mod copy;
mod copy_api;
mod format;
mod location;
mod lock;
mod ownership;
mod progress;
mod prometheus;
mod read_options;
mod source_error;
mod state;
mod workers;
pub(crate) mod writer;

use std::path::Path;
use std::sync::Arc;

use resilience_core::policy::{LoadOptions, PolicySet};

use crate::args::{SyncArgs, journal_path};
use crate::error::CliError;
use crate::journal::Journal;
use crate::policy_reload;
use config::{Source, SyncMode};
use state::StateFile;
use workers::Workers;

/// Runs `resilient sync`.
pub async fn run(args: SyncArgs) -> Result<(), CliError> {
    // Installed before the engine registers its metric handles.
    if let Some(addr) = args.metrics_addr {
        let bound = prometheus::serve(addr)?;
        tracing::info!("serving Prometheus metrics on http://{bound}/metrics");
    }
    let policy_options = LoadOptions {
        dir: args.policy_dir.clone(),
        profile: args.profile.clone().filter(|p| !p.is_empty()),
    };
    let policies = PolicySet::load(&policy_options)?;
    policy_reload::check(&policy_options, args.watch_policies)?;
    let pipeline = config::load(&args.config, &policies, args.database_url.as_deref())?;
    for wanted in &args.sources {
        if !pipeline.sources.iter().any(|s| &s.name == wanted) {
            let known: Vec<&str> = pipeline.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(CliError::Usage(format!(
                "--source {}: no such source in {}, expected one of: {}",
                crate::echo::clip(wanted),
                args.config.display(),
                known.join(", ")
            )));
        }
    }
    let workers = match pipeline.shared.clone() {
        Some(settings) => Some(Workers::new(settings, &policies)?),
        None => None,
    };
    // Workers sharing a state in the store lease its sources instead.
    let _lock = match workers {
        None => Some(lock::RunLock::state(&args.state)?),
        Some(_) => None,
    };
    let mut state = match &workers {
        Some(workers) => StateFile::shared(Arc::clone(workers)),
        None => StateFile::load(&args.state)?,
    };
    let claim = ownership::claim(&args.output, &state, &args.config, &pipeline.sources)?;
    let engine = crate::connect::engine_of(policies)?;
    let journal = journal_path(&args.state_dir());
    let journal = Journal::open(&journal).map_err(|e| {
        CliError::setup_io(
            format!(
                "cannot open the journal {} (kept next to the state)",
                journal.display()
            ),
            e,
        )
    })?;
    engine.subscribe(Arc::new(journal));
    let _reloader = policy_reload::start(engine.clone(), policy_options, args.watch_policies)?;
    let mut outcomes = Vec::new();
    let selected: Vec<&Source> = pipeline
        .sources
        .iter()
        .filter(|s| args.sources.is_empty() || args.sources.contains(&s.name))
        .collect();
    let ctx = copy::Context {
        engine: &engine,
        output: &args.output,
        format: args.format,
        commit_rows: pipeline.commit_rows,
        claim: &claim,
    };
    let work = async {
        if let Some(workers) = &workers {
            return shared(workers, &ctx, &selected, &mut state, &mut outcomes).await;
        }
        for source in &selected {
            let outcome = copy::source(&ctx, source, &mut state).await?;
            outcomes.push((source.name.clone(), outcome));
        }
        Ok(())
    };
    let result = tokio::select! {
        result = work => result,
        signal = interrupted() => Err(CliError::Interrupted(format!(
            "{signal} received; committed output and state are consistent, run again to continue"
        ))),
    };
    // An interrupted worker gives its source back at once rather than after the TTL.
    state.release().await;
    result?;
    report(&args.output, &args.state, &outcomes);
    Ok(())
}

/// Runs `sources` as one of the workers sharing the state in the store: first every
/// source no other worker leases, then, as their leases come free (released, or lapsed
/// because their worker died), the sources others held. An incremental source is always
/// run once leased (it resumes from the last checkpoint, and reads nothing when another
/// worker has just finished it); a full source whose snapshot another worker committed
/// since this run started is not copied again.
async fn shared(
    workers: &Arc<Workers>,
    ctx: &copy::Context<'_>,
    sources: &[&Source],
    state: &mut StateFile,
    outcomes: &mut Vec<(String, copy::Outcome)>,
) -> Result<(), CliError> {
    let mut at_start = Vec::new();
    for source in sources {
        at_start.push(workers.entry(&source.name).await?);
    }
    let mut waiting: Vec<usize> = (0..sources.len()).collect();
    let mut first = true;
    while !waiting.is_empty() {
        if !first {
            tokio::time::sleep(workers.poll()).await;
        }
        let mut still = Vec::new();
        for i in waiting {
            let source = sources[i];
            let Some(held) = workers.acquire(&source.name).await? else {
                if first {
                    tracing::info!(source = %source.name,
                        "leased by another worker; taken over if that worker stops");
                }
                still.push(i);
                continue;
            };
            state.take(&source.name, held).await?;
            let done_by_other = source.mode == SyncMode::Full
                && !first
                && state.state.sources.get(&source.name) != at_start[i].as_ref();
            let result = if done_by_other {
                tracing::info!(source = %source.name, "synced by another worker during this run");
                Ok(None)
            } else {
                let checked = ctx.claim.check_source(ctx.output, state, &source.name);
                match checked {
                    Ok(()) => copy::source(ctx, source, state).await.map(Some),
                    Err(e) => Err(e),
                }
            };
            state.release().await;
            if let Some(outcome) = result? {
                outcomes.push((source.name.clone(), outcome));
            }
        }
        waiting = still;
        first = false;
    }
    Ok(())
}

/// The run's summary: rows per source, and the rows left out for a NULL cursor (also
/// recorded in the state as `null_cursor_rows`), so skipped rows are never silent.
fn report(output: &Path, state: &Path, outcomes: &[(String, copy::Outcome)]) {
    let mut skipped = 0;
    for (name, outcome) in outcomes {
        if outcome.null_cursor_rows > 0 {
            tracing::warn!(source = %name, rows = outcome.null_cursor_rows,
                "rows with a NULL cursor were skipped (null_cursor = \"skip\"); they are not in the output");
        }
        skipped += outcome.null_cursor_rows;
    }
    let rows: u64 = outcomes.iter().map(|(_, o)| o.rows).sum();
    tracing::info!(
        output = %output.display(),
        state = %state.display(),
        rows,
        null_cursor_rows_skipped = skipped,
        "sync complete"
    );
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM, naming the signal; never resolves if the
/// signals cannot be watched.
async fn interrupted() -> &'static str {
    async fn ctrl_c() {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        ctrl_c().await;
        "Ctrl-C"
    }
}
