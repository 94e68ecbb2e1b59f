//! `<NAME>_RESILIENCE_CONFIG`: a file holding one policy's settings, merged last, with
//! errors pointing into it and `origin` saying where each value came from.
//!
//! Changing the environment of a running test process races with other test threads, so
//! each case re-runs this test binary as a child process with the variables set.

mod common;

use std::env;
use std::process::Command;

use common::TempDir;
use resilience_policy::{LoadOptions, PolicySet, known_policy_names, override_variable};

const CHILD: &str = "RESILIENCE_OVERRIDE_TEST_CHILD";

/// Runs the child test `name` with `vars` set and checks that it ran and passed.
fn run_child(name: &str, vars: &[(&str, &str)]) {
    let mut child = Command::new(env::current_exe().unwrap());
    child.env(CHILD, name);
    for (k, v) in vars {
        child.env(k, v);
    }
    let output = child
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child did not run:\n{stdout}"
    );
}

/// Whether this process is the child running `name`.
fn is_child(name: &str) -> bool {
    env::var(CHILD).as_deref() == Ok(name)
}

fn in_parent() -> bool {
    env::var_os(CHILD).is_none()
}

#[test]
fn the_seed_names_map_to_the_policies() {
    assert_eq!(override_variable("db"), "DB_RESILIENCE_CONFIG");
    assert_eq!(override_variable("api"), "API_RESILIENCE_CONFIG");
    assert_eq!(override_variable("file"), "FILE_RESILIENCE_CONFIG");
}

#[test]
fn a_policy_file_from_the_environment_is_merged_last() {
    if !in_parent() {
        return;
    }
    let dir = TempDir::new("override");
    let file = dir.write(
        "db.toml",
        "# the db policy of this deployment\n[retry]\nmax_attempts = 7\n\n[timeout]\ntotal = \"5m\"\n",
    );
    run_child(
        "child_sees_the_override",
        &[
            ("DB_RESILIENCE_CONFIG", file.to_str().unwrap()),
            ("OVERRIDE_FILE", file.to_str().unwrap()),
        ],
    );
}

#[test]
fn child_sees_the_override() {
    if !is_child("child_sees_the_override") {
        return;
    }
    let file = env::var("OVERRIDE_FILE").unwrap();
    // Over the prod profile: prod's own keys stay unless the file sets them.
    let prod = PolicySet::load(&LoadOptions {
        dir: None,
        profile: Some("prod".into()),
    })
    .unwrap();
    let db = prod.get("db").unwrap();
    assert_eq!(db.retry.max_attempts.get(), 7);
    assert_eq!(db.timeout.total.as_secs(), 300);
    assert!(
        prod.files()
            .iter()
            .any(|f| f.to_str() == Some(file.as_str()))
    );
    assert_eq!(
        prod.origin("db", "retry.max_attempts"),
        Some(format!("{file}:3:16 (DB_RESILIENCE_CONFIG)").as_str())
    );
    assert!(
        prod.origin("db", "retry.initial_delay")
            .unwrap()
            .starts_with("<built-in default.toml>:"),
        "{:?}",
        prod.origin("db", "retry.initial_delay")
    );
    // Other policies and the built-in presets are untouched.
    assert_eq!(prod.get("api").unwrap().retry.max_attempts.get(), 5);
    assert_eq!(
        PolicySet::builtin()
            .get("db")
            .unwrap()
            .retry
            .max_attempts
            .get(),
        3
    );
}

#[test]
fn an_error_in_the_file_points_into_it() {
    if !in_parent() {
        return;
    }
    let dir = TempDir::new("override-bad");
    let file = dir.write("api.toml", "[retry]\nmax_attempts = 3\nmultiplier = 0.5\n");
    run_child(
        "child_reports_the_bad_value",
        &[
            ("API_RESILIENCE_CONFIG", file.to_str().unwrap()),
            ("OVERRIDE_FILE", file.to_str().unwrap()),
        ],
    );
}

#[test]
fn child_reports_the_bad_value() {
    if !is_child("child_reports_the_bad_value") {
        return;
    }
    let file = env::var("OVERRIDE_FILE").unwrap();
    let err = PolicySet::load(&LoadOptions::default()).unwrap_err();
    assert_eq!(err.file().and_then(|f| f.to_str()), Some(file.as_str()));
    assert_eq!((err.line(), err.column()), (Some(3), Some(14)));
    assert_eq!(err.key(), Some("policy.api.retry.multiplier"));
    assert!(err.to_string().contains("at least 1.0"), "{err}");
    // The macro's compile-time check reads the policy files only.
    let (names, _) = known_policy_names(None).unwrap();
    assert!(names.contains("api"));
}

#[test]
fn a_variable_for_an_unknown_policy_or_a_whole_policy_file_is_refused() {
    if !in_parent() {
        return;
    }
    let dir = TempDir::new("override-unknown");
    let file = dir.write("x.toml", "[retry]\nmax_attempts = 3\n");
    let whole = dir.write("db.toml", "[policy.db.retry]\nmax_attempts = 3\n");
    run_child(
        "child_refuses_an_unknown_policy",
        &[("ORDERS_RESILIENCE_CONFIG", file.to_str().unwrap())],
    );
    run_child(
        "child_sees_the_whole_file_hint",
        &[("DB_RESILIENCE_CONFIG", whole.to_str().unwrap())],
    );
}

#[test]
fn child_refuses_an_unknown_policy() {
    if !is_child("child_refuses_an_unknown_policy") {
        return;
    }
    let err = PolicySet::load(&LoadOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ORDERS_RESILIENCE_CONFIG names "),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "for policy `orders`, which no policy file defines; expected one of: API_RESILIENCE_CONFIG, DB_RESILIENCE_CONFIG, FILE_RESILIENCE_CONFIG"
        ),
        "{err}"
    );
}

#[test]
fn child_sees_the_whole_file_hint() {
    if !is_child("child_sees_the_whole_file_hint") {
        return;
    }
    let err = PolicySet::load(&LoadOptions::default()).unwrap_err();
    assert_eq!((err.line(), err.column()), (Some(1), Some(2)), "{err}");
    assert!(
        err.to_string()
            .contains("this file holds the settings of policy `db` only"),
        "{err}"
    );
}
