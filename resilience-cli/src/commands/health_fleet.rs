//! `resilient health` with a `[store]`: the fleet as the store sees it now — the shared
//! breakers' live state, the last hour's counters of every process, and the workers that
//! reported recently — instead of the journal's guess.

use std::collections::BTreeMap;

use resilience_core::PolicySet;
use resilience_redis::RedisStore;
use serde::Serialize;

use crate::error::CliError;

/// What the store says.
#[derive(Debug, Serialize)]
pub struct Fleet {
    /// The store (its URL holds no password).
    pub store: String,
    /// Workers that reported in the last 10 s.
    pub workers: Vec<Worker>,
    /// Every shared breaker.
    pub breakers: Vec<Breaker>,
    /// The last hour's counters, all workers together.
    pub last_hour: Vec<Counters>,
}

/// One worker.
#[derive(Debug, Serialize)]
pub struct Worker {
    pub id: String,
    pub reported_ms_ago: u64,
}

/// One shared breaker.
#[derive(Debug, Serialize)]
pub struct Breaker {
    pub policy: String,
    pub key: String,
    pub state: &'static str,
    pub failures: u32,
    pub open_for_ms: u64,
}

/// One policy and key's counters.
#[derive(Debug, Serialize)]
pub struct Counters {
    pub policy: String,
    pub key: String,
    pub counters: BTreeMap<String, u64>,
}

/// The fleet, when the policies name a store; an error when it does not answer.
pub async fn read(policies: &PolicySet) -> Result<Option<Fleet>, CliError> {
    let Some(policy) = policies.store() else {
        return Ok(None);
    };
    let store = RedisStore::reader(policy).map_err(|e| CliError::Usage(format!("[store]: {e}")))?;
    let report = store.fleet_report().await.ok_or_else(|| {
        CliError::Failed(format!(
            "the shared store at {} did not answer within {:?}",
            policy.url, policy.timeout
        ))
    })?;
    Ok(Some(Fleet {
        store: format!("{} (prefix {})", policy.url, policy.prefix),
        workers: report
            .workers
            .into_iter()
            .map(|(id, age)| Worker {
                id,
                reported_ms_ago: age.as_millis() as u64,
            })
            .collect(),
        breakers: report
            .breakers
            .into_iter()
            .map(|b| Breaker {
                policy: b.policy,
                key: b.key,
                state: b.state.as_str(),
                failures: b.failures,
                open_for_ms: b.open_for.as_millis() as u64,
            })
            .collect(),
        last_hour: report
            .last_hour
            .into_iter()
            .map(|((policy, key), counters)| Counters {
                policy,
                key,
                counters,
            })
            .collect(),
    }))
}

/// The fleet as text.
pub fn print(fleet: &Fleet) {
    println!("fleet (shared store {}):", fleet.store);
    println!("  workers reporting:  {}", fleet.workers.len());
    for w in &fleet.workers {
        println!("    {} ({} ms ago)", w.id, w.reported_ms_ago);
    }
    for b in &fleet.breakers {
        let open = if b.open_for_ms > 0 {
            format!(", probes in {} ms", b.open_for_ms)
        } else {
            String::new()
        };
        println!(
            "  breaker {} {}: {} ({} consecutive failures{open})",
            b.policy, b.key, b.state, b.failures
        );
    }
    for c in &fleet.last_hour {
        let figures: Vec<String> = c.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  last hour {} {}: {}", c.policy, c.key, figures.join(", "));
    }
}
