//! Connection recovery: give the connector a chance to mend its connection before the
//! next attempt.
//!
//! A retry on a dead pool fails the same way again. After a connection-class failure the
//! engine calls the connector's [`Recovery::recover`] hook (rebuild the pool, re-read
//! credentials where enabled) before the next attempt. The [`RecoveryGate`] bounds this to
//! `max_attempts` per `check_interval`, so a flapping server cannot make every call
//! rebuild the pool. While the breaker is open, the engine calls [`Recovery::probe`]
//! every `check_interval`, so the breaker can close when the server is back even if no
//! user traffic arrives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::policy::RecoveryPolicy;
use resilience_policy::ErrorClass;

/// A boxed, sendable future (used by the object-safe [`Recovery`] trait).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why recovery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryCause {
    /// The class of the failure that triggered it.
    pub class: ErrorClass,
    /// Whether to re-read credentials (the policy enables `credential_refresh`).
    pub refresh_credentials: bool,
    /// The operation that failed.
    pub operation: &'static str,
}

/// What a recovery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The connection was mended, and the connector checked that it works again.
    Mended,
    /// Nothing needed mending (the failed path does not use what recovery mends, or it
    /// was mended a moment ago), and why.
    NotNeeded(String),
}

/// The connector's recovery hook.
pub trait Recovery: Send + Sync + 'static {
    /// Mends the connection (rebuild the pool, refresh credentials). Only
    /// [`Recovered::Mended`] counts as a recovery (in health, metrics and the journal):
    /// return it only once the mended connection was seen to work. An `Err` says why the
    /// mending did not work; it is reported and counted, and the next attempt still runs.
    fn recover(&self, cause: RecoveryCause) -> BoxFuture<'_, Result<Recovered, String>>;

    /// Whether the dependency answers now (a cheap, bounded check).
    fn probe(&self) -> BoxFuture<'_, bool>;
}

/// Bounds recoveries to `max_attempts` per `check_interval` window.
#[derive(Debug)]
pub struct RecoveryGate {
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    max_attempts: u32,
    interval: Duration,
    started: Instant,
    used: u32,
}

impl RecoveryGate {
    /// A gate with an empty window.
    pub fn new(policy: &RecoveryPolicy) -> Self {
        RecoveryGate {
            window: Mutex::new(Window {
                max_attempts: policy.max_attempts.get(),
                interval: policy.check_interval,
                started: Instant::now(),
                used: 0,
            }),
        }
    }

    /// Applies a reloaded policy; the current window keeps what it has used.
    pub fn reconfigure(&self, policy: &RecoveryPolicy) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        w.max_attempts = policy.max_attempts.get();
        w.interval = policy.check_interval;
    }

    /// Takes a place in the current window; `false` when the window is full.
    pub fn try_enter(&self, now: Instant) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(w.started) >= w.interval {
            (w.started, w.used) = (now, 0);
        }
        if w.used < w.max_attempts {
            w.used += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gate_admits_max_attempts_per_window() {
        let gate = RecoveryGate::new(&RecoveryPolicy {
            max_attempts: 3.try_into().unwrap(),
            check_interval: Duration::from_secs(30),
            ..RecoveryPolicy::default()
        });
        let now = Instant::now();
        assert_eq!((0..5).filter(|_| gate.try_enter(now)).count(), 3);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(gate.try_enter(Instant::now()));
    }
}
