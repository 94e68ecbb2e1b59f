//! The fleet: which workers are alive, so a process that loses the store knows its fair
//! share of a shared limit.
//!
//! Each store registers its worker id in a sorted set scored by the server's clock
//! (`TIME`, in milliseconds) every [`HEARTBEAT`], and drops entries older than
//! [`WORKER_TTL`]. The count it reads back is the number of processes that reported in
//! the last [`WORKER_TTL`]; it is kept as the divisor of the fallback share. A worker that
//! dies stops counting after [`WORKER_TTL`]; until then the others' shares are smaller
//! than they could be (the safe side).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How often a worker reports.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a report counts.
pub const WORKER_TTL: Duration = Duration::from_secs(10);

/// KEYS[1]: the workers' sorted set. ARGV: worker id, TTL (ms). Returns the live count.
pub(crate) const REPORT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
";

/// The live worker count last read from the store (1 until then).
#[derive(Debug)]
pub(crate) struct Workers(AtomicU32);

impl Default for Workers {
    fn default() -> Self {
        Workers(AtomicU32::new(1))
    }
}

impl Workers {
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire).max(1)
    }

    pub(crate) fn set(&self, count: u32) {
        self.0.store(count.max(1), Ordering::Release);
    }
}

/// A worker id unique across machines and restarts: the host name when the environment
/// gives one, the process id and the start time.
pub(crate) fn worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{host}:{}:{started}", std::process::id())
}
