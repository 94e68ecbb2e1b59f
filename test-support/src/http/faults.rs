//! Faults the API server plays, one per request, in the order they were queued.
//!
//! A queue rather than probabilities: a test says exactly which requests fail and how,
//! so its expectations (how many retries, when the client may come back) are exact, and
//! a mixed run is the same run every time.

use std::collections::VecDeque;
use std::time::Duration;

/// How a `429 Too Many Requests` says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`, this long after the request arrived, rounded up to
    /// the next whole second (an HTTP-date has no fractions).
    Date(Duration),
    /// No `Retry-After` header: the client's own backoff decides.
    Absent,
}

/// What one request gets instead of its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests`, with `Retry-After` as given.
    Throttle(RetryAfter),
    /// `503 Service Unavailable` (a deploy in progress).
    Unavailable,
    /// The page, after this delay.
    Slow(Duration),
    /// `200 OK` announcing the whole page in `Content-Length`, then half the body and a
    /// closed connection.
    Truncate,
    /// The server starts accepting only this secret (the old one has expired) and
    /// answers this request `401 Unauthorized`.
    ExpireSecret(String),
}

/// The queue of faults still to play.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    queue: VecDeque<Option<Fault>>,
}

impl Faults {
    /// Queues `fault` for `times` requests in a row.
    pub(crate) fn push(&mut self, fault: Fault, times: usize) {
        for _ in 0..times {
            self.queue.push_back(Some(fault.clone()));
        }
    }

    /// Lets `count` requests through untouched before the faults queued after.
    pub(crate) fn pass(&mut self, count: usize) {
        for _ in 0..count {
            self.queue.push_back(None);
        }
    }

    /// The fault for the request that just arrived, if any.
    pub(crate) fn next(&mut self) -> Option<Fault> {
        self.queue.pop_front().flatten()
    }

    /// Requests still to meet a queued fault or pass.
    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Forgets every queued fault.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }
}
