//! `--metrics-addr`: the sync's metrics for Prometheus, through `metrics-exporter-prometheus`.
//!
//! The exporter is installed as the process's `metrics` recorder before the engine creates
//! its handles, and serves the text format on its own HTTP listener. Histograms ending in
//! `_seconds` (call durations) get buckets from a millisecond to two minutes, so
//! dashboards can show quantiles over any window.

use std::net::{SocketAddr, TcpListener};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::error::CliError;

/// Bucket bounds for durations, in seconds.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// Installs the exporter listening on `addr` and returns the address it listens on (port
/// 0 picks a free port). Refusal to listen there is the caller's to fix (exit 2).
pub fn serve(addr: SocketAddr) -> Result<SocketAddr, CliError> {
    let refused = |e: &dyn std::fmt::Display| {
        CliError::Usage(format!(
            "--metrics-addr {addr}: cannot listen there: {e}; choose a free port, or port 0 \
             for any free one"
        ))
    };
    // Bind once to report a taken port as such, and to learn the port 0 stands for.
    let bound = TcpListener::bind(addr)
        .and_then(|probe| probe.local_addr())
        .map_err(|e| refused(&e))?;
    PrometheusBuilder::new()
        .with_http_listener(bound)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .map_err(|e| refused(&e))?
        .install()
        .map_err(|e| refused(&e))?;
    Ok(bound)
}
