//! Passwords: a redacting string type and where a password comes from.
//!
//! sqlx's `PgConnectOptions` derives `Debug` and prints the password, so the password
//! lives in a [`Secret`] until the moment options are built, and options are never
//! logged. A [`Credential`] names the *source* of the password, so recovery can re-read
//! a rotated secret (environment variable or mounted file) without a reconfigure.

use std::fmt;
use std::path::PathBuf;

use crate::error::PgError;

/// A string that prints as `***` in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_boxed_str())
    }

    /// The secret value. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The password itself.
    Literal(Secret),
    /// An environment variable holding the password, read at configure and on refresh.
    Env(String),
    /// A file holding the password (a trailing newline is ignored), read at configure
    /// and on refresh, so a rotated secret is picked up without a restart.
    File(PathBuf),
}

impl Credential {
    /// A literal password.
    pub fn literal(password: impl Into<String>) -> Self {
        Credential::Literal(Secret::new(password))
    }

    /// Reads the password from its source.
    pub fn resolve(&self) -> Result<Secret, PgError> {
        let secret = match self {
            Credential::Literal(secret) => secret.clone(),
            Credential::Env(name) => match std::env::var(name) {
                Ok(value) => Secret::new(value),
                Err(e) => return Err(self.unreadable(e.to_string())),
            },
            Credential::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Secret::new(text.trim_end_matches(['\r', '\n'])),
                Err(e) => return Err(self.unreadable(e.to_string())),
            },
        };
        if secret.expose().contains('\0') {
            return Err(self.unreadable("the password contains a NUL byte".into()));
        }
        Ok(secret)
    }

    /// Describes the source without revealing the password (`env PGPASS`).
    pub fn source_name(&self) -> String {
        match self {
            Credential::Literal(_) => "the literal password".to_owned(),
            Credential::Env(name) => format!("environment variable {name}"),
            Credential::File(path) => format!("file {}", path.display()),
        }
    }

    fn unreadable(&self, message: String) -> PgError {
        PgError::Credential {
            source_name: self.source_name(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let c = Credential::literal("hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn file_credential_is_reread() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secret");
        std::fs::write(&path, "first\n").unwrap();
        let c = Credential::File(path.clone());
        assert_eq!(c.resolve().unwrap().expose(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(c.resolve().unwrap().expose(), "second");
        std::fs::remove_file(&path).unwrap();
        let err = c.resolve().unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read the password from file"),
            "{err}"
        );
    }

    #[test]
    fn missing_env_credential_names_the_variable() {
        let c = Credential::Env("PG_TEST_SURELY_UNSET_VARIABLE".into());
        let err = c.resolve().unwrap_err().to_string();
        assert!(err.contains("PG_TEST_SURELY_UNSET_VARIABLE"), "{err}");
    }
}
