//! `resilient health`: is the database reachable, and what has resilience been doing?
//!
//! Reachability and latency come from the connector's own health check, which connects
//! directly, outside the retry loop and the breaker, so asking does not change the answer.
//! A one-shot command has no history of its own, so the rest comes from the journal that
//! `sync` runs write: the breaker state is the last breaker transition journaled for the
//! policy and key (this process's own engine makes no breaker-counted calls), and retries,
//! calls given up on, rate-limit waits and violations and recoveries are those of the last
//! hour. The text and the JSON show the same figures, from one struct; the journal's
//! events are counted by their kind, and a rate-limit wait is a wait, not a violation (a
//! violation is a call the limiter refused).
//!
//! With a `[store]`, the breaker state is the fleet's, read live from the store, and the
//! report adds the fleet: shared breakers, the last hour's counters of every worker, and
//! the workers that reported recently ([`health_fleet`](crate::commands::health_fleet)).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use connector_postgres::ConnectorHealth;
use resilience_core::ErrorClass;
use resilience_core::connector::ConnectorState;
use serde::Serialize;

use crate::args::{HealthArgs, journal_path};
use crate::connect;
use crate::error::CliError;
use crate::journal::{self, JournalEvent, Kind};

/// Journal figures for one policy and key over the last hour.
#[derive(Debug, Default, Serialize)]
struct Recent {
    /// Retries started.
    retry_attempts: u64,
    /// Calls the engine gave up on (any verdict).
    calls_gave_up: u64,
    /// Times a call waited for a rate-limit token.
    rate_limit_waits: u64,
    /// Calls the rate limiter refused.
    rate_limit_violations: u64,
    /// Recoveries that mended the connection.
    recovery_events: u64,
    /// Recoveries that did not.
    recovery_failures: u64,
    /// Times the breaker opened.
    breaker_opened: u64,
    /// Events per operation (with `--detailed`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    events_by_operation: BTreeMap<String, u64>,
}

impl Recent {
    fn add(&mut self, event: &JournalEvent, detailed: bool) {
        let counter = match event.kind {
            Kind::Retry => &mut self.retry_attempts,
            Kind::GaveUp => &mut self.calls_gave_up,
            Kind::RateLimitWait => &mut self.rate_limit_waits,
            Kind::RateLimitRejected => &mut self.rate_limit_violations,
            Kind::Recovery => &mut self.recovery_events,
            Kind::RecoveryFailed => &mut self.recovery_failures,
            Kind::BreakerOpened => &mut self.breaker_opened,
            _ => return,
        };
        *counter += 1;
        if detailed && let Some(op) = &event.operation {
            *self.events_by_operation.entry(op.clone()).or_default() += 1;
        }
    }
}

/// What the direct check found, and the pool's figures.
#[derive(Debug, Serialize)]
struct Check {
    state: ConnectorState,
    key: String,
    policy: String,
    reachable: bool,
    latency_ms: f64,
    error: Option<String>,
    error_class: Option<ErrorClass>,
    pool_size: u32,
    pool_idle: usize,
}

impl Check {
    fn of(h: &ConnectorHealth) -> Check {
        Check {
            state: h.state,
            key: h.key.clone(),
            policy: h.policy.clone(),
            reachable: h.reachable,
            latency_ms: h.latency_ms,
            error: h.error.clone(),
            error_class: h.error_class,
            pool_size: h.pool_size,
            pool_idle: h.pool_idle,
        }
    }
}

/// The breaker state as the journal last recorded it for the policy and key.
#[derive(Debug, Serialize)]
struct Breaker {
    /// `OPEN`, `HALF_OPEN` or `CLOSED`; `None` when no transition was journaled.
    state: Option<&'static str>,
    /// When the transition was journaled (RFC 3339).
    since: Option<String>,
    /// Where the state comes from: `journal`, `engine`, `store` or `none`.
    source: &'static str,
}

impl Breaker {
    /// The last breaker transition among `events` (oldest first) for `policy` and `key`.
    fn from_journal(events: &[JournalEvent], policy: &str, key: &str) -> Breaker {
        let last = events.iter().rev().find_map(|e| {
            let state = match e.kind {
                Kind::BreakerOpened => "OPEN",
                Kind::BreakerHalfOpen => "HALF_OPEN",
                Kind::BreakerClosed => "CLOSED",
                _ => return None,
            };
            (e.policy == policy && e.key == key).then(|| (state, e.ts.clone()))
        });
        match last {
            Some((state, ts)) => Breaker {
                state: Some(state),
                since: Some(ts),
                source: "journal",
            },
            None => Breaker {
                state: None,
                since: None,
                source: "none",
            },
        }
    }

    fn describe(&self) -> String {
        match (self.state, &self.since, self.source) {
            (Some(state), Some(since), "journal") => {
                format!("{state} (since {since}, from the journal)")
            }
            (Some(state), _, "store") => format!("{state} (fleet-wide, live from the store)"),
            (Some(state), _, _) => state.to_owned(),
            _ => "unknown: no breaker events in the journal".to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    connector: &'static str,
    health: Check,
    circuit_breaker: Breaker,
    last_hour: Recent,
    /// Journal lines that could not be read (skipped).
    journal_skipped_lines: usize,
    /// The fleet, when the policies name a shared store.
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: Option<crate::commands::health_fleet::Fleet>,
}

/// Runs `resilient health`; exit 1 when the database is not reachable.
pub async fn run(args: HealthArgs) -> Result<(), CliError> {
    if args.target.connector == crate::args::ConnectorKind::Http {
        return crate::commands::health_http::run(&args).await;
    }
    let (pg, engine) =
        connect::from_flags(args.target.database_url.as_deref(), &args.target.policies)?;
    let fleet = crate::commands::health_fleet::read(&engine.policies()).await?;
    let health = pg
        .check_health()
        .await
        .map_err(|e| CliError::connector("health check failed", &e))?;
    let (events, skipped) = journal::read_all(&journal_path(&args.state_dir))
        .map_err(|e| CliError::io("cannot read the journal", e))?;
    let circuit_breaker = match health.circuit_breaker_state {
        // Only if this process's engine has seen calls (it normally has not).
        Some(state) => Breaker {
            state: Some(state.as_str()),
            since: None,
            source: "engine",
        },
        None => Breaker::from_journal(&events, &health.policy, &health.key),
    };
    let shared = fleet.as_ref().and_then(|f| {
        f.breakers
            .iter()
            .find(|b| b.policy == health.policy && b.key == health.key)
    });
    let circuit_breaker = match shared {
        Some(b) => Breaker {
            state: Some(b.state),
            since: None,
            source: "store",
        },
        None => circuit_breaker,
    };
    let hour_ago = SystemTime::now()
        .checked_sub(Duration::from_secs(3600))
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut recent = Recent::default();
    for e in events
        .iter()
        .filter(|e| e.unix_ms >= hour_ago)
        .filter(|e| e.policy == health.policy && e.key == health.key)
    {
        recent.add(e, args.detailed);
    }
    let verdict = Verdict::of(&Check::of(&health));
    let error = health.error.clone();
    let report = Report {
        connector: "postgres",
        health: Check::of(&health),
        circuit_breaker,
        last_hour: recent,
        journal_skipped_lines: skipped,
        fleet,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        print_text(&report, args.detailed);
    }
    let error = error.unwrap_or_else(|| "no answer".into());
    match verdict {
        Verdict::Healthy => Ok(()),
        Verdict::Refused => Err(CliError::Usage(format!(
            "postgres at {} refused the connection: {error}",
            report.health.key
        ))),
        Verdict::Unreachable => Err(CliError::Failed(format!(
            "postgres at {} is not reachable: {error}",
            report.health.key
        ))),
    }
}

/// What the check found: a refusal (credentials, database name) is the caller's to fix
/// (exit 2); no answer is an operational failure (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Healthy,
    Refused,
    Unreachable,
}

impl Verdict {
    fn of(h: &Check) -> Verdict {
        match (h.error.is_some(), h.error_class) {
            (false, _) => Verdict::Healthy,
            (true, Some(class)) if class.is_caller_error() => Verdict::Refused,
            (true, _) => Verdict::Unreachable,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "reachable",
            Verdict::Refused => "REFUSED (the server answered and rejected the connection)",
            Verdict::Unreachable => "UNREACHABLE",
        }
    }
}

fn print_text(r: &Report, detailed: bool) {
    let h = &r.health;
    let recent = &r.last_hour;
    let status = Verdict::of(h).as_str();
    println!("connector:        postgres {} (policy {})", h.key, h.policy);
    println!("status:           {status}");
    println!("latency:          {:.1} ms", h.latency_ms);
    if let Some(error) = &h.error {
        println!("error:            {error}");
    }
    println!("circuit breaker:  {}", r.circuit_breaker.describe());
    println!("retry attempts (last hour):  {}", recent.retry_attempts);
    println!("calls given up (last hour):  {}", recent.calls_gave_up);
    println!("rate-limit waits:            {}", recent.rate_limit_waits);
    println!(
        "rate-limit violations:       {} (calls refused)",
        recent.rate_limit_violations
    );
    println!(
        "recovery events:             {} (connection mended; {} failed)",
        recent.recovery_events, recent.recovery_failures
    );
    println!("breaker opened (last hour):  {}", recent.breaker_opened);
    if detailed {
        println!(
            "pool:             {} connections, {} idle",
            h.pool_size, h.pool_idle
        );
        println!("state:            {}", h.state);
        for (operation, n) in &recent.events_by_operation {
            println!("events of {operation} (last hour): {n}");
        }
    }
    if let Some(fleet) = &r.fleet {
        crate::commands::health_fleet::print(fleet);
    }
    if r.journal_skipped_lines > 0 {
        eprintln!(
            "warning: skipped {} unreadable journal lines",
            r.journal_skipped_lines
        );
    }
}
