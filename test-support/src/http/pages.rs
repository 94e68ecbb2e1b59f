//! The request handler: a fault if one is queued, else the credential check and a page
//! of the table, rendered by PostgreSQL itself (`json_agg`).
//!
//! Every pagination style reads the same (offset, limit) window of the same ordering;
//! cursor tokens (`o<offset>`) are opaque to the client. A page with fewer rows than the
//! limit is the last one.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use sqlx::{AssertSqlSafe, PgPool};

use super::faults::{Fault, RetryAfter};
use super::log::Request;
use super::{Shared, Table, auth};
use crate::SupportError;

/// The largest page the server hands out.
const MAX_LIMIT: i64 = 10_000;

/// A table checked at start-up, with its cursor column's SQL type.
#[derive(Debug)]
pub(crate) struct Served {
    table: Table,
    cursor_type: Option<String>,
}

impl Served {
    /// Checks that the names are plain and that the columns exist.
    pub(crate) async fn check(pool: &PgPool, table: Table) -> Result<Served, SupportError> {
        let names = [
            Some(&table.name),
            Some(&table.primary_key),
            table.cursor.as_ref(),
        ];
        for name in names.into_iter().flatten() {
            if !crate::postgres::is_valid_database_name(name) {
                return Err(SupportError::TestServer(format!(
                    "`{name}` is not a plain name, expected 1 to 63 of [a-z0-9_]"
                )));
            }
        }
        column_type(pool, &table.name, &table.primary_key).await?;
        let cursor_type = match &table.cursor {
            Some(column) => Some(column_type(pool, &table.name, column).await?),
            None => None,
        };
        Ok(Served { table, cursor_type })
    }
}

async fn column_type(pool: &PgPool, table: &str, column: &str) -> Result<String, SupportError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
    )
    .bind(format!("\"{table}\""))
    .bind(column)
    .fetch_optional(pool)
    .await?;
    found.ok_or_else(|| {
        SupportError::TestServer(format!("table `{table}` has no column `{column}`"))
    })
}

/// The routes: `/{style}/{table}`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{style}/{table}", get(handle))
        .with_state(shared)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((style, table)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let at = Instant::now();
    let wall = SystemTime::now();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let fault = shared
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .next();
    let mut not_before = None;
    let mut truncated = false;
    let response = match fault {
        Some(Fault::Throttle(retry_after)) => {
            let (response, until) = throttled(retry_after, wall);
            not_before = until;
            response
        }
        Some(Fault::Unavailable) => error(StatusCode::SERVICE_UNAVAILABLE, "deploy in progress"),
        Some(Fault::ExpireSecret(next)) => {
            *shared.secret.lock().unwrap_or_else(|e| e.into_inner()) = Some(next);
            error(StatusCode::UNAUTHORIZED, "token expired")
        }
        other => {
            if let Some(Fault::Slow(delay)) = other {
                tokio::time::sleep(delay).await;
            }
            let page = page(&shared, &style, &table, &headers, &query).await;
            if other == Some(Fault::Truncate) && page.status() == StatusCode::OK {
                truncated = true;
                truncate(page).await
            } else {
                page
            }
        }
    };
    let record = Request {
        at,
        wall,
        target: redact(&uri),
        status: response.status().as_u16(),
        not_before,
        truncated,
    };
    shared
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(record);
    response
}

/// A 429 and the moment it allows the next request.
fn throttled(retry_after: RetryAfter, wall: SystemTime) -> (Response, Option<SystemTime>) {
    let (value, until) = match retry_after {
        RetryAfter::Seconds(seconds) => (
            Some(seconds.to_string()),
            Some(wall + Duration::from_secs(seconds)),
        ),
        RetryAfter::Date(after) => {
            let exact = (wall + after)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let whole = exact.as_secs() + u64::from(exact.subsec_nanos() > 0);
            let date = UNIX_EPOCH + Duration::from_secs(whole);
            (Some(httpdate::fmt_http_date(date)), Some(date))
        }
        RetryAfter::Absent => (None, None),
    };
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "slow down");
    if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    (response, until)
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = format!("{{\"error\":\"{message}\"}}");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The page asked for, or the client error that says why not.
async fn page(
    shared: &Shared,
    style: &str,
    table: &str,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Response {
    let secret = shared
        .secret
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(secret) = secret
        && !auth::accepts(&secret, headers, query)
    {
        return error(StatusCode::UNAUTHORIZED, "missing or invalid credentials");
    }
    let Some(served) = shared.tables.iter().find(|t| t.table.name == table) else {
        return error(StatusCode::NOT_FOUND, "no such table");
    };
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str, default: i64| -> Result<i64, String> {
        match param(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{name} must be a number")),
        }
    };
    let token = |name: &str| -> Result<i64, String> {
        match param(name) {
            None => Ok(0),
            Some(v) => v
                .strip_prefix('o')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| "invalid cursor".to_owned()),
        }
    };
    let window: Result<(i64, i64), String> = match style {
        "page" => number("per_page", 100)
            .and_then(|limit| Ok((number("page", 1)?.saturating_sub(1) * limit, limit))),
        "offset" => number("limit", 100).and_then(|limit| Ok((number("offset", 0)?, limit))),
        "cursor" => number("limit", 100).and_then(|limit| Ok((token("cursor")?, limit))),
        "link" => number("limit", 100).and_then(|limit| Ok((token("after")?, limit))),
        _ => return error(StatusCode::NOT_FOUND, "no such pagination style"),
    };
    let (offset, limit) = match window {
        Ok(w) => w,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    if !(1..=MAX_LIMIT).contains(&limit) || offset < 0 {
        return error(
            StatusCode::BAD_REQUEST,
            "limit must be 1 to 10000, offset positive",
        );
    }
    let since = param("updated_since");
    let (rows, json) = match rows(shared, served, since, offset, limit).await {
        Ok(found) => found,
        Err((status, message)) => return error(status, message),
    };
    let more = rows == limit;
    let next = more.then(|| format!("o{}", offset + limit));
    let json_response = |body: String| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    match style {
        "page" => {
            let page = offset / limit + 1;
            json_response(format!(
                "{{\"data\":{json},\"page\":{page},\"has_more\":{more}}}"
            ))
        }
        "offset" => json_response(format!("{{\"data\":{json}}}")),
        "cursor" => {
            let next = next.map_or("null".to_owned(), |t| format!("\"{t}\""));
            json_response(format!(
                "{{\"data\":{json},\"meta\":{{\"next_cursor\":{next}}}}}"
            ))
        }
        _ => {
            let mut response = json_response(json);
            if let Some(next) = next {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("127.0.0.1");
                let mut url = format!("http://{host}/link/{table}?limit={limit}&after={next}");
                if let Some(since) = since {
                    let since: String =
                        url::form_urlencoded::byte_serialize(since.as_bytes()).collect();
                    url.push_str(&format!("&updated_since={since}"));
                }
                if let Ok(value) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
                    response.headers_mut().insert(header::LINK, value);
                }
            }
            response
        }
    }
}

/// How many rows the window holds, and them as a JSON array.
async fn rows(
    shared: &Shared,
    served: &Served,
    since: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(i64, String), (StatusCode, &'static str)> {
    let table = &served.table;
    let pk = &table.primary_key;
    // Names were checked to be [a-z0-9_] and the type comes from the catalog: safe to splice.
    let (filter, order) = match (since, &table.cursor, &served.cursor_type) {
        (None, _, _) => (String::new(), format!("\"{pk}\"")),
        (Some(_), Some(cursor), Some(ty)) => (
            format!("WHERE \"{cursor}\" >= $3::{ty}"),
            format!("\"{cursor}\", \"{pk}\""),
        ),
        (Some(_), _, _) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "this table has no cursor column for updated_since",
            ));
        }
    };
    let sql = format!(
        "SELECT count(*)::int8, coalesce(json_agg(t ORDER BY {order}), '[]')::text FROM \
         (SELECT * FROM \"{}\" {filter} ORDER BY {order} LIMIT $1 OFFSET $2) t",
        table.name
    );
    let query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(sql))
        .bind(limit)
        .bind(offset);
    let query = match since {
        Some(since) => query.bind(since.to_owned()),
        None => query,
    };
    query.fetch_one(&shared.pool).await.map_err(|e| {
        let status = if e.as_database_error().is_some_and(|d| {
            d.code().as_deref() == Some("22007") || d.code().as_deref() == Some("22008")
        }) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, "query failed")
    })
}

/// The same response, announcing its whole length but sending half of it.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not buffer the page",
        );
    };
    let half = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    // The half is flushed (the stream is pending for a moment) before the connection
    // drops, so the client has the headers and part of the body, as when a proxy or the
    // server dies mid-answer.
    let chunks = futures_util::stream::iter([Some(half), None]).then(|chunk| async move {
        match chunk {
            Some(bytes) => Ok(bytes),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "truncated on purpose",
                ))
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(chunks))
}

/// The path and query with an `api_key` value hidden.
fn redact(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let shown: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            if k == "api_key" {
                format!("{k}=***")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    format!("{}?{}", uri.path(), shown.join("&"))
}
