//! How a source is read: page sizing and partitions.
//!
//! ```toml
//! [pipeline]
//! page_size = "auto"     # or a number of rows for every page
//! page_memory_mb = 16    # the most memory one adaptive page may take
//! partitions = 1         # or a number of key ranges read in parallel, or "auto"
//! ```
//!
//! Each key may also be set on a source, which wins over `[pipeline]`. Pages start at
//! `batch_size` rows and adapt unless `page_size` fixes them; an incremental source reads
//! them in one stream, in cursor order, and its part files then hold chunks of exactly
//! `page_size` rows when it is fixed. `partitions` applies to full sources only (the
//! pipeline's value is ignored by incremental ones, and set on an incremental source it is
//! an error). A partitioned full sync writes the rows of all partitions into the one
//! snapshot file, in the order the pages arrive: each partition's rows are in key order,
//! the partitions' runs interleave.

use std::num::NonZeroUsize;
use std::ops::Range;

use connector_postgres::{DEFAULT_PAGE_MEMORY, PageSize, Partitions, ReadOptions};
use toml::Spanned;

use crate::error::CliError;

/// The read keys as written, at pipeline or source level.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadKeys<'a> {
    /// `page_size`.
    pub page_size: Option<&'a Spanned<toml::Value>>,
    /// `page_memory_mb`.
    pub page_memory_mb: Option<&'a Spanned<NonZeroUsize>>,
    /// `partitions`.
    pub partitions: Option<&'a Spanned<toml::Value>>,
}

/// The read options of a source: its own keys over the pipeline's.
pub fn resolve(
    source: ReadKeys<'_>,
    pipeline: ReadKeys<'_>,
    batch_size: usize,
    at: &impl Fn(Range<usize>, String) -> CliError,
) -> Result<ReadOptions, CliError> {
    let mut options = ReadOptions::new(batch_size);
    if let Some(value) = source.page_size.or(pipeline.page_size) {
        options.page_size = match count_or_auto(value, "page_size", at)? {
            None => PageSize::Adaptive,
            Some(rows) => PageSize::Fixed(rows.get()),
        };
    }
    if let Some(mb) = source.page_memory_mb.or(pipeline.page_memory_mb) {
        options.page_memory = mb.get_ref().get().saturating_mul(1 << 20);
    } else {
        options.page_memory = DEFAULT_PAGE_MEMORY;
    }
    if let Some(value) = source.partitions.or(pipeline.partitions) {
        options.partitions = match count_or_auto(value, "partitions", at)? {
            None => Partitions::Auto,
            Some(n) => Partitions::Count(n),
        };
    }
    Ok(options)
}

/// A positive whole number (`Some`) or `"auto"` (`None`).
fn count_or_auto(
    value: &Spanned<toml::Value>,
    key: &str,
    at: &impl Fn(Range<usize>, String) -> CliError,
) -> Result<Option<NonZeroUsize>, CliError> {
    match value.get_ref() {
        toml::Value::String(s) if s == "auto" => Ok(None),
        toml::Value::Integer(n) => usize::try_from(*n)
            .ok()
            .and_then(NonZeroUsize::new)
            .map(Some)
            .ok_or_else(|| {
                at(
                    value.span(),
                    format!(
                        "{key} must be at least 1, got {n}; expected a whole number or \"auto\""
                    ),
                )
            }),
        other => Err(at(
            value.span(),
            format!(
                "invalid {key} {}, expected a whole number or \"auto\"",
                crate::echo::clip(&other.to_string())
            ),
        )),
    }
}

/// The pool a source's connector needs for `options`: one connection per partition and one
/// holding their snapshot.
pub fn pool_for(options: &ReadOptions, configured: u32) -> u32 {
    let partitions = match options.partitions {
        Partitions::Count(n) => n.get(),
        Partitions::Auto => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    if partitions <= 1 {
        return configured;
    }
    configured.max(u32::try_from(partitions + 1).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use resilience_core::policy::PolicySet;

    use super::*;
    use crate::sync::config::{Pipeline, load};

    fn load_with(
        tag: &str,
        mode: &str,
        pipeline: &str,
        source: &str,
    ) -> Result<Pipeline, CliError> {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(format!("read-{tag}.toml"));
        std::fs::write(
            &path,
            format!(
                "[pipeline]\n{pipeline}\n[connections.a]\nurl = \"postgres://u@127.0.0.1:1/d\"\n\n\
                 [[sources]]\nname = \"t\"\ntype = \"postgres\"\nconnection = \"a\"\n\
                 table = \"t\"\nsync_mode = \"{mode}\"\ncursor_field = \"c\"\n{source}"
            ),
        )
        .unwrap();
        let result = load(Path::new(&path), &PolicySet::builtin(), None);
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn defaults_adapt_in_one_stream() {
        let p = load_with("defaults", "full", "", "").unwrap();
        let read = &p.sources[0].read;
        assert_eq!(read.page_size, PageSize::Adaptive);
        assert_eq!(read.partitions, Partitions::default());
        assert_eq!(read.page_memory, DEFAULT_PAGE_MEMORY);
        assert_eq!(p.sources[0].params.pool_size, 5);
    }

    #[test]
    fn a_source_overrides_the_pipeline_and_the_pool_fits_the_partitions() {
        let p = load_with(
            "override",
            "full",
            "partitions = 2\npage_size = 1000\npage_memory_mb = 8",
            "partitions = 8\n",
        )
        .unwrap();
        let source = &p.sources[0];
        assert_eq!(
            source.read.partitions,
            Partitions::Count(NonZeroUsize::new(8).unwrap())
        );
        assert_eq!(source.read.page_size, PageSize::Fixed(1000));
        assert_eq!(source.read.page_memory, 8 << 20);
        assert_eq!(
            source.params.pool_size, 9,
            "a connection per partition and one more"
        );
        let p = load_with(
            "auto",
            "full",
            "partitions = \"auto\"\npage_size = \"auto\"",
            "",
        )
        .unwrap();
        assert_eq!(p.sources[0].read.partitions, Partitions::Auto);
        assert_eq!(p.sources[0].read.page_size, PageSize::Adaptive);
    }

    #[test]
    fn bad_values_and_incremental_sources_are_located_errors() {
        for (tag, pipeline, source, line_col, want) in [
            (
                "zero",
                "partitions = 0",
                "",
                ":2:14: ",
                "partitions must be at least 1, got 0",
            ),
            (
                "word",
                "",
                "page_size = \"big\"\n",
                ":13:13: ",
                "invalid page_size \"big\"",
            ),
        ] {
            let err = load_with(tag, "full", pipeline, source).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(text.contains(line_col) && text.contains(want), "{text}");
            assert!(text.contains("a whole number or \"auto\""), "{text}");
        }
        let err =
            load_with("incr", "incremental", "partitions = 4", "partitions = 2\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(":13:14: source `t`: `partitions` only applies to sync_mode = \"full\""),
            "{text}"
        );
        // At pipeline level the keys are for the full sources; an incremental one ignores them.
        assert!(load_with("incr-pipeline", "incremental", "partitions = 4", "").is_ok());
    }

    #[test]
    fn an_incremental_source_adapts_unless_its_page_size_is_fixed() {
        let p = load_with("incr-default", "incremental", "batch_size = 700", "").unwrap();
        let source = &p.sources[0];
        assert!(source.incremental.adaptive_pages);
        assert_eq!(source.batch_size, 700, "the first page's size");
        assert_eq!(source.incremental.page_memory, Some(DEFAULT_PAGE_MEMORY));

        let p = load_with(
            "incr-fixed",
            "incremental",
            "batch_size = 700\npage_memory_mb = 4",
            "page_size = 250\n",
        )
        .unwrap();
        let source = &p.sources[0];
        assert!(!source.incremental.adaptive_pages);
        assert_eq!(source.batch_size, 250, "every page, and so every chunk");
        assert_eq!(source.incremental.page_memory, Some(4 << 20));

        let p = load_with(
            "incr-auto",
            "incremental",
            "page_size = 90",
            "page_size = \"auto\"\n",
        )
        .unwrap();
        assert!(p.sources[0].incremental.adaptive_pages, "the source wins");
    }
}
