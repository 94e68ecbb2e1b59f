//! Which files of an output folder the state accounts for.
//!
//! Output files are named `<source>.<part>.<ext>` (incremental parts) and
//! `<source>.<ext>` (full snapshots); temporary files `.<name>.<pid>.tmp`. A file is
//! accounted for when the state records it as committed, or when it is the one file the
//! crash protocol can leave: the part numbered exactly `next_part` (renamed into place by
//! a run that ended before the state advanced) or, for a source the state has no entry
//! for yet, its part 1 or its snapshot, in a folder this state owns. Everything else named
//! like output is unaccounted for; files named otherwise are not output and are left alone.

use std::collections::BTreeSet;

use clap::ValueEnum;

use crate::args::Format;
use crate::sync::state::{SourceState, State};

/// An output file name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Output<'a> {
    /// `<source>.<part>.<ext>`: a part of an incremental source.
    Part {
        source: &'a str,
        number: u64,
        ext: &'a str,
    },
    /// `<source>.<ext>`: the snapshot of a full source.
    Snapshot { source: &'a str, ext: &'a str },
}

/// What kind of output file `name` is, if any (hidden files never are).
pub(super) fn parse(name: &str) -> Option<Output<'_>> {
    let known = |ext: &str| {
        Format::value_variants()
            .iter()
            .any(|f| f.extension() == ext)
    };
    let source_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let pieces: Vec<&str> = name.split('.').collect();
    match pieces[..] {
        [source, number, ext]
            if source_name(source)
                && known(ext)
                && number.len() >= 6
                && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(Output::Part {
                source,
                number: number.parse().ok()?,
                ext,
            })
        }
        [source, ext] if source_name(source) && known(ext) => {
            Some(Output::Snapshot { source, ext })
        }
        _ => None,
    }
}

/// The source whose output `name` is the temporary file of (`.<output name>.<pid>.tmp`).
pub(super) fn temporary_of(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (output, pid) = inner.rsplit_once('.')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match parse(output)? {
        Output::Part { source, .. } | Output::Snapshot { source, .. } => Some(source),
    }
}

/// What the state says about the files of a folder.
pub(super) struct Account<'a> {
    pub(super) state: &'a State,
    /// Whether the state file exists (runs create it before their first commit).
    pub(super) existed: bool,
    /// Whether the folder's manifest names this state.
    pub(super) owned: bool,
    /// The pipeline's source names.
    pub(super) sources: BTreeSet<&'a str>,
}

impl Account<'_> {
    /// The output files the state does not account for, each with the reason.
    pub(super) fn unaccounted(&self, names: &[String]) -> Vec<(String, String)> {
        names
            .iter()
            .filter_map(|name| {
                let why = self.why_unaccounted(parse(name)?)?;
                Some((name.clone(), why))
            })
            .collect()
    }

    /// Why the state does not account for `file`; `None` when it does (committed, or the
    /// one orphan the crash protocol can leave).
    fn why_unaccounted(&self, file: Output<'_>) -> Option<String> {
        // A first commit of a source without a state entry leaves its part 1 or its
        // snapshot; only in a folder this state owns, with the state file present.
        let first_orphan = self.owned && self.existed;
        match file {
            Output::Part {
                source,
                number,
                ext,
            } => match self.state.sources.get(source) {
                Some(SourceState::Incremental {
                    format, next_part, ..
                }) => {
                    if ext != format {
                        Some(format!("source `{source}` is recorded in {format}"))
                    } else if number > *next_part {
                        Some(format!(
                            "beyond part {:06}, the last committed part of source `{source}`",
                            next_part.saturating_sub(1)
                        ))
                    } else {
                        None
                    }
                }
                Some(SourceState::Full { .. }) => {
                    Some(format!("source `{source}` is recorded as a full sync"))
                }
                None if first_orphan && number == 1 => None,
                None => Some(format!("the state has no source `{source}`")),
            },
            Output::Snapshot { source, ext } => match self.state.sources.get(source) {
                Some(SourceState::Full { format, .. }) if ext == format => None,
                Some(SourceState::Full { format, .. }) => {
                    Some(format!("source `{source}` is recorded in {format}"))
                }
                Some(SourceState::Incremental { .. }) => Some(format!(
                    "source `{source}` is recorded as an incremental sync"
                )),
                // A file named like a snapshot of a source nobody declares is not ours.
                None if !self.sources.contains(source) => None,
                None if first_orphan => None,
                None => Some(format!("the state has no source `{source}`")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(json: &str) -> State {
        serde_json::from_str(json).unwrap()
    }

    fn incremental(next_part: u64) -> String {
        format!(
            r#"{{"version": 1, "sources": {{"items": {{"mode": "incremental", "table": "items",
            "cursor_field": "c", "format": "csv", "checkpoint": null, "next_part": {next_part},
            "rows": 1, "updated_at": "x"}}, "snap": {{"mode": "full", "table": "snap",
            "format": "csv", "rows": 1, "completed_at": "x"}}}}}}"#
        )
    }

    /// Sorted, as the folder is listed.
    fn names(list: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn output_names_are_recognised_and_others_left_alone() {
        assert_eq!(
            parse("items.000012.csv"),
            Some(Output::Part {
                source: "items",
                number: 12,
                ext: "csv"
            })
        );
        assert_eq!(
            parse("items.1234567.jsonl"),
            Some(Output::Part {
                source: "items",
                number: 1_234_567,
                ext: "jsonl"
            })
        );
        assert_eq!(
            parse("snap.csv"),
            Some(Output::Snapshot {
                source: "snap",
                ext: "csv"
            })
        );
        for other in [
            "README.md",
            "items.00001.csv",
            "items.000001.txt",
            ".items.000001.csv.12.tmp",
            super::super::MANIFEST,
            "a b.csv",
            "x.y.z.csv",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
        assert_eq!(temporary_of(".items.000001.csv.12.tmp"), Some("items"));
        assert_eq!(temporary_of(".snap.csv.7.tmp"), Some("snap"));
        assert_eq!(temporary_of(".notes.txt.7.tmp"), None);
        assert_eq!(temporary_of(".items.000001.csv.x.tmp"), None);
    }

    #[test]
    fn committed_parts_and_the_one_orphan_are_accounted_for() {
        let s = state(&incremental(4));
        let account = Account {
            state: &s,
            existed: true,
            owned: true,
            sources: ["items", "snap"].into(),
        };
        let found = account.unaccounted(&names(&[
            "items.000001.csv",
            "items.000003.csv",
            "items.000004.csv", // the orphan: renamed, state not advanced
            "snap.csv",
            "notes.txt",
            "other.csv", // no such source: not ours
            ".items.000005.csv.99.tmp",
        ]));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn parts_beyond_the_orphan_other_formats_and_unknown_sources_are_not() {
        let s = state(&incremental(4));
        let account = Account {
            state: &s,
            existed: true,
            owned: true,
            sources: ["items", "snap"].into(),
        };
        let found = account.unaccounted(&names(&[
            "items.000005.csv",
            "items.000002.jsonl",
            "snap.jsonl",
            "snap.000001.csv",
            "orders.000002.csv",
        ]));
        let reasons: Vec<(&str, &str)> = found
            .iter()
            .map(|(n, w)| (n.as_str(), w.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("items.000002.jsonl", "source `items` is recorded in csv"),
                (
                    "items.000005.csv",
                    "beyond part 000003, the last committed part of source `items`"
                ),
                ("orders.000002.csv", "the state has no source `orders`"),
                (
                    "snap.000001.csv",
                    "source `snap` is recorded as a full sync"
                ),
                ("snap.jsonl", "source `snap` is recorded in csv"),
            ]
        );
    }

    #[test]
    fn a_state_that_does_not_know_the_folder_accounts_for_nothing() {
        let empty = state(r#"{"version": 1, "sources": {}}"#);
        let files = names(&["items.000001.csv", "snap.csv"]);
        // A fresh (or mistyped) state on a folder without a manifest: nothing is its own.
        let fresh = Account {
            state: &empty,
            existed: false,
            owned: false,
            sources: ["items", "snap"].into(),
        };
        assert_eq!(fresh.unaccounted(&files).len(), 2);
        // The state file was deleted while its folder remains: nothing is its own.
        let deleted = Account {
            owned: true,
            ..fresh
        };
        assert_eq!(deleted.unaccounted(&files).len(), 2);
        // The state exists and owns the folder: a first commit's orphans are tolerated.
        let first_commit = Account {
            existed: true,
            owned: true,
            ..deleted
        };
        assert!(first_commit.unaccounted(&files).is_empty());
        assert_eq!(
            first_commit
                .unaccounted(&names(&["items.000002.csv"]))
                .len(),
            1
        );
    }
}
