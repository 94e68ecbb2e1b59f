//! Layering: `<dir>/default.toml` and `<dir>/<profile>.toml` merged key by key over the
//! built-in defaults.

mod common;

use std::time::Duration;

use common::TempDir;
use resilience_policy::{Jitter, LoadOptions, Policy, PolicySet};

#[test]
fn layers_merge_key_by_key() {
    let dir = TempDir::new("layers");
    let default = dir.write(
        "default.toml",
        "[policy.db.retry]\nmax_attempts = 7\njitter = \"none\"\n",
    );
    let qa = dir.write(
        "qa.toml",
        "[policy.db.retry]\njitter = \"equal\"\n[policy.db.timeout]\ntotal = \"3m\"\n",
    );
    let set = dir.load(Some("qa")).unwrap();
    let db = set.get("db").unwrap();
    assert_eq!(db.retry.max_attempts.get(), 7, "from <dir>/default.toml");
    assert_eq!(db.retry.jitter, Jitter::Equal, "the profile wins");
    assert_eq!(
        db.timeout.total,
        Duration::from_secs(180),
        "from the profile"
    );
    assert_eq!(db.retry.initial_delay, Duration::from_secs(1), "built-in");
    assert_eq!(db.circuit_breaker, Policy::default().circuit_breaker);
    // Other presets are untouched.
    assert_eq!(set.get("api"), PolicySet::builtin().get("api"));
    assert_eq!(set.files(), [default, qa]);
    assert_eq!(set.profile(), Some("qa"));
}

#[test]
fn folder_without_default_toml_uses_the_builtin_defaults() {
    let dir = TempDir::new("no-default");
    let set = dir.load(None).unwrap();
    assert!(set.files().is_empty());
    assert_eq!(set.get("db"), PolicySet::builtin().get("db"));
}

#[test]
fn profile_on_disk_wins_over_the_shipped_one() {
    let dir = TempDir::new("prod-override");
    let prod = dir.write("prod.toml", "[policy.db.retry]\nmax_attempts = 9\n");
    let set = dir.load(Some("prod")).unwrap();
    assert_eq!(set.get("db").unwrap().retry.max_attempts.get(), 9);
    // The shipped prod.toml is not layered in as well.
    assert_eq!(
        set.get("db").unwrap().timeout.total,
        Duration::from_secs(120)
    );
    assert_eq!(set.files(), [prod]);
}

#[test]
fn shipped_profile_is_used_when_the_folder_lacks_it() {
    let dir = TempDir::new("prod-fallback");
    dir.write("default.toml", "[policy.db.retry]\nmultiplier = 3.0\n");
    let set = dir.load(Some("prod")).unwrap();
    let db = set.get("db").unwrap();
    assert_eq!(db.retry.multiplier, 3.0);
    assert_eq!(db.retry.max_attempts.get(), 5);
}

#[test]
fn profile_may_add_policies() {
    let dir = TempDir::new("new-policy");
    dir.write(
        "qa.toml",
        "[policy.warehouse.retry]\nmax_attempts = 2\n[policy.warehouse.rate_limit]\nwhen_limited = \"reject\"\n",
    );
    let set = dir.load(Some("qa")).unwrap();
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        ["api", "db", "file", "warehouse"]
    );
    let warehouse = set.get("warehouse").unwrap();
    assert_eq!(warehouse.retry.max_attempts.get(), 2);
    // Without `extends`, unset keys are the schema defaults.
    assert_eq!(warehouse.circuit_breaker, Policy::default().circuit_breaker);
    assert!(dir.load(None).unwrap().get("warehouse").is_none());
}

#[test]
fn to_toml_loads_back_to_the_same_policies() {
    let dir = TempDir::new("round-trip");
    dir.write(
        "default.toml",
        "[policy.db.retry]\ninitial_delay = \"1s 500ms\"\nmultiplier = 1.5\n[policy.custom]\nextends = \"api\"\nretry.jitter = \"decorrelated\"\n",
    );
    let set = PolicySet::load(&LoadOptions {
        dir: Some(dir.path().to_owned()),
        profile: Some("prod".into()),
    })
    .unwrap();
    let shown = set.to_toml();
    let again = TempDir::new("round-trip-again");
    again.write("default.toml", &shown);
    let reloaded = again.load(None).unwrap_or_else(|e| panic!("{e}\n{shown}"));
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        reloaded.names().collect::<Vec<_>>()
    );
    for name in set.names() {
        assert_eq!(set.get(name), reloaded.get(name), "{name}");
    }
    assert_eq!(
        reloaded.get("custom").unwrap().retry.max_attempts.get(),
        5,
        "extends was flattened into the output"
    );
}
