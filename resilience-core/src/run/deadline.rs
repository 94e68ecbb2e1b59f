//! The attempt deadline, armed only when the attempt has to wait.
//!
//! Most attempts of a healthy dependency complete at their first poll (a pooled
//! connection with the answer buffered, a cache hit), and for them a timer is pure cost:
//! `tokio::time::timeout_at` builds its `Sleep` up front, which takes a reference to the
//! runtime's timer (a shared count, contended across workers) and is dropped unused.
//! Here the attempt is polled first, exactly as `timeout_at` does, and the timer is only
//! built when that poll returns `Pending`; from then on the two behave alike (the
//! attempt first, then the timer, at every poll, and the timer polled outside the
//! cooperative budget when the attempt used it up). A timer registers with the runtime
//! only when first polled in either case, so paused-clock tests see no difference.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use tokio::task::coop;
use tokio::time::{Instant, Sleep};

use crate::attempt::{AttemptInfo, Scoped};

/// Runs `fut` as the attempt `info` until `deadline`: its output, or `None` when the
/// deadline came first. One future for both (the attempt's scope and its deadline), so the
/// attempt's future is moved and its state checked once less per call.
#[inline]
pub(super) async fn within<F: Future>(
    deadline: Instant,
    info: AttemptInfo,
    fut: F,
) -> Option<F::Output> {
    let mut fut = pin!(Some(fut));
    let mut scoped = Scoped::new(fut.as_mut(), info);
    let timer = pin!(None::<Sleep>);
    Within::new(&mut scoped, timer, deadline).await
}

/// The future of an attempt under its deadline: [`poll_within`] at each poll. A type of
/// its own rather than `poll_fn`, so that its poll is always inlined where it is awaited
/// (the `poll_fn` one was left out of line in a build without link-time optimisation).
pub(super) struct Within<'s, 'a, F> {
    scoped: &'s mut Scoped<'a, F>,
    timer: Pin<&'s mut Option<Sleep>>,
    deadline: Instant,
}

impl<'s, 'a, F: Future> Within<'s, 'a, F> {
    #[inline(always)]
    pub(super) fn new(
        scoped: &'s mut Scoped<'a, F>,
        timer: Pin<&'s mut Option<Sleep>>,
        deadline: Instant,
    ) -> Self {
        Within {
            scoped,
            timer,
            deadline,
        }
    }
}

impl<F: Future> Future for Within<'_, '_, F> {
    type Output = Option<F::Output>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Only references: the future is `Unpin`.
        let this = self.get_mut();
        poll_within(this.scoped, this.timer.as_mut(), this.deadline, cx)
    }
}

/// One poll of an attempt under its deadline (see [`within`]): the attempt first, then the
/// timer, built at the first `Pending`.
#[inline(always)]
pub(super) fn poll_within<F: Future>(
    scoped: &mut Scoped<'_, F>,
    mut timer: Pin<&mut Option<Sleep>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<Option<F::Output>> {
    let had_budget = coop::has_budget_remaining();
    if let Poll::Ready(output) = scoped.poll(cx) {
        return Poll::Ready(Some(output));
    }
    if timer.is_none() {
        timer.set(Some(tokio::time::sleep_until(deadline)));
    }
    let Some(sleep) = timer.as_mut().as_pin_mut() else {
        return Poll::Pending;
    };
    // As `timeout_at` does: an attempt that used up the task's budget must not keep its
    // own deadline from being seen.
    let fired = if had_budget && !coop::has_budget_remaining() {
        pin!(coop::unconstrained(sleep)).poll(cx)
    } else {
        sleep.poll(cx)
    };
    fired.map(|()| None)
}
