//! Four real OS processes share one limit through Redis: together they never pass
//! `burst + rate × t` in any window, and saturated they use at least 95 % of the rate.
//!
//! The test re-runs its own binary as the workers (`worker_process`, which does nothing
//! unless the parent set `SHARED_LIMIT_WORKER`). Each worker calls as fast as the engine
//! lets it and prints the wall-clock time at which each call's body ran.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{TestError, limited, redis_url, shared_set, unique_prefix, wall_micros};
use resilience_core::policy::OnUnavailable;
use resilience_core::{Call, Engine};
use resilience_redis::RedisStore;

const WORKERS: usize = 4;
const PER_MINUTE: u32 = 600;
const BURST: u32 = 10;
const RUN: Duration = Duration::from_secs(10);
/// The bound holds exactly on the server's clock, for the slots the script hands out.
/// Each worker prints, for every admission, when it asked (before the call: no later
/// than the reservation, so no later than the slot) and when the call ran (no earlier
/// than the slot: the engine waits for it). The slots of any set of admissions then lie
/// between the earliest asking and the latest running, whatever delays a loaded machine
/// adds; a limit that is not shared admits 4 × the rate and fails by tens of calls. The
/// slack absorbs the script's rounding of waits to whole microseconds and milliseconds.
const CLOCK_SLACK: f64 = 0.002;

#[test]
fn four_processes_admit_at_most_burst_plus_rate_times_t_and_use_the_rate() {
    if std::env::var_os("SHARED_LIMIT_WORKER").is_some() {
        return;
    }
    let prefix = unique_prefix("limit4");
    let start = wall_micros() + 2_000_000;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|_| {
            Command::new(&exe)
                .env("REDIS_URL", redis_url())
                .args([
                    "--exact",
                    "worker_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("SHARED_LIMIT_WORKER", "1")
                .env("SHARED_LIMIT_PREFIX", &prefix)
                .env("SHARED_LIMIT_START", start.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    // (asked, ran) per admission, in the order they ran.
    let mut admitted: Vec<(u64, u64)> = Vec::new();
    let mut per_worker = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let mine: Vec<(u64, u64)> = text
            .lines()
            .filter_map(|l| l.split("ADMIT ").nth(1))
            .map(|t| {
                let (asked, ran) = t.split_once(' ').expect("ADMIT <asked> <ran>");
                (asked.parse().unwrap(), ran.parse().unwrap())
            })
            .collect();
        per_worker.push(mine.len());
        admitted.extend(mine);
    }
    admitted.sort_unstable_by_key(|&(_, ran)| ran);
    let rate = f64::from(PER_MINUTE) / 60.0;
    // The admissions i..=j ran within [earliest asking among them, j's running].
    for i in 0..admitted.len() {
        let mut earliest = admitted[i].0;
        for (j, &(asked, ran)) in admitted.iter().enumerate().skip(i) {
            earliest = earliest.min(asked);
            let t = ran.saturating_sub(earliest) as f64 / 1e6;
            let count = (j - i + 1) as f64;
            assert!(
                count <= f64::from(BURST) + rate * (t + CLOCK_SLACK),
                "{count} calls in {t:.3}s, more than burst {BURST} + {rate}/s × t (per worker: {per_worker:?})"
            );
        }
    }
    let used = admitted.len() as f64 - f64::from(BURST);
    let offered = rate * RUN.as_secs_f64();
    assert!(
        used >= 0.95 * offered,
        "only {used} of {offered} calls past the burst in {RUN:?} (per worker: {per_worker:?})"
    );
    assert!(
        per_worker.iter().all(|n| *n > 0),
        "every worker got calls: {per_worker:?}"
    );
    println!(
        "{} calls admitted in {RUN:?} by {WORKERS} processes {per_worker:?}; limit {BURST} + {rate}/s × t",
        admitted.len()
    );
}

/// One worker: saturates the shared limit from `SHARED_LIMIT_START` for [`RUN`].
#[test]
fn worker_process() {
    let Some(prefix) = std::env::var_os("SHARED_LIMIT_PREFIX") else {
        return;
    };
    let prefix = prefix.into_string().unwrap();
    let start: u64 = std::env::var("SHARED_LIMIT_START")
        .unwrap()
        .parse()
        .unwrap();
    let end = start + RUN.as_micros() as u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let policy = limited(PER_MINUTE, BURST, Duration::from_secs(10));
        let set = shared_set(policy, &redis_url(), &prefix, OnUnavailable::FailClosed);
        let store = RedisStore::new(set.store().unwrap()).unwrap();
        let engine = Engine::with_store(set, Arc::new(store));
        let now = wall_micros();
        tokio::time::sleep(Duration::from_micros(start.saturating_sub(now))).await;
        loop {
            let asked = wall_micros();
            let at = engine
                .run(Call::new("shared", "tick").key("db-1"), || async {
                    Ok::<_, TestError>(wall_micros())
                })
                .await
                .expect("the shared limit admits every call within max_wait");
            if at >= end {
                break;
            }
            println!("ADMIT {asked} {at}");
        }
    });
}
