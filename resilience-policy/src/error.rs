//! The one error type of the loader.
//!
//! Every error says where (file, line, column), which key, and what would be valid, so an
//! operator can fix a policy file without reading this crate's source.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a policy file: `file:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, or `<built-in default.toml>` for embedded files.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Why policies could not be loaded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file or the policy folder could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{at}: invalid TOML: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What the TOML parser expected.
        message: String,
    },
    /// A key or value is not valid.
    #[error("{at}: `{key}`: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// The dotted key path, e.g. `policy.db.retry.max_attempts`.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A policy built in code (or handed to a running engine) breaks a rule.
    #[error("`{key}`: {message}")]
    InvalidPolicy {
        /// The policy's name.
        policy: String,
        /// The dotted key path, e.g. `policy.db.retry.multiplier`.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A `<NAME>_RESILIENCE_CONFIG` variable is set for a policy no policy file defines.
    #[error("{variable} names {} for policy `{policy}`, which no policy file defines; expected one of: {}", file.display(), expected.join(", "))]
    UnknownOverride {
        /// The variable.
        variable: String,
        /// The file it names.
        file: PathBuf,
        /// The policy the variable is for (its name lower-cased).
        policy: String,
        /// The variables of the policies that are defined.
        expected: Vec<String>,
    },
    /// The requested profile has no file.
    #[error("{}: unknown profile `{profile}`, expected one of: {}", file.display(), available.join(", "))]
    UnknownProfile {
        /// The file that would hold the profile.
        file: PathBuf,
        /// The requested profile.
        profile: String,
        /// The profiles that exist.
        available: Vec<String>,
    },
}

impl PolicyError {
    /// The file the error is in, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            PolicyError::Read { file, .. }
            | PolicyError::UnknownProfile { file, .. }
            | PolicyError::UnknownOverride { file, .. } => Some(file),
            PolicyError::Syntax { at, .. } | PolicyError::Invalid { at, .. } => Some(&at.file),
            PolicyError::InvalidPolicy { .. } => None,
        }
    }

    /// The dotted key path the error is about (`policy.db.retry.max_attempts`), if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            PolicyError::Invalid { key, .. } | PolicyError::InvalidPolicy { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The 1-based line of the error, if it has one.
    pub fn line(&self) -> Option<usize> {
        self.location().map(|at| at.line)
    }

    /// The 1-based column of the error, if it has one.
    pub fn column(&self) -> Option<usize> {
        self.location().map(|at| at.column)
    }

    fn location(&self) -> Option<&Location> {
        match self {
            PolicyError::Syntax { at, .. } | PolicyError::Invalid { at, .. } => Some(at),
            PolicyError::Read { .. }
            | PolicyError::UnknownProfile { .. }
            | PolicyError::UnknownOverride { .. }
            | PolicyError::InvalidPolicy { .. } => None,
        }
    }
}
