//! The pipeline file as written: what serde reads, before any key is resolved or
//! checked against another. Unknown keys are errors here already.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use serde::Deserialize;
use toml::Spanned;

use crate::sync::config::SyncMode;
use crate::sync::connection::RawConnection;
use crate::sync::workers;

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::sync) enum SourceType {
    Postgres,
    Http,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub(super) batch_size: Option<NonZeroUsize>,
    pub(super) commit_rows: Option<NonZeroUsize>,
    pub(super) page_size: Option<Spanned<toml::Value>>,
    pub(super) page_memory_mb: Option<Spanned<NonZeroUsize>>,
    pub(super) partitions: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::sync) struct RawSource {
    pub(in crate::sync) name: Spanned<String>,
    #[serde(rename = "type")]
    pub(in crate::sync) kind: SourceType,
    pub(in crate::sync) connection: Option<Spanned<String>>,
    pub(in crate::sync) table: Option<Spanned<String>>,
    pub(in crate::sync) settings: Option<Spanned<String>>,
    pub(in crate::sync) stream: Option<Spanned<String>>,
    pub(in crate::sync) cursor_param: Option<Spanned<String>>,
    pub(in crate::sync) lookback: Option<Spanned<String>>,
    pub(in crate::sync) sync_mode: SyncMode,
    pub(in crate::sync) cursor_field: Option<Spanned<String>>,
    pub(in crate::sync) policy: Option<Spanned<String>>,
    pub(in crate::sync) batch_size: Option<NonZeroUsize>,
    pub(in crate::sync) null_cursor: Option<Spanned<RawNullCursor>>,
    pub(in crate::sync) lag: Option<Spanned<toml::Value>>,
    pub(in crate::sync) page_size: Option<Spanned<toml::Value>>,
    pub(in crate::sync) page_memory_mb: Option<Spanned<NonZeroUsize>>,
    pub(in crate::sync) partitions: Option<Spanned<toml::Value>>,
}

/// `null_cursor = "skip" | "error"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::sync) enum RawNullCursor {
    Skip,
    Error,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    #[serde(default)]
    pub(super) pipeline: RawSettings,
    #[serde(default)]
    pub(super) connections: BTreeMap<String, Spanned<RawConnection>>,
    pub(super) sources: Vec<Spanned<RawSource>>,
    pub(super) state: Option<Spanned<workers::RawState>>,
}
