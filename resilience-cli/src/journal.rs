//! The resilience journal: one JSON line per engine event, appended by every `sync` run.
//!
//! The engine reports what it did as typed events ([`resilience_core::events`]): retries,
//! calls given up on with their verdict, breaker transitions, rate-limit waits and
//! rejections, recoveries. [`Journal`] is an observer of the sync's engine that appends
//! each event, with a timestamp and its typed fields, to `journal.jsonl` in the state
//! folder, so `resilient metrics` and `resilient health` can report on runs that have
//! already ended. Nothing here reads log text: rewording a log message changes nothing.
//!
//! Lines are appended whole (`O_APPEND`), so concurrent runs interleave lines, not bytes.
//! A line that cannot be read (a torn write, another program's garbage, bytes that are not
//! UTF-8) is skipped and counted, never fatal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use resilience_core::events::{Event, EventKind, Observer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a journal line records: the engine event's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A failed attempt will be retried.
    Retry,
    /// A call ended without success, with its verdict.
    GaveUp,
    /// A call refused by an open breaker.
    CircuitOpenRejection,
    /// The breaker opened.
    BreakerOpened,
    /// The breaker went half-open.
    BreakerHalfOpen,
    /// The breaker closed.
    BreakerClosed,
    /// A call waited for a rate-limit token.
    RateLimitWait,
    /// The rate limiter refused a call.
    RateLimitRejected,
    /// The retry budget refused a retry.
    BudgetExhausted,
    /// The connector's recovery started.
    RecoveryStarted,
    /// A recovery mended the connection.
    Recovery,
    /// A recovery found nothing to mend.
    RecoveryNotNeeded,
    /// A recovery failed.
    RecoveryFailed,
    /// Credentials were re-read.
    CredentialsRefreshed,
    /// A background probe while the breaker was not closed.
    Probe,
    /// A kind this version does not know (written by a newer one).
    #[serde(other)]
    Other,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// When, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// When, milliseconds since the Unix epoch (for filtering).
    pub unix_ms: u64,
    /// What happened.
    pub kind: Kind,
    /// The policy.
    pub policy: String,
    /// The rate-limit and breaker key (host).
    pub key: String,
    /// The operation, when the event belongs to one call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The event in words, for a person reading the file.
    #[serde(default)]
    pub message: String,
    /// The event's data (attempt, delay_secs, class, verdict, error, from, to, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
}

/// An observer appending the engine's events to a journal file.
pub struct Journal {
    file: Mutex<File>,
}

impl Journal {
    /// Opens (creating it and its folder) the journal for appending.
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }
}

impl Observer for Journal {
    fn on_event(&self, event: &Event<'_>) {
        let Ok(kind) = serde_json::from_value::<Kind>(Value::from(event.kind.name())) else {
            return;
        };
        let (message, fields) = describe(&event.kind);
        let now = SystemTime::now();
        let line = JournalEvent {
            ts: humantime::format_rfc3339_millis(now).to_string(),
            unix_ms: unix_ms(now),
            kind,
            policy: event.policy.to_owned(),
            key: event.key.to_owned(),
            operation: event.operation.map(str::to_owned),
            message: redacted(&message),
            fields,
        };
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            // A journal that cannot be written must not stop the sync it records.
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// Text from the dependency (error messages) goes through the same URL-password
/// redaction as log lines before it reaches the journal.
fn redacted(text: &str) -> String {
    crate::redact::redact_secrets(text).into_owned()
}

/// The event in words, and its data as fields.
fn describe(kind: &EventKind<'_>) -> (String, BTreeMap<String, Value>) {
    let mut fields = BTreeMap::new();
    let mut put = |name: &str, value: Value| {
        fields.insert(name.to_owned(), value);
    };
    let secs = |d: Duration| Value::from(d.as_secs_f64());
    let message = match *kind {
        EventKind::RetryScheduled {
            attempt,
            max_attempts,
            delay,
            class,
            error,
        } => {
            let error = redacted(&error.to_string());
            put("attempt", attempt.into());
            put("max_attempts", max_attempts.into());
            put("delay_secs", secs(delay));
            put("class", class.as_str().into());
            put("error", error.clone().into());
            format!(
                "retry {attempt}/{max_attempts} in {:.3}s after a {class} error: {error}",
                delay.as_secs_f64()
            )
        }
        EventKind::GaveUp {
            verdict,
            attempts,
            class,
            error,
        } => {
            put("verdict", verdict.name().into());
            put("attempts", attempts.into());
            if let Some(class) = class {
                put("class", class.as_str().into());
            }
            let last = error.map(|e| redacted(&e.to_string()));
            if let Some(error) = &last {
                put("error", error.clone().into());
            }
            match last {
                Some(error) => {
                    format!("gave up after {attempts} attempts: {verdict}; last error: {error}")
                }
                None => format!("gave up after {attempts} attempts: {verdict}"),
            }
        }
        EventKind::CircuitOpenRejection { retry_in } => {
            put("retry_in_secs", secs(retry_in));
            "refused: circuit open".to_owned()
        }
        EventKind::BreakerTransition { from, to, cause } => {
            put("from", from.as_str().into());
            put("to", to.as_str().into());
            put("cause", format!("{cause:?}").into());
            format!(
                "circuit breaker {} -> {} ({cause:?})",
                from.as_str(),
                to.as_str()
            )
        }
        EventKind::RateLimitWait { wait } => {
            put("wait_secs", secs(wait));
            format!("waiting {:.3}s for a rate-limit token", wait.as_secs_f64())
        }
        EventKind::RateLimitRejected { retry_after } => {
            put("retry_after_secs", secs(retry_after));
            format!(
                "refused by the rate limit; retry after {:.3}s",
                retry_after.as_secs_f64()
            )
        }
        EventKind::BudgetExhausted { attempts } => {
            put("attempts", attempts.into());
            "retry budget exhausted: not retrying".to_owned()
        }
        EventKind::RecoveryStarted {
            class,
            refresh_credentials,
        } => {
            put("class", class.as_str().into());
            put("refresh_credentials", refresh_credentials.into());
            format!("recovering the connection after a {class} failure")
        }
        EventKind::RecoverySucceeded {
            refresh_credentials,
        } => {
            put("refresh_credentials", refresh_credentials.into());
            "connection recovered".to_owned()
        }
        EventKind::RecoveryNotNeeded { reason } => {
            put("reason", redacted(reason).into());
            format!("recovery not needed: {reason}")
        }
        EventKind::RecoveryFailed { error } => {
            put("error", redacted(error).into());
            format!("recovery failed: {error}")
        }
        EventKind::CredentialsRefreshed => "credentials re-read".to_owned(),
        EventKind::Probed { reachable } => {
            put("reachable", reachable.into());
            format!(
                "probe: dependency {}",
                if reachable {
                    "answers"
                } else {
                    "does not answer"
                }
            )
        }
        _ => kind.name().replace('_', " "),
    };
    (message, fields)
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
    // Lines are read as bytes: one that is not UTF-8 is unreadable like any other.
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<JournalEvent>(&line) {
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
    use resilience_core::events::{ErrorText, Verdict};
    use resilience_core::{ErrorClass, Stop};

    /// A journal path in a fresh folder; the folder goes when the guard drops.
    fn temp(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("journal-{name}.jsonl"));
        (dir, path)
    }

    fn event<'a>(kind: EventKind<'a>) -> Event<'a> {
        Event {
            policy: "db",
            key: "h:1",
            operation: Some("fetch_page"),
            kind,
        }
    }

    #[test]
    fn events_are_written_with_their_typed_fields() {
        let (_dir, path) = temp("typed");
        let journal = Journal::open(&path).unwrap();
        journal.on_event(&event(EventKind::RetryScheduled {
            attempt: 2,
            max_attempts: 3,
            delay: Duration::from_millis(1500),
            class: ErrorClass::Connection,
            error: ErrorText(&"connection reset"),
        }));
        let stop = Stop::RetriesExhausted { attempts: 3 };
        journal.on_event(&event(EventKind::GaveUp {
            verdict: Verdict::Stopped(&stop),
            attempts: 3,
            class: Some(ErrorClass::Connection),
            error: Some(ErrorText(&"connection reset")),
        }));
        let (events, skipped) = read_all(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(skipped, 0);
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [Kind::Retry, Kind::GaveUp]);
        let retry = &events[0];
        assert_eq!(retry.operation.as_deref(), Some("fetch_page"));
        assert_eq!(retry.fields["attempt"], Value::from(2));
        assert_eq!(retry.fields["delay_secs"], Value::from(1.5));
        assert_eq!(retry.fields["class"], Value::from("connection"));
        let gave_up = &events[1];
        assert_eq!(gave_up.fields["verdict"], Value::from("retries_exhausted"));
        assert_eq!(gave_up.fields["attempts"], Value::from(3));
        assert_eq!(gave_up.key, "h:1");
    }

    #[test]
    fn error_text_is_redacted() {
        let (_dir, path) = temp("redact");
        let journal = Journal::open(&path).unwrap();
        let url = "postgres://app:hunter2@db.internal:5432/x";
        let error = format!("connect to {url} failed");
        journal.on_event(&event(EventKind::RetryScheduled {
            attempt: 2,
            max_attempts: 3,
            delay: Duration::from_secs(1),
            class: ErrorClass::Connection,
            error: ErrorText(&error),
        }));
        journal.on_event(&event(EventKind::RecoveryFailed { error: &error }));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let (events, _) = {
            std::fs::write(&path, &text).unwrap();
            let read = read_all(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            read
        };
        assert_eq!(
            events[0].fields["error"],
            Value::from("connect to postgres://app:***@db.internal:5432/x failed")
        );
        assert!(events[1].message.contains("app:***@db.internal"), "{text}");
    }

    #[test]
    fn unreadable_lines_of_any_bytes_are_skipped_and_counted() {
        let (_dir, path) = temp("garbage");
        let good = serde_json::to_string(&JournalEvent {
            ts: "2026-01-01T00:00:00.000Z".into(),
            unix_ms: 1,
            kind: Kind::Retry,
            policy: "db".into(),
            key: "h:1".into(),
            operation: None,
            message: String::new(),
            fields: BTreeMap::new(),
        })
        .unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(good.as_bytes());
        bytes.extend_from_slice(b"\nnot json\n\xff\xfe\x00 binary \x80\n{\"kind\":\"retry\"\n\n");
        bytes.extend_from_slice(good.replace("retry", "some_future_kind").as_bytes());
        bytes.push(b'\n');
        std::fs::write(&path, &bytes).unwrap();
        let (events, skipped) = read_all(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(skipped, 3, "garbage, invalid UTF-8 and a torn line");
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [Kind::Retry, Kind::Other]);
    }

    #[test]
    fn every_engine_event_is_a_journal_kind() {
        use resilience_core::breaker::BreakerState;
        use resilience_core::events::BreakerCause;
        let stop = Stop::CircuitOpen {
            retry_in: Duration::ZERO,
        };
        let error = ErrorText(&"e");
        let samples = [
            EventKind::RetryScheduled {
                attempt: 2,
                max_attempts: 3,
                delay: Duration::ZERO,
                class: ErrorClass::Timeout,
                error,
            },
            EventKind::GaveUp {
                verdict: Verdict::Stopped(&stop),
                attempts: 1,
                class: None,
                error: None,
            },
            EventKind::CircuitOpenRejection {
                retry_in: Duration::ZERO,
            },
            EventKind::BreakerTransition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                cause: BreakerCause::Operator,
            },
            EventKind::BreakerTransition {
                from: BreakerState::Open,
                to: BreakerState::HalfOpen,
                cause: BreakerCause::OpenPeriodOver,
            },
            EventKind::BreakerTransition {
                from: BreakerState::HalfOpen,
                to: BreakerState::Closed,
                cause: BreakerCause::ProbesSucceeded,
            },
            EventKind::RateLimitWait {
                wait: Duration::ZERO,
            },
            EventKind::RateLimitRejected {
                retry_after: Duration::ZERO,
            },
            EventKind::BudgetExhausted { attempts: 1 },
            EventKind::RecoveryStarted {
                class: ErrorClass::Connection,
                refresh_credentials: false,
            },
            EventKind::RecoverySucceeded {
                refresh_credentials: false,
            },
            EventKind::RecoveryNotNeeded { reason: "r" },
            EventKind::RecoveryFailed { error: "e" },
            EventKind::CredentialsRefreshed,
            EventKind::Probed { reachable: true },
        ];
        let (_dir, path) = temp("kinds");
        let journal = Journal::open(&path).unwrap();
        for kind in samples {
            journal.on_event(&event(kind));
        }
        let (events, skipped) = read_all(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((events.len(), skipped), (samples.len(), 0));
        for (event, kind) in events.iter().zip(samples) {
            assert_ne!(event.kind, Kind::Other, "{}", kind.name());
            assert_eq!(
                serde_json::to_value(event.kind).unwrap(),
                Value::from(kind.name())
            );
        }
    }
}
