//! Soak: eight tasks read a table (and, one operation in ten, test the connection) through
//! the fault proxy while, about a fifth of the time, a fault hits (connections reset,
//! 200 ms latency, a short freeze, new connections refused). With the breaker on, at least
//! 99.5% of the operations succeed and every read is exact: each row once.
//!
//! The fault schedule and the engine's jitter come from one seed (`SOAK_SEED`, printed
//! with the fault timeline when the test fails); `SOAK_READS` sets the number of
//! operations (10,000), which go on until at least `MIN_FAULTS` faults have hit. The run is
//! bounded: no operation starts after `LIMIT`.

mod pg_read_support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connector_postgres::PostgresConnector;
use futures_util::StreamExt;
use pg_read_support::{TestDb, count_ids};
use resilience_chaos::{ChaosHandle, ChaosProxy};
use resilience_core::backoff::{JitterRng, SplitMix64};
use resilience_core::events::{Event, Observer};
use resilience_core::policy::{BreakerMode, Jitter, Policy};
use resilience_core::{Engine, PolicySet};

const TASKS: usize = 8;
const ROWS: i64 = 60;
const PAGE: usize = 25;
/// No operation starts after this long.
const LIMIT: Duration = Duration::from_secs(100);
/// Operations go on, past `SOAK_READS`, until this many faults have hit (however fast
/// the machine runs them).
const MIN_FAULTS: usize = 8;
/// A phase without a fault lasts 200 to 800 ms; one phase in seven is a fault of 300 to
/// 1500 ms (a freeze may outlast the attempt timeout, a refusal the first retries): about
/// a fifth of the time, something is wrong.
const CLEAR: (u64, u64) = (200, 800);
const FAULT: (u64, u64) = (300, 1500);
const FAULT_CHANCE: f64 = 1.0 / 7.0;

/// The soak policy: quick retries, a ratio breaker, short attempts.
fn soak_engine(seed: u64) -> Engine {
    let mut p = Policy::default();
    p.retry.max_attempts = NonZeroU32::new(8).unwrap();
    p.retry.initial_delay = Duration::from_millis(50);
    p.retry.multiplier = 2.0;
    p.retry.max_delay = Duration::from_secs(1);
    p.retry.jitter = Jitter::Full;
    p.circuit_breaker.mode = BreakerMode::Ratio;
    p.circuit_breaker.failure_ratio = 0.5;
    p.circuit_breaker.minimum_calls = NonZeroU32::new(20).unwrap();
    p.circuit_breaker.sampling_window = Duration::from_secs(10);
    p.circuit_breaker.recovery_timeout = Duration::from_secs(1);
    p.rate_limit.requests_per_minute = NonZeroU32::new(1_000_000).unwrap();
    p.rate_limit.burst = NonZeroU32::new(10_000).unwrap();
    p.recovery.check_interval = Duration::from_secs(1);
    p.timeout.attempt = Duration::from_millis(1500);
    p.timeout.total = Duration::from_secs(30);
    let engine = Engine::new(PolicySet::from_policies([("db", p)]).unwrap());
    engine.set_jitter_rng(Box::new(SplitMix64::new(seed)));
    engine
}

/// Counts the engine's events by name.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<&'static str, u64>>);

impl Observer for Tally {
    fn on_event(&self, event: &Event<'_>) {
        *self.0.lock().unwrap().entry(event.kind.name()).or_default() += 1;
    }
}

/// One phase of the fault schedule.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Reset,
    Latency,
    Freeze,
    Refuse,
}

/// Runs the fault schedule until `stop`, recording each fault with its start.
async fn faults(
    chaos: ChaosHandle,
    seed: u64,
    started: Instant,
    timeline: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicUsize>,
) {
    let mut rng = SplitMix64::new(seed ^ 0x5EED);
    while stop.load(Ordering::SeqCst) == 0 {
        let at = started.elapsed();
        let faulty = rng.next_unit() < FAULT_CHANCE;
        let (low, high) = if faulty { FAULT } else { CLEAR };
        let phase = Duration::from_millis(low + ((high - low) as f64 * rng.next_unit()) as u64);
        if faulty {
            let fault = match (rng.next_unit() * 4.0) as u32 {
                0 => Fault::Reset,
                1 => Fault::Latency,
                2 => Fault::Freeze,
                _ => Fault::Refuse,
            };
            let mut note = format!(
                "{:>7.3}s {fault:?} for {}ms",
                at.as_secs_f64(),
                phase.as_millis()
            );
            match fault {
                Fault::Reset => {
                    let n = chaos.reset_all();
                    let _ = write!(note, " ({n} connections reset)");
                }
                Fault::Latency => chaos.set_delay(Duration::from_millis(200)),
                Fault::Freeze => {
                    let n = chaos.freeze_all();
                    let _ = write!(note, " ({n} connections frozen)");
                }
                Fault::Refuse => chaos.refuse_new(true),
            }
            timeline.lock().unwrap().push(note);
            tokio::time::sleep(phase).await;
            chaos.clear();
            chaos.unfreeze_all();
        } else {
            tokio::time::sleep(phase).await;
        }
    }
    chaos.clear();
    chaos.unfreeze_all();
}

/// One operation: every tenth a connection test (a direct connection, outside the pool),
/// the others a read of the whole table. `Ok(true)` when it succeeded (a read: every row
/// once), `Ok(false)` when it failed; an inexact read is `Err`.
async fn operation(pg: &PostgresConnector, n: u64) -> Result<bool, String> {
    if n % 10 == 9 {
        return Ok(pg.test_connection().await.is_ok_and(|t| t.success));
    }
    read_once(pg).await
}

/// One read of the whole table: `Ok(true)` when every row came once, `Ok(false)` when the
/// read failed (an error, with the rows so far); an inexact read is `Err`.
async fn read_once(pg: &PostgresConnector) -> Result<bool, String> {
    let mut seen = BTreeMap::new();
    let mut chunks = std::pin::pin!(pg.read("items", None, PAGE));
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => count_ids(&chunk.batch, "id", &mut seen),
            Err(_) => return Ok(false),
        }
    }
    let exact = seen.len() as i64 == ROWS
        && seen.values().all(|n| *n == 1)
        && seen.keys().next() == Some(&1)
        && seen.keys().last() == Some(&ROWS);
    if exact {
        Ok(true)
    } else {
        let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).take(5).collect();
        Err(format!(
            "an inexact read: {} ids, repeated {repeated:?}",
            seen.len()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_readers_through_faults_succeed_with_the_breaker_on_and_read_exactly() {
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x50A6);
    let reads: u64 = std::env::var("SOAK_READS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let db = TestDb::create("pgsoak_items").await;
    db.exec(&format!(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, {ROWS}) g;"
    ))
    .await;
    let upstream: SocketAddr = format!("127.0.0.1:{}", db.params.port).parse().unwrap();
    let proxy = ChaosProxy::start(upstream).await.unwrap();
    let engine = soak_engine(seed);
    let tally = Arc::new(Tally::default());
    engine.subscribe(tally.clone());
    let mut params = db.params.clone();
    params.port = proxy.local_addr().port();
    params.application_name = "pgsoak".into();
    params.pool_size = TASKS as u32;
    params.connect_timeout = Duration::from_secs(1);
    let mut pg = PostgresConnector::with_engine(engine.clone());
    pg.configure(params).unwrap();
    let pg = Arc::new(pg);

    let started = Instant::now();
    let timeline = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicUsize::new(0));
    let schedule = tokio::spawn(faults(
        proxy.handle().clone(),
        seed,
        started,
        Arc::clone(&timeline),
        Arc::clone(&stop),
    ));
    let next = Arc::new(AtomicU64::new(0));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let inexact = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let (pg, next, ok, failed, inexact) = (
                Arc::clone(&pg),
                Arc::clone(&next),
                Arc::clone(&ok),
                Arc::clone(&failed),
                Arc::clone(&inexact),
            );
            let faults_seen = Arc::clone(&timeline);
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let faults = faults_seen.lock().unwrap().len();
                    if (n >= reads && faults >= MIN_FAULTS) || started.elapsed() >= LIMIT {
                        break;
                    }
                    match operation(&pg, n).await {
                        Ok(true) => ok.fetch_add(1, Ordering::SeqCst),
                        Ok(false) => failed.fetch_add(1, Ordering::SeqCst),
                        Err(why) => {
                            inexact.lock().unwrap().push(why);
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();
    let watch = {
        let (ok, failed, timeline) = (Arc::clone(&ok), Arc::clone(&failed), Arc::clone(&timeline));
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "soak {:.0}s: {} ok, {} failed, {} faults; {:?}",
                    started.elapsed().as_secs_f64(),
                    ok.load(Ordering::SeqCst),
                    failed.load(Ordering::SeqCst),
                    timeline.lock().unwrap().len(),
                    engine
                        .health()
                        .keys
                        .iter()
                        .map(|k| (k.calls, k.attempts, k.circuit_breaker_state))
                        .collect::<Vec<_>>()
                );
            }
        })
    };
    for w in workers {
        w.await.unwrap();
    }
    watch.abort();
    eprintln!(
        "soak: workers done after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    stop.store(1, Ordering::SeqCst);
    schedule.await.unwrap();

    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    let done = ok + failed;
    let health = engine.health();
    let key = health.get("db", pg.host_key()).cloned();
    let timeline = timeline.lock().unwrap().clone();
    let report = format!(
        "seed {seed}: {ok} of {done} operations succeeded in {:.1}s; events {:?}; health {key:?}\n\
         fault timeline ({} faults):\n{}",
        started.elapsed().as_secs_f64(),
        tally.0.lock().unwrap(),
        timeline.len(),
        timeline.join("\n")
    );
    let inexact = inexact.lock().unwrap().clone();
    assert!(inexact.is_empty(), "{inexact:?}\n{report}");
    assert!(done >= 500, "too few operations ran to judge: {report}");
    assert!(
        ok as f64 >= 0.995 * done as f64,
        "success below 99.5%: {report}"
    );
    assert!(
        timeline.len() >= MIN_FAULTS,
        "too few faults to judge: {report}"
    );
    assert!(
        key.is_some_and(|k| k.retries > 0),
        "the faults never cost a retry: {report}"
    );
    println!("{report}");

    drop(pg);
    eprintln!("soak: shutting the proxy down");
    proxy.shutdown().await;
    eprintln!("soak: dropping the database");
    db.drop().await;
}
