//! Shared helpers for the loader tests: a temporary policy folder that cleans up after
//! itself, and the check every malformed-file case runs.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::path::{Path, PathBuf};

use resilience_policy::{LoadOptions, PolicyError, PolicySet};

/// A unique folder under the system temp dir, removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("resilience-policy-test-{tag}-"))
            .tempdir()
            .expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `name` (e.g. `default.toml`) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        fs::write(&path, text).expect("write policy file");
        path
    }

    /// Loads this folder with `profile`.
    pub fn load(&self, profile: Option<&str>) -> Result<PolicySet, PolicyError> {
        PolicySet::load(&LoadOptions {
            dir: Some(self.path().to_path_buf()),
            profile: profile.map(str::to_owned),
        })
    }
}

/// The 1-based line and column of the first `@` in `marked`, and the text without it.
pub fn marker(marked: &str) -> (String, usize, usize) {
    let offset = marked.find('@').expect("test case has an @ marker");
    let before = &marked[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |nl| nl + 1)..]
        .chars()
        .count()
        + 1;
    (marked.replacen('@', "", 1), line, column)
}

/// Writes `files` (exactly one holds the `@` marker), loads with `profile`, and checks
/// the error's position, key and message.
pub fn check(files: &[(&str, &str)], profile: Option<&str>, key: &str, expect: &[&str]) {
    let dir = TempDir::new("malformed");
    let mut at = None;
    for (name, text) in files {
        if text.contains('@') {
            let (text, line, column) = marker(text);
            at = Some((dir.write(name, &text), line, column));
        } else {
            dir.write(name, text);
        }
    }
    let (file, line, column) = at.expect("one file has the marker");
    let err = dir.load(profile).expect_err("the policy is malformed");
    let shown = err.to_string();
    assert_eq!(err.file(), Some(file.as_path()), "{shown}");
    assert_eq!(
        (err.line(), err.column()),
        (Some(line), Some(column)),
        "{shown}"
    );
    assert!(
        shown.starts_with(&format!("{}:{line}:{column}: ", file.display())),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("`{key}`")),
        "key `{key}` missing: {shown}"
    );
    for part in expect {
        assert!(shown.contains(part), "`{part}` missing: {shown}");
    }
}

pub fn default(text: &str, key: &str, expect: &[&str]) {
    check(&[("default.toml", text)], None, key, expect);
}
