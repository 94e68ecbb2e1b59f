//! What the `#[resilient_operation]` macro sees at compile time: the policy folder of the
//! crate being built, and every policy name any profile could provide.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::set::{LoadOptions, PolicySet, available_profiles};

/// The folder `policies/` in `manifest_dir` or its nearest ancestor (the workspace root);
/// `RESILIENCE_POLICY_DIR` wins when set.
pub fn find_policy_dir(manifest_dir: &Path) -> Option<PathBuf> {
    if let Some(dir) = LoadOptions::from_env().dir {
        return Some(dir);
    }
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("policies"))
        .find(|dir| dir.is_dir())
}

/// The policy names visible at compile time: the built-in presets, `default.toml` in `dir`
/// and every profile (shipped or in `dir`), each fully loaded and validated; and every file
/// read, so the caller can make the build depend on them.
pub fn known_policy_names(
    dir: Option<&Path>,
) -> Result<(BTreeSet<String>, Vec<PathBuf>), PolicyError> {
    let profiles = available_profiles(dir);
    let mut names = BTreeSet::new();
    let mut files = Vec::new();
    for profile in std::iter::once(None).chain(profiles.into_iter().map(Some)) {
        let set = PolicySet::load_files(&LoadOptions {
            dir: dir.map(Path::to_owned),
            profile,
        })?;
        names.extend(set.names().map(str::to_owned));
        for file in set.files() {
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
    }
    Ok((names, files))
}
