//! A `[connections.NAME]` entry of a pipeline file: a URL or separate fields, and the
//! name of the environment variable holding the password (never the password itself).

use std::ops::Range;
use std::time::Duration;

use connector_postgres::{Credential, PgParams, SslMode};
use serde::Deserialize;
use toml::Spanned;

use crate::error::CliError;

/// A connection as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnection {
    url: Option<Spanned<String>>,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    user: Option<String>,
    password_env: Option<String>,
    sslmode: Option<Spanned<String>>,
    schema: Option<String>,
    pool_size: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
}

/// Validated parameters for a connection; `at` turns a span into a located error.
pub(crate) fn connection(
    spanned: &Spanned<RawConnection>,
    at: &impl Fn(Range<usize>, String) -> CliError,
) -> Result<PgParams, CliError> {
    let c = spanned.get_ref();
    let fields = c.host.is_some() || c.port.is_some() || c.database.is_some() || c.user.is_some();
    let mut params = match &c.url {
        Some(_) if fields => {
            return Err(at(
                spanned.span(),
                "set either url or host/port/database/user, not both".into(),
            ));
        }
        Some(url) => {
            let params =
                PgParams::from_url(url.get_ref()).map_err(|e| at(url.span(), e.to_string()))?;
            if matches!(params.password, Some(Credential::Literal(_))) {
                return Err(at(url.span(), "the URL holds a password; put it in an environment variable and set password_env".into()));
            }
            params
        }
        None => {
            let database = c
                .database
                .clone()
                .ok_or_else(|| at(spanned.span(), "missing `database` (or set `url`)".into()))?;
            let mut p = PgParams::new(
                c.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                c.port.unwrap_or(5432),
                database,
            );
            if let Some(user) = &c.user {
                p.user = user.clone();
            }
            p
        }
    };
    if let Some(var) = &c.password_env {
        params.password = Some(Credential::Env(var.clone()));
    }
    if let Some(mode) = &c.sslmode {
        params.ssl_mode = mode
            .get_ref()
            .parse::<SslMode>()
            .map_err(|e| at(mode.span(), e.to_string()))?;
    }
    if let Some(schema) = &c.schema {
        params.schema = Some(schema.clone());
    }
    if let Some(size) = c.pool_size {
        params.pool_size = size;
    }
    if let Some(timeout) = c.connect_timeout {
        params.connect_timeout = timeout;
    }
    params
        .validate()
        .map_err(|e| at(spanned.span(), e.to_string()))?;
    Ok(params)
}
