//! One call through the fixed pipeline:
//!
//! ```text
//! total deadline
//!   └ retry loop (attempts, backoff schedule, retry budget)
//!       └ per attempt: breaker permit → rate-limit permit (key) → attempt deadline → call
//! ```
//!
//! [`Run`] is a small state machine driven by a loop of one step per attempt,
//! [`step`](Run::step): admission, the attempt, and the record of its outcome, which
//! either ends the call or has waited for the next attempt. The loop is written out by
//! the caller (by [`Engine::run`](crate::Engine::run), or inline by
//! `#[resilient_operation]`) so that the attempt's future is an ordinary `async` block of
//! the caller's body: it may borrow `self` and arguments, use `?` and `return`, and stays
//! `Send` whenever the body is.
//!
//! A run started inside another run's attempt is *nested*. Under the **same** policy and
//! key as an enclosing attempt (a method calling another method of the same connector),
//! it is part of that attempt: its body runs as it is, with no breaker permit, no
//! rate-limit token, no deadline and no count of its own, so one real call is counted
//! once. Under a **different** policy or key it makes one attempt under its own policy —
//! its breaker, its rate limit, its attempt deadline, its health counters — but never
//! retries; a failure goes back unchanged to the outer run, which alone decides whether
//! to retry. So nested operations never multiply attempts, and an `api` call made inside
//! a `db` operation is still limited and guarded by the `api` policy.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{Instrument, Span};

use crate::attempt::{self, AttemptInfo, Chain};
use crate::backoff::Backoff;
use crate::breaker::{Permit, Transition};
use crate::engine::Engine;
use crate::error::ResilientError;
use crate::events::{ErrorText, EventKind, Verdict};
use crate::failure::{Failure, Stop};
use crate::recovery::Recovery;
use crate::slot::Slot;

mod admit;
mod call;
mod deadline;
mod outcome;
mod recover;
mod retry;
mod settle;
mod step;

pub use call::Call;
pub use outcome::{Attempted, ResultLike};

/// The state of one call. See the module docs.
pub(crate) struct Run<'a> {
    engine: &'a Engine,
    policy_name: &'a str,
    slot: Option<&'a Arc<Slot>>,
    operation: &'static str,
    recovery: Option<&'a Arc<dyn Recovery>>,
    /// The policies and keys of the enclosing attempts; `None` for an outermost run.
    enclosing: Option<Chain>,
    /// Part of an enclosing attempt under the same policy and key: the body runs as is.
    joined: bool,
    attempt: u32,
    bonus_attempts: u32,
    started: Option<Instant>,
    /// The total timeout, as it was when the call started: the call's deadline is
    /// `started + total` ([`deadline`](Self::deadline)).
    total: Duration,
    /// When the current attempt was admitted (read once, after the permits).
    admitted: Option<Instant>,
    /// Permits already taken for the next attempt (by the retry path, which still holds
    /// the last error and can report it if the permits are refused).
    admitted_next: Option<Instant>,
    permit: Option<Permit>,
    backoff: Option<Backoff>,
    credentials_refreshed: bool,
    /// The call's tracing spans, only when a subscriber wants `debug` spans of this crate
    /// (boxed, so that a call without them carries one pointer).
    spans: Option<Box<Spans>>,
}

/// The tracing spans of a call: its own, and its running attempt's until the attempt's
/// outcome is recorded.
struct Spans {
    call: Span,
    attempt: Span,
}

impl Spans {
    /// The call's spans, when a subscriber wants them (kept out of the common path).
    #[cold]
    #[inline(never)]
    fn new(slot: &Slot, operation: &'static str) -> Option<Box<Spans>> {
        let call = tracing::debug_span!(
            "resilient_call",
            policy = &*slot.policy_name,
            key = &*slot.key,
            operation,
        );
        (!call.is_disabled()).then(|| {
            Box::new(Spans {
                call,
                attempt: Span::none(),
            })
        })
    }
}

impl std::fmt::Debug for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("policy", &self.policy_name)
            .field("operation", &self.operation)
            .field("joined", &self.joined)
            .field("attempt", &self.attempt)
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}

impl<'a> Run<'a> {
    /// A run of `call` on `engine`.
    #[inline]
    pub(crate) fn new(engine: &'a Engine, call: Call<'a>) -> Self {
        Run::resolved_or_new(engine, call, None)
    }

    /// A run on `slot` when given (already resolved for the call's policy and key), or
    /// on the slot looked up for this call. Always inlined: it is on every call's path,
    /// and left to the inliner's judgment it came out of line after unrelated edits.
    #[inline(always)]
    pub(crate) fn resolved_or_new(
        engine: &'a Engine,
        call: Call<'a>,
        slot: Option<&'a Arc<Slot>>,
    ) -> Self {
        // A `match`, not `Option::or_else`: the closure's call was left out of line.
        let slot = match slot {
            Some(slot) => Some(slot),
            None => engine.slot(call.policy, call.key.unwrap_or(call.policy)),
        };
        let enclosing = attempt::current_chain();
        let joined = match (&slot, enclosing) {
            (Some(slot), Some(chain)) => chain.contains(slot_id(slot)),
            _ => false,
        };
        Run {
            engine,
            policy_name: call.policy,
            slot,
            operation: call.operation,
            recovery: call.recovery,
            enclosing,
            joined,
            attempt: 0,
            bonus_attempts: 0,
            started: None,
            total: Duration::ZERO,
            admitted: None,
            admitted_next: None,
            permit: None,
            backoff: None,
            credentials_refreshed: false,
            spans: None,
        }
    }

    fn fail<E: ResilientError>(&self, stop: Stop, last_error: Option<E>) -> E {
        let (policy, key) = match &self.slot {
            Some(slot) => (Arc::clone(&slot.policy_name), Arc::clone(&slot.key)),
            None => (Arc::from(self.policy_name), Arc::from(self.policy_name)),
        };
        E::from_failure(Failure {
            stop,
            policy,
            operation: self.operation,
            key,
            last_error,
        })
    }

    /// Ends the call as a failure: counts and reports it, and builds the caller's error.
    #[cold]
    #[inline(never)]
    fn give_up<T, E: ResilientError>(
        &self,
        slot: &Slot,
        stop: Stop,
        error: Option<E>,
    ) -> Option<Result<T, E>> {
        self.finish(slot, false, Some(Instant::now()));
        self.report_gave_up(slot, Verdict::Stopped(&stop), error.as_ref());
        Some(Err(self.fail(stop, error)))
    }

    /// Reports the end of a call that did not succeed.
    fn report_gave_up<E: ResilientError>(
        &self,
        slot: &Slot,
        verdict: Verdict<'_>,
        error: Option<&E>,
    ) {
        let kind = EventKind::GaveUp {
            verdict,
            attempts: self.attempt,
            class: error.map(ResilientError::class),
            error: error.map(|e| ErrorText(e)),
        };
        self.emit(slot, kind);
    }

    /// The call's span, or a disabled one.
    fn span(&self) -> &Span {
        static NONE: Span = Span::none();
        self.spans.as_ref().map_or(&NONE, |s| &s.call)
    }

    /// Reports an event of this call, inside the call's span.
    fn emit(&self, slot: &Slot, kind: EventKind<'_>) {
        let _in = self.span().enter();
        slot.emit(Some(self.operation), kind);
    }

    /// Reports a breaker transition this call caused, inside the call's span.
    #[cold]
    #[inline(never)]
    fn transition(&self, slot: &Arc<Slot>, transition: Transition) {
        let _in = self.span().enter();
        slot.on_transition(transition, Some(self.operation), self.recovery);
    }

    /// Counts the end of the call at `now` (read here when not given, and only if the
    /// call's duration is recorded).
    #[inline(always)]
    fn finish(&self, slot: &Slot, ok: bool, now: Option<Instant>) {
        slot.stats.finish(self.operation, ok);
        if !ok {
            slot.meters.failures.increment(1);
        }
        if let Some(started) = self.started {
            slot.meters.call_seconds.record(Elapsed { started, now });
        }
    }

    /// The call's deadline, once it has started.
    fn deadline(&self) -> Option<Instant> {
        self.started.map(|started| started + self.total)
    }

    /// The current attempt's information, and its deadline: the attempt timeout or the
    /// total deadline, whichever is first (`true` when it is the total one).
    #[inline(always)]
    fn attempt_info(&self, slot: &Slot, admitted: Instant) -> (AttemptInfo, Instant, bool) {
        let attempt = slot.hot.attempt();
        let (deadline, total) = match self.started {
            // Admitted as the call started (its first attempt, with no wait): the two
            // deadlines compare as the two timeouts do, and one of them is computed.
            Some(started) if started == admitted => {
                if self.total <= attempt {
                    (started + self.total, true)
                } else {
                    (admitted + attempt, false)
                }
            }
            Some(started) => {
                let (total, attempt) = (started + self.total, admitted + attempt);
                if total <= attempt {
                    (total, true)
                } else {
                    (attempt, false)
                }
            }
            None => (admitted + attempt, false),
        };
        let info = AttemptInfo {
            number: self.attempt,
            max_attempts: (slot.hot.max_attempts()).saturating_add(self.bonus_attempts),
            operation: self.operation,
            deadline: Some(deadline),
            chain: match self.enclosing {
                None => Chain::of(slot_id(slot)),
                Some(chain) => chain.with(slot_id(slot)),
            },
        };
        (info, deadline, total)
    }

    /// Runs one attempt's future under the attempt deadline (inside the attempt's span,
    /// when the call has spans).
    pub(crate) async fn attempt<R, F>(&mut self, fut: F) -> Attempted<R::Ok, R::Err>
    where
        R: ResultLike,
        F: Future<Output = R>,
    {
        let (Some(slot), Some(now)) = (self.slot, self.admitted) else {
            return Attempted::Done(fut.await.into_result());
        };
        let (info, deadline, total) = self.attempt_info(slot, now);
        let Some(spans) = self.spans.as_mut() else {
            return match deadline::within(deadline, info, fut).await {
                Some(result) => Attempted::Done(result.into_result()),
                None => Attempted::TimedOut { total },
            };
        };
        let span = tracing::debug_span!(
            parent: &spans.call,
            "attempt",
            policy = &*slot.policy_name,
            key = &*slot.key,
            operation = self.operation,
            attempt = self.attempt,
            class = tracing::field::Empty,
        );
        let fut = fut.instrument(span.clone());
        // The outcome's class is recorded on the span by `settle`.
        spans.attempt = span;
        match deadline::within(deadline, info, fut).await {
            Some(result) => Attempted::Done(result.into_result()),
            None => Attempted::TimedOut { total },
        }
    }
}

/// A call's duration for the histogram, measured only when a recorder takes it (the
/// handle is a no-op without one), so that a call reads the clock once less.
pub(super) struct Elapsed {
    pub(super) started: Instant,
    /// The end of the call, when already read.
    pub(super) now: Option<Instant>,
}

impl metrics::IntoF64 for Elapsed {
    fn into_f64(self) -> f64 {
        let now = self.now.unwrap_or_else(Instant::now);
        now.saturating_duration_since(self.started).as_secs_f64()
    }
}

/// The identity of a slot in an attempt [`Chain`].
#[inline]
fn slot_id(slot: &Slot) -> u32 {
    slot.serial
}

impl Drop for Run<'_> {
    #[inline]
    fn drop(&mut self) {
        // A call cancelled between taking the breaker's permit and finishing its attempt
        // gives the permit back, so a cancelled probe does not hold HALF_OPEN hostage.
        if let (Some(permit), Some(slot)) = (self.permit.take(), &self.slot) {
            slot.breaker.release(permit);
        }
    }
}
