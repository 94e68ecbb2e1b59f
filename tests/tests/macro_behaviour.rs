//! `#[resilient_operation]` end to end: attempt counts, state across attempts, early
//! returns, nesting, names in health and tracing, and profiles swapped at run time.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use resilience_core::policy::{Jitter, Policy};
use resilience_core::{
    Engine, ErrorClass, Failure, PolicySet, Resilience, Resilient, ResilientError, Stop,
    resilient_operation,
};

#[derive(Debug)]
enum SourceError {
    Fail(ErrorClass),
    Stopped(Box<Failure<SourceError>>),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Fail(class) => write!(f, "{class} failure"),
            SourceError::Stopped(failure) => failure.fmt(f),
        }
    }
}

impl ResilientError for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            SourceError::Fail(class) => *class,
            SourceError::Stopped(failure) => failure.class(),
        }
    }

    fn from_failure(failure: Failure<Self>) -> Self {
        SourceError::Stopped(Box::new(failure))
    }
}

/// What a connector's own `Result` alias looks like (`PgResult<T>`).
type SourceResult<T> = Result<T, SourceError>;

/// A source whose calls fail with the classes queued in `script`, then succeed.
struct Source {
    resilience: Resilience,
    calls: AtomicU32,
    inner_calls: AtomicU32,
    script: Mutex<Vec<ErrorClass>>,
    seen: Vec<u32>,
}

impl Resilient for Source {
    fn resilience(&self) -> &Resilience {
        &self.resilience
    }
}

impl Source {
    fn new(script: &[ErrorClass]) -> Source {
        let mut policy = Policy::default();
        policy.retry.jitter = Jitter::None;
        let engine = Engine::new(PolicySet::from_policies([("db", policy)]).unwrap());
        Source {
            resilience: Resilience::new(engine, "db")
                .unwrap()
                .with_key("db.local:5432"),
            calls: AtomicU32::new(0),
            inner_calls: AtomicU32::new(0),
            script: Mutex::new(script.iter().rev().copied().collect()),
            seen: Vec::new(),
        }
    }

    fn next(&self) -> Result<(), SourceError> {
        match self.script.lock().unwrap().pop() {
            Some(class) => Err(SourceError::Fail(class)),
            None => Ok(()),
        }
    }

    #[resilient_operation]
    async fn fetch(&self, table: &str) -> Result<String, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.next()?;
        Ok(format!("rows of {table}"))
    }

    /// Returns the alias: checked by the compiler through it, retried like `fetch`.
    #[resilient_operation(name = "fetch_aliased")]
    async fn fetch_aliased(&self, table: &str) -> SourceResult<String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.next()?;
        Ok(format!("rows of {table}"))
    }

    /// Keeps what every attempt saw: `&mut self` state outlives a failed attempt.
    #[resilient_operation(name = "scan")]
    async fn scan(&mut self, page: u32) -> Result<usize, SourceError> {
        self.seen.push(page);
        self.next()?;
        Ok(self.seen.len())
    }

    #[resilient_operation(policy = "db", key = self.shard_key(7))]
    async fn cached(&self, hit: bool) -> Result<&'static str, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if hit {
            return Ok("from cache");
        }
        self.next()?;
        Ok("from source")
    }

    fn shard_key(&self, shard: u32) -> String {
        format!("shard-{shard}")
    }

    #[resilient_operation]
    async fn inner(&self) -> Result<(), SourceError> {
        self.inner_calls.fetch_add(1, Ordering::SeqCst);
        Err(SourceError::Fail(ErrorClass::Transient))
    }

    #[resilient_operation]
    async fn outer(&self) -> Result<(), SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner().await
    }
}

#[tokio::test(start_paused = true)]
async fn two_transient_failures_then_success_is_three_calls() {
    let source = Source::new(&[ErrorClass::Transient, ErrorClass::Transient]);
    let start = tokio::time::Instant::now();
    assert_eq!(source.fetch("orders").await.unwrap(), "rows of orders");
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        start.elapsed(),
        std::time::Duration::from_secs(3),
        "1 s + 2 s backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_method_returning_a_result_alias_retries() {
    let source = Source::new(&[ErrorClass::Connection, ErrorClass::Transient]);
    let start = tokio::time::Instant::now();
    assert_eq!(
        source.fetch_aliased("items").await.unwrap(),
        "rows of items"
    );
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    assert_eq!(start.elapsed(), std::time::Duration::from_secs(3));
    let err = Source::new(&[ErrorClass::Transient; 3])
        .fetch_aliased("items")
        .await
        .unwrap_err();
    match err {
        SourceError::Stopped(failure) => {
            assert_eq!(failure.stop, Stop::RetriesExhausted { attempts: 3 });
            assert_eq!(failure.operation, "fetch_aliased");
        }
        other => panic!("expected the engine's verdict, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn an_auth_error_is_called_once_and_comes_back_unchanged() {
    let source = Source::new(&[ErrorClass::Auth]);
    let err = source.fetch("orders").await.unwrap_err();
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    assert!(matches!(err, SourceError::Fail(ErrorClass::Auth)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn mut_self_state_survives_across_attempts() {
    let mut source = Source::new(&[ErrorClass::Connection, ErrorClass::Timeout]);
    assert_eq!(source.scan(4).await.unwrap(), 3);
    assert_eq!(source.seen, [4, 4, 4]);
}

#[tokio::test(start_paused = true)]
async fn an_early_return_ok_counts_as_success() {
    let source = Source::new(&[ErrorClass::Transient]);
    assert_eq!(source.cached(true).await.unwrap(), "from cache");
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    let health = source.resilience.engine().health();
    let shard = health
        .get("db", "shard-7")
        .expect("the key expression names the slot");
    assert_eq!((shard.calls, shard.successes, shard.failures), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_nested_resilient_call_does_not_multiply_attempts() {
    let source = Source::new(&[]);
    let err = source.outer().await.unwrap_err();
    assert_eq!(source.calls.load(Ordering::SeqCst), 3);
    assert_eq!(source.inner_calls.load(Ordering::SeqCst), 3, "not 3 × 3");
    match &err {
        SourceError::Stopped(failure) => {
            assert_eq!(failure.stop, Stop::RetriesExhausted { attempts: 3 });
            assert_eq!(failure.operation, "outer");
            assert!(matches!(
                failure.last_error,
                Some(SourceError::Fail(ErrorClass::Transient))
            ));
        }
        other => panic!("expected the outer verdict, got {other}"),
    }
}

/// Collects every event's message and fields as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push_str(&format!("{}={} ", field.name(), value));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
}

#[tokio::test(start_paused = true)]
async fn the_operation_name_and_key_reach_health_and_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut source = Source::new(&[ErrorClass::Connection]);
    source.scan(1).await.unwrap();

    let health = source.resilience.engine().health();
    let key = health.get("db", "db.local:5432").unwrap();
    assert_eq!(key.operations["scan"].calls, 1);
    assert_eq!(key.retries, 1);

    let events = captured.0.lock().unwrap();
    let retry = events
        .iter()
        .find(|e| e.contains("Retry attempt 2/3 for operation scan after error: connection failure. Next retry in 1s"))
        .unwrap_or_else(|| panic!("no retry event in {events:#?}"));
    assert!(retry.contains("key=db.local:5432"), "{retry}");
    assert!(retry.contains("operation=scan"), "{retry}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("resilience patterns enabled for policy db")),
        "{events:#?}"
    );
}

// ---- Profiles swapped at run time -------------------------------------------------

/// A free function: it names its policy and runs on the process-wide engine, which reads
/// `RESILIENCE_POLICY_DIR` and `RESILIENCE_PROFILE` when first used.
#[resilient_operation(policy = "db", name = "always_down")]
async fn always_down(calls: &AtomicU32) -> Result<(), SourceError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(SourceError::Fail(ErrorClass::Connection))
}

const CHILD: &str = "profile_child_reports_attempts";

#[tokio::test(start_paused = true)]
#[ignore = "run as a child process by swapping_the_profile_changes_attempts_without_recompiling"]
async fn profile_child_reports_attempts() {
    let calls = AtomicU32::new(0);
    always_down(&calls).await.unwrap_err();
    println!("ATTEMPTS={}", calls.load(Ordering::SeqCst));
}

fn attempts_under(dir: &std::path::Path, profile: &str) -> u32 {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RESILIENCE_POLICY_DIR", dir)
        .env("RESILIENCE_PROFILE", profile)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("ATTEMPTS=").map(|(_, n)| n.trim().to_owned()))
        .unwrap_or_else(|| panic!("no count in {stdout}"))
        .parse()
        .unwrap()
}

#[test]
fn swapping_the_profile_changes_attempts_without_recompiling() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let profile = |attempts: u32| {
        format!("[policy.db.retry]\nmax_attempts = {attempts}\ninitial_delay = \"10ms\"\n")
    };
    std::fs::write(dir.join("patient.toml"), profile(5)).unwrap();
    std::fs::write(dir.join("hasty.toml"), profile(2)).unwrap();
    let patient = attempts_under(&dir, "patient");
    let hasty = attempts_under(&dir, "hasty");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!((patient, hasty), (5, 2));
}
