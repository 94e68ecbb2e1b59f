//! How an attempt ended, whatever the name of the result type the body returns.

/// A result type of any name (`Result<T, E>`, `io::Result<T>`), split into its parts.
pub trait ResultLike {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// The plain `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E> ResultLike for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Self {
        self
    }
}

/// How one attempt ended.
#[derive(Debug)]
pub enum Attempted<T, E> {
    /// The body finished.
    Done(Result<T, E>),
    /// The attempt ran out of time; `total` when the call's total deadline was the limit.
    TimedOut {
        /// Whether the total deadline (not the per-attempt timeout) ran out.
        total: bool,
    },
}
