//! Reads: a stream's records page by page, each page one resilient fetch from a known
//! position, so a fault in the middle refetches that page and nothing before it.

use futures_core::Stream;
use url::Url;

use crate::paginate::Position;
use crate::{HttpConnector, HttpError, StreamSpec};

/// Where a read is.
struct Cursor {
    spec: StreamSpec,
    first: Url,
    position: Position,
}

impl HttpConnector {
    /// The records of `stream`, one item per page, with `extra` query parameters on
    /// every request (an `updated_since`, a filter).
    pub fn read_pages<'a>(
        &'a self,
        stream: &'a str,
        extra: Vec<(String, String)>,
    ) -> impl Stream<Item = Result<Vec<serde_json::Value>, HttpError>> + Send + 'a {
        futures_util::stream::try_unfold(None::<Cursor>, move |cursor| {
            let extra = extra.clone();
            async move {
                let cursor = match cursor {
                    Some(cursor) => cursor,
                    None => {
                        let spec = self.stream(stream)?.clone();
                        let first = self.first_url(&spec, &extra)?;
                        Cursor {
                            position: spec.pagination.start(),
                            spec,
                            first,
                        }
                    }
                };
                let pagination = &cursor.spec.pagination;
                let size = cursor.spec.page_size;
                let Some(url) = pagination.url(&cursor.first, size, &cursor.position) else {
                    return Ok(None);
                };
                let page = self.fetch_page(&url, &cursor.spec.records).await?;
                let position = pagination.next(
                    &cursor.position,
                    size,
                    page.records.len(),
                    &page.body,
                    &page.headers,
                    &url,
                );
                Ok(Some((page.records, Some(Cursor { position, ..cursor }))))
            }
        })
    }

    /// Every record of `stream`, in order.
    pub async fn read_all(
        &self,
        stream: &str,
        extra: Vec<(String, String)>,
    ) -> Result<Vec<serde_json::Value>, HttpError> {
        use futures_util::TryStreamExt;
        let pages: Vec<Vec<serde_json::Value>> =
            self.read_pages(stream, extra).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }
}
