//! What the server saw: every request, when it arrived and what it was answered.
//!
//! Arrival times are taken by the server the moment it starts handling a request, so a
//! test checks when the client came back as the server saw it, not as the client says.

use std::time::{Instant, SystemTime};

/// One request the server handled.
#[derive(Debug, Clone)]
pub struct Request {
    /// When it arrived (monotonic clock).
    pub at: Instant,
    /// When it arrived (wall clock, to compare with an HTTP-date).
    pub wall: SystemTime,
    /// The path and query, with any `api_key` parameter's value replaced by `***`.
    pub target: String,
    /// The status it was answered with.
    pub status: u16,
    /// For a `429` that named a time: the earliest moment the next request was allowed
    /// (wall clock: arrival plus the seconds, or the HTTP-date).
    pub not_before: Option<SystemTime>,
    /// Whether the answer's body was cut short on purpose.
    pub truncated: bool,
}
