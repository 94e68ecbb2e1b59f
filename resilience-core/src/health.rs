//! Health: what each policy and key has been through, as a snapshot an operator can read.
//!
//! Counters are plain atomics bumped on the call path; the "last hour" figures come from
//! a ring of one-minute buckets, so memory stays fixed however long the process runs.
//! Operation names are kept up to a fixed number per key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use serde::Serialize;
use tokio::time::Instant;

use crate::breaker::BreakerState;
use crate::sharded::ShardedCounter;
use resilience_policy::ErrorClass;

const MINUTES: usize = 60;
const MAX_OPERATIONS: usize = 64;

/// Events counted over the last hour, in one-minute buckets.
#[derive(Debug)]
pub(crate) struct HourWindow {
    origin: Instant,
    buckets: Mutex<[(u64, u64); MINUTES]>,
}

impl HourWindow {
    fn new() -> Self {
        HourWindow {
            origin: Instant::now(),
            buckets: Mutex::new([(u64::MAX, 0); MINUTES]),
        }
    }

    fn minute(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / 60
    }

    pub(crate) fn add(&self, now: Instant) {
        let minute = self.minute(now);
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut b[(minute % MINUTES as u64) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
    }

    pub(crate) fn sum(&self, now: Instant) -> u64 {
        let minute = self.minute(now);
        let b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        b.iter()
            .filter(|(m, _)| *m != u64::MAX && *m + (MINUTES as u64) > minute && *m <= minute)
            .map(|(_, n)| n)
            .sum()
    }
}

/// One operation's counters. Calls are counted on every call, by every worker thread,
/// so they are kept per thread (on the heap: 2 kB each, for the operations used only);
/// failures are rarer and stay one atomic.
#[derive(Debug)]
struct OpCounters {
    name: &'static str,
    calls: Box<ShardedCounter>,
    failures: AtomicU64,
}

impl OpCounters {
    fn new(name: &'static str) -> Self {
        OpCounters {
            name,
            calls: Box::default(),
            failures: AtomicU64::new(0),
        }
    }
}

/// Counters for one policy and key.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) retries: AtomicU64,
    pub(crate) retries_hour: HourWindow,
    pub(crate) breaker_rejections: AtomicU64,
    pub(crate) rate_limit_waits: AtomicU64,
    pub(crate) rate_limit_rejections: AtomicU64,
    pub(crate) recoveries: AtomicU64,
    pub(crate) recovery_failures: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) gave_up: AtomicU64,
    pub(crate) budget_exhausted: AtomicU64,
    last_error: Mutex<Option<(ErrorClass, SystemTime)>>,
    /// Per-operation counters, filled in order, found without a lock. The key's call and
    /// failure totals are their sums, so a call bumps one counter, not three.
    operations: [OnceLock<OpCounters>; MAX_OPERATIONS],
    /// Calls of operations past [`MAX_OPERATIONS`] names.
    other: OpCounters,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Stats {
            retries: AtomicU64::new(0),
            retries_hour: HourWindow::new(),
            breaker_rejections: AtomicU64::new(0),
            rate_limit_waits: AtomicU64::new(0),
            rate_limit_rejections: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            recovery_failures: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            budget_exhausted: AtomicU64::new(0),
            last_error: Mutex::new(None),
            operations: [const { OnceLock::new() }; MAX_OPERATIONS],
            other: OpCounters::new("(other)"),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, class: ErrorClass) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((class, SystemTime::now()));
    }

    /// Counts a finished call of `operation`.
    #[inline]
    pub(crate) fn finish(&self, operation: &'static str, ok: bool) {
        let counters = self.operation(operation).unwrap_or(&self.other);
        counters.calls.bump();
        if !ok {
            Stats::bump(&counters.failures);
        }
    }

    /// The counters of `operation`, added on first use; `None` once every slot is taken.
    /// Found by the name's address first (an operation's name is one string literal),
    /// then by its text.
    #[inline]
    fn operation(&self, operation: &'static str) -> Option<&OpCounters> {
        for slot in &self.operations {
            match slot.get() {
                Some(c) if std::ptr::eq(c.name, operation) => return Some(c),
                Some(_) => continue,
                None => break,
            }
        }
        self.operation_by_name(operation)
    }

    /// [`operation`](Self::operation) by the name's text, adding it when new.
    #[cold]
    #[inline(never)]
    fn operation_by_name(&self, operation: &'static str) -> Option<&OpCounters> {
        let same = |c: &OpCounters| std::ptr::eq(c.name, operation) || c.name == operation;
        for slot in &self.operations {
            match slot.get() {
                Some(c) if same(c) => return Some(c),
                Some(_) => continue,
                None => {
                    let c = slot.get_or_init(|| OpCounters::new(operation));
                    // Another name may have won this slot in a race: keep looking.
                    if same(c) {
                        return Some(c);
                    }
                }
            }
        }
        None
    }

    pub(crate) fn snapshot(
        &self,
        policy: &str,
        key: &str,
        breaker: BreakerState,
        now: Instant,
    ) -> KeyHealth {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last = *self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        let mut operations = BTreeMap::<String, OperationHealth>::new();
        let named = self.operations.iter().filter_map(OnceLock::get);
        for c in named.chain(std::iter::once(&self.other)) {
            let entry = operations
                .entry(c.name.to_owned())
                .or_insert(OperationHealth {
                    calls: 0,
                    failures: 0,
                });
            entry.calls += c.calls.get();
            entry.failures += load(&c.failures);
        }
        operations.retain(|_, op| op.calls > 0);
        let calls: u64 = operations.values().map(|op| op.calls).sum();
        let failures: u64 = operations.values().map(|op| op.failures).sum();
        KeyHealth {
            policy: policy.to_owned(),
            key: key.to_owned(),
            circuit_breaker_state: breaker,
            retry_attempts_last_hour: self.retries_hour.sum(now),
            rate_limit_violations: load(&self.rate_limit_rejections),
            rate_limit_waits: load(&self.rate_limit_waits),
            rate_limit_rejections: load(&self.rate_limit_rejections),
            connection_recovery_events: load(&self.recoveries),
            recovery_failures: load(&self.recovery_failures),
            calls,
            // Read apart from `calls`, so a call finishing in between may count in one only.
            successes: calls.saturating_sub(failures),
            failures,
            // Every call makes a first attempt and every retry one more, except where the
            // breaker or the limiter refused it: derived, so the call path counts less.
            attempts: (calls + load(&self.retries))
                .saturating_sub(load(&self.breaker_rejections) + load(&self.rate_limit_rejections)),
            retries: load(&self.retries),
            timeouts: load(&self.timeouts),
            circuit_open_rejections: load(&self.breaker_rejections),
            gave_up: load(&self.gave_up),
            retry_budget_exhausted: load(&self.budget_exhausted),
            last_error_class: last.map(|(c, _)| c),
            last_error_at: last.map(|(_, t)| humantime::format_rfc3339_seconds(t).to_string()),
            operations,
        }
    }
}

/// Calls of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationHealth {
    /// Calls finished.
    pub calls: u64,
    /// Calls that ended in an error.
    pub failures: u64,
}

/// The health of one policy and rate-limit key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyHealth {
    /// The policy's name.
    pub policy: String,
    /// The rate-limit key (host).
    pub key: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub circuit_breaker_state: BreakerState,
    /// Retries started in the last hour.
    pub retry_attempts_last_hour: u64,
    /// Calls the rate limiter refused: a violation of the limit (a wait is not one).
    pub rate_limit_violations: u64,
    /// Times a call waited for a token.
    pub rate_limit_waits: u64,
    /// Calls the rate limiter refused (the same figure as `rate_limit_violations`).
    pub rate_limit_rejections: u64,
    /// Recoveries that mended the connection (the connector checked that it works).
    pub connection_recovery_events: u64,
    /// Recoveries that failed.
    pub recovery_failures: u64,
    /// Calls finished.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that ended in an error.
    pub failures: u64,
    /// Attempts made (first calls and retries).
    pub attempts: u64,
    /// Retries made since start.
    pub retries: u64,
    /// Attempts that ran out of time.
    pub timeouts: u64,
    /// Calls refused by the open breaker.
    pub circuit_open_rejections: u64,
    /// Calls the engine gave up on, with any verdict (see the `gave_up` event).
    pub gave_up: u64,
    /// Retries the retry budget refused.
    pub retry_budget_exhausted: u64,
    /// The class of the last error, if any.
    pub last_error_class: Option<ErrorClass>,
    /// When the last error happened (RFC 3339, UTC).
    pub last_error_at: Option<String>,
    /// Calls per operation name.
    pub operations: BTreeMap<String, OperationHealth>,
}

/// The health of every policy and key an engine has served, serializable to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// The profile the policies came from, if any.
    pub profile: Option<String>,
    /// One entry per policy and key, sorted.
    pub keys: Vec<KeyHealth>,
}

impl HealthReport {
    /// The entry for a policy and key.
    pub fn get(&self, policy: &str, key: &str) -> Option<&KeyHealth> {
        self.keys
            .iter()
            .find(|k| k.policy == policy && k.key == key)
    }
}
