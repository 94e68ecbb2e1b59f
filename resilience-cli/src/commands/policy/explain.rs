//! `policy explain NAME`: what a policy does to one call, in numbers.
//!
//! Operators tune policies by arithmetic they usually do by hand: how long the retries of
//! one call can take, how long a burst needs to drain. This module does it from the same
//! [`Backoff`] schedule the engine uses, so the explanation cannot drift from behaviour.

use std::fmt::Write as _;
use std::time::Duration;

use connector_postgres::{DEFAULT_PAGE_MEMORY, adaptive_page_target};
use resilience_core::backoff::Backoff;
use resilience_core::policy::{BreakerMode, Policy, WhenLimited};
use serde::Serialize;

/// One retry's delay.
#[derive(Debug, Serialize)]
pub struct RetryDelay {
    /// 1 = the first retry (the second attempt).
    pub retry: u32,
    /// The capped exponential delay before jitter, in seconds.
    pub base_secs: f64,
    /// The smallest delay jitter can give, in seconds.
    pub min_secs: f64,
    /// The largest delay jitter can give, in seconds.
    pub max_secs: f64,
}

/// The explanation of one policy.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The policy's name.
    pub policy: String,
    /// Attempts in all, the first call included.
    pub max_attempts: u32,
    /// The jitter mode.
    pub jitter: &'static str,
    /// The delay before each retry.
    pub delays: Vec<RetryDelay>,
    /// The most time spent waiting between attempts, in seconds.
    pub worst_case_backoff_secs: f64,
    /// Attempts times the attempt timeout, plus the worst backoff and rate-limit waits.
    pub worst_case_unbounded_secs: f64,
    /// The worst case capped by the total deadline, in seconds.
    pub worst_case_call_secs: f64,
    /// Whether the total deadline, not the attempts, bounds the worst case.
    pub bounded_by_total_deadline: bool,
    /// Attempts that fit in the total deadline in the worst case.
    pub worst_case_attempts: u32,
    /// Whether rate limiting applies.
    pub rate_limit_enabled: bool,
    /// Sustained calls per second.
    pub sustained_per_second: f64,
    /// Seconds between calls at the sustained rate.
    pub interval_secs: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
    /// Seconds for an empty bucket to refill to `burst`.
    pub refill_secs: f64,
    /// Calls that can queue behind an empty bucket and still get a token within `max_wait`.
    pub max_queued_within_wait: u64,
    /// `wait` or `reject`.
    pub when_limited: &'static str,
    /// What opens the breaker: `consecutive` or `ratio`.
    pub breaker_mode: &'static str,
    /// The breaker's consecutive-failure threshold (0 when disabled).
    pub breaker_failure_threshold: u32,
    /// Ratio mode: the share of failed attempts that opens the breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_failure_ratio: Option<f64>,
    /// Ratio mode: the window attempts are counted over, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_sampling_window_secs: Option<f64>,
    /// Ratio mode: attempts the window must hold before the ratio counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_minimum_calls: Option<u32>,
    /// How long an open breaker fails calls fast, in seconds.
    pub breaker_open_secs: f64,
    /// How table reads under this policy size their pages.
    pub reads: ReadsExplanation,
}

/// Table reads under a policy: every page is one call and takes one token.
#[derive(Debug, Serialize)]
pub struct ReadsExplanation {
    /// `(readers, ms)`: adaptive pages grow while a page takes less than this.
    pub page_target_ms: Vec<(usize, u128)>,
    /// `(rows per page, rows per second)`: the most the rate limit lets all readers of one
    /// host read beyond the burst, at that page size (`None` without a limit).
    pub limit_ceiling_rows_per_second: Vec<(u64, Option<u64>)>,
    /// The default memory budget of one adaptive page, in MiB.
    pub default_page_memory_mib: usize,
}

/// Page sizes the explanation computes the rate limit's ceiling for.
const PAGE_ROWS: [u64; 3] = [10_000, 100_000, 300_000];

fn reads(policy: &Policy) -> ReadsExplanation {
    let rl = &policy.rate_limit;
    let limit = rl.enabled.then(|| rl.requests_per_minute.get());
    ReadsExplanation {
        page_target_ms: [1, 2, 4]
            .into_iter()
            .map(|readers| (readers, adaptive_page_target(readers, limit).as_millis()))
            .collect(),
        limit_ceiling_rows_per_second: PAGE_ROWS
            .into_iter()
            .map(|rows| (rows, limit.map(|rpm| rows * u64::from(rpm) / 60)))
            .collect(),
        default_page_memory_mib: DEFAULT_PAGE_MEMORY >> 20,
    }
}

/// Computes the explanation of `policy`.
pub fn explain(name: &str, policy: &Policy) -> Explanation {
    let retry = &policy.retry;
    let cb = &policy.circuit_breaker;
    let ratio = cb.enabled && cb.mode == BreakerMode::Ratio;
    let backoff = Backoff::new(retry);
    let attempts = retry.max_attempts.get();
    let delays: Vec<RetryDelay> = (1..attempts)
        .map(|r| {
            let (min, max) = backoff.bounds(r);
            RetryDelay {
                retry: r,
                base_secs: backoff.base(r).as_secs_f64(),
                min_secs: min.as_secs_f64(),
                max_secs: max.as_secs_f64(),
            }
        })
        .collect();
    let rl = &policy.rate_limit;
    let waits = rl.enabled && rl.when_limited == WhenLimited::Wait;
    let wait_per_attempt = if waits { rl.max_wait } else { Duration::ZERO };
    let backoff_total: f64 = delays.iter().map(|d| d.max_secs).sum();
    let per_attempt = (policy.timeout.attempt + wait_per_attempt).as_secs_f64();
    let unbounded = per_attempt * f64::from(attempts) + backoff_total;
    let total = policy.timeout.total.as_secs_f64();
    // Attempts that can start before the total deadline when each one uses its full time.
    let mut elapsed = 0.0;
    let mut fit = 0;
    for n in 0..attempts {
        if n > 0 {
            elapsed += delays[n as usize - 1].max_secs;
        }
        if elapsed >= total {
            break;
        }
        fit += 1;
        elapsed += per_attempt;
    }
    let per_second = f64::from(rl.requests_per_minute.get()) / 60.0;
    Explanation {
        policy: name.to_owned(),
        max_attempts: attempts,
        jitter: retry.jitter.as_str(),
        delays,
        worst_case_backoff_secs: backoff_total,
        worst_case_unbounded_secs: unbounded,
        worst_case_call_secs: unbounded.min(total),
        bounded_by_total_deadline: unbounded > total,
        worst_case_attempts: fit.max(1),
        rate_limit_enabled: rl.enabled,
        sustained_per_second: per_second,
        interval_secs: 1.0 / per_second,
        burst: rl.burst.get(),
        refill_secs: f64::from(rl.burst.get()) / per_second,
        max_queued_within_wait: (rl.max_wait.as_secs_f64() * per_second).floor() as u64,
        when_limited: match rl.when_limited {
            WhenLimited::Wait => "wait",
            WhenLimited::Reject => "reject",
        },
        breaker_mode: cb.mode.as_str(),
        breaker_failure_threshold: if cb.enabled {
            cb.failure_threshold.get()
        } else {
            0
        },
        breaker_failure_ratio: ratio.then_some(cb.failure_ratio),
        breaker_sampling_window_secs: ratio.then_some(cb.sampling_window.as_secs_f64()),
        breaker_minimum_calls: ratio.then_some(cb.minimum_calls.get()),
        breaker_open_secs: cb.recovery_timeout.as_secs_f64(),
        reads: reads(policy),
    }
}

fn secs(s: f64) -> String {
    humantime::format_duration(Duration::from_millis((s * 1000.0).round() as u64)).to_string()
}

/// The explanation as text for a terminal.
pub fn render(e: &Explanation, policy: &Policy) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policy `{}`", e.policy);
    let _ = writeln!(
        out,
        "\nretry: {} attempts (the first call included), jitter = {}",
        e.max_attempts, e.jitter
    );
    if e.delays.is_empty() {
        let _ = writeln!(out, "  no retries");
    }
    for d in &e.delays {
        let _ = writeln!(
            out,
            "  before retry {} (attempt {}): base {}, with jitter between {} and {}",
            d.retry,
            d.retry + 1,
            secs(d.base_secs),
            secs(d.min_secs),
            secs(d.max_secs)
        );
    }
    let _ = writeln!(out, "\nworst case of one call:");
    let _ = writeln!(
        out,
        "  backoff: at most {} waiting between attempts",
        secs(e.worst_case_backoff_secs)
    );
    let _ = writeln!(
        out,
        "  {} attempts x (attempt timeout {}{}) + backoff = {}",
        e.max_attempts,
        secs(policy.timeout.attempt.as_secs_f64()),
        if e.rate_limit_enabled && e.when_limited == "wait" {
            format!(
                " + rate-limit wait {}",
                secs(policy.rate_limit.max_wait.as_secs_f64())
            )
        } else {
            String::new()
        },
        secs(e.worst_case_unbounded_secs)
    );
    let _ = writeln!(
        out,
        "  total deadline {}: a call takes at most {} and makes at most {} attempts{}",
        secs(policy.timeout.total.as_secs_f64()),
        secs(e.worst_case_call_secs),
        e.worst_case_attempts,
        if e.bounded_by_total_deadline {
            " (the deadline is the bound)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "\nrate limit:");
    if !e.rate_limit_enabled {
        let _ = writeln!(out, "  disabled");
    } else {
        let _ = writeln!(
            out,
            "  sustained {} calls/min = {:.2}/s (one every {}), burst {}",
            policy.rate_limit.requests_per_minute,
            e.sustained_per_second,
            secs(e.interval_secs),
            e.burst
        );
        let _ = writeln!(
            out,
            "  an empty bucket refills the burst in {}",
            secs(e.refill_secs)
        );
        let _ = writeln!(
            out,
            "  when limited: {}; within max_wait {} about {} queued calls get a token",
            e.when_limited,
            secs(policy.rate_limit.max_wait.as_secs_f64()),
            e.max_queued_within_wait
        );
        let _ = writeln!(
            out,
            "  {} calls at once: {} go now, the rest drain in {}",
            e.burst * 2,
            e.burst,
            secs(f64::from(e.burst) / e.sustained_per_second)
        );
    }
    render_reads(&mut out, &e.reads);
    let _ = writeln!(out, "\ncircuit breaker:");
    if e.breaker_failure_threshold == 0 {
        let _ = writeln!(out, "  disabled");
    } else if let (Some(ratio), Some(window), Some(minimum)) = (
        e.breaker_failure_ratio,
        e.breaker_sampling_window_secs,
        e.breaker_minimum_calls,
    ) {
        let _ = writeln!(
            out,
            "  opens when {}% or more of the attempts in the last {} failed (once it holds {minimum} attempts), fails calls fast for {}, closes after {} successful probes",
            (ratio * 1000.0).round() / 10.0,
            secs(window),
            secs(e.breaker_open_secs),
            policy.circuit_breaker.success_threshold
        );
    } else {
        let _ = writeln!(
            out,
            "  opens after {} consecutive failed attempts, fails calls fast for {}, closes after {} successful probes",
            e.breaker_failure_threshold,
            secs(e.breaker_open_secs),
            policy.circuit_breaker.success_threshold
        );
    }
    out
}

/// The table-read section: how page size, partitions and the rate limit interact.
fn render_reads(out: &mut String, r: &ReadsExplanation) {
    let _ = writeln!(
        out,
        "\ntable reads (resilient sync, full): every page is one call and takes one token"
    );
    let targets: Vec<String> = r
        .page_target_ms
        .iter()
        .map(|(readers, ms)| match readers {
            1 => format!("1 reader {}", secs(*ms as f64 / 1000.0)),
            n => format!("{n} partitions {}", secs(*ms as f64 / 1000.0)),
        })
        .collect();
    let _ = writeln!(
        out,
        "  adaptive pages (page_size = \"auto\") double while a page takes less than: {}",
        targets.join(", ")
    );
    let _ = writeln!(
        out,
        "  up to page_memory_mb ({} MiB by default); a retried page asks for half the rows",
        r.default_page_memory_mib
    );
    let ceilings: Vec<String> = r
        .limit_ceiling_rows_per_second
        .iter()
        .filter_map(|(rows, per_second)| {
            per_second.map(|p| format!("pages of {rows} rows: {p} rows/s"))
        })
        .collect();
    if ceilings.is_empty() {
        let _ = writeln!(out, "  no rate limit: the server bounds a read");
    } else {
        let _ = writeln!(
            out,
            "  beyond the burst the limit caps all readers of a host together, partitions \
             included: {}",
            ceilings.join("; ")
        );
        let _ = writeln!(
            out,
            "  a sync warns when pages reach their memory budget and the limit, not the server, \
             bounds the read"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_preset_numbers() {
        let policy = Policy::default();
        let e = explain("db", &policy);
        assert_eq!(e.max_attempts, 3);
        let bounds: Vec<_> = e.delays.iter().map(|d| (d.min_secs, d.max_secs)).collect();
        assert_eq!(bounds, [(0.0, 1.0), (0.0, 2.0)], "full jitter on 1 s, 2 s");
        assert_eq!(e.worst_case_backoff_secs, 3.0);
        // 3 x (30 s + 10 s wait) + 3 s = 123 s, capped by the 2 min total deadline.
        assert_eq!(e.worst_case_unbounded_secs, 123.0);
        assert_eq!(e.worst_case_call_secs, 120.0);
        assert!(e.bounded_by_total_deadline);
        assert_eq!(e.worst_case_attempts, 3);
        assert_eq!(e.sustained_per_second, 5.0);
        assert_eq!(e.refill_secs, 10.0, "50 tokens at 5/s");
        assert_eq!(e.max_queued_within_wait, 50);
        assert_eq!(e.reads.page_target_ms, [(1, 200), (2, 400), (4, 800)]);
        assert_eq!(
            e.reads.limit_ceiling_rows_per_second,
            [
                (10_000, Some(50_000)),
                (100_000, Some(500_000)),
                (300_000, Some(1_500_000))
            ]
        );
        let text = render(&e, &policy);
        assert!(
            text.contains("double while a page takes less than: 1 reader 200ms, 2 partitions 400ms, 4 partitions 800ms"),
            "{text}"
        );
        assert!(
            text.contains("pages of 100000 rows: 500000 rows/s"),
            "{text}"
        );
        assert_eq!(e.breaker_mode, "consecutive");
        assert_eq!(e.breaker_failure_ratio, None);
    }

    #[test]
    fn ratio_mode_is_explained() {
        let mut policy = Policy::default();
        policy.circuit_breaker.mode = BreakerMode::Ratio;
        let e = explain("db", &policy);
        assert_eq!(e.breaker_mode, "ratio");
        assert_eq!(e.breaker_failure_ratio, Some(0.5));
        assert_eq!(e.breaker_minimum_calls, Some(20));
        let text = render(&e, &policy);
        assert!(
            text.contains(
                "opens when 50% or more of the attempts in the last 30s failed (once it holds 20 attempts), fails calls fast for 30s"
            ),
            "{text}"
        );
    }
}
