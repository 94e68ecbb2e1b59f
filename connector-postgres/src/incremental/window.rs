//! The lag window: which delivered rows a checkpoint remembers.
//!
//! A run with a lag re-reads `cursor >= checkpoint - lag` to pick up rows that committed
//! late. To keep that re-read from delivering rows twice, the checkpoint lists the
//! `(cursor, key)` of every row already delivered within the window, and the re-read
//! excludes exactly those (server-side, by an anti-join on the bound lists). The list is
//! pruned as the checkpoint moves, so it holds the rows of one window, not of the table.

use arrow_array::RecordBatch;

use super::checkpoint::{Checkpoint, Lag, RecentRow};
use crate::PgError;
use crate::arrow::text;
use crate::catalog::TableSchema;
use crate::ident::quote;
use crate::read::page::Bind;
use crate::read::plan::Filters;

/// The delivered rows inside the window below the newest cursor.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    lag: Option<i64>,
    rows: Vec<(i64, RecentRow)>,
}

impl Window {
    /// A window of `lag` seeded with a checkpoint's remembered rows.
    pub(crate) fn new(lag: Option<Lag>, seed: &[RecentRow]) -> Self {
        let Some(lag) = lag else {
            return Self::default();
        };
        let rows = seed
            .iter()
            .filter_map(|r| text::parse_ordinal(&r.cursor).map(|o| (o, r.clone())))
            .collect();
        Self {
            lag: Some(lag.ordinal()),
            rows,
        }
    }

    /// Adds the rows of `batch` (cursor at `cursor_col`, key at `key_cols`) and forgets rows
    /// that fell out of the window below the batch's last cursor.
    pub(crate) fn extend(
        &mut self,
        batch: &RecordBatch,
        cursor_col: usize,
        key_cols: &[usize],
    ) -> Result<(), PgError> {
        let Some(lag) = self.lag else {
            return Ok(());
        };
        let cursor = batch.column(cursor_col);
        let Some(last) = batch.num_rows().checked_sub(1) else {
            return Ok(());
        };
        let high = text::value_ordinal(cursor, last)
            .ok_or_else(|| PgError::data("the lag window needs a non-NULL cursor"))?;
        let floor = high.saturating_sub(lag);
        self.rows.retain(|(ordinal, _)| *ordinal >= floor);
        for row in 0..batch.num_rows() {
            let Some(ordinal) = text::value_ordinal(cursor, row) else {
                continue;
            };
            if ordinal < floor {
                continue;
            }
            let primary_key = key_cols
                .iter()
                .map(|c| text::value_text(batch.column(*c), row))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| PgError::data("a primary-key value cannot be printed"))?;
            let cursor = text::value_text(cursor, row)
                .ok_or_else(|| PgError::data("a cursor value cannot be printed"))?;
            self.rows.push((
                ordinal,
                RecentRow {
                    cursor,
                    primary_key,
                },
            ));
        }
        Ok(())
    }

    /// The remembered rows, for a checkpoint.
    pub(crate) fn rows(&self) -> Vec<RecentRow> {
        self.rows.iter().map(|(_, r)| r.clone()).collect()
    }
}

/// Adds the anti-join that skips rows the checkpoint's window says were delivered. Types
/// come from the catalog, never from the checkpoint, whose values are only ever bound.
pub(crate) fn exclude_recent(
    filters: &mut Filters,
    from: &Checkpoint,
    schema: &TableSchema,
    cursor: &str,
) -> Result<(), PgError> {
    if from.recent.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = std::iter::once(cursor)
        .chain(schema.primary_key.iter().map(String::as_str))
        .collect();
    let first = filters.binds.len() + 1;
    let (mut cols, mut casts, mut arrays, mut aliases) = (vec![], vec![], vec![], vec![]);
    for (i, name) in names.iter().enumerate() {
        cols.push(quote(name)?);
        casts.push(format!("u.c{i}::{}", schema.column(name)?.pg_type));
        arrays.push(format!("${}::text[]", first + i));
        aliases.push(format!("c{i}"));
        let values = from.recent.iter().map(|r| match i {
            0 => Some(r.cursor.clone()),
            _ => r.primary_key.get(i - 1).cloned(),
        });
        let values = values.collect::<Option<Vec<_>>>().ok_or_else(|| {
            PgError::invalid_input("checkpoint lists a recent row with too few key values")
        })?;
        filters.binds.push(Bind::TextArray(values));
    }
    filters.sql.push(format!(
        "({}) NOT IN (SELECT {} FROM unnest({}) AS u({}))",
        cols.join(", "),
        casts.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(cursors: &[i64], keys: &[i64]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("c", DataType::Int64, true),
            Field::new("id", DataType::Int64, false),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(cursors.to_vec())),
            Arc::new(Int64Array::from(keys.to_vec())),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn keeps_only_rows_inside_the_window() {
        let seed = [RecentRow {
            cursor: "3".into(),
            primary_key: vec!["30".into()],
        }];
        let mut window = Window::new(Some(Lag::Units(5)), &seed);
        window
            .extend(&batch(&[4, 9, 10], &[1, 2, 3]), 0, &[1])
            .unwrap();
        let kept: Vec<_> = window.rows().into_iter().map(|r| r.cursor).collect();
        assert_eq!(kept, ["9", "10"]);
    }

    #[test]
    fn no_lag_remembers_nothing() {
        let mut window = Window::new(None, &[]);
        window.extend(&batch(&[1], &[1]), 0, &[1]).unwrap();
        assert!(window.rows().is_empty());
    }
}
