//! [`RedisStore`]: the [`SharedStore`] a profile's `[store] backend = "redis"` names.

use std::sync::Arc;
use std::time::Duration;

use redis::{Client, IntoConnectionInfo, Script};
use resilience_core::policy::{OnUnavailable, StoreBackend, StorePolicy};
use resilience_core::shared::{BucketRef, Reservation, SharedStore, StoreFuture};
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::fleet::{self, HEARTBEAT, WORKER_TTL, Workers};
use crate::gcra::{self, Answer, Fallback};
use crate::link::Link;

/// Rate limits shared through one Redis server by every process that names it.
///
/// Cheap to share (`Arc`); one store serves a whole engine. Creating one makes no
/// request: the first call connects, so a process starts whether Redis is up or not (and
/// then behaves as `on_unavailable` says). Each store reports its worker id every
/// [`HEARTBEAT`](crate::fleet::HEARTBEAT) from a background task, which ends when the
/// store is dropped.
pub struct RedisStore {
    inner: Arc<Inner>,
    heartbeat: Option<JoinHandle<()>>,
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
}

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
        if policy.backend != StoreBackend::Redis {
            return Err(StoreError::Backend);
        }
        let url_error = |e: redis::RedisError| StoreError::Url {
            url: policy.url.clone(),
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
            link: Link::new(client, policy.url.clone(), policy.timeout),
            prefix: policy.prefix.clone(),
            on_unavailable: policy.on_unavailable,
            reserve: Script::new(gcra::RESERVE),
            report: Script::new(fleet::REPORT),
            fallback: Fallback::default(),
            workers: Workers::default(),
            worker: fleet::worker_id(),
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
            }
        });
        Ok(RedisStore {
            inner,
            heartbeat: Some(heartbeat),
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

    /// Whether the last request to the store failed (calls run on the fallback).
    pub fn is_unavailable(&self) -> bool {
        self.inner.link.is_down()
    }

    /// The Redis key of a shared bucket.
    pub fn bucket_key(&self, policy: &str, key: &str) -> String {
        self.inner.bucket_key(policy, key)
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

impl Inner {
    fn bucket_key(&self, policy: &str, key: &str) -> String {
        format!("{}:rl:{policy}:{key}", self.prefix)
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
}
