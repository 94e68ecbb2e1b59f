//! The state file: per source, what has been durably written and where to continue.
//!
//! The state file is the commit record of a sync. It is replaced atomically (temporary
//! file in the same folder, fsync, rename, fsync of the folder) and only after the output
//! it describes is itself durable. The output folder records which state file owns it, and
//! a run refuses a folder holding files its state does not account for (see `ownership`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use connector_postgres::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::echo;
use crate::error::CliError;
use crate::sync::workers::{Held, Workers};

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
        /// A REST API source (`type = "http"`): the position after the last committed
        /// record (the cursor, and the records delivered within the lookback window),
        /// in place of `checkpoint`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        api_checkpoint: Option<Box<connector_http::Checkpoint>>,
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
    existed: bool,
    /// With `[state] backend = "redis"`: the store, and the lease of the source running.
    shared: Option<Shared>,
}

/// The state kept in the workers' store rather than in a file.
#[derive(Debug)]
struct Shared {
    workers: Arc<Workers>,
    held: Option<Held>,
}

impl StateFile {
    /// Loads `path`, or an empty state when it does not exist. A file that is not a
    /// state file (not UTF-8, not JSON, not the expected fields) is a configuration error
    /// located at the first byte that is wrong.
    pub fn load(path: &Path) -> Result<StateFile, CliError> {
        let invalid = |line: usize, column: usize, what: String| CliError::ConfigAt {
            file: path.to_owned(),
            line,
            column,
            message: format!(
                "invalid state file: {what}; restore it or start over with a new --state"
            ),
        };
        let (state, existed) = match fs::read(path) {
            Ok(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|e| {
                    let good = &bytes[..e.valid_up_to()];
                    let line = good.iter().filter(|b| **b == b'\n').count() + 1;
                    let column = good.rsplit(|b| *b == b'\n').next().map_or(0, <[u8]>::len) + 1;
                    invalid(
                        line,
                        column,
                        format!("byte {} is not UTF-8 text", e.valid_up_to()),
                    )
                })?;
                let state = serde_json::from_str::<State>(text).map_err(|e| {
                    let message = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    let message = message.strip_suffix(&suffix).unwrap_or(&message);
                    let message = echo::plain(message, ("an object", "object"));
                    invalid(
                        e.line(),
                        e.column(),
                        echo::clip_quoted(&message).into_owned(),
                    )
                })?;
                (state, true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                State {
                    version: VERSION,
                    sources: BTreeMap::new(),
                },
                false,
            ),
            Err(e) => {
                return Err(CliError::setup_io(
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
            existed,
            shared: None,
        })
    }

    /// The state of a pipeline whose workers share it in `workers`' store: read per
    /// source when its lease is taken ([`take`](Self::take)), written under the lease.
    pub fn shared(workers: Arc<Workers>) -> StateFile {
        StateFile {
            path: PathBuf::from(workers.identity()),
            state: State {
                version: VERSION,
                sources: BTreeMap::new(),
            },
            existed: true,
            shared: Some(Shared {
                workers,
                held: None,
            }),
        }
    }

    /// The store's name for a shared state (what the output folder's manifest records).
    pub fn shared_identity(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.workers.identity())
    }

    /// Shared state: runs `source` under `held`, its entry read from the store now (the
    /// last worker that held the lease may have advanced it).
    pub async fn take(&mut self, source: &str, held: Held) -> Result<(), CliError> {
        let Some(shared) = self.shared.as_mut() else {
            return Ok(());
        };
        shared.held = Some(held);
        match shared.workers.entry(source).await? {
            Some(entry) => self.state.sources.insert(source.to_owned(), entry),
            None => self.state.sources.remove(source),
        };
        Ok(())
    }

    /// Shared state: gives the lease taken by [`take`](Self::take) back.
    pub async fn release(&mut self) {
        if let Some(shared) = self.shared.as_mut()
            && let Some(held) = shared.held.take()
        {
            shared.workers.release(held).await;
        }
    }

    /// Whether the file existed when it was loaded (a missing file is an empty state).
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the state file if it did not exist when loaded. Runs call this before they
    /// commit their first output file (`ownership::Claim::before_commit`), so an output
    /// folder whose state file is missing was written by a state that has since been
    /// deleted or moved.
    /// With a shared state, checks instead that this worker still holds the lease.
    pub fn ensure_exists(&mut self) -> Result<(), CliError> {
        if let Some(shared) = &self.shared {
            return match &shared.held {
                Some(held) => held.check(),
                None => Err(CliError::Failed("no lease held for this source".into())),
            };
        }
        if !self.existed {
            self.write()?;
            self.existed = true;
        }
        Ok(())
    }

    /// With a shared state, the error saying this worker's lease on its source lapsed,
    /// if it has; `None` otherwise (and always with a file of its own).
    pub fn lease_lapsed(&self) -> Option<CliError> {
        self.shared.as_ref()?.held.as_ref()?.check().err()
    }

    /// Records `entry` for `source` and replaces the file atomically and durably; a
    /// shared state writes it to the store under the source's lease (fenced: refused when
    /// another worker has taken the source over since).
    pub async fn commit(&mut self, source: &str, entry: SourceState) -> Result<(), CliError> {
        if let Some(shared) = &self.shared {
            let Some(held) = &shared.held else {
                return Err(CliError::Failed(format!(
                    "source `{source}`: no lease held; nothing committed"
                )));
            };
            shared.workers.commit(held, &entry).await?;
            self.state.sources.insert(source.to_owned(), entry);
            return Ok(());
        }
        self.state.sources.insert(source.to_owned(), entry);
        self.write()?;
        self.existed = true;
        Ok(())
    }

    fn write(&self) -> Result<(), CliError> {
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

    #[tokio::test]
    async fn round_trip_and_atomic_replace() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("state.json");
        let mut file = StateFile::load(&path).unwrap();
        assert!(file.state.sources.is_empty());
        let entry = SourceState::Full {
            table: "t".into(),
            format: "csv".into(),
            rows: 3,
            completed_at: "2026-01-01T00:00:00Z".into(),
        };
        file.commit("t", entry.clone()).await.unwrap();
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
