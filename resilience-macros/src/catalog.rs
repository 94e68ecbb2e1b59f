//! The policy names the build can see: the compile-time side of the policy loader.
//!
//! The macro asks `resilience-policy` (the crate the runtime loads policies with) for
//! the known names, starting from the manifest folder of the crate being compiled,
//! so the compile-time check and the runtime can never disagree on the rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The policy names a build can see, and the files they were read from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    /// Every known policy name, sorted.
    pub names: BTreeSet<String>,
    /// Every policy file read, absolute and sorted; the expansion includes them so
    /// that editing one triggers a rebuild.
    pub files: Vec<PathBuf>,
}

impl Catalog {
    /// The catalog for the crate being compiled: `policies/` found from its
    /// `CARGO_MANIFEST_DIR` (`RESILIENCE_POLICY_DIR` wins), plus the built-in presets.
    pub(crate) fn for_build() -> Result<Catalog, String> {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
        let dir =
            resilience_policy::find_policy_dir(manifest_dir.as_deref().unwrap_or(Path::new("")));
        Catalog::load(dir.as_deref())
    }

    /// The catalog for the policy folder `dir` (`None`: the built-in presets only).
    pub(crate) fn load(dir: Option<&Path>) -> Result<Catalog, String> {
        let (names, files) = resilience_policy::known_policy_names(dir)
            .map_err(|error| format!("cannot check the policy name: {error}"))?;
        let mut files: Vec<PathBuf> = files
            .into_iter()
            .map(|file| std::path::absolute(&file).unwrap_or(file))
            .collect();
        files.sort();
        files.dedup();
        Ok(Catalog { names, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("resilience-macros-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_built_in_presets_need_no_folder() {
        let catalog = Catalog::load(None).unwrap();
        assert!(catalog.names.contains("db"), "{:?}", catalog.names);
    }

    #[test]
    fn a_profile_adds_names_and_its_files_are_tracked() {
        let dir = TempDir::new("profile");
        std::fs::write(
            dir.0.join("staging.toml"),
            "[policy.warehouse]\nextends = \"db\"\n",
        )
        .unwrap();
        let catalog = Catalog::load(Some(&dir.0)).unwrap();
        assert!(catalog.names.contains("warehouse"), "{:?}", catalog.names);
        assert!(
            catalog
                .files
                .iter()
                .any(|f| f.ends_with("staging.toml") && f.is_absolute()),
            "{:?}",
            catalog.files
        );
    }

    #[test]
    fn a_malformed_policy_file_names_its_file_line_and_column() {
        let dir = TempDir::new("malformed");
        std::fs::write(
            dir.0.join("default.toml"),
            "[policy.db.retry]\nmax_attempts = \"three\"\n",
        )
        .unwrap();
        let error = Catalog::load(Some(&dir.0)).unwrap_err();
        assert!(error.contains("default.toml:2:"), "{error}");
        assert!(error.contains("max_attempts"), "{error}");
    }
}
