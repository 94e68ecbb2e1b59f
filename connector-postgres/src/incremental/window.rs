//! The lag window during a run: what the run has read, rebuilt after every page into the
//! record its checkpoint carries ([`LagWindow`], see [`super::seen`]).
//!
//! Each page's hidden columns ([`super::filter`]) give the snapshot that read it and the
//! transactions of its rows. A page read in a new transaction (the session's generation
//! changed after a fault) starts a new segment; its band ids are those at or above the
//! snapshot's `xmin`. The record after a page is this run's segments (with everything the
//! starting record counted as visible, inherited) followed by the starting record's
//! segments for the positions this run has not reached yet.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};

use super::seen::{self, Band, LagWindow, Low, RunRecord, Segment, Upto};
use super::xids::XidSet;
use crate::arrow::text;
use crate::error::PgError;

/// A record larger than this many id ranges makes a run stop early (see [`Tracker::fits`]);
/// at a few bytes a range it keeps a checkpoint well under a megabyte.
pub(crate) const MAX_RANGES: usize = 50_000;

/// What this run has read so far, and how to record it.
#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    /// The record the run started from (only what it did not re-read survives).
    base: LagWindow,
    /// Every band id the starting record counted as visible.
    inherited: Vec<Band>,
    /// This run's lower edge and its cursor ordinal (bands below it are forgotten).
    low: Option<Low>,
    floor: Option<i64>,
    upper: String,
    segments: Vec<Segment>,
    generation: Option<u64>,
}

/// Where the hidden and key columns sit in a fetched batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Columns<'a> {
    pub xid: usize,
    pub snapshot: usize,
    pub cursor: usize,
    pub keys: &'a [usize],
}

impl Tracker {
    /// A tracker for a run reading from `base` with lower edge `low`, up to `upper`.
    pub(crate) fn new(base: LagWindow, low: Option<Low>, upper: String) -> Self {
        let floor = match &low {
            Some(Low::From(value)) => text::parse_ordinal(value),
            Some(Low::After(position)) => position.first().and_then(|c| text::parse_ordinal(c)),
            None => None,
        };
        Self {
            inherited: base.all_bands(),
            base,
            low,
            floor,
            upper,
            segments: Vec::new(),
            generation: None,
        }
    }

    /// How many leading rows of `batch` (read in `generation`, the run's final page when
    /// `last`) can be recorded while the record stays within [`MAX_RANGES`] id ranges: all
    /// of them, unless a transaction stayed open while very many others committed rows
    /// into the window; then fewer, but at least one, so a run always moves on.
    pub(crate) fn fits(
        &self,
        batch: &RecordBatch,
        columns: Columns<'_>,
        generation: u64,
        last: bool,
    ) -> Result<usize, PgError> {
        let rows = batch.num_rows();
        let size = |n: usize| -> Result<usize, PgError> {
            let mut probe = self.clone();
            let record = probe.page(&batch.slice(0, n), columns, generation, last && n == rows)?;
            Ok(record.transaction_ranges())
        };
        if rows <= 1 || size(rows)? <= MAX_RANGES {
            return Ok(rows);
        }
        // The largest prefix that fits, by bisection (1 always qualifies).
        let (mut fits, mut too_big) = (1, rows);
        while too_big - fits > 1 {
            let mid = fits + (too_big - fits) / 2;
            if size(mid)? <= MAX_RANGES {
                fits = mid;
            } else {
                too_big = mid;
            }
        }
        Ok(fits)
    }

    /// Records `batch`, read in the session's transaction `generation`; `last` when the
    /// run read to its upper bound with it. Returns the record for the checkpoint.
    pub(crate) fn page(
        &mut self,
        batch: &RecordBatch,
        columns: Columns<'_>,
        generation: u64,
        last: bool,
    ) -> Result<LagWindow, PgError> {
        let Some(row) = batch.num_rows().checked_sub(1) else {
            return Ok(self.record());
        };
        let (xids, xmin) = hidden(batch, columns)?;
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            self.segments.push(Segment {
                upto: Upto {
                    cursor: String::new(),
                    key: None,
                },
                xmin,
                bands: Vec::new(),
            });
        }
        let cursor = batch.column(columns.cursor);
        let upto = if last {
            Upto {
                cursor: self.upper.clone(),
                key: None,
            }
        } else {
            let printed = |c: usize| {
                text::value_text(batch.column(c), row)
                    .ok_or_else(|| PgError::data("a key value of the window cannot be printed"))
            };
            Upto {
                cursor: printed(columns.cursor)?,
                key: Some(
                    columns
                        .keys
                        .iter()
                        .map(|c| printed(*c))
                        .collect::<Result<_, _>>()?,
                ),
            }
        };
        let band = XidSet::from_ids(
            (0..batch.num_rows())
                .map(|r| xids.value(r) as u64)
                .filter(|id| *id >= xmin),
        );
        let segment = self.segments.last_mut().expect("pushed above");
        segment.upto = upto;
        if !band.is_empty() {
            let max_cursor = text::value_ordinal(cursor, row).unwrap_or(i64::MAX);
            segment.bands.push(Band {
                max_cursor,
                xids: band,
            });
            seen::prune(&mut segment.bands, segment.xmin, self.floor);
        }
        Ok(self.record())
    }

    /// The record after what was read so far: this run's segments, then what the starting
    /// record says about the positions this run has not reached.
    pub(crate) fn record(&self) -> LagWindow {
        let Some(progress) = self.segments.last().map(|s| &s.upto) else {
            return LagWindow {
                low: self.low.clone(),
                runs: self.base.runs.clone(),
            };
        };
        let xmin = self.segments.iter().map(|s| s.xmin).min().unwrap_or(0);
        let mut inherited = self.inherited.clone();
        seen::prune(&mut inherited, xmin, self.floor);
        let mut runs = vec![RunRecord {
            inherited,
            segments: self.segments.clone(),
        }];
        for old in &self.base.runs {
            let segments: Vec<Segment> = old
                .segments
                .iter()
                .filter(|s| beyond(&s.upto, progress))
                .cloned()
                .collect();
            if segments.is_empty() {
                continue;
            }
            let xmin = segments.iter().map(|s| s.xmin).min().unwrap_or(0);
            let mut inherited = old.inherited.clone();
            seen::prune(&mut inherited, xmin, self.floor);
            runs.push(RunRecord {
                inherited,
                segments,
            });
        }
        LagWindow {
            low: self.low.clone(),
            runs,
        }
    }
}

/// The hidden columns of a page: row transaction ids, and the snapshot `xmin`.
fn hidden<'a>(
    batch: &'a RecordBatch,
    columns: Columns<'_>,
) -> Result<(&'a arrow_array::Int64Array, u64), PgError> {
    let xids = batch
        .column(columns.xid)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| PgError::data("the row transaction column is not a bigint"))?;
    let snapshot = batch
        .column(columns.snapshot)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| PgError::data("the snapshot column is not a bigint"))?;
    if snapshot.is_empty() || snapshot.is_null(0) {
        return Err(PgError::data("a page arrived without its snapshot"));
    }
    Ok((xids, snapshot.value(0) as u64))
}

/// Whether a segment ending at `end` still covers positions after `progress`. Positions
/// are compared by cursor ordinal only (keys need the server's collation), so a segment
/// ending at the same cursor is kept unless it ends exactly there: keeping too much only
/// costs space, as positions up to `progress` match this run's segments first.
fn beyond(end: &Upto, progress: &Upto) -> bool {
    let (Some(a), Some(b)) = (
        text::parse_ordinal(&end.cursor),
        text::parse_ordinal(&progress.cursor),
    ) else {
        return true;
    };
    match (a.cmp(&b), &progress.key) {
        (std::cmp::Ordering::Greater, _) => true,
        (std::cmp::Ordering::Less, _) => false,
        (std::cmp::Ordering::Equal, None) => false,
        (std::cmp::Ordering::Equal, Some(key)) => end.key.as_ref() != Some(key),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::super::filter::{SNAPSHOT_COLUMN, XID_COLUMN};
    use super::*;

    /// A page: cursor, id, row xid, snapshot xmin.
    fn page(rows: &[(i64, i64, i64)], xmin: i64) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("c", DataType::Int64, false),
            Field::new("id", DataType::Int64, false),
            Field::new(XID_COLUMN, DataType::Int64, false),
            Field::new(SNAPSHOT_COLUMN, DataType::Int64, false),
        ]);
        let col = |f: fn(&(i64, i64, i64)) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let columns = vec![
            col(|r| r.0),
            col(|r| r.1),
            col(|r| r.2),
            Arc::new(Int64Array::from(vec![xmin; rows.len()])) as ArrayRef,
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    const COLS: Columns<'static> = Columns {
        xid: 2,
        snapshot: 3,
        cursor: 0,
        keys: &[1],
    };

    fn ids(set: &XidSet, probe: &[u64]) -> Vec<u64> {
        probe.iter().copied().filter(|i| set.contains(*i)).collect()
    }

    #[test]
    fn a_fault_starts_a_segment_and_the_last_page_covers_to_the_upper_bound() {
        let mut tracker = Tracker::new(LagWindow::default(), None, "40".into());
        tracker
            .page(&page(&[(10, 1, 50), (11, 2, 103)], 100), COLS, 1, false)
            .unwrap();
        let record = tracker
            .page(&page(&[(20, 3, 104), (30, 4, 120)], 110), COLS, 2, true)
            .unwrap();
        let sets = record.visible_sets();
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[0].0,
            &Upto {
                cursor: "11".into(),
                key: Some(vec!["2".into()])
            }
        );
        assert_eq!(ids(&sets[0].1, &[50, 99, 100, 103, 104]), [50, 99, 103]);
        assert_eq!(
            sets[1].0,
            &Upto {
                cursor: "40".into(),
                key: None
            }
        );
        assert_eq!(ids(&sets[1].1, &[104, 109, 110, 120, 121]), [104, 109, 120]);
    }

    #[test]
    fn positions_not_reached_keep_what_the_older_record_says() {
        let mut first = Tracker::new(LagWindow::default(), None, "40".into());
        first
            .page(&page(&[(10, 1, 105), (20, 2, 106)], 100), COLS, 1, false)
            .unwrap();
        let old = first
            .page(&page(&[(30, 3, 107), (40, 4, 108)], 100), COLS, 1, true)
            .unwrap();
        // A later run (snapshot xmin 200) stops after position (15, 9): a crash.
        let mut second = Tracker::new(old, Some(Low::From("5".into())), "40".into());
        let record = second
            .page(&page(&[(15, 9, 201)], 200), COLS, 7, false)
            .unwrap();
        let sets = record.visible_sets();
        assert_eq!(sets.len(), 2, "{record:?}");
        assert_eq!(sets[0].0.cursor, "15");
        // This run's segment sees what the older one saw, and its own band.
        assert_eq!(ids(&sets[0].1, &[105, 150, 201, 202]), [105, 150, 201]);
        // Beyond (15, 9) the older segment answers, with its own snapshot.
        assert_eq!(sets[1].0.cursor, "40");
        assert_eq!(ids(&sets[1].1, &[99, 105, 109, 150, 201]), [99, 105]);
        // A run that reads to the end replaces everything.
        let record = second
            .page(&page(&[(40, 10, 202)], 200), COLS, 7, true)
            .unwrap();
        assert_eq!(record.visible_sets().len(), 1);
    }

    #[test]
    fn bands_of_rows_below_the_window_are_forgotten() {
        let mut first = Tracker::new(LagWindow::default(), None, "100".into());
        first
            .page(&page(&[(10, 1, 105)], 100), COLS, 1, false)
            .unwrap();
        let old = first
            .page(&page(&[(90, 2, 106)], 100), COLS, 1, true)
            .unwrap();
        assert_eq!(old.transaction_ranges(), 2);
        // The next run's window starts at 50: the band of the row at 10 goes, that of 90 stays.
        let mut next = Tracker::new(old, Some(Low::From("50".into())), "100".into());
        let record = next
            .page(&page(&[(95, 3, 107)], 100), COLS, 1, true)
            .unwrap();
        let (_, visible) = &record.visible_sets()[0];
        assert_eq!(ids(visible, &[105, 106, 107]), [106, 107]);
    }

    #[test]
    fn a_page_that_would_overflow_the_record_is_cut() {
        let tracker = Tracker::new(LagWindow::default(), None, "1".into());
        // Every other id: each is a range of its own.
        let rows: Vec<(i64, i64, i64)> = (0..(MAX_RANGES as i64 + 10))
            .map(|i| (1, i, 1000 + 2 * i))
            .collect();
        let batch = page(&rows, 1000);
        assert_eq!(tracker.fits(&batch, COLS, 1, false).unwrap(), MAX_RANGES);
        let below: Vec<(i64, i64, i64)> = rows.iter().map(|r| (r.0, r.1, 5)).collect();
        assert_eq!(
            tracker.fits(&page(&below, 1000), COLS, 1, false).unwrap(),
            below.len()
        );
    }
}
