//! One sync at a time per state file, and per output folder.
//!
//! Two runs sharing a state file would number their part files alike and overwrite each
//! other's checkpoints; two runs sharing an output folder (with different states) would
//! write parts under the same names. Each is therefore locked for the whole run: the state
//! by a file next to it (`<state>.lock`), the output folder by a file inside it
//! (`.resilient-output.lock`). A lock file holds the owner's process id (for messages)
//! and is locked with an exclusive advisory lock (`flock`) that the kernel releases when
//! the owner exits, however it exits. A lock file left by a killed run is therefore simply
//! locked again: there is no stale-lock takeover that two runs could both win. The owner
//! removes the file while it still holds the lock; a run that opened the file just before
//! and then locks the removed file notices that the path no longer names what it locked,
//! and starts over.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The lock file of an output folder.
pub const OUTPUT_LOCK: &str = ".resilient-output.lock";

/// Held while a sync runs; removes the lock file when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    file: Option<File>,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live run holds it; its process id when it could be read.
    Busy(Option<String>),
    /// The lock file could not be created or locked.
    Failed(CliError),
}

impl RunLock {
    /// Takes the lock for `state` (the file `<state>.lock`). Another live sync holding it
    /// is a try-again-later condition (exit 1).
    pub fn state(state: &Path) -> Result<RunLock, CliError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| {
                CliError::setup_io(format!("--state: cannot create {}", dir.display()), e)
            })?;
        }
        RunLock::take(path).map_err(|e| match e {
            LockError::Busy(owner) => CliError::Failed(format!(
                "another sync (process {}) is using this state; wait for it to finish and run again",
                owner.as_deref().unwrap_or("unknown")
            )),
            LockError::Failed(e) => e,
        })
    }

    /// Takes the lock of the output folder `dir`, which must exist.
    pub fn output(dir: &Path) -> Result<RunLock, LockError> {
        RunLock::take(dir.join(OUTPUT_LOCK))
    }

    fn take(path: PathBuf) -> Result<RunLock, LockError> {
        let io = |e| LockError::Failed(CliError::io(format!("cannot lock {}", path.display()), e));
        for _ in 0..5 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut owner = String::new();
                    let _ = file.read_to_string(&mut owner);
                    let owner = owner.trim();
                    return Err(LockError::Busy(
                        (!owner.is_empty()).then(|| owner.to_owned()),
                    ));
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if !still_named(&file, &path) {
                // The previous owner removed the file between our open and our lock.
                continue;
            }
            let mut previous = String::new();
            let _ = file.read_to_string(&mut previous);
            if let Ok(pid) = previous.trim().parse::<u32>() {
                tracing::warn!(pid, lock = %path.display(),
                    "taking over the lock file of a run that ended without releasing it");
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            write!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(RunLock {
                path,
                file: Some(file),
            });
        }
        Err(LockError::Failed(CliError::Failed(format!(
            "cannot take the lock {}: other runs keep replacing it; run again",
            path.display()
        ))))
    }
}

/// Whether `path` still names the file `file` has open.
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_named(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, then unlocked by closing (see the module docs).
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_a_dead_owners_lock_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let state = dir.join("state.json");
        let first = RunLock::state(&state).unwrap();
        let err = RunLock::state(&state).unwrap_err();
        assert_eq!(err.exit_code(), 1, "try again later, not a usage error");
        assert!(
            err.to_string()
                .contains(&format!("another sync (process {})", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(!dir.join("state.json.lock").exists(), "released on drop");
        // A lock file nobody holds (its run was killed) is simply locked again.
        fs::write(dir.join("state.json.lock"), "4294967295").unwrap();
        let taken = RunLock::state(&state).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("state.json.lock")).unwrap(),
            std::process::id().to_string()
        );
        drop(taken);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_output_folder_is_locked_for_one_run() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(&dir).unwrap();
        let first = RunLock::output(&dir).unwrap();
        match RunLock::output(&dir) {
            Err(LockError::Busy(owner)) => {
                assert_eq!(owner, Some(std::process::id().to_string()));
            }
            other => panic!("expected busy, got {other:?}"),
        }
        drop(first);
        assert!(!dir.join(OUTPUT_LOCK).exists(), "released on drop");
        drop(RunLock::output(&dir).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_takeovers_have_one_winner() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let state = dir.join("state.json");
        fs::create_dir_all(&dir).unwrap();
        for _ in 0..20 {
            fs::write(dir.join("state.json.lock"), "4294967295").unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (state, barrier) = (state.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        RunLock::state(&state).ok()
                    })
                })
                .collect();
            let winners: Vec<_> = handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect();
            assert_eq!(winners.len(), 1, "exactly one run takes the lock");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
