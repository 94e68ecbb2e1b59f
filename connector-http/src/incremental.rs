//! Incremental reads: the records whose cursor field is at or after the checkpoint,
//! asked for with a request parameter (`updated_since`), re-reading a lookback window
//! and dropping what was already delivered.
//!
//! The parameter is inclusive on every API worth the name (records updated in the same
//! second as the checkpoint must not be lost), so a read re-reads the records at the
//! checkpoint; with a `lookback`, it re-reads that much more, which catches records an
//! API made visible late. The checkpoint remembers the `(cursor, primary key)` pairs it
//! delivered within the window, and those are skipped: a record updated again has a new
//! cursor and comes again, as it should.

use std::collections::BTreeSet;
use std::time::Duration;

use arrow_array::RecordBatch;
use futures_core::Stream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::{HttpConnector, HttpError};

/// Options of an incremental read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalOptions {
    /// The request parameter that carries the cursor (`updated_since`).
    pub cursor_param: String,
    /// How far before the checkpoint to read again (timestamp cursors only).
    pub lookback: Duration,
}

impl Default for IncrementalOptions {
    fn default() -> Self {
        IncrementalOptions {
            cursor_param: "updated_since".to_owned(),
            lookback: Duration::ZERO,
        }
    }
}

/// Where the next incremental read starts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The largest cursor value delivered, as the API wrote it.
    pub cursor: String,
    /// `(cursor, primary key)` of the records delivered within the window before it.
    pub recent: BTreeSet<(String, String)>,
}

/// One page of an incremental read and the checkpoint to store once it is durable.
#[derive(Debug, Clone)]
pub struct IncrementalChunk {
    /// The new records.
    pub batch: RecordBatch,
    /// Store this after the batch.
    pub checkpoint: Checkpoint,
}

impl HttpConnector {
    /// The records of `stream` from `from` on, by `cursor_field`; see the module docs.
    pub fn read_incremental<'a>(
        &'a self,
        stream: &'a str,
        cursor_field: &'a str,
        from: Option<Checkpoint>,
        options: IncrementalOptions,
    ) -> impl Stream<Item = Result<IncrementalChunk, HttpError>> + Send + 'a {
        let start = async move {
            let spec = self.stream(stream)?;
            let key = spec.primary_key.clone().ok_or_else(|| {
                HttpError::config(
                    format!("streams.{stream}.primary_key"),
                    "an incremental read needs the field that identifies a record",
                )
            })?;
            let schema = self.get_schema(stream).await?;
            let mut checkpoint = from.unwrap_or_default();
            let mut extra = Vec::new();
            if !checkpoint.cursor.is_empty() {
                let since = before(&checkpoint.cursor, options.lookback).map_err(|m| {
                    HttpError::config("lookback", format!("{m} (cursor `{}`)", checkpoint.cursor))
                })?;
                extra.push((options.cursor_param.clone(), since));
            }
            let lookback = options.lookback;
            let pages = self.read_pages(stream, extra).map(move |page| {
                let page = page?;
                let mut fresh = Vec::with_capacity(page.len());
                for record in page {
                    let cursor = text(&record, cursor_field, stream)?;
                    let id = text(&record, &key, stream)?;
                    let pair = (cursor, id);
                    if checkpoint.recent.contains(&pair) {
                        continue;
                    }
                    if checkpoint.cursor.is_empty() || later(&pair.0, &checkpoint.cursor) {
                        checkpoint.cursor = pair.0.clone();
                    }
                    checkpoint.recent.insert(pair);
                    fresh.push(record);
                }
                let newest = checkpoint.cursor.clone();
                checkpoint
                    .recent
                    .retain(|(cursor, _)| within(cursor, &newest, lookback));
                let batch = crate::arrow::decode(stream, &schema, &fresh)?;
                Ok(IncrementalChunk {
                    batch,
                    checkpoint: checkpoint.clone(),
                })
            });
            Ok::<_, HttpError>(pages)
        };
        futures_util::stream::once(start)
            .map(|started| match started {
                Ok(pages) => pages.left_stream(),
                Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
            })
            .flatten()
            .filter(|chunk| {
                let keep = !matches!(chunk, Ok(c) if c.batch.num_rows() == 0);
                async move { keep }
            })
    }
}

/// A field of a record as text (a string as is, a number as written).
fn text(record: &serde_json::Value, field: &str, stream: &str) -> Result<String, HttpError> {
    match record.get(field) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        other => Err(HttpError::Data {
            stream: stream.to_owned(),
            message: format!(
                "a record's `{field}` is {}, expected a string or a number",
                other.map_or("missing".to_owned(), |v| v.to_string())
            ),
        }),
    }
}

/// Whether cursor value `a` comes after `b`: as timestamps, as numbers, else as text.
fn later(a: &str, b: &str) -> bool {
    if let (Ok(a), Ok(b)) = (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        return a > b;
    }
    if let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return a > b;
    }
    a > b
}

/// The cursor value `lookback` before `cursor`.
fn before(cursor: &str, lookback: Duration) -> Result<String, String> {
    if lookback.is_zero() {
        return Ok(cursor.to_owned());
    }
    let at = chrono::DateTime::parse_from_rfc3339(cursor)
        .map_err(|_| "a lookback needs RFC 3339 timestamps in the cursor field".to_owned())?;
    let back = chrono::Duration::from_std(lookback).map_err(|e| e.to_string())?;
    Ok((at - back)
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Whether `cursor` is within `lookback` before `newest` (equal, without a lookback).
fn within(cursor: &str, newest: &str, lookback: Duration) -> bool {
    if cursor == newest {
        return true;
    }
    let (Ok(c), Ok(n)) = (
        chrono::DateTime::parse_from_rfc3339(cursor),
        chrono::DateTime::parse_from_rfc3339(newest),
    ) else {
        return false;
    };
    let back = chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::MAX);
    c >= n - back
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_measured_on_timestamps() {
        let ten = Duration::from_secs(600);
        assert_eq!(
            before("2024-01-01T00:30:00+00:00", ten).unwrap(),
            "2024-01-01T00:20:00Z"
        );
        assert_eq!(before("17", Duration::ZERO).unwrap(), "17");
        assert!(before("17", ten).is_err());
        assert!(within(
            "2024-01-01T00:21:00Z",
            "2024-01-01T00:30:00+00:00",
            ten
        ));
        assert!(!within(
            "2024-01-01T00:19:00Z",
            "2024-01-01T00:30:00+00:00",
            ten
        ));
        assert!(within("5", "5", Duration::ZERO));
        assert!(!within("4", "5", Duration::ZERO));
    }
}
