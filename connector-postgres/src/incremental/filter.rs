//! The SQL of a lag run: the hidden columns every page selects, and the condition that
//! skips the rows of the window already delivered.
//!
//! Every page of a lag run selects two hidden `bigint` columns (dropped before a batch is
//! handed out, like key columns added for paging): the row version's inserting transaction
//! as a full 64-bit id ([`xid_expr`]), and the page's snapshot `xmin`. The filter asks, for
//! each row of the window, whether the snapshot that last read its position could see it
//! (see [`super::seen`]): one `CASE` branch per recorded segment, in position order, each a
//! binary search in an `int8multirange`. Its cost on the server is a few hundred
//! nanoseconds per row of the window, and nothing about the window's rows travels or is
//! stored.

use super::seen::LagWindow;
use crate::catalog::TableSchema;
use crate::error::PgError;
use crate::ident::quote;
use crate::read::page::Bind;
use crate::read::plan::Filters;

/// Name of the hidden column holding a row's inserting transaction (full 64-bit id).
pub(crate) const XID_COLUMN: &str = "__resilient_row_xid";
/// Name of the hidden column holding the page's snapshot `xmin`.
pub(crate) const SNAPSHOT_COLUMN: &str = "__resilient_snapshot_xmin";

/// The snapshot's `xmin` as a full transaction id (evaluated once per query).
const SNAPSHOT_XMIN: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8)";

/// The full 64-bit id of the transaction that wrote the row version, from the 32-bit
/// system column `xmin` (qualified by `table` when given).
///
/// `age(xmin)` is the 32-bit distance back from the transaction counter as this
/// transaction first read it (`now`), wrap-around included. With `M` the snapshot's `xmax`
/// (a full id) and `D = now - M` (computed from `age('3')`, also once per query), the
/// row's id is `M + D - age`. A visible row was written before the snapshot, so its id is
/// below `M`, i.e. `age > D`; anything else is a frozen row whose 32-bit id no longer
/// means anything (the counter has gone round since), and so is `FrozenTransactionId`
/// (age reports it as `2^31 - 1`): both are old, and come out as `0` or far below any
/// snapshot's `xmin`.
pub(crate) fn xid_expr(table: Option<&str>) -> String {
    let xmin = table.map_or_else(|| "xmin".to_owned(), |t| format!("{t}.xmin"));
    widen(
        &format!("age({xmin})"),
        "age('3'::xid)",
        "pg_snapshot_xmax(pg_current_snapshot())::text::int8",
    )
}

/// [`xid_expr`] from its parts: the row's age, the age of transaction 3 (which gives the
/// counter's low 32 bits), and the snapshot's `xmax` as a full id.
fn widen(row_age: &str, age_of_3: &str, xmax: &str) -> String {
    let m = format!("(SELECT {xmax})");
    let d = format!("(SELECT (({age_of_3})::int8 + 3 - {xmax}) & 4294967295)");
    format!("CASE WHEN {row_age} > {d} THEN {m} + {d} - {row_age} ELSE 0 END")
}

/// Adds the hidden columns and, when the record has segments, the condition that skips
/// the rows they saw. Types come from the catalog; recorded values are only ever bound.
pub(crate) fn add_filter(
    filters: &mut Filters,
    window: &LagWindow,
    schema: &TableSchema,
    cursor: &str,
) -> Result<(), PgError> {
    filters
        .computed
        .push((XID_COLUMN.to_owned(), xid_expr(None)));
    filters
        .computed
        .push((SNAPSHOT_COLUMN.to_owned(), SNAPSHOT_XMIN.to_owned()));
    let sets = window.visible_sets();
    if sets.is_empty() {
        return Ok(());
    }
    let cursor_col = quote(cursor)?;
    let cursor_ty = &schema.column(cursor)?.pg_type;
    let mut key_cols = Vec::new();
    let mut key_tys = Vec::new();
    for key in &schema.primary_key {
        key_cols.push(quote(key)?);
        key_tys.push(schema.column(key)?.pg_type.clone());
    }
    // Every bound value is cast inside a scalar subquery: the casts from text are not
    // immutable (`multirange_in`, `timestamptz_in`), so written inline they would be parsed
    // again for every row of the window; as subqueries they run once per query.
    let param = |filters: &mut Filters, value: String, ty: &str| {
        filters.binds.push(Bind::Text(value));
        format!("(SELECT ${}::{ty})", filters.binds.len())
    };
    let mut branches = Vec::with_capacity(sets.len());
    for (upto, visible) in sets {
        let bound = match &upto.key {
            None => format!(
                "{cursor_col} <= {}",
                param(filters, upto.cursor.clone(), cursor_ty)
            ),
            Some(key) => {
                let mut values = vec![param(filters, upto.cursor.clone(), cursor_ty)];
                for (value, ty) in key.iter().zip(&key_tys) {
                    values.push(param(filters, value.clone(), ty));
                }
                format!(
                    "({cursor_col}, {}) <= ({})",
                    key_cols.join(", "),
                    values.join(", ")
                )
            }
        };
        let set = param(filters, visible.to_multirange(), "int8multirange");
        branches.push(format!("WHEN {bound} THEN {set} @> ({})", xid_expr(None)));
    }
    filters
        .sql
        .push(format!("NOT (CASE {} ELSE false END)", branches.join(" ")));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn row_ids_widen_across_the_32_bit_wrap_and_frozen_ones_read_as_old() {
        let server = crate::testing::pick_server().await;
        let mut conn = server.connect("postgres").await.unwrap();
        const EPOCH: i64 = 1 << 32;
        // (snapshot xmax, the counter's low 32 bits, the row's 32-bit id) -> full id.
        let cases = [
            // Same epoch, counter a little ahead of the snapshot.
            (1_000, 1_005, 900, 900),
            // The snapshot is in epoch 1, the row was written late in epoch 0.
            (EPOCH + 100, 105, EPOCH - 50, EPOCH - 50),
            // The snapshot is at the end of epoch 0, the counter already wrapped.
            (EPOCH - 10, 3, EPOCH - 20, EPOCH - 20),
            // Epoch 3, a row from epoch 3.
            (3 * EPOCH + 7_000, 7_001, 6_000, 3 * EPOCH + 6_000),
            // A frozen row whose old id reads as newer than the snapshot: old.
            (EPOCH + 100, 105, 103, 0),
            // The age PostgreSQL reports for FrozenTransactionId (2): far in the past.
            (EPOCH + 100, 105, -1, EPOCH + 105 - i64::from(i32::MAX)),
        ];
        for (xmax, now_low, raw, expected) in cases {
            // age() is the 32-bit signed distance from the counter (a literal here).
            let age = |xid: i64| -> i64 {
                if raw < 0 && xid == raw {
                    return i64::from(i32::MAX);
                }
                i64::from(((now_low - xid) as u32) as i32)
            };
            let sql = format!(
                "SELECT {}",
                widen(
                    &format!("{}::int4", age(raw)),
                    &format!("{}::int4", age(3)),
                    &format!("{xmax}::int8")
                )
            );
            let got: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(got, expected, "xmax {xmax}, counter {now_low}, row {raw}");
        }
    }
}
