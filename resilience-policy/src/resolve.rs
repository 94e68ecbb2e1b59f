//! `extends`: a policy inherits every key it does not set from another policy.
//!
//! Inheritance is resolved after all layers are merged, so a profile may change a base
//! policy and every policy extending it follows. A policy without `extends` inherits from
//! the schema defaults (`Policy::default()`, the `db` preset). Unknown targets and cycles
//! are reported at the `extends` value that introduces them.

use std::collections::BTreeMap;

use crate::error::PolicyError;
use crate::location::Sourced;
use crate::model::Policy;
use crate::raw::RawFile;
use crate::schema::{self, Value};

/// Every key of a policy with its value and origin (`None` for a schema default).
pub(crate) type Resolved = BTreeMap<&'static str, Sourced<Value>>;

/// Resolves `extends` for every policy of `file`.
pub(crate) fn resolve(file: &RawFile) -> Result<BTreeMap<String, Resolved>, PolicyError> {
    let defaults: Resolved = schema::to_values(&Policy::default())
        .into_iter()
        .map(|(key, value)| {
            let value = Sourced {
                value,
                origin: None,
            };
            (key, value)
        })
        .collect();
    let mut done = BTreeMap::new();
    for name in file.keys() {
        resolve_one(name, file, &defaults, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

fn resolve_one<'a>(
    name: &'a str,
    file: &'a RawFile,
    defaults: &Resolved,
    done: &mut BTreeMap<String, Resolved>,
    chain: &mut Vec<&'a str>,
) -> Result<(), PolicyError> {
    if done.contains_key(name) {
        return Ok(());
    }
    let policy = &file[name];
    let mut values = match &policy.extends {
        None => defaults.clone(),
        Some(extends) => {
            let target = extends.target.as_str();
            if !file.contains_key(target) {
                let known: Vec<&str> = file.keys().map(String::as_str).collect();
                return Err(extends.at.error(format!(
                    "unknown policy `{target}` in `extends`, expected one of: {}",
                    known.join(", ")
                )));
            }
            if target == name || chain.contains(&target) {
                let start = chain
                    .iter()
                    .position(|n| *n == target)
                    .unwrap_or(chain.len());
                let mut cycle = chain[start..].to_vec();
                cycle.extend([name, target]);
                return Err(extends.at.error(format!(
                    "cycle in `extends`: {}; a policy cannot inherit from itself",
                    cycle.join(" -> ")
                )));
            }
            chain.push(name);
            resolve_one(target, file, defaults, done, chain)?;
            chain.pop();
            done[target].clone()
        }
    };
    values.extend(policy.values.clone());
    done.insert(name.to_owned(), values);
    Ok(())
}
