//! A run owns its output folder: it writes only into a folder its state accounts for,
//! and never deletes what another run committed.
//!
//! The state file is the commit record of the output it describes, so a state that does
//! not describe a folder (a mistyped `--state`, a fresh path, another pipeline's state)
//! must not touch it. Three things hold that line:
//!
//! - **A manifest**, `.resilient-output.json` in the output folder, written atomically
//!   before the first output file a run commits there, names the state file (its
//!   canonical path) and the pipeline file. A run with another state is refused.
//! - **An account of the folder**: before anything is written, every data file in the
//!   folder (`<source>.<part>.<ext>`, and `<source>.<ext>` for the sources the pipeline or
//!   the state names) must be one the state records as committed, or the one file the
//!   crash protocol can leave: the part numbered exactly `next_part` (or, for a source the
//!   state has no entry for yet, part 1 or its snapshot), renamed into place by a run that
//!   ended before the state advanced. Anything else is refused with what was found and how
//!   to proceed. Other files (not named like output, hidden files) are left alone.
//! - **A lock** on the folder (`.resilient-output.lock`, see `lock`) for the whole run, so
//!   two runs with different states cannot both write there.
//!
//! A run then deletes only what it may: its own source's temporary files and that one
//! orphan part ([`remove_orphans`]). Since runs create the state file before they commit
//! any output ([`Claim::before_commit`]), a folder whose manifest names a state file that
//! does not exist was written by a state the operator deleted or moved; it is refused
//! while it holds output.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::echo;
use crate::error::CliError;
use crate::sync::config::Source;
use crate::sync::lock::{LockError, RunLock};
use crate::sync::state::{StateFile, write_atomically};

mod account;
mod shared;

use account::{Account, Output, parse, temporary_of};

/// The manifest's file name in the output folder.
pub const MANIFEST: &str = ".resilient-output.json";
const MANIFEST_VERSION: u32 = 1;
/// Unaccounted files named in a refusal; the rest are counted.
const LISTED: usize = 5;

/// Who owns an output folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    /// The state file (canonical path) whose runs write here.
    state: PathBuf,
    /// The pipeline file (canonical path) of the latest run, for the operator.
    pipeline: PathBuf,
    /// When a run first used the folder (RFC 3339).
    claimed_at: String,
}

/// The output folder, claimed for this run: locked until dropped.
#[derive(Debug)]
pub struct Claim {
    /// None for workers sharing a state in the store: their source leases serialise the
    /// writes, and the manifest keeps other pipelines out ([`shared`]).
    _lock: Option<RunLock>,
    /// The manifest to write before the first output file is committed: the folder's
    /// first use (a run that fails before writing anything does not claim the folder).
    pending: Mutex<Option<Manifest>>,
    path: PathBuf,
    /// The state's identity, as the manifest records it.
    me: PathBuf,
}

impl Claim {
    /// Call before committing an output file: makes sure the state file exists and the
    /// folder's manifest names it, so the folder never holds output without both.
    pub fn before_commit(&self, state: &mut StateFile) -> Result<(), CliError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(manifest) = pending.as_ref() {
            let text = serde_json::to_string_pretty(manifest)
                .map_err(|e| CliError::Failed(format!("cannot encode {MANIFEST}: {e}")))?;
            write_atomically(&self.path, text.as_bytes())
                .map_err(|e| CliError::io(format!("cannot write {}", self.path.display()), e))?;
            *pending = None;
        }
        state.ensure_exists()
    }
}

/// Claims `output` for a run of `pipeline` with `state`: creates the folder, locks it,
/// and checks its manifest and its files against the state; the manifest is recorded
/// when the run commits its first file ([`Claim::before_commit`]). Every refusal is a
/// configuration error (exit 2) except a folder locked by a live run of the same state
/// (exit 1, try again).
pub fn claim(
    output: &Path,
    state: &StateFile,
    pipeline: &Path,
    sources: &[Source],
) -> Result<Claim, CliError> {
    prepare(output)?;
    let shared = state.shared_identity().map(PathBuf::from);
    let me = match &shared {
        Some(identity) => identity.clone(),
        None => canonical_state(state.path())?,
    };
    let lock = match shared
        .as_ref()
        .map_or_else(|| RunLock::output(output).map(Some), |_| Ok(None))
    {
        Ok(lock) => lock,
        Err(LockError::Busy(owner)) => {
            if let Ok(Some(manifest)) = read_manifest(output)
                && manifest.state != me
            {
                return Err(foreign(output, &manifest, &me));
            }
            return Err(CliError::Failed(format!(
                "another sync (process {}) is writing to the output folder {}; wait for it to \
                 finish and run again",
                owner.as_deref().unwrap_or("unknown"),
                output.display()
            )));
        }
        Err(LockError::Failed(e)) => return Err(e),
    };
    let manifest = read_manifest(output)?;
    if let Some(manifest) = &manifest
        && manifest.state != me
    {
        return Err(foreign(output, manifest, &me));
    }
    let owned = manifest.is_some();
    let mut names = list(output)?;
    if shared.is_some() {
        // Each worker accounts for a source's files under its lease (`check_source`):
        // here, only files of sources the pipeline does not declare.
        names.retain(|name| !shared::of_sources(name, sources));
    }
    let account = Account {
        state: &state.state,
        existed: state.existed(),
        owned,
        sources: sources.iter().map(|s| s.name.as_str()).collect(),
    };
    let unaccounted = account.unaccounted(&names);
    if !unaccounted.is_empty() {
        return Err(refuse(output, state, owned, &unaccounted));
    }
    let pipeline = fs::canonicalize(pipeline).unwrap_or_else(|_| pipeline.to_owned());
    let pending = match manifest {
        None => Some(Manifest {
            version: MANIFEST_VERSION,
            state: me.clone(),
            pipeline,
            claimed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }),
        Some(m) if m.pipeline != pipeline => Some(Manifest { pipeline, ..m }),
        Some(_) => None,
    };
    Ok(Claim {
        _lock: lock,
        pending: Mutex::new(pending),
        path: output.join(MANIFEST),
        me,
    })
}

/// Deletes what an interrupted run of `source` can have left in `dir`: its temporary
/// files and, for an incremental source, the part numbered `next_part` (renamed into
/// place, but the run ended before the state recorded it). [`claim`] has refused every
/// other file the state does not account for, so nothing committed is touched.
/// Returns the names removed.
pub fn remove_orphans(
    dir: &Path,
    source: &str,
    next_part: Option<u64>,
) -> Result<Vec<String>, CliError> {
    let mut removed = Vec::new();
    for name in list(dir)? {
        let orphan = match parse(&name) {
            Some(Output::Part {
                source: s, number, ..
            }) => s == source && Some(number) == next_part,
            _ => temporary_of(&name) == Some(source),
        };
        if orphan {
            fs::remove_file(dir.join(&name))
                .map_err(|e| CliError::io(format!("cannot remove {name}"), e))?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Creates the output folder when missing; a file in its place is a usage error.
fn prepare(output: &Path) -> Result<(), CliError> {
    let what = format!("--output {}", output.display());
    match fs::metadata(output) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(CliError::Usage(format!(
            "{what}: this is a file, not a folder; name a folder for the output files (it is \
             created when missing)"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(output)
            .map_err(|e| CliError::setup_io(format!("{what}: cannot create the folder"), e)),
        Err(e) => Err(CliError::setup_io(
            format!("{what}: cannot use it as the output folder"),
            e,
        )),
    }
}

/// The state file's identity: its folder resolved (symbolic links, `..`, the current
/// folder) and its file name. The folder exists: the state lock created it.
fn canonical_state(path: &Path) -> Result<PathBuf, CliError> {
    let dir = crate::sync::state::parent(path);
    let dir = fs::canonicalize(&dir)
        .map_err(|e| CliError::setup_io(format!("--state: cannot resolve {}", dir.display()), e))?;
    Ok(match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    })
}

fn read_manifest(output: &Path) -> Result<Option<Manifest>, CliError> {
    let path = output.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::setup_io(
                format!("cannot read {}", path.display()),
                e,
            ));
        }
    };
    let damaged = |why: String| {
        CliError::Usage(format!(
            "{}: {why}; this file records which state file owns the folder: restore it, or \
             delete it and run again (the run then claims the folder after checking that its \
             state accounts for every output file in it)",
            path.display()
        ))
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| damaged(echo::plain(&e.to_string(), ("an object", "object"))))?;
    if manifest.version != MANIFEST_VERSION {
        return Err(damaged(format!(
            "version {} is not supported, expected {MANIFEST_VERSION}",
            manifest.version
        )));
    }
    Ok(Some(manifest))
}

/// The refusal of a folder that belongs to another state file.
fn foreign(output: &Path, manifest: &Manifest, me: &Path) -> CliError {
    let out = output.display();
    CliError::Usage(format!(
        "output folder {out} belongs to the state file {} (pipeline {}), not to {}; a run never \
         writes into another state's output. Run with --state {}, or choose another --output; \
         if you moved the state file to {}, delete {out}/{MANIFEST} and run again: the folder \
         is then claimed for the state you name, after checking that it accounts for every \
         output file there",
        manifest.state.display(),
        manifest.pipeline.display(),
        me.display(),
        manifest.state.display(),
        me.display(),
    ))
}

/// The refusal of a folder holding output the state does not account for.
fn refuse(output: &Path, state: &StateFile, owned: bool, found: &[(String, String)]) -> CliError {
    let out = output.display();
    let state_path = state.path().display();
    let (files, they, them, those) = match found.len() {
        1 => ("file", "It", "it", "that file"),
        _ => ("files", "They", "them", "those files"),
    };
    let list = |with_reasons: bool| {
        let mut listed: Vec<String> = found
            .iter()
            .take(LISTED)
            .map(|(name, why)| match with_reasons {
                true => format!("{} ({why})", echo::clip(name)),
                false => echo::clip(name).into_owned(),
            })
            .collect();
        if found.len() > LISTED {
            listed.push(format!("and {} more", found.len() - LISTED));
        }
        listed.join(", ")
    };
    if owned && !state.existed() {
        return CliError::Usage(format!(
            "the state file {state_path} does not exist, but output folder {out} was written \
             with it and holds {} output {files}: {}. Restore the state file (from a backup, or \
             move it back); if it was moved, run with --state naming where it is now and delete \
             {out}/{MANIFEST}; to start over, move those files out of {out} or choose another \
             --output",
            found.len(),
            list(false)
        ));
    }
    CliError::Usage(format!(
        "output folder {out} holds {} output {files} that the state file {state_path} does not \
         account for: {}. {they} may belong to another pipeline or state (is --state right?); \
         a run never deletes {them}. Run with the state file that wrote {them}, or choose another \
         --output; to start over in {out}, move {those} out of it",
        found.len(),
        list(true),
    ))
}

/// The file names in `dir`, sorted; names that are not UTF-8 are not output files and
/// are left out.
fn list(dir: &Path) -> Result<Vec<String>, CliError> {
    let entries = fs::read_dir(dir)
        .map_err(|e| CliError::setup_io(format!("cannot list {}", dir.display()), e))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
