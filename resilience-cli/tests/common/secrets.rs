//! Secrets in a run of the binary: handed over in a variable, and then found in none of
//! what the run printed or wrote.

use std::path::Path;
use std::process::{Command, Output};

/// Sets `var` to `secret` for `cmd`; with `None`, removes any value it would inherit.
pub fn with_secret<'c>(cmd: &'c mut Command, var: &str, secret: Option<&str>) -> &'c mut Command {
    cmd.env_remove(var);
    if let Some(secret) = secret {
        cmd.env(var, secret);
    }
    cmd
}

/// None of `secrets` is in the run's stdout or stderr.
pub fn assert_not_printed(out: &Output, secrets: &[&str]) {
    let (stdout, stderr) = super::text(out);
    for secret in secrets {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret was printed:\nstdout: {stdout}\nstderr: {stderr}"
        );
    }
}

/// None of `secrets` is in any file of `dir/sub`; a folder that does not exist holds none.
pub fn assert_not_written(dir: &Path, sub: &str, secrets: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            continue;
        }
        let body =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let body = String::from_utf8_lossy(&body);
        for secret in secrets {
            assert!(!body.contains(secret), "{} holds a secret", path.display());
        }
    }
}
