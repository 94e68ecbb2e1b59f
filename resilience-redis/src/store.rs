//! [`RedisStore`]: the [`SharedStore`] a profile's `[store] backend = "redis"` names.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::{Client, IntoConnectionInfo, Script};
use resilience_core::breaker::{BreakerState, Outcome};
use resilience_core::policy::{BreakerMode, OnUnavailable, StoreBackend, StorePolicy};
use resilience_core::shared::{
    BreakerRef, BucketRef, Gate, Lease, Reservation, SharedStore, StoreFuture,
};
use tokio::task::JoinHandle;

use crate::breaker::{self, POLL, View};
use crate::error::StoreError;
use crate::fleet::{self, HEARTBEAT, WORKER_TTL, Workers};
use crate::gcra::{self, Answer, Fallback};
use crate::lease::{self, Grant, SourceLease};
use crate::link::{Down, Link};
use crate::metrics::{self, COUNTERS, Counters, FleetBreaker, FleetReport, KEEP};

mod breakers;
use breakers::shares;
mod leases;
mod report;

pub use leases::Unavailable;

/// Rate limits shared through one Redis server by every process that names it.
///
/// Cheap to share (`Arc`); one store serves a whole engine. Creating one makes no
/// request: the first call connects, so a process starts whether Redis is up or not (and
/// then behaves as `on_unavailable` says). Each store reports its worker id every
/// [`HEARTBEAT`](crate::fleet::HEARTBEAT) from a background task, which ends when the
/// store is dropped.
pub struct RedisStore {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

pub(crate) struct Inner {
    pub(crate) link: Link,
    pub(crate) prefix: String,
    on_unavailable: OnUnavailable,
    reserve: Script,
    report: Script,
    fallback: Fallback,
    workers: Workers,
    pub(crate) worker: String,
    record: Script,
    lease: Script,
    view: Script,
    /// The shared breakers this process uses, by policy and key (looked up without
    /// allocating), each with its Redis key.
    views: RwLock<Views>,
    /// The polls whose answer refreshed the views.
    polls: AtomicU64,
    origin: Instant,
    counters: Arc<Counters>,
    add: Script,
    sum: Script,
    leases: [Script; 4],
}

/// Views by policy, then key, each with its breaker's Redis key.
type Views = HashMap<String, HashMap<String, (String, Arc<View>)>>;

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.link.url)
            .field("prefix", &self.inner.prefix)
            .field("worker", &self.inner.worker)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store as `policy` describes it, its password read from its source now. Must be
    /// called inside a Tokio runtime (it starts the heartbeat task).
    pub fn new(policy: &StorePolicy) -> Result<RedisStore, StoreError> {
        RedisStore::build(policy, true)
    }

    /// A store for reading the fleet ([`fleet_report`](Self::fleet_report)) that does
    /// not count itself as a worker: it starts no background task.
    pub fn reader(policy: &StorePolicy) -> Result<RedisStore, StoreError> {
        RedisStore::build(policy, false)
    }

    fn build(policy: &StorePolicy, background: bool) -> Result<RedisStore, StoreError> {
        if policy.backend != StoreBackend::Redis {
            return Err(StoreError::Backend);
        }
        let url_error = |e: redis::RedisError| StoreError::Url {
            url: redacted(&policy.url),
            reason: e.to_string(),
        };
        let mut info = policy
            .url
            .as_str()
            .into_connection_info()
            .map_err(url_error)?;
        if let Some(password) = policy.read_password().map_err(StoreError::Password)? {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info).map_err(url_error)?;
        let inner = Arc::new(Inner {
            link: Link::new(client, redacted(&policy.url), policy.timeout),
            prefix: policy.prefix.clone(),
            on_unavailable: policy.on_unavailable,
            reserve: Script::new(gcra::RESERVE),
            report: Script::new(fleet::REPORT),
            fallback: Fallback::default(),
            workers: Workers::default(),
            worker: fleet::worker_id(),
            record: Script::new(&breaker::record_script()),
            lease: Script::new(&breaker::lease_script()),
            view: Script::new(breaker::VIEW),
            views: RwLock::default(),
            polls: AtomicU64::new(0),
            origin: Instant::now(),
            counters: Arc::default(),
            add: Script::new(metrics::ADD),
            sum: Script::new(metrics::SUM),
            leases: [
                Script::new(lease::ACQUIRE),
                Script::new(lease::RENEW),
                Script::new(lease::RELEASE),
                Script::new(lease::PUT),
            ],
        });
        if !background {
            return Ok(RedisStore {
                inner,
                tasks: Vec::new(),
            });
        }
        let polling = Arc::downgrade(&inner);
        let poller = tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = polling.upgrade() else {
                    return;
                };
                inner.poll().await;
            }
        });
        let beating = Arc::downgrade(&inner);
        let heartbeat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = beating.upgrade() else {
                    return;
                };
                inner.report().await;
                inner.flush().await;
            }
        });
        Ok(RedisStore {
            inner,
            tasks: vec![heartbeat, poller],
        })
    }

    /// This process's worker id in the fleet.
    pub fn worker_id(&self) -> &str {
        &self.inner.worker
    }

    /// The live workers the store last reported (1 before the first report).
    pub fn live_workers(&self) -> u32 {
        self.inner.workers.get()
    }

    /// Reports this worker now and reads the live count back (the heartbeat does this
    /// every [`HEARTBEAT`](crate::fleet::HEARTBEAT)); `None` when the store is away.
    pub async fn report(&self) -> Option<u32> {
        self.inner.report().await
    }

    /// The observer that counts this process's events for the fleet's health: subscribe
    /// it to the engine ([`Engine::subscribe`](resilience_core::Engine::subscribe)); the
    /// heartbeat adds the counts to Redis.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.inner.counters)
    }

    /// Adds the counts not yet added to Redis now; `false` when the store is away (they
    /// are kept for the next try).
    pub async fn flush(&self) -> bool {
        self.inner.flush().await
    }

    /// The fleet as the store sees it: live workers, shared breakers, the last hour's
    /// counters. `None` when the store does not answer.
    pub async fn fleet_report(&self) -> Option<FleetReport> {
        self.inner.fleet_report().await
    }

    /// Whether the last request to the store failed (calls run on the fallback).
    pub fn is_unavailable(&self) -> bool {
        self.inner.link.is_down()
    }

    /// The fleet's breaker of `policy` and `key` as this process sees it now (its state
    /// and consecutive failures), once a call has used it.
    pub fn breaker_view(&self, policy: &str, key: &str) -> Option<(BreakerState, u32)> {
        let view = self.inner.find_view(policy, key)?;
        Some((view.state(), view.failures()))
    }

    /// How many times this process has refreshed its breaker views from Redis (one
    /// request every [`POLL`], once a shared breaker is in use): how stale a view can be,
    /// counted in polls rather than in time.
    pub fn breaker_polls(&self) -> u64 {
        self.inner.polls.load(Ordering::Acquire)
    }

    /// The Redis key of a shared bucket.
    pub fn bucket_key(&self, policy: &str, key: &str) -> String {
        self.inner.bucket_key(policy, key)
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Inner {
    fn bucket_key(&self, policy: &str, key: &str) -> String {
        format!("{}:rl:{policy}:{key}", self.prefix)
    }

    pub(crate) fn breaker_key(&self, policy: &str, key: &str) -> String {
        format!("{}:cb:{policy}:{key}", self.prefix)
    }

    pub(crate) fn workers_key(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    async fn report(&self) -> Option<u32> {
        let key = self.workers_key();
        let ttl = WORKER_TTL.as_millis() as u64;
        let count: Result<u32, _> = self
            .link
            .run(|mut conn| async move {
                self.report
                    .key(key)
                    .arg(&self.worker)
                    .arg(ttl)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        let count = count.ok()?;
        self.workers.set(count);
        Some(count)
    }

    async fn reserve(&self, bucket: BucketRef<'_>, max_wait: Duration) -> Reservation {
        let (interval, tolerance) = gcra::figures(bucket.limit);
        let key = self.bucket_key(bucket.policy, bucket.key);
        let max_wait_us = max_wait.as_micros().min(i64::MAX as u128) as i64;
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                self.reserve
                    .key(key)
                    .arg(interval)
                    .arg(tolerance)
                    .arg(max_wait_us)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        let answer = match reply {
            Ok(reply) => Answer::from_reply(&reply),
            Err(_) => match self.on_unavailable {
                OnUnavailable::Local => self.fallback.reserve(
                    bucket.policy,
                    bucket.key,
                    bucket.limit,
                    self.workers.get(),
                    self.link.outages(),
                    max_wait,
                ),
                OnUnavailable::FailClosed => {
                    return Reservation::Unavailable {
                        reason: format!(
                            "redis at {} did not answer within {:?}",
                            self.link.url,
                            self.link.timeout()
                        ),
                    };
                }
            },
        };
        match answer {
            Answer::Go(wait) => Reservation::Go { wait },
            Answer::Limited(retry_after) => Reservation::Limited { retry_after },
        }
    }
}

impl SharedStore for RedisStore {
    fn reserve<'a>(
        &'a self,
        bucket: BucketRef<'a>,
        max_wait: Duration,
    ) -> StoreFuture<'a, Reservation> {
        Box::pin(self.inner.reserve(bucket, max_wait))
    }

    fn gate(&self, breaker: BreakerRef<'_>) -> Gate {
        if !shares(breaker) || self.inner.link.is_down() {
            return Gate::Closed;
        }
        let view = self.inner.view_of(breaker.policy, breaker.key);
        match view.state() {
            BreakerState::Closed => Gate::Closed,
            BreakerState::Open => match view.open_left() {
                left if left.is_zero() => Gate::Probe,
                retry_in => Gate::Open { retry_in },
            },
            BreakerState::HalfOpen => Gate::Probe,
        }
    }

    fn lease<'a>(&'a self, breaker: BreakerRef<'a>) -> StoreFuture<'a, Lease> {
        Box::pin(self.inner.lease(breaker))
    }

    fn record(&self, breaker: BreakerRef<'_>, outcome: Outcome) {
        if !shares(breaker) {
            return;
        }
        let view = self.inner.view_of(breaker.policy, breaker.key);
        let ok = match outcome {
            Outcome::Ignored => return,
            // A success while the fleet counts no failure changes nothing: no request.
            Outcome::Success if view.state() == BreakerState::Closed && view.failures() == 0 => {
                return;
            }
            Outcome::Success => 1,
            Outcome::Failure => 0,
        };
        let settings = breaker.settings;
        let args = [
            ok,
            u64::from(settings.failure_threshold.get()),
            settings.recovery_timeout.as_micros() as u64,
            u64::from(settings.success_threshold.get()),
        ];
        let key = self.inner.breaker_key(breaker.policy, breaker.key);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.record(key, view, args).await });
    }
}

/// `url` with any password replaced by `***`: the loader refuses a URL holding one, but a
/// [`StorePolicy`] built in code might carry it, and the URL is shown in logs and errors.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_in_urls_are_never_shown() {
        assert_eq!(
            redacted("redis://app:s3cret@10.0.0.5:6379/2"),
            "redis://app:***@10.0.0.5:6379/2"
        );
        assert_eq!(redacted("redis://:s3cret@h"), "redis://:***@h");
        assert_eq!(redacted("redis://h:6379"), "redis://h:6379");
    }
}
