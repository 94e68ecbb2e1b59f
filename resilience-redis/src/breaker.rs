//! The shared breaker: the fleet's state (CLOSED, OPEN until T, HALF_OPEN), consecutive
//! failures and probe leases per policy and key, in one Redis hash, with a local view.
//!
//! Every change is made by a Lua script on the server's clock, so the hosts' clocks need
//! not agree: [`RECORD`] counts an outcome (opening at `failure_threshold` consecutive
//! failures, closing after `success_threshold` successful probes, reopening on a failed
//! probe), [`LEASE`] hands out at most `success_threshold` probe leases once the open
//! period has passed (a lease whose holder never reports expires after
//! `recovery_timeout`, so a dead prober cannot hold HALF_OPEN), and [`VIEW`] reads many
//! breakers at once.
//!
//! The local fast path: each process keeps a [`View`] per breaker and reads it on every
//! call without a request. It is refreshed from Redis every [`POLL`] by one `VIEW` round
//! trip for all the breakers the process uses, and at once by the replies to its own
//! `RECORD` and `LEASE`. So a breaker opened by another process fails this process's
//! calls within one poll period plus a round trip (measured in the tests and in
//! BENCHMARKS.md); successes cost a request only while failures are counted. Pub/sub
//! would push changes sooner but needs a connection of its own per process and a resync
//! after every reconnect; the poll is one request per period, whatever the traffic, and
//! survives a Redis restart by construction.
//!
//! This covers `mode = "consecutive"`. A `mode = "ratio"` breaker is not shared: its
//! sliding window stays in each process (a fleet-wide window would need every outcome
//! sent to Redis), and the store leaves it to the local breaker.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use resilience_core::breaker::BreakerState;

/// How often the view is refreshed from Redis.
pub const POLL: Duration = Duration::from_millis(50);

const READ: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'open_until', 'probes', 'successes', 'lease_at')
local state = tonumber(h[1] or '0')
local failures = tonumber(h[2] or '0')
local open_until = tonumber(h[3] or '0')
local probes = tonumber(h[4] or '0')
local successes = tonumber(h[5] or '0')
local lease_at = tonumber(h[6] or '0')
";

/// KEYS[1]: the breaker. ARGV: 1 (success) or 0 (failure), failure_threshold,
/// recovery_timeout (µs), success_threshold. Returns `{state, failures, open_left_us}`.
pub(crate) fn record_script() -> String {
    format!(
        "{READ}{}",
        r"
local ok = ARGV[1] == '1'
local threshold = tonumber(ARGV[2])
local recovery = tonumber(ARGV[3])
local needed = tonumber(ARGV[4])
if state == 1 and now >= open_until then state = 2 end
if state == 0 then
  if ok then
    failures = 0
  else
    failures = failures + 1
    if failures >= threshold then
      state = 1; open_until = now + recovery; probes = 0; successes = 0
    end
  end
elseif state == 2 then
  if probes > 0 then probes = probes - 1 end
  if ok then
    successes = successes + 1
    if successes >= needed then state = 0; failures = 0; probes = 0; successes = 0 end
  else
    state = 1; open_until = now + recovery; probes = 0; successes = 0
  end
end
redis.call('HSET', KEYS[1], 'state', state, 'failures', failures,
  'open_until', string.format('%d', open_until), 'probes', probes, 'successes', successes)
redis.call('PEXPIRE', KEYS[1], math.max(60000, math.floor(recovery / 1000) * 4))
local left = 0
if state == 1 then left = math.max(0, open_until - now) end
return {state, failures, left}
"
    )
}

/// KEYS[1]: the breaker. ARGV: success_threshold, recovery_timeout (µs). Returns
/// `{state, failures, open_left_us, granted}`.
pub(crate) fn lease_script() -> String {
    format!(
        "{READ}{}",
        r"
local needed = tonumber(ARGV[1])
local recovery = tonumber(ARGV[2])
if state == 0 then return {0, failures, 0, 1} end
if state == 1 and now < open_until then return {1, failures, open_until - now, 0} end
if probes >= needed and now - lease_at > recovery then probes = 0 end
if probes < needed then
  probes = probes + 1
  redis.call('HSET', KEYS[1], 'state', 2, 'probes', probes, 'lease_at', string.format('%d', now))
  return {2, failures, 0, 1}
end
return {2, failures, 0, 0}
"
    )
}

/// KEYS: breakers. Returns `{state, failures, open_left_us}` for each, flattened.
pub(crate) const VIEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for _, key in ipairs(KEYS) do
  local h = redis.call('HMGET', key, 'state', 'failures', 'open_until')
  local state = tonumber(h[1] or '0')
  local left = 0
  if state == 1 then left = math.max(0, tonumber(h[3] or '0') - now) end
  table.insert(out, state)
  table.insert(out, tonumber(h[2] or '0'))
  table.insert(out, left)
end
return out
";

/// This process's view of one shared breaker.
#[derive(Debug)]
pub(crate) struct View {
    state: AtomicU8,
    failures: AtomicU32,
    /// While OPEN: microseconds since `origin` when the open period ends.
    open_until: AtomicU64,
    origin: Instant,
}

impl View {
    pub(crate) fn new(origin: Instant) -> View {
        View {
            state: AtomicU8::new(0),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            origin,
        }
    }

    /// Applies `{state, failures, open_left_us}` read from Redis.
    pub(crate) fn update(&self, state: i64, failures: i64, left_us: i64) {
        let now = self.origin.elapsed().as_micros() as u64;
        self.open_until
            .store(now + left_us.max(0) as u64, Ordering::Release);
        self.failures.store(
            failures.clamp(0, i64::from(u32::MAX)) as u32,
            Ordering::Release,
        );
        self.state.store(state.clamp(0, 2) as u8, Ordering::Release);
    }

    /// The state as last seen.
    pub(crate) fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Consecutive failures as last seen.
    pub(crate) fn failures(&self) -> u32 {
        self.failures.load(Ordering::Acquire)
    }

    /// While OPEN: the time left in the open period (zero once it has passed).
    pub(crate) fn open_left(&self) -> Duration {
        let now = self.origin.elapsed().as_micros() as u64;
        Duration::from_micros(self.open_until.load(Ordering::Acquire).saturating_sub(now))
    }
}
