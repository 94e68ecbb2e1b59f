//! From `sqlx::Error` to the engine's error classes.
//!
//! This is the one place that decides what a PostgreSQL failure *means* for resilience:
//! server errors by SQLSTATE (never by message text, which is localised and changes
//! between versions), transport errors by their I/O kind. The table follows PostgreSQL's
//! error-code appendix; anything not recognised is `Unknown`, which no policy retries by
//! default, so a new failure mode is surfaced instead of silently hammered.

use std::io;

use resilience_core::ErrorClass;

/// Classifies a driver error for the resilience engine.
///
/// Server errors map by SQLSTATE ([`classify_sqlstate`]); I/O errors by kind
/// ([`classify_io`]); a TLS failure is `Config` (certificates do not fix themselves)
/// unless it is an I/O error underneath; a pool acquire timeout is `Timeout`; a closed
/// pool (closed by recovery) is `Connection`; variants this version does not know are
/// `Unknown`.
pub fn classify(err: &sqlx::Error) -> ErrorClass {
    match err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => classify_sqlstate(&code),
            None => ErrorClass::Unknown,
        },
        sqlx::Error::Io(e) => classify_io(e.kind()),
        sqlx::Error::Tls(source) => match source.downcast_ref::<io::Error>() {
            Some(e) => classify_io(e.kind()),
            None => ErrorClass::Config,
        },
        sqlx::Error::PoolTimedOut => ErrorClass::Timeout,
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => {
            ErrorClass::Connection
        }
        sqlx::Error::Configuration(_) | sqlx::Error::ConfigFile(_) => ErrorClass::Config,
        sqlx::Error::InvalidArgument(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::InvalidSavePointStatement => ErrorClass::InvalidInput,
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_) => ErrorClass::Data,
        _ => ErrorClass::Unknown,
    }
}

/// Classifies a server error by its five-character SQLSTATE code.
pub fn classify_sqlstate(code: &str) -> ErrorClass {
    use ErrorClass::*;
    match code {
        // Connection exceptions: lost, could not connect, rejected, protocol violation.
        c if c.starts_with("08") => Connection,
        // Operator intervention: shutdown, crash, starting up, idle-session timeout.
        "57P01" | "57P02" | "57P03" | "57P05" => Connection,
        "57P04" => Config,
        "57014" => Timeout,
        // Insufficient resources, 53300 (too many connections) included.
        c if c.starts_with("53") => Throttled,
        "40001" | "40P01" | "55P03" => Transient,
        // Read-only transaction after a failover; idle-in-transaction timeout.
        "25006" | "25P03" => Connection,
        "28000" | "28P01" | "42501" => Auth,
        "3D000" | "3F000" => Config,
        c if c.starts_with("42") => InvalidInput,
        c if c.starts_with("22") || c.starts_with("23") => Data,
        // Feature not supported, invalid transaction state (a programming error).
        "0A000" => InvalidInput,
        c if c.starts_with("25") => InvalidInput,
        _ => Unknown,
    }
}

/// Classifies a transport error by its kind: a timeout is `Timeout`; invalid data is
/// `Config`, because the TLS layer reports certificate and handshake failures that way
/// (sqlx reports PostgreSQL protocol problems as `Protocol`, not as I/O); a permission
/// problem (socket file) is `Config`; every other I/O failure is `Connection`.
pub fn classify_io(kind: io::ErrorKind) -> ErrorClass {
    match kind {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorClass::Timeout,
        io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::PermissionDenied => ErrorClass::Config,
        _ => ErrorClass::Connection,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;
    use std::fmt;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;
    use ErrorClass::*;

    /// A server error with a given SQLSTATE, as the driver would report it.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl fmt::Display for ServerError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl StdError for ServerError {}

    impl DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn server(code: &'static str) -> ErrorClass {
        classify(&sqlx::Error::Database(Box::new(ServerError(code))))
    }

    fn io_kind(kind: io::ErrorKind) -> ErrorClass {
        classify(&sqlx::Error::Io(io::Error::from(kind)))
    }

    #[test]
    fn connection_lost_is_connection() {
        for code in ["08000", "08003", "08006", "08001", "08004", "08P01"] {
            assert_eq!(server(code), Connection, "{code}");
        }
    }

    #[test]
    fn shutdowns_are_connection_and_dropped_database_is_config() {
        for code in ["57P01", "57P02", "57P03"] {
            assert_eq!(server(code), Connection, "{code}");
        }
        assert_eq!(server("57P04"), Config);
    }

    #[test]
    fn query_cancelled_is_timeout() {
        assert_eq!(server("57014"), Timeout);
    }

    #[test]
    fn insufficient_resources_are_throttled() {
        for code in ["53300", "53000", "53100", "53200", "53400"] {
            assert_eq!(server(code), Throttled, "{code}");
        }
    }

    #[test]
    fn serialization_deadlock_and_lock_are_transient() {
        for code in ["40001", "40P01", "55P03"] {
            assert_eq!(server(code), Transient, "{code}");
        }
    }

    #[test]
    fn read_only_transaction_is_connection() {
        assert_eq!(server("25006"), Connection);
    }

    #[test]
    fn bad_credentials_and_privilege_are_auth() {
        for code in ["28000", "28P01", "42501"] {
            assert_eq!(server(code), Auth, "{code}");
        }
    }

    #[test]
    fn unknown_database_or_schema_is_config() {
        assert_eq!(server("3D000"), Config);
        assert_eq!(server("3F000"), Config);
    }

    #[test]
    fn syntax_and_unknown_objects_are_invalid_input() {
        for code in ["42P01", "42703", "42601", "42883"] {
            assert_eq!(server(code), InvalidInput, "{code}");
        }
    }

    #[test]
    fn data_and_constraint_errors_are_data() {
        for code in ["22001", "22P02", "22012", "23505", "23503", "23502"] {
            assert_eq!(server(code), Data, "{code}");
        }
    }

    #[test]
    fn unrecognised_codes_are_unknown() {
        assert_eq!(server("XX000"), Unknown);
        assert_eq!(server("58030"), Unknown);
    }

    #[test]
    fn io_failures_are_connection() {
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::NotConnected,
            io::ErrorKind::AddrNotAvailable,
        ] {
            assert_eq!(io_kind(kind), Connection, "{kind:?}");
        }
    }

    #[test]
    fn io_timeout_is_timeout() {
        assert_eq!(io_kind(io::ErrorKind::TimedOut), Timeout);
    }

    #[test]
    fn tls_failure_is_config_unless_io_underneath() {
        let cert = sqlx::Error::Tls("invalid peer certificate: UnknownIssuer".into());
        assert_eq!(classify(&cert), Config);
        let reset = sqlx::Error::Tls(Box::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert_eq!(classify(&reset), Connection);
    }

    #[test]
    fn certificate_rejected_by_the_tls_layer_is_config() {
        // rustls reports a bad certificate as an I/O error of kind InvalidData.
        let err = io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        assert_eq!(classify(&sqlx::Error::Io(err)), Config);
        assert_eq!(io_kind(io::ErrorKind::PermissionDenied), Config);
    }

    #[test]
    fn pool_errors() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), Timeout);
        assert_eq!(classify(&sqlx::Error::PoolClosed), Connection);
    }

    #[test]
    fn protocol_violation_is_connection() {
        let err = sqlx::Error::Protocol("unexpected message".into());
        assert_eq!(classify(&err), Connection);
    }

    #[test]
    fn driver_misuse_is_invalid_input_and_decoding_is_data() {
        assert_eq!(
            classify(&sqlx::Error::ColumnNotFound("x".into())),
            InvalidInput
        );
        assert_eq!(classify(&sqlx::Error::Decode("bad".into())), Data);
        assert_eq!(classify(&sqlx::Error::RowNotFound), Data);
    }
}
