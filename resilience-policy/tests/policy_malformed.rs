//! Malformed structure: unknown keys, TOML syntax, `extends` errors, profiles and
//! folders. Each error names the file, line and column (where it has one) and the key,
//! and says what would be valid. `@` in a case marks where the error must point.

mod common;

use common::{TempDir, default, marker};

const RETRY_KEYS: &str =
    "expected one of: max_attempts, initial_delay, multiplier, max_delay, jitter, retry_on, budget";

#[test]
fn unknown_key() {
    default(
        "[policy.db.retry]\n@colour = \"blue\"\n",
        "policy.db.retry.colour",
        &["unknown key `colour`,", RETRY_KEYS],
    );
}

#[test]
fn misspelt_key_suggests_the_closest() {
    default(
        "[policy.db.retry]\njitter = \"none\"\n@max_attempt = 3\n",
        "policy.db.retry.max_attempt",
        &["did you mean `max_attempts`?", RETRY_KEYS],
    );
}

#[test]
fn misspelt_section_in_a_header() {
    default(
        "[policy.db.@retyr]\nmax_attempts = 3\n",
        "policy.db.retyr",
        &["did you mean `retry`?", "extends, retry, circuit_breaker"],
    );
}

#[test]
fn top_level_junk() {
    default(
        "@version = 2\n[policy.db.retry]\nmax_attempts = 3\n",
        "version",
        &["unknown top-level key `version`, expected `policy`"],
    );
}

#[test]
fn section_that_is_not_a_table() {
    default(
        "[policy.db]\nretry = @5\n",
        "policy.db.retry",
        &["expected a table (write it as [policy.db.retry]), got integer 5"],
    );
}

#[test]
fn invalid_policy_name() {
    default(
        "[policy.@Main-DB.retry]\nmax_attempts = 3\n",
        "policy.Main-DB",
        &["invalid policy name `Main-DB`", "lower-case letter"],
    );
}

#[test]
fn cycle_in_extends() {
    default(
        "[policy.a]\nextends = \"b\"\n[policy.b]\nextends = @\"a\"\n",
        "policy.b.extends",
        &["cycle in `extends`: a -> b -> a"],
    );
}

#[test]
fn longer_cycle_in_extends() {
    default(
        "[policy.a]\nextends = \"b\"\n[policy.b]\nextends = \"c\"\n[policy.c]\nextends = @\"a\"\n",
        "policy.c.extends",
        &["cycle in `extends`: a -> b -> c -> a"],
    );
}

#[test]
fn self_extends() {
    default(
        "[policy.a]\nextends = @\"a\"\n",
        "policy.a.extends",
        &["cycle in `extends`: a -> a"],
    );
}

#[test]
fn unknown_extends_target() {
    default(
        "[policy.reports]\nextends = @\"warehouse\"\n",
        "policy.reports.extends",
        &["unknown policy `warehouse` in `extends`, expected one of: api, db, file, reports"],
    );
}

#[test]
fn extends_that_is_not_a_string() {
    default(
        "[policy.reports]\nextends = @[\"db\"]\n",
        "policy.reports.extends",
        &["expected the name of another policy as a string, got array"],
    );
}

#[test]
fn invalid_toml_syntax() {
    let dir = TempDir::new("syntax");
    let (text, line, column) = marker("[policy.db.retry]\nmax_attempts = @\n");
    let file = dir.write("default.toml", &text);
    let err = dir.load(None).expect_err("not TOML");
    assert_eq!(err.file(), Some(file.as_path()));
    assert_eq!(
        (err.line(), err.column()),
        (Some(line), Some(column)),
        "{err}"
    );
    assert!(err.to_string().contains("invalid TOML"), "{err}");
}

#[test]
fn duplicate_key() {
    let dir = TempDir::new("duplicate");
    let (text, line, column) = marker("[policy.db.retry]\nmax_attempts = 3\n@max_attempts = 4\n");
    let file = dir.write("default.toml", &text);
    let err = dir.load(None).expect_err("duplicate key");
    assert_eq!(err.file(), Some(file.as_path()));
    assert_eq!(
        (err.line(), err.column()),
        (Some(line), Some(column)),
        "{err}"
    );
    assert!(
        err.to_string().contains("duplicate key `max_attempts`"),
        "{err}"
    );
}

#[test]
fn unknown_profile_lists_the_available_ones() {
    let dir = TempDir::new("profile");
    dir.write("qa.toml", "");
    let err = dir.load(Some("staging")).expect_err("no such profile");
    assert_eq!(err.file(), Some(dir.path().join("staging.toml").as_path()));
    assert_eq!((err.line(), err.column()), (None, None));
    assert!(
        err.to_string()
            .contains("unknown profile `staging`, expected one of: demo, dev, prod, qa"),
        "{err}"
    );
}

#[test]
fn missing_policy_folder() {
    let dir = TempDir::new("missing");
    let missing = dir.path().join("nope");
    let err = resilience_policy::PolicySet::load(&resilience_policy::LoadOptions {
        dir: Some(missing.clone()),
        profile: None,
    })
    .expect_err("no such folder");
    assert_eq!(err.file(), Some(missing.as_path()));
    assert!(
        err.to_string().contains("cannot read: not a folder"),
        "{err}"
    );
}

#[test]
fn profile_names_cannot_leave_the_folder() {
    let dir = TempDir::new("escape");
    dir.write("default.toml", "");
    let err = dir
        .load(Some("../default"))
        .expect_err("not a profile name");
    assert!(
        err.to_string().contains("unknown profile `../default`"),
        "{err}"
    );
}

#[test]
fn unknown_profile_without_a_folder() {
    let err = resilience_policy::PolicySet::load(&resilience_policy::LoadOptions {
        dir: None,
        profile: Some("staging".into()),
    })
    .expect_err("no such profile");
    assert_eq!(err.file(), Some("<built-in profiles>".as_ref()));
    assert!(
        err.to_string()
            .ends_with("unknown profile `staging`, expected one of: demo, dev, prod"),
        "{err}"
    );
}
