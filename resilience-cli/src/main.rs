//! `resilient`: run, inspect and explain policy-driven resilient data connectors.
//!
//! Each subcommand lives in its own module and returns `Result<(), CliError>`; this file
//! only parses arguments, sets up logging and turns the result into an exit code
//! (0 success, 1 operational failure, 2 usage or configuration error).
#![forbid(unsafe_code)]

mod args;
mod connect;
mod debug_cmd;
mod debug_http;
mod demo;
mod echo;
mod error;
mod explain;
mod health_cmd;
mod health_http;
mod journal;
mod logging;
mod metrics_cmd;
mod policy_cmd;
mod policy_reload;
mod redact;
mod sync;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::error::{CliError, EXIT_OK, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Err(e) = logging::init(cli.verbose) {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = e.to_string();
            let message = redact::redact_secrets(&text);
            eprintln!("error: {}", echo::bounded(&message));
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Sync(args) => sync::run(args).await,
        Command::Health(args) => health_cmd::run(args).await,
        Command::Metrics(args) => metrics_cmd::run(args),
        Command::Debug(args) => debug_cmd::run(args).await,
        Command::Policy(args) => policy_cmd::run(args),
    }
}
