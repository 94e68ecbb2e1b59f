//! The built-in presets and shipped profiles: embedded, valid, and with the documented
//! values.

use std::time::Duration;

use resilience_policy::{
    ClassSet, ErrorClass, Jitter, LoadOptions, Policy, PolicySet, WhenLimited,
};

fn profile(name: &str) -> PolicySet {
    PolicySet::load(&LoadOptions {
        dir: None,
        profile: Some(name.to_owned()),
    })
    .unwrap_or_else(|e| panic!("shipped profile `{name}` is invalid: {e}"))
}

#[test]
fn embedded_default_toml_parses_and_holds_the_three_presets() {
    let set = PolicySet::load(&LoadOptions::default()).expect("embedded default.toml is valid");
    assert_eq!(set.names().collect::<Vec<_>>(), ["api", "db", "file"]);
    assert_eq!(set.profile(), None);
    assert!(set.files().is_empty(), "nothing is read from disk");
    assert_eq!(PolicySet::builtin().names().count(), 3);
}

#[test]
fn db_preset_is_the_schema_default() {
    assert_eq!(**PolicySet::builtin().get("db").unwrap(), Policy::default());
}

#[test]
fn api_preset() {
    let set = PolicySet::builtin();
    let api = set.get("api").unwrap();
    assert_eq!(api.retry.max_attempts.get(), 5);
    assert_eq!(api.retry.initial_delay, Duration::from_secs(2));
    assert_eq!(api.retry.multiplier, 2.0);
    assert_eq!(api.retry.max_delay, Duration::from_secs(60));
    assert_eq!(api.retry.jitter, Jitter::Full);
    assert_eq!(api.circuit_breaker.failure_threshold.get(), 3);
    assert_eq!(
        api.circuit_breaker.recovery_timeout,
        Duration::from_secs(60)
    );
    assert_eq!(api.circuit_breaker.success_threshold.get(), 2);
    assert_eq!(api.rate_limit.requests_per_minute.get(), 60);
    assert_eq!(api.rate_limit.burst.get(), 10);
    assert!(api.recovery.credential_refresh);
    // Unset keys come from the schema defaults.
    assert_eq!(api.timeout, Policy::default().timeout);
    assert_eq!(api.rate_limit.when_limited, WhenLimited::Wait);
}

#[test]
fn file_preset() {
    let set = PolicySet::builtin();
    let file = set.get("file").unwrap();
    assert_eq!(file.retry.max_attempts.get(), 4);
    assert_eq!(file.retry.initial_delay, Duration::from_millis(500));
    assert_eq!(
        file.retry.retry_on,
        ClassSet::of(&[
            ErrorClass::Connection,
            ErrorClass::Timeout,
            ErrorClass::Transient
        ])
    );
    assert_eq!(file.circuit_breaker.failure_threshold.get(), 10);
    assert_eq!(
        file.circuit_breaker.recovery_timeout,
        Duration::from_secs(15)
    );
    assert_eq!(file.rate_limit.requests_per_minute.get(), 1000);
    assert_eq!(file.rate_limit.burst.get(), 100);
    assert!(!file.recovery.credential_refresh);
}

#[test]
fn shipped_profiles_load_without_a_folder() {
    let prod = profile("prod");
    assert_eq!(prod.profile(), Some("prod"));
    let db = prod.get("db").unwrap();
    assert_eq!(db.retry.max_attempts.get(), 5);
    assert_eq!(db.timeout.total, Duration::from_secs(300));
    // Key by key: everything else is the preset's.
    assert_eq!(db.retry.initial_delay, Duration::from_secs(1));
    assert_eq!(db.circuit_breaker, Policy::default().circuit_breaker);

    let dev = profile("dev");
    let db = dev.get("db").unwrap();
    assert!(db.retry.initial_delay < Duration::from_secs(1));
    assert!(db.timeout.total < Duration::from_secs(120));
    assert_eq!(db.retry.max_attempts.get(), 3);
}

#[test]
fn demo_profile_scales_timings_down_and_keeps_limits() {
    let demo = profile("demo");
    let builtin = PolicySet::builtin();
    for name in ["db", "api", "file"] {
        let (d, b) = (demo.get(name).unwrap(), builtin.get(name).unwrap());
        assert_eq!(d.retry.initial_delay, Duration::from_millis(100), "{name}");
        assert_eq!(d.retry.max_delay, Duration::from_secs(1), "{name}");
        assert_eq!(
            d.circuit_breaker.recovery_timeout,
            Duration::from_secs(2),
            "{name}"
        );
        assert_eq!(d.recovery.check_interval, Duration::from_secs(1), "{name}");
        assert_eq!(d.timeout.attempt, Duration::from_secs(2), "{name}");
        assert_eq!(d.timeout.total, Duration::from_secs(10), "{name}");
        assert_eq!(d.retry.max_attempts, b.retry.max_attempts, "{name}");
        assert_eq!(
            d.circuit_breaker.failure_threshold,
            b.circuit_breaker.failure_threshold
        );
        assert_eq!(d.rate_limit, b.rate_limit, "{name}");
    }
}

#[test]
fn profile_named_default_adds_no_layer() {
    let set = profile("default");
    assert_eq!(set.profile(), Some("default"));
    assert_eq!(set.get("db"), PolicySet::builtin().get("db"));
}
