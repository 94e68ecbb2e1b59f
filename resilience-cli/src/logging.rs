//! Logging: human-readable lines on stderr.
//!
//! stdout is reserved for data (tables, JSON, TOML), so logs go to stderr. The filter is
//! `RUST_LOG` when set, else `info` for this project's crates and `warn` for the rest
//! (`-v` raises ours to debug, `-vv` to trace). Every line passes through a redacting
//! writer, so a URL with a password never reaches the terminal. Logs are for people: the
//! journal, `metrics` and `health` read the engine's typed events, not these lines.

use std::io::IsTerminal;

use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::error::CliError;
use crate::redact::RedactingWriter;

/// Installs the global subscriber.
pub fn init(verbose: u8) -> Result<(), CliError> {
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
    tracing_subscriber::registry()
        .with(console)
        .try_init()
        .map_err(|e| CliError::Failed(format!("cannot install logging: {e}")))
}
