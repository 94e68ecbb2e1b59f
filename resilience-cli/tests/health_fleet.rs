//! `resilient health` against a running fleet: with a `[store]`, it shows the breaker
//! another process opened (live, from the store), that process among the workers that
//! reported, and the fleet's counters of the last hour.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Scratch, TestDb, fleet_profile, rt, run_in, text};
use resilience_core::breaker::BreakerState;
use resilience_core::policy::LoadOptions;
use resilience_core::{Call, Engine, Failure, PolicySet, ResilientError};
use resilience_redis::RedisStore;

#[derive(Debug, ResilientError)]
enum FleetError {
    /// Not retried, and counted by the breaker.
    #[resilient(class = "data")]
    Broken,
    #[resilient(failure)]
    Stopped(Box<Failure<FleetError>>),
}

impl std::fmt::Display for FleetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetError::Broken => f.write_str("broken"),
            FleetError::Stopped(failure) => failure.fmt(f),
        }
    }
}

#[test]
fn health_shows_the_breaker_another_process_opened() {
    let db = TestDb::create("fleethealth", "SELECT 1");
    let dir = Scratch::new("fleethealth");
    let prefix = format!("test-health-{}-{}", std::process::id(), line!());
    fleet_profile(dir.path(), &prefix);
    let key = db.host_key();
    let runtime = rt();
    // This test process is the other worker: its `db` calls fail until the fleet's
    // breaker opens.
    let (_engine, store) = runtime.block_on(async {
        let set = PolicySet::load(&LoadOptions {
            dir: Some(dir.path().to_owned()),
            profile: Some("fleet".into()),
        })
        .unwrap();
        let store = Arc::new(RedisStore::new(set.store().unwrap()).unwrap());
        let engine = Engine::with_store(set, Arc::clone(&store) as _);
        engine.subscribe(store.counters());
        for _ in 0..5 {
            let result = engine
                .run(Call::new("db", "fetch").key(&key), || async {
                    Err::<(), _>(FleetError::Broken)
                })
                .await;
            assert!(result.is_err());
        }
        let until = Instant::now() + Duration::from_secs(10);
        while store.breaker_view("db", &key).map(|v| v.0) != Some(BreakerState::Open) {
            assert!(Instant::now() < until, "the fleet's breaker never opened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(store.report().await.is_some());
        assert!(store.flush().await);
        (engine, store)
    });

    let url = db.url();
    let args = [
        "health",
        "--database-url",
        &url,
        "--dir",
        ".",
        "--profile",
        "fleet",
    ];
    let out = run_in(dir.path(), &[&args[..], &["--json"]].concat());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["circuit_breaker"]["state"], "OPEN", "{stdout}");
    assert_eq!(v["circuit_breaker"]["source"], "store", "{stdout}");
    let breakers = v["fleet"]["breakers"].as_array().unwrap();
    assert!(
        breakers
            .iter()
            .any(|b| b["policy"] == "db" && b["key"] == key.as_str() && b["state"] == "OPEN"),
        "{stdout}"
    );
    let workers = v["fleet"]["workers"].as_array().unwrap();
    assert!(
        workers.iter().any(|w| w["id"] == store.worker_id()),
        "{stdout}"
    );
    let counted = v["fleet"]["last_hour"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["policy"] == "db" && c["key"] == key.as_str())
        .expect("the fleet's counters for db");
    assert_eq!(counted["counters"]["breaker_opened"], 1, "{stdout}");
    assert_eq!(counted["counters"]["calls_gave_up"], 5, "{stdout}");

    let out = run_in(dir.path(), &args);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("circuit breaker:  OPEN (fleet-wide, live from the store)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("breaker db {key}: OPEN")),
        "{stdout}"
    );
}

/// `redis-cli` against the Redis the tests share.
fn redis_cli(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &test_support::redis::url()])
        .args(args)
        .output()
        .expect("redis-cli on the PATH");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sync_with_a_store_takes_its_tokens_from_redis_and_reports_as_a_worker() {
    let db = TestDb::create(
        "fleetsync",
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 100) g;",
    );
    let dir = Scratch::new("fleetsync");
    let prefix = format!("test-sync-{}-{}", std::process::id(), line!());
    fleet_profile(dir.path(), &prefix);
    std::fs::write(dir.path().join("p.toml"), db.full_pipeline("items")).unwrap();
    let out = common::sync_in(dir.path(), &["--policy-dir", ".", "--profile", "fleet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let buckets = redis_cli(&["--scan", "--pattern", &format!("{prefix}:rl:*")]);
    assert!(
        buckets.contains(&format!("{prefix}:rl:db:")),
        "the sync's calls took their tokens from Redis: {buckets:?}"
    );
    let workers = redis_cli(&["zcard", &format!("{prefix}:workers")]);
    assert_eq!(workers.trim(), "1", "the sync reported as one worker");
}
