//! `type = "http"` sources: a stream of a REST API, read by `connector-http`.
//!
//! ```toml
//! [[sources]]
//! name = "items"
//! type = "http"
//! settings = "http_api.toml"   # the API's settings, relative to the pipeline file
//! stream = "items"             # a stream declared there
//! sync_mode = "incremental"    # or "full"
//! cursor_field = "updated_at"  # incremental: the records' cursor field
//! cursor_param = "updated_since"  # optional: the request parameter carrying it
//! lookback = "0s"              # optional: re-read this window before the checkpoint
//! policy = "api"               # optional: else the settings' policy (`api` by default)
//! ```
//!
//! The API's settings live in their own file (the one `resilient health --connector http`
//! and `debug` take), so one file describes an API for every command, and a pipeline only
//! names the stream it copies. A setting the connector refuses is reported at the
//! `settings = ...` line of the pipeline, with the key at fault inside the settings file;
//! a settings file that does not parse is reported at its own `file:line:column`.
//! Credentials are only ever named there (a variable or a file), never written.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use connector_http::{HttpParams, IncrementalOptions};
use resilience_core::policy::PolicySet;
use toml::Spanned;

use crate::echo;
use crate::error::CliError;
use connector_postgres::{IncrementalOptions as PgIncremental, PgParams, ReadOptions};

use crate::sync::config::raw::RawSource;
use crate::sync::config::{DEFAULT_BATCH, Source, SyncMode};
use crate::sync::location::{Location, Locations, locate};

/// The keys of a `type = "http"` source.
#[derive(Debug, Default)]
pub struct ApiKeys<'a> {
    /// `settings = "file"`.
    pub settings: Option<&'a Spanned<String>>,
    /// `stream = "name"`.
    pub stream: Option<&'a Spanned<String>>,
    /// `cursor_param = "updated_since"`.
    pub cursor_param: Option<&'a Spanned<String>>,
    /// `lookback = "5m"`.
    pub lookback: Option<&'a Spanned<String>>,
    /// `policy = "api"`.
    pub policy: Option<&'a Spanned<String>>,
}

/// A resolved REST API source.
#[derive(Debug, Clone)]
pub struct ApiSource {
    /// The API's settings (the source's policy already set).
    pub params: HttpParams,
    /// The settings file, as the pipeline resolves it.
    pub settings: PathBuf,
    /// Incremental: the request parameter and the lookback window.
    pub options: IncrementalOptions,
}

/// What an http source requires: the settings file read and parsed, the stream declared
/// in it (with a primary key for an incremental read), a known policy, a valid lookback.
pub fn resolve(
    pipeline: &Path,
    name: &str,
    mode: SyncMode,
    keys: &ApiKeys<'_>,
    entry: Range<usize>,
    policies: &PolicySet,
    at: &impl Fn(Range<usize>, String) -> CliError,
) -> Result<(ApiSource, String), CliError> {
    let settings = keys.settings.ok_or_else(|| {
        at(
            entry.clone(),
            format!(
                "source `{name}`: type = \"http\" needs settings = \"FILE\" (the API's \
                 settings, as in pipelines/http_api.toml) and stream = \"NAME\""
            ),
        )
    })?;
    let stream = keys.stream.ok_or_else(|| {
        at(
            entry.clone(),
            format!(
                "source `{name}`: type = \"http\" needs stream = \"NAME\", one of the \
                 streams declared in its settings file"
            ),
        )
    })?;
    let file = pipeline
        .parent()
        .unwrap_or(Path::new(""))
        .join(settings.get_ref());
    let text = std::fs::read_to_string(&file).map_err(|e| {
        at(
            settings.span(),
            format!(
                "source `{name}`: cannot read the settings file {}: {e}",
                file.display()
            ),
        )
    })?;
    let mut params: HttpParams = toml::from_str(&text).map_err(|e| {
        let message = echo::plain(e.message().trim_end(), ("a table", "table"));
        let inner = locate(&file, &text, e.span().map_or(0, |s| s.start));
        at(
            settings.span(),
            format!(
                "source `{name}`: invalid API settings at {inner}: {}",
                echo::clip_quoted(&message)
            ),
        )
    })?;
    let Some(spec) = params.streams.iter().find(|s| &s.name == stream.get_ref()) else {
        let known: Vec<&str> = params.streams.iter().map(|s| s.name.as_str()).collect();
        return Err(at(
            stream.span(),
            format!(
                "source `{name}`: unknown stream {}, expected one of the streams in {}: {}",
                echo::echo(stream.get_ref()),
                file.display(),
                if known.is_empty() {
                    "(none declared under [[streams]])".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    if mode == SyncMode::Incremental && spec.primary_key.is_none() {
        return Err(at(
            stream.span(),
            format!(
                "source `{name}`: an incremental read of stream `{}` needs its primary_key \
                 (the field that identifies a record) in {}",
                spec.name,
                file.display()
            ),
        ));
    }
    let stream = spec.name.clone();
    let policy_span = match keys.policy {
        Some(policy) => {
            params.policy = policy.get_ref().clone();
            policy.span()
        }
        None => settings.span(),
    };
    if policies.get(&params.policy).is_none() {
        let known: Vec<&str> = policies.names().collect();
        return Err(at(
            policy_span,
            format!(
                "source `{name}`: unknown policy {}, expected one of: {}",
                echo::echo(&params.policy),
                known.join(", ")
            ),
        ));
    }
    let mut options = IncrementalOptions::default();
    if mode == SyncMode::Full {
        for (key, value) in [
            ("cursor_param", keys.cursor_param),
            ("lookback", keys.lookback),
        ] {
            if let Some(value) = value {
                return Err(at(
                    value.span(),
                    format!("source `{name}`: `{key}` only applies to sync_mode = \"incremental\""),
                ));
            }
        }
    }
    if let Some(param) = keys.cursor_param {
        if param.get_ref().is_empty() {
            return Err(at(
                param.span(),
                format!(
                    "source `{name}`: cursor_param must name a request parameter, such as \
                     \"updated_since\""
                ),
            ));
        }
        options.cursor_param = param.get_ref().clone();
    }
    if let Some(lookback) = keys.lookback {
        options.lookback = parse_lookback(lookback.get_ref()).map_err(|e| {
            at(
                lookback.span(),
                format!(
                    "source `{name}`: invalid lookback {}: {e}; expected a duration such as \
                     \"30s\" or \"5m\"",
                    echo::echo(lookback.get_ref())
                ),
            )
        })?;
    }
    Ok((
        ApiSource {
            params,
            settings: file,
            options,
        },
        stream,
    ))
}

/// A `type = "http"` source: the PostgreSQL keys refused, the API's settings resolved.
pub(super) fn source(
    path: &Path,
    src: &RawSource,
    entry: Range<usize>,
    policies: &PolicySet,
    at: &impl Fn(Range<usize>, String) -> CliError,
    loc: &impl Fn(Range<usize>) -> Location,
) -> Result<Source, CliError> {
    let name = src.name.get_ref();
    let span = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
    foreign_keys(
        name,
        "http",
        &[
            ("connection", span(&src.connection)),
            ("table", span(&src.table)),
            ("null_cursor", src.null_cursor.as_ref().map(Spanned::span)),
            ("lag", src.lag.as_ref().map(Spanned::span)),
            ("page_size", src.page_size.as_ref().map(Spanned::span)),
            (
                "page_memory_mb",
                src.page_memory_mb.as_ref().map(Spanned::span),
            ),
            ("partitions", src.partitions.as_ref().map(Spanned::span)),
            ("batch_size", src.batch_size.map(|_| entry.clone())),
        ],
        "settings, stream, sync_mode, cursor_field, cursor_param, lookback, policy (page \
         sizes are the stream's page_size in the settings file)",
        at,
    )?;
    let keys = ApiKeys {
        settings: src.settings.as_ref(),
        stream: src.stream.as_ref(),
        cursor_param: src.cursor_param.as_ref(),
        lookback: src.lookback.as_ref(),
        policy: src.policy.as_ref(),
    };
    let (api, stream) = resolve(
        path,
        name,
        src.sync_mode,
        &keys,
        entry.clone(),
        policies,
        at,
    )?;
    let stream_at = src.stream.as_ref().map_or(entry.clone(), Spanned::span);
    Ok(Source {
        name: name.clone(),
        params: PgParams::default(),
        table: stream,
        mode: src.sync_mode,
        cursor_field: src.cursor_field.as_ref().map(|c| c.get_ref().clone()),
        batch_size: DEFAULT_BATCH,
        read: ReadOptions::new(DEFAULT_BATCH),
        incremental: PgIncremental::new(),
        at: Locations {
            source: loc(entry),
            table: loc(stream_at),
            cursor_field: src.cursor_field.as_ref().map(|c| loc(c.span())),
            lag: src.lookback.as_ref().map(|l| loc(l.span())),
            null_cursor: None,
            connection: src.settings.as_ref().map(|s| loc(s.span())),
        },
        api: Some(api),
    })
}

fn parse_lookback(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// The keys of one source type found on a source of the other, as an error at the first.
pub fn foreign_keys(
    name: &str,
    kind: &str,
    keys: &[(&str, Option<Range<usize>>)],
    valid: &str,
    at: &impl Fn(Range<usize>, String) -> CliError,
) -> Result<(), CliError> {
    match keys
        .iter()
        .find_map(|(key, span)| span.clone().map(|s| (*key, s)))
    {
        None => Ok(()),
        Some((key, span)) => Err(at(
            span,
            format!(
                "source `{name}`: `{key}` does not apply to type = \"{kind}\" sources; \
                 their keys are {valid}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use resilience_core::policy::PolicySet;

    use crate::sync::config::{SyncMode, load};

    #[test]
    fn shipped_http_pipeline_names_streams_of_its_settings_under_the_api_policy() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/http_sync.toml");
        let pipeline = load(&path, &PolicySet::builtin(), None).unwrap();
        let got: Vec<_> = pipeline
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.table.as_str(), s.mode))
            .collect();
        assert_eq!(
            got,
            [
                ("events", "events", SyncMode::Incremental),
                ("items", "items", SyncMode::Full)
            ]
        );
        for source in &pipeline.sources {
            let api = source.api.as_ref().expect("an http source");
            assert_eq!(api.params.policy, "api");
            assert!(api.settings.ends_with("http_api.toml"));
            assert_eq!(api.options.cursor_param, "updated_since");
        }
        assert_eq!(
            pipeline.sources[0].at.cursor_field.as_ref().map(|l| l.line),
            Some(20)
        );
    }
}
