//! `resilient metrics`: totals of the resilience journal, per policy and key.
//!
//! The journal is the only record that outlives a run, so this reads it rather than any
//! in-process counter: what retried, what tripped, what waited, over the window asked for.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::args::{MetricsArgs, journal_path};
use crate::error::CliError;
use crate::journal;

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
    events: u64,
}

impl Totals {
    fn add(&mut self, kind: &str) {
        self.events += 1;
        let counter = match kind {
            "retry" => &mut self.retries,
            "breaker_opened" => &mut self.breaker_opened,
            "breaker_half_open" => &mut self.breaker_half_open,
            "breaker_closed" => &mut self.breaker_closed,
            "circuit_open_rejection" => &mut self.circuit_open_rejections,
            "rate_limit_wait" => &mut self.rate_limit_waits,
            "rate_limit_rejected" => &mut self.rate_limit_rejections,
            "recovery" => &mut self.recoveries,
            "recovery_failed" => &mut self.recovery_failures,
            "budget_exhausted" => &mut self.budget_exhausted,
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
pub fn run(args: MetricsArgs) -> Result<(), CliError> {
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
            .add(&event.kind);
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
