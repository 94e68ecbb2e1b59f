//! `resilient health`: is the database reachable, and what has resilience been doing?
//!
//! Reachability and latency come from the connector's own health check, which connects
//! directly, outside the retry loop and the breaker, so asking does not change the answer.
//! A one-shot command has no history of its own, so the rest comes from the journal that
//! `sync` runs write: the breaker state is the last breaker transition journaled for the
//! policy and key (this process's own engine makes no breaker-counted calls), and retries,
//! rate-limit violations and recoveries are those of the last hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use connector_postgres::ConnectorHealth;
use serde::Serialize;

use crate::args::{HealthArgs, journal_path};
use crate::connect;
use crate::error::CliError;
use crate::journal;

/// Journal figures for one policy and key over the last hour.
#[derive(Debug, Default, Serialize)]
struct Recent {
    retry_attempts: u64,
    rate_limit_violations: u64,
    recovery_events: u64,
    breaker_opened: u64,
}

/// The breaker state as the journal last recorded it for the policy and key.
#[derive(Debug, Serialize)]
struct Breaker {
    /// `OPEN`, `HALF_OPEN` or `CLOSED`; `None` when no transition was journaled.
    state: Option<&'static str>,
    /// When the transition was journaled (RFC 3339).
    since: Option<String>,
    /// Where the state comes from: `journal`, `engine` or `none`.
    source: &'static str,
}

impl Breaker {
    /// The last breaker transition among `events` (oldest first) for `policy` and `key`.
    fn from_journal(events: &[journal::JournalEvent], policy: &str, key: &str) -> Breaker {
        let last = events.iter().rev().find_map(|e| {
            let state = match e.kind.as_str() {
                "breaker_opened" => "OPEN",
                "breaker_half_open" => "HALF_OPEN",
                "breaker_closed" => "CLOSED",
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
            (Some(state), _, _) => state.to_owned(),
            _ => "unknown: no breaker events in the journal".to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    connector: &'static str,
    health: ConnectorHealth,
    circuit_breaker: Breaker,
    last_hour: Recent,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<resilience_core::HealthReport>,
}

/// Runs `resilient health`; exit 1 when the database is not reachable.
pub async fn run(args: HealthArgs) -> Result<(), CliError> {
    let (pg, engine) =
        connect::from_flags(args.target.database_url.as_deref(), &args.target.policies)?;
    let health = pg
        .check_health()
        .await
        .map_err(|e| CliError::connector("health check failed", &e))?;
    let (events, _) = journal::read_all(&journal_path(&args.state_dir))
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
        match e.kind.as_str() {
            "retry" => recent.retry_attempts += 1,
            "rate_limit_wait" | "rate_limit_rejected" => recent.rate_limit_violations += 1,
            "recovery" => recent.recovery_events += 1,
            "breaker_opened" => recent.breaker_opened += 1,
            _ => {}
        }
    }
    recent.retry_attempts += health.retry_attempts_last_hour;
    recent.rate_limit_violations += health.rate_limit_violations;
    recent.recovery_events += health.connection_recovery_events;
    let verdict = Verdict::of(&health);
    let error = health.error.clone();
    let report = Report {
        connector: "postgres",
        engine: args.detailed.then(|| engine.health()),
        health,
        circuit_breaker,
        last_hour: recent,
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
    fn of(h: &connector_postgres::ConnectorHealth) -> Verdict {
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
    let status = Verdict::of(h).as_str();
    println!("connector:        postgres {} (policy {})", h.key, h.policy);
    println!("status:           {status}");
    println!("latency:          {:.1} ms", h.latency_ms);
    if let Some(error) = &h.error {
        println!("error:            {error}");
    }
    println!("circuit breaker:  {}", r.circuit_breaker.describe());
    println!(
        "retry attempts (last hour):  {}",
        r.last_hour.retry_attempts
    );
    println!(
        "rate-limit violations:       {}",
        r.last_hour.rate_limit_violations
    );
    println!(
        "recovery events:             {}",
        r.last_hour.recovery_events
    );
    println!(
        "breaker opened (last hour):  {}",
        r.last_hour.breaker_opened
    );
    if detailed {
        println!(
            "pool:             {} connections, {} idle",
            h.pool_size, h.pool_idle
        );
        println!("state:            {}", h.state);
    }
}
