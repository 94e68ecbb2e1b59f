//! Leases with fencing tokens, and checkpoints written under them: the building blocks
//! for several workers sharing one pipeline (one source at a time per worker).
//!
//! A lease on a name (a pipeline's source) is held by one worker until it lapses after
//! its TTL unless renewed, so a worker that dies (even `kill -9`) loses it and another
//! takes over. Every grant draws a new *fencing token* from a counter that only grows; a
//! checkpoint is written only with the token of the lease that is current, so a worker
//! that paused past its TTL and wakes up cannot overwrite what its successor wrote
//! ([`RedisStore::put_checkpoint`]). Checkpoints are one hash per pipeline in Redis,
//! so workers on different machines read the same state.
//!
//! `resilient sync` uses them when a pipeline file says `[state] backend = "redis"`.

use std::time::Duration;

/// KEYS[1]: the lease, KEYS[2]: its fencing counter. ARGV: worker, TTL (ms). Returns
/// the token (granted or renewed for the same worker) or `-remaining_ms` when another
/// worker holds it.
pub(crate) const ACQUIRE: &str = r"
local held = redis.call('GET', KEYS[1])
if held then
  local worker, token = string.match(held, '^(.*)|(%d+)$')
  if worker == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return -math.max(1, redis.call('PTTL', KEYS[1]))
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
";

/// KEYS[1]: the lease. ARGV: worker, token, TTL (ms). Returns 1 when renewed, 0 when
/// the lease is no longer this one.
pub(crate) const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
";

/// KEYS[1]: the lease. ARGV: worker, token. Deletes the lease if it is this one.
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// KEYS[1]: the lease, KEYS[2]: the checkpoints hash. ARGV: worker, token, field,
/// value. Writes only while this lease is current: returns 1, or 0 (fenced off).
pub(crate) const PUT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
";

/// A lease held by this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLease {
    /// What is leased (a pipeline and source).
    pub pipeline: String,
    /// The source.
    pub source: String,
    /// The fencing token: larger than every earlier grant of this lease.
    pub token: u64,
    /// How long it lasts unless renewed.
    pub ttl: Duration,
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Granted (or renewed: this worker held it already).
    Held(SourceLease),
    /// Another worker holds it for up to this long.
    Taken(Duration),
}
