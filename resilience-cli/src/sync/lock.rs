//! One sync at a time per state file.
//!
//! Two runs sharing a state file would number their part files alike and overwrite each
//! other's checkpoints. The lock is a file next to the state, created exclusively, holding
//! the owner's process id. A lock left by a killed run is recognised as stale when that
//! process no longer exists (checked through `/proc` where there is one) and taken over.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Held while a sync runs; removes the lock file when dropped.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock for `state` (the file `<state>.lock`).
    pub fn acquire(state: &Path) -> Result<StateLock, CliError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
        }
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let _ = write!(file, "{}", std::process::id());
                    return Ok(StateLock { path });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).unwrap_or_default();
                    match owner.trim().parse::<u32>() {
                        Ok(pid) if !alive(pid) => {
                            tracing::warn!(pid, lock = %path.display(), "taking over the lock of a run that no longer exists");
                            let _ = fs::remove_file(&path);
                        }
                        _ => {
                            return Err(CliError::Usage(format!(
                                "another sync (process {}) is using this state; wait for it, or remove {} if it is gone",
                                owner.trim(),
                                path.display()
                            )));
                        }
                    }
                }
                Err(e) => return Err(CliError::io(format!("cannot create {}", path.display()), e)),
            }
        }
        Err(CliError::Failed(format!(
            "cannot take the lock {}",
            path.display()
        )))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists; assumed alive where it cannot be checked.
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_stale_lock_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("lock-test-{}", std::process::id()));
        let state = dir.join("state.json");
        let first = StateLock::acquire(&state).unwrap();
        let err = StateLock::acquire(&state).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("another sync"), "{err}");
        drop(first);
        assert!(!dir.join("state.json.lock").exists(), "released on drop");
        if Path::new("/proc/self").exists() {
            // A pid above the kernel's maximum never exists.
            fs::write(dir.join("state.json.lock"), "4294967295").unwrap();
            let taken = StateLock::acquire(&state).unwrap();
            drop(taken);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
