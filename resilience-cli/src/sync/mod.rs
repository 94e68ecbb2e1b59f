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

mod api_source;
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
pub(crate) mod writer;

use std::path::Path;
use std::sync::Arc;

use resilience_core::policy::{LoadOptions, PolicySet};

use crate::args::{SyncArgs, journal_path};
use crate::error::CliError;
use crate::journal::Journal;
use crate::policy_reload;
use state::StateFile;

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
    let _lock = lock::RunLock::state(&args.state)?;
    let mut state = StateFile::load(&args.state)?;
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
    let work = async {
        for source in &pipeline.sources {
            if !args.sources.is_empty() && !args.sources.contains(&source.name) {
                continue;
            }
            let ctx = copy::Context {
                engine: &engine,
                output: &args.output,
                format: args.format,
                commit_rows: pipeline.commit_rows,
                claim: &claim,
            };
            let outcome = copy::source(&ctx, source, &mut state).await?;
            outcomes.push((source.name.clone(), outcome));
        }
        Ok(())
    };
    tokio::select! {
        result = work => result,
        signal = interrupted() => Err(CliError::Interrupted(format!(
            "{signal} received; committed output and state are consistent, run again to continue"
        ))),
    }?;
    report(&args.output, &args.state, &outcomes);
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
