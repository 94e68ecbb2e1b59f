//! The loaded policies, by name, and how they are loaded.
//!
//! Loading is synchronous and free of any runtime: the `#[resilient_operation]` macro runs
//! the same code at compile time to check policy names.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::embedded;
use crate::error::PolicyError;
use crate::location::Source;
use crate::merge::merge;
use crate::model::Policy;
use crate::overrides;
use crate::raw::{self, RawFile};
use crate::resolve::resolve;
use crate::store::{RawStore, StorePolicy};
use crate::validate;

/// Where to load policies from: a folder and a profile, both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// A folder holding `default.toml` (merged over the built-in presets) and
    /// `<profile>.toml` files. `None` uses only the built-in files.
    pub dir: Option<PathBuf>,
    /// The profile merged over the defaults (`dev`, `prod`, `demo`, or a file in `dir`).
    pub profile: Option<String>,
}

impl LoadOptions {
    /// Options from `RESILIENCE_POLICY_DIR` and `RESILIENCE_PROFILE` (empty means unset).
    pub fn from_env() -> LoadOptions {
        let var = |name| env::var(name).ok().filter(|v: &String| !v.is_empty());
        LoadOptions {
            dir: var("RESILIENCE_POLICY_DIR").map(PathBuf::from),
            profile: var("RESILIENCE_PROFILE"),
        }
    }
}

/// Named policies, merged, resolved and validated.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
    profile: Option<String>,
    files: Vec<PathBuf>,
    /// Where each key's value came from, by policy: `file:line:column`, with the variable
    /// that named the file; keys left at the schema default are absent.
    origins: BTreeMap<String, BTreeMap<&'static str, String>>,
    /// The `[store]` table, when a layer wrote one.
    store: Option<Arc<StorePolicy>>,
}

impl PolicySet {
    /// A set built in code rather than from files, checked against the same rules as a
    /// policy file ([`Policy::validate`]): the first policy that breaks one is the error.
    pub fn from_policies<I, S>(policies: I) -> Result<PolicySet, PolicyError>
    where
        I: IntoIterator<Item = (S, Policy)>,
        S: Into<String>,
    {
        let set = PolicySet {
            policies: policies
                .into_iter()
                .map(|(name, policy)| (name.into(), Arc::new(policy)))
                .collect(),
            profile: None,
            files: Vec::new(),
            origins: BTreeMap::new(),
            store: None,
        };
        set.validate()?;
        Ok(set)
    }

    /// Checks every policy against the rules (see [`Policy::validate`]). A set from the
    /// loader or [`from_policies`](Self::from_policies) always passes; an engine checks
    /// again before it swaps a set in.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.policies
            .iter()
            .try_for_each(|(name, policy)| policy.validate(name))
    }

    /// The built-in presets (`db`, `api`, `file`) from the embedded `default.toml`, as
    /// shipped (no `<NAME>_RESILIENCE_CONFIG` file applies).
    pub fn builtin() -> PolicySet {
        static BUILTIN: OnceLock<PolicySet> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                PolicySet::load_layers(&LoadOptions::default(), false)
                    .expect("the embedded default.toml is valid (checked by a test)")
            })
            .clone()
    }

    /// Loads the embedded `default.toml`, then `<dir>/default.toml` if present, then the
    /// profile (`<dir>/<profile>.toml`, else a shipped profile), then for each policy the
    /// file its `<NAME>_RESILIENCE_CONFIG` variable names, if set (`DB_RESILIENCE_CONFIG`
    /// for `db`), merged key by key.
    pub fn load(opts: &LoadOptions) -> Result<PolicySet, PolicyError> {
        PolicySet::load_layers(opts, true)
    }

    /// The policy files without the `<NAME>_RESILIENCE_CONFIG` files (what the
    /// `#[resilient_operation]` macro checks names against at compile time).
    pub(crate) fn load_files(opts: &LoadOptions) -> Result<PolicySet, PolicyError> {
        PolicySet::load_layers(opts, false)
    }

    /// Every `*_RESILIENCE_CONFIG` variable set now, with the file it names.
    pub fn override_files() -> Vec<(String, PathBuf)> {
        overrides::set_variables()
    }

    fn load_layers(opts: &LoadOptions, with_overrides: bool) -> Result<PolicySet, PolicyError> {
        let mut layers = vec![builtin_source("default", embedded::DEFAULT, 0)];
        let mut files = Vec::new();
        if let Some(dir) = &opts.dir {
            if !dir.is_dir() {
                return Err(PolicyError::Read {
                    file: dir.clone(),
                    source: io::Error::new(
                        io::ErrorKind::NotFound,
                        "not a folder; expected a folder holding default.toml and <profile>.toml files",
                    ),
                });
            }
            let path = dir.join("default.toml");
            if path.is_file() {
                layers.push(read(&path, layers.len())?);
                files.push(path);
            }
        }
        if let Some(profile) = opts.profile.as_deref().filter(|p| *p != "default") {
            let on_disk = opts
                .dir
                .as_ref()
                .map(|dir| dir.join(format!("{profile}.toml")))
                .filter(|path| raw::is_identifier(profile) && path.is_file());
            if let Some(path) = on_disk {
                layers.push(read(&path, layers.len())?);
                files.push(path);
            } else if let Some(text) = embedded::profile(profile) {
                layers.push(builtin_source(profile, text, layers.len()));
            } else {
                return Err(PolicyError::UnknownProfile {
                    file: opts.dir.as_ref().map_or_else(
                        || PathBuf::from("<built-in profiles>"),
                        |dir| dir.join(format!("{profile}.toml")),
                    ),
                    profile: profile.to_owned(),
                    available: available_profiles(opts.dir.as_deref()),
                });
            }
        }
        let mut merged = RawFile::new();
        let mut raw_store = RawStore::default();
        for layer in &layers {
            merge(&mut merged, raw::parse(layer)?);
            raw_store.add_layer(layer)?;
        }
        let store = raw_store.build()?.map(Arc::new);
        if with_overrides {
            apply_overrides(&mut merged, layers.len(), &mut files)?;
        }
        let mut policies = BTreeMap::new();
        let mut origins = BTreeMap::new();
        for (name, values) in resolve(&merged)? {
            let policy = validate::build(&name, &values)?;
            let written = values
                .iter()
                .filter_map(|(key, v)| v.origin.as_ref().map(|o| (*key, o.describe())))
                .collect();
            origins.insert(name.clone(), written);
            policies.insert(name, Arc::new(policy));
        }
        Ok(PolicySet {
            policies,
            profile: opts.profile.clone(),
            files,
            origins,
            store,
        })
    }

    /// Loads the policies the environment selects (see [`LoadOptions::from_env`]).
    pub fn from_env() -> Result<PolicySet, PolicyError> {
        PolicySet::load(&LoadOptions::from_env())
    }

    /// The policy called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Policy>> {
        self.policies.get(name)
    }

    /// Every policy name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    /// The profile merged over the defaults, if any.
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Every file read from disk, in layer order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Where the value of `key` (a dotted path below `policy.NAME`, such as
    /// `retry.max_attempts`) of `policy` was written: `file:line:column`, followed by the
    /// variable that named the file for a `<NAME>_RESILIENCE_CONFIG` file. `None` when
    /// the value is the schema default (the `db` preset's) or the set was built in code.
    pub fn origin(&self, policy: &str, key: &str) -> Option<&str> {
        self.origins.get(policy)?.get(key).map(String::as_str)
    }

    /// Every key of `policy` a file set, with where (see [`origin`](Self::origin)).
    pub fn origins(&self, policy: &str) -> impl Iterator<Item = (&'static str, &str)> {
        self.origins
            .get(policy)
            .into_iter()
            .flatten()
            .map(|(key, origin)| (*key, origin.as_str()))
    }

    /// The shared store (the `[store]` table), if one is configured.
    pub fn store(&self) -> Option<&Arc<StorePolicy>> {
        self.store.as_ref()
    }

    /// Whether `policy` is shared through the store: a store is configured and the
    /// policy does not say `shared = false`.
    pub fn is_shared(&self, policy: &str) -> bool {
        self.store.is_some() && self.policies.get(policy).is_some_and(|p| p.shared)
    }

    /// This set with `store` as its shared store (for sets built in code), and the
    /// policies named in `local` kept local (`shared = false`).
    pub fn with_store<I, S>(mut self, store: StorePolicy, local: I) -> PolicySet
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.store = Some(Arc::new(store));
        for name in local {
            if let Some(policy) = self.policies.get_mut(&name.into()) {
                Arc::make_mut(policy).shared = false;
            }
        }
        self
    }

    /// The effective policies as a policy file that loads back to the same set (every key
    /// written out, `extends` already applied).
    pub fn to_toml(&self) -> String {
        #[derive(serde::Serialize)]
        struct File<'a> {
            policy: BTreeMap<&'a str, &'a Policy>,
        }
        let file = File {
            policy: self
                .policies
                .iter()
                .map(|(name, policy)| (name.as_str(), &**policy))
                .collect(),
        };
        toml::to_string(&file).expect("a policy always serializes to TOML")
    }
}

fn builtin_source(name: &str, text: &str, layer: usize) -> Arc<Source> {
    Arc::new(Source {
        name: PathBuf::from(format!("<built-in {name}.toml>")),
        text: text.to_owned(),
        layer,
        via: None,
    })
}

fn read(path: &Path, layer: usize) -> Result<Arc<Source>, PolicyError> {
    let text = fs::read_to_string(path).map_err(|source| PolicyError::Read {
        file: path.to_owned(),
        source,
    })?;
    Ok(Arc::new(Source {
        name: path.to_owned(),
        text,
        layer,
        via: None,
    }))
}

/// Merges the file each set `<NAME>_RESILIENCE_CONFIG` variable names over its policy, as
/// layers above `first_layer`; a variable for a policy no file defines is an error.
fn apply_overrides(
    merged: &mut RawFile,
    first_layer: usize,
    files: &mut Vec<PathBuf>,
) -> Result<(), PolicyError> {
    let names: Vec<String> = merged.keys().cloned().collect();
    for (layer, (var, path)) in overrides::set_variables().into_iter().enumerate() {
        let Some(name) = names.iter().find(|n| overrides::variable(n) == var) else {
            return Err(PolicyError::UnknownOverride {
                policy: var.trim_end_matches(overrides::SUFFIX).to_ascii_lowercase(),
                variable: var,
                file: path,
                expected: names.iter().map(|n| overrides::variable(n)).collect(),
            });
        };
        let mut source = read(&path, first_layer + layer)?;
        if let Some(s) = Arc::get_mut(&mut source) {
            s.via = Some(var.clone());
        }
        let policy = raw::parse_policy(&source, name)?;
        merge(merged, RawFile::from([(name.clone(), policy)]));
        files.push(path);
    }
    Ok(())
}

/// The shipped profiles and every `<profile>.toml` in `dir`, sorted. `default.toml` is the
/// base layer and `reference.toml` documents every key: neither is a profile.
pub fn available_profiles(dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = embedded::PROFILES
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if let Some(entries) = dir.and_then(|dir| fs::read_dir(dir).ok()) {
        for path in entries.flatten().map(|entry| entry.path()) {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if path.extension().is_some_and(|e| e == "toml")
                && stem != "default"
                && stem != "reference"
                && raw::is_identifier(stem)
            {
                names.push(stem.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}
