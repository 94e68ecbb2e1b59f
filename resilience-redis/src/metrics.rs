//! Fleet health: per-minute counters in Redis, and the fleet report `resilient health`
//! prints.
//!
//! Each process counts its engine's events per policy and key ([`Counters`], an event
//! observer: a few atomic adds, no request) and adds them to Redis with the heartbeat
//! (every [`HEARTBEAT`](crate::fleet::HEARTBEAT)): one hash per policy, key and minute of
//! the server's clock, expiring after [`KEEP`]. A reader sums the last hour's minutes of
//! every process, reads the shared breakers and lists the workers that reported lately
//! ([`FleetReport`]).
//!
//! Counted: retries, calls given up on, rate-limit waits and violations (refusals),
//! breaker openings and fast failures, recoveries. Successful calls make no event, so the
//! fleet's call count is not kept here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use resilience_core::breaker::BreakerState;
use resilience_core::events::{Event, EventKind, Observer};

/// How long a minute's counters are kept.
pub const KEEP: Duration = Duration::from_secs(2 * 3600);

/// The counter names, as stored and reported.
pub const COUNTERS: [&str; 7] = [
    "retry_attempts",
    "calls_gave_up",
    "rate_limit_waits",
    "rate_limit_violations",
    "circuit_open_rejections",
    "breaker_opened",
    "recovery_events",
];

/// KEYS[1]: the index of counted policy|key names. ARGV: keep (s), then triples of
/// name, counter, amount. Counters go to `<prefix>:m:<name>:<minute>` (minute of TIME).
pub(crate) const ADD: &str = r"
local t = redis.call('TIME')
local minute = math.floor(tonumber(t[1]) / 60)
local keep = tonumber(ARGV[1])
local base = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len('index'))
for i = 2, #ARGV, 3 do
  local key = base .. ARGV[i] .. ':' .. minute
  redis.call('HINCRBY', key, ARGV[i + 1], tonumber(ARGV[i + 2]))
  redis.call('EXPIRE', key, keep)
  redis.call('SADD', KEYS[1], ARGV[i])
end
redis.call('EXPIRE', KEYS[1], keep)
return minute
";

/// KEYS[1]: the index. Returns, per name, the name and its counters over the last hour,
/// flattened: `{name, counter, sum, counter, sum, ..., ''}`.
pub(crate) const SUM: &str = r"
local t = redis.call('TIME')
local minute = math.floor(tonumber(t[1]) / 60)
local base = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len('index'))
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sums = {}
  for m = minute - 59, minute do
    local h = redis.call('HGETALL', base .. name .. ':' .. m)
    for i = 1, #h, 2 do sums[h[i]] = (sums[h[i]] or 0) + tonumber(h[i + 1]) end
  end
  table.insert(out, name)
  for k, v in pairs(sums) do table.insert(out, k); table.insert(out, tostring(v)) end
  table.insert(out, '')
end
return out
";

/// The engine events of this process not yet added to Redis, by `policy|key`.
#[derive(Debug, Default)]
pub struct Counters {
    pending: Mutex<HashMap<String, [u64; 7]>>,
}

impl Counters {
    /// Takes what was counted since the last call.
    pub(crate) fn take(&self) -> Vec<(String, [u64; 7])> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.drain().collect()
    }

    /// Puts back counts a failed flush could not add.
    pub(crate) fn restore(&self, counts: Vec<(String, [u64; 7])>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (name, add) in counts {
            let slot = pending.entry(name).or_default();
            for (have, more) in slot.iter_mut().zip(add) {
                *have += more;
            }
        }
    }
}

impl Observer for Counters {
    fn on_event(&self, event: &Event<'_>) {
        let index = match event.kind {
            EventKind::RetryScheduled { .. } => 0,
            EventKind::GaveUp { .. } => 1,
            EventKind::RateLimitWait { .. } => 2,
            EventKind::RateLimitRejected { .. } => 3,
            EventKind::CircuitOpenRejection { .. } => 4,
            EventKind::BreakerTransition {
                to: BreakerState::Open,
                ..
            } => 5,
            EventKind::RecoverySucceeded { .. } => 6,
            _ => return,
        };
        let name = format!("{}|{}", event.policy, event.key);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.entry(name).or_default()[index] += 1;
    }
}

/// One shared breaker as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetBreaker {
    /// The policy.
    pub policy: String,
    /// The key.
    pub key: String,
    /// The fleet's state.
    pub state: BreakerState,
    /// Consecutive failures counted by the fleet.
    pub failures: u32,
    /// While OPEN: how long until probes are admitted.
    pub open_for: Duration,
}

/// The fleet as the store sees it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetReport {
    /// Workers that reported in the last [`WORKER_TTL`](crate::fleet::WORKER_TTL), with
    /// how long ago, most recent first.
    pub workers: Vec<(String, Duration)>,
    /// Every shared breaker.
    pub breakers: Vec<FleetBreaker>,
    /// The last hour's counters by `(policy, key)`, by counter name.
    pub last_hour: BTreeMap<(String, String), BTreeMap<String, u64>>,
}
