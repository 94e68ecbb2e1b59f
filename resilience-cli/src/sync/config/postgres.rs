//! A `type = "postgres"` source: its connection, policy, read options and incremental
//! keys, resolved against the pipeline's `[connections]` and `[pipeline]` settings.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;

use connector_postgres::{PageSize, PgParams};
use resilience_core::policy::PolicySet;
use toml::Spanned;

use crate::echo;
use crate::error::CliError;
use crate::sync::api_source;
use crate::sync::config::raw::{RawPipeline, RawSource};
use crate::sync::config::{DEFAULT_BATCH, Source, SyncMode, incremental};
use crate::sync::location::{Location, Locations};
use crate::sync::read_options::{self, ReadKeys};

/// Resolves the source `spanned` of the pipeline file `raw`; `connections` are its
/// resolved `[connections]`, `override_url` replaces them (`--database-url`).
pub(super) fn source(
    spanned: &Spanned<RawSource>,
    raw: &RawPipeline,
    connections: &BTreeMap<&str, PgParams>,
    policies: &PolicySet,
    override_url: Option<&str>,
    at: &impl Fn(Range<usize>, String) -> CliError,
    loc: &impl Fn(Range<usize>) -> Location,
) -> Result<Source, CliError> {
    let src = spanned.get_ref();
    let name = src.name.get_ref();
    let span = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
    api_source::foreign_keys(
        name,
        "postgres",
        &[
            ("settings", span(&src.settings)),
            ("stream", span(&src.stream)),
            ("cursor_param", span(&src.cursor_param)),
            ("lookback", span(&src.lookback)),
        ],
        "connection, table, sync_mode, cursor_field, policy, batch_size, null_cursor, \
         lag, page_size, page_memory_mb, partitions",
        at,
    )?;
    let (Some(conn_name), Some(table)) = (&src.connection, &src.table) else {
        return Err(at(
            spanned.span(),
            format!(
                "source `{name}`: type = \"postgres\" needs connection = \"NAME\" (one of \
                 [connections.NAME]) and table = \"TABLE\""
            ),
        ));
    };
    let mut params = match override_url {
        Some(url) => crate::connect::params_from_url(url, "--database-url")?,
        None => connections
            .get(conn_name.get_ref().as_str())
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = connections.keys().copied().collect();
                at(
                    conn_name.span(),
                    format!(
                        "unknown connection {}, expected one of: {}",
                        echo::echo(conn_name.get_ref()),
                        if known.is_empty() {
                            "(none declared under [connections.NAME])".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?,
    };
    if let Some(policy) = &src.policy {
        if policies.get(policy.get_ref()).is_none() {
            let known: Vec<&str> = policies.names().collect();
            return Err(at(
                policy.span(),
                format!(
                    "unknown policy {}, expected one of: {}",
                    echo::echo(policy.get_ref()),
                    known.join(", ")
                ),
            ));
        }
        params.policy = policy.get_ref().clone();
    }
    if src.sync_mode == SyncMode::Incremental && src.cursor_field.is_none() {
        return Err(at(
            spanned.span(),
            format!("source `{name}`: sync_mode = \"incremental\" needs cursor_field"),
        ));
    }
    let batch_size = src
        .batch_size
        .or(raw.pipeline.batch_size)
        .map_or(DEFAULT_BATCH, NonZeroUsize::get);
    let keys = ReadKeys {
        page_size: src.page_size.as_ref(),
        page_memory_mb: src.page_memory_mb.as_ref(),
        partitions: src.partitions.as_ref(),
    };
    if let (SyncMode::Incremental, Some(partitions)) = (src.sync_mode, &src.partitions) {
        return Err(at(
            partitions.span(),
            format!(
                "source `{name}`: `partitions` only applies to sync_mode = \"full\"; an \
                 incremental source reads in one stream, in cursor order"
            ),
        ));
    }
    let pipeline_keys = ReadKeys {
        page_size: raw.pipeline.page_size.as_ref(),
        page_memory_mb: raw.pipeline.page_memory_mb.as_ref(),
        partitions: match src.sync_mode {
            SyncMode::Full => raw.pipeline.partitions.as_ref(),
            // The pipeline's partitions are for its full sources.
            SyncMode::Incremental => None,
        },
    };
    let read = read_options::resolve(keys, pipeline_keys, batch_size, at)?;
    if src.sync_mode == SyncMode::Full {
        params.pool_size = read_options::pool_for(&read, params.pool_size);
    }
    let mut incremental = incremental::options(src, name, at)?;
    let batch_size = match (src.sync_mode, read.page_size) {
        // A fixed page size is a promise about part chunks: pages of exactly that many
        // rows (the last one fewer), retries included.
        (SyncMode::Incremental, PageSize::Fixed(rows)) => {
            incremental = incremental.adaptive_pages(false);
            rows
        }
        _ => batch_size,
    };
    incremental = incremental.page_memory(read.page_memory);
    let at = Locations {
        source: loc(spanned.span()),
        table: loc(table.span()),
        cursor_field: src.cursor_field.as_ref().map(|c| loc(c.span())),
        lag: src.lag.as_ref().map(|l| loc(l.span())),
        null_cursor: src.null_cursor.as_ref().map(|n| loc(n.span())),
        connection: match override_url {
            Some(_) => None,
            None => raw
                .connections
                .get(conn_name.get_ref().as_str())
                .map(|c| loc(c.span())),
        },
    };
    Ok(Source {
        name: name.clone(),
        params,
        table: table.get_ref().clone(),
        mode: src.sync_mode,
        cursor_field: src.cursor_field.as_ref().map(|c| c.get_ref().clone()),
        batch_size,
        read,
        incremental,
        at,
        api: None,
    })
}
