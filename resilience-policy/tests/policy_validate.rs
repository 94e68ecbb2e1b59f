//! Policies built in code go through the loader's rules: `PolicySet::from_policies` and
//! `Policy::validate` refuse what a policy file could not say, naming the policy and key.

use std::time::Duration;

use proptest::prelude::*;
use resilience_policy::{Policy, PolicyError, PolicySet};

/// The error `from_policies` gives for the `db` preset edited by `edit`.
fn refused(edit: impl FnOnce(&mut Policy)) -> PolicyError {
    let mut policy = Policy::default();
    edit(&mut policy);
    PolicySet::from_policies([("db", policy)]).unwrap_err()
}

#[test]
fn a_nan_or_negative_multiplier_is_refused() {
    let err = refused(|p| p.retry.multiplier = f64::NAN);
    assert_eq!(err.key(), Some("policy.db.retry.multiplier"));
    assert_eq!(
        err.to_string(),
        "`policy.db.retry.multiplier`: must be a finite number of at least 1.0, got NaN"
    );
    let err = refused(|p| p.retry.multiplier = -2.0);
    assert!(err.to_string().ends_with("got -2"), "{err}");
    let err = refused(|p| p.retry.multiplier = f64::INFINITY);
    assert!(err.to_string().ends_with("got inf"), "{err}");
}

#[test]
fn durations_past_a_year_are_refused() {
    let err = refused(|p| p.timeout.total = Duration::MAX);
    assert_eq!(err.key(), Some("policy.db.timeout.total"));
    assert!(
        err.to_string()
            .contains("is longer than the longest allowed, 365 days"),
        "{err}"
    );
    let err = refused(|p| p.rate_limit.max_wait = Duration::from_secs(400 * 86_400));
    assert_eq!(err.key(), Some("policy.db.rate_limit.max_wait"));
}

#[test]
fn zero_where_zero_means_nothing_is_refused() {
    let err = refused(|p| p.timeout.attempt = Duration::ZERO);
    assert_eq!(err.key(), Some("policy.db.timeout.attempt"));
    assert!(
        err.to_string().contains("must be greater than zero"),
        "{err}"
    );
    let err = refused(|p| p.circuit_breaker.recovery_timeout = Duration::ZERO);
    assert_eq!(
        err.key(),
        Some("policy.db.circuit_breaker.recovery_timeout")
    );
}

#[test]
fn rules_between_two_keys_hold() {
    let err = refused(|p| p.retry.initial_delay = Duration::from_secs(60));
    assert_eq!(
        err.to_string(),
        "`policy.db.retry.initial_delay`: must not be above `retry.max_delay` (30s), got 1m"
    );
    let err = refused(|p| p.timeout.attempt = Duration::from_secs(600));
    assert_eq!(err.key(), Some("policy.db.timeout.attempt"));
}

#[test]
fn a_budget_ratio_out_of_range_is_refused() {
    let err = refused(|p| p.retry.budget.ratio = -0.5);
    assert_eq!(err.key(), Some("policy.db.retry.budget.ratio"));
    let err = refused(|p| p.retry.budget.ratio = f64::NAN);
    assert_eq!(err.key(), Some("policy.db.retry.budget.ratio"));
}

#[test]
fn a_policy_name_follows_the_file_rules() {
    let err = PolicySet::from_policies([("Not A Name", Policy::default())]).unwrap_err();
    assert!(err.to_string().contains("invalid policy name"), "{err}");
}

#[test]
fn valid_policies_and_every_preset_pass() {
    let builtin = PolicySet::builtin();
    builtin.validate().unwrap();
    let set = PolicySet::from_policies(
        builtin
            .names()
            .map(|name| (name.to_owned(), (**builtin.get(name).unwrap()).clone())),
    )
    .unwrap();
    assert_eq!(set.names().count(), 3);
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        (0u64..u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..100_000).prop_map(Duration::from_millis),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<f64>(),
        0.0f64..10.0,
    ]
}

proptest! {
    /// Whatever the values, validation answers without panicking, and what it accepts
    /// keeps every rule the engine relies on.
    #[test]
    fn validation_never_panics_and_accepts_only_sound_policies(
        durations in proptest::collection::vec(duration(), 8),
        floats in proptest::collection::vec(float(), 2),
    ) {
        let mut p = Policy::default();
        p.retry.initial_delay = durations[0];
        p.retry.max_delay = durations[1];
        p.retry.budget.ttl = durations[2];
        p.circuit_breaker.recovery_timeout = durations[3];
        p.rate_limit.max_wait = durations[4];
        p.recovery.check_interval = durations[5];
        p.timeout.attempt = durations[6];
        p.timeout.total = durations[7];
        p.retry.multiplier = floats[0];
        p.retry.budget.ratio = floats[1];
        if p.validate("db").is_ok() {
            let year = Duration::from_secs(365 * 86_400);
            prop_assert!(durations.iter().all(|d| *d <= year));
            prop_assert!(p.retry.multiplier.is_finite() && p.retry.multiplier >= 1.0);
            prop_assert!((0.0..=1000.0).contains(&p.retry.budget.ratio));
            prop_assert!(p.retry.initial_delay <= p.retry.max_delay);
            prop_assert!(!p.timeout.attempt.is_zero() && p.timeout.attempt <= p.timeout.total);
        }
    }
}
