//! One sync at a time per state file.
//!
//! Two runs sharing a state file would number their part files alike and overwrite each
//! other's checkpoints. The lock is a file next to the state, holding the owner's process
//! id (for messages), and locked with an exclusive advisory lock (`flock`) that the kernel
//! releases when the owner exits, however it exits. A lock file left by a killed run is
//! therefore simply locked again: there is no stale-lock takeover that two runs could both
//! win. The owner removes the file while it still holds the lock; a run that opened the
//! file just before and then locks the removed file notices that the path no longer names
//! what it locked, and starts over.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Held while a sync runs; removes the lock file when dropped.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    file: Option<File>,
}

impl StateLock {
    /// Takes the lock for `state` (the file `<state>.lock`). Another live sync holding it
    /// is a try-again-later condition (exit 1).
    pub fn acquire(state: &Path) -> Result<StateLock, CliError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
        }
        let io = |e| CliError::io(format!("cannot lock {}", path.display()), e);
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
                    return Err(CliError::Failed(format!(
                        "another sync (process {}) is using this state; wait for it to finish and run again",
                        if owner.is_empty() { "unknown" } else { owner }
                    )));
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
            return Ok(StateLock {
                path,
                file: Some(file),
            });
        }
        Err(CliError::Failed(format!(
            "cannot take the lock {}: other runs keep replacing it; run again",
            path.display()
        )))
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

impl Drop for StateLock {
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
        let dir = std::env::temp_dir().join(format!("lock-test-{}", std::process::id()));
        let state = dir.join("state.json");
        let first = StateLock::acquire(&state).unwrap();
        let err = StateLock::acquire(&state).unwrap_err();
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
        let taken = StateLock::acquire(&state).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("state.json.lock")).unwrap(),
            std::process::id().to_string()
        );
        drop(taken);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_takeovers_have_one_winner() {
        let dir = std::env::temp_dir().join(format!("lock-race-test-{}", std::process::id()));
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
                        StateLock::acquire(&state).ok()
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
