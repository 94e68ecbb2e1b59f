//! The one error type of the `resilient` command and its exit codes.
//!
//! Every subcommand returns `Result<(), CliError>`; `main` prints the error once and exits
//! with [`CliError::exit_code`]: `1` when the work itself failed (the database is down, a
//! write failed, the run was interrupted), `2` when the input is wrong (bad flags, a
//! malformed pipeline or policy file, an unknown profile, rejected credentials), so scripts
//! can tell "fix your config" from "try again later".

use std::path::PathBuf;

use resilience_core::policy::PolicyError;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for an operational failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Why a `resilient` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Policy files did not load (file, line and column are in the message).
    #[error("{0}")]
    Policy(#[from] PolicyError),

    /// A pipeline or other configuration file is invalid: `file:line:column: message`.
    #[error("{}:{line}:{column}: {message}", file.display())]
    ConfigAt {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what would be valid.
        message: String,
    },

    /// Invalid arguments or configuration without a position.
    #[error("{0}")]
    Usage(String),

    /// The work failed: a connector error, an unreachable server, a failed check.
    #[error("{0}")]
    Failed(String),

    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The run was interrupted (Ctrl-C); what was committed stays consistent.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

impl CliError {
    /// The process exit code: 1 for operational failures, 2 for usage or configuration
    /// errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Policy(_) | CliError::ConfigAt { .. } | CliError::Usage(_) => EXIT_USAGE,
            CliError::Failed(_) | CliError::Io { .. } | CliError::Interrupted(_) => EXIT_FAILURE,
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            context: context.into(),
            source,
        }
    }

    /// An I/O error while preparing a run (the state, output and lock paths): a path that
    /// names the wrong kind of thing, or one the user may not write, is a configuration
    /// problem (exit 2); anything else (a full disk, a failing device) is operational.
    pub fn setup_io(context: impl Into<String>, source: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match source.kind() {
            NotADirectory | IsADirectory | AlreadyExists | PermissionDenied
            | ReadOnlyFilesystem | InvalidData | InvalidFilename | NotFound => {
                CliError::Usage(format!("{}: {source}", context.into()))
            }
            _ => CliError::io(context, source),
        }
    }

    /// A connector error: configuration, authentication and invalid-input classes are
    /// usage errors (exit 2), everything else is an operational failure (exit 1).
    pub fn connector(context: &str, error: &connector_postgres::PgError) -> Self {
        use resilience_core::ResilientError;
        CliError::of_class(error.class(), format!("{context}: {error}"))
    }

    /// An error of `class`: the caller's to fix (exit 2) when the dependency refused the
    /// request or its set-up, else an operational failure (exit 1).
    pub fn of_class(class: resilience_core::ErrorClass, message: String) -> Self {
        if class.is_caller_error() {
            CliError::Usage(message)
        } else {
            CliError::Failed(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_split_usage_from_failure() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Failed("x".into()).exit_code(), EXIT_FAILURE);
        let at = CliError::ConfigAt {
            file: "p.toml".into(),
            line: 3,
            column: 7,
            message: "unknown field".into(),
        };
        assert_eq!(at.to_string(), "p.toml:3:7: unknown field");
        assert_eq!(at.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn setup_paths_of_the_wrong_kind_are_usage_errors() {
        use std::io::{Error, ErrorKind};
        let wrong = CliError::setup_io("--output out", Error::from(ErrorKind::NotADirectory));
        assert_eq!(wrong.exit_code(), EXIT_USAGE);
        assert!(wrong.to_string().starts_with("--output out: "), "{wrong}");
        let full = CliError::setup_io("--output out", Error::from(ErrorKind::StorageFull));
        assert_eq!(full.exit_code(), EXIT_FAILURE);
    }
}
