//! What a checkpoint remembers about the lag window: which snapshots read which positions.
//!
//! A run with a lag re-reads the window below its checkpoint to catch rows that committed
//! late, and must skip the rows of the window it already delivered. Rather than list those
//! rows (which grows with the window: 300,000 rows made a 43 MB checkpoint), the checkpoint
//! records *the snapshots that read the window*, and the next run asks of each row
//! whether the snapshot that last read its position could see it:
//!
//! - a **segment** is a range of positions `(previous segment's end, upto]` read in one
//!   snapshot: a run normally has one, and one more after every fault that forced a new
//!   transaction (the keyset position makes the new snapshot safe, see `read::session`);
//! - a row version at a position is delivered iff its inserting transaction is *visible*
//!   to that segment's snapshot: every transaction below the snapshot's `xmin` is, every
//!   transaction at or above its `xmax` is not, and of those in between (the snapshot's
//!   *band*, transactions still running or just finished when it was taken) exactly the
//!   ones whose rows the segment delivered. So a segment stores its `xmin` and the band
//!   ids it saw ([`Band`]), taken from the rows themselves: exact for subtransactions
//!   (`SAVEPOINT`), which `pg_visible_in_snapshot` gets wrong;
//! - rows a run skipped as already delivered carry their verdict forward: each run's
//!   segments also count as visible the band ids of every segment of the checkpoint it
//!   started from (the run's `inherited` bands). That is sound because those snapshots
//!   are older than the run's own, so what they saw, the run's snapshots saw too;
//! - a run that stops in the middle of the window (a crash) leaves the positions it did
//!   not reach to the segments that read them before: a checkpoint is a list of run
//!   records, newest first, whose segments together cover the window in position order.
//!
//! Band ids are few in practice: only transactions that were running while a snapshot was
//! taken, plus (while one writing transaction stays open) every transaction that commits
//! after it started. They are dropped once the window's lower edge passes every row they
//! wrote (each [`Band`] carries the largest cursor of its rows) or once a later snapshot's
//! `xmin` passes them, so the record holds one window's worth of band ids at most.

use serde::{Deserialize, Serialize};

use super::xids::XidSet;
use crate::error::PgError;

/// The lag window's record in a checkpoint: which snapshots read which positions of the
/// window, and which transactions' rows they delivered. Opaque; stored and passed back as
/// part of a [`Checkpoint`](super::Checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagWindow {
    /// Where the window's coverage starts; a run never reads below it, so positions that
    /// no segment covers are never mistaken for new ones (after the lag grew, or when a
    /// lag was added to a checkpoint made without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) low: Option<Low>,
    /// Newest run first; their segments, in this order, are in position order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) runs: Vec<RunRecord>,
}

/// The lower edge of what a lag window covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Low {
    /// Rows whose cursor is at or above this value: the lower edge of an earlier window, as
    /// PostgreSQL printed `checkpoint - lag`.
    From(String),
    /// Rows after this `(cursor, key...)` position: the checkpoint of a read without lag.
    After(Vec<String>),
}

/// The segments one run read, and the band ids it inherited from the checkpoint it started
/// from (counted as visible in each of its segments).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRecord {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) inherited: Vec<Band>,
    pub(crate) segments: Vec<Segment>,
}

/// Positions read in one snapshot, up to and including `upto`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Segment {
    pub(crate) upto: Upto,
    /// The snapshot's `xmin` (a full 64-bit transaction id): every transaction below it was
    /// visible.
    pub(crate) xmin: u64,
    /// The band ids (at or above `xmin`) of the rows this segment delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) bands: Vec<Band>,
}

/// The end of a segment: the position `(cursor, key...)` of a row, or with no key every
/// position whose cursor is at most `cursor` (the run's upper bound, when it read to the end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upto {
    pub(crate) cursor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<Vec<String>>,
}

/// Transaction ids seen as visible, with the largest cursor (as an ordinal: the integer, or
/// microseconds since 1970) of the delivered rows they wrote, so they can be forgotten once
/// the window has moved past all of those rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Band {
    pub(crate) max_cursor: i64,
    pub(crate) xids: XidSet,
}

/// At most this many bands per list: more are merged (keeping the larger cursor, which only
/// delays forgetting them).
const MAX_BANDS: usize = 8;

impl LagWindow {
    /// Every segment in position order, with the set of transactions visible to it.
    pub(crate) fn visible_sets(&self) -> Vec<(&Upto, XidSet)> {
        let mut out = Vec::new();
        for run in &self.runs {
            for segment in &run.segments {
                let mut visible = XidSet::below(segment.xmin);
                for band in run.inherited.iter().chain(&segment.bands) {
                    visible.union(&band.xids);
                }
                out.push((&segment.upto, visible));
            }
        }
        out
    }

    /// Every band id this record counts as visible anywhere, with each snapshot's `xmin`
    /// range as well (never forgotten by cursor): what a run starting from it inherits.
    pub(crate) fn all_bands(&self) -> Vec<Band> {
        let mut bands = Vec::new();
        for run in &self.runs {
            bands.extend(run.inherited.iter().cloned());
            for segment in &run.segments {
                bands.push(Band {
                    max_cursor: i64::MAX,
                    xids: XidSet::below(segment.xmin),
                });
                bands.extend(segment.bands.iter().cloned());
            }
        }
        compact(&mut bands);
        bands
    }

    /// How many ranges of transaction ids the record stores: its size is a few bytes for
    /// each, plus one entry per segment.
    pub fn transaction_ranges(&self) -> usize {
        let count = |bands: &[Band]| bands.iter().map(|b| b.xids.ranges()).sum::<usize>();
        self.runs
            .iter()
            .map(|r| {
                count(&r.inherited) + r.segments.iter().map(|s| count(&s.bands)).sum::<usize>()
            })
            .sum()
    }

    /// How many segments (positions read in one snapshot) the record holds: one per run
    /// normally, one more per fault that forced a new transaction or run left unfinished.
    pub fn segments(&self) -> usize {
        self.runs.iter().map(|r| r.segments.len()).sum()
    }

    /// Checks that every recorded position has one value per key column.
    pub(crate) fn check_keys(&self, keys: usize) -> Result<(), PgError> {
        let bad = |what: &str| {
            PgError::invalid_input(format!(
                "checkpoint's lag window has a {what} with the wrong number of key values for \
                 this table's primary key ({keys}); it was made for another table or edited"
            ))
        };
        if let Some(Low::After(position)) = &self.low
            && position.len() != keys + 1
        {
            return Err(bad("lower edge"));
        }
        for run in &self.runs {
            for segment in &run.segments {
                if segment.upto.key.as_ref().is_some_and(|k| k.len() != keys) {
                    return Err(bad("segment end"));
                }
            }
        }
        Ok(())
    }
}

/// Drops the ids of `bands` below `xmin` (already visible) and the bands whose rows all lie
/// below the cursor ordinal `floor` (never read again), then merges down to [`MAX_BANDS`].
pub(crate) fn prune(bands: &mut Vec<Band>, xmin: u64, floor: Option<i64>) {
    for band in bands.iter_mut() {
        band.xids.remove_below(xmin);
    }
    bands.retain(|b| !b.xids.is_empty() && floor.is_none_or(|f| b.max_cursor >= f));
    compact(bands);
}

/// Merges bands with the same cursor, then neighbours with the closest cursors, until at
/// most [`MAX_BANDS`] remain.
fn compact(bands: &mut Vec<Band>) {
    bands.sort_by_key(|b| b.max_cursor);
    let mut merged: Vec<Band> = Vec::with_capacity(bands.len());
    for band in bands.drain(..) {
        match merged.last_mut() {
            Some(last) if last.max_cursor == band.max_cursor => last.xids.union(&band.xids),
            _ => merged.push(band),
        }
    }
    while merged.len() > MAX_BANDS {
        let i = (0..merged.len() - 1)
            .min_by_key(|&i| merged[i + 1].max_cursor.abs_diff(merged[i].max_cursor))
            .unwrap_or(0);
        let next = merged.remove(i + 1);
        merged[i].xids.union(&next.xids);
        merged[i].max_cursor = next.max_cursor;
    }
    *bands = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band(max_cursor: i64, ids: &[u64]) -> Band {
        Band {
            max_cursor,
            xids: XidSet::from_ids(ids.iter().copied()),
        }
    }

    fn segment(cursor: &str, xmin: u64, bands: Vec<Band>) -> Segment {
        Segment {
            upto: Upto {
                cursor: cursor.into(),
                key: Some(vec!["1".into()]),
            },
            xmin,
            bands,
        }
    }

    #[test]
    fn a_segment_sees_below_its_xmin_its_own_bands_and_its_run_inherited_ones() {
        let window = LagWindow {
            low: None,
            runs: vec![
                RunRecord {
                    inherited: vec![band(5, &[95])],
                    segments: vec![segment("5", 100, vec![band(5, &[103])])],
                },
                RunRecord {
                    inherited: vec![],
                    segments: vec![segment("9", 90, vec![band(9, &[91])])],
                },
            ],
        };
        let sets = window.visible_sets();
        assert_eq!(sets.len(), 2);
        let (upto, first) = &sets[0];
        assert_eq!(upto.cursor, "5");
        for (id, seen) in [
            (0, true),
            (99, true),
            (100, false),
            (103, true),
            (104, false),
        ] {
            assert_eq!(first.contains(id), seen, "{id}");
        }
        let (_, second) = &sets[1];
        for (id, seen) in [(89, true), (90, false), (91, true), (95, false)] {
            assert_eq!(second.contains(id), seen, "{id}");
        }
        assert_eq!(window.transaction_ranges(), 3);
        assert_eq!(window.segments(), 2);
        let inherited = window.all_bands();
        let mut all = XidSet::default();
        inherited.iter().for_each(|b| all.union(&b.xids));
        assert_eq!(all, XidSet::from_ids((0..100).chain([103])));
    }

    #[test]
    fn pruning_forgets_ids_below_xmin_and_bands_below_the_window() {
        let mut bands = vec![band(10, &[5, 50]), band(20, &[60]), band(30, &[40])];
        prune(&mut bands, 45, Some(15));
        assert_eq!(bands, [band(20, &[60])]);
        let mut many: Vec<Band> = (0..20).map(|i| band(i * 10, &[1000 + i as u64])).collect();
        prune(&mut many, 0, None);
        assert_eq!(many.len(), MAX_BANDS);
        let mut all = XidSet::default();
        many.iter().for_each(|b| all.union(&b.xids));
        assert_eq!(all, XidSet::from_ids(1000..1020), "merging keeps every id");
        assert_eq!(many.last().unwrap().max_cursor, 190);
    }

    #[test]
    fn key_counts_are_checked_and_the_record_round_trips_as_json() {
        let window = LagWindow {
            low: Some(Low::After(vec!["7".into(), "1".into()])),
            runs: vec![RunRecord {
                inherited: vec![],
                segments: vec![segment("5", 100, vec![band(5, &[103, 104])])],
            }],
        };
        window.check_keys(1).unwrap();
        assert!(window.check_keys(2).is_err());
        let json = serde_json::to_string(&window).unwrap();
        assert_eq!(
            json,
            r#"{"low":{"after":["7","1"]},"runs":[{"segments":[{"upto":{"cursor":"5","key":["1"]},"xmin":100,"bands":[{"max_cursor":5,"xids":"103+2"}]}]}]}"#
        );
        assert_eq!(serde_json::from_str::<LagWindow>(&json).unwrap(), window);
    }
}
