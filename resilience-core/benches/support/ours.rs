//! Our engine as a contender: every policy on, with a rate limit that never throttles.
//!
//! The policy is loaded the way an operator's would be, from a policy folder, so the
//! benchmark measures the engine exactly as configured in production. It extends the
//! `db` preset (retry, budget, breaker, recovery, timeouts) and only lifts the rate limit
//! far above anything one machine can call.

use std::fs;
use std::path::PathBuf;

use resilience_core::policy::LoadOptions;
use resilience_core::{Call, Engine, PolicySet, Resilience, Resilient, resilient_operation};

use super::{BenchError, Contender, work};

/// The policy the benchmark runs under.
pub const POLICY: &str = "bench";
/// The rate-limit and breaker key.
pub const KEY: &str = "127.0.0.1:5432";

const POLICY_FILE: &str = r#"
[policy.bench]
extends = "db"

[policy.bench.rate_limit]
enabled = true
requests_per_minute = 4000000000   # about 67 million a second: never throttles here
burst = 4000000000
when_limited = "wait"
"#;

/// The engine with every policy on.
#[derive(Clone)]
pub struct Ours {
    engine: Engine,
}

/// Loads the `bench` policy from a throwaway policy folder and checks that every
/// policy is on.
pub fn policies() -> PolicySet {
    let dir = std::env::temp_dir().join(format!("resilience-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("create the policy folder");
    fs::write(dir.join("default.toml"), POLICY_FILE).expect("write the policy file");
    let loaded = PolicySet::load(&LoadOptions {
        dir: Some(PathBuf::from(&dir)),
        profile: None,
    });
    fs::remove_dir_all(&dir).expect("remove the policy folder");
    let policies = loaded.expect("the bench policy loads");
    let policy = policies.get(POLICY).expect("the bench policy exists");
    assert_eq!(policy.retry.max_attempts.get(), super::MAX_ATTEMPTS);
    assert!(policy.retry.budget.enabled, "retry budget on");
    assert!(policy.circuit_breaker.enabled, "breaker on");
    assert!(policy.rate_limit.enabled, "rate limiter on");
    assert!(policy.recovery.enabled, "recovery on");
    assert_eq!(policy.timeout.attempt, super::ATTEMPT_TIMEOUT);
    policies
}

impl Ours {
    /// An engine over [`policies`].
    pub fn new() -> Self {
        Ours {
            engine: Engine::new(policies()),
        }
    }
}

impl Contender for Ours {
    const NAME: &'static str = "resilience-core Engine::run";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        self.engine
            .run(Call::new(POLICY, "work").key(KEY), || work(x))
            .await
    }
}

/// The engine as a connector author uses it: a `#[resilient_operation]` method on a
/// receiver whose `Resilience` names the policy and key.
#[derive(Clone)]
pub struct OursMacro {
    resilience: Resilience,
}

impl OursMacro {
    /// A receiver bound to the `bench` policy and [`KEY`].
    pub fn new() -> Self {
        let resilience = Resilience::new(Engine::new(policies()), POLICY)
            .expect("the bench policy exists")
            .with_key(KEY);
        OursMacro { resilience }
    }

    #[resilient_operation(name = "work")]
    async fn work(&self, x: u64) -> Result<u64, BenchError> {
        work(x).await
    }
}

impl Resilient for OursMacro {
    fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}

impl Contender for OursMacro {
    const NAME: &'static str = "resilience-core #[resilient_operation]";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        self.work(x).await
    }
}

/// The engine as a tower layer (`--features tower`): `ResilienceLayer` around
/// `service_fn(work)`, under the same policy and key.
#[cfg(feature = "tower")]
#[derive(Clone)]
pub struct OursLayer<S> {
    service: S,
}

/// [`OursLayer`] with the `bench` policy and [`KEY`].
#[cfg(feature = "tower")]
pub fn ours_layer() -> OursLayer<
    impl tower::Service<u64, Response = u64, Error = BenchError, Future: Send> + Clone + Send + 'static,
> {
    let resilience = Resilience::new(Engine::new(policies()), POLICY)
        .expect("the bench policy exists")
        .with_key(KEY);
    let service = tower::ServiceBuilder::new()
        .layer(resilience_core::ResilienceLayer::from_resilience(
            resilience,
        ))
        .service_fn(work);
    OursLayer { service }
}

#[cfg(feature = "tower")]
impl<S> Contender for OursLayer<S>
where
    S: tower::Service<u64, Response = u64, Error = BenchError, Future: Send>
        + Clone
        + Send
        + 'static,
{
    const NAME: &'static str = "resilience-core ResilienceLayer (tower)";

    async fn call(&mut self, x: u64) -> Result<u64, BenchError> {
        use tower::ServiceExt;
        self.service.ready().await?.call(x).await
    }
}
