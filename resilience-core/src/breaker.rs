//! The circuit breaker: stop calling a dependency that keeps failing.
//!
//! CLOSED lets every attempt through and counts failures: in `consecutive` mode, failed
//! attempts in a row, opening at `failure_threshold`; in `ratio` mode, the share of failed
//! attempts over a sliding `sampling_window`, opening at `failure_ratio` once the window
//! holds `minimum_calls` (so one brief fault that fails several concurrent calls at once
//! does not open it). OPEN fails calls at once without touching the dependency,
//! which gives a restarting server room to come back. After `recovery_timeout` it goes
//! HALF_OPEN and admits at most `success_threshold` probes at a time (not every waiting
//! caller); that many successes close it, one failure reopens it. Rejected calls do not
//! extend the open period, so steady traffic cannot keep a healed breaker open. Errors
//! of ignored classes (bad credentials, bad input) say nothing about the dependency's
//! health: they neither count as failures nor reset the count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::events::BreakerCause;
use crate::policy::{BreakerMode, BreakerPolicy};

mod window;

use window::SamplingWindow;

/// The three states of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// A bounded number of probes go through.
    HalfOpen,
}

impl BreakerState {
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// How an attempt ended, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency answered.
    Success,
    /// The dependency failed (a class the breaker does not ignore).
    Failure,
    /// An ignored class: says nothing about the dependency.
    Ignored,
}

/// Leave to make one attempt, from [`CircuitBreaker::acquire`]. Hand it back through
/// [`CircuitBreaker::record`] or, when the attempt never ran, [`CircuitBreaker::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Permit {
    probe: bool,
    generation: u64,
}

/// A state change, returned so the caller can report it and react (start probing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// Why.
    pub cause: BreakerCause,
}

#[derive(Debug)]
struct Inner {
    policy: BreakerPolicy,
    /// How long the current open period lasts: the policy's `recovery_timeout` when it
    /// opened, or a shorter one a reload brought in meanwhile.
    open_for: Duration,
    state: BreakerState,
    failures: u32,
    opened_at: Instant,
    probes_in_flight: u32,
    probe_successes: u32,
    /// Bumped on every transition; a permit from an older generation reports nothing.
    generation: u64,
}

/// A circuit breaker for one policy and key.
///
/// The state, generation and failure count are mirrored in atomics so that the common
/// case — a CLOSED breaker seeing a success with no failures counted — takes no lock.
#[derive(Debug)]
pub struct CircuitBreaker {
    enabled: AtomicBool,
    /// `mode = "ratio"`: successes are counted in `window` too.
    ratio: AtomicBool,
    window: SamplingWindow,
    inner: Mutex<Inner>,
    state: AtomicU8,
    generation: AtomicU64,
    failures: AtomicU32,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(policy: &BreakerPolicy) -> Self {
        CircuitBreaker {
            enabled: AtomicBool::new(policy.enabled),
            ratio: AtomicBool::new(policy.mode == BreakerMode::Ratio),
            window: SamplingWindow::new(policy.sampling_window),
            inner: Mutex::new(Inner {
                policy: policy.clone(),
                open_for: policy.recovery_timeout,
                state: BreakerState::Closed,
                failures: 0,
                opened_at: Instant::now(),
                probes_in_flight: 0,
                probe_successes: 0,
                generation: 0,
            }),
            state: AtomicU8::new(0),
            generation: AtomicU64::new(0),
            failures: AtomicU32::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(
        &self,
        inner: &mut Inner,
        state: BreakerState,
        now: Instant,
        cause: BreakerCause,
    ) -> Transition {
        let from = inner.state;
        inner.state = state;
        inner.generation += 1;
        inner.probes_in_flight = 0;
        inner.probe_successes = 0;
        if state == BreakerState::Open {
            inner.opened_at = now;
            inner.open_for = inner.policy.recovery_timeout;
        }
        if state == BreakerState::Closed {
            inner.failures = 0;
            self.window.clear();
        }
        self.failures.store(inner.failures, Ordering::Release);
        self.generation.store(inner.generation, Ordering::Release);
        self.state.store(state as u8, Ordering::Release);
        Transition {
            from,
            to: state,
            cause,
        }
    }

    /// The state as last set (a breaker whose open period has passed reports OPEN until
    /// the next [`acquire`](Self::acquire) or [`state`](Self::state)).
    pub fn state_now(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The state at `now`, moving OPEN to HALF_OPEN when the open period has passed.
    pub fn state(&self, now: Instant) -> (BreakerState, Option<Transition>) {
        let mut inner = self.lock();
        let t = self.maybe_half_open(&mut inner, now);
        (inner.state, t)
    }

    fn maybe_half_open(&self, inner: &mut Inner, now: Instant) -> Option<Transition> {
        if inner.state == BreakerState::Open
            && now.saturating_duration_since(inner.opened_at) >= inner.open_for
        {
            Some(self.set(
                inner,
                BreakerState::HalfOpen,
                now,
                BreakerCause::OpenPeriodOver,
            ))
        } else {
            None
        }
    }

    /// Asks to make one attempt. `Err` carries how long until a probe may go.
    #[inline]
    pub fn acquire(&self, now: Instant) -> (Result<Permit, Duration>, Option<Transition>) {
        match self.closed_permit() {
            Some(permit) => (Ok(permit), None),
            None => self.acquire_locked(now),
        }
    }

    /// The permit of a breaker that is off or CLOSED, taken without the lock; `None` when
    /// it is neither, and [`acquire`](Self::acquire) decides. Small enough to come back in
    /// registers: the common case builds no pair of results in memory.
    #[inline]
    pub fn closed_permit(&self) -> Option<Permit> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Some(Permit {
                probe: false,
                generation: 0,
            });
        }
        if self.state.load(Ordering::Acquire) == BreakerState::Closed as u8 {
            // The generation is read after the state: a permit taken just as the breaker
            // opened carries the old generation, and its outcome is ignored.
            let generation = self.generation.load(Ordering::Acquire);
            return Some(Permit {
                probe: false,
                generation,
            });
        }
        None
    }

    /// [`acquire`](Self::acquire) when the breaker is not CLOSED: under the lock.
    #[cold]
    #[inline(never)]
    fn acquire_locked(&self, now: Instant) -> (Result<Permit, Duration>, Option<Transition>) {
        let mut inner = self.lock();
        let transition = self.maybe_half_open(&mut inner, now);
        let result = match inner.state {
            BreakerState::Closed => Ok(Permit {
                probe: false,
                generation: inner.generation,
            }),
            BreakerState::Open => Err(inner
                .open_for
                .saturating_sub(now.saturating_duration_since(inner.opened_at))),
            BreakerState::HalfOpen => {
                if inner.probes_in_flight < inner.policy.success_threshold.get() {
                    inner.probes_in_flight += 1;
                    Ok(Permit {
                        probe: true,
                        generation: inner.generation,
                    })
                } else {
                    Err(Duration::ZERO)
                }
            }
        };
        (result, transition)
    }

    /// Whether [`record`](Self::record)ing a success under `permit` would change nothing
    /// (so the caller needs no clock read for it): the breaker is off, or still CLOSED (a
    /// non-probe permit of the current generation) in consecutive mode with no failure
    /// counted.
    #[inline]
    pub fn success_changes_nothing(&self, permit: &Permit) -> bool {
        !self.enabled.load(Ordering::Relaxed)
            || (!permit.probe
                && self.generation.load(Ordering::Acquire) == permit.generation
                && !self.ratio.load(Ordering::Relaxed)
                && self.failures.load(Ordering::Acquire) == 0)
    }

    /// Gives back a permit whose attempt never ran (cancelled, or refused later on).
    pub fn release(&self, permit: Permit) {
        if permit.probe {
            let mut inner = self.lock();
            if inner.generation == permit.generation {
                inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
            }
        }
    }

    /// Records how an attempt ended.
    pub fn record(&self, permit: Permit, outcome: Outcome, now: Instant) -> Option<Transition> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        if outcome == Outcome::Success
            && !permit.probe
            && self.generation.load(Ordering::Acquire) == permit.generation
        {
            // Still CLOSED (a non-probe permit of the current generation).
            if self.ratio.load(Ordering::Relaxed) {
                // Ratio mode: a success only adds to the window.
                self.window.record(now, false);
                return None;
            }
            if self.failures.load(Ordering::Acquire) == 0 {
                // Nothing counted: a success changes nothing.
                return None;
            }
        }
        let mut inner = self.lock();
        if inner.generation != permit.generation {
            // The breaker changed state while this attempt ran; its outcome belongs to a
            // period that is over (and must not extend an open one).
            return None;
        }
        match (inner.state, outcome) {
            (_, Outcome::Ignored) => {
                if permit.probe {
                    inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                }
                None
            }
            (BreakerState::Closed, Outcome::Success) => {
                inner.failures = 0;
                self.failures.store(0, Ordering::Release);
                None
            }
            (BreakerState::Closed, Outcome::Failure) if inner.policy.mode == BreakerMode::Ratio => {
                self.window.record(now, true);
                let (failures, calls) = self.window.totals(now);
                let policy = &inner.policy;
                if calls >= policy.minimum_calls.get()
                    && f64::from(failures) >= policy.failure_ratio * f64::from(calls)
                {
                    let cause = BreakerCause::FailureRatio { failures, calls };
                    Some(self.set(&mut inner, BreakerState::Open, now, cause))
                } else {
                    None
                }
            }
            (BreakerState::Closed, Outcome::Failure) => {
                inner.failures += 1;
                self.failures.store(inner.failures, Ordering::Release);
                if inner.failures >= inner.policy.failure_threshold.get() {
                    let failures = inner.failures;
                    let cause = BreakerCause::ConsecutiveFailures { failures };
                    Some(self.set(&mut inner, BreakerState::Open, now, cause))
                } else {
                    None
                }
            }
            (BreakerState::HalfOpen, Outcome::Success) => {
                inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                inner.probe_successes += 1;
                if inner.probe_successes >= inner.policy.success_threshold.get() {
                    let cause = BreakerCause::ProbesSucceeded;
                    Some(self.set(&mut inner, BreakerState::Closed, now, cause))
                } else {
                    None
                }
            }
            (BreakerState::HalfOpen, Outcome::Failure) => Some(self.set(
                &mut inner,
                BreakerState::Open,
                now,
                BreakerCause::ProbeFailed,
            )),
            (BreakerState::Open, _) => None,
        }
    }

    /// Records a background probe's result (the connector's recovery hook reached, or
    /// failed to reach, the dependency while the breaker was open). Counts like a
    /// half-open probe, so the breaker can close without user traffic.
    pub fn record_probe(&self, reachable: bool, now: Instant) -> Vec<Transition> {
        let mut transitions = Vec::new();
        if reachable && self.enabled.load(Ordering::Relaxed) {
            let mut inner = self.lock();
            if inner.state == BreakerState::Open {
                // The dependency answers again: no need to wait out the open period.
                let cause = BreakerCause::DependencyAnswered;
                transitions.push(self.set(&mut inner, BreakerState::HalfOpen, now, cause));
            }
        }
        let (result, t) = self.acquire(now);
        transitions.extend(t);
        if let Ok(permit) = result {
            if permit.probe {
                let outcome = if reachable {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                transitions.extend(self.record(permit, outcome, now));
            } else {
                self.release(permit);
            }
        }
        transitions
    }

    /// Applies a reloaded policy, keeping the state: an OPEN breaker stays open until its
    /// time, measured with the new `recovery_timeout` only if that is shorter; the failure
    /// count and half-open probes carry on under the new thresholds.
    pub fn reconfigure(&self, policy: &BreakerPolicy) {
        let mut inner = self.lock();
        if inner.state == BreakerState::Open {
            inner.open_for = inner.open_for.min(policy.recovery_timeout);
        }
        if inner.policy.mode != policy.mode {
            // The counts of one mode say nothing in the other.
            inner.failures = 0;
            self.failures.store(0, Ordering::Release);
            self.window.clear();
        }
        self.window.set_length(policy.sampling_window);
        self.ratio
            .store(policy.mode == BreakerMode::Ratio, Ordering::Relaxed);
        inner.policy = policy.clone();
        self.enabled.store(policy.enabled, Ordering::Relaxed);
    }

    /// Opens the breaker now, whatever its state (an operator's switch).
    pub fn force_open(&self, now: Instant) -> Transition {
        let mut inner = self.lock();
        self.set(&mut inner, BreakerState::Open, now, BreakerCause::Operator)
    }

    /// Closes the breaker and forgets the failure count.
    pub fn reset(&self, now: Instant) -> Transition {
        let mut inner = self.lock();
        self.set(
            &mut inner,
            BreakerState::Closed,
            now,
            BreakerCause::Operator,
        )
    }
}
