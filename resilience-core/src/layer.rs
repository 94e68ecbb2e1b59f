//! A tower [`Layer`]: any tower [`Service`] (a tonic client, a hyper or reqwest stack)
//! runs under the same policies as `#[resilient_operation]` methods.
//!
//! Each call of the wrapped service is one engine run: every attempt waits for the inner
//! service to be ready and calls it with a clone of the request, under the attempt
//! deadline, so a service stuck in `poll_ready` times out like one stuck answering. The
//! request must therefore be `Clone`, as for tower's own `Retry`. The inner service's
//! error type classifies its failures ([`ResilientError`]) and carries the engine's
//! verdict when the engine gives up.
//!
//! The breaker and rate-limit key is the policy's default key unless a key function
//! picks one per request (for example the request's host). With the default key, the
//! runtime state is resolved once per layer, as for a `Resilience`; a key function costs
//! one lookup per call, as [`Engine::run`] does.
//!
//! The response future is boxed (a tower service has to name its future type, and the
//! engine's is an `async` block): one heap allocation per call, which the engine's own
//! paths do not make.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::engine::Engine;
use crate::error::ResilientError;
use crate::resilience::{Resilience, UnknownPolicyError};
use crate::run::{Call, Run};

/// The operation name a layer reports unless told otherwise.
pub const DEFAULT_OPERATION: &str = "call";

/// Runs the services it wraps under one policy (see the module docs).
#[derive(Clone)]
pub struct ResilienceLayer<K = DefaultKey> {
    resilience: Resilience,
    operation: &'static str,
    key: K,
}

impl<K> std::fmt::Debug for ResilienceLayer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilienceLayer")
            .field("resilience", &self.resilience)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// The key of a layer without a key function: the policy's default key.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultKey;

/// Picks the breaker and rate-limit key of a request; `None` means the default key.
///
/// Implemented by [`DefaultKey`] and by every `Fn(&Req) -> K` where `K: AsRef<str>`.
pub trait KeyFn<Req> {
    /// The key's type (`&'static str`, `Arc<str>`, `String`...).
    type Key: AsRef<str>;
    /// The key of `request`.
    fn key(&self, request: &Req) -> Option<Self::Key>;
}

impl<Req> KeyFn<Req> for DefaultKey {
    type Key = &'static str;

    fn key(&self, _: &Req) -> Option<&'static str> {
        None
    }
}

impl<Req, F, K> KeyFn<Req> for F
where
    F: Fn(&Req) -> K,
    K: AsRef<str>,
{
    type Key = K;

    fn key(&self, request: &Req) -> Option<K> {
        Some(self(request))
    }
}

impl ResilienceLayer {
    /// A layer running services under `policy` of `engine`, keyed by the policy's
    /// default key.
    pub fn new(engine: Engine, policy: &str) -> Result<Self, UnknownPolicyError> {
        Ok(ResilienceLayer::from_resilience(Resilience::new(
            engine, policy,
        )?))
    }

    /// A layer using a `Resilience`'s engine, policy, default key and recovery hook.
    pub fn from_resilience(resilience: Resilience) -> Self {
        ResilienceLayer {
            resilience,
            operation: DEFAULT_OPERATION,
            key: DefaultKey,
        }
    }
}

impl<K> ResilienceLayer<K> {
    /// Picks each request's breaker and rate-limit key with `key`.
    pub fn key<F>(self, key: F) -> ResilienceLayer<F> {
        ResilienceLayer {
            resilience: self.resilience,
            operation: self.operation,
            key,
        }
    }

    /// The operation name in events, health and metrics (default `"call"`).
    pub fn operation(mut self, name: &'static str) -> Self {
        self.operation = name;
        self
    }
}

impl<S, K: Clone> Layer<S> for ResilienceLayer<K> {
    type Service = ResilienceService<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        ResilienceService {
            inner,
            resilience: self.resilience.clone(),
            operation: self.operation,
            key: self.key.clone(),
        }
    }
}

/// A service running under a [`ResilienceLayer`]'s policy.
#[derive(Clone)]
pub struct ResilienceService<S, K = DefaultKey> {
    inner: S,
    resilience: Resilience,
    operation: &'static str,
    key: K,
}

impl<S, K> std::fmt::Debug for ResilienceService<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilienceService")
            .field("resilience", &self.resilience)
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// The response future of a [`ResilienceService`].
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, K, Req> Service<Req> for ResilienceService<S, K>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: ResilientError + Send + Sync,
    K: KeyFn<Req>,
    K::Key: Send + 'static,
    Req: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Response, S::Error>;

    /// Always ready: each attempt waits for the inner service itself, under its deadline.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = self.key.key(&request);
        let call = Called {
            inner: self.inner.clone(),
            resilience: self.resilience.clone(),
            operation: self.operation,
        };
        Box::pin(call.run(key, request))
    }
}

/// What one call of the service owns.
struct Called<S> {
    inner: S,
    resilience: Resilience,
    operation: &'static str,
}

impl<S> Called<S> {
    async fn run<Req, K>(
        mut self,
        key: Option<K>,
        mut request: Req,
    ) -> Result<S::Response, S::Error>
    where
        S: Service<Req>,
        S::Error: ResilientError,
        K: AsRef<str>,
        Req: Clone,
    {
        let resilience = &self.resilience;
        let mut call = Call::new(resilience.policy(), self.operation);
        if let Some(hook) = resilience.recovery() {
            call = call.recovery(hook);
        }
        let mut run = match &key {
            Some(key) => Run::new(resilience.engine(), call.key(key.as_ref())),
            None => Run::resolved_or_new(
                resilience.engine(),
                call.key(resilience.key()),
                resilience.default_slot(),
            ),
        };
        let inner = &mut self.inner;
        loop {
            // Built once admitted: the request is cloned for an attempt that runs.
            let step = run.step::<Result<S::Response, S::Error>, _, _>(|| {
                // Borrowed mutably, so the call's future is `Send` whenever `Req` is (a
                // shared borrow would need `Req: Sync`).
                let request: &mut Req = &mut request;
                let (service, request) = (&mut *inner, request.clone());
                async move {
                    poll_fn(|cx| service.poll_ready(cx)).await?;
                    service.call(request).await
                }
            });
            if let Some(done) = step.await {
                return done;
            }
        }
    }
}
