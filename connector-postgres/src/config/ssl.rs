//! TLS modes, named as libpq names them.
//!
//! `require` encrypts but does not verify the server's certificate; only `verify-ca` and
//! `verify-full` protect against an impostor. TLS is always compiled in (rustls), so
//! `prefer` really tries TLS instead of silently falling back to plaintext.

use std::str::FromStr;

use sqlx::postgres::PgSslMode;

use crate::error::PgError;

/// TLS mode, as libpq names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it, else plaintext.
    #[default]
    Prefer,
    /// TLS required; the certificate is **not** verified.
    Require,
    /// TLS required; the certificate must chain to the root certificate.
    VerifyCa,
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyFull,
}

impl SslMode {
    /// The names accepted by [`FromStr`].
    pub const VALID: &'static str = "disable, prefer, require, verify-ca, verify-full";

    pub(crate) fn to_sqlx(self) -> PgSslMode {
        match self {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

impl FromStr for SslMode {
    type Err = PgError;

    fn from_str(s: &str) -> Result<Self, PgError> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(PgError::config(
                "sslmode",
                format!(
                    "`{other}` is not a mode, expected one of: {}",
                    SslMode::VALID
                ),
            )),
        }
    }
}
