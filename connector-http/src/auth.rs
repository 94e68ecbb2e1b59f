//! Credentials: where they come from, how they ride on a request, and how they are
//! re-read after a `401`.
//!
//! A credential is read from an environment variable or a file when the connector is
//! configured, and again when the engine asks for a refresh (the policy's
//! `credential_refresh`, after an `auth`-class answer). A refresh that finds the same
//! value reports that nothing was mended, so a wrong credential fails once instead of
//! being retried. The value lives in a [`Secret`], whose `Debug` and `Display` print
//! `***`.

use std::path::PathBuf;
use std::sync::RwLock;

use serde::Deserialize;

use crate::HttpError;

/// A credential's value; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for putting on a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where the credential is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// An environment variable's name.
    Env(String),
    /// A file's path; surrounding whitespace is dropped.
    File(PathBuf),
}

/// How the credential rides on a request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <credential>`.
    Bearer {
        /// Where the token is.
        from: Source,
    },
    /// `Authorization: Basic base64(<user>:<credential>)`.
    Basic {
        /// The user name (not secret).
        user: String,
        /// Where the password is.
        from: Source,
    },
    /// An API key in a header or a query parameter.
    ApiKey {
        /// The header's name (`X-Api-Key`), or the parameter's when `in_query`.
        name: String,
        /// Send it as a query parameter instead of a header.
        #[serde(default)]
        in_query: bool,
        /// Where the key is.
        from: Source,
    },
}

impl Auth {
    fn source(&self) -> &Source {
        match self {
            Auth::Bearer { from } | Auth::Basic { from, .. } | Auth::ApiKey { from, .. } => from,
        }
    }
}

/// Reads the credential from `source`.
pub fn read(source: &Source) -> Result<Secret, HttpError> {
    let value = match source {
        Source::Env(name) => std::env::var(name).map_err(|_| {
            HttpError::Credential(format!("environment variable `{name}` is not set"))
        })?,
        Source::File(path) => std::fs::read_to_string(path)
            .map_err(|e| HttpError::Credential(format!("cannot read `{}`: {e}", path.display())))?,
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(HttpError::Credential(format!(
            "{source:?} holds an empty credential"
        )));
    }
    Ok(Secret::new(value))
}

/// The configured credential and its current value.
#[derive(Debug)]
pub(crate) struct Credentials {
    auth: Option<Auth>,
    current: RwLock<Option<Secret>>,
}

impl Credentials {
    /// Reads the credential once, so a missing one fails `configure`.
    pub(crate) fn load(auth: Option<Auth>) -> Result<Credentials, HttpError> {
        let current = auth.as_ref().map(|a| read(a.source())).transpose()?;
        Ok(Credentials {
            auth,
            current: RwLock::new(current),
        })
    }

    /// Re-reads the credential; `Ok(true)` when it changed.
    pub(crate) fn refresh(&self) -> Result<bool, HttpError> {
        let Some(auth) = &self.auth else {
            return Ok(false);
        };
        let fresh = read(auth.source())?;
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let changed = current.as_ref() != Some(&fresh);
        *current = Some(fresh);
        Ok(changed)
    }

    /// `request` with the credential on it.
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let (Some(auth), Some(secret)) = (&self.auth, current.as_ref()) else {
            return request;
        };
        match auth {
            Auth::Bearer { .. } => request.bearer_auth(secret.expose()),
            Auth::Basic { user, .. } => request.basic_auth(user, Some(secret.expose())),
            Auth::ApiKey {
                name,
                in_query: false,
                ..
            } => request.header(name.as_str(), secret.expose()),
            Auth::ApiKey {
                name,
                in_query: true,
                ..
            } => request.query(&[(name.as_str(), secret.expose())]),
        }
    }
}
