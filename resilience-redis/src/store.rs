//! [`RedisStore`]: the [`SharedStore`] a profile's `[store] backend = "redis"` names.

use std::collections::HashMap;
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

    /// Asks for the lease on `source` of `pipeline` for `ttl` (see [`lease`](crate::lease)).
    /// `Err` when the store does not answer: no lease is held then.
    pub async fn acquire(
        &self,
        pipeline: &str,
        source: &str,
        ttl: Duration,
    ) -> Result<Grant, Unavailable> {
        let (key, fence) = (
            self.lease_key(pipeline, source),
            self.fence_key(pipeline, source),
        );
        let ms = ttl.as_millis() as u64;
        let worker = &self.inner.worker;
        let reply: i64 = self
            .inner
            .link
            .run(|mut conn| async move {
                self.inner.leases[0]
                    .key(key)
                    .key(fence)
                    .arg(worker)
                    .arg(ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await
            .map_err(Unavailable::from)?;
        Ok(if reply > 0 {
            Grant::Held(SourceLease {
                pipeline: pipeline.to_owned(),
                source: source.to_owned(),
                token: reply as u64,
                ttl,
            })
        } else {
            Grant::Taken(Duration::from_millis(reply.unsigned_abs()))
        })
    }

    /// Extends `lease` by its TTL; `Ok(false)` when it was lost (lapsed and taken).
    pub async fn renew(&self, lease: &SourceLease) -> Result<bool, Unavailable> {
        let key = self.lease_key(&lease.pipeline, &lease.source);
        let ms = lease.ttl.as_millis() as u64;
        self.lease_call(1, key, None, lease, &[ms.to_string()])
            .await
    }

    /// Gives `lease` back at once (when its source is done).
    pub async fn release(&self, lease: &SourceLease) -> Result<bool, Unavailable> {
        let key = self.lease_key(&lease.pipeline, &lease.source);
        self.lease_call(2, key, None, lease, &[]).await
    }

    /// Writes the checkpoint of `lease`'s source, only while `lease` is current:
    /// `Ok(false)` when a later lease fenced this one off (nothing written).
    pub async fn put_checkpoint(
        &self,
        lease: &SourceLease,
        value: &str,
    ) -> Result<bool, Unavailable> {
        let key = self.lease_key(&lease.pipeline, &lease.source);
        let state = self.state_key(&lease.pipeline);
        let args = [lease.source.clone(), value.to_owned()];
        self.lease_call(3, key, Some(state), lease, &args).await
    }

    /// The checkpoint last written for `source` of `pipeline`.
    pub async fn checkpoint(
        &self,
        pipeline: &str,
        source: &str,
    ) -> Result<Option<String>, Unavailable> {
        let state = self.state_key(pipeline);
        self.inner
            .link
            .run(|mut conn| async move {
                redis::cmd("HGET")
                    .arg(state)
                    .arg(source)
                    .query_async(&mut conn)
                    .await
            })
            .await
            .map_err(Unavailable::from)
    }

    async fn lease_call(
        &self,
        script: usize,
        key: String,
        second: Option<String>,
        lease: &SourceLease,
        extra: &[String],
    ) -> Result<bool, Unavailable> {
        let worker = &self.inner.worker;
        let reply: i64 = self
            .inner
            .link
            .run(|mut conn| async move {
                let mut call = self.inner.leases[script].prepare_invoke();
                call.key(key);
                if let Some(second) = second {
                    call.key(second);
                }
                call.arg(worker).arg(lease.token).arg(extra);
                call.invoke_async(&mut conn).await
            })
            .await
            .map_err(Unavailable::from)?;
        Ok(reply == 1)
    }

    fn lease_key(&self, pipeline: &str, source: &str) -> String {
        format!("{}:lease:{pipeline}:{source}", self.inner.prefix)
    }

    fn fence_key(&self, pipeline: &str, source: &str) -> String {
        format!("{}:fence:{pipeline}:{source}", self.inner.prefix)
    }

    fn state_key(&self, pipeline: &str) -> String {
        format!("{}:state:{pipeline}", self.inner.prefix)
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

    fn find_view(&self, policy: &str, key: &str) -> Option<Arc<View>> {
        let views = self.views.read().unwrap_or_else(|p| p.into_inner());
        views
            .get(policy)?
            .get(key)
            .map(|(_, view)| Arc::clone(view))
    }

    /// The view of a breaker, created (CLOSED) on first use.
    fn view_of(&self, policy: &str, key: &str) -> Arc<View> {
        if let Some(view) = self.find_view(policy, key) {
            return view;
        }
        let mut views = self.views.write().unwrap_or_else(|p| p.into_inner());
        let (_, view) = views
            .entry(policy.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_insert_with(|| {
                let name = self.breaker_key(policy, key);
                (name, Arc::new(View::new(self.origin)))
            });
        Arc::clone(view)
    }

    /// Refreshes every view from Redis in one round trip.
    async fn poll(&self) {
        let (keys, views): (Vec<String>, Vec<Arc<View>>) = {
            let views = self.views.read().unwrap_or_else(|p| p.into_inner());
            views
                .values()
                .flat_map(HashMap::values)
                .map(|(name, view)| (name.clone(), Arc::clone(view)))
                .unzip()
        };
        if keys.is_empty() {
            return;
        }
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                let mut call = self.view.prepare_invoke();
                for key in &keys {
                    call.key(key);
                }
                call.invoke_async(&mut conn).await
            })
            .await;
        if let Ok(reply) = reply {
            for (view, row) in views.iter().zip(reply.chunks_exact(3)) {
                view.update(row[0], row[1], row[2]);
            }
        }
    }

    async fn lease(&self, breaker: BreakerRef<'_>) -> Lease {
        let view = self.view_of(breaker.policy, breaker.key);
        let key = self.breaker_key(breaker.policy, breaker.key);
        let needed = breaker.settings.success_threshold.get();
        let recovery = breaker.settings.recovery_timeout.as_micros() as u64;
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                self.lease
                    .key(key)
                    .arg(needed)
                    .arg(recovery)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        match reply.as_deref() {
            Ok([state, failures, left, granted]) => {
                view.update(*state, *failures, *left);
                if *granted == 1 {
                    Lease::Granted
                } else {
                    let retry_in = Duration::from_micros((*left).max(0) as u64);
                    Lease::Refused {
                        retry_in: retry_in.max(POLL),
                    }
                }
            }
            // Redis away: the local breaker alone decides (the rate limit says what
            // `on_unavailable` does).
            _ => Lease::Granted,
        }
    }

    async fn record(&self, breaker: String, view: Arc<View>, args: [u64; 4]) {
        let reply: Result<Vec<i64>, _> = self
            .link
            .run(|mut conn| async move {
                self.record
                    .key(breaker)
                    .arg(&args[..])
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        if let Ok([state, failures, left]) = reply.as_deref() {
            view.update(*state, *failures, *left);
        }
    }

    fn index_key(&self) -> String {
        format!("{}:m:index", self.prefix)
    }

    async fn flush(&self) -> bool {
        let counts = self.counters.take();
        if counts.is_empty() {
            return true;
        }
        let mut args: Vec<String> = vec![KEEP.as_secs().to_string()];
        for (name, values) in &counts {
            for (counter, n) in COUNTERS.iter().zip(values) {
                if *n > 0 {
                    args.extend([name.clone(), (*counter).to_owned(), n.to_string()]);
                }
            }
        }
        let index = self.index_key();
        let added: Result<i64, _> =
            self.link
                .run(|mut conn| async move {
                    self.add.key(index).arg(&args).invoke_async(&mut conn).await
                })
                .await;
        if added.is_err() {
            self.counters.restore(counts);
        }
        added.is_ok()
    }

    async fn fleet_report(&self) -> Option<FleetReport> {
        let workers_key = self.workers_key();
        let pattern = format!("{}:cb:*", self.prefix);
        let (now, workers, breakers): (Vec<String>, Vec<(String, f64)>, Vec<String>) = self
            .link
            .run(|mut conn| async move {
                let now: Vec<String> = redis::cmd("TIME").query_async(&mut conn).await?;
                let workers: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(&workers_key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut conn)
                    .await?;
                let mut breakers = Vec::new();
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    breakers.extend(keys);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                Ok((now, workers, breakers))
            })
            .await
            .ok()?;
        let now_ms =
            now.first()?.parse::<u64>().ok()? * 1000 + now.get(1)?.parse::<u64>().ok()? / 1000;
        let mut report = FleetReport::default();
        for (id, at) in workers {
            let age = Duration::from_millis(now_ms.saturating_sub(at as u64));
            if age <= fleet::WORKER_TTL {
                report.workers.push((id, age));
            }
        }
        report.workers.sort_by_key(|(_, age)| *age);
        let states: Vec<i64> = if breakers.is_empty() {
            Vec::new()
        } else {
            let keys = breakers.clone();
            self.link
                .run(|mut conn| async move {
                    let mut call = self.view.prepare_invoke();
                    for key in &keys {
                        call.key(key);
                    }
                    call.invoke_async(&mut conn).await
                })
                .await
                .ok()?
        };
        let head = format!("{}:cb:", self.prefix);
        for (name, row) in breakers.iter().zip(states.chunks_exact(3)) {
            let Some((policy, key)) = name.strip_prefix(&head).and_then(|n| n.split_once(':'))
            else {
                continue;
            };
            report.breakers.push(FleetBreaker {
                policy: policy.to_owned(),
                key: key.to_owned(),
                state: match row[0] {
                    1 if row[2] > 0 => BreakerState::Open,
                    1 | 2 => BreakerState::HalfOpen,
                    _ => BreakerState::Closed,
                },
                failures: row[1].clamp(0, i64::from(u32::MAX)) as u32,
                open_for: Duration::from_micros(row[2].max(0) as u64),
            });
        }
        report
            .breakers
            .sort_by(|a, b| (&a.policy, &a.key).cmp(&(&b.policy, &b.key)));
        let index = self.index_key();
        let sums: Vec<String> = self
            .link
            .run(|mut conn| async move { self.sum.key(index).invoke_async(&mut conn).await })
            .await
            .ok()?;
        let mut rows = sums.split(String::is_empty);
        for row in rows.by_ref() {
            let Some((name, pairs)) = row.split_first() else {
                continue;
            };
            let Some((policy, key)) = name.split_once('|') else {
                continue;
            };
            let counters = pairs
                .chunks_exact(2)
                .filter_map(|kv| Some((kv[0].clone(), kv[1].parse().ok()?)))
                .collect();
            report
                .last_hour
                .insert((policy.to_owned(), key.to_owned()), counters);
        }
        Some(report)
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

/// Whether the fleet shares this breaker: `mode = "consecutive"` (a `ratio` breaker's
/// sliding window stays local to each process).
fn shares(breaker: BreakerRef<'_>) -> bool {
    breaker.settings.mode == BreakerMode::Consecutive
}

/// The store did not answer within its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shared store did not answer")]
pub struct Unavailable;

impl From<Down> for Unavailable {
    fn from(_: Down) -> Unavailable {
        Unavailable
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
