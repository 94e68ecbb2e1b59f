//! The state file: per source, what has been durably written and where to continue.
//!
//! The state file is the commit record of a sync. It is replaced atomically (temporary
//! file in the same folder, fsync, rename, fsync of the folder) and only after the output
//! it describes is itself durable. Output that the state does not list is, by definition,
//! from an interrupted run: the next run deletes it before writing (see `writer`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use connector_postgres::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::error::CliError;

const VERSION: u32 = 1;

/// What the state records for one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceState {
    /// A full copy: the last completed snapshot.
    Full {
        /// The table.
        table: String,
        /// The file format (`csv` or `jsonl`).
        format: String,
        /// Rows in the last snapshot.
        rows: u64,
        /// When it completed (RFC 3339).
        completed_at: String,
    },
    /// An incremental copy: the checkpoint after the last committed part.
    Incremental {
        /// The table.
        table: String,
        /// The cursor column.
        cursor_field: String,
        /// The file format (`csv` or `jsonl`).
        format: String,
        /// The position after the last committed row; `None` before the first part.
        checkpoint: Option<Checkpoint>,
        /// The number the next part file gets; parts `1..next_part` are committed.
        next_part: u64,
        /// Rows in all committed parts.
        rows: u64,
        /// With `null_cursor = "skip"`: the table's rows left out because their cursor is
        /// NULL, as counted by the run that committed the last part.
        #[serde(default)]
        null_cursor_rows: u64,
        /// When the last part was committed (RFC 3339).
        updated_at: String,
    },
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    version: u32,
    /// Per source name.
    pub sources: BTreeMap<String, SourceState>,
}

/// The state file on disk.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    /// The current state.
    pub state: State,
}

impl StateFile {
    /// Loads `path`, or an empty state when it does not exist.
    pub fn load(path: &Path) -> Result<StateFile, CliError> {
        let state = match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str::<State>(&text).map_err(|e| CliError::ConfigAt {
                file: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message: format!(
                    "invalid state file: {e}; restore it or start over with a new --state"
                ),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                version: VERSION,
                sources: BTreeMap::new(),
            },
            Err(e) => {
                return Err(CliError::io(
                    format!("cannot read the state file {}", path.display()),
                    e,
                ));
            }
        };
        if state.version != VERSION {
            return Err(CliError::Usage(format!(
                "{}: state version {} is not supported, expected {VERSION}",
                path.display(),
                state.version
            )));
        }
        Ok(StateFile {
            path: path.to_owned(),
            state,
        })
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `entry` for `source` and replaces the file atomically and durably.
    pub fn commit(&mut self, source: &str, entry: SourceState) -> Result<(), CliError> {
        self.state.sources.insert(source.to_owned(), entry);
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|e| CliError::Failed(format!("cannot encode the state: {e}")))?;
        write_atomically(&self.path, text.as_bytes()).map_err(|e| {
            CliError::io(
                format!("cannot write the state file {}", self.path.display()),
                e,
            )
        })
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content:
/// a temporary file in the same folder, fsync, rename over `path`, fsync of the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    fs::create_dir_all(&dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The folder holding `path` (`.` for a bare file name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = std::env::temp_dir().join(format!("state-test-{}", std::process::id()));
        let path = dir.join("state.json");
        let mut file = StateFile::load(&path).unwrap();
        assert!(file.state.sources.is_empty());
        let entry = SourceState::Full {
            table: "t".into(),
            format: "csv".into(),
            rows: 3,
            completed_at: "2026-01-01T00:00:00Z".into(),
        };
        file.commit("t", entry.clone()).unwrap();
        let again = StateFile::load(&path).unwrap();
        assert_eq!(again.state.sources["t"], entry);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            leftovers,
            ["state.json"],
            "no temporary file is left behind"
        );
        fs::write(&path, "{\"version\": 1, \"sources\": {}, \"extra\": 1}").unwrap();
        let err = StateFile::load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("state.json:1:"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
