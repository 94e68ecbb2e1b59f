//! What the macro sees at compile time: the policy folder and every policy name.

mod common;

use std::path::PathBuf;

use common::TempDir;
use resilience_policy::{available_profiles, find_policy_dir, known_policy_names};

#[test]
fn finds_the_workspace_policies_folder_from_a_member_crate() {
    if std::env::var_os("RESILIENCE_POLICY_DIR").is_some() {
        return; // the variable wins; covered in policy_env.rs
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let found = find_policy_dir(&manifest).expect("policies/ at the workspace root");
    assert_eq!(found, manifest.parent().unwrap().join("policies"));
    let empty = TempDir::new("no-policies");
    // No `policies/` in the temp dir or (normally) above it.
    if let Some(dir) = find_policy_dir(empty.path()) {
        assert!(!dir.starts_with(empty.path()));
    }
}

#[test]
fn known_names_cover_every_profile_and_list_the_files_read() {
    let dir = TempDir::new("known");
    let default = dir.write("default.toml", "[policy.ledger]\nextends = \"db\"\n");
    let qa = dir.write("qa.toml", "[policy.reports.retry]\nmax_attempts = 2\n");
    dir.write("notes.txt", "not a profile");
    let (names, files) = known_policy_names(Some(dir.path())).unwrap();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names, ["api", "db", "file", "ledger", "reports"]);
    assert_eq!(files, [default, qa]);
    assert_eq!(
        available_profiles(Some(dir.path())),
        ["demo", "dev", "prod", "qa"]
    );
}

#[test]
fn known_names_without_a_folder_are_the_presets() {
    let (names, files) = known_policy_names(None).unwrap();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["api", "db", "file"]);
    assert!(files.is_empty());
}

#[test]
fn known_names_report_a_broken_profile() {
    let dir = TempDir::new("known-broken");
    let qa = dir.write("qa.toml", "[policy.db.retry]\nmax_attempts = 0\n");
    let err = known_policy_names(Some(dir.path())).unwrap_err();
    assert_eq!(err.file(), Some(qa.as_path()));
    assert_eq!((err.line(), err.column()), (Some(2), Some(16)));
}
