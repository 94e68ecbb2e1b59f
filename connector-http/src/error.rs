//! The connector's one error type, and how the engine sees it.
//!
//! Every error carries its class, decided once where it arose (the classification
//! rules for an answer, reqwest's error kind for a transport failure), so the engine,
//! the breaker and the caller agree on it. An answer that named a time to come back
//! (`Retry-After`) carries that moment: the engine waits until then.
//!
//! No message here holds a credential: URLs are shown without their query string (an
//! API key may ride there) and credentials are never formatted.

use resilience_core::{ErrorClass, Failure, ResilientError};
use tokio::time::Instant;

/// What can go wrong talking to an HTTP API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered, and the classification rules call the answer a failure.
    #[error("GET {url}: HTTP {status} ({class}){}", excerpt_suffix(.excerpt))]
    Status {
        /// The status code.
        status: u16,
        /// The URL, without its query string.
        url: String,
        /// The class the rules gave the answer.
        class: ErrorClass,
        /// When the server said to come back (`Retry-After`), if it said.
        not_before: Option<Instant>,
        /// The start of the body, at most 200 characters.
        excerpt: String,
    },

    /// No complete answer: refused, reset, cut short, timed out.
    #[error("GET {url}: {message}")]
    Transport {
        /// The URL, without its query string.
        url: String,
        /// `connection` or `timeout`.
        class: ErrorClass,
        /// What reqwest reported.
        message: String,
    },

    /// The answer was complete but not the JSON the stream's settings describe.
    #[error("GET {url}: {message}")]
    Body {
        /// The URL, without its query string.
        url: String,
        /// What is wrong with it.
        message: String,
    },

    /// Records that do not fit the stream's schema, or a cursor or key that is missing.
    #[error("stream `{stream}`: {message}")]
    Data {
        /// The stream.
        stream: String,
        /// What does not fit, and where.
        message: String,
    },

    /// A setting is missing or invalid; `field` names it.
    #[error("{field}: {message}")]
    Config {
        /// The setting at fault (`base_url`, `streams.orders.pagination.pointer`, ...).
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },

    /// The credential could not be read (variable unset, file missing).
    #[error("credential: {0}")]
    Credential(String),

    /// The resilience engine stopped the call (retries exhausted, circuit open, deadline).
    #[error("{0}")]
    Stopped(Box<Failure<HttpError>>),
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

impl HttpError {
    /// A configuration error naming `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        HttpError::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The engine's verdict, when the engine stopped the call.
    pub fn failure(&self) -> Option<&Failure<HttpError>> {
        match self {
            HttpError::Stopped(f) => Some(f),
            _ => None,
        }
    }

    /// The HTTP status of the answer behind this error (the last one, for a verdict).
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Stopped(f) => f.last_error.as_ref().and_then(HttpError::status),
            _ => None,
        }
    }
}

impl ResilientError for HttpError {
    fn class(&self) -> ErrorClass {
        match self {
            HttpError::Status { class, .. } | HttpError::Transport { class, .. } => *class,
            HttpError::Body { .. } | HttpError::Data { .. } => ErrorClass::Data,
            HttpError::Config { .. } | HttpError::Credential(_) => ErrorClass::Config,
            HttpError::Stopped(failure) => failure.class(),
        }
    }

    fn from_failure(failure: Failure<Self>) -> Self {
        HttpError::Stopped(Box::new(failure))
    }

    fn not_before(&self) -> Option<Instant> {
        match self {
            HttpError::Status { not_before, .. } => *not_before,
            _ => None,
        }
    }
}

/// `url` without its query string and fragment (an API key may ride in the query).
pub(crate) fn shown(url: &url::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    shown.to_string()
}
