//! `resilient policy check | show | explain`: the policy files, as the engine sees them.
//!
//! All three load policies exactly as a connector would (built-in presets, then the
//! folder's `default.toml`, then the profile), so a passing `check` means the engine will
//! load the same files, and `show` prints what it will run with.

mod explain;

use std::collections::BTreeMap;

use resilience_core::policy::{LoadOptions, PolicySet, available_profiles};
use serde_json::json;

use crate::args::{PolicyArgs, PolicyCommand, PolicySource};
use crate::error::CliError;
use crate::sharing;

/// Runs a policy subcommand.
pub async fn run(args: PolicyArgs) -> Result<(), CliError> {
    match args.command {
        PolicyCommand::Check { source, json } => check(&source, json),
        PolicyCommand::Show { source, json } => show(&source, json),
        PolicyCommand::Explain { name, source, json } => explain_one(&name, &source, json),
    }
}

fn load(source: &PolicySource) -> Result<PolicySet, CliError> {
    Ok(PolicySet::load(&source.options())?)
}

/// Checks the selected policies; given a folder and no profile, also every profile the
/// folder offers, each merged over the folder's `default.toml` as a connector would load
/// it, so a folder can be checked before it is swapped in (see `sync --watch-policies`).
fn check(source: &PolicySource, as_json: bool) -> Result<(), CliError> {
    let set = load(source)?;
    let names: Vec<&str> = set.names().collect();
    let files: Vec<String> = set
        .files()
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut profiles = Vec::new();
    if let (Some(dir), None) = (&source.dir, source.options().profile) {
        for profile in available_profiles(Some(dir)) {
            let set = PolicySet::load(&LoadOptions {
                dir: Some(dir.clone()),
                profile: Some(profile.clone()),
            })?;
            let names: Vec<String> = set.names().map(str::to_owned).collect();
            profiles.push((profile, names));
        }
    }
    if as_json {
        let checked: Vec<_> = profiles
            .iter()
            .map(|(name, policies)| json!({ "profile": name, "policies": policies }))
            .collect();
        let out = json!({
            "valid": true,
            "profile": set.profile(),
            "files": files,
            "policies": names,
            "profiles_checked": checked,
        });
        println!("{out:#}");
    } else {
        let from = if files.is_empty() {
            "the built-in presets".to_owned()
        } else {
            format!("the built-in presets and {}", files.join(", "))
        };
        println!(
            "ok: {} policies ({}) from {from}, profile {}",
            names.len(),
            names.join(", "),
            set.profile().unwrap_or("none")
        );
        for (profile, policies) in &profiles {
            println!(
                "ok: profile {profile}: {} policies ({})",
                policies.len(),
                policies.join(", ")
            );
        }
    }
    Ok(())
}

fn show(source: &PolicySource, as_json: bool) -> Result<(), CliError> {
    let set = load(source)?;
    if as_json {
        let policies: BTreeMap<&str, _> = set
            .names()
            .filter_map(|name| set.get(name).map(|p| (name, &**p)))
            .collect();
        let origins: BTreeMap<&str, BTreeMap<&str, &str>> = set
            .names()
            .map(|name| (name, set.origins(name).collect()))
            .collect();
        let out = json!({
            "profile": set.profile(),
            "store": sharing::json(&set),
            "policy": policies,
            "origin": origins,
        });
        println!("{out:#}");
    } else {
        println!(
            "# effective policies (profile: {}); every key written out, `extends` applied;\n\
             # after each value, where it was set (file:line:column), or `default`",
            set.profile().unwrap_or("none")
        );
        print!("{}", sharing::summary(&set));
        print!("{}", annotated(&set, &set.to_toml()));
    }
    Ok(())
}

/// `toml` (as [`PolicySet::to_toml`] writes it) with, after each value, where it was set.
fn annotated(set: &PolicySet, toml: &str) -> String {
    let mut out = String::with_capacity(toml.len() * 2);
    let mut table: Option<(&str, &str)> = None;
    for line in toml.lines() {
        out.push_str(line);
        if let Some(header) = line
            .strip_prefix("[policy.")
            .and_then(|l| l.strip_suffix(']'))
        {
            table = header.split_once('.');
        } else if let (Some((policy, section)), Some((key, _))) = (table, line.split_once(" = ")) {
            let origin = set
                .origin(policy, &format!("{section}.{key}"))
                .unwrap_or("default");
            out.push_str("  # ");
            out.push_str(origin);
        }
        out.push('\n');
    }
    out
}

fn explain_one(name: &str, source: &PolicySource, as_json: bool) -> Result<(), CliError> {
    let set = load(source)?;
    let Some(policy) = set.get(name) else {
        let known: Vec<&str> = set.names().collect();
        return Err(CliError::Usage(format!(
            "unknown policy `{name}`, expected one of: {}",
            known.join(", ")
        )));
    };
    let explanation = explain::explain(name, policy);
    if as_json {
        let mut value = serde_json::to_value(&explanation)
            .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("shared".into(), json!(set.is_shared(name)));
            object.insert("store".into(), sharing::json(&set));
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", explain::render(&explanation, policy));
        print!("{}", sharing::for_policy(&set, name));
    }
    Ok(())
}
