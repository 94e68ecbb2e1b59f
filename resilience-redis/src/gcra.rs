//! The shared bucket: GCRA in a Lua script on the server's clock, and the local fair-share
//! bucket used while the server is away.
//!
//! A bucket is one number in Redis, its *theoretical arrival time* (TAT) in microseconds
//! of the server's clock (`TIME`), exactly as the local limiter keeps it in an atomic.
//! The script reads `TIME`, so no two processes' clocks need to agree. It *reserves*:
//! when the token the caller would get is due within its `max_wait`, the TAT moves and
//! the script answers how long to wait; otherwise nothing moves and it answers when to
//! retry. Either way one round trip decides the call, and over any window `t` of the
//! server's clock at most `burst + rate × t` tokens are handed out across all processes.
//!
//! The key expires a minute after the bucket would be full again, so an idle bucket costs
//! nothing; a lost key (a flush, a restart without persistence) is a full bucket: at most one
//! extra `burst` is admitted, once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use resilience_core::policy::RateLimitPolicy;

/// KEYS[1]: the bucket. ARGV: interval (µs), tolerance = burst × interval (µs), the
/// longest wait the caller accepts (µs). Returns `{1, wait}` (reserved; go after `wait`
/// µs) or `{0, retry_after}` (nothing reserved).
pub(crate) const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next = tat + interval
local wait = next - tolerance - now
if wait > max_wait then
  return {0, wait}
end
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.floor((next - now) / 1000) + 60000)
return {1, wait}
";

/// A bucket's figures in microseconds: the emission interval and the tolerance.
pub(crate) fn figures(limit: &RateLimitPolicy) -> (u64, u64) {
    let per_second = f64::from(limit.requests_per_minute.get()) / 60.0;
    let interval = ((1e6 / per_second).round() as u64).max(1);
    (interval, interval * u64::from(limit.burst.get()))
}

/// What the store (or the fallback) answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Reserved: go after this wait.
    Go(Duration),
    /// Not reserved: a token is expected after this.
    Limited(Duration),
}

impl Answer {
    /// Reads the script's reply.
    pub(crate) fn from_reply(reply: &[i64]) -> Answer {
        let micros = |v: i64| Duration::from_micros(v.max(0) as u64);
        match reply {
            [1, wait] => Answer::Go(micros(*wait)),
            [_, retry_after] => Answer::Limited(micros(*retry_after)),
            _ => Answer::Limited(Duration::ZERO),
        }
    }
}

/// The local buckets used while the store is away: one per policy and key, each sized
/// to this process's fair share of the shared limit (`rate / workers`,
/// `max(1, burst / workers)`), where `workers` is the number of live workers the store
/// last reported (see [`fleet`](crate::fleet)). A bucket starts *empty* at each outage,
/// so the switch itself admits no burst; over the outage the fleet admits at most the
/// shared rate, as long as the worker count it last saw still holds.
#[derive(Default)]
pub(crate) struct Fallback {
    buckets: Mutex<HashMap<(String, String), Local>>,
}

struct Local {
    outage: u64,
    origin: Instant,
    /// TAT in microseconds since `origin`.
    tat: u64,
}

impl Fallback {
    /// Reserves a token of the local share of `limit` for `policy` and `key`, in outage
    /// number `outage`, with `workers` sharing the limit.
    pub(crate) fn reserve(
        &self,
        policy: &str,
        key: &str,
        limit: &RateLimitPolicy,
        workers: u32,
        outage: u64,
        max_wait: Duration,
    ) -> Answer {
        let workers = u64::from(workers.max(1));
        let (interval, _) = figures(limit);
        let interval = interval * workers;
        let burst = (u64::from(limit.burst.get()) / workers).max(1);
        let tolerance = interval * burst;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry((policy.to_owned(), key.to_owned()))
            .or_insert(Local {
                outage: u64::MAX,
                origin: Instant::now(),
                tat: 0,
            });
        let now = bucket.origin.elapsed().as_micros() as u64;
        if bucket.outage != outage {
            // Empty at the switch: no burst handed out by the outage itself.
            *bucket = Local {
                outage,
                origin: bucket.origin,
                tat: now + tolerance,
            };
        }
        let next = bucket.tat.max(now) + interval;
        let wait = (next - now).saturating_sub(tolerance);
        let wait = Duration::from_micros(wait);
        if wait > max_wait {
            return Answer::Limited(wait);
        }
        bucket.tat = next;
        Answer::Go(wait)
    }
}
