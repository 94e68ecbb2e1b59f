//! One policy file, parsed and checked key by key, not yet merged or resolved.
//!
//! A file may set any subset of keys; what it leaves out comes from lower layers, from the
//! policy it `extends`, or from the schema defaults. So the result of parsing is a map of
//! the keys that were written, each with its checked value and its [`Origin`].

use std::collections::BTreeMap;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::convert;
use crate::error::PolicyError;
use crate::location::{Origin, Source, Sourced};
use crate::schema::{self, FIELDS, SECTIONS, Value};
use crate::store;
use crate::suggest;

/// The keys one file sets for one policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawPolicy {
    /// The policy this one inherits from.
    pub(crate) extends: Option<Extends>,
    /// The keys set, by path below `policy.NAME`.
    pub(crate) values: BTreeMap<&'static str, Sourced<Value>>,
}

/// `extends = "target"`, and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Extends {
    pub(crate) target: String,
    pub(crate) at: Origin,
}

/// The policies one file (or a merge of files) sets, by name.
pub(crate) type RawFile = BTreeMap<String, RawPolicy>;

/// Parses and checks one file.
pub(crate) fn parse(source: &Arc<Source>) -> Result<RawFile, PolicyError> {
    let doc = DeTable::parse(&source.text).map_err(|e| syntax(source, &e))?;
    let mut file = RawFile::new();
    for (key, value) in in_file_order(doc.get_ref()) {
        if key.get_ref() == store::TABLE {
            continue; // read by `store::RawStore`
        }
        if key.get_ref() != "policy" {
            let origin = Origin::new(source, key.span(), key.get_ref().as_ref());
            return Err(origin.error(format!(
                "unknown top-level key `{}`, expected `policy` or `store` (policies are written as [policy.NAME], the shared store as [store])",
                key.get_ref()
            )));
        }
        for (name, body) in in_file_order(table(source, value, "policy")?) {
            let path = format!("policy.{}", name.get_ref());
            check_name(
                name.get_ref(),
                &Origin::new(source, name.span(), path.as_str()),
            )?;
            let mut policy = RawPolicy::default();
            walk(source, table(source, body, &path)?, "", &path, &mut policy)?;
            file.insert(name.get_ref().to_string(), policy);
        }
    }
    Ok(file)
}

/// Parses and checks a file holding one policy's tables (`[retry]`, `extends`, ...), as
/// the settings of policy `name`.
pub(crate) fn parse_policy(source: &Arc<Source>, name: &str) -> Result<RawPolicy, PolicyError> {
    let doc = DeTable::parse(&source.text).map_err(|e| syntax(source, &e))?;
    if let Some((key, _)) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == "policy") {
        let at = Origin::new(source, key.span(), "policy");
        return Err(at.error(format!(
            "this file holds the settings of policy `{name}` only: write its tables as [retry], [circuit_breaker], ..., not [policy.{name}.retry]"
        )));
    }
    let mut policy = RawPolicy::default();
    walk(
        source,
        doc.get_ref(),
        "",
        &format!("policy.{name}"),
        &mut policy,
    )?;
    Ok(policy)
}

fn syntax(source: &Source, error: &toml::de::Error) -> PolicyError {
    let span = error.span().unwrap_or(0..0);
    let mut message = error.message().trim().to_owned();
    let found = source.text.get(span.clone()).unwrap_or("");
    if message == "duplicate key" && !found.is_empty() {
        message = format!("duplicate key `{found}`: a key may be set once per file");
    }
    PolicyError::Syntax {
        at: source.locate(span.start),
        message,
    }
}

/// Checks the keys of the table at `section` (`""` for the policy itself).
fn walk(
    source: &Arc<Source>,
    table: &DeTable<'_>,
    section: &str,
    policy_path: &str,
    policy: &mut RawPolicy,
) -> Result<(), PolicyError> {
    for (key, value) in in_file_order(table) {
        let key_str = key.get_ref().as_ref();
        let sub = if section.is_empty() {
            key_str.to_owned()
        } else {
            format!("{section}.{key_str}")
        };
        let full = format!("{policy_path}.{sub}");
        let at = Origin::new(source, value.span(), full.as_str());
        if section.is_empty() && key_str == "extends" {
            let name = value.get_ref().as_str().ok_or_else(|| {
                at.error(format!(
                    "expected the name of another policy as a string, got {} {}",
                    value.get_ref().type_str(),
                    at.text()
                ))
            })?;
            check_name(name, &at)?;
            policy.extends = Some(Extends {
                target: name.to_owned(),
                at,
            });
        } else if SECTIONS.contains(&sub.as_str()) {
            walk(
                source,
                self::table(source, value, &full)?,
                &sub,
                policy_path,
                policy,
            )?;
        } else if let Some((path, kind)) = FIELDS.iter().find(|(p, _)| *p == sub) {
            let value = convert::check(*kind, value, &at)?;
            policy.values.insert(
                path,
                Sourced {
                    value,
                    origin: Some(at),
                },
            );
        } else {
            let at = Origin::new(source, key.span(), full.as_str());
            let keys = schema::keys_of(section);
            return Err(at.error(suggest::unknown("key", key_str, &keys)));
        }
    }
    Ok(())
}

fn table<'a, 'i>(
    source: &Arc<Source>,
    value: &'a Spanned<DeValue<'i>>,
    path: &str,
) -> Result<&'a DeTable<'i>, PolicyError> {
    value.get_ref().as_table().ok_or_else(|| {
        let at = Origin::new(source, value.span(), path);
        let got = format!("got {} {}", value.get_ref().type_str(), at.text());
        at.error(format!("expected a table (write it as [{path}]), {got}"))
    })
}

/// Policy names are identifiers: `[a-z][a-z0-9_-]*`.
pub(crate) fn check_name(name: &str, at: &Origin) -> Result<(), PolicyError> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(at.error(format!(
            "invalid policy name `{name}`: a name starts with a lower-case letter and holds only a-z, 0-9, `_` and `-`"
        )))
    }
}

/// Whether `name` matches `[a-z][a-z0-9_-]*`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

type Entry<'a, 'i> = (&'a Spanned<DeString<'i>>, &'a Spanned<DeValue<'i>>);

/// Entries sorted by position, so the first error in the file is the one reported.
fn in_file_order<'a, 'i>(table: &'a DeTable<'i>) -> Vec<Entry<'a, 'i>> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}
