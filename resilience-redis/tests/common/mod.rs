//! Test support: a throwaway `redis-server` on a free port, unique key prefixes, an
//! error type, and policies with a chosen limit.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use resilience_core::policy::{OnUnavailable, StorePolicy};
use resilience_core::{Failure, Policy, PolicySet, ResilientError};

/// The Redis the tests share: `REDIS_URL`, else 127.0.0.1:6379, else a throwaway server
/// (see `test_support::redis`). Child processes get it through `REDIS_URL`.
pub fn redis_url() -> String {
    test_support::redis::url()
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{tag}-{}-{nanos}", std::process::id())
}

/// Microseconds of the wall clock (the same clock for every process on the machine).
pub fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// The error of the test operations.
#[derive(Debug, ResilientError)]
pub enum TestError {
    #[resilient(class = "connection")]
    Down,
    #[resilient(failure)]
    Stopped(Box<Failure<TestError>>),
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestError::Down => f.write_str("dependency down"),
            TestError::Stopped(failure) => failure.fmt(f),
        }
    }
}

/// A policy `shared` limited to `per_minute` with `burst`, waiting up to `max_wait`, one
/// attempt per call, no breaker.
pub fn limited(per_minute: u32, burst: u32, max_wait: Duration) -> Policy {
    let mut policy = Policy::default();
    policy.rate_limit.requests_per_minute = per_minute.try_into().unwrap();
    policy.rate_limit.burst = burst.try_into().unwrap();
    policy.rate_limit.max_wait = max_wait;
    policy.retry.max_attempts = std::num::NonZeroU32::MIN;
    policy.circuit_breaker.enabled = false;
    policy.timeout.attempt = Duration::from_secs(2);
    policy.timeout.total = Duration::from_secs(20);
    policy
}

/// `policy` as `shared` in a set whose store is at `url` under `prefix`.
pub fn shared_set(policy: Policy, url: &str, prefix: &str, on: OnUnavailable) -> PolicySet {
    let mut store = StorePolicy::redis(url);
    store.prefix = prefix.to_owned();
    store.on_unavailable = on;
    // Well under the 2 s attempt timeout, and long enough that a loaded machine's slow
    // round trip is not taken for an outage.
    store.timeout = Duration::from_millis(250);
    PolicySet::from_policies([("shared", policy)])
        .unwrap()
        .with_store(store, Vec::<String>::new())
}

/// A `redis-server` of the test's own on a free port, without persistence.
pub struct Throwaway {
    pub port: u16,
    child: Option<Child>,
}

impl Throwaway {
    pub fn start() -> Throwaway {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Throwaway { port, child: None };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, empty) and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < until, "redis-server did not start");
            std::thread::yield_now();
        }
    }

    /// Whether the server answers PING now.
    pub fn answers(&self) -> bool {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
    }

    /// SIGKILL: the server dies with its data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// `GET key` on this server.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "get", key])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        self.kill();
    }
}
