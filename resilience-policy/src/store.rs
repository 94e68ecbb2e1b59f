//! The shared store: a profile's `[store]` table, which makes policies hold across
//! processes.
//!
//! Without a `[store]` every breaker, bucket and counter is local to the process (zero
//! configuration means one process, no store needed). With one, every policy is shared
//! through the store unless it says `shared = false`. The table lives apart from the
//! policies: it is parsed from each layer on its own and merged key by key (a profile may
//! set only `url`), so the policy schema does not carry it.
//!
//! Credentials never come from the URL: a URL with a password is refused, and the
//! password is named by `password_env` (a variable) or `password_file` (a file), read when
//! the store connects. So no [`StorePolicy`] value, log line or error ever holds one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::convert;
use crate::error::PolicyError;
use crate::location::{Origin, Source};
use crate::suggest;

/// The top-level key of the table.
pub(crate) const TABLE: &str = "store";

/// The policy-level key that opts one policy out of the store.
const KEYS: [&str; 7] = [
    "backend",
    "url",
    "prefix",
    "on_unavailable",
    "password_env",
    "password_file",
    "timeout",
];
const BACKENDS: [&str; 1] = ["redis"];
const ON_UNAVAILABLE: [&str; 2] = ["local", "fail_closed"];
const SCHEMES: [&str; 3] = ["redis://", "rediss://", "unix://"];

/// Which engine holds the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreBackend {
    /// A Redis server (or a server speaking its protocol).
    Redis,
}

/// What a process does while the store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Fall back to the local breaker and a local bucket sized to this process's fair
    /// share of the limit; return to the shared state when the store answers again.
    Local,
    /// Refuse calls with a clear error until the store answers again.
    FailClosed,
}

impl OnUnavailable {
    /// The name used in policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Local => "local",
            OnUnavailable::FailClosed => "fail_closed",
        }
    }
}

/// Where the store's password comes from (never from the URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordSource {
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file, trailing newline removed.
    File(PathBuf),
}

/// The `[store]` table, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorePolicy {
    /// The engine.
    pub backend: StoreBackend,
    /// Where it is: `redis://host:port/db`, `rediss://...` or `unix:///path`; it holds no
    /// password (a username is allowed).
    pub url: String,
    /// Prepended to every key, so several pipelines (or tests) share one server apart.
    pub prefix: String,
    /// What happens while the store does not answer.
    pub on_unavailable: OnUnavailable,
    /// Where the password comes from, if the server wants one.
    pub password: Option<PasswordSource>,
    /// The longest any one request to the store may take before it counts as
    /// unavailable; well under any attempt timeout.
    #[serde(serialize_with = "serialize_duration")]
    pub timeout: Duration,
    /// Where the table was written (`file:line:column`), when it came from a file.
    #[serde(skip)]
    pub origin: Option<String>,
}

/// A duration as a policy file writes it (`"100ms"`).
fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

impl StorePolicy {
    /// A Redis store at `url` with the defaults: prefix `resilience`, `on_unavailable =
    /// "local"`, no password, a 100 ms timeout.
    pub fn redis(url: impl Into<String>) -> StorePolicy {
        StorePolicy {
            backend: StoreBackend::Redis,
            url: url.into(),
            prefix: "resilience".to_owned(),
            on_unavailable: OnUnavailable::Local,
            password: None,
            timeout: Duration::from_millis(100),
            origin: None,
        }
    }

    /// Reads the password from its source; `None` when none is configured. The error names
    /// the variable or file, never a value.
    pub fn read_password(&self) -> Result<Option<String>, String> {
        match &self.password {
            None => Ok(None),
            Some(PasswordSource::Env(var)) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("store.password_env names `{var}`, which is not set")),
            Some(PasswordSource::File(path)) => std::fs::read_to_string(path)
                .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| {
                    format!(
                        "store.password_file `{}` cannot be read: {e}",
                        path.display()
                    )
                }),
        }
    }
}

impl fmt::Display for StorePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.backend {
            StoreBackend::Redis => "redis",
        };
        write!(
            f,
            "{backend} at {}, prefix `{}`, on_unavailable = \"{}\", timeout {}",
            self.url,
            self.prefix,
            self.on_unavailable.as_str(),
            humantime::format_duration(self.timeout)
        )?;
        match &self.password {
            Some(PasswordSource::Env(var)) => write!(f, ", password from ${var}"),
            Some(PasswordSource::File(path)) => {
                write!(f, ", password from {}", path.display())
            }
            None => Ok(()),
        }
    }
}

/// The `[store]` keys the layers set, merged key by key (a later layer wins).
#[derive(Debug, Default)]
pub(crate) struct RawStore {
    keys: BTreeMap<&'static str, (Spanned<String>, Origin)>,
    table: Option<Origin>,
}

impl RawStore {
    /// Reads the `[store]` table of one layer, if it has one, over what lower layers set.
    pub(crate) fn add_layer(&mut self, source: &Arc<Source>) -> Result<(), PolicyError> {
        // The policy parser has already reported any syntax error of this file.
        let Ok(doc) = DeTable::parse(&source.text) else {
            return Ok(());
        };
        let Some((key, value)) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == TABLE) else {
            return Ok(());
        };
        let at = Origin::new(source, key.span(), TABLE);
        let DeValue::Table(table) = value.get_ref() else {
            return Err(at.error(format!(
                "expected a table (write it as [store]), got {}",
                value.get_ref().type_str()
            )));
        };
        self.table = Some(at);
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let full = format!("{TABLE}.{name}");
            let Some(known) = KEYS.iter().find(|k| **k == name) else {
                let at = Origin::new(source, key.span(), full.as_str());
                return Err(at.error(suggest::unknown("key", name, &KEYS)));
            };
            let at = Origin::new(source, value.span(), full.as_str());
            let DeValue::String(text) = value.get_ref() else {
                return Err(at.error(format!(
                    "expected a string, got {} {}",
                    value.get_ref().type_str(),
                    at.text()
                )));
            };
            let text = Spanned::new(value.span(), text.to_string());
            self.keys.insert(known, (text, at));
        }
        Ok(())
    }

    /// The checked table, or `None` when no layer wrote one.
    pub(crate) fn build(self) -> Result<Option<StorePolicy>, PolicyError> {
        let Some(table) = self.table else {
            return Ok(None);
        };
        let get = |key: &str| self.keys.get(key).map(|(v, at)| (v.get_ref().as_str(), at));
        let Some((backend, at)) = get("backend") else {
            return Err(table.error(format!(
                "missing `backend`, expected one of: {}",
                BACKENDS.join(", ")
            )));
        };
        if backend != "redis" {
            return Err(at.error(one_of("backend", backend, &BACKENDS)));
        }
        let Some((url, at)) = get("url") else {
            return Err(table.error(
                "missing `url`, expected e.g. url = \"redis://127.0.0.1:6379\"".to_owned(),
            ));
        };
        check_url(url).map_err(|why| at.error(why))?;
        let mut store = StorePolicy::redis(url);
        store.origin = Some(table.describe());
        if let Some((prefix, at)) = get("prefix") {
            check_prefix(prefix).map_err(|why| at.error(why))?;
            prefix.clone_into(&mut store.prefix);
        }
        if let Some((value, at)) = get("on_unavailable") {
            store.on_unavailable = match value {
                "local" => OnUnavailable::Local,
                "fail_closed" => OnUnavailable::FailClosed,
                other => return Err(at.error(one_of("on_unavailable", other, &ON_UNAVAILABLE))),
            };
        }
        if let Some((value, at)) = get("timeout") {
            let timeout = convert::duration(value).map_err(|why| at.error(why))?;
            if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(5) {
                return Err(at.error(format!(
                    "expected a duration from 1ms to 5s (each request to the store; keep it well under the attempt timeout), got \"{value}\""
                )));
            }
            store.timeout = timeout;
        }
        match (get("password_env"), get("password_file")) {
            (Some(_), Some((_, at))) => {
                return Err(
                    at.error("set one of `password_env` and `password_file`, not both".to_owned())
                );
            }
            (Some((var, at)), None) => {
                let valid = !var.is_empty()
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !var.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    return Err(at.error(format!(
                        "expected the name of an environment variable (A-Z, 0-9, `_`), got \"{var}\""
                    )));
                }
                store.password = Some(PasswordSource::Env(var.to_owned()));
            }
            (None, Some((path, at))) => {
                if path.is_empty() {
                    return Err(at.error("expected the path of a file, got \"\"".to_owned()));
                }
                store.password = Some(PasswordSource::File(PathBuf::from(path)));
            }
            (None, None) => {}
        }
        Ok(Some(store))
    }
}

fn one_of(key: &str, got: &str, valid: &[&str]) -> String {
    let quoted: Vec<String> = valid.iter().map(|v| format!("\"{v}\"")).collect();
    format!(
        "unknown {key} \"{got}\", expected one of: {}",
        quoted.join(", ")
    )
}

/// A URL of a known scheme that holds no password.
fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = SCHEMES.iter().find_map(|s| url.strip_prefix(s)) else {
        return Err(format!(
            "expected a URL starting with {}, got \"{}\"",
            SCHEMES.join(", "),
            url.split("://").next().unwrap_or(url)
        ));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        // The value itself is not echoed: it holds a secret.
        return Err(
            "the URL holds a password; remove it and name its source with `password_env = \"VAR\"` or `password_file = \"path\"`".to_owned(),
        );
    }
    if authority.is_empty() && !url.starts_with("unix://") {
        return Err(format!("expected a host in the URL, got \"{url}\""));
    }
    Ok(())
}

/// A prefix is short and plain, so keys stay readable in `redis-cli`.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "expected 1 to 64 characters of a-z, A-Z, 0-9, `_`, `-`, `.`, `:`, got \"{prefix}\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_a_password_are_refused_without_echoing_it() {
        let err = check_url("redis://user:hunter2@127.0.0.1:6379").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(check_url("redis://user@127.0.0.1:6379/2").is_ok());
        assert!(check_url("unix:///run/redis.sock").is_ok());
        assert!(check_url("http://x").unwrap_err().contains("redis://"));
    }
}
