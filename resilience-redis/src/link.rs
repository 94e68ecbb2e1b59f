//! The link to Redis: one multiplexed connection, every request bounded by the store's
//! timeout, and the up/down state that decides whether a request is tried at all.
//!
//! A request that fails or runs past the timeout marks the store down (logged once) and
//! drops the connection. While it is down, requests fail at once without touching the
//! network, except one *probe* per `probe_interval`, claimed by whichever caller comes
//! first: it reconnects and, if Redis answers, marks the store up again (logged once).
//! So no call ever waits more than one timeout for Redis, and a dead server costs the
//! fleet one probe per interval per process, not one timeout per call.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisResult};

/// The store did not answer; the request was not made or did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Down;

pub(crate) struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    timeout: Duration,
    probe_interval: Duration,
    /// Shown in logs and errors (it never holds a password).
    pub(crate) url: String,
    conn: Mutex<Option<MultiplexedConnection>>,
    down: AtomicBool,
    /// Bumped each time the store goes down, so fallback state starts afresh per outage.
    outages: AtomicU64,
    /// While down: microseconds since `origin` before which no probe is made.
    next_probe: AtomicU64,
    origin: Instant,
}

impl Link {
    pub(crate) fn new(client: Client, url: String, timeout: Duration) -> Link {
        Link {
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            client,
            timeout,
            probe_interval: (timeout * 5).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            url,
            conn: Mutex::new(None),
            down: AtomicBool::new(false),
            outages: AtomicU64::new(0),
            next_probe: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// Whether the last request failed.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// How many times the store has gone down.
    pub(crate) fn outages(&self) -> u64 {
        self.outages.load(Ordering::Acquire)
    }

    /// The request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    fn micros(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Runs `request` on the connection within the timeout, or says the store is down.
    pub(crate) async fn run<T, F, Fut>(&self, request: F) -> Result<T, Down>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if self.is_down() {
            // Claim the probe, or give up at once.
            let now = self.micros();
            let next = self.next_probe.load(Ordering::Acquire);
            let claimed = now >= next
                && self
                    .next_probe
                    .compare_exchange(
                        next,
                        now + self.probe_interval.as_micros() as u64,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok();
            if !claimed {
                return Err(Down);
            }
        }
        let started = Instant::now();
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let conn = match conn {
            Some(conn) => conn,
            None => {
                let connected = tokio::time::timeout(
                    self.timeout,
                    self.client
                        .get_multiplexed_async_connection_with_config(&self.config),
                )
                .await;
                match connected {
                    Ok(Ok(conn)) => {
                        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
                        conn
                    }
                    Ok(Err(e)) => return Err(self.failed(&e.to_string())),
                    Err(_) => return Err(self.failed("connecting timed out")),
                }
            }
        };
        let left = self.timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, request(conn)).await {
            Ok(Ok(value)) => {
                if self.down.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        store = %self.url,
                        "shared store answers again: back to the shared rate limits"
                    );
                }
                Ok(value)
            }
            Ok(Err(e)) => Err(self.failed(&e.to_string())),
            Err(_) => Err(self.failed("request timed out")),
        }
    }

    /// Marks the store down after a failed request: drops the connection, schedules the
    /// next probe, and logs the switch once per outage.
    fn failed(&self, why: &str) -> Down {
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.next_probe.store(
            self.micros() + self.probe_interval.as_micros() as u64,
            Ordering::Release,
        );
        if !self.down.swap(true, Ordering::AcqRel) {
            self.outages.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(
                store = %self.url,
                timeout = ?self.timeout,
                error = why,
                "shared store unavailable: falling back as on_unavailable says until it answers"
            );
        }
        Down
    }
}
