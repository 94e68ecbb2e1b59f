//! A running `resilient sync` reloads its policies on SIGHUP and, with `--watch-policies`,
//! when a policy file changes; a file that does not load is reported with its line and
//! column and the running policies stay.
//!
//! The sync runs against a port that refuses connections, under a policy that retries
//! 50 times: it stays in its retry loop until a reload lowers `max_attempts`, and then
//! gives up at its next attempt (exit 1). Progress is read from its log lines, each wait
//! bounded.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::{Scratch, sync_cmd};

const PIPELINE: &str = r#"
[connections.main]
url = "postgres://postgres@127.0.0.1:1/x"

[[sources]]
name = "items"
type = "postgres"
connection = "main"
table = "items"
sync_mode = "full"
"#;

/// The `db` policy: quick, many retries, a breaker and budget that stay out of the way.
fn policy(max_attempts: u32) -> String {
    format!(
        "[policy.db.retry]\nmax_attempts = {max_attempts}\ninitial_delay = \"300ms\"\nmultiplier = 1.0\nmax_delay = \"300ms\"\njitter = \"none\"\n\n[policy.db.retry.budget]\nenabled = false\n\n[policy.db.circuit_breaker]\nfailure_threshold = 1000\n\n[policy.db.timeout]\ntotal = \"5m\"\n"
    )
}

/// A sync started in `dir`, with its stderr lines arriving on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(dir: &Scratch, extra: &[&str]) -> Running {
        let mut child = sync_cmd(dir.path(), &["--policy-dir", "pol"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 30 s) for a log line containing every one of `parts`.
    fn wait_for(&mut self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if parts.iter().all(|p| line.contains(p)) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    panic!("no line with {parts:?} in:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// Waits (at most 30 s) for the sync to exit; its exit code.
    fn exit_code(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        // The reader thread ends when the process closes stderr.
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        // It closed stderr: it is exiting; its status follows.
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the sync did not end:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn hangup(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn scratch(tag: &str) -> Scratch {
    let dir = Scratch::new(tag);
    std::fs::write(dir.path().join("p.toml"), PIPELINE).unwrap();
    std::fs::create_dir_all(dir.path().join("pol")).unwrap();
    std::fs::write(dir.path().join("pol/default.toml"), policy(50)).unwrap();
    dir
}

#[test]
fn sighup_reloads_the_policies_of_a_running_sync() {
    let dir = scratch("reload-hup");
    let mut sync = Running::start(&dir, &[]);
    sync.wait_for(&["Retry attempt 2/50", "preflight"]);

    // A broken edit is refused with its place; the sync carries on under the old policy.
    std::fs::write(
        dir.path().join("pol/default.toml"),
        policy(50).replace("max_attempts = 50", "max_attempts = 0"),
    )
    .unwrap();
    sync.hangup();
    sync.wait_for(&[
        "policies not reloaded (SIGHUP)",
        "default.toml:2:16",
        "must be at least 1, got 0",
        "the running policies stay",
    ]);
    sync.wait_for(&["Retry attempt", "/50"]);

    // A valid edit is swapped in, and the call running now stops at its next attempt.
    std::fs::write(dir.path().join("pol/default.toml"), policy(2)).unwrap();
    sync.hangup();
    sync.wait_for(&[
        "policies reloaded (SIGHUP)",
        "policy `db`: retry.max_attempts 50 -> 2",
    ]);
    sync.wait_for(&["retries exhausted"]);
    assert_eq!(sync.exit_code(), Some(1));
}

#[test]
fn watch_policies_reloads_when_a_policy_file_changes() {
    let dir = scratch("reload-watch");
    let mut sync = Running::start(&dir, &["--watch-policies"]);
    sync.wait_for(&["Retry attempt 2/50"]);
    std::fs::write(dir.path().join("pol/default.toml"), policy(2)).unwrap();
    sync.wait_for(&[
        "policies reloaded (a policy file changed)",
        "retry.max_attempts 50 -> 2",
    ]);
    assert_eq!(sync.exit_code(), Some(1));
}

#[test]
fn watch_policies_needs_a_policy_folder() {
    let dir = scratch("reload-nodir");
    let out = sync_cmd(dir.path(), &["--watch-policies"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--watch-policies needs a policy folder"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing created");
    assert!(!dir.path().join("st").exists(), "nothing created");
}
