//! An HTTP API to test REST connectors against: paginated JSON from PostgreSQL tables,
//! with faults switched on per request.
//!
//! The data is real (a table the test filled), so a test compares what a connector read
//! with the table itself. Each table is served under four pagination styles, the ones
//! APIs in the field use:
//!
//! | path | request | response |
//! |---|---|---|
//! | `/page/{table}` | `?page=N&per_page=M` (pages from 1) | `{"data": [...], "page": N, "has_more": bool}` |
//! | `/offset/{table}` | `?offset=N&limit=M` | `{"data": [...]}` |
//! | `/cursor/{table}` | `?limit=M[&cursor=T]` | `{"data": [...], "meta": {"next_cursor": T or null}}` |
//! | `/link/{table}` | `?limit=M[&after=T]` | `[...]`, with `Link: <url>; rel="next"` while there is more |
//!
//! Rows come in primary-key order, or by `(cursor column, primary key)` when the request
//! has `updated_since=<value>`, which keeps the rows whose cursor is at or after the
//! value (incremental reads). A page holding fewer rows than asked for is the last.
//! Faults ([`Fault`]) are queued and played one per request; every request is recorded
//! with its arrival time ([`Request`]).

mod auth;
mod faults;
mod log;
mod pages;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use tokio::task::JoinHandle;

pub use faults::{Fault, RetryAfter};
pub use log::Request;

use crate::SupportError;

/// A table the server serves: its name, primary key and optional cursor column (all
/// `[a-z0-9_]`, so they never need quoting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's name, also its path segment.
    pub name: String,
    /// The primary-key column (one column).
    pub primary_key: String,
    /// The column `updated_since` filters and orders by.
    pub cursor: Option<String>,
}

impl Table {
    /// A table keyed by `primary_key`, without a cursor column.
    pub fn new(name: &str, primary_key: &str) -> Table {
        Table {
            name: name.to_owned(),
            primary_key: primary_key.to_owned(),
            cursor: None,
        }
    }

    /// The same table, with `column` as its cursor for `updated_since`.
    pub fn cursor(mut self, column: &str) -> Table {
        self.cursor = Some(column.to_owned());
        self
    }
}

/// State shared by the request handlers and the test.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) tables: Vec<pages::Served>,
    pub(crate) faults: Mutex<faults::Faults>,
    pub(crate) secret: Mutex<Option<String>>,
    pub(crate) log: Mutex<Vec<Request>>,
}

/// A running API server on a free loopback port; stopped when dropped.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ApiServer {
    /// Serves `tables` from `pool` on 127.0.0.1, requiring `secret` when given. The
    /// pool's session settings decide how values print (set `TimeZone` to UTC for
    /// stable timestamps).
    pub async fn start(
        pool: PgPool,
        tables: Vec<Table>,
        secret: Option<String>,
    ) -> Result<ApiServer, SupportError> {
        let mut served = Vec::with_capacity(tables.len());
        for table in tables {
            served.push(pages::Served::check(&pool, table).await?);
        }
        let shared = Arc::new(Shared {
            pool,
            tables: served,
            faults: Mutex::default(),
            secret: Mutex::new(secret),
            log: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| SupportError::TestServer(format!("bind the API server: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SupportError::TestServer(format!("API server address: {e}")))?;
        let app = pages::router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ApiServer { addr, shared, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues `fault` for the next `times` requests after those already queued.
    pub fn push_fault(&self, fault: Fault, times: usize) {
        self.faults().push(fault, times);
    }

    /// Lets `count` requests through, after those already queued, before the faults
    /// queued next.
    pub fn pass(&self, count: usize) {
        self.faults().pass(count);
    }

    /// Requests still to meet a queued fault (or a queued pass).
    pub fn faults_pending(&self) -> usize {
        self.faults().pending()
    }

    /// Forgets the queued faults.
    pub fn clear_faults(&self) {
        self.faults().clear();
    }

    /// Accepts only `secret` from now on (`None`: anything).
    pub fn set_secret(&self, secret: Option<String>) {
        *self.shared.secret.lock().unwrap_or_else(|e| e.into_inner()) = secret;
    }

    /// Every request handled so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, faults::Faults> {
        self.shared.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
