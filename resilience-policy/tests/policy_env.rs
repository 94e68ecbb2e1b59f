//! Selection through `RESILIENCE_POLICY_DIR` and `RESILIENCE_PROFILE`.
//!
//! Changing the environment of a running test process races with other test threads, so
//! the test re-runs this test binary as a child process with the variables set.

mod common;

use std::env;
use std::process::Command;

use common::TempDir;
use resilience_policy::{LoadOptions, PolicySet, find_policy_dir};

const CHILD: &str = "RESILIENCE_POLICY_TEST_CHILD";

/// Runs the one test `name` in `child` and checks that it ran and passed.
fn run_child(mut child: Command, name: &str) {
    let output = child
        .args(["--exact", name, "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child test failed:\n{stdout}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
}

/// Runs in the child only: checks what the environment selected.
#[test]
fn child_reads_the_environment() {
    let Ok(expected_dir) = env::var(CHILD) else {
        return;
    };
    let opts = LoadOptions::from_env();
    assert_eq!(opts.dir.as_deref(), Some(expected_dir.as_ref()));
    assert_eq!(opts.profile.as_deref(), Some("qa"));
    let set = PolicySet::from_env().unwrap();
    assert_eq!(set.profile(), Some("qa"));
    assert_eq!(set.get("db").unwrap().retry.max_attempts.get(), 4);
    assert_eq!(
        find_policy_dir("/".as_ref()).as_deref(),
        Some(expected_dir.as_ref())
    );
}

#[test]
fn environment_selects_folder_and_profile() {
    if env::var_os(CHILD).is_some() {
        return;
    }
    let dir = TempDir::new("env");
    dir.write("qa.toml", "[policy.db.retry]\nmax_attempts = 4\n");
    let mut child = Command::new(env::current_exe().unwrap());
    child
        .env(CHILD, dir.path())
        .env("RESILIENCE_POLICY_DIR", dir.path())
        .env("RESILIENCE_PROFILE", "qa");
    run_child(child, "child_reads_the_environment");
}

#[test]
fn empty_variables_count_as_unset() {
    if env::var_os(CHILD).is_some() {
        return;
    }
    let mut child = Command::new(env::current_exe().unwrap());
    child
        .env(CHILD, "")
        .env("RESILIENCE_POLICY_DIR", "")
        .env("RESILIENCE_PROFILE", "");
    run_child(child, "child_sees_unset");
}

/// Runs in the child only.
#[test]
fn child_sees_unset() {
    if env::var(CHILD).as_deref() != Ok("") {
        return;
    }
    assert_eq!(LoadOptions::from_env(), LoadOptions::default());
}
