//! The resilience journal: one JSON line per resilience event, appended by every run.
//!
//! The engine reports retries, breaker transitions, rate-limit waits and rejections and
//! recoveries as `tracing` events from `resilience_core`. [`JournalLayer`] picks those out
//! by their message and fields and appends them, with a timestamp, to `journal.jsonl` in
//! the state folder, so `resilient metrics` and `resilient health` can report on runs that
//! have already ended. Lines are appended whole (`O_APPEND`), so concurrent runs interleave
//! lines, not bytes; unreadable lines are skipped when reading.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// When, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// When, milliseconds since the Unix epoch (for filtering).
    pub unix_ms: u64,
    /// What happened: `retry`, `breaker_opened`, `breaker_half_open`, `breaker_closed`,
    /// `rate_limit_wait`, `rate_limit_rejected`, `recovery`, `recovery_failed`,
    /// `budget_exhausted`, `circuit_open_rejection`.
    pub kind: String,
    /// The policy.
    pub policy: String,
    /// The rate-limit and breaker key (host).
    pub key: String,
    /// The operation, when the event belongs to one call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The engine's message.
    pub message: String,
    /// Other fields of the event (attempt, delay_secs, class, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
}

/// Maps an engine message to an event kind; `None` for messages that are not journaled.
pub fn kind_of(message: &str) -> Option<&'static str> {
    const KINDS: &[(&str, &str)] = &[
        ("Retry attempt", "retry"),
        ("Circuit breaker OPEN", "breaker_opened"),
        ("circuit breaker forced OPEN", "breaker_opened"),
        (
            "Circuit breaker transitioning to HALF_OPEN",
            "breaker_half_open",
        ),
        ("Circuit breaker CLOSED", "breaker_closed"),
        ("circuit breaker reset to CLOSED", "breaker_closed"),
        ("Rate limit applied", "rate_limit_wait"),
        ("rate limit: call refused", "rate_limit_rejected"),
        ("connection recovered", "recovery"),
        ("connection recovery failed", "recovery_failed"),
        ("retry budget exhausted", "budget_exhausted"),
        ("circuit open, failing fast", "circuit_open_rejection"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// A `tracing` layer appending engine events to a journal file.
pub struct JournalLayer {
    file: Mutex<File>,
}

impl JournalLayer {
    /// Opens (creating) the journal for appending.
    pub fn open(path: &Path) -> std::io::Result<JournalLayer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JournalLayer {
            file: Mutex::new(file),
        })
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    values: BTreeMap<String, Value>,
}

/// Text values (the message and every string field, e.g. `error=...`) go through the same
/// URL-password redaction as log lines before they reach the journal.
fn redacted(text: &str) -> String {
    crate::redact::redact_secrets(text).into_owned()
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = redacted(&format!("{value:?}"));
        if field.name() == "message" {
            self.message = text;
        } else {
            self.values
                .insert(field.name().to_owned(), Value::String(text));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.values
            .insert(field.name().to_owned(), Value::String(redacted(value)));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.values.insert(
            field.name().to_owned(),
            Value::String(redacted(&value.to_string())),
        );
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values.insert(field.name().to_owned(), value.into());
    }
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("resilience_core") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(kind) = kind_of(&fields.message) else {
            return;
        };
        let mut take = |name: &str| match fields.values.remove(name) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let now = SystemTime::now();
        let line = JournalEvent {
            ts: humantime::format_rfc3339_millis(now).to_string(),
            unix_ms: unix_ms(now),
            kind: kind.to_owned(),
            policy: take("policy").unwrap_or_default(),
            key: take("key").unwrap_or_default(),
            operation: take("operation"),
            message: fields.message,
            fields: fields.values,
        };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = file.write_all(text.as_bytes());
        }
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The events of the journal at `path` newer than `last`, and the number of unreadable
/// lines skipped. A missing journal has no events.
pub fn read_since(path: &Path, last: Duration) -> std::io::Result<(Vec<JournalEvent>, usize)> {
    let last_ms = u64::try_from(last.as_millis()).unwrap_or(u64::MAX);
    read_from(path, unix_ms(SystemTime::now()).saturating_sub(last_ms))
}

/// Every event of the journal at `path`, oldest first, and the number of unreadable lines.
pub fn read_all(path: &Path) -> std::io::Result<(Vec<JournalEvent>, usize)> {
    read_from(path, 0)
}

fn read_from(path: &Path, since: u64) -> std::io::Result<(Vec<JournalEvent>, usize)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let (mut events, mut skipped) = (Vec::new(), 0);
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<JournalEvent>(&line) {
            Ok(event) if event.unix_ms >= since => events.push(event),
            Ok(_) => {}
            Err(_) => skipped += 1,
        }
    }
    Ok((events, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn engine_messages_map_to_kinds() {
        assert_eq!(kind_of("Retry attempt 1/3 for operation x"), Some("retry"));
        assert_eq!(
            kind_of("Circuit breaker OPEN after 5 failures"),
            Some("breaker_opened")
        );
        assert_eq!(
            kind_of("rate limit: call refused, retry after 1s"),
            Some("rate_limit_rejected")
        );
        assert_eq!(kind_of("resilience patterns enabled for policy db"), None);
    }

    #[test]
    fn layer_appends_engine_events_only() {
        let path = std::env::temp_dir().join(format!("journal-test-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let layer = JournalLayer::open(&path).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "resilience_core::run", policy = "db", key = "h:1",
                operation = "fetch_page", attempt = 2u64, "Retry attempt 2/3 for operation fetch_page");
            tracing::info!(target: "resilience_core::slot", policy = "db", key = "h:1",
                "Circuit breaker CLOSED: the dependency answers again");
            tracing::warn!(target: "other", policy = "db", key = "h:1", "Retry attempt 9/9");
        });
        let (events, skipped) = read_since(&path, Duration::from_secs(60)).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(skipped, 0);
        let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["retry", "breaker_closed"]);
        assert_eq!(events[0].operation.as_deref(), Some("fetch_page"));
        assert_eq!(events[0].fields["attempt"], Value::from(2u64));
        assert_eq!(events[1].key, "h:1");
    }

    #[test]
    fn field_values_are_redacted_like_the_message() {
        let path =
            std::env::temp_dir().join(format!("journal-redact-test-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let layer = JournalLayer::open(&path).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        let url = "postgres://app:hunter2@db.internal:5432/x";
        tracing::subscriber::with_default(subscriber, || {
            let io = std::io::Error::other(format!("cannot reach {url}"));
            tracing::warn!(target: "resilience_core::run", policy = "db", key = "h:1",
                error = %format!("connect to {url} failed"), detail = url,
                cause = &io as &(dyn std::error::Error + 'static),
                "Retry attempt 1/3 for operation connect to {url}");
        });
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let event: JournalEvent = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(
            event.fields["error"],
            Value::from("connect to postgres://app:***@db.internal:5432/x failed")
        );
        assert_eq!(
            event.fields["detail"],
            Value::from("postgres://app:***@db.internal:5432/x")
        );
        assert!(event.message.contains("app:***@db.internal"), "{text}");
    }
}
