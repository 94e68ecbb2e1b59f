//! Pagination: where the next page is, from what the last one said.
//!
//! Each page fetch is one resilient operation from a known position, so a retry fetches
//! the same page again and a read resumes exactly after the last delivered page.

use reqwest::header::HeaderMap;
use serde::Deserialize;
use url::Url;

use crate::HttpError;

/// How an endpoint pages.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One page holds everything.
    #[default]
    None,
    /// `?page=N&per_page=M`, pages from 1; a short page is the last.
    PageNumber {
        /// The page parameter.
        #[serde(default = "page")]
        param: String,
        /// The page-size parameter.
        #[serde(default = "per_page")]
        size_param: String,
    },
    /// `?offset=N&limit=M`; a short page is the last.
    OffsetLimit {
        /// The offset parameter.
        #[serde(default = "offset")]
        offset_param: String,
        /// The page-size parameter.
        #[serde(default = "limit")]
        limit_param: String,
    },
    /// A token from the body (JSON pointer) sent back as a parameter; none or null ends.
    Cursor {
        /// Where the next token is in the body (`/meta/next_cursor`).
        pointer: String,
        /// The parameter the token goes in.
        #[serde(default = "cursor")]
        param: String,
        /// The page-size parameter.
        #[serde(default = "limit")]
        limit_param: String,
    },
    /// The `Link: <url>; rel="next"` header; its absence ends.
    Link {
        /// The page-size parameter of the first request.
        #[serde(default = "limit")]
        limit_param: String,
    },
}

fn page() -> String {
    "page".into()
}
fn per_page() -> String {
    "per_page".into()
}
fn offset() -> String {
    "offset".into()
}
fn limit() -> String {
    "limit".into()
}
fn cursor() -> String {
    "cursor".into()
}

/// Where a read is: the next request to send, or done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Page number (from 1).
    Page(u64),
    /// Record offset.
    Offset(u64),
    /// A token from the last page (`None`: the first page).
    Token(Option<String>),
    /// The next page's full URL (`None`: the first page).
    Next(Option<Url>),
    /// Nothing more.
    Done,
}

impl Pagination {
    pub(crate) fn check(&self, at: &str) -> Result<(), HttpError> {
        if let Pagination::Cursor { pointer, .. } = self
            && !pointer.starts_with('/')
        {
            return Err(HttpError::config(
                format!("{at}.pointer"),
                format!("`{pointer}` is not a JSON pointer, expected one like `/meta/next_cursor`"),
            ));
        }
        Ok(())
    }

    /// The position of the first page.
    pub fn start(&self) -> Position {
        match self {
            Pagination::None => Position::Offset(0),
            Pagination::PageNumber { .. } => Position::Page(1),
            Pagination::OffsetLimit { .. } => Position::Offset(0),
            Pagination::Cursor { .. } => Position::Token(None),
            Pagination::Link { .. } => Position::Next(None),
        }
    }

    /// The URL for `position` (`Done` has none).
    pub fn url(&self, first: &Url, size: u32, position: &Position) -> Option<Url> {
        let mut url = first.clone();
        let size = size.to_string();
        {
            let mut q = url.query_pairs_mut();
            match (self, position) {
                (Pagination::None, _) => {}
                (Pagination::PageNumber { param, size_param }, Position::Page(n)) => {
                    q.append_pair(param, &n.to_string());
                    q.append_pair(size_param, &size);
                }
                (
                    Pagination::OffsetLimit {
                        offset_param,
                        limit_param,
                    },
                    Position::Offset(n),
                ) => {
                    q.append_pair(offset_param, &n.to_string());
                    q.append_pair(limit_param, &size);
                }
                (
                    Pagination::Cursor {
                        param, limit_param, ..
                    },
                    Position::Token(token),
                ) => {
                    q.append_pair(limit_param, &size);
                    if let Some(token) = token {
                        q.append_pair(param, token);
                    }
                }
                (Pagination::Link { limit_param }, Position::Next(None)) => {
                    q.append_pair(limit_param, &size);
                }
                (Pagination::Link { .. }, Position::Next(Some(next))) => {
                    drop(q);
                    return Some(next.clone());
                }
                _ => return None,
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Some(url)
    }

    /// The position after a page of `count` records, its body and headers.
    pub fn next(
        &self,
        position: &Position,
        size: u32,
        count: usize,
        body: &serde_json::Value,
        headers: &HeaderMap,
        base: &Url,
    ) -> Position {
        let full = count as u64 >= u64::from(size) && count > 0;
        match (self, position) {
            (Pagination::PageNumber { .. }, Position::Page(n)) if full => Position::Page(n + 1),
            (Pagination::OffsetLimit { .. }, Position::Offset(n)) if full => {
                Position::Offset(n + count as u64)
            }
            (Pagination::Cursor { pointer, .. }, _) => match body.pointer(pointer) {
                Some(serde_json::Value::String(t)) if !t.is_empty() => {
                    Position::Token(Some(t.clone()))
                }
                Some(serde_json::Value::Number(n)) => Position::Token(Some(n.to_string())),
                _ => Position::Done,
            },
            (Pagination::Link { .. }, _) => {
                next_link(headers, base).map_or(Position::Done, |u| Position::Next(Some(u)))
            }
            _ => Position::Done,
        }
    }
}

/// The `rel="next"` target of the `Link` headers, resolved against `base`.
fn next_link(headers: &HeaderMap, base: &Url) -> Option<Url> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for link in value.split(',') {
            let mut parts = link.split(';');
            let target = parts.next()?.trim();
            let is_next = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next
                && let Some(target) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>'))
            {
                return base.join(target).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_the_next_page() {
        let base = Url::parse("http://h/items").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            r#"<http://h/items?after=2>; rel="prev", </items?after=9&limit=3>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers, &base).unwrap().as_str(),
            "http://h/items?after=9&limit=3"
        );
        assert_eq!(next_link(&HeaderMap::new(), &base), None);
    }

    #[test]
    fn short_pages_end_and_tokens_come_from_the_body() {
        let first = Url::parse("http://h/x").unwrap();
        let h = HeaderMap::new();
        let body = serde_json::json!({"meta": {"next_cursor": "o20"}});
        let paged = Pagination::PageNumber {
            param: page(),
            size_param: per_page(),
        };
        assert_eq!(
            paged.next(&Position::Page(1), 10, 10, &body, &h, &first),
            Position::Page(2)
        );
        assert_eq!(
            paged.next(&Position::Page(2), 10, 9, &body, &h, &first),
            Position::Done
        );
        assert_eq!(
            paged.url(&first, 10, &Position::Page(3)).unwrap().as_str(),
            "http://h/x?page=3&per_page=10"
        );
        let cursor = Pagination::Cursor {
            pointer: "/meta/next_cursor".into(),
            param: cursor(),
            limit_param: limit(),
        };
        assert_eq!(
            cursor.next(&Position::Token(None), 10, 10, &body, &h, &first),
            Position::Token(Some("o20".into()))
        );
        let last = serde_json::json!({"meta": {"next_cursor": null}});
        assert_eq!(
            cursor.next(&Position::Token(None), 10, 10, &last, &h, &first),
            Position::Done
        );
    }
}
