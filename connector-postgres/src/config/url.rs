//! `postgres://user:password@host:port/database?param=value` URLs.
//!
//! Parsed here rather than by sqlx for three reasons: sqlx silently ignores
//! `connect_timeout`, it accepts parameters it does not understand, and its errors may
//! echo the URL (password included). Unknown parameters are rejected with the list of
//! valid ones; errors quote parameter names and values, never the URL.

use std::borrow::Cow;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use url::Url;

use super::{Credential, PgParams, SslMode};
use crate::error::PgError;

/// Query parameters understood in a URL, in the order listed in errors.
const PARAMS: &[&str] = &[
    "application_name",
    "connect_timeout",
    "password_env",
    "password_file",
    "policy",
    "pool_size",
    "profile",
    "schema",
    "sslmode",
    "sslrootcert",
];

impl PgParams {
    /// Parses a `postgres://` (or `postgresql://`) URL. User, password, host and
    /// database are percent-decoded; the database defaults to the user name, as in
    /// libpq. Query parameters: `application_name`, `connect_timeout` (seconds),
    /// `password_env`, `password_file`, `policy`, `pool_size`, `profile`, `schema`,
    /// `sslmode`, `sslrootcert`. The result is validated.
    pub fn from_url(text: &str) -> Result<PgParams, PgError> {
        let url =
            Url::parse(text).map_err(|e| PgError::config("url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(PgError::config(
                "url",
                format!(
                    "scheme `{}` is not supported, expected postgres:// or postgresql://",
                    url.scheme()
                ),
            ));
        }
        let mut params = PgParams::default();
        if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            params.host = decode("host", host)?.into_owned();
        }
        params.port = url.port().unwrap_or(5432);
        if !url.username().is_empty() {
            params.user = decode("user", url.username())?.into_owned();
        }
        if let Some(password) = url.password() {
            // The decode error must not quote the password.
            let password = percent_decode_str(password).decode_utf8().map_err(|_| {
                PgError::config("password", "is not valid UTF-8 after percent-decoding")
            })?;
            params.password = Some(Credential::literal(password));
        }
        let database = url.path().trim_start_matches('/');
        params.database = if database.is_empty() {
            params.user.clone()
        } else {
            decode("database", database)?.into_owned()
        };
        for (key, value) in url.query_pairs() {
            apply(&mut params, &key, &value)?;
        }
        params.validate()?;
        Ok(params)
    }
}

fn apply(params: &mut PgParams, key: &str, value: &str) -> Result<(), PgError> {
    match key {
        "application_name" => params.application_name = value.to_owned(),
        "connect_timeout" => {
            let secs: u64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                PgError::config(
                    "connect_timeout",
                    format!("`{value}` is not a positive whole number of seconds, e.g. connect_timeout=10"),
                )
            })?;
            params.connect_timeout = Duration::from_secs(secs);
        }
        "password_env" => params.password = Some(Credential::Env(value.to_owned())),
        "password_file" => params.password = Some(Credential::File(value.into())),
        "policy" => params.policy = value.to_owned(),
        "pool_size" => {
            params.pool_size = value.parse().map_err(|_| {
                PgError::config(
                    "pool_size",
                    format!("`{value}` is not a number, expected 1 to 1000"),
                )
            })?;
        }
        "profile" => params.profile = Some(value.to_owned()),
        "schema" => params.schema = Some(value.to_owned()),
        "sslmode" => params.ssl_mode = value.parse::<SslMode>()?,
        "sslrootcert" => params.ssl_root_cert = Some(value.into()),
        other => {
            return Err(PgError::config(
                "url",
                format!(
                    "unknown parameter `{other}`, expected one of: {}",
                    PARAMS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn decode<'a>(field: &'static str, text: &'a str) -> Result<Cow<'a, str>, PgError> {
    percent_decode_str(text)
        .decode_utf8()
        .map_err(|_| PgError::config(field, "is not valid UTF-8 after percent-decoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url_is_decoded() {
        let p = PgParams::from_url(
            "postgres://al%40ice:p%40ss%3Aw0rd@db.example:6543/my%20db?sslmode=require&connect_timeout=3&schema=sales&pool_size=2&application_name=etl",
        )
        .unwrap();
        assert_eq!((p.host.as_str(), p.port), ("db.example", 6543));
        assert_eq!((p.user.as_str(), p.database.as_str()), ("al@ice", "my db"));
        let Some(Credential::Literal(pw)) = &p.password else {
            panic!("no password")
        };
        assert_eq!(pw.expose(), "p@ss:w0rd");
        assert_eq!(p.ssl_mode, SslMode::Require);
        assert_eq!(p.connect_timeout, Duration::from_secs(3));
        assert_eq!((p.schema.as_deref(), p.pool_size), (Some("sales"), 2));
        assert_eq!(p.application_name, "etl");
    }

    #[test]
    fn defaults_follow_libpq() {
        let p = PgParams::from_url("postgresql://bob@[::1]").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.database.as_str()),
            ("::1", 5432, "bob")
        );
        assert!(p.password.is_none());
    }

    #[test]
    fn unknown_parameter_lists_valid_ones() {
        let err = PgParams::from_url("postgres://u:pw@h/d?sslmod=require")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown parameter `sslmod`"), "{err}");
        assert!(err.contains("sslmode, sslrootcert"), "{err}");
    }

    #[test]
    fn errors_never_show_the_password() {
        for url in [
            "postgres://u:topsecret@h/d?connect_timeout=soon",
            "postgres://u:topsecret@h/d?nope=1",
            "postgres://u:topsecret@h/d?pool_size=0",
            "mysql://u:topsecret@h/d",
        ] {
            let err = PgParams::from_url(url).unwrap_err();
            assert!(!err.to_string().contains("topsecret"), "{err}");
            assert!(!format!("{err:?}").contains("topsecret"), "{err:?}");
        }
    }

    #[test]
    fn credential_sources_from_url() {
        let p = PgParams::from_url("postgres://u@h/d?password_file=/run/pw").unwrap();
        assert_eq!(p.password, Some(Credential::File("/run/pw".into())));
    }
}
