//! `extends`: inheritance of unset keys, resolved after the layers are merged.

mod common;

use std::time::Duration;

use common::TempDir;
use resilience_policy::{Jitter, PolicySet, WhenLimited};

#[test]
fn child_inherits_every_key_it_does_not_set() {
    let dir = TempDir::new("extends");
    dir.write(
        "default.toml",
        "[policy.partner]\nextends = \"api\"\n[policy.partner.retry]\nmax_attempts = 2\n",
    );
    let set = dir.load(None).unwrap();
    let (partner, api) = (set.get("partner").unwrap(), set.get("api").unwrap());
    assert_eq!(partner.retry.max_attempts.get(), 2);
    assert_eq!(partner.retry.initial_delay, api.retry.initial_delay);
    assert_eq!(partner.circuit_breaker, api.circuit_breaker);
    assert_eq!(partner.rate_limit, api.rate_limit);
    assert!(partner.recovery.credential_refresh);
}

#[test]
fn chains_resolve_through_every_level() {
    let dir = TempDir::new("chain");
    dir.write(
        "default.toml",
        r#"
[policy.c]
extends = "b"
retry.jitter = "none"

[policy.b]
extends = "a"
rate_limit.when_limited = "reject"

[policy.a]
retry.max_attempts = 9
"#,
    );
    let set = dir.load(None).unwrap();
    let c = set.get("c").unwrap();
    assert_eq!(c.retry.jitter, Jitter::None);
    assert_eq!(c.rate_limit.when_limited, WhenLimited::Reject);
    assert_eq!(c.retry.max_attempts.get(), 9);
    assert_eq!(c.timeout, PolicySet::builtin().get("db").unwrap().timeout);
}

#[test]
fn profile_change_to_the_parent_reaches_the_child() {
    let dir = TempDir::new("extends-profile");
    dir.write(
        "default.toml",
        "[policy.reports]\nextends = \"db\"\ntimeout.attempt = \"5s\"\n",
    );
    dir.write("qa.toml", "[policy.db.retry]\nmax_attempts = 8\n");
    let set = dir.load(Some("qa")).unwrap();
    let reports = set.get("reports").unwrap();
    assert_eq!(reports.retry.max_attempts.get(), 8);
    assert_eq!(reports.timeout.attempt, Duration::from_secs(5));
}

#[test]
fn profile_may_change_what_a_policy_extends() {
    let dir = TempDir::new("extends-override");
    dir.write("default.toml", "[policy.reports]\nextends = \"db\"\n");
    dir.write("qa.toml", "[policy.reports]\nextends = \"file\"\n");
    let base = dir.load(None).unwrap();
    assert_eq!(base.get("reports"), base.get("db"));
    let qa = dir.load(Some("qa")).unwrap();
    assert_eq!(qa.get("reports"), qa.get("file"));
}
