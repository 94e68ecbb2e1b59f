//! What one call names (its policy, operation, rate-limit key and recovery hook), and
//! [`Engine::run`], which runs a call through the pipeline.

use std::future::Future;
use std::sync::Arc;

use super::Run;
use crate::engine::Engine;
use crate::error::ResilientError;
use crate::recovery::Recovery;

/// One call's policy, operation name, rate-limit key and recovery hook.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub(crate) policy: &'a str,
    pub(crate) operation: &'static str,
    pub(crate) key: Option<&'a str>,
    pub(crate) recovery: Option<&'a Arc<dyn Recovery>>,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("policy", &self.policy)
            .field("operation", &self.operation)
            .field("key", &self.key)
            .field("recovery", &self.recovery.is_some())
            .finish()
    }
}

impl<'a> Call<'a> {
    /// A call of `operation` under `policy`; the rate-limit key defaults to the policy's
    /// name.
    pub fn new(policy: &'a str, operation: &'static str) -> Self {
        Call {
            policy,
            operation,
            key: None,
            recovery: None,
        }
    }

    /// The rate-limit and breaker key (usually `host:port`).
    pub fn key(mut self, key: &'a str) -> Self {
        self.key = Some(key);
        self
    }

    /// The hook that mends the connection after connection-class failures.
    pub fn recovery(mut self, hook: &'a Arc<dyn Recovery>) -> Self {
        self.recovery = Some(hook);
        self
    }
}

impl Engine {
    /// Runs `f` under the call's policy: retries, breaker, rate limit, deadlines and
    /// recovery. Each attempt calls `f` afresh.
    pub async fn run<T, E, Fut, F>(&self, call: Call<'_>, mut f: F) -> Result<T, E>
    where
        E: ResilientError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut run = Run::new(self, call);
        loop {
            if let Some(done) = run.step::<Result<T, E>, _, _>(&mut f).await {
                return done;
            }
        }
    }
}
