//! The outage of scenario 6, and what is measured while the breaker is open.
//!
//! An outage is the proxy refusing every new connection and resetting the open ones: to
//! the client the server has gone away. Once the breaker has opened, a burst of calls is
//! made: each must be refused by the breaker itself (the engine's verdict says the circuit
//! was open, which it decides before any attempt, token or backoff), without a single
//! connection reaching the proxy. Their times are shown, not judged: a busy machine's
//! scheduling is not the breaker's doing. The outage then ends, and the breaker must close
//! on its own (its background probe finds the server again) while the demo makes no calls.

use std::time::{Duration, Instant};

use connector_postgres::{PgError, PostgresConnector};
use resilience_chaos::ChaosHandle;
use resilience_core::Engine;
use resilience_core::breaker::BreakerState;

use super::secs;

/// Calls made while the breaker is open.
pub(crate) const PROBE_CALLS: u32 = 20;
/// How long the breaker may take to close once the outage is over.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// Starts an outage.
pub(crate) fn begin(chaos: &ChaosHandle) -> Instant {
    chaos.refuse_new(true);
    let reset = chaos.reset_all();
    println!("   outage: proxy refuses new connections, {reset} open connection(s) reset");
    Instant::now()
}

/// What happened while the breaker was open.
#[derive(Debug)]
pub(crate) struct FailFast {
    /// Calls refused with "circuit open".
    pub rejected: u32,
    /// The slowest of them.
    pub slowest: Duration,
    /// Connections the proxy accepted during the burst.
    pub reached_proxy: u64,
}

impl FailFast {
    pub(crate) fn passed(&self) -> bool {
        self.rejected == PROBE_CALLS && self.reached_proxy == 0
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{}/{PROBE_CALLS} calls refused by the open breaker, slowest {}µs, {} connection(s) \
             reached the proxy",
            self.rejected,
            self.slowest.as_micros(),
            self.reached_proxy
        )
    }
}

/// Makes calls while the breaker is open, timing them for the report.
pub(crate) async fn measure_fail_fast(pg: &PostgresConnector, chaos: &ChaosHandle) -> FailFast {
    let accepted = chaos.stats().accepted;
    let mut rejected = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..PROBE_CALLS {
        let started = Instant::now();
        let result = pg.discover().await;
        slowest = slowest.max(started.elapsed());
        if let Err(PgError::Stopped(failure)) = &result
            && failure.is_circuit_open()
        {
            rejected += 1;
        }
    }
    let measured = FailFast {
        rejected,
        slowest,
        reached_proxy: chaos.stats().accepted - accepted,
    };
    println!("   breaker OPEN: {}", measured.describe());
    measured
}

/// Ends the outage and waits, without making calls, for the breaker to close by itself.
/// Returns how long that took, or `None` if it did not close in time.
pub(crate) async fn end_and_await_close(
    engine: &Engine,
    key: &str,
    chaos: &ChaosHandle,
    started: Instant,
) -> Option<Duration> {
    chaos.clear();
    let ended = Instant::now();
    println!(
        "   outage over after {}; waiting for the breaker to close by itself",
        secs(ended - started)
    );
    let breaker = engine.breaker("db", key)?;
    let mut last = breaker.state();
    let closed = tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            let state = breaker.state();
            if state != last {
                println!(
                    "   breaker {} after {}",
                    state.as_str(),
                    secs(ended.elapsed())
                );
                last = state;
            }
            if state == BreakerState::Closed {
                return ended.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    closed.ok()
}
