//! Sets of transaction ids, kept as sorted ranges and written compactly.
//!
//! The lag window remembers *which transactions' rows were delivered*, not which rows (see
//! [`super::seen`]). Transaction ids are handed out one after another, so the ids of the
//! transactions that wrote a table's rows form runs of neighbours; a set of them is stored
//! as sorted, disjoint, half-open ranges `[start, end)` of full 64-bit ids (`xid8`), bound
//! into SQL as one `int8multirange` (membership is a binary search on the server), and
//! written in a checkpoint as a short string: ranges separated by `,`, each written as the
//! gap from the end of the previous range (from 0 for the first), with `+len` when it holds
//! more than one id. `{[5,8), [10,11)}` is written `5+3,2`.

use std::fmt::Write;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of transaction ids as sorted, disjoint, non-adjacent half-open ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct XidSet(Vec<(u64, u64)>);

impl XidSet {
    /// The set holding every id below `end`.
    pub(crate) fn below(end: u64) -> Self {
        let mut set = Self::default();
        set.insert_range(0, end);
        set
    }

    /// The set of the given ids, in any order, repeats allowed.
    pub(crate) fn from_ids(ids: impl IntoIterator<Item = u64>) -> Self {
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for id in ids {
            match ranges.last_mut() {
                Some((_, end)) if *end == id => *end = id + 1,
                _ => ranges.push((id, id.saturating_add(1))),
            }
        }
        Self(ranges)
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many ranges the set is stored as (its size in a checkpoint).
    pub(crate) fn ranges(&self) -> usize {
        self.0.len()
    }

    /// Whether `id` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: u64) -> bool {
        let i = self.0.partition_point(|(_, end)| *end <= id);
        self.0.get(i).is_some_and(|(start, _)| *start <= id)
    }

    /// Adds `[start, end)`.
    pub(crate) fn insert_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // Ranges that touch or overlap the new one merge into it.
        let first = self.0.partition_point(|(_, e)| *e < start);
        let last = self.0.partition_point(|(s, _)| *s <= end);
        let (mut lo, mut hi) = (start, end);
        if first < last {
            lo = lo.min(self.0[first].0);
            hi = hi.max(self.0[last - 1].1);
        }
        self.0.splice(first..last, [(lo, hi)]);
    }

    /// Adds every id of `other`.
    pub(crate) fn union(&mut self, other: &XidSet) {
        for (start, end) in &other.0 {
            self.insert_range(*start, *end);
        }
    }

    /// Drops every id below `floor`.
    pub(crate) fn remove_below(&mut self, floor: u64) {
        self.0.retain(|(_, end)| *end > floor);
        if let Some(first) = self.0.first_mut() {
            first.0 = first.0.max(floor);
        }
    }

    /// The set as a PostgreSQL `int8multirange` literal, e.g. `{[5,8),[10,11)}`. Ids are
    /// clamped to the `bigint` range (a real `xid8` never comes near its end).
    pub(crate) fn to_multirange(&self) -> String {
        let clamp = |v: u64| v.min(i64::MAX as u64);
        let mut text = String::from("{");
        for (i, (start, end)) in self.0.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "[{},{})", clamp(*start), clamp(*end));
        }
        text.push('}');
        text
    }

    /// The compact text form (see the module docs).
    fn encode(&self) -> String {
        let mut text = String::new();
        let mut prev = 0u64;
        for (i, (start, end)) in self.0.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{}", start - prev);
            if end - start > 1 {
                let _ = write!(text, "+{}", end - start);
            }
            prev = *end;
        }
        text
    }

    /// Parses [`encode`](Self::encode)'s form.
    fn decode(text: &str) -> Result<Self, String> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut prev = 0u64;
        for item in text.split(',').filter(|s| !s.is_empty()) {
            let (gap, len) = match item.split_once('+') {
                Some((gap, len)) => (gap, len),
                None => (item, "1"),
            };
            let number = |s: &str| {
                s.parse::<u64>()
                    .map_err(|_| format!("`{item}` is not a gap or gap+length"))
            };
            let (gap, len) = (number(gap)?, number(len)?);
            let start = prev
                .checked_add(gap)
                .ok_or_else(|| format!("`{item}` overflows"))?;
            let end = start
                .checked_add(len)
                .ok_or_else(|| format!("`{item}` overflows"))?;
            if len == 0 || (!ranges.is_empty() && gap == 0) {
                return Err(format!("`{item}` is empty or touches the range before it"));
            }
            ranges.push((start, end));
            prev = end;
        }
        Ok(Self(ranges))
    }
}

impl Serialize for XidSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for XidSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::decode(&text).map_err(|e| D::Error::custom(format!("invalid transaction ids: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_ranges_and_round_trip_as_text() {
        let set = XidSet::from_ids([10, 5, 6, 7, 5, 20, 21]);
        assert_eq!(set.0, [(5, 8), (10, 11), (20, 22)]);
        assert_eq!(set.encode(), "5+3,2,9+2");
        assert_eq!(XidSet::decode("5+3,2,9+2").unwrap(), set);
        assert_eq!(set.to_multirange(), "{[5,8),[10,11),[20,22)}");
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<XidSet>(&json).unwrap(), set);
        assert_eq!(XidSet::decode("").unwrap(), XidSet::default());
        assert_eq!(XidSet::default().to_multirange(), "{}");
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in ["x", "1+0", "1,0", "5+y", "18446744073709551615+2"] {
            assert!(XidSet::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_merge_when_they_touch_and_drop_below_a_floor() {
        let mut set = XidSet::below(100);
        set.insert_range(150, 160);
        set.insert_range(100, 101);
        assert_eq!(set.0, [(0, 101), (150, 160)]);
        set.union(&XidSet::from_ids([101, 149, 300]));
        assert_eq!(set.0, [(0, 102), (149, 160), (300, 301)]);
        set.insert_range(90, 155);
        assert_eq!(set.0, [(0, 160), (300, 301)]);
        set.remove_below(200);
        assert_eq!(set.0, [(300, 301)]);
        set.remove_below(300);
        assert_eq!(set.0, [(300, 301)]);
        assert!(set.contains(300) && !set.contains(299) && !set.contains(301));
    }

    #[test]
    fn union_matches_a_plain_set() {
        // A small exhaustive check against a BTreeSet.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % 64
        };
        for _ in 0..200 {
            let mut set = XidSet::default();
            let mut plain = std::collections::BTreeSet::new();
            for _ in 0..8 {
                let (a, b) = (next(), next());
                let (lo, hi) = (a.min(b), a.max(b));
                set.insert_range(lo, hi);
                plain.extend(lo..hi);
            }
            let floor = next();
            set.remove_below(floor);
            plain.retain(|v| *v >= floor);
            for v in 0..70 {
                assert_eq!(set.contains(v), plain.contains(&v), "{v} in {set:?}");
            }
            assert!(set.0.windows(2).all(|w| w[0].1 < w[1].0), "{set:?}");
            assert_eq!(XidSet::decode(&set.encode()).unwrap(), set);
        }
    }
}
