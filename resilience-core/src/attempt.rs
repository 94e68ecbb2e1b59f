//! What the code inside an attempt can know about it: which attempt this is and how much
//! time it has left.
//!
//! A connector uses [`current`] to carry the deadline to the server (PostgreSQL's
//! `statement_timeout`), so a query the client stopped waiting for also stops running.
//! The information is task-local: it is set for the duration of each attempt's future.

use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static CURRENT: AttemptInfo;
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
}

impl AttemptInfo {
    /// Time left before this attempt times out.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// The attempt running in this task, if any.
pub fn current() -> Option<AttemptInfo> {
    CURRENT.try_with(|a| *a).ok()
}

/// Runs `fut` as the attempt `info`.
pub(crate) async fn scope<F: std::future::Future>(info: AttemptInfo, fut: F) -> F::Output {
    CURRENT.scope(info, fut).await
}
