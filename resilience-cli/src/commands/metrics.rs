//! `resilient metrics`: totals of the resilience journal, per policy and key.
//!
//! The journal is the only record that outlives a run, so this reads it rather than any
//! in-process counter: what retried, what gave up and why, what tripped, what waited, over
//! the window asked for. Lines that cannot be read are skipped and counted.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::args::{MetricsArgs, journal_path};
use crate::error::CliError;
use crate::journal::{self, JournalEvent, Kind};

/// Event counts for one policy and key.
#[derive(Debug, Default, Serialize)]
struct Totals {
    policy: String,
    key: String,
    retries: u64,
    breaker_opened: u64,
    breaker_half_open: u64,
    breaker_closed: u64,
    circuit_open_rejections: u64,
    rate_limit_waits: u64,
    rate_limit_rejections: u64,
    recoveries: u64,
    recovery_failures: u64,
    budget_exhausted: u64,
    /// Calls given up on, whatever the verdict.
    gave_up: u64,
    /// Calls given up on, by verdict (`retries_exhausted`, `circuit_open`, ...).
    gave_up_by_verdict: BTreeMap<String, u64>,
    events: u64,
}

impl Totals {
    fn add(&mut self, event: &JournalEvent) {
        self.events += 1;
        let counter = match event.kind {
            Kind::Retry => &mut self.retries,
            Kind::BreakerOpened => &mut self.breaker_opened,
            Kind::BreakerHalfOpen => &mut self.breaker_half_open,
            Kind::BreakerClosed => &mut self.breaker_closed,
            Kind::CircuitOpenRejection => &mut self.circuit_open_rejections,
            Kind::RateLimitWait => &mut self.rate_limit_waits,
            Kind::RateLimitRejected => &mut self.rate_limit_rejections,
            Kind::Recovery => &mut self.recoveries,
            Kind::RecoveryFailed => &mut self.recovery_failures,
            Kind::BudgetExhausted => &mut self.budget_exhausted,
            Kind::GaveUp => {
                let verdict = event.fields.get("verdict").and_then(|v| v.as_str());
                *self
                    .gave_up_by_verdict
                    .entry(verdict.unwrap_or("unknown").to_owned())
                    .or_default() += 1;
                &mut self.gave_up
            }
            _ => return,
        };
        *counter += 1;
    }
}

#[derive(Debug, Serialize)]
struct Summary {
    window_secs: u64,
    journal: String,
    events: u64,
    skipped_lines: usize,
    keys: Vec<Totals>,
}

/// Runs `resilient metrics`.
pub async fn run(args: MetricsArgs) -> Result<(), CliError> {
    let path = journal_path(&args.state_dir);
    let (events, skipped) = journal::read_since(&path, args.last)
        .map_err(|e| CliError::io(format!("cannot read the journal {}", path.display()), e))?;
    let mut by_key: BTreeMap<(String, String), Totals> = BTreeMap::new();
    for event in &events {
        by_key
            .entry((event.policy.clone(), event.key.clone()))
            .or_insert_with(|| Totals {
                policy: event.policy.clone(),
                key: event.key.clone(),
                ..Totals::default()
            })
            .add(event);
    }
    let summary = Summary {
        window_secs: args.last.as_secs(),
        journal: path.display().to_string(),
        events: events.len() as u64,
        skipped_lines: skipped,
        keys: by_key.into_values().collect(),
    };
    if args.json {
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    let window = humantime::format_duration(args.last);
    println!(
        "resilience events in the last {window} ({} in {})",
        summary.events, summary.journal
    );
    if summary.keys.is_empty() {
        println!("no events");
    }
    for t in &summary.keys {
        println!("\npolicy {} key {}", t.policy, t.key);
        println!("  retries:                 {}", t.retries);
        let verdicts: Vec<String> = t
            .gave_up_by_verdict
            .iter()
            .map(|(verdict, n)| format!("{} {n}", verdict.replace('_', " ")))
            .collect();
        if verdicts.is_empty() {
            println!("  calls given up on:       0");
        } else {
            println!(
                "  calls given up on:       {} ({})",
                t.gave_up,
                verdicts.join(", ")
            );
        }
        println!(
            "  breaker:                 opened {}, half-open {}, closed {}, calls refused while open {}",
            t.breaker_opened, t.breaker_half_open, t.breaker_closed, t.circuit_open_rejections
        );
        println!(
            "  rate limit:              waits {}, rejections {}",
            t.rate_limit_waits, t.rate_limit_rejections
        );
        println!(
            "  recoveries:              {} ({} failed)",
            t.recoveries, t.recovery_failures
        );
        println!("  retry budget exhausted:  {}", t.budget_exhausted);
    }
    if skipped > 0 {
        eprintln!("warning: skipped {skipped} unreadable journal lines");
    }
    Ok(())
}
