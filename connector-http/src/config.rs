//! The connector's settings: the API's base URL, the credential, the classification
//! rules and the streams (one per endpoint), checked as a whole before anything is sent.

use serde::Deserialize;
use url::Url;

use crate::HttpError;
use crate::auth::Auth;
use crate::classify::Rule;
use crate::paginate::Pagination;

/// Settings of an [`HttpConnector`](crate::HttpConnector).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// `http://` or `https://` address the stream paths are relative to.
    pub base_url: String,
    /// The policy every request runs under (`api` unless set).
    #[serde(default = "default_policy")]
    pub policy: String,
    /// How requests authenticate, if they do.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Classification rules, tried in order before the defaults.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The endpoints to read.
    pub streams: Vec<StreamSpec>,
}

fn default_policy() -> String {
    "api".to_owned()
}

fn default_page_size() -> u32 {
    100
}

/// One endpoint and how to page through it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// The stream's name (what `discover` lists and `read` takes).
    pub name: String,
    /// The path, relative to the base URL.
    pub path: String,
    /// A JSON pointer to the array of records in a page (`/data`); empty: the body is
    /// the array.
    #[serde(default)]
    pub records: String,
    /// How to get the next page.
    #[serde(default)]
    pub pagination: Pagination,
    /// Records asked for per page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The field that identifies a record (for de-duplication in incremental reads).
    pub primary_key: Option<String>,
    /// The columns, when declared; else inferred from the first page and then fixed.
    pub schema: Option<Vec<crate::arrow::Column>>,
}

impl HttpParams {
    /// Checks the settings; the error names the setting at fault and what would be valid.
    pub(crate) fn check(&self) -> Result<Url, HttpError> {
        let base = Url::parse(&self.base_url).map_err(|e| {
            HttpError::config(
                "base_url",
                format!("not a URL ({e}), expected http://host[:port]/path"),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(HttpError::config(
                "base_url",
                "expected an http:// or https:// URL with a host",
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(HttpError::config(
                "base_url",
                "credentials do not belong in the URL: use [auth] with a variable or a file",
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.has_condition() {
                return Err(HttpError::config(
                    format!("rules[{i}]"),
                    "a rule needs a condition: status, header, body_contains or body_field",
                ));
            }
            if let Some(p) = &rule.body_field
                && !p.starts_with('/')
            {
                return Err(HttpError::config(
                    format!("rules[{i}].body_field"),
                    format!("`{p}` is not a JSON pointer, expected one starting with `/`"),
                ));
            }
        }
        if self.streams.is_empty() {
            return Err(HttpError::config("streams", "declare at least one stream"));
        }
        for (i, stream) in self.streams.iter().enumerate() {
            let at = |key: &str| format!("streams.{}.{key}", stream.name);
            if stream.name.is_empty() {
                return Err(HttpError::config(
                    format!("streams[{i}].name"),
                    "must not be empty",
                ));
            }
            if self.streams[..i].iter().any(|s| s.name == stream.name) {
                return Err(HttpError::config(at("name"), "declared twice"));
            }
            if !stream.records.is_empty() && !stream.records.starts_with('/') {
                return Err(HttpError::config(
                    at("records"),
                    format!(
                        "`{}` is not a JSON pointer, expected `/data` or empty",
                        stream.records
                    ),
                ));
            }
            if stream.page_size == 0 {
                return Err(HttpError::config(at("page_size"), "must be at least 1"));
            }
            base.join(&stream.path).map_err(|e| {
                HttpError::config(at("path"), format!("`{}` is not a path ({e})", stream.path))
            })?;
            stream.pagination.check(&at("pagination"))?;
            if let Some(columns) = &stream.schema {
                crate::arrow::declared(&stream.name, columns)?;
            }
        }
        Ok(base)
    }
}
