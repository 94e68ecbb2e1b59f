//! [`HttpConnector`]: configuration, the one network operation (`fetch_page`) and the
//! recovery hook.
//!
//! Every request goes through `fetch_page`, a `#[resilient_operation]` under the
//! connector's policy (`api` unless set) keyed by `host:port`, so every call to one API
//! shares one breaker and one rate limit, and a `Retry-After` holds them all. Nothing
//! here sleeps or retries by hand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arrow_schema::SchemaRef;
use resilience_core::connector::ConnectorState;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use resilience_core::{
    BoxFuture, Engine, Recovered, Recovery, RecoveryCause, Resilience, Resilient,
    resilient_operation,
};
use tokio::time::Instant;
use url::Url;

use crate::auth::Credentials;
use crate::classify::{classify, transport_class};
use crate::config::{HttpParams, StreamSpec};
use crate::error::shown;
use crate::{HttpError, retry_after};

/// A page as the server sent it: its records, the rest of the body, its headers.
#[derive(Debug, Clone)]
pub struct Page {
    /// The records (the array at the stream's `records` pointer).
    pub records: Vec<serde_json::Value>,
    /// The body with the records taken out (for cursor tokens).
    pub body: serde_json::Value,
    /// The answer's headers (for `Link`).
    pub headers: HeaderMap,
}

/// A REST API connector.
pub struct HttpConnector {
    engine: Option<Engine>,
    setup: Option<Arc<Setup>>,
}

struct Setup {
    params: HttpParams,
    base: Url,
    host: String,
    client: reqwest::Client,
    credentials: Arc<Credentials>,
    resilience: Resilience,
    /// Schemas fixed so far, by stream.
    schemas: Mutex<HashMap<String, SchemaRef>>,
    /// Whether an answer has come back.
    answered: AtomicBool,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The parameters hold no secret (only where to read it), the credentials do.
        f.debug_struct("HttpConnector")
            .field("params", &self.setup.as_ref().map(|s| &s.params))
            .finish_non_exhaustive()
    }
}

impl Default for HttpConnector {
    fn default() -> Self {
        HttpConnector::new()
    }
}

impl HttpConnector {
    /// A connector on the process-wide engine ([`Engine::global`]).
    pub fn new() -> Self {
        HttpConnector {
            engine: None,
            setup: None,
        }
    }

    /// A connector on `engine` (shared breakers and limits, custom policies).
    pub fn with_engine(engine: Engine) -> Self {
        HttpConnector {
            engine: Some(engine),
            setup: None,
        }
    }

    /// Checks `params`, reads the credential once and enables the policy.
    pub fn configure(&mut self, params: HttpParams) -> Result<(), HttpError> {
        self.setup = None;
        let base = params.check()?;
        let host = match (base.host_str(), base.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => {
                return Err(HttpError::config(
                    "base_url",
                    "the URL has no host and port",
                ));
            }
        };
        let credentials = Arc::new(Credentials::load(params.auth.clone())?);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| HttpError::config("client", e.to_string()))?;
        let engine = self
            .engine
            .clone()
            .unwrap_or_else(|| Engine::global().clone());
        let hook = Arc::new(Refresh {
            credentials: Arc::clone(&credentials),
            host: host.clone(),
        });
        let resilience = Resilience::new(engine, &params.policy)
            .map_err(|e| HttpError::config("policy", e.to_string()))?
            .with_key(host.clone())
            .with_recovery(hook);
        self.setup = Some(Arc::new(Setup {
            params,
            base,
            host,
            client,
            credentials,
            resilience,
            schemas: Mutex::default(),
            answered: AtomicBool::new(false),
        }));
        Ok(())
    }

    /// `Created` before `configure`, `Ready` once the API answered, else `Configured`.
    pub fn state(&self) -> ConnectorState {
        match &self.setup {
            None => ConnectorState::Created,
            Some(s) if s.answered.load(Ordering::Relaxed) => ConnectorState::Ready,
            Some(_) => ConnectorState::Configured,
        }
    }

    /// The settings in force.
    pub fn params(&self) -> Result<&HttpParams, HttpError> {
        Ok(&self.setup()?.params)
    }

    pub(crate) fn known_schema(&self, stream: &str) -> Result<Option<SchemaRef>, HttpError> {
        let setup = self.setup()?;
        let schemas = setup.schemas.lock().unwrap_or_else(|e| e.into_inner());
        Ok(schemas.get(stream).cloned())
    }

    /// Keeps the first schema fixed for `stream` (a racing inference loses).
    pub(crate) fn fix_schema(&self, stream: &str, schema: SchemaRef) -> SchemaRef {
        let Some(setup) = self.setup.as_deref() else {
            return schema;
        };
        let mut schemas = setup.schemas.lock().unwrap_or_else(|e| e.into_inner());
        schemas.entry(stream.to_owned()).or_insert(schema).clone()
    }

    fn setup(&self) -> Result<&Setup, HttpError> {
        self.setup
            .as_deref()
            .ok_or_else(|| HttpError::config("connector", "not configured: call configure first"))
    }

    /// The rate-limit and breaker key: `host:port` of the base URL.
    pub fn host_key(&self) -> &str {
        self.setup.as_deref().map_or("unconfigured", |s| &s.host)
    }

    /// The declared stream named `name`.
    pub fn stream(&self, name: &str) -> Result<&StreamSpec, HttpError> {
        let setup = self.setup()?;
        setup
            .params
            .streams
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = setup
                    .params
                    .streams
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                HttpError::config(
                    "stream",
                    format!("no stream `{name}`, expected one of: {}", known.join(", ")),
                )
            })
    }

    /// The URL of a stream's first page, with `extra` query parameters.
    pub fn first_url(
        &self,
        stream: &StreamSpec,
        extra: &[(String, String)],
    ) -> Result<Url, HttpError> {
        let setup = self.setup()?;
        let mut url = setup.base.join(&stream.path).map_err(|e| {
            HttpError::config(format!("streams.{}.path", stream.name), e.to_string())
        })?;
        if !extra.is_empty() {
            url.query_pairs_mut().extend_pairs(extra);
        }
        Ok(url)
    }

    /// Fetches one page: one resilient operation, retried as the policy says, honouring
    /// `Retry-After`, re-reading the credential once after a `401`.
    #[resilient_operation(name = "fetch_page")]
    pub async fn fetch_page(&self, url: &Url, records: &str) -> Result<Page, HttpError> {
        let setup = self.setup()?;
        let request = setup.credentials.apply(setup.client.get(url.clone()));
        let response = request.send().await.map_err(|e| transport(url, e))?;
        let (wall, now) = (SystemTime::now(), Instant::now());
        setup.answered.store(true, Ordering::Relaxed);
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| transport(url, e))?;
        if let Some(class) = classify(&setup.params.rules, status, &headers, &body) {
            let not_before = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after::parse(v, wall, now));
            return Err(HttpError::Status {
                status,
                url: shown(url),
                class,
                not_before,
                excerpt: excerpt(&body),
            });
        }
        let mut body: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| HttpError::Body {
                url: shown(url),
                message: format!("not JSON: {e}"),
            })?;
        let found = if records.is_empty() {
            Some(body.take())
        } else {
            body.pointer_mut(records).map(serde_json::Value::take)
        };
        let records = match found {
            Some(serde_json::Value::Array(records)) => records,
            Some(serde_json::Value::Null) | None => {
                return Err(HttpError::Body {
                    url: shown(url),
                    message: format!("no array of records at `{records}`"),
                });
            }
            Some(other) => {
                return Err(HttpError::Body {
                    url: shown(url),
                    message: format!("`{records}` holds {}, expected an array", kind(&other)),
                });
            }
        };
        Ok(Page {
            records,
            body,
            headers,
        })
    }
}

impl Resilient for HttpConnector {
    fn resilience(&self) -> &Resilience {
        match &self.setup {
            Some(setup) => &setup.resilience,
            None => {
                static UNCONFIGURED: std::sync::OnceLock<Resilience> = std::sync::OnceLock::new();
                UNCONFIGURED.get_or_init(|| {
                    Resilience::new(Engine::builtin(), "api")
                        .expect("the built-in presets define the api policy")
                        .with_key("unconfigured")
                })
            }
        }
    }
}

fn transport(url: &Url, error: reqwest::Error) -> HttpError {
    let class = transport_class(&error);
    // reqwest's message names the URL with its query; say it without.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    HttpError::Transport {
        url: shown(url),
        class,
        message,
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], body.len()),
        None => text.to_owned(),
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The recovery hook: re-read the credential after an `auth` answer; a transport
/// failure needs nothing mended (the client opens a fresh connection).
struct Refresh {
    credentials: Arc<Credentials>,
    host: String,
}

impl Recovery for Refresh {
    fn recover(&self, cause: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>> {
        Box::pin(async move {
            if !cause.refresh_credentials {
                return Ok(Recovered::NotNeeded(
                    "the HTTP client opens a fresh connection by itself".into(),
                ));
            }
            match self.credentials.refresh() {
                Ok(true) => Ok(Recovered::Mended),
                Ok(false) => Ok(Recovered::NotNeeded(
                    "the credential has not changed".into(),
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let connect = tokio::net::TcpStream::connect(self.host.as_str());
            matches!(
                tokio::time::timeout(Duration::from_secs(2), connect).await,
                Ok(Ok(_))
            )
        })
    }
}
