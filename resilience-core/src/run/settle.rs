//! The record of an attempt's outcome: the breaker's record, the counts and, for a
//! success, the end of the call; a failure is handed on to the retry decision
//! ([`after_failure`](Run::after_failure)).

use std::time::Duration;

use tokio::time::Instant;
use tracing::Span;

use super::{Attempted, Run};
use crate::breaker::{Outcome, Permit};
use crate::error::ResilientError;
use crate::failure::Stop;
use crate::health::Stats;
use resilience_policy::ErrorClass;

impl Run<'_> {
    /// Records how the attempt ended: `Ok` ends the call with its result, `Err` is a
    /// failed attempt for [`after_failure`](Self::after_failure) to decide on.
    #[inline(always)]
    pub(super) fn settle<T, E: ResilientError>(
        &mut self,
        outcome: Attempted<T, E>,
    ) -> Result<Result<T, E>, Failed<E>> {
        let slot = match self.slot {
            Some(slot) if !self.joined => slot,
            _ => {
                return Ok(match outcome {
                    Attempted::Done(result) => result,
                    Attempted::TimedOut { .. } => Err(self.fail(
                        Stop::AttemptTimedOut {
                            timeout: Duration::ZERO,
                            attempts: self.attempt,
                        },
                        None,
                    )),
                });
            }
        };
        let permit = self.permit.take();
        if let Some(spans) = self.spans.as_mut() {
            let class = match &outcome {
                Attempted::Done(Ok(_)) => "ok",
                Attempted::Done(Err(e)) => e.class().as_str(),
                Attempted::TimedOut { .. } => ErrorClass::Timeout.as_str(),
            };
            std::mem::replace(&mut spans.attempt, Span::none()).record("class", class);
        }
        match outcome {
            Attempted::Done(Ok(value)) => {
                // The clock is read only for what needs it: a breaker record that changes
                // something (a probe, ratio mode, failures to reset), or the duration
                // histogram when a metrics recorder takes it.
                let mut now = None;
                if let Some(permit) = permit
                    && !slot.breaker.success_changes_nothing(&permit)
                {
                    let at = Instant::now();
                    now = Some(at);
                    if let Some(t) = slot.breaker.record(permit, Outcome::Success, at) {
                        self.transition(slot, t);
                    }
                }
                if slot.shared.is_some() {
                    crate::shared::record(slot, Outcome::Success);
                }
                self.finish(slot, true, now);
                Ok(Ok(value))
            }
            Attempted::Done(Err(e)) => Err(Failed {
                class: e.class(),
                error: Some(e),
                total_ran_out: false,
                permit,
                now: Instant::now(),
            }),
            Attempted::TimedOut { total } => {
                let now = Instant::now();
                Stats::bump(&slot.stats.timeouts);
                Err(Failed {
                    class: ErrorClass::Timeout,
                    error: None,
                    total_ran_out: total,
                    permit,
                    now,
                })
            }
        }
    }
}

/// A failed attempt, recorded but not yet decided on.
pub(super) struct Failed<E> {
    pub(super) class: ErrorClass,
    pub(super) error: Option<E>,
    pub(super) total_ran_out: bool,
    pub(super) permit: Option<Permit>,
    pub(super) now: Instant,
}
