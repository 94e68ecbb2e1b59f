//! Checkpoints written by earlier versions, which listed every delivered row of the lag
//! window (`recent`), turned into a [`LagWindow`] once.
//!
//! The listed rows were delivered; every other row of the window was not. One query (a
//! hash join of the table with the list, in the run's snapshot) finds the transactions that
//! wrote the listed rows as they stand now, and the list becomes one segment that counts
//! exactly those transactions as visible, up to the largest listed cursor. A row of the
//! same transaction that is not listed was visible to the same earlier run, inside its
//! window, so it was delivered and listed too; the one exception is a row beyond that run's
//! upper bound written by a transaction that committed after the run began and before a
//! fault gave it a new snapshot, which this conversion counts as delivered. The run that
//! converts the list stores a normal [`LagWindow`]; the list is never written again.

use resilience_core::resilient_operation;
use sqlx::AssertSqlSafe;

use super::checkpoint::RecentRow;
use super::filter::xid_expr;
use super::seen::{Band, LagWindow, RunRecord, Segment, Upto};
use super::xids::XidSet;
use crate::arrow::text;
use crate::catalog::TableSchema;
use crate::connector::PostgresConnector;
use crate::error::PgError;
use crate::ident::quote;
use crate::read::Session;

impl PostgresConnector {
    /// The record equivalent to a list of delivered rows, read in the run's `session`.
    #[resilient_operation(key = self.host_key(), name = "incremental_legacy_window")]
    pub(crate) async fn legacy_window(
        &self,
        schema: &TableSchema,
        cursor: &str,
        recent: &[RecentRow],
        session: &Session,
    ) -> Result<LagWindow, PgError> {
        let names: Vec<&str> = std::iter::once(cursor)
            .chain(schema.primary_key.iter().map(String::as_str))
            .collect();
        let mut arrays = Vec::with_capacity(names.len());
        let (mut params, mut aliases, mut joins) = (vec![], vec![], vec![]);
        for (i, name) in names.iter().enumerate() {
            let values = recent
                .iter()
                .map(|r| match i {
                    0 => Some(r.cursor.clone()),
                    _ => r.primary_key.get(i - 1).cloned(),
                })
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    PgError::invalid_input("checkpoint lists a recent row with too few key values")
                })?;
            arrays.push(values);
            params.push(format!("${}::text[]", i + 1));
            aliases.push(format!("c{i}"));
            joins.push(format!(
                "t.{} = u.c{i}::{}",
                quote(name)?,
                schema.column(name)?.pg_type
            ));
        }
        let sql = format!(
            "SELECT DISTINCT {} FROM {} AS t JOIN unnest({}) AS u({}) ON {}",
            xid_expr(Some("t")),
            schema.name.quoted()?,
            params.join(", "),
            aliases.join(", "),
            joins.join(" AND ")
        );
        let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql));
        for values in &arrays {
            query = query.bind(values.as_slice());
        }
        let mut lease = session.step(self).await?;
        // On error the lease is dropped, which discards the connection.
        let ids: Vec<i64> = query.fetch_all(&mut *lease).await?;
        session.keep(lease);
        Ok(convert(recent, ids))
    }
}

/// The segment that counts the transactions `ids` of the listed rows as visible, up to the
/// largest listed cursor.
fn convert(recent: &[RecentRow], ids: Vec<i64>) -> LagWindow {
    let top = recent
        .iter()
        .filter_map(|r| text::parse_ordinal(&r.cursor).map(|o| (o, &r.cursor)))
        .max_by_key(|(o, _)| *o);
    let (max_cursor, cursor) = match top {
        Some((ordinal, cursor)) => (ordinal, cursor.clone()),
        None => (
            i64::MAX,
            recent.last().map(|r| r.cursor.clone()).unwrap_or_default(),
        ),
    };
    let xids = XidSet::from_ids(ids.into_iter().map(|i| i.max(0) as u64));
    LagWindow {
        low: None,
        runs: vec![RunRecord {
            inherited: Vec::new(),
            segments: vec![Segment {
                upto: Upto { cursor, key: None },
                xmin: 0,
                bands: vec![Band { max_cursor, xids }],
            }],
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_becomes_one_segment_up_to_its_largest_cursor() {
        let recent: Vec<RecentRow> = [("12", "1"), ("30", "2"), ("7", "3")]
            .iter()
            .map(|(c, k)| RecentRow {
                cursor: (*c).into(),
                primary_key: vec![(*k).into()],
            })
            .collect();
        let window = convert(&recent, vec![900, 901, 950]);
        let sets = window.visible_sets();
        assert_eq!(sets.len(), 1);
        assert_eq!(
            sets[0].0,
            &Upto {
                cursor: "30".into(),
                key: None
            }
        );
        let visible = &sets[0].1;
        assert!(visible.contains(900) && visible.contains(950));
        assert!(
            !visible.contains(1) && !visible.contains(902),
            "only listed transactions"
        );
    }
}
