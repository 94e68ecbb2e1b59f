//! One attempt, start to end, as one future: admission, the attempt under its deadline,
//! and the record of its outcome.
//!
//! Admission, attempt and record written as three `async` steps awaited in turn are
//! three state machines, and the attempt's two more inside; most calls need none of their
//! waits (admitted at once, the attempt done at its first poll, a success to
//! record). Here the synchronous parts run inline around one poll loop over the attempt,
//! and what may wait — a rate-limit token, the decision after a failure, an attempt
//! inside the call's tracing spans — is boxed out of line, as each step did on its own.
//! The order of everything (permits, clock reads, the attempt's polls and drop, counts,
//! events) is the steps' order.

use std::future::Future;
use std::pin::pin;

use tokio::time::Sleep;

use super::admit::Begin;
use super::deadline::Within;
use super::{Attempted, ResultLike, Run};
use crate::attempt::Scoped;
use crate::error::ResilientError;

impl Run<'_> {
    /// One attempt: admission, then the attempt `make` builds (called once admitted), then
    /// its record. `Some` ends the call with its result; `None` means retry: recovery and
    /// the backoff delay are behind, and the next attempt's permits may be taken.
    ///
    /// Not an `async fn`: an `async fn` moves its arguments into its body when first
    /// polled, and `make` (which holds the attempt's future when the caller built it
    /// already) would be copied from where it was just written, a stall reading back a
    /// value still on its way to memory. The `async` block uses it where it was captured.
    #[inline]
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn moves its arguments into its body at the first poll"
    )]
    pub(crate) fn step<R, M, F>(
        &mut self,
        make: M,
    ) -> impl Future<Output = Option<Result<R::Ok, R::Err>>>
    where
        R: ResultLike,
        R::Err: ResilientError,
        M: FnOnce() -> F,
        F: Future<Output = R>,
    {
        async move {
            match self.begin() {
                Begin::Go => {}
                Begin::End(done) => return Some(done),
                Begin::Wait(now) => {
                    // Not boxed again: the wait is (`admit::wait`), and what is left here is
                    // no larger than the attempt's own state.
                    if let Some(done) = self.wait_admission(now).await {
                        return Some(done);
                    }
                }
            }
            if self.joined {
                // Part of an enclosing attempt: the body runs as it is.
                return Some(make().await.into_result());
            }
            let outcome = match (self.slot, self.admitted) {
                (Some(slot), Some(admitted)) if self.spans.is_none() => {
                    let (info, deadline, total) = self.attempt_info(slot, admitted);
                    let mut fut = pin!(Some(make()));
                    let mut scoped = Scoped::new(fut.as_mut(), info);
                    let timer = pin!(None::<Sleep>);
                    match Within::new(&mut scoped, timer, deadline).await {
                        Some(result) => Attempted::Done(result.into_result()),
                        None => Attempted::TimedOut { total },
                    }
                }
                _ => Box::pin(self.attempt::<R, F>(make())).await,
            };
            match self.settle(outcome) {
                Ok(done) => Some(done),
                Err(failed) => Box::pin(self.after_failure(failed)).await,
            }
        }
    }
}
