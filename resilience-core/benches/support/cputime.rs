//! CPU time as the kernel accounts it (`clock_gettime` with the thread and process CPU
//! clocks).
//!
//! The benchmark reports CPU time per call rather than wall-clock time: on a small
//! machine shared with compilers and test suites, wall-clock figures mostly measure how
//! often the bench was preempted (they varied by 2x between identical runs), while the
//! CPU time a call consumes does not depend on the neighbours. With 4 tasks on 2 workers
//! the whole process's CPU time is taken, so perfect scaling reports the same figure as
//! one task, and contention (lock hand-offs, cache-line transfers) shows as an increase.
//!
//! `/proc/*/schedstat` would avoid the foreign call, but it is only updated at scheduler
//! ticks, far too coarse for criterion's short samples.

use std::time::Duration;

fn read(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of the call, and
    // both clock ids used here exist on every Linux since 2.6.12.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// CPU time of the calling thread so far.
pub fn thread() -> Duration {
    read(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of every thread of this process so far.
pub fn process() -> Duration {
    read(libc::CLOCK_PROCESS_CPUTIME_ID)
}
