//! Logging: human-readable lines on stderr, and the resilience journal for `sync`.
//!
//! stdout is reserved for data (tables, JSON, TOML), so logs go to stderr. The filter is
//! `RUST_LOG` when set, else `info` for this project's crates and `warn` for the rest
//! (`-v` raises ours to debug, `-vv` to trace). Every line passes through a redacting
//! writer, so a URL with a password never reaches the terminal. The journal layer has its
//! own filter: it sees the engine's events whatever the console shows.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::error::CliError;
use crate::journal::JournalLayer;
use crate::redact::RedactingWriter;

/// Installs the global subscriber; with `journal_dir`, engine events are also appended to
/// `journal.jsonl` there.
pub fn init(verbose: u8, journal_dir: Option<&Path>) -> Result<(), CliError> {
    let ours = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // sqlx's pool warns about every dead connection it tests and drops; after a fault the
    // engine has already handled (and logged), that is noise unless asked for with -v.
    let pool = if verbose == 0 { "error" } else { ours };
    let default = format!(
        "warn,sqlx_core::pool={pool},resilient={ours},resilience_core={ours},resilience_policy={ours},connector_postgres={ours},resilience_chaos={ours}"
    );
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| CliError::Usage(format!("RUST_LOG: {e}")))?
        }
        _ => EnvFilter::new(default),
    };
    let console = fmt::layer()
        .with_writer(|| RedactingWriter(std::io::stderr()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter);
    let journal = match journal_dir {
        Some(dir) => {
            let path = crate::args::journal_path(dir);
            let layer = JournalLayer::open(&path).map_err(|e| {
                CliError::setup_io(
                    format!(
                        "cannot open the journal {} (kept next to the state)",
                        path.display()
                    ),
                    e,
                )
            })?;
            Some(
                layer
                    .with_filter(Targets::new().with_target("resilience_core", LevelFilter::DEBUG)),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(console)
        .with(journal)
        .try_init()
        .map_err(|e| CliError::Failed(format!("cannot install logging: {e}")))
}
