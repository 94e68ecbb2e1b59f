//! `policies/reference.toml` documents every key: it must load and cover the schema.

use std::collections::BTreeSet;
use std::path::PathBuf;

use resilience_policy::{LoadOptions, Policy, PolicySet};

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// Dotted paths of every leaf key below `table`.
fn leaves(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaves(&path, inner, out),
            _ => {
                out.insert(path);
            }
        }
    }
}

fn reference_text() -> String {
    std::fs::read_to_string(policies_dir().join("reference.toml")).expect("reference.toml")
}

#[test]
fn reference_loads_as_a_profile() {
    let set = PolicySet::load(&LoadOptions {
        dir: Some(policies_dir()),
        profile: Some("reference".into()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // It spells out the defaults, so it equals the `db` preset.
    assert_eq!(**set.get("example").unwrap(), Policy::default());
}

#[test]
fn reference_sets_every_key_of_the_schema() {
    let file: toml::Table = toml::from_str(&reference_text()).unwrap();
    let example = file["policy"]["example"].as_table().unwrap();
    let mut documented = BTreeSet::new();
    leaves("", example, &mut documented);

    let schema = toml::Table::try_from(Policy::default()).unwrap();
    let mut expected = BTreeSet::new();
    leaves("", &schema, &mut expected);
    expected.insert("extends".to_owned());
    assert_eq!(documented, expected);
}

#[test]
fn every_key_in_reference_has_a_comment_above_it() {
    let text = reference_text();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = !line.is_empty() && !line.starts_with('#') && !line.starts_with('[');
        if is_key {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "`{line}` (line {}) has no comment above it",
                i + 1
            );
        }
    }
}
