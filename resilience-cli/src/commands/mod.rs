//! The inspection commands, one module each, all of one shape: `run(args)` takes the
//! arguments clap parsed (defined in `crate::args`) and returns `Result<(), CliError>`.
//! `demo` and `sync` have the same shape but are subsystems of their own, with their own
//! folders beside this one.

pub(crate) mod debug;
pub(crate) mod debug_http;
pub(crate) mod health;
pub(crate) mod health_fleet;
pub(crate) mod health_http;
pub(crate) mod metrics;
pub(crate) mod policy;
