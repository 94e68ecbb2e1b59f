//! Source leases and checkpoints on [`RedisStore`] (see [`lease`](crate::lease)).

use super::*;

impl RedisStore {
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
