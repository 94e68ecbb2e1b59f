//! Identifier quoting and catalog-checked table names.
//!
//! sqlx binds values but has no notion of identifiers, so every table and column name that
//! reaches SQL text goes through [`quote`]: wrapped in double quotes, embedded quotes doubled,
//! NUL refused (PostgreSQL cannot store it and a driver could truncate at it). On top of that,
//! a table name is only accepted as the catalog spells it: [`resolve`] looks the name up in
//! `pg_catalog` with bound parameters, so a typo or an injection attempt is refused before any
//! SQL is built from it.

use std::fmt;

use sqlx::PgConnection;

use crate::error::PgError;

/// Quotes one identifier for use in SQL text: `my "t"` becomes `"my ""t"""`.
///
/// Fails on an empty name or a name containing NUL, which PostgreSQL cannot represent.
pub fn quote(ident: &str) -> Result<String, PgError> {
    if ident.is_empty() {
        return Err(PgError::invalid_input("identifier must not be empty"));
    }
    if ident.contains('\0') {
        return Err(PgError::invalid_input(format!(
            "identifier {} contains a NUL character, which postgresql identifiers cannot hold",
            crate::echo::quoted(&ident.replace('\0', "\\0"))
        )));
    }
    let mut quoted = String::with_capacity(ident.len() + 2);
    quoted.push('"');
    for ch in ident.chars() {
        if ch == '"' {
            quoted.push('"');
        }
        quoted.push(ch);
    }
    quoted.push('"');
    Ok(quoted)
}

/// A table named exactly as the catalog names it: schema and table, unquoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// The schema (namespace) holding the table.
    pub schema: String,
    /// The table, view or materialized view name.
    pub table: String,
}

impl QualifiedName {
    /// A name from its two parts (not yet checked against the catalog).
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// The quoted `"schema"."table"` form for SQL text.
    pub fn quoted(&self) -> Result<String, PgError> {
        Ok(format!("{}.{}", quote(&self.schema)?, quote(&self.table)?))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// Looks `table` up in the catalog under `schema` and returns the name with its oid.
///
/// The name must match a table, view, materialized view, partitioned or foreign table
/// exactly (case included); anything else is refused as invalid input.
pub(crate) async fn resolve(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<(QualifiedName, u32), PgError> {
    quote(schema)?;
    quote(table)?;
    let oid: Option<(sqlx::postgres::types::Oid,)> = sqlx::query_as(
        "SELECT c.oid FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
    )
    .bind(schema)
    .bind(table)
    .fetch_optional(&mut *conn)
    .await?;
    match oid {
        Some((oid,)) => Ok((QualifiedName::new(schema, table), oid.0)),
        None => Err(PgError::invalid_input(format!(
            "table {} is not in the catalog of schema {}; names must be spelled exactly \
             as the catalog lists them, case included",
            crate::echo::quoted(table),
            crate::echo::quoted(schema)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_wrapped() {
        assert_eq!(quote("users").unwrap(), "\"users\"");
    }

    #[test]
    fn embedded_quotes_are_doubled() {
        assert_eq!(quote("my \"t\"").unwrap(), "\"my \"\"t\"\"\"");
        assert_eq!(quote("\"").unwrap(), "\"\"\"\"");
    }

    #[test]
    fn spaces_case_and_unicode_are_kept() {
        assert_eq!(quote("Order Items").unwrap(), "\"Order Items\"");
        assert_eq!(quote("café ☕").unwrap(), "\"café ☕\"");
        assert_eq!(quote("x; DROP TABLE y").unwrap(), "\"x; DROP TABLE y\"");
    }

    #[test]
    fn nul_is_refused_with_a_clear_message() {
        let err = quote("bad\0name").unwrap_err().to_string();
        assert!(err.contains("NUL"), "{err}");
        assert!(err.contains("bad\\\\0name"), "{err}");
    }

    #[test]
    fn empty_is_refused() {
        assert!(quote("").is_err());
    }

    #[test]
    fn qualified_names_quote_both_parts() {
        let name = QualifiedName::new("my schema", "t\"1");
        assert_eq!(name.quoted().unwrap(), "\"my schema\".\"t\"\"1\"");
        assert_eq!(name.to_string(), "my schema.t\"1");
    }
}
