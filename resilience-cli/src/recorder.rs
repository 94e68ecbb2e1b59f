//! A small in-memory `metrics` recorder that renders the Prometheus text format.
//!
//! The engine registers its counters, gauges and histograms through the `metrics` facade.
//! A full exporter crate brings an HTTP stack and quantile sketches we do not need for a
//! batch command; this keeps counters and gauges in atomics and histograms as summaries
//! (count, sum, min, max), which is what a sync run's dashboard shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// A histogram kept as a summary.
#[derive(Debug, Default)]
struct Summary {
    inner: Mutex<(u64, f64, f64, f64)>,
}

impl HistogramFn for Summary {
    fn record(&self, value: f64) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (count, sum, min, max) = &mut *s;
        *min = if *count == 0 { value } else { min.min(value) };
        *max = if *count == 0 { value } else { max.max(value) };
        *count += 1;
        *sum += value;
    }
}

#[derive(Default)]
struct Registry {
    counters: Mutex<BTreeMap<Key, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<Key, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<Key, Arc<Summary>>>,
    help: Mutex<BTreeMap<String, String>>,
}

/// The recorder; clones share the same metrics.
#[derive(Clone, Default)]
pub struct MemoryRecorder(Arc<Registry>);

fn entry<T: Default>(map: &Mutex<BTreeMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(key.clone()).or_default())
}

impl Recorder for MemoryRecorder {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }
    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }
    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(entry(&self.0.counters, key))
    }
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(entry(&self.0.gauges, key))
    }
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(entry(&self.0.histograms, key))
    }
}

impl MemoryRecorder {
    fn describe(&self, key: KeyName, description: SharedString) {
        let mut help = self.0.help.lock().unwrap_or_else(|p| p.into_inner());
        help.insert(key.as_str().to_owned(), description.to_string());
    }

    /// Installs a recorder as the process-wide one and returns a handle to render it;
    /// `None` if another recorder was installed first.
    pub fn install() -> Option<MemoryRecorder> {
        let recorder = MemoryRecorder::default();
        metrics::set_global_recorder(recorder.clone()).ok()?;
        Some(recorder)
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let help = self
            .0
            .help
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let header = |out: &mut String, name: &str, kind: &str, last: &mut String| {
            if last != name {
                if let Some(text) = help.get(name) {
                    let _ = writeln!(out, "# HELP {name} {}", text.replace('\n', " "));
                }
                let _ = writeln!(out, "# TYPE {name} {kind}");
                *last = name.to_owned();
            }
        };
        let mut last = String::new();
        for (key, value) in self
            .0
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            header(&mut out, key.name(), "counter", &mut last);
            let _ = writeln!(
                out,
                "{}{} {}",
                key.name(),
                labels(key, None),
                value.load(Ordering::Relaxed)
            );
        }
        for (key, value) in self
            .0
            .gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            header(&mut out, key.name(), "gauge", &mut last);
            let v = f64::from_bits(value.load(Ordering::Relaxed));
            let _ = writeln!(out, "{}{} {v}", key.name(), labels(key, None));
        }
        for (key, s) in self
            .0
            .histograms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let (count, sum, min, max) = *s.inner.lock().unwrap_or_else(|p| p.into_inner());
            let name = key.name();
            header(&mut out, name, "summary", &mut last);
            if count > 0 {
                let _ = writeln!(out, "{name}{} {min}", labels(key, Some("0")));
                let _ = writeln!(out, "{name}{} {max}", labels(key, Some("1")));
            }
            let _ = writeln!(out, "{name}_sum{} {sum}", labels(key, None));
            let _ = writeln!(out, "{name}_count{} {count}", labels(key, None));
        }
        out
    }
}

fn labels(key: &Key, quantile: Option<&str>) -> String {
    let mut parts: Vec<String> = key
        .labels()
        .map(|l| format!("{}=\"{}\"", l.key(), escape(l.value())))
        .collect();
    if let Some(q) = quantile {
        parts.push(format!("quantile=\"{q}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_summaries() {
        let recorder = MemoryRecorder::default();
        metrics::with_local_recorder(&recorder, || {
            let labels = [("policy", "db".to_owned()), ("key", "h:\"1\"".to_owned())];
            metrics::counter!("resilience_retries_total", &labels).increment(3);
            metrics::gauge!("resilience_circuit_breaker_state", &labels).set(1.0);
            let h = metrics::histogram!("resilience_call_duration_seconds", &labels);
            h.record(0.5);
            h.record(1.5);
        });
        let text = recorder.render();
        assert!(
            text.contains("# TYPE resilience_retries_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("resilience_retries_total{policy=\"db\",key=\"h:\\\"1\\\"\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "resilience_circuit_breaker_state{policy=\"db\",key=\"h:\\\"1\\\"\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "resilience_call_duration_seconds_count{policy=\"db\",key=\"h:\\\"1\\\"\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "resilience_call_duration_seconds_sum{policy=\"db\",key=\"h:\\\"1\\\"\"} 2\n"
            ),
            "{text}"
        );
    }
}
