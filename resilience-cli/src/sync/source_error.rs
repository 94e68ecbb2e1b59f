//! A connector error about a source, as the operator reads it.
//!
//! The pipeline file was parsed long before the server had its say, but a problem the
//! server finds with a source is still a problem with a line of that file: a missing table
//! is the `table = ...` line, a missing or unsuitable cursor column the `cursor_field`
//! line, a lag that does not fit the cursor the `lag` line, a refused login the
//! `[connections.NAME]` entry. Such errors are configuration errors (exit 2) located
//! there. The NULL-cursor hint is given for that refusal only, never for another data
//! error, and operational failures (a server down, a timeout) stay exit 1 and name the
//! source and where it is declared.

use std::path::Path;

use connector_postgres::{Checkpoint, PgError, PostgresConnector};
use resilience_core::{ErrorClass, ResilientError};

use crate::connect::{self, ConnectError};
use crate::echo;
use crate::error::CliError;
use crate::sync::config::{Source, SyncMode};
use crate::sync::location::Location;

/// `source `items` (table items)`, the table cut when long.
pub fn what(source: &Source) -> String {
    format!(
        "source `{}` (table {})",
        source.name,
        echo::clip(&source.table)
    )
}

/// A failed preflight connection: refused credentials or settings point at the
/// connection the source uses.
pub fn connect(source: &Source, error: ConnectError) -> CliError {
    match &source.at.connection {
        Some(at) if error.class().is_caller_error() => {
            at.error(format!("{}: cannot connect: {error}", what(source)))
        }
        _ => error.into_cli(&format!(
            "{}, declared at {}: cannot connect",
            what(source),
            source.at.source
        )),
    }
}

/// Checks what an incremental read needs before it starts, so each problem points at its
/// own line: the table (`table`), the cursor column (`cursor_field`) and a primary key.
pub async fn check_incremental(
    pg: &PostgresConnector,
    source: &Source,
    state: &Path,
) -> Result<(), CliError> {
    let schema = pg
        .get_schema(&source.table)
        .await
        .map_err(|e| read(source, state, &e, &source.at.table))?;
    let cursor = source.cursor_field.as_deref().unwrap_or_default();
    let cursor_at = source.at.cursor_field.as_ref().unwrap_or(&source.at.source);
    schema
        .column(cursor)
        .map_err(|e| cursor_at.error(format!("{}: {e}", what(source))))?;
    if schema.primary_key.is_empty() {
        return Err(source.at.table.error(format!(
            "{}: table {} has no primary key; an incremental read needs one to tell rows with \
             equal cursor values apart; add a primary key, or use sync_mode = \"full\"",
            what(source),
            schema.name
        )));
    }
    Ok(())
}

/// An error of reading `source` (state file `state`): located at the setting it is about,
/// `invalid_at` for a request the server refused (unknown table or column, wrong type).
pub fn read(source: &Source, state: &Path, error: &PgError, invalid_at: &Location) -> CliError {
    let what = what(source);
    let class = error.class();
    match error.cause() {
        PgError::NullCursor { .. } => {
            let at = source.at.null_cursor.as_ref().unwrap_or(&source.at.source);
            return CliError::Failed(format!(
                "{what}: {error}; to leave them out and count them, set null_cursor = \"skip\" \
                 on this source ({at}), or give those rows a cursor value"
            ));
        }
        PgError::Config { field: "lag", .. } => {
            if let Some(at) = &source.at.lag {
                return at.error(format!("{what}: {error}"));
            }
        }
        PgError::Config {
            field: "checkpoint",
            ..
        } => {
            return CliError::Usage(format!(
                "{what}: {error}; the checkpoint comes from the state file {}; {}",
                state.display(),
                crate::sync::copy::reset_hint(&source.name, state)
            ));
        }
        _ => {}
    }
    if !class.is_caller_error() {
        return CliError::of_class(
            class,
            format!("{what}, declared at {}: {error}", source.at.source),
        );
    }
    let at = match (class, error.sqlstate().as_deref()) {
        // Permission on the table itself: the table is the setting to look at.
        (ErrorClass::Auth, Some("42501")) => Some(invalid_at),
        (ErrorClass::InvalidInput, _) => Some(invalid_at),
        // Credentials, an unknown database or schema, TLS: the connection's settings.
        _ => source.at.connection.as_ref(),
    };
    match at {
        Some(at) => at.error(format!("{what}: {error}")),
        None => CliError::Usage(format!("{what}: {error}")),
    }
}

/// When an incremental read resumed from `checkpoint` failed on a value the server could
/// not read (SQLSTATE class 22), checks whether the checkpoint's own values are what it
/// refuses: each is cast to its column's type on a direct connection. A refused value
/// means the state file was edited, or the column's type changed since it was written:
/// a configuration error (exit 2) naming the value and the state file. `None` when the
/// checkpoint is fine (or cannot be checked): the original error stands.
pub async fn bad_checkpoint(
    pg: &PostgresConnector,
    source: &Source,
    state: &Path,
    checkpoint: Option<&Checkpoint>,
    error: &PgError,
) -> Option<CliError> {
    let checkpoint = checkpoint?;
    if !error.sqlstate().is_some_and(|s| s.starts_with("22")) {
        return None;
    }
    let schema = pg.get_schema(&source.table).await.ok()?;
    let params = &source.params;
    let mut conn = connect::connect_once(params, "resilient-check")
        .await
        .ok()?;
    let values = std::iter::once(&checkpoint.cursor).chain(&checkpoint.primary_key);
    for value in values {
        // The type comes from the catalog (`format_type`), never from the state file.
        let Ok(column) = schema.column(&value.column) else {
            continue;
        };
        let sql = format!("SELECT $1::{}::text", column.pg_type);
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&value.value)
            .fetch_one(&mut conn);
        let refused = match tokio::time::timeout(params.connect_timeout, query).await {
            Ok(Err(e)) => PgError::Driver(e),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        };
        if !refused.sqlstate().is_some_and(|s| s.starts_with("22")) {
            return None;
        }
        return Some(CliError::Usage(format!(
            "{}: the checkpoint in the state file {} holds {} = {}, which the server refuses as \
             a {}: {refused}; the state file was edited, or the column's type changed since it \
             was written; restore the state file, or {}",
            what(source),
            state.display(),
            value.column,
            echo::echo(&value.value),
            column.pg_type,
            crate::sync::copy::reset_hint(&source.name, state)
        )));
    }
    None
}

/// Where a request the server refused points, by mode: the cursor column of an
/// incremental source (its table and column were checked before the read), the table of
/// a full one.
pub fn invalid_at(source: &Source) -> &Location {
    match (source.mode, &source.at.cursor_field) {
        (SyncMode::Incremental, Some(at)) => at,
        _ => &source.at.table,
    }
}
