//! [`HttpConnector`] as a generic [`Connector`](resilience_core::connector::Connector):
//! the declared streams are its tables, a page is a record batch, and the connection test
//! and health check fetch a first page through the same resilient operation as a read.

use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures_core::Stream;
use futures_util::StreamExt;
use resilience_core::connector::{ConnectionTestResult, serialize_millis};
use resilience_core::health::KeyHealth;
use resilience_core::{ErrorClass, Resilient, ResilientError};
use serde::Serialize;
use tokio::time::Instant;

use crate::incremental::{Checkpoint, IncrementalChunk, IncrementalOptions};
use crate::{HttpConnector, HttpError, HttpParams};

/// A declared stream, as discovery lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveredStream {
    /// Its name.
    pub name: String,
    /// Its path, relative to the base URL.
    pub path: String,
    /// The field that identifies a record, if declared.
    pub primary_key: Option<String>,
}

/// What `check_health` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpHealth {
    /// `host:port`, the breaker and rate-limit key.
    pub host: String,
    /// Whether a first page came back.
    pub reachable: bool,
    /// How long it took (serialized as milliseconds).
    #[serde(rename = "latency_ms", serialize_with = "serialize_millis")]
    pub latency: Duration,
    /// Why not, when not.
    pub error: Option<String>,
    /// The class of that error.
    pub error_class: Option<ErrorClass>,
    /// The engine's view of the key (breaker, retries, rate limit), once used.
    pub resilience: Option<KeyHealth>,
}

impl HttpConnector {
    /// The streams declared in the settings.
    pub fn discover(&self) -> Result<Vec<DiscoveredStream>, HttpError> {
        Ok(self
            .params()?
            .streams
            .iter()
            .map(|s| DiscoveredStream {
                name: s.name.clone(),
                path: s.path.clone(),
                primary_key: s.primary_key.clone(),
            })
            .collect())
    }

    /// The stream's schema: declared, or inferred from its first page the first time it
    /// is asked for and fixed from then on.
    pub async fn get_schema(&self, stream: &str) -> Result<SchemaRef, HttpError> {
        if let Some(known) = self.known_schema(stream)? {
            return Ok(known);
        }
        let spec = self.stream(stream)?;
        let schema = match &spec.schema {
            Some(columns) => crate::arrow::declared(stream, columns)?,
            None => {
                let first = self.first_url(spec, &[])?;
                let url = spec
                    .pagination
                    .url(&first, spec.page_size, &spec.pagination.start())
                    .unwrap_or(first);
                let page = self.fetch_page(&url, &spec.records).await?;
                crate::arrow::infer(stream, &page.records)?
            }
        };
        Ok(self.fix_schema(stream, schema))
    }

    /// Fetches the first page of the first stream: the outcome and how long it took.
    async fn first_page(&self) -> Result<(Result<crate::Page, HttpError>, Duration), HttpError> {
        let spec = self
            .params()?
            .streams
            .first()
            .ok_or_else(|| HttpError::config("streams", "declare at least one stream"))?;
        let first = self.first_url(spec, &[])?;
        let url = spec
            .pagination
            .url(&first, spec.page_size, &spec.pagination.start())
            .unwrap_or(first);
        let start = Instant::now();
        let outcome = self.fetch_page(&url, &spec.records).await;
        Ok((outcome, start.elapsed()))
    }

    /// Fetches the first page of the first stream: `Ok` when it came back.
    pub async fn test_connection_once(&self) -> Result<(), HttpError> {
        self.first_page().await?.0.map(|_| ())
    }

    /// Fetches the first page of the first stream and says how it went.
    pub async fn test_connection(&self) -> Result<ConnectionTestResult, HttpError> {
        let (outcome, latency) = self.first_page().await?;
        Ok(match outcome {
            Ok(page) => ConnectionTestResult {
                success: true,
                message: format!(
                    "{} answered: {} records on the first page",
                    self.host_key(),
                    page.records.len(),
                ),
                server_version: None,
                latency,
            },
            Err(e) => ConnectionTestResult {
                success: false,
                message: e.to_string(),
                server_version: None,
                latency,
            },
        })
    }

    /// Reachability and latency (a first page), and the engine's view of the host.
    pub async fn check_health(&self) -> Result<HttpHealth, HttpError> {
        let (outcome, latency) = self.first_page().await?;
        let resilience = self.resilience();
        let health = resilience.engine().health();
        Ok(HttpHealth {
            host: self.host_key().to_owned(),
            reachable: outcome.is_ok(),
            latency,
            error_class: outcome.as_ref().err().map(ResilientError::class),
            error: outcome.err().map(|e| e.to_string()),
            resilience: health.get(resilience.policy(), self.host_key()).cloned(),
        })
    }

    /// Every record of `stream` as record batches of its schema, one per page, with
    /// only `columns` when given.
    pub fn read<'a>(
        &'a self,
        stream: &'a str,
        columns: Option<&'a [&'a str]>,
    ) -> impl Stream<Item = Result<RecordBatch, HttpError>> + Send + 'a {
        let start = async move {
            let schema = self.get_schema(stream).await?;
            let projection = match columns {
                None => None,
                Some(columns) => Some(
                    columns
                        .iter()
                        .map(|c| {
                            schema.index_of(c).map_err(|_| {
                                HttpError::config(
                                    "columns",
                                    format!("stream `{stream}` has no column `{c}`"),
                                )
                            })
                        })
                        .collect::<Result<Vec<usize>, HttpError>>()?,
                ),
            };
            let pages = self.read_pages(stream, Vec::new()).map(move |page| {
                let batch = crate::arrow::decode(stream, &schema, &page?)?;
                match &projection {
                    Some(indices) => batch.project(indices).map_err(|e| HttpError::Data {
                        stream: stream.to_owned(),
                        message: e.to_string(),
                    }),
                    None => Ok(batch),
                }
            });
            Ok::<_, HttpError>(pages)
        };
        futures_util::stream::once(start)
            .map(|started| match started {
                Ok(pages) => pages.left_stream(),
                Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
            })
            .flatten()
    }
}

resilience_core::impl_connector! {
    HttpConnector {
        type Params = HttpParams;
        type Error = HttpError;
        type Table = DiscoveredStream;
        type Health = HttpHealth;
        type Schema = SchemaRef;
        type Chunk = RecordBatch;
        type Checkpoint = Checkpoint;
        type IncrementalChunk = IncrementalChunk;
        type IncrementalOptions = IncrementalOptions;
    }

    async fn discover(&self) -> Result<Vec<DiscoveredStream>, HttpError> {
        HttpConnector::discover(self)
    }

    /// Pages are as large as the stream's `page_size`; `batch_size` is not used.
    fn read<'a>(
        &'a self,
        table: &'a str,
        columns: Option<&'a [&'a str]>,
        _batch_size: usize,
    ) -> impl Stream<Item = Result<RecordBatch, HttpError>> + Send + 'a {
        HttpConnector::read(self, table, columns)
    }

    fn read_incremental<'a>(
        &'a self,
        table: &'a str,
        cursor_field: &'a str,
        from: Option<Checkpoint>,
        _batch_size: usize,
        options: IncrementalOptions,
    ) -> impl Stream<Item = Result<IncrementalChunk, HttpError>> + Send + 'a {
        HttpConnector::read_incremental(self, table, cursor_field, from, options)
    }
}
