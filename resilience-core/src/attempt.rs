//! What the code inside an attempt can know about it: which attempt this is and how much
//! time it has left.
//!
//! A connector uses [`current`] to carry the deadline to the server (PostgreSQL's
//! `statement_timeout`), so a query the client stopped waiting for also stops running.
//! The information is task-local: it is set while each attempt's future is polled (and
//! while it is dropped), as a tokio task-local would be. It lives in a thread-local cell
//! set around each poll: the attempt's value is copied in and the previous one restored,
//! which costs a few stores where a tokio task-local's scope swaps through a `RefCell`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

thread_local! {
    /// The attempt whose future is being polled on this thread, if any.
    static CURRENT: Cell<Option<AttemptInfo>> = const { Cell::new(None) };
}

/// The attempt that is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptInfo {
    /// 1 for the first call, 2 for the first retry, and so on.
    pub number: u32,
    /// Attempts the policy allows.
    pub max_attempts: u32,
    /// The operation's name.
    pub operation: &'static str,
    /// When this attempt times out (the per-attempt timeout or the total deadline,
    /// whichever comes first).
    pub deadline: Option<Instant>,
    /// The policies and keys this attempt runs under, its own and its enclosing ones'.
    pub(crate) chain: Chain,
}

/// The runtime states (policy and key) of an attempt and of the attempts enclosing it, by
/// their serial number (unique per engine process, never 0). A run whose own state is in
/// the chain is part of an enclosing attempt.
///
/// Four levels are kept; a deeper nesting of distinct policies and keys makes attempts of
/// its own, as a different key would.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Chain([u32; 4]);

impl Chain {
    /// The chain of an outermost attempt.
    #[inline]
    pub(crate) fn of(id: u32) -> Chain {
        Chain([id, 0, 0, 0])
    }

    /// Whether `id` (never 0) is in the chain.
    #[inline]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.0.contains(&id)
    }

    /// The chain with `id` added, when there is room.
    pub(crate) fn with(mut self, id: u32) -> Chain {
        if !self.contains(id)
            && let Some(free) = self.0.iter_mut().find(|s| **s == 0)
        {
            *free = id;
        }
        self
    }
}

impl AttemptInfo {
    /// Time left before this attempt times out.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// The attempt running in this task, if any.
#[inline]
pub fn current() -> Option<AttemptInfo> {
    CURRENT.try_with(Cell::get).ok().flatten()
}

/// The policies and keys of the attempt running in this task, if any.
#[inline]
pub(crate) fn current_chain() -> Option<Chain> {
    current().map(|a| a.chain)
}

/// `info` as the current attempt until dropped; then the previous one again (none, for
/// an outermost attempt: only the cell's tag is written back, not a whole value).
enum Entered {
    Outermost,
    Nested(AttemptInfo),
}

impl Entered {
    #[inline]
    fn new(info: AttemptInfo) -> Entered {
        CURRENT.with(|cell| {
            // Only the tag is read when there is no outer attempt (the usual case).
            if cell.get().is_none() {
                cell.set(Some(info));
                Entered::Outermost
            } else {
                match cell.replace(Some(info)) {
                    Some(outer) => Entered::Nested(outer),
                    None => Entered::Outermost,
                }
            }
        })
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        match self {
            Entered::Outermost => CURRENT.set(None),
            Entered::Nested(outer) => CURRENT.set(Some(*outer)),
        }
    }
}

/// An attempt's future; dropped inside the attempt's scope when the attempt is cancelled
/// before it completes, so its destructors see the attempt as its body did.
pub(crate) struct Scoped<'a, F> {
    fut: Pin<&'a mut Option<F>>,
    info: AttemptInfo,
}

impl<'a, F: Future> Scoped<'a, F> {
    /// `fut` (pinned by the caller, `Some`) as the attempt `info`.
    #[inline]
    pub(crate) fn new(fut: Pin<&'a mut Option<F>>, info: AttemptInfo) -> Self {
        Scoped { fut, info }
    }

    /// Polls the attempt with `info` as the current attempt; on completion its future is
    /// dropped in the scope too, as a task-local's scope does.
    #[inline(always)]
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _in = Entered::new(self.info);
        let Some(running) = self.fut.as_mut().as_pin_mut() else {
            panic!("an attempt polled after it completed");
        };
        let output = std::task::ready!(running.poll(cx));
        self.fut.set(None);
        Poll::Ready(output)
    }
}

impl<F> Drop for Scoped<'_, F> {
    fn drop(&mut self) {
        if self.fut.is_some() {
            let _in = Entered::new(self.info);
            self.fut.set(None);
        }
    }
}
