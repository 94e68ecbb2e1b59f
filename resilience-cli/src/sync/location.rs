//! Where a setting is written in the pipeline file.
//!
//! A problem with a source is often found long after the file was parsed: on the server
//! (a missing table, a cursor of the wrong type) or in the state. The source keeps the
//! position of each of its settings so that such a message still reads
//! `pipeline.toml:12:16: ...` and the operator knows which line to change.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// A position in the pipeline file: `file:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Location {
    /// A configuration error (exit 2) located here.
    pub fn error(&self, message: String) -> CliError {
        CliError::ConfigAt {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            message,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where each setting of a source is written, so that a problem found later (on the
/// server, or in the state) points at the line to change.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The source's entry (its first key).
    pub source: Location,
    /// `table = ...`.
    pub table: Location,
    /// `cursor_field = ...` (incremental sources).
    pub cursor_field: Option<Location>,
    /// `lag = ...`, when set.
    pub lag: Option<Location>,
    /// `null_cursor = ...`, when set.
    pub null_cursor: Option<Location>,
    /// The `[connections.NAME]` the source uses; `None` when `--database-url` replaces it.
    pub connection: Option<Location>,
}

/// The `file:line:column` of byte offset `offset` of `text`.
pub fn locate(file: &Path, text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        file: PathBuf::from(file),
        line,
        column,
    }
}
